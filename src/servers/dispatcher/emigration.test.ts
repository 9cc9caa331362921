// The emigration state machine on its own: every way a move ends, where the held messages go,
// that the outcome is reported exactly once, and the commit step (ready → go): before go it may
// give up (cancel), after go only the target or the view ends it, and the image is kept till then.
import { describe, expect, test } from 'vitest';
import { Emigration, FREEZE_RETRIES, FREEZE_RETRY_MS, FREEZE_TIMEOUT_MS, IMMIGRATE_TIMEOUT_MS, type EmigrationHost, type MigrationResult } from './emigration.ts';

const TARGET = 'b'.repeat(32);

function harness(opts: { ship?: boolean; go?: boolean; pack?: () => Promise<Uint8Array> } = {}) {
  let now = 0;
  let timers: { at: number; fn: () => void; live: boolean }[] = [];
  const log: string[] = [];
  const results: MigrationResult[] = [];
  let handedOver: string[] | undefined;
  let resumed: { image: Uint8Array | undefined; held: string[]; committed: boolean } | undefined;
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
    go: () => (log.push('go'), opts.go ?? true),
    cancel: () => log.push('cancel'),
    handOver: (held) => (handedOver = held),
    resumeHere: (image, held, committed) => (resumed = { image, held, committed }),
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
  /** Started, frozen with `image` at `at` ms, packed and shipped. */
  async function shipped(h: ReturnType<typeof harness>, image = new Uint8Array([1, 2]), at = 40) {
    h.e.start();
    h.setNow(at);
    h.e.frozen(image);
    await h.flush();
    expect(h.e.phase).toBe('shipping');
  }

  test('success: frozen, shipped, ready → go, immigrated; the held messages are handed over; freezeMs from the freeze request', async () => {
    const h = harness();
    h.e.start();
    h.e.hold('stdin 1');
    h.setNow(40);
    h.e.frozen(new Uint8Array([1, 2]));
    await h.flush();
    expect(h.log).toEqual(['freeze', 'ship']);
    h.e.hold('deliver 2');
    h.e.immigrated(); // not without go: the target runs nothing before it
    expect(h.results).toEqual([]);
    h.e.ready();
    expect(h.log).toEqual(['freeze', 'ship', 'go']);
    expect(h.e.phase).toBe('committed');
    // Messages between go and immigrated are held too: handed over only when it runs there.
    h.e.hold('deliver 3');
    expect(h.handed()).toBeUndefined();
    h.setNow(90);
    h.e.immigrated();
    expect(h.handed()).toEqual(['stdin 1', 'deliver 2', 'deliver 3']);
    expect(h.resumed()).toBeUndefined();
    expect(h.results).toEqual([{ ok: true, peer: TARGET, freezeMs: 90 }]);
    expect(h.e.hold('late')).toBe(false);
    h.e.immigrated();
    h.e.refused('late');
    h.e.peerGone(TARGET);
    expect(h.results).toHaveLength(1);
    expect(h.log).toEqual(['freeze', 'ship', 'go']);
  });

  test('a repeated ready after go sends nothing more (no second go, and never a cancel)', async () => {
    const h = harness();
    await shipped(h);
    h.e.ready();
    h.e.ready();
    expect(h.log).toEqual(['freeze', 'ship', 'go']);
  });

  test('refused by the target (before go): thawed here again from the kept image, held messages redelivered here', async () => {
    const h = harness();
    await shipped(h, new Uint8Array([7]));
    h.e.hold('stdin');
    h.e.refused('not from this cluster');
    expect(h.resumed()).toEqual({ image: new Uint8Array([7]), held: ['stdin'], committed: false });
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
    expect(h.resumed()).toMatchObject({ image: new Uint8Array([3]), committed: false });
    expect(h.results[0]).toMatchObject({ ok: false, message: expect.stringMatching(/went away during the move/) });
  });

  test('no ready in time: cancel sent, resumed here; a ready that comes after that gets another cancel, never a go', async () => {
    const h = harness();
    await shipped(h, new Uint8Array([3]));
    await h.advance(IMMIGRATE_TIMEOUT_MS - 1);
    expect(h.results).toEqual([]);
    await h.advance(1);
    expect(h.log).toEqual(['freeze', 'ship', 'cancel']);
    expect(h.resumed()).toMatchObject({ image: new Uint8Array([3]), committed: false });
    expect(h.results[0]).toMatchObject({ ok: false, message: expect.stringMatching(/did not take it/) });
    h.e.ready();
    expect(h.log).toEqual(['freeze', 'ship', 'cancel', 'cancel']);
    h.e.immigrated();
    expect(h.handed()).toBeUndefined();
    expect(h.results).toHaveLength(1);
  });

  test('after go no timer gives up: it waits for the target however long (the target bounds its thaw)', async () => {
    const h = harness();
    await shipped(h);
    h.e.ready();
    await h.advance(IMMIGRATE_TIMEOUT_MS * 10);
    expect(h.log).toEqual(['freeze', 'ship', 'go']);
    expect(h.results).toEqual([]);
    expect(h.resumed()).toBeUndefined();
    h.e.immigrated();
    expect(h.results[0]).toMatchObject({ ok: true });
  });

  test('immigrate.failed after go: resumed here with the kept image (committed), every held message redelivered here', async () => {
    const h = harness();
    h.e.start();
    h.e.hold('before freeze');
    h.e.frozen(new Uint8Array([9, 9]));
    await h.flush();
    h.e.ready();
    h.e.hold('after go');
    h.e.refused('the executor refused the image');
    expect(h.resumed()).toEqual({ image: new Uint8Array([9, 9]), held: ['before freeze', 'after go'], committed: true });
    expect(h.handed()).toBeUndefined();
    expect(h.log).not.toContain('cancel');
    expect(h.results).toEqual([{ ok: false, message: `peer ${TARGET.slice(0, 8)} could not start it (the executor refused the image); it goes on here` }]);
    h.e.immigrated(); // too late: it runs here now
    expect(h.handed()).toBeUndefined();
    expect(h.results).toHaveLength(1);
  });

  test('the target leaves the view after go, before immigrated: resumed here with the kept image', async () => {
    const h = harness();
    await shipped(h, new Uint8Array([4]));
    h.e.ready();
    h.e.hold('stdin');
    h.e.peerGone(TARGET);
    expect(h.resumed()).toEqual({ image: new Uint8Array([4]), held: ['stdin'], committed: true });
    expect(h.results[0]).toMatchObject({ ok: false, message: expect.stringMatching(/went away during the move/) });
  });

  test('go cannot be sent: cancel (in case it arrives after all) and resumed here', async () => {
    const h = harness({ go: false });
    await shipped(h, new Uint8Array([5]));
    h.e.ready();
    expect(h.log).toEqual(['freeze', 'ship', 'go', 'cancel']);
    expect(h.resumed()).toMatchObject({ image: new Uint8Array([5]), committed: false });
    expect(h.results[0]).toMatchObject({ ok: false, message: expect.stringMatching(/cannot be reached/) });
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
    expect(h.resumed()).toEqual({ image: undefined, held: ['reply 1'], committed: false });
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
    g.e.ready();
    g.e.immigrated();
    expect(g.results[0]).toMatchObject({ ok: true });
  });

  test('the freeze has one deadline, retries included: slow refusals cannot stretch it past FREEZE_TIMEOUT_MS', async () => {
    const h = harness();
    h.e.start();
    await h.advance(FREEZE_TIMEOUT_MS - 100);
    h.e.freezeFailed('speculating'); // answered late: no time for another attempt
    expect(h.results[0]).toMatchObject({ ok: false, message: 'it cannot be frozen: speculating' });
    const g = harness();
    g.e.start();
    await g.advance(FREEZE_TIMEOUT_MS / 2);
    g.e.freezeFailed('speculating');
    await g.advance(FREEZE_RETRY_MS); // the retry's freeze goes out…
    expect(g.log).toEqual(['freeze', 'freeze']);
    await g.advance(FREEZE_TIMEOUT_MS / 2 - FREEZE_RETRY_MS); // …but the deadline is the first one's
    expect(g.results[0]).toMatchObject({ ok: false, message: expect.stringMatching(/did not answer the freeze/) });
  });

  test('unreachable target or a failing pack: resumed here with the image', async () => {
    const h = harness({ ship: false });
    h.e.start();
    h.e.frozen(new Uint8Array([5]));
    await h.flush();
    expect(h.resumed()?.image).toEqual(new Uint8Array([5]));
    expect(h.results[0]).toMatchObject({ ok: false, message: expect.stringMatching(/cannot be reached/) });
    h.e.ready(); // never shipped: nothing to cancel
    expect(h.log).toEqual(['freeze', 'ship']);
    const g = harness({ pack: () => Promise.reject(new Error('no key')) });
    g.e.start();
    g.e.frozen(new Uint8Array([6]));
    await g.flush();
    expect(g.resumed()?.image).toEqual(new Uint8Array([6]));
    expect(g.results[0]).toMatchObject({ ok: false, message: 'cannot pack its image: no key' });
  });

  test('the Scheduler gives up before go (giveUp): cancel sent, thawed here again; from go on it cannot', async () => {
    const h = harness();
    await shipped(h);
    h.e.giveUp('a child of it is being restarted');
    expect(h.log).toEqual(['freeze', 'ship', 'cancel']);
    expect(h.resumed()).toEqual({ image: new Uint8Array([1, 2]), held: [], committed: false });
    expect(h.results).toEqual([{ ok: false, message: 'a child of it is being restarted' }]);
    h.e.ready(); // a late ready gets another cancel, never a go
    expect(h.log).toEqual(['freeze', 'ship', 'cancel', 'cancel']);

    const c = harness();
    await shipped(c);
    c.e.ready();
    c.e.giveUp('too late');
    expect(c.e.phase).toBe('committed');
    expect(c.log).toEqual(['freeze', 'ship', 'go']);
    expect(c.results).toEqual([]);
  });
});
