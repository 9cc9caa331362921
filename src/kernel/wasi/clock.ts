// Clocks for WASI, injected so a simulator can run many kernels on virtual time.

import type { MaybePromise } from './co.ts';

export const ClockId = { REALTIME: 0, MONOTONIC: 1, PROCESS_CPUTIME: 2, THREAD_CPUTIME: 3 } as const;

export interface WasiClock {
  /** Nanoseconds: since the Unix epoch for REALTIME, since an arbitrary origin for the others. */
  now(id: number): bigint;
  /** Resolution in nanoseconds. */
  resolution(id: number): bigint;
  /**
   * Wait `ns` nanoseconds of monotonic time. Returns nothing when the wait is already over (a
   * virtual clock just advances), else a Promise; `signal` cancels the wait (the Promise then
   * resolves early, the caller looks at the time again).
   */
  sleep(ns: bigint, signal?: AbortSignal): MaybePromise<void>;
}

const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** The host's clocks: performance.now() and setTimeout, present in browsers, workers and Node. */
export function systemClock(): WasiClock {
  const origin = performance.timeOrigin;
  return {
    now(id) {
      const ms = performance.now();
      if (id === ClockId.REALTIME) return BigInt(Math.round((origin + ms) * 1e3)) * 1000n;
      return BigInt(Math.round(ms * 1e6));
    },
    resolution() {
      return 1000n;
    },
    sleep(ns, signal) {
      if (ns <= 0n || signal?.aborted) return;
      return new Promise<void>((resolve) => {
        const ms = Number((ns + 999_999n) / 1_000_000n);
        const timer = setTimeout(done, Math.min(ms, MAX_TIMEOUT_MS));
        function done(): void {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        }
        signal?.addEventListener('abort', done, { once: true });
      });
    },
  };
}

/**
 * Virtual time: sleeping advances the clock at once and never blocks. Deterministic tests and
 * the simulator use it.
 */
export class VirtualClock implements WasiClock {
  /** Monotonic nanoseconds since the clock was made. */
  elapsed = 0n;

  constructor(readonly epoch = 1_700_000_000_000_000_000n) {}

  now(id: number): bigint {
    return id === ClockId.REALTIME ? this.epoch + this.elapsed : this.elapsed;
  }

  resolution(): bigint {
    return 1n;
  }

  sleep(ns: bigint): void {
    if (ns > 0n) this.elapsed += ns;
  }

  advance(ns: bigint): void {
    this.elapsed += ns;
  }
}
