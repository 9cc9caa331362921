// The per-site predictor of Fork On Wait: predicts only what repeats, stops speculating where
// it keeps being wrong, and comes back when the site settles.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { Predictor } from './predictor.ts';

/** Runs waits at one site: predict, then the real result; returns the outcomes. */
function play<V>(p: Predictor<V>, site: string, results: V[]) {
  return results.map((r) => {
    const guess = p.predict(site);
    return p.record(site, r, guess === undefined ? undefined : { value: guess });
  });
}

describe('Fork On Wait predictor', () => {
  test('a result is predicted only once it has repeated (threshold 2), and then hits', () => {
    const p = new Predictor<number>();
    expect(play(p, 'ack', [0, 0, 0, 0, 0])).toEqual(['unpredicted', 'unpredicted', 'unpredicted', 'hit', 'hit']);
    expect(p.stats('ack')).toEqual({ predictions: 2, hits: 2, misses: 0, benched: 0 });
  });

  test('sites are independent', () => {
    const p = new Predictor<number>();
    play(p, 'a', [1, 1, 1]);
    expect(p.predict('a')).toBe(1);
    expect(p.predict('b')).toBeUndefined();
  });

  test('a value that changes every time is never predicted', () => {
    const p = new Predictor<number>();
    expect(play(p, 'clock', [1, 2, 3, 4, 5, 6, 7, 8])).toEqual(Array(8).fill('unpredicted'));
    expect(p.totals().predictions).toBe(0);
  });

  test('a site that keeps mispredicting is benched, longer each time, and predicted again once it settles', () => {
    const p = new Predictor<number>({ benchAfter: 2, benchFor: 4 });
    // Stable, then flipping between two runs of values: each run of 3 gets predicted and missed.
    play(p, 's', [7, 7, 7, 7]); // right once: from now on two misses in a row bench it
    expect(play(p, 's', [8, 8, 8, 9, 9, 9])).toEqual(['miss', 'unpredicted', 'unpredicted', 'miss', 'unpredicted', 'unpredicted']);
    expect(p.stats('s')!.benched).toBe(1);
    // Benched for 4 waits: no prediction even though 9 repeats.
    expect(play(p, 's', [9, 9, 9, 9])).toEqual(Array(4).fill('unpredicted'));
    expect(play(p, 's', [9])).toEqual(['hit']);
    expect(p.stats('s')!.hits).toBe(2);
  });

  test('an untrusted site is probed one speculation at a time; once right, it pipelines', () => {
    const p = new Predictor<number>();
    play(p, 'ack', [0, 0, 0]);
    // the first prediction is a probe: while it is out, the next wait waits for its verdict
    expect(p.decide('ack', { outstanding: 0 })).toEqual({ kind: 'predict', value: 0 });
    expect(p.decide('ack', { outstanding: 1 })).toEqual({ kind: 'probing' });
    expect(p.record('ack', 0, { value: 0 })).toBe('hit');
    // right once: trusted, any number may be out at once
    expect(p.decide('ack', { outstanding: 5 })).toEqual({ kind: 'predict', value: 0 });
    // a miss takes the trust away: one at a time again
    expect(p.record('ack', 1, { value: 0 })).toBe('miss');
    play(p, 'ack', [1, 1]);
    expect(p.decide('ack', { outstanding: 1 })).toEqual({ kind: 'probing' });
    expect(p.decide('ack', { outstanding: 0 })).toEqual({ kind: 'predict', value: 1 });
    expect(p.stats('ack')).toEqual({ predictions: 3, hits: 1, misses: 1, benched: 0 });
  });

  test('a site never right is benched at its first miss, re-probed after benchFor waits, then benched twice as long', () => {
    const p = new Predictor<number>({ benchFor: 4 });
    play(p, 's', [5, 5, 5]);
    expect(play(p, 's', [6])).toEqual(['miss']);
    expect(p.stats('s')!.benched).toBe(1);
    // a stable value again, but the next 4 waits where it would be predicted are sat out
    expect(play(p, 's', [6, 6, 6, 6, 6, 6])).toEqual(Array(6).fill('unpredicted'));
    // re-probed: wrong again → benched for 8
    expect(play(p, 's', [7])).toEqual(['miss']);
    expect(p.stats('s')!.benched).toBe(2);
    expect(play(p, 's', Array(10).fill(7))).toEqual(Array(10).fill('unpredicted'));
    // re-probed and right: predicted at every wait from now on
    expect(play(p, 's', [7, 7, 7])).toEqual(['hit', 'hit', 'hit']);
  });

  test('a site whose waits are shorter than a fork and a rollback cost is not speculated on', () => {
    const p = new Predictor<number>();
    const site = 'local';
    play(p, site, [1, 1, 1]);
    // three forks of 0.1 ms seen there; no rollback yet (guessed at 3 forks): worth it from 0.8 ms
    for (let i = 0; i < 3; i++) p.cost(site, 'fork', 0.1);
    p.record(site, 1, undefined, 0.3);
    expect(p.decide(site)).toEqual({ kind: 'short' });
    expect(p.predict(site)).toBeUndefined();
    // a rollback measured at 0.2 ms: fork + rollback 0.3 ms, worth it from 0.6 ms
    p.cost(site, 'restore', 0.2);
    for (let i = 0; i < 10; i++) p.record(site, 1, undefined, 0.7); // the waits grow
    expect(p.decide(site)).toEqual({ kind: 'predict', value: 1 });
  });

  test('fork costs are the least recent sample, judged from the third: one slow fork does not shut a site', () => {
    const p = new Predictor<number>();
    play(p, 's', [1, 1, 1]);
    p.record('s', 1, undefined, 2);
    p.cost('s', 'fork', 5); // a fork slowed down by a GC
    expect(p.decide('s').kind).toBe('predict');
    p.cost('s', 'fork', 0.1);
    p.cost('s', 'fork', 0.1);
    expect(p.decide('s').kind).toBe('predict'); // 2 ms ≥ 2 × (0.1 + 0.3)
    for (let i = 0; i < 8; i++) p.cost('s', 'fork', 1); // the process grew: forks cost 1 ms now
    expect(p.decide('s').kind).toBe('short');
  });

  test('property: a prediction is always the site\'s last result, and hits + misses = predictions recorded', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 2 })), { maxLength: 200 }), (waits) => {
        const p = new Predictor<number>();
        const last = new Map<string, number>();
        let predicted = 0;
        for (const [site, value] of waits) {
          const guess = p.predict(site);
          if (guess !== undefined) {
            expect(guess).toBe(last.get(site));
            predicted++;
          }
          p.record(site, value, guess === undefined ? undefined : { value: guess });
          last.set(site, value);
        }
        const t = p.totals();
        expect(t.hits + t.misses).toBe(predicted);
        expect(t.predictions).toBe(predicted);
      }),
      { numRuns: 500 },
    );
  });

  test('always-wrong sites cost at most a bounded share of waits (the benchmark\'s "all mispredicted" mode)', () => {
    const p = new Predictor<number>();
    // Adversary: the result is always different from what would be predicted.
    let misses = 0;
    let last = 0;
    for (let i = 0; i < 1000; i++) {
      const guess = p.predict('x');
      const actual = guess === undefined ? last : guess + 1;
      if (p.record('x', actual, guess === undefined ? undefined : { value: guess }) === 'miss') misses++;
      last = actual;
    }
    expect(misses).toBeLessThan(100); // benching with exponential backoff: a handful per doubling
  });
});
