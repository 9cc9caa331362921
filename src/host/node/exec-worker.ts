// A Node peer's execution worker thread: runs processes for its kernel thread (one per core).
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { Executor } from '../../kernel/process/executor.ts';
import type { FromExecutor, ToExecutor } from '../../kernel/process/protocol.ts';

const port = parentPort!;
const executor = new Executor({
  post: (msg: FromExecutor) => port.postMessage(msg),
  clock: performance,
  yieldToHost: () => new Promise<void>((resolve) => setImmediate(resolve)),
});
port.on('message', (msg: ToExecutor) => executor.handle(msg));
