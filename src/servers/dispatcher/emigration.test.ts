// The emigration state machine on its own: every way a move ends, where the held messages go,
// and that the outcome is reported exactly once.
import { describe, expect, test } from 'vitest';
import { Emigration, FREEZE_RETRIES, FREEZE_RETRY_MS, FREEZE_TIMEOUT_MS, IMMIGRATE_TIMEOUT_MS, type EmigrationHost, type MigrationResult } from './emigration.ts';

const TARGET = 'b'.repeat(32);

function harness(opts: { ship?: boolean; pack?: () => Promise<Uint8Array> } = {}) {
  let now = 0;
  let timers: { at: number; fn: () => void; live: boolean }[] = [];
  const log: string[] = [];
  const results: MigrationResult[] = [];
  let handedOver: string[] | undefined;
  let resumed: { image: Uint8Array | undefined; held: string[] } | undefined;
  const host: EmigrationHost<string> = {
    now: () => now,
    setTimeout: (fn, ms) => {
      const t = { at: now + ms, fn, live: true };
      timers.push(t);
      return () => void (t.live = false);
    },
    freeze: () => log.push('freeze'),
    pack: opts.pack ?? (async (image) => new Uint8Array([...image, 0xff])),
    ship: () => (log.push('ship'), opts.ship ?? true),
    cancel: () => log.push('cancel'),
    handOver: (held) => (handedOver = held),
    resumeHere: (image, held) => (resumed = { image, held }),
    done: (r) => results.push(r),
  };
  const e = new Emigration('abcdef.1', TARGET, host);
  const advance = async (ms: number) => {
    const end = now + ms;
    for (;;) {
      const next = timers.filter((t) => t.live && t.at <= end).sort((x, y) => x.at - y.at)[0];
      if (!next) break;
      now = next.at;
      next.live = false;
      next.fn();
      await Promise.resolve();
    }
    now = end;
    timers = timers.filter((t) => t.live);
  };
  const flush = () => new Promise((r) => setTimeout(r, 0));
  return { e, log, results, advance, flush, handed: () => handedOver, resumed: () => resumed, setNow: (t: number) => (now = t) };
}

describe('Emigration', () => {
  test('success: frozen, shipped, immigrated; the held messages are handed over; freezeMs from the freeze request', async () => {
    const h = harness();
    h.e.start();
    h.e.hold('stdin 1');
    h.setNow(40);
    h.e.frozen(new Uint8Array([1, 2]));
    await h.flush();
    expect(h.log).toEqual(['freeze', 'ship']);
    h.e.hold('deliver 2');
    h.setNow(90);
    h.e.immigrated();
    expect(h.handed()).toEqual(['stdin 1', 'deliver 2']);
    expect(h.resumed()).toBeUndefined();
    expect(h.results).toEqual([{ ok: true, peer: TARGET, freezeMs: 90 }]);
    expect(h.e.hold('late')).toBe(false);
    h.e.immigrated();
    h.e.refused('late');
    expect(h.results).toHaveLength(1);
  });

  test('refused by the target: thawed here again from the kept image, held messages redelivered here', async () => {
    const h = harness();
    h.e.start();
    h.e.frozen(new Uint8Array([7]));
    await h.flush();
    h.e.hold('stdin');
    h.e.refused('not from this cluster');
    expect(h.resumed()).toEqual({ image: new Uint8Array([7]), held: ['stdin'] });
    expect(h.handed()).toBeUndefined();
    expect(h.results).toEqual([{ ok: false, message: `peer ${TARGET.slice(0, 8)} refused it: not from this cluster` }]);
  });

  test('the target vanishes while the image is on its way: resumed here; gone before the freeze answered: the answer decides', async () => {
    const h = harness();
    h.e.start();
    h.e.peerGone(TARGET); // still freezing: it runs here until the executor answers
    expect(h.results).toEqual([]);
    h.e.frozen(new Uint8Array([3]));
    await h.flush();
    h.e.peerGone('c'.repeat(32)); // someone else
    expect(h.results).toEqual([]);
    h.e.peerGone(TARGET);
    expect(h.resumed()?.image).toEqual(new Uint8Array([3]));
    expect(h.results[0]).toMatchObject({ ok: false, message: expect.stringMatching(/went away during the move/) });
  });

  test('no answer from the target in time: cancel sent, resumed here', async () => {
    const h = harness();
    h.e.start();
    h.e.frozen(new Uint8Array([3]));
    await h.flush();
    await h.advance(IMMIGRATE_TIMEOUT_MS);
    expect(h.log).toEqual(['freeze', 'ship', 'cancel']);
    expect(h.resumed()?.image).toEqual(new Uint8Array([3]));
    expect(h.results[0]).toMatchObject({ ok: false, message: expect.stringMatching(/did not take it/) });
  });

  test('freeze.failed is retried a few times, then the move fails and the process (never stopped) gets its held messages', async () => {
    const h = harness();
    h.e.start();
    h.e.hold('reply 1');
    for (let i = 0; i < FREEZE_RETRIES; i++) {
      h.e.freezeFailed('blocked in spawn');
      expect(h.results).toEqual([]);
      await h.advance(FREEZE_RETRY_MS);
    }
    expect(h.log.filter((l) => l === 'freeze')).toHaveLength(1 + FREEZE_RETRIES);
    h.e.freezeFailed('blocked in spawn');
    expect(h.resumed()).toEqual({ image: undefined, held: ['reply 1'] });
    expect(h.results).toEqual([{ ok: false, message: 'it cannot be frozen: blocked in spawn' }]);
  });

  test('an executor that never answers the freeze: the move fails; a retry that then succeeds is fine', async () => {
    const h = harness();
    h.e.start();
    await h.advance(FREEZE_TIMEOUT_MS);
    expect(h.results[0]).toMatchObject({ ok: false, message: expect.stringMatching(/did not answer the freeze/) });
    const g = harness();
    g.e.start();
    g.e.freezeFailed('speculating');
    await g.advance(FREEZE_RETRY_MS);
    g.e.frozen(new Uint8Array([1]));
    await g.flush();
    g.e.immigrated();
    expect(g.results[0]).toMatchObject({ ok: true });
  });

  test('unreachable target or a failing pack: resumed here with the image', async () => {
    const h = harness({ ship: false });
    h.e.start();
    h.e.frozen(new Uint8Array([5]));
    await h.flush();
    expect(h.resumed()?.image).toEqual(new Uint8Array([5]));
    expect(h.results[0]).toMatchObject({ ok: false, message: expect.stringMatching(/cannot be reached/) });
    const g = harness({ pack: () => Promise.reject(new Error('no key')) });
    g.e.start();
    g.e.frozen(new Uint8Array([6]));
    await g.flush();
    expect(g.resumed()?.image).toEqual(new Uint8Array([6]));
    expect(g.results[0]).toMatchObject({ ok: false, message: 'cannot pack its image: no key' });
  });
});
