// The kernel's executors as workers (a tab's execution Web Workers, a Node peer's worker threads):
// an ExecutionDriver that posts to them and, when one dies, ends its processes with a clear
// message and starts a fresh worker in its place. Every worker it starts (a replacement too) is
// first told the cluster filesystem's root, so its processes reach /cluster by `fs` messages.
import type { NodeId } from '../../kernel/wasi/vfs.ts';
import { EXIT_TRAPPED, type ExecutionDriver, type FromExecutor, type Pid, type ToExecutor } from '../../kernel/process/protocol.ts';

/** One worker, as the host creates it. */
export interface ExecWorker {
  post(msg: ToExecutor): void;
  /** Messages from the worker; `error` when it died (crash, out of memory). */
  listen(onMessage: (msg: FromExecutor) => void, onError: (reason: string) => void): void;
  terminate(): void;
}

export interface WorkerExecutionOptions {
  /** The root node of the cluster filesystem the Scheduler serves (`SchedulerDevices.files.root`); without it processes have no /cluster. */
  clusterRoot?: NodeId;
}

export class WorkerExecution implements ExecutionDriver {
  private readonly workers: ExecWorker[] = [];
  /** Which processes live in which worker, to report them when it dies. */
  private readonly live: Set<Pid>[] = [];
  private onMessage: ((executor: number, msg: FromExecutor) => void) | undefined;
  private closed = false;

  constructor(
    readonly count: number,
    private readonly create: (index: number) => ExecWorker,
    private readonly options: WorkerExecutionOptions = {},
  ) {
    for (let i = 0; i < count; i++) {
      this.live.push(new Set());
      this.workers.push(this.spawn(i));
    }
  }

  attach(onMessage: (executor: number, msg: FromExecutor) => void): void {
    this.onMessage = onMessage;
  }

  post(executor: number, msg: ToExecutor): void {
    if (msg.t === 'start') this.live[executor]?.add(msg.spec.pid);
    this.workers[executor]?.post(msg);
  }

  terminate(): void {
    this.closed = true;
    for (const w of this.workers) w.terminate();
  }

  private spawn(i: number): ExecWorker {
    const w = this.create(i);
    w.listen(
      (msg) => {
        if (this.workers[i] !== w) return;
        if (msg.t === 'exit') this.live[i]!.delete(msg.pid);
        this.onMessage?.(i, msg);
      },
      (reason) => {
        if (this.closed || this.workers[i] !== w) return;
        w.terminate();
        this.workers[i] = this.spawn(i);
        for (const pid of this.live[i]!) {
          this.onMessage?.(i, { t: 'exit', pid, code: EXIT_TRAPPED, message: `its execution worker died: ${reason}`, cpuMs: 0 });
        }
        this.live[i]!.clear();
      },
    );
    if (this.options.clusterRoot !== undefined) w.post({ t: 'files', root: this.options.clusterRoot });
    return w;
  }
}
