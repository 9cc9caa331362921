// Virtual time for the simulator: one event queue for the whole run, ordered by
// (time, insertion sequence) so that events due at the same instant always run in the order
// they were scheduled — the key to a run replaying exactly.
// Each peer sees the queue through its own Clock, tagged with an owner; crashing a peer kills
// its owner, and every timer it had pending silently never fires (like a killed process).
import type { Cancel, Clock } from '../../kernel/types.ts';

/** What wallNow() reads at virtual time 0: a fixed date, so incarnations replay too. */
export const SIM_EPOCH_MS = Date.UTC(2025, 0, 1);

/** Whose event this is. A dead owner's events are skipped and it cannot schedule more. */
export class TimerOwner {
  alive = true;
  constructor(readonly name: string) {}
}

interface Scheduled {
  at: number;
  seq: number;
  fn: () => void;
  owner: TimerOwner | undefined;
  cancelled: boolean;
}

export class Scheduler {
  private time = 0;
  private seq = 0;
  /** A binary min-heap on (at, seq). */
  private readonly heap: Scheduled[] = [];

  get now(): number {
    return this.time;
  }

  /** Schedules `fn` at absolute virtual time `at` (not before now). */
  at(at: number, fn: () => void, owner?: TimerOwner): Cancel {
    if (owner && !owner.alive) return noop;
    const ev: Scheduled = { at: Math.max(this.time, Number.isFinite(at) ? at : this.time), seq: this.seq++, fn, owner, cancelled: false };
    this.push(ev);
    return () => {
      ev.cancelled = true;
    };
  }

  after(ms: number, fn: () => void, owner?: TimerOwner): Cancel {
    return this.at(this.time + Math.max(0, ms), fn, owner);
  }

  /** Time of the next live event, if any. */
  peek(): number | undefined {
    this.skipDead();
    return this.heap[0]?.at;
  }

  /** Advances the clock to the next live event due at or before `until` and returns it; does not run it. */
  pop(until: number): (() => void) | undefined {
    this.skipDead();
    const top = this.heap[0];
    if (!top || top.at > until) return undefined;
    this.take();
    this.time = top.at;
    return top.fn;
  }

  /** Moves the clock forward without running anything (only ever forward). */
  advanceTo(t: number): void {
    if (t > this.time) this.time = t;
  }

  /**
   * Runs events synchronously up to `until`, for tests of synchronous code. Microtasks run
   * only after it returns; use Simulation.run when the code under test is asynchronous.
   */
  runSync(until: number): void {
    for (let fn = this.pop(until); fn; fn = this.pop(until)) fn();
    this.advanceTo(until);
  }

  /**
   * Runs events up to `until`, letting every microtask an event queued (and every one those
   * queue) settle before the next event: one setImmediate turn is that barrier, because Node
   * drains the whole microtask queue before any macrotask. Counting `await` hops instead would
   * silently break the day a promise chain in the kernel gets one hop longer.
   * Returns the number of events run.
   */
  async run(until: number): Promise<number> {
    let n = 0;
    // Work started outside the loop (a test sending a message) may still be queueing events.
    await settle();
    for (let fn = this.pop(until); fn; fn = this.pop(until)) {
      fn();
      n++;
      await settle();
    }
    this.advanceTo(until);
    return n;
  }

  /** Pending live events (for tests and stats). */
  get size(): number {
    let n = 0;
    for (const e of this.heap) if (!e.cancelled && (!e.owner || e.owner.alive)) n++;
    return n;
  }

  /** A peer's view of the queue. */
  clockFor(owner: TimerOwner): Clock {
    return {
      now: () => this.time,
      wallNow: () => SIM_EPOCH_MS + this.time,
      setTimeout: (fn, ms) => this.after(ms, fn, owner),
    };
  }

  private skipDead(): void {
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      if (!top.cancelled && (!top.owner || top.owner.alive)) return;
      this.take();
    }
  }

  private push(ev: Scheduled): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(ev, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = ev;
  }

  private take(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && before(h[r]!, h[l]!) ? r : l;
      if (!before(h[c]!, last)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}

function before(a: Scheduled, b: Scheduled): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

function noop(): void {}

/** Resolves after every microtask queued so far, and all they queue, has run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
