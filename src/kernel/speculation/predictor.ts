// Fork On Wait's predictor (DESIGN.md): which result will a wait return? Like a branch
// predictor, it keeps a small history per *site* — a place in a program where a thread waits
// (module, import and call site) — and only predicts where that history says it pays:
//
// - a site's last result, with a saturating confidence counter: each time the result repeats
//   the counter rises (to MAX), a different result resets it; the site is predicted once the
//   counter reaches THRESHOLD, so a value must repeat before anyone speculates on it;
// - a misprediction costs a rollback, so a site that keeps mispredicting is *benched*: after
//   BENCH_AFTER mispredictions in a row it is not predicted for a while, twice as long each
//   time it is benched again (exponential backoff), until it proves itself again.
//
// Pure: no clocks (the caller counts waits), no I/O. Values are compared with `equals`.

export interface PredictorOptions<V> {
  /** Repeats needed before a site is predicted. */
  threshold?: number;
  /** Confidence saturates here. */
  max?: number;
  /** Mispredictions in a row that bench a site. */
  benchAfter?: number;
  /** Waits a site sits out the first time it is benched (doubling each time after). */
  benchFor?: number;
  equals?: (a: V, b: V) => boolean;
}

export interface SiteStats {
  predictions: number;
  hits: number;
  misses: number;
  /** Times the site was benched for mispredicting. */
  benched: number;
}

interface Site<V> {
  last: V | undefined;
  seen: boolean;
  confidence: number;
  missesInRow: number;
  /** Waits left before the site may be predicted again. */
  sitOut: number;
  nextBench: number;
  stats: SiteStats;
}

export type Outcome = 'hit' | 'miss' | 'unpredicted';

/** Repeats of a result (after its first sight) before a site is predicted, by default. */
export const DEFAULT_THRESHOLD = 2;

export class Predictor<V> {
  private readonly sites = new Map<string, Site<V>>();
  private readonly threshold: number;
  private readonly max: number;
  private readonly benchAfter: number;
  private readonly benchFor: number;
  private readonly equals: (a: V, b: V) => boolean;

  constructor(opts: PredictorOptions<V> = {}) {
    this.threshold = opts.threshold ?? DEFAULT_THRESHOLD;
    this.max = Math.max(opts.max ?? 3, this.threshold);
    this.benchAfter = opts.benchAfter ?? 2;
    this.benchFor = opts.benchFor ?? 8;
    this.equals = opts.equals ?? Object.is;
  }

  /** The predicted result of the wait at `site`, or undefined: do not speculate here now. */
  predict(site: string): V | undefined {
    const s = this.sites.get(site);
    if (s === undefined || !s.seen || s.confidence < this.threshold) return undefined;
    if (s.sitOut > 0) {
      s.sitOut--;
      return undefined;
    }
    s.stats.predictions++;
    return s.last;
  }

  /**
   * The real result of a wait at `site`. `predicted` is what predict() said for this wait (if
   * it said anything): the outcome tells whether the speculation confirms or rolls back.
   */
  record(site: string, actual: V, predicted?: { value: V }): Outcome {
    let s = this.sites.get(site);
    if (s === undefined) {
      s = { last: undefined, seen: false, confidence: 0, missesInRow: 0, sitOut: 0, nextBench: this.benchFor, stats: { predictions: 0, hits: 0, misses: 0, benched: 0 } };
      this.sites.set(site, s);
    }
    let outcome: Outcome = 'unpredicted';
    if (predicted !== undefined) {
      if (this.equals(predicted.value, actual)) {
        outcome = 'hit';
        s.stats.hits++;
        s.missesInRow = 0;
        s.nextBench = this.benchFor; // proved itself: a later bench starts short again
      } else {
        outcome = 'miss';
        s.stats.misses++;
        if (++s.missesInRow >= this.benchAfter) {
          s.sitOut = s.nextBench;
          s.nextBench *= 2;
          s.missesInRow = 0;
          s.stats.benched++;
        }
      }
    }
    if (s.seen && this.equals(s.last as V, actual)) s.confidence = Math.min(this.max, s.confidence + 1);
    else s.confidence = 0;
    s.last = actual;
    s.seen = true;
    return outcome;
  }

  stats(site: string): SiteStats | undefined {
    const s = this.sites.get(site);
    return s && { ...s.stats };
  }

  /** Totals over every site (the per-process / per-peer counters). */
  totals(): SiteStats {
    const t: SiteStats = { predictions: 0, hits: 0, misses: 0, benched: 0 };
    for (const s of this.sites.values()) {
      t.predictions += s.stats.predictions;
      t.hits += s.stats.hits;
      t.misses += s.stats.misses;
      t.benched += s.stats.benched;
    }
    return t;
  }
}
