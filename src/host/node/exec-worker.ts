// A Node peer's execution worker thread: runs processes for its kernel thread (one per core).
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { createHash } from 'node:crypto';
import { Executor } from '../../kernel/process/executor.ts';
import type { FromExecutor, ToExecutor } from '../../kernel/process/protocol.ts';

const port = parentPort!;
const executor = new Executor({
  post: (msg: FromExecutor) => port.postMessage(msg),
  clock: performance,
  yieldToHost: () => new Promise<void>((resolve) => setImmediate(resolve)),
  // Native SHA-256: a frozen image's checksum (a migration's downtime) and the rewrite cache's.
  sha256: (bytes) => new Uint8Array(createHash('sha256').update(bytes).digest()),
});
port.on('message', (msg: ToExecutor) => executor.handle(msg));
