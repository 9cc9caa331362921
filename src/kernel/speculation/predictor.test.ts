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
    play(p, 's', [7, 7, 7]);
    expect(play(p, 's', [8, 8, 8, 9, 9, 9])).toEqual(['miss', 'unpredicted', 'unpredicted', 'miss', 'unpredicted', 'unpredicted']);
    expect(p.stats('s')!.benched).toBe(1);
    // Benched for 4 waits: no prediction even though 9 repeats.
    expect(play(p, 's', [9, 9, 9, 9])).toEqual(Array(4).fill('unpredicted'));
    expect(play(p, 's', [9])).toEqual(['hit']);
    expect(p.stats('s')!.hits).toBe(1);
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
