// A tab's executors: dedicated Web Workers created by the kernel worker, one per core, so one
// tab uses all of its machine's cores.
import type { FromExecutor } from '../../kernel/process/protocol.ts';
import { WorkerExecution, type WorkerExecutionOptions } from '../common/worker-execution.ts';

/** `options.clusterRoot`: the cluster filesystem's root node, when the Scheduler is given one. */
export function browserExecution(count: number, options: WorkerExecutionOptions = {}): WorkerExecution {
  return new WorkerExecution(count, (i) => {
    const w = new Worker(new URL('./exec-worker.ts', import.meta.url), { type: 'module', name: `lshapes-exec-${i}` });
    return {
      post: (msg) => w.postMessage(msg),
      listen: (onMessage, onError) => {
        w.onmessage = (ev: MessageEvent) => onMessage(ev.data as FromExecutor);
        w.onerror = (ev: ErrorEvent) => {
          ev.preventDefault();
          onError(ev.message || 'the worker failed');
        };
      },
      terminate: () => w.terminate(),
    };
  }, options);
}
