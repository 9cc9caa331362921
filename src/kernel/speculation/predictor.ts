// Fork On Wait's predictor (DESIGN.md): which result will a wait return? Like a branch
// predictor, it keeps a small history per *site* — a place in a program where a thread waits
// (module, import and call site) — and only predicts where that history says it pays:
//
// - a site's last result, with a saturating confidence counter: each time the result repeats
//   the counter rises (to MAX), a different result resets it; the site is predicted once the
//   counter reaches THRESHOLD, so a value must repeat before anyone speculates on it;
// - a site is *trusted* once a prediction there was right, and loses it at a wrong one. An
//   untrusted site gets one speculation at a time (a probe): the next wait there waits for the
//   probe's verdict instead of forking on the same unproven guess. Without this, a thread that
//   computes much less than it waits runs many levels deep on a guess that turns out wrong
//   (journal at a 1 ms link: 7–28), and the receiver of its messages rolls back as many: what
//   cost 'every prediction wrong' 7 % there. A trusted site pipelines freely; the price is one
//   round trip (the probe's) before a site that is always right starts to pipeline;
// - a misprediction costs a rollback, so a site that keeps mispredicting is *benched*: after
//   BENCH_AFTER mispredictions in a row it is not predicted for a while, twice as long each
//   time it is benched again (exponential backoff), until it proves itself again (a hit). A
//   site not right since it was new or benched is on probation: its first miss benches it;
// - a fork costs time (the snapshot; a rollback costs a restore too): a site whose waits are
//   shorter than WORTH × (fork + rollback) is not worth speculating on, whatever it returns.
//   Costs are the least of the site's recent samples (load only adds above the true cost),
//   and judged only once a few were seen, so one slow fork cannot shut a site for good.
//
// Pure: no clocks (the caller measures waits and fork costs and passes them in), no I/O.
// Values are compared with `equals`.

export interface PredictorOptions<V> {
  /** Repeats needed before a site is predicted. */
  threshold?: number;
  /** Confidence saturates here. */
  max?: number;
  /** Mispredictions in a row that bench a site. */
  benchAfter?: number;
  /** Waits a site sits out the first time it is benched (doubling each time after). */
  benchFor?: number;
  /** A site is speculated on only if its typical wait is at least this many times fork + rollback (default 2). */
  worth?: number;
  equals?: (a: V, b: V) => boolean;
}

/** What the caller knows of this wait beyond the site's history. */
export interface WaitContext {
  /** Speculations at this site not resolved yet (the process's open levels forked there). */
  outstanding?: number;
}

/** Why a wait is (not) speculated on: the predictor's answer for one wait. */
export type Decision<V> =
  | { kind: 'predict'; value: V }
  /** No result has repeated enough yet. */
  | { kind: 'unsure' }
  /** Waits here are shorter than what a fork and a rollback cost. */
  | { kind: 'short' }
  /** Untrusted and a probe is out: wait for its verdict (the caller may ask again once it is in). */
  | { kind: 'probing' }
  /** Sitting out after mispredicting. */
  | { kind: 'benched' };

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
  /** Right at its last prediction (false until the first hit). */
  trusted: boolean;
  missesInRow: number;
  /** Waits left before the site may be predicted again. */
  sitOut: number;
  nextBench: number;
  /** Typical wait (ms): a moving average of the waits measured here; undefined until one was. */
  waitMs: number | undefined;
  /** Recent fork (snapshot) and rollback (restore) times here, ms. */
  forkMs: number[];
  restoreMs: number[];
  stats: SiteStats;
}

export type Outcome = 'hit' | 'miss' | 'unpredicted';

/** Repeats of a result (after its first sight) before a site is predicted, by default. */
export const DEFAULT_THRESHOLD = 2;
/** Cost samples kept per site (the least of them is the cost). */
const COST_SAMPLES = 8;
/** Forks seen at a site before its cost is trusted enough to keep it from speculating. */
const COST_MIN_SAMPLES = 3;
/** A rollback not measured yet at a site is guessed at this many forks (restore ≈ 3–4× snapshot). */
const RESTORE_PER_FORK = 3;
/** Weight of a new wait in the site's moving average. */
const WAIT_ALPHA = 0.25;

export class Predictor<V> {
  private readonly sites = new Map<string, Site<V>>();
  private readonly threshold: number;
  private readonly max: number;
  private readonly benchAfter: number;
  private readonly benchFor: number;
  private readonly worth: number;
  private readonly equals: (a: V, b: V) => boolean;

  constructor(opts: PredictorOptions<V> = {}) {
    this.threshold = opts.threshold ?? DEFAULT_THRESHOLD;
    this.max = Math.max(opts.max ?? 3, this.threshold);
    this.benchAfter = opts.benchAfter ?? 2;
    this.benchFor = opts.benchFor ?? 8;
    this.worth = opts.worth ?? 2;
    this.equals = opts.equals ?? Object.is;
  }

  /** The predicted result of the wait at `site`, or undefined: do not speculate here now. */
  predict(site: string, ctx: WaitContext = {}): V | undefined {
    const d = this.decide(site, ctx);
    return d.kind === 'predict' ? d.value : undefined;
  }

  /** predict() with the reason when it says no. A 'predict' answer counts as a prediction. */
  decide(site: string, ctx: WaitContext = {}): Decision<V> {
    const s = this.sites.get(site);
    if (s === undefined || !s.seen || s.confidence < this.threshold) return { kind: 'unsure' };
    if (this.short(s)) return { kind: 'short' };
    if (!s.trusted && (ctx.outstanding ?? 0) > 0) return { kind: 'probing' };
    if (s.sitOut > 0) {
      s.sitOut--;
      return { kind: 'benched' };
    }
    s.stats.predictions++;
    return { kind: 'predict', value: s.last as V };
  }

  /**
   * The real result of a wait at `site`. `predicted` is what predict() said for this wait (if
   * it said anything): the outcome tells whether the speculation confirms or rolls back.
   * `waitMs`: how long the wait took (block, or fork, to the real result), if measured.
   */
  record(site: string, actual: V, predicted?: { value: V }, waitMs?: number): Outcome {
    const s = this.site(site);
    let outcome: Outcome = 'unpredicted';
    if (predicted !== undefined) {
      if (this.equals(predicted.value, actual)) {
        outcome = 'hit';
        s.stats.hits++;
        s.trusted = true;
        s.missesInRow = 0;
        s.nextBench = this.benchFor; // proved itself: a later bench starts short again
      } else {
        outcome = 'miss';
        s.stats.misses++;
        s.trusted = false;
        if (++s.missesInRow >= this.benchAfter) {
          s.sitOut = s.nextBench;
          s.nextBench *= 2;
          s.missesInRow = this.benchAfter - 1; // back on probation: one more miss benches it again
          s.stats.benched++;
        }
      }
    }
    if (s.seen && this.equals(s.last as V, actual)) s.confidence = Math.min(this.max, s.confidence + 1);
    else s.confidence = 0;
    s.last = actual;
    s.seen = true;
    if (waitMs !== undefined && Number.isFinite(waitMs) && waitMs >= 0) {
      s.waitMs = s.waitMs === undefined ? waitMs : s.waitMs + WAIT_ALPHA * (waitMs - s.waitMs);
    }
    return outcome;
  }

  /** What a fork (`fork`: taking the twin) or a rollback (`restore`) at `site` took, ms. */
  cost(site: string, kind: 'fork' | 'restore', ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    const s = this.site(site);
    const list = kind === 'fork' ? s.forkMs : s.restoreMs;
    list.push(ms);
    if (list.length > COST_SAMPLES) list.shift();
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

  private site(site: string): Site<V> {
    let s = this.sites.get(site);
    if (s === undefined) {
      s = {
        last: undefined,
        seen: false,
        confidence: 0,
        trusted: false,
        missesInRow: this.benchAfter - 1, // never right yet: its first miss benches it
        sitOut: 0,
        nextBench: this.benchFor,
        waitMs: undefined,
        forkMs: [],
        restoreMs: [],
        stats: { predictions: 0, hits: 0, misses: 0, benched: 0 },
      };
      this.sites.set(site, s);
    }
    return s;
  }

  /** Whether the site's waits are too short to pay for a fork and a rollback. */
  private short(s: Site<V>): boolean {
    if (s.waitMs === undefined || s.forkMs.length < COST_MIN_SAMPLES) return false;
    const fork = Math.min(...s.forkMs);
    const restore = s.restoreMs.length ? Math.min(...s.restoreMs) : RESTORE_PER_FORK * fork;
    return s.waitMs < this.worth * (fork + restore);
  }
}
