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
 */
export class QueueInput implements InputStream {
  private buffered: Uint8Array[] = [];
  private ended = false;
  private waiters: (() => void)[] = [];

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
    return concat(out, n).slice();
  }

  readable(): MaybePromise<number> {
    if (this.buffered.length > 0 || this.ended) return this.available();
    return this.whenReady().then(() => this.readable());
  }
}
