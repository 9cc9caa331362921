// The streams behind stdin, stdout and stderr (fds 0-2), injected by whoever starts the process.

import type { MaybePromise } from './co.ts';
import { concat } from './vfs.ts';

export interface InputStream {
  /**
   * Up to `max` bytes (at least one), or none at end of input. May return a Promise: the thread
   * then blocks until input arrives.
   */
  read(max: number): MaybePromise<Uint8Array>;
  /**
   * How many bytes a read would return without blocking, 0 at end of input; a Promise when
   * nothing is there yet (used by poll_oneoff). Absent: always ready.
   */
  readable?(): MaybePromise<number>;
}

export interface OutputStream {
  /** Takes all of `data` (the stream owns the array). A Promise blocks the writer. */
  write(data: Uint8Array): MaybePromise<void>;
}

/** Input that is all there from the start. */
export function bytesInput(data: Uint8Array | string): InputStream {
  let rest = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  return {
    read(max) {
      const out = rest.subarray(0, max);
      rest = rest.subarray(out.length);
      return out.slice();
    },
    readable() {
      return rest.length;
    },
  };
}

export const emptyInput: InputStream = bytesInput(new Uint8Array(0));

export const nullOutput: OutputStream = { write() {} };

/** Output collected in memory. */
export class CollectOutput implements OutputStream {
  private chunks: Uint8Array[] = [];

  write(data: Uint8Array): void {
    this.chunks.push(data);
  }

  bytes(): Uint8Array {
    return concat(this.chunks);
  }

  text(): string {
    return new TextDecoder().decode(this.bytes());
  }
}

/** A QueueInput's contents as a process image carries them (migration). */
export interface QueueInputState {
  /** Received and not read yet. */
  data: Uint8Array;
  ended: boolean;
}

/**
 * Input fed while the program runs (a terminal): reads block (a Promise) until `push` or `end`.
 * `state()` and the constructor move what was received and not read yet to another one (a
 * process frozen on one peer and thawed on another keeps its unread stdin).
 *
 * Fork On Wait rolls a process back to a twin taken earlier: `consumed` marks a point, `keep()`
 * retains what is read from then on, `rewind(mark)` puts it back in front, `forget(mark)` drops
 * what no twin needs any more. A rolled-back thread must not read through its old reader:
 * `reader()` gives each incarnation its own, and `detach()` makes its pending reads never return.
 */
export class QueueInput implements InputStream {
  private buffered: Uint8Array[] = [];
  private ended = false;
  private waiters: (() => void)[] = [];
  /** Bytes read so far (a mark for rewind). */
  private taken = 0;
  /** What was read since `keptFrom`, while some twin may need it back; null: nothing kept. */
  private kept: Uint8Array[] | null = null;
  private keptFrom = 0;

  constructor(state?: QueueInputState) {
    if (state) {
      if (state.data.length) this.buffered.push(state.data.slice());
      this.ended = state.ended;
    }
  }

  /** What was received and not read yet, and whether input ended; nothing is consumed. */
  state(): QueueInputState {
    return { data: concat(this.buffered, this.available()).slice(), ended: this.ended };
  }

  push(data: Uint8Array | string): void {
    if (this.ended) throw new Error('input already ended');
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data.slice();
    if (bytes.length === 0) return;
    this.buffered.push(bytes);
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private available(): number {
    return this.buffered.reduce((n, c) => n + c.length, 0);
  }

  private whenReady(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  read(max: number): MaybePromise<Uint8Array> {
    if (this.buffered.length > 0 || this.ended) return this.take(max);
    return this.whenReady().then(() => this.read(max));
  }

  private take(max: number): Uint8Array {
    const out: Uint8Array[] = [];
    let n = 0;
    while (this.buffered.length > 0 && n < max) {
      const first = this.buffered[0]!;
      const part = first.subarray(0, max - n);
      out.push(part);
      n += part.length;
      if (part.length === first.length) this.buffered.shift();
      else this.buffered[0] = first.subarray(part.length);
    }
    const bytes = concat(out, n).slice();
    this.taken += bytes.length;
    if (this.kept && bytes.length) this.kept.push(bytes);
    return bytes;
  }

  /** Bytes read so far: a mark for rewind(). */
  get consumed(): number {
    return this.taken;
  }

  /** Retains what is read from now on (until forget()), so rewind() can put it back. */
  keep(): void {
    if (this.kept) return;
    this.kept = [];
    this.keptFrom = this.taken;
  }

  /** Puts back everything read after `mark` (a `consumed` value taken while keeping). */
  rewind(mark: number): void {
    if (!this.kept || mark < this.keptFrom || mark > this.taken) throw new RangeError(`cannot rewind stdin to ${mark}`);
    const all = concat(this.kept);
    const at = mark - this.keptFrom;
    const back = all.subarray(at);
    this.kept = at > 0 ? [all.slice(0, at)] : [];
    if (back.length) this.buffered.unshift(back.slice());
    this.taken = mark;
    if (back.length) this.wake();
  }

  /** No twin needs what was read before `mark` (Infinity: none needs anything; stop keeping). */
  forget(mark: number): void {
    if (!this.kept) return;
    if (mark === Infinity) {
      this.kept = null;
      return;
    }
    if (mark <= this.keptFrom) return;
    const all = concat(this.kept);
    const cut = Math.min(all.length, mark - this.keptFrom);
    this.kept = cut < all.length ? [all.slice(cut)] : [];
    this.keptFrom += cut;
  }

  /** A reader for one incarnation of the process; after detach() its pending reads never return. */
  reader(): InputStream & { detach(): void } {
    let detached = false;
    const never = new Promise<never>(() => {});
    const gate = <T>(f: () => MaybePromise<T>): MaybePromise<T> => {
      if (this.buffered.length > 0 || this.ended) return f();
      return this.whenReady().then(() => (detached ? never : gate(f)));
    };
    return {
      read: (max) => (detached ? never : gate(() => this.take(max))),
      readable: () => (detached ? never : gate(() => this.available())),
      detach: () => {
        detached = true;
      },
    };
  }

  readable(): MaybePromise<number> {
    if (this.buffered.length > 0 || this.ended) return this.available();
    return this.whenReady().then(() => this.readable());
  }
}
