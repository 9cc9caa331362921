// Sender-based message logging (Johnson & Zwaenepoel, "Sender-Based Message Logging", FTCS 1987):
// a peer keeps, in its own memory, the `deliver`s it routed for the sends, calls and replies of
// the processes it hosts. When a receiver is restarted from its checkpoint, the messages it took
// after that checkpoint went with its dead copy; the new copy's per-sender last `seq` (in its
// image) says which: every peer sends again, from this log, those numbered above it. The
// receiver's seq check drops what it already has, so a message is taken at most once and, within
// the log's bounds, at least once.
//
// Bounded two ways, the oldest entry dropped first: by age (`windowMs`: a checkpoint interval
// plus a restart, see messageLogWindowMs) and by bytes (`maxBytes`, this peer's whole log). A
// message dropped early is lost for a receiver restarted from a checkpoint older than it (the
// restart runs as before this log: that receiver waits, or times out). A receiver that exited
// needs nothing: its entries are dropped (`drop`).
import type { Pid } from '../../kernel/process/protocol.ts';

/** This peer's log takes at most this many bytes of message data (plus a small per-entry cost). */
export const MESSAGE_LOG_BYTES = 32 << 20;
/** What an entry costs besides its data (ids, numbers, the map slot): counted so empty messages are bounded too. */
const ENTRY_OVERHEAD = 128;

/** One logged message: `msg` is what was routed (sent again as it is, deps included). */
export interface Logged<M> {
  to: Pid;
  from: Pid;
  seq: number;
  at: number;
  bytes: number;
  msg: M;
}

export class MessageLog<M> {
  /** Oldest first (entries are added in the order they were routed, so in `seq` order per sender). */
  private queue: (Logged<M> | undefined)[] = [];
  private head = 0;
  private total = 0;
  /** Live entries per receiver: `drop` and `since` skip receivers with none. */
  private counts = new Map<Pid, number>();

  constructor(
    private readonly windowMs: number,
    private readonly maxBytes = MESSAGE_LOG_BYTES,
  ) {}

  get bytes(): number {
    return this.total;
  }

  get size(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c;
    return n;
  }

  /** Logs a message for `to` numbered `seq` by its sender `from`, routed at `now`. */
  add(to: Pid, from: Pid, seq: number, dataBytes: number, msg: M, now: number): void {
    const e: Logged<M> = { to, from, seq, at: now, bytes: dataBytes + ENTRY_OVERHEAD, msg };
    this.queue.push(e);
    this.total += e.bytes;
    this.counts.set(to, (this.counts.get(to) ?? 0) + 1);
    this.prune(now);
  }

  /**
   * The logged messages for `to` that a copy of it whose last `seq` per sender is `lastSeen` has
   * not taken (a sender it has no number for: all of them), each sender's in `seq` order.
   */
  since(to: Pid, lastSeen: ReadonlyMap<Pid, number>, now: number): Logged<M>[] {
    this.prune(now);
    if (!this.counts.has(to)) return [];
    const out: Logged<M>[] = [];
    for (let i = this.head; i < this.queue.length; i++) {
      const e = this.queue[i];
      if (e && e.to === to && e.seq > (lastSeen.get(e.from) ?? 0)) out.push(e);
    }
    // Already each sender's in seq order: entries are added in routing order (see `queue`).
    return out;
  }

  /** `to` ended: nothing of it is needed any more. */
  drop(to: Pid): void {
    if (!this.counts.delete(to)) return;
    for (let i = this.head; i < this.queue.length; i++) {
      const e = this.queue[i];
      if (e?.to === to) {
        this.total -= e.bytes;
        this.queue[i] = undefined;
      }
    }
    this.compact();
  }

  /** Drops entries older than the window, then the oldest ones while over the byte bound. */
  prune(now: number): void {
    while (this.head < this.queue.length) {
      const e = this.queue[this.head];
      if (e && e.at + this.windowMs > now && this.total <= this.maxBytes) break;
      this.queue[this.head++] = undefined;
      if (e) this.forget(e);
    }
    this.compact();
  }

  private forget(e: Logged<M>): void {
    this.total -= e.bytes;
    const n = (this.counts.get(e.to) ?? 1) - 1;
    if (n > 0) this.counts.set(e.to, n);
    else this.counts.delete(e.to);
  }

  /** Skips holes at the head; reclaims the array once half of it is behind the head. */
  private compact(): void {
    while (this.head < this.queue.length && this.queue[this.head] === undefined) this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
