// The WebAssembly thread runtime: load-time rewriting (rewrite.ts), threads driven by Asyncify
// (thread.ts), and their snapshots (snapshot.ts). Host calls implement host-calls.ts.
export { ProcessExit, type HostFunction, type HostModule, type HostResult, type MemoryAccess } from './host-calls.ts';
export { HostCallError, SnapshotError, ThreadStateError, WasmLinkError, WasmLoadError } from './errors.ts';
export { clearRewriteCache, loadBinaryen, rewriteCacheSize, rewriteModule, SUPPORTED_FEATURES, type RewriteOptions } from './rewrite.ts';
export {
  WasmThread,
  type RestoreOptions,
  type RunResult,
  type Slice,
  type ThreadExit,
  type ThreadOptions,
  type ThreadState,
} from './thread.ts';
export {
  decodeSnapshot,
  encodeSnapshot,
  SNAPSHOT_FORMAT_VERSION,
  type MemoryImage,
  type PendingCall,
  type SettledCall,
  type ThreadSnapshot,
} from './snapshot.ts';
export type { ExportInfo, ImportInfo, RewrittenModule, RuntimeLayout, ValType } from './types.ts';
