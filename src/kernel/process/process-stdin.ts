// A process's interactive stdin: QueueInput's behaviour (reads block until `push` or `end`) plus
// what migration needs: the bytes received and not read yet, and whether input ended, can be
// taken out (freeze) and put into a new one (thaw).

import type { MaybePromise } from '../wasi/co.ts';
import type { InputStream } from '../wasi/streams.ts';
import { concat } from '../wasi/vfs.ts';

/** Stdin as it travels in a process image. */
export interface StdinState {
  /** Received and not read yet. */
  data: Uint8Array;
  ended: boolean;
}

export class ProcessStdin implements InputStream {
  private buffered: Uint8Array[] = [];
  private ended = false;
  private waiters: (() => void)[] = [];

  constructor(state?: StdinState) {
    if (state) {
      if (state.data.length) this.buffered.push(state.data.slice());
      this.ended = state.ended;
    }
  }

  push(data: Uint8Array): void {
    if (this.ended) throw new Error('input already ended');
    if (data.length === 0) return;
    this.buffered.push(data.slice());
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  /** What a freeze carries: nothing is consumed. */
  state(): StdinState {
    return { data: concat(this.buffered, this.available()).slice(), ended: this.ended };
  }

  read(max: number): MaybePromise<Uint8Array> {
    if (this.buffered.length > 0 || this.ended) return this.take(max);
    return this.whenReady().then(() => this.read(max));
  }

  readable(): MaybePromise<number> {
    if (this.buffered.length > 0 || this.ended) return this.available();
    return this.whenReady().then(() => this.readable());
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
}
