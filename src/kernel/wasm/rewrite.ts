// Load-time rewriting of a program with Binaryen (the `binaryen` npm package).
//
//   1. validate: engine first (clear messages), then Binaryen with an explicit feature set;
//   2. preemption points at every loop header (and optionally every function entry): a fuel
//      counter (an exported mutable i32 global) says how many points the thread may still pass;
//      a point takes one, and only when none is left is `lshapes_rt.yield_check` called, where
//      the runtime refills the counter or unwinds (end of the slice). The loop shape keeps that
//      call out of the hot loop and the counter in a local (see insertPreemptionPoints);
//   3. every mutable global is exported (Asyncify does not save globals; a restored instance
//      must get them back, __stack_pointer included), the memory too; a wasm `start` function
//      is moved to an export so that instantiating a restored module runs no program code;
//   4. the Asyncify pass, with every import allowed to unwind and rewind the stack;
//   5. optionally Binaryen's optimizer (RewriteOptions.optimizeLevel);
//   6. optionally a cap on the memory's maximum (RewriteOptions.maxMemoryBytes), and always a
//      custom section describing the result, so `loadRewritten` can run the bytes later (or on
//      another peer) without Binaryen.
//
// Results are cached by the SHA-256 of the original bytes (plus the options), so a program is
// rewritten once per peer however many threads run it.
//
// Host-agnostic: Binaryen is loaded lazily (it is big, and ESM with top-level await), and
// hashing uses @noble/hashes unless the host injects WebCrypto.

import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { WasmLoadError, describe } from './errors.ts';
import {
  RUNTIME_ABI,
  RUNTIME_IMPORT_MODULE,
  type ExportInfo,
  type ExportKind,
  type GlobalSlot,
  type ImportInfo,
  type RewrittenModule,
  type RuntimeLayout,
  type ValType,
} from './types.ts';

type Binaryen = typeof import('binaryen').default;
type BModule = InstanceType<Binaryen['Module']>;

export interface RewriteOptions {
  /** SHA-256 of the original bytes; default @noble/hashes (hosts may pass WebCrypto). */
  sha256?: (bytes: Uint8Array) => Promise<Uint8Array> | Uint8Array;
  /** Also put a preemption point at every function entry (catches loop-free recursion). */
  preemptAtFunctionEntry?: boolean;
  /**
   * Binaryen optimization level for Asyncify and for an optimizer run after it. 0 (default):
   * none, the rewrite is ~10x faster (0.2 s vs 2 s for a 140 KB clang -O2 program) and programs
   * already optimized by their compiler run about as fast; 1 or 2 help unoptimized producers
   * (inlining small functions keeps their callers' loops call-free) at the cost of rewrite time.
   */
  optimizeLevel?: 0 | 1 | 2;
  /** Use (and fill) the in-memory cache (default true). */
  cache?: boolean;
  /**
   * Cap on the program's linear memory in bytes (rounded down to whole 64 KiB pages): the
   * memory's maximum is lowered to it, so `memory.grow` fails beyond it (malloc returns NULL).
   * A program that needs more than that just to start is refused. Default: no cap.
   */
  maxMemoryBytes?: number;
}

export const YIELD_IMPORT = { module: RUNTIME_IMPORT_MODULE, name: 'yield_check' } as const;
export const FUEL_EXPORT = '__lshapes_fuel';
export const MEMORY_EXPORT = '__lshapes_memory';
export const START_EXPORT = '__lshapes_start';
export const GLOBAL_EXPORT_PREFIX = '__lshapes_global:';
/**
 * Custom section the rewriter appends: JSON of what `RewrittenModule` says besides the bytes
 * (hash, imports with signatures, exports, runtime layout), so `loadRewritten` can run rewritten
 * bytes (from a cache, another peer) without Binaryen.
 */
export const METADATA_SECTION = 'lshapes.rewritten';
const PAGE = 65536;

const YIELD_INTERNAL = '__lshapes_yield_check';
const FUEL_INTERNAL = '__lshapes_fuel';
const NOSTART_INTERNAL = '__lshapes_nostart';

// ---------------------------------------------------------------------------------------------
// Binaryen loading

let binaryenPromise: Promise<Binaryen> | undefined;

/**
 * Binaryen prints validator messages with console.error/console.log bound when it loads. If we
 * load it first, we bind them to forwarders that can collect the messages (for error reports,
 * and to keep the console quiet); the sink is on globalThis so every copy of this module (test
 * runners load it once per file) shares it. If something else loaded Binaryen before us, the
 * messages just reach the console.
 */
const SINK = Symbol.for('lshapes.binaryen.output');
type SinkHolder = { [SINK]?: string[] | null };

function captureStart(): void {
  (globalThis as SinkHolder)[SINK] = [];
}

function captureEnd(): string {
  const out = (globalThis as SinkHolder)[SINK] ?? [];
  (globalThis as SinkHolder)[SINK] = null;
  return out.join('\n').trim();
}

export function loadBinaryen(): Promise<Binaryen> {
  binaryenPromise ??= (async () => {
    const origError = console.error;
    const origLog = console.log;
    const forward =
      (orig: (...a: unknown[]) => void) =>
      (...a: unknown[]): void => {
        const sink = (globalThis as SinkHolder)[SINK];
        if (sink) sink.push(a.join(' '));
        else orig(...a);
      };
    console.error = forward(origError);
    console.log = forward(origLog);
    try {
      const mod = await import('binaryen');
      return mod.default;
    } finally {
      console.error = origError;
      console.log = origLog;
    }
  })();
  return binaryenPromise;
}

function features(b: Binaryen): number {
  const F = b.Features;
  // Explicit, not Features.All (see DESIGN.md "Processes"). BulkMemoryOpt exists since v119.
  return (
    F.MutableGlobals | F.BulkMemory | F.SignExt | F.NontrappingFPToInt | ((F as { BulkMemoryOpt?: number }).BulkMemoryOpt ?? 0)
  );
}

export const SUPPORTED_FEATURES = 'mutable-globals, bulk-memory, sign-ext, nontrapping-float-to-int';

// ---------------------------------------------------------------------------------------------
// Cache

const CACHE_LIMIT = 32;
const cache = new Map<string, Promise<RewrittenModule>>();

export function clearRewriteCache(): void {
  cache.clear();
}

export function rewriteCacheSize(): number {
  return cache.size;
}

// ---------------------------------------------------------------------------------------------
// Public entry

export async function rewriteModule(input: Uint8Array | ArrayBuffer, options: RewriteOptions = {}): Promise<RewrittenModule> {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  checkHeader(bytes);
  const hash = toHex(await (options.sha256 ?? nobleSha256)(bytes));
  const key = `${hash}/${options.preemptAtFunctionEntry ? 'e' : '-'}${optimizeLevel(options)}/${memoryCapPages(options) ?? '-'}`;
  const useCache = options.cache !== false;
  if (useCache) {
    const hit = cache.get(key);
    if (hit) {
      // refresh LRU position
      cache.delete(key);
      cache.set(key, hit);
      return hit;
    }
  }
  const work = doRewrite(bytes, hash, options);
  if (useCache) {
    cache.set(key, work);
    while (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
    work.catch(() => cache.delete(key));
  }
  return work;
}

/** The memory cap in pages, or undefined for none. */
function memoryCapPages(options: RewriteOptions): number | undefined {
  const b = options.maxMemoryBytes;
  if (b === undefined) return undefined;
  if (!(b >= PAGE)) throw new WasmLoadError(`maxMemoryBytes must be at least ${PAGE} (one page), not ${String(b)}`);
  return Math.min(65536, Math.floor(b / PAGE));
}

function optimizeLevel(options: RewriteOptions): 0 | 1 | 2 {
  const l = options.optimizeLevel ?? 0;
  if (l !== 0 && l !== 1 && l !== 2) throw new WasmLoadError(`optimizeLevel must be 0, 1 or 2, not ${String(l)}`);
  return l;
}

function checkHeader(bytes: Uint8Array): void {
  if (bytes.length < 8 || bytes[0] !== 0x00 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new WasmLoadError('not a WebAssembly module: the file does not start with the "\\0asm" magic number');
  }
  const version = bytes[4]! | (bytes[5]! << 8) | (bytes[6]! << 16) | (bytes[7]! << 24);
  if (version !== 1) {
    if (bytes[6] === 0x01 && bytes[7] === 0x00) {
      throw new WasmLoadError('this is a WebAssembly component, not a core module: LSHAPES runs core wasm32-wasi modules');
    }
    throw new WasmLoadError(`unsupported WebAssembly binary version ${version} (expected 1)`);
  }
}

async function doRewrite(bytes: Uint8Array, hash: string, options: RewriteOptions): Promise<RewrittenModule> {
  // The engine's validator gives the clearest message for a malformed module.
  try {
    await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (e) {
    throw new WasmLoadError(`invalid WebAssembly module: ${cleanEngineMessage(describe(e))}`);
  }
  const b = await loadBinaryen();
  const out = transform(b, bytes, options);
  out.bytes = appendCustomSection(
    out.bytes,
    METADATA_SECTION,
    new TextEncoder().encode(JSON.stringify({ hash, imports: out.imports, exports: out.exports, runtime: out.runtime } satisfies Metadata)),
  );
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(out.bytes as Uint8Array<ArrayBuffer>);
  } catch (e) {
    throw new WasmLoadError(`internal error: the rewritten module does not compile: ${describe(e)}`);
  }
  return { hash, bytes: out.bytes, module, imports: out.imports, exports: out.exports, runtime: out.runtime };
}

/**
 * A module rewritten earlier (its `bytes`), ready to run without Binaryen: compiles it and reads
 * the description the rewriter embedded. Refuses bytes this version of the rewriter did not
 * produce, or (with `expectedHash`) produced from another program.
 */
export async function loadRewritten(input: Uint8Array | ArrayBuffer, expectedHash?: string): Promise<RewrittenModule> {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  checkHeader(bytes);
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (e) {
    throw new WasmLoadError(`invalid WebAssembly module: ${cleanEngineMessage(describe(e))}`);
  }
  const sections = WebAssembly.Module.customSections(module, METADATA_SECTION);
  if (sections.length !== 1) throw new WasmLoadError('not a module rewritten by LSHAPES (no rewrite description in it)');
  let meta: Metadata;
  try {
    meta = JSON.parse(new TextDecoder().decode(sections[0])) as Metadata;
  } catch {
    throw new WasmLoadError('the rewrite description in the module is corrupt');
  }
  if (!meta || typeof meta !== 'object' || !Array.isArray(meta.imports) || !Array.isArray(meta.exports) || typeof meta.hash !== 'string') {
    throw new WasmLoadError('the rewrite description in the module is corrupt');
  }
  if (meta.runtime?.abi !== RUNTIME_ABI) {
    throw new WasmLoadError(`the module was rewritten for another runtime ABI (${String(meta?.runtime?.abi)}, this is ${RUNTIME_ABI})`);
  }
  if (expectedHash !== undefined && meta.hash !== expectedHash) {
    throw new WasmLoadError(`the rewritten module belongs to another program (${meta.hash.slice(0, 12)}…, not ${expectedHash.slice(0, 12)}…)`);
  }
  const declared = new Set(meta.imports.map((i) => `${i.module}\u0000${i.name}`));
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.kind !== 'function' || imp.module === RUNTIME_IMPORT_MODULE) continue;
    if (!declared.has(`${imp.module}\u0000${imp.name}`)) throw new WasmLoadError('the rewrite description in the module does not match it');
  }
  return { hash: meta.hash, bytes, module, imports: meta.imports, exports: meta.exports, runtime: meta.runtime };
}

interface Metadata {
  hash: string;
  imports: ImportInfo[];
  exports: ExportInfo[];
  runtime: RuntimeLayout;
}

function cleanEngineMessage(m: string): string {
  return m.replace(/^WebAssembly\.(compile|Module)\(\): /, '');
}

// ---------------------------------------------------------------------------------------------
// The transformation (synchronous: Binaryen's global options are set and used in one go)

interface Transformed {
  bytes: Uint8Array;
  imports: ImportInfo[];
  exports: ExportInfo[];
  runtime: RuntimeLayout;
}

function transform(b: Binaryen, bytes: Uint8Array, options: RewriteOptions): Transformed {
  const feats = features(b);
  let m: BModule;
  captureStart();
  try {
    m = (b.readBinary as (data: Uint8Array, features?: number) => BModule)(bytes, feats);
  } catch (e) {
    const detail = captureEnd();
    throw new WasmLoadError(`Binaryen could not read the module: ${describe(e)}${detail ? ` (${firstLines(detail)})` : ''}`);
  }
  captureEnd();
  const savedDebugInfo = b.getDebugInfo();
  const savedOptimize = b.getOptimizeLevel();
  const savedShrink = b.getShrinkLevel();
  try {
    m.setFeatures(feats);
    checkValid(b, m, feats);

    const imports = collectImports(b, m);
    const exports = collectExports(b, m);
    const cap = memoryCapPages(options);
    let memoryImport = prepareMemory(m);
    const definedMemory = memoryImport === null ? m.getMemoryInfo() : null;
    const initialPages = memoryImport?.initialPages ?? definedMemory?.initial ?? 0;
    if (cap !== undefined && initialPages > cap) {
      throw new WasmLoadError(
        `the program needs ${mib(initialPages * PAGE)} of memory to start, more than the limit of ${mib(cap * PAGE)}`,
      );
    }
    if (cap !== undefined && memoryImport && (memoryImport.maximumPages === undefined || memoryImport.maximumPages > cap)) {
      memoryImport = { ...memoryImport, maximumPages: cap };
    }
    const startExport = moveStart(b, m);

    // Fuel global and yield import.
    m.addGlobal(FUEL_INTERNAL, b.i32, true, m.i32.const(0));
    m.addFunctionImport(YIELD_INTERNAL, YIELD_IMPORT.module, YIELD_IMPORT.name, b.none, b.none);
    insertPreemptionPoints(b, m, !!options.preemptAtFunctionEntry);

    const globals = exportMutableGlobals(b, m);
    m.addGlobalExport(FUEL_INTERNAL, FUEL_EXPORT);
    const memoryExport = exportMemory(b, m);

    // Keep the name section (trap messages name the function), drop DWARF (wasi-libc ships
    // with it; Binaryen cannot keep it exact through Asyncify and it doubles the size).
    b.setDebugInfo(true);
    const level = optimizeLevel(options);
    b.setOptimizeLevel(level);
    b.setShrinkLevel(1);
    b.clearPassArguments();
    // No asyncify-imports list: by default every import may unwind/rewind, which is what we want
    // (all of wasi_snapshot_preview1, lshapes, and the yield import).
    m.runPasses(['strip-dwarf', 'asyncify']);
    if (level > 0) m.optimize();

    const runtime: RuntimeLayout = {
      abi: RUNTIME_ABI,
      memoryExport,
      memoryImport,
      globals,
      fuelExport: FUEL_EXPORT,
      yieldImport: { ...YIELD_IMPORT },
      startExport,
      preemptAtFunctionEntry: !!options.preemptAtFunctionEntry,
    };
    let outBytes: Uint8Array = m.emitBinary().slice();
    if (cap !== undefined && !memoryImport) outBytes = clampMemory(outBytes, cap);
    return { bytes: outBytes, imports, exports, runtime };
  } finally {
    b.setDebugInfo(savedDebugInfo);
    b.setOptimizeLevel(savedOptimize);
    b.setShrinkLevel(savedShrink);
    m.dispose();
  }
}

/** Validates with the supported features; if that fails, names the features the module needs. */
function checkValid(b: Binaryen, m: BModule, feats: number): void {
  captureStart();
  try {
    if (m.validate()) return;
    const detail = captureEnd();
    const all = b.Features.All;
    m.setFeatures(all);
    captureStart();
    if (!m.validate()) throw new WasmLoadError(`the module does not validate: ${firstLines(detail) || 'Binaryen validation failed'}`);
    // candidates: features without which the module is invalid (dependent features show up
    // too, e.g. ReferenceTypes when GC is on), then drop those the module can do without
    const validWith = (f: number): boolean => {
      m.setFeatures(f);
      return !!m.validate();
    };
    const needed = new Map<string, number>();
    for (const [name, bit] of Object.entries(b.Features)) {
      if (typeof bit !== 'number' || bit === 0 || bit === all || (bit & (bit - 1)) !== 0 || (feats & bit) !== 0) continue;
      if (!validWith(all & ~bit)) needed.set(name, bit);
    }
    const union = (): number => [...needed.values()].reduce((a, x) => a | x, feats);
    for (const [name, bit] of [...needed]) {
      needed.delete(name);
      if (!validWith(union())) needed.set(name, bit);
    }
    throw new WasmLoadError(
      `the module uses WebAssembly features LSHAPES does not support: ${[...needed.keys()].join(', ') || 'unknown'} (supported: ${SUPPORTED_FEATURES})`,
    );
  } finally {
    captureEnd();
    m.setFeatures(feats);
  }
}

function firstLines(s: string, n = 6): string {
  const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.slice(0, n).join(' | ') + (lines.length > n ? ' | ...' : '');
}

function valType(b: Binaryen, t: number, what: string): ValType {
  if (t === b.i32) return 'i32';
  if (t === b.i64) return 'i64';
  if (t === b.f32) return 'f32';
  if (t === b.f64) return 'f64';
  throw new WasmLoadError(`${what} uses a value type LSHAPES does not support (supported: i32, i64, f32, f64)`);
}

function collectImports(b: Binaryen, m: BModule): ImportInfo[] {
  const out: ImportInfo[] = [];
  for (let i = 0; i < m.getNumFunctions(); i++) {
    const info = b.getFunctionInfo(m.getFunctionByIndex(i));
    if (!info.module) continue;
    const what = `import "${info.module}.${info.base}"`;
    if (info.module === RUNTIME_IMPORT_MODULE) {
      throw new WasmLoadError(`${what}: the import module name "${RUNTIME_IMPORT_MODULE}" is reserved for the runtime`);
    }
    const results = b.expandType(info.results);
    if (results.length > 1) throw new WasmLoadError(`${what} returns several values (multivalue is not supported)`);
    out.push({
      module: info.module,
      name: info.base ?? '',
      params: b.expandType(info.params).map((t) => valType(b, t, what)),
      results: results.map((t) => valType(b, t, what)),
    });
  }
  for (let i = 0; i < m.getNumGlobals(); i++) {
    const g = b.getGlobalInfo(m.getGlobalByIndex(i));
    if (g.module) throw new WasmLoadError(`the module imports a global ("${g.module}.${g.base}"): LSHAPES provides only function imports and memory`);
  }
  for (let i = 0; i < m.getNumTables(); i++) {
    const t = b.getTableInfo(m.getTableByIndex(i));
    if (t.module) throw new WasmLoadError(`the module imports a table ("${t.module}.${t.base}"): LSHAPES provides only function imports and memory`);
  }
  return out;
}

function collectExports(b: Binaryen, m: BModule): ExportInfo[] {
  const kinds = new Map<number, ExportKind>([
    [b.ExternalFunction, 'function'],
    [b.ExternalMemory, 'memory'],
    [b.ExternalGlobal, 'global'],
    [b.ExternalTable, 'table'],
  ]);
  const out: ExportInfo[] = [];
  for (let i = 0; i < m.getNumExports(); i++) {
    const e = b.getExportInfo(m.getExportByIndex(i));
    const kind = kinds.get(e.kind);
    if (!kind) throw new WasmLoadError(`export "${e.name}" has an unsupported kind`);
    out.push({ name: e.name, kind });
  }
  return out;
}

function prepareMemory(m: BModule): RuntimeLayout['memoryImport'] {
  if (!m.hasMemory()) {
    // Asyncify needs a memory for its data even if the program has none.
    m.setMemory(1, 1, null);
    return null;
  }
  const info = m.getMemoryInfo();
  if (info.shared) throw new WasmLoadError('the module uses a shared memory (threads are not supported)');
  if (info.is64) throw new WasmLoadError('the module uses a 64-bit memory (memory64 is not supported)');
  if (!info.module) return null;
  return { module: info.module, name: info.base ?? '', initialPages: info.initial, maximumPages: info.max };
}

function exportMemory(b: Binaryen, m: BModule): string {
  for (let i = 0; i < m.getNumExports(); i++) {
    const e = b.getExportInfo(m.getExportByIndex(i));
    if (e.kind === b.ExternalMemory) return e.name;
  }
  m.addMemoryExport(memoryInternalName(m), MEMORY_EXPORT);
  return MEMORY_EXPORT;
}

/** Binaryen's JS API has no getter for a memory's internal name; read it from the text form. */
function memoryInternalName(m: BModule): string {
  try {
    m.getMemoryInfo('0');
    return '0';
  } catch {
    // fall through
  }
  const text = m.emitText();
  const match = /\(memory \$(\S+)/.exec(text) ?? /\(import "[^"]*" "[^"]*" \(memory \$(\S+)/.exec(text);
  if (!match?.[1]) throw new WasmLoadError('internal error: cannot find the memory to export');
  return match[1];
}

function moveStart(b: Binaryen, m: BModule): string | null {
  const start = m.getStart();
  if (!start) return null;
  const name = b.getFunctionInfo(start).name;
  m.addFunctionExport(name, START_EXPORT);
  // The JS API cannot clear the start function: point it at an empty one instead.
  m.addFunction(NOSTART_INTERNAL, b.none, b.none, [], m.nop());
  m.setStart(m.getFunction(NOSTART_INTERNAL));
  return START_EXPORT;
}

function exportMutableGlobals(b: Binaryen, m: BModule): GlobalSlot[] {
  const out: GlobalSlot[] = [];
  for (let i = 0; i < m.getNumGlobals(); i++) {
    const g = b.getGlobalInfo(m.getGlobalByIndex(i));
    if (!g.mutable || g.name === FUEL_INTERNAL) continue;
    const exportName = GLOBAL_EXPORT_PREFIX + g.name;
    m.addGlobalExport(g.name, exportName);
    out.push({ name: g.name, exportName, type: valType(b, g.type, `global "${g.name}"`) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Preemption points

/** The raw C API of binaryen.js: fast child access for walking large modules. */
interface RawApi {
  _BinaryenExpressionGetId(e: number): number;
  _BinaryenExpressionGetType(e: number): number;
  _BinaryenBlockGetNumChildren(e: number): number;
  _BinaryenBlockGetChildAt(e: number, i: number): number;
  _BinaryenIfGetCondition(e: number): number;
  _BinaryenIfGetIfTrue(e: number): number;
  _BinaryenIfGetIfFalse(e: number): number;
  _BinaryenLoopGetBody(e: number): number;
  _BinaryenLoopSetBody(e: number, body: number): void;
  _BinaryenBreakGetCondition(e: number): number;
  _BinaryenBreakGetValue(e: number): number;
  _BinaryenSwitchGetCondition(e: number): number;
  _BinaryenSwitchGetValue(e: number): number;
  _BinaryenCallGetNumOperands(e: number): number;
  _BinaryenCallGetOperandAt(e: number, i: number): number;
  _BinaryenCallIndirectGetTarget(e: number): number;
  _BinaryenCallIndirectGetNumOperands(e: number): number;
  _BinaryenCallIndirectGetOperandAt(e: number, i: number): number;
  _BinaryenLocalSetGetValue(e: number): number;
  _BinaryenGlobalSetGetValue(e: number): number;
  _BinaryenLoadGetPtr(e: number): number;
  _BinaryenStoreGetPtr(e: number): number;
  _BinaryenStoreGetValue(e: number): number;
  _BinaryenUnaryGetValue(e: number): number;
  _BinaryenBinaryGetLeft(e: number): number;
  _BinaryenBinaryGetRight(e: number): number;
  _BinaryenSelectGetIfTrue(e: number): number;
  _BinaryenSelectGetIfFalse(e: number): number;
  _BinaryenSelectGetCondition(e: number): number;
  _BinaryenDropGetValue(e: number): number;
  _BinaryenReturnGetValue(e: number): number;
  _BinaryenMemoryGrowGetDelta(e: number): number;
  _BinaryenMemoryInitGetDest(e: number): number;
  _BinaryenMemoryInitGetOffset(e: number): number;
  _BinaryenMemoryInitGetSize(e: number): number;
  _BinaryenMemoryCopyGetDest(e: number): number;
  _BinaryenMemoryCopyGetSource(e: number): number;
  _BinaryenMemoryCopyGetSize(e: number): number;
  _BinaryenMemoryFillGetDest(e: number): number;
  _BinaryenMemoryFillGetValue(e: number): number;
  _BinaryenMemoryFillGetSize(e: number): number;
  _BinaryenFunctionGetBody(f: number): number;
  _BinaryenFunctionSetBody(f: number, body: number): void;
  _BinaryenExpressionFinalize(e: number): void;
  _BinaryenFunctionAddVar(f: number, type: number): number;
}

interface NamedApi {
  Loop: { getName(e: number): string | null; setName(e: number, n: string): void };
  Block: { getName(e: number): string | null };
  Break: { getName(e: number): string; setName(e: number, n: string): void };
  Switch: {
    getNames(e: number): string[];
    setNames(e: number, names: string[]): void;
    getDefaultName(e: number): string;
    setDefaultName(e: number, n: string): void;
  };
}

/** How a call-free loop is left other than by falling through: value-less branches we can reroute. */
interface ExitPlan {
  /** Labels outside the loop that branches inside it target, in first-seen order. */
  outward: string[];
  breaks: number[];
  switches: number[];
}

function insertPreemptionPoints(b: Binaryen, m: BModule, atFunctionEntry: boolean): void {
  const raw = b as unknown as RawApi;
  const api = b as unknown as NamedApi;
  const ids = b as unknown as Record<string, number>;
  const id = (n: string): number => {
    const v = ids[n];
    if (typeof v !== 'number') throw new Error(`binaryen: no ${n}`);
    return v;
  };
  const I = {
    Block: id('BlockId'), If: id('IfId'), Loop: id('LoopId'), Break: id('BreakId'), Switch: id('SwitchId'),
    Call: id('CallId'), CallIndirect: id('CallIndirectId'), LocalGet: id('LocalGetId'), LocalSet: id('LocalSetId'),
    GlobalGet: id('GlobalGetId'), GlobalSet: id('GlobalSetId'), Load: id('LoadId'), Store: id('StoreId'),
    Const: id('ConstId'), Unary: id('UnaryId'), Binary: id('BinaryId'), Select: id('SelectId'), Drop: id('DropId'),
    Return: id('ReturnId'), MemorySize: id('MemorySizeId'), MemoryGrow: id('MemoryGrowId'), Nop: id('NopId'),
    Unreachable: id('UnreachableId'), MemoryInit: id('MemoryInitId'), DataDrop: id('DataDropId'),
    MemoryCopy: id('MemoryCopyId'), MemoryFill: id('MemoryFillId'),
  };

  /** Pushes the children of `e` (kind `k`); false for an expression kind we do not know. */
  const children = (e: number, k: number, push: (c: number) => void): boolean => {
    switch (k) {
      case I.Block: {
        const n = raw._BinaryenBlockGetNumChildren(e);
        for (let i = 0; i < n; i++) push(raw._BinaryenBlockGetChildAt(e, i));
        return true;
      }
      case I.If:
        push(raw._BinaryenIfGetCondition(e));
        push(raw._BinaryenIfGetIfTrue(e));
        push(raw._BinaryenIfGetIfFalse(e));
        return true;
      case I.Loop:
        push(raw._BinaryenLoopGetBody(e));
        return true;
      case I.Break:
        push(raw._BinaryenBreakGetCondition(e));
        push(raw._BinaryenBreakGetValue(e));
        return true;
      case I.Switch:
        push(raw._BinaryenSwitchGetCondition(e));
        push(raw._BinaryenSwitchGetValue(e));
        return true;
      case I.Call: {
        const n = raw._BinaryenCallGetNumOperands(e);
        for (let i = 0; i < n; i++) push(raw._BinaryenCallGetOperandAt(e, i));
        return true;
      }
      case I.CallIndirect: {
        push(raw._BinaryenCallIndirectGetTarget(e));
        const n = raw._BinaryenCallIndirectGetNumOperands(e);
        for (let i = 0; i < n; i++) push(raw._BinaryenCallIndirectGetOperandAt(e, i));
        return true;
      }
      case I.LocalSet:
        push(raw._BinaryenLocalSetGetValue(e));
        return true;
      case I.GlobalSet:
        push(raw._BinaryenGlobalSetGetValue(e));
        return true;
      case I.Load:
        push(raw._BinaryenLoadGetPtr(e));
        return true;
      case I.Store:
        push(raw._BinaryenStoreGetPtr(e));
        push(raw._BinaryenStoreGetValue(e));
        return true;
      case I.Unary:
        push(raw._BinaryenUnaryGetValue(e));
        return true;
      case I.Binary:
        push(raw._BinaryenBinaryGetLeft(e));
        push(raw._BinaryenBinaryGetRight(e));
        return true;
      case I.Select:
        push(raw._BinaryenSelectGetIfTrue(e));
        push(raw._BinaryenSelectGetIfFalse(e));
        push(raw._BinaryenSelectGetCondition(e));
        return true;
      case I.Drop:
        push(raw._BinaryenDropGetValue(e));
        return true;
      case I.Return:
        push(raw._BinaryenReturnGetValue(e));
        return true;
      case I.MemoryGrow:
        push(raw._BinaryenMemoryGrowGetDelta(e));
        return true;
      case I.MemoryInit:
        push(raw._BinaryenMemoryInitGetDest(e));
        push(raw._BinaryenMemoryInitGetOffset(e));
        push(raw._BinaryenMemoryInitGetSize(e));
        return true;
      case I.MemoryCopy:
        push(raw._BinaryenMemoryCopyGetDest(e));
        push(raw._BinaryenMemoryCopyGetSource(e));
        push(raw._BinaryenMemoryCopyGetSize(e));
        return true;
      case I.MemoryFill:
        push(raw._BinaryenMemoryFillGetDest(e));
        push(raw._BinaryenMemoryFillGetValue(e));
        push(raw._BinaryenMemoryFillGetSize(e));
        return true;
      case I.LocalGet:
      case I.GlobalGet:
      case I.Const:
      case I.MemorySize:
      case I.Nop:
      case I.Unreachable:
      case I.DataDrop:
        return true;
      default:
        return false;
    }
  };

  const fuelGet = (): number => m.global.get(FUEL_INTERNAL, b.i32);
  const yieldCall = (): number => m.call(YIELD_INTERNAL, [], b.none);
  const typeOf = (e: number): number => raw._BinaryenExpressionGetType(e);

  // Fuel is the number of preemption points the thread may still pass. A point takes one; when
  // none is left (the counter went below zero) the point is not passed: the counter is put back
  // to zero and yield_check() called, which refills it (and the point is then passed) or
  // unwinds (and the point is passed after the thread resumes). So a slice of N fuel passes
  // exactly N points.
  const addFuel = (x: number): number => m.global.set(FUEL_INTERNAL, m.i32.add(fuelGet(), m.i32.const(x)));

  // Function entry: `fuel -= 1; if (fuel < 0) { fuel += 1; yield_check(); fuel -= 1 }`.
  const atEntry = (body: number): number =>
    m.block(
      null,
      [
        addFuel(-1),
        m.if(m.i32.lt_s(fuelGet(), m.i32.const(0)), m.block(null, [addFuel(1), yieldCall(), addFuel(-1)])),
        body,
      ],
      typeOf(body),
    );

  // Every loop `(loop $l B)` becomes
  //
  //   (loop $resume                         ;; the original node, renamed
  //     (block $exit                        ;; (result T) if the loop had one
  //       (block $pre
  //         (br $exit (loop $l CHECK B)))   ;; CHECK: fuel -= 1; br_if $pre (fuel < 0)
  //       (fuel += 1)                       ;; the point was not passed
  //       (call $yield_check)               ;; outside the hot loop
  //       (br $resume)))                    ;; re-enter $l at its header: nothing was lost
  //
  // Why this shape: Asyncify guards every piece of code of a function that may unwind, except
  // call-free subtrees, which it skips as a whole while rewinding. With the yield call outside
  // `$l`, a loop without calls stays free of Asyncify's per-iteration state checks.
  //
  // In a call-free loop the fuel also lives in a local while the loop runs (a global store per
  // iteration costs as much as a tight loop body): loaded at (re-)entry, stored back on every
  // way out: the fall-through, the preemption, and each value-less branch out of the loop,
  // which is rerouted through a trampoline `(block $out_i ...) (global.set fuel c) (br $X_i)`.
  // Loops left by a `return` or a branch carrying a value keep the global counter.
  let label = 0;

  const wrapGlobal = (loop: number): void => {
    const n = label++;
    const pre = `__lshapes_pre${n}`;
    const exit = `__lshapes_exit${n}`;
    const resume = `__lshapes_resume${n}`;
    const type = typeOf(loop);
    const body = raw._BinaryenLoopGetBody(loop);
    const check = m.block(null, [addFuel(-1), m.br(pre, m.i32.lt_s(fuelGet(), m.i32.const(0)))]);
    const inner = m.loop(api.Loop.getName(loop), m.block(null, [check, body], typeOf(body)));
    let wrapper: number;
    if (type === b.unreachable) {
      wrapper = m.block(null, [m.block(pre, [inner], b.none), addFuel(1), yieldCall(), m.br(resume)], b.unreachable);
    } else if (type === b.none) {
      wrapper = m.block(exit, [m.block(pre, [inner, m.br(exit)], b.none), addFuel(1), yieldCall(), m.br(resume)], b.none);
    } else {
      wrapper = m.block(exit, [m.block(pre, [m.br(exit, undefined, inner)], b.none), addFuel(1), yieldCall(), m.br(resume)], type);
    }
    api.Loop.setName(loop, resume);
    raw._BinaryenLoopSetBody(loop, wrapper);
    raw._BinaryenExpressionFinalize(loop);
  };

  /** The ways out of a call-free loop, or null if one of them cannot be rerouted. */
  const planExits = (loop: number): ExitPlan | null => {
    const defined = new Set<string>();
    const own = api.Loop.getName(loop);
    if (own) defined.add(own);
    const breaks: number[] = [];
    const switches: number[] = [];
    const todo: number[] = [raw._BinaryenLoopGetBody(loop)];
    const push = (c: number): void => {
      if (c) todo.push(c);
    };
    while (todo.length) {
      const e = todo.pop()!;
      const k = raw._BinaryenExpressionGetId(e);
      if (k === I.Return) return null;
      if (k === I.Block) {
        const name = api.Block.getName(e);
        if (name) defined.add(name);
      } else if (k === I.Break) breaks.push(e);
      else if (k === I.Switch) switches.push(e);
      if (!children(e, k, push)) return null;
    }
    const outward: string[] = [];
    const note = (name: string): void => {
      if (!defined.has(name) && !outward.includes(name)) outward.push(name);
    };
    const outBreaks = breaks.filter((e) => !defined.has(api.Break.getName(e)));
    const outSwitches = switches.filter((e) => [...api.Switch.getNames(e), api.Switch.getDefaultName(e)].some((x) => !defined.has(x)));
    for (const e of outBreaks) {
      if (raw._BinaryenBreakGetValue(e)) return null;
      note(api.Break.getName(e));
    }
    for (const e of outSwitches) {
      if (raw._BinaryenSwitchGetValue(e)) return null;
      for (const x of api.Switch.getNames(e)) note(x);
      note(api.Switch.getDefaultName(e));
    }
    return { outward, breaks: outBreaks, switches: outSwitches };
  };

  const wrapLocal = (fn: number, loop: number, c: number, plan: ExitPlan): void => {
    const n = label++;
    const pre = `__lshapes_pre${n}`;
    const exit = `__lshapes_exit${n}`;
    const resume = `__lshapes_resume${n}`;
    const tramp = new Map(plan.outward.map((x, i) => [x, `__lshapes_out${n}_${i}`]));
    const via = (x: string): string => tramp.get(x) ?? x;
    for (const e of plan.breaks) api.Break.setName(e, via(api.Break.getName(e)));
    for (const e of plan.switches) {
      api.Switch.setNames(e, api.Switch.getNames(e).map(via));
      api.Switch.setDefaultName(e, via(api.Switch.getDefaultName(e)));
    }
    const store = (): number => m.global.set(FUEL_INTERNAL, m.local.get(c, b.i32));
    const type = typeOf(loop);
    const body = raw._BinaryenLoopGetBody(loop);
    const check = m.block(null, [
      m.local.set(c, m.i32.sub(m.local.get(c, b.i32), m.i32.const(1))),
      m.br(pre, m.i32.lt_s(m.local.get(c, b.i32), m.i32.const(0))),
    ]);
    const inner = m.loop(api.Loop.getName(loop), m.block(null, [check, body], typeOf(body)));
    let core: number[];
    if (type === b.unreachable) core = [inner];
    else if (type === b.none) core = [inner, store(), m.br(exit)];
    else {
      const tmp = raw._BinaryenFunctionAddVar(fn, type);
      core = [m.local.set(tmp, inner), store(), m.br(exit, undefined, m.local.get(tmp, type))];
    }
    // innermost: the preemption path; each trampoline wraps what is inside it
    let seq: number[] = [
      m.block(pre, core, b.none),
      m.global.set(FUEL_INTERNAL, m.i32.add(m.local.get(c, b.i32), m.i32.const(1))),
      yieldCall(),
      m.br(resume),
    ];
    for (const [x, t] of tramp) seq = [m.block(t, seq, b.none), store(), m.br(x)];
    const wrapper =
      type === b.unreachable
        ? m.block(null, [m.local.set(c, fuelGet()), ...seq], b.unreachable)
        : m.block(exit, [m.local.set(c, fuelGet()), ...seq], type);
    api.Loop.setName(loop, resume);
    raw._BinaryenLoopSetBody(loop, wrapper);
    raw._BinaryenExpressionFinalize(loop);
  };

  // Per function: find the loops (pre-order) and whether each contains a call; a nested loop
  // counts as one, since it will contain the yield call.
  const loops: { e: number; calls: boolean }[] = [];
  const open: number[] = []; // indexes into `loops` of the loops being walked
  const stack: number[] = []; // expressions, or ~i to close loops[i]
  const push = (e: number): void => {
    if (e) stack.push(e);
  };
  const markCall = (): void => {
    const i = open[open.length - 1];
    if (i !== undefined) loops[i]!.calls = true;
  };
  for (let fi = 0; fi < m.getNumFunctions(); fi++) {
    const fn = m.getFunctionByIndex(fi);
    const info = b.getFunctionInfo(fn);
    if (info.module) continue; // an import
    loops.length = 0;
    push(raw._BinaryenFunctionGetBody(fn));
    while (stack.length) {
      const e = stack.pop()!;
      if (e < 0) {
        open.pop();
        markCall(); // the closed loop is a call site of its enclosing loop
        continue;
      }
      const k = raw._BinaryenExpressionGetId(e);
      if (k === I.Loop) {
        open.push(loops.length);
        stack.push(~loops.length);
        loops.push({ e, calls: false });
      } else if (k === I.Call || k === I.CallIndirect) {
        markCall();
      }
      if (!children(e, k, push)) {
        throw new WasmLoadError(`function "${info.name}" contains an instruction LSHAPES cannot instrument (expression id ${k})`);
      }
    }
    let counter: number | null = null;
    for (const { e, calls } of loops) {
      const plan = calls ? null : planExits(e);
      if (plan) wrapLocal(fn, e, (counter ??= raw._BinaryenFunctionAddVar(fn, b.i32)), plan);
      else wrapGlobal(e);
    }
    if (atFunctionEntry) raw._BinaryenFunctionSetBody(fn, atEntry(raw._BinaryenFunctionGetBody(fn)));
  }
}

// ---------------------------------------------------------------------------------------------
// Byte-level edits of the emitted binary

function mib(bytes: number): string {
  const m = bytes / (1 << 20);
  return `${Number.isInteger(m) ? m : m.toFixed(1)} MiB`;
}

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

function readLeb(bytes: Uint8Array, at: number): [value: number, next: number] {
  let value = 0;
  let mul = 1;
  for (;;) {
    const byte = bytes[at++];
    if (byte === undefined) throw new WasmLoadError('internal error: truncated LEB128 in the rewritten module');
    value += (byte & 0x7f) * mul;
    mul *= 128;
    if (!(byte & 0x80)) return [value, at];
  }
}

function appendCustomSection(bytes: Uint8Array, name: string, content: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const body = [...leb(nameBytes.length), ...nameBytes];
  const size = body.length + content.length;
  const head = [0x00, ...leb(size), ...body];
  const out = new Uint8Array(bytes.length + head.length + content.length);
  out.set(bytes);
  out.set(head, bytes.length);
  out.set(content, bytes.length + head.length);
  return out;
}

/** Lowers the maximum of the (one, defined) memory in the memory section to `maxPages`. */
function clampMemory(bytes: Uint8Array, maxPages: number): Uint8Array {
  let at = 8;
  while (at < bytes.length) {
    const id = bytes[at]!;
    const [size, contentStart] = readLeb(bytes, at + 1);
    const end = contentStart + size;
    if (id === 5) {
      const [count, p] = readLeb(bytes, contentStart);
      if (count !== 1) throw new WasmLoadError(`internal error: ${count} memories in the rewritten module`);
      const flags = bytes[p]!;
      if (flags !== 0 && flags !== 1) throw new WasmLoadError(`internal error: unexpected memory limits flags ${flags}`);
      const [initial, q] = readLeb(bytes, p + 1);
      const max = flags === 1 ? readLeb(bytes, q)[0] : Infinity;
      if (max <= maxPages) return bytes;
      const content = [...leb(1), 0x01, ...leb(initial), ...leb(maxPages)];
      const section = [5, ...leb(content.length), ...content];
      const out = new Uint8Array(bytes.length - (end - at) + section.length);
      out.set(bytes.subarray(0, at));
      out.set(section, at);
      out.set(bytes.subarray(end), at + section.length);
      return out;
    }
    at = end;
  }
  throw new WasmLoadError('internal error: the rewritten module has no memory section');
}

function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
