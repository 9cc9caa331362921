// Errors of the WebAssembly thread runtime. Each one says what went wrong in words a user of
// the shell can act on; none of them is a bare engine or Binaryen message.

/** The bytes are not a program we can run: not wasm, invalid, unsupported features, bad imports. */
export class WasmLoadError extends Error {
  override readonly name = 'WasmLoadError';
}

/** A program's import could not be bound to a host function (detected at instantiate). */
export class WasmLinkError extends WasmLoadError {
  constructor(
    message: string,
    readonly importModule: string,
    readonly importName: string,
  ) {
    super(message);
  }
}

/** A snapshot was refused: corrupt, truncated, wrong version, or taken from another module. */
export class SnapshotError extends Error {
  override readonly name = 'SnapshotError';
}

/** A host function threw (something other than ProcessExit) or its Promise rejected. */
export class HostCallError extends Error {
  override readonly name = 'HostCallError';
  constructor(
    readonly importModule: string,
    readonly importName: string,
    override readonly cause: unknown,
  ) {
    super(`host call ${importModule}.${importName} failed: ${describe(cause)}`);
  }
}

/** The runtime was used wrongly (run() while running, snapshot() of an exited thread, ...). */
export class ThreadStateError extends Error {
  override readonly name = 'ThreadStateError';
}

export function describe(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
