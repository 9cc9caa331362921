// The contract between a WebAssembly thread (src/kernel/wasm) and the host calls it imports
// (WASI in src/kernel/wasi, the `lshapes` module later). A host call either answers at once or
// returns a Promise: the thread then unwinds its stack with Asyncify, the kernel gets control
// back, and the thread rewinds and resumes with the answer once the Promise settles.

/** What an import returns: a value now, or later (the thread blocks until then). */
export type HostResult = number | bigint | void | Promise<number | bigint | void>;

export type HostFunction = (...args: (number | bigint)[]) => HostResult;

/** Gives a host call the thread's current linear memory (it can change after a restore or grow). */
export interface MemoryAccess {
  memory(): WebAssembly.Memory;
}

/** A set of imports for one module name, e.g. `wasi_snapshot_preview1`. */
export interface HostModule {
  readonly name: string;
  functions(mem: MemoryAccess): Record<string, HostFunction>;
  /** Serializable state that belongs in the thread's snapshot (WASI: the fd table, args, env). */
  snapshot(): unknown;
  restore(state: unknown): void;
}

/** Thrown by a host call to end the thread (proc_exit), carried out of the instance. */
export class ProcessExit extends Error {
  constructor(readonly code: number) {
    super(`process exited with code ${code}`);
  }
}
