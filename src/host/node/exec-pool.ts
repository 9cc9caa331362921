// A Node peer's executors: worker threads, one per execution slot.
import { Worker } from 'node:worker_threads';
import type { FromExecutor } from '../../kernel/process/protocol.ts';
import { WorkerExecution, type WorkerExecutionOptions } from '../common/worker-execution.ts';

/** `options.clusterRoot`: the cluster filesystem's root node, when the Scheduler is given one. */
export function nodeExecution(count: number, options: WorkerExecutionOptions = {}): WorkerExecution {
  return new WorkerExecution(count, () => {
    const w = new Worker(new URL('./exec-worker-boot.mjs', import.meta.url));
    w.unref();
    return {
      post: (msg) => w.postMessage(msg),
      listen: (onMessage, onError) => {
        w.on('message', (msg: FromExecutor) => onMessage(msg));
        w.on('error', (err: Error) => onError(err.message));
        w.on('exit', (code) => onError(`exited with code ${code}`));
      },
      terminate: () => void w.terminate(),
    };
  }, options);
}
