// Executors on the current JS thread: the ExecutionDriver of unit tests, the simulator and the
// Node CLI. Messages in both directions are delivered asynchronously and in order (a macrotask,
// like postMessage) and structured-cloned when the host can, so code that works here does not
// depend on sharing objects with the executor. Between two slices the executors yield with
// setImmediate, or a MessageChannel ping where there is none (not setTimeout(0): browsers clamp
// it to 4 ms).

import { Executor, type ExecutorOptions } from './executor.ts';
import type { ExecutionDriver, FromExecutor, ToExecutor } from './protocol.ts';

export type InProcessOptions = Omit<ExecutorOptions, 'post' | 'clock' | 'yieldToHost'> & {
  /** Default performance (or Date). */
  clock?: { now(): number };
  /** Default: a macrotask (setImmediate or a MessageChannel ping). */
  yieldToHost?: () => Promise<void>;
  /** Copy messages as postMessage would (default true where structuredClone exists). */
  clone?: boolean;
};

type Task = () => void;

/** Runs `fn` in a macrotask, without setTimeout's clamping. */
export function macrotask(): (fn: Task) => void {
  const g = globalThis as { setImmediate?: (fn: Task) => unknown };
  if (typeof g.setImmediate === 'function') {
    const setImmediate = g.setImmediate;
    return (fn) => void setImmediate(fn);
  }
  if (typeof MessageChannel === 'function') {
    const channel = new MessageChannel();
    const queue: Task[] = [];
    channel.port1.onmessage = () => queue.shift()?.();
    return (fn) => {
      queue.push(fn);
      channel.port2.postMessage(null);
    };
  }
  return (fn) => void setTimeout(fn, 0);
}

/** An ordered queue drained in one macrotask per batch. */
class Mailbox<T> {
  private queue: T[] = [];
  private scheduled = false;

  constructor(
    private readonly schedule: (fn: Task) => void,
    private readonly deliver: (msg: T) => void,
  ) {}

  push(msg: T): void {
    this.queue.push(msg);
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => this.drain());
  }

  private drain(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    for (const msg of batch) {
      try {
        this.deliver(msg);
      } catch {
        // a failing receiver must not lose the rest of the batch
      }
    }
  }
}

export class InProcessExecution implements ExecutionDriver {
  readonly count: number;
  /** The executors, for tests and diagnostics. */
  readonly executors: readonly Executor[];
  private readonly toExecutor: Mailbox<{ i: number; msg: ToExecutor }>;
  private readonly fromExecutor: Mailbox<{ i: number; msg: FromExecutor }>;
  private onMessage: ((executor: number, msg: FromExecutor) => void) | null = null;
  private early: { i: number; msg: FromExecutor }[] = [];

  constructor(count = 1, options: InProcessOptions = {}) {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`InProcessExecution needs at least one executor, not ${count}`);
    this.count = count;
    const later = macrotask();
    const clone = options.clone ?? typeof structuredClone === 'function';
    const copy = <T>(x: T): T => (clone ? structuredClone(x) : x);
    const clock = options.clock ?? (globalThis.performance ?? Date);
    const yieldToHost = options.yieldToHost ?? (() => new Promise<void>((resolve) => later(resolve)));
    const { clone: _clone, clock: _clock, yieldToHost: _yield, ...rest } = options;
    this.toExecutor = new Mailbox(later, ({ i, msg }) => this.executors[i]!.handle(msg));
    this.fromExecutor = new Mailbox(later, (m) => {
      if (this.onMessage) this.onMessage(m.i, m.msg);
      else this.early.push(m);
    });
    this.executors = Array.from(
      { length: count },
      (_, i) =>
        new Executor({
          ...rest,
          clock,
          yieldToHost,
          post: (msg) => this.fromExecutor.push({ i, msg: copy(msg) }),
        }),
    );
    this.copy = copy;
  }

  private readonly copy: <T>(x: T) => T;

  post(executor: number, msg: ToExecutor): void {
    if (!Number.isInteger(executor) || executor < 0 || executor >= this.count) {
      throw new RangeError(`no executor ${executor} (there are ${this.count})`);
    }
    this.toExecutor.push({ i: executor, msg: this.copy(msg) });
  }

  attach(onMessage: (executor: number, msg: FromExecutor) => void): void {
    this.onMessage = onMessage;
    const early = this.early;
    this.early = [];
    for (const m of early) onMessage(m.i, m.msg);
  }

  /** Live processes over all executors. */
  get size(): number {
    return this.executors.reduce((n, e) => n + e.size, 0);
  }
}
