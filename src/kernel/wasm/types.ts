// What the rewriter (rewrite.ts) hands the thread runtime (thread.ts). Plain data plus a compiled
// WebAssembly.Module: no Binaryen types leak out, so a thread can run a rewritten module without
// loading Binaryen at all (e.g. a module that immigrated with its bytes already rewritten).

export type ValType = 'i32' | 'i64' | 'f32' | 'f64';

/** A function the program imports, with its signature (needed to convert host results). */
export interface ImportInfo {
  readonly module: string;
  readonly name: string;
  readonly params: readonly ValType[];
  /** Empty for a void import; at most one result (no multivalue). */
  readonly results: readonly ValType[];
}

export type ExportKind = 'function' | 'memory' | 'global' | 'table';

/** An export of the original program (runtime-added exports are not listed). */
export interface ExportInfo {
  readonly name: string;
  readonly kind: ExportKind;
}

/** A mutable global of the program, exported by the rewriter so snapshots can save it. */
export interface GlobalSlot {
  /** Stable name inside this module (Binaryen's internal name, e.g. `__stack_pointer`). */
  readonly name: string;
  /** The export under which the rewritten module exposes it. */
  readonly exportName: string;
  readonly type: ValType;
}

/** Where the runtime finds its hooks inside the rewritten module. */
export interface RuntimeLayout {
  /** Bumped whenever the rewriting scheme changes: snapshots carry it. */
  readonly abi: number;
  readonly memoryExport: string;
  /** Set when the program imports its memory: the thread creates it with these limits. */
  readonly memoryImport: {
    readonly module: string;
    readonly name: string;
    readonly initialPages: number;
    readonly maximumPages: number | undefined;
  } | null;
  readonly globals: readonly GlobalSlot[];
  /** Exported mutable i32: decremented at each preemption point; the runtime refills it. */
  readonly fuelExport: string;
  /** The import called when the fuel runs out. */
  readonly yieldImport: { readonly module: string; readonly name: string };
  /** The wasm `start` function, moved to an export so instantiating runs no code. */
  readonly startExport: string | null;
  readonly preemptAtFunctionEntry: boolean;
}

export interface RewrittenModule {
  /** SHA-256 (hex) of the ORIGINAL bytes: the program's identity in snapshots and caches. */
  readonly hash: string;
  /** The rewritten bytes (what `module` was compiled from; ship these to skip a rewrite). */
  readonly bytes: Uint8Array;
  readonly module: WebAssembly.Module;
  /** The program's own function imports (the runtime's yield import is not listed). */
  readonly imports: readonly ImportInfo[];
  readonly exports: readonly ExportInfo[];
  readonly runtime: RuntimeLayout;
}

export const ASYNCIFY_EXPORTS = {
  startUnwind: 'asyncify_start_unwind',
  stopUnwind: 'asyncify_stop_unwind',
  startRewind: 'asyncify_start_rewind',
  stopRewind: 'asyncify_stop_rewind',
  getState: 'asyncify_get_state',
} as const;

export const RUNTIME_IMPORT_MODULE = 'lshapes_rt';
export const RUNTIME_ABI = 1;
