// The emigration state machine on its own: every way a move ends, where the held messages go,
// that the outcome is reported exactly once, and the commit step (ready → go): before go it may
// give up (cancel), after go only the target or the view ends it, and the image is kept till then.
import { describe, expect, test } from 'vitest';
import {
  Emigration,
  FREEZE_RETRIES,
  FREEZE_RETRY_MS,
  FREEZE_TIMEOUT_MS,
  IMMIGRATE_TIMEOUT_MS,
  PRECOPY_TIMEOUT_MS,
  type EmigrationHost,
  type MigrationResult,
  type PrecopyHost,
} from './emigration.ts';

const TARGET = 'b'.repeat(32);

interface PrecopyOpts {
  shipBase?: boolean;
  prepare?: (image: Uint8Array) => Promise<{ packed: Uint8Array; base: string }>;
  packDelta?: (base: string, image: Uint8Array) => Promise<Uint8Array>;
  busy?: () => boolean;
  minBytes?: number;
  expectBytes?: () => number | undefined;
}

function harness(opts: { ship?: boolean; go?: boolean; pack?: () => Promise<Uint8Array>; precopy?: PrecopyOpts; busy?: () => boolean } = {}) {
  let now = 0;
  let timers: { at: number; fn: () => void; live: boolean }[] = [];
  const log: string[] = [];
  const results: MigrationResult[] = [];
  let handedOver: string[] | undefined;
  let resumed: { image: Uint8Array | undefined; held: string[]; committed: boolean } | undefined;
  // Pre-copy (when asked for): the base is the checkpoint's bytes as text, packed as 4 bytes; the delta names it and takes 2 bytes.
  const pc = opts.precopy;
  const precopy: PrecopyHost<string> | undefined = pc && {
    checkpoint: () => log.push('checkpoint'),
    prepare: pc.prepare ?? (async (image) => ({ packed: new Uint8Array(4), base: `base ${[...image].join(',')}` })),
    shipBase: () => (log.push('base'), pc.shipBase ?? true),
    packDelta: pc.packDelta ?? (async (base, image) => (log.push(`delta of ${[...image].join(',')} against ${base}`), new Uint8Array(2))),
    minBytes: pc.minBytes ?? 0, // the images here are a few bytes
    ...(pc.expectBytes ? { expectBytes: pc.expectBytes } : {}),
  };
  const released: string[][] = [];
  const host: EmigrationHost<string, string> = {
    ...(precopy ? { precopy } : {}),
    now: () => now,
    setTimeout: (fn, ms) => {
      const t = { at: now + ms, fn, live: true };
      timers.push(t);
      return () => void (t.live = false);
    },
    freeze: () => log.push('freeze'),
    busy: pc?.busy ?? opts.busy ?? (() => false),
    release: (held) => void released.push(held),
    pack: opts.pack ?? (async (image) => new Uint8Array([...image, 0xff])),
    ship: (_packed, as) => (log.push(as === 'delta' ? 'ship delta' : 'ship'), opts.ship ?? true),
    go: () => (log.push('go'), opts.go ?? true),
    cancel: () => log.push('cancel'),
    handOver: (held) => (handedOver = held),
    resumeHere: (image, held, committed) => (resumed = { image, held, committed }),
    done: (r) => results.push(r),
  };
  const e = new Emigration<string, string>('abcdef.1', TARGET, host);
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
  return { e, log, results, advance, flush, released, handed: () => handedOver, resumed: () => resumed, setNow: (t: number) => (now = t) };
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
    h.setNow(55);
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
    // Stop-and-copy (this host has no pre-copy): the image went while frozen (packed: 3 bytes).
    // Where the 90 ms went: frozen at 40, packed and shipped at once, ready at 55, running at 90.
    expect(h.results).toEqual([{ ok: true, peer: TARGET, freezeMs: 90, precopyMs: 0, frozenBytes: 3, phases: { freeze: 40, pack: 0, check: 15, thaw: 35 } }]);
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

  test('freeze.failed is retried a few times, then the move fails; the process (never stopped) gets what was held at each failure', async () => {
    const h = harness();
    h.e.start();
    h.e.hold('reply 1');
    for (let i = 0; i < FREEZE_RETRIES; i++) {
      h.e.freezeFailed('speculating');
      expect(h.e.phase).toBe('waiting');
      expect(h.e.hold('stdin')).toBe(false); // it runs here meanwhile: straight to it
      expect(h.results).toEqual([]);
      await h.advance(FREEZE_RETRY_MS);
      expect(h.e.phase).toBe('freezing');
    }
    expect(h.released).toEqual([['reply 1'], [], [], []]);
    expect(h.log.filter((l) => l === 'freeze')).toHaveLength(1 + FREEZE_RETRIES);
    h.e.hold('reply 2');
    h.e.freezeFailed('speculating');
    expect(h.resumed()).toEqual({ image: undefined, held: ['reply 2'], committed: false });
    expect(h.results).toEqual([{ ok: false, message: 'it cannot be frozen: speculating' }]);
  });

  test('a freeze that crossed a spawn: the process gets its held reply and the freeze is asked again once the spawn is answered (idle); freezeMs from the freeze that took', async () => {
    let busy = true;
    const h = harness({ busy: () => busy });
    h.e.start();
    h.e.hold('other reply');
    h.setNow(10);
    h.e.freezeFailed('blocked in spawn');
    expect(h.released).toEqual([['other reply']]);
    await h.advance(FREEZE_RETRY_MS * 4); // no timed retry while it starts a child
    expect(h.log).toEqual(['freeze']);
    busy = false;
    h.setNow(2000);
    h.e.idle();
    expect(h.log).toEqual(['freeze', 'freeze']);
    h.setNow(2040);
    h.e.frozen(new Uint8Array([1]));
    await h.flush();
    h.e.ready();
    h.setNow(2100);
    h.e.immigrated();
    expect(h.results[0]).toMatchObject({ ok: true, freezeMs: 100 });
    // Still starting it at the deadline: the last try fails the move.
    const g = harness({ busy: () => true });
    g.e.start();
    g.e.freezeFailed('blocked in spawn');
    await g.advance(FREEZE_TIMEOUT_MS - FREEZE_RETRY_MS);
    expect(g.log).toEqual(['freeze', 'freeze']);
    g.e.freezeFailed('blocked in spawn');
    expect(g.results).toEqual([{ ok: false, message: 'it cannot be frozen: blocked in spawn' }]);
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

describe('Emigration with pre-copy', () => {
  /** Started with pre-copy: the checkpoint of the running process is asked for, nothing is frozen. */
  function precopied(precopy: PrecopyOpts = {}, opts: Parameters<typeof harness>[0] = {}) {
    const h = harness({ ...opts, precopy });
    h.e.start();
    expect(h.e.phase).toBe('precopying');
    expect(h.log).toEqual(['checkpoint']);
    return h;
  }
  /** …checkpointed as [1, 2, 3] and the base shipped. */
  async function baseSent(h: ReturnType<typeof harness>) {
    h.e.checkpointed(new Uint8Array([1, 2, 3]));
    await h.flush();
    expect(h.e.step).toBe('sent');
    expect(h.log).toEqual(['checkpoint', 'base']);
  }

  test('base acked → freeze → delta → ready → go → immigrated; messages reach it while it runs; freezeMs from the freeze, precopyMs and frozenBytes apart', async () => {
    const h = precopied();
    // While the base is made and on its way the process runs here: messages go to it, not held.
    expect(h.e.hold('stdin 0')).toBe(false);
    h.setNow(10);
    await baseSent(h);
    expect(h.e.hold('stdin 1')).toBe(false);
    h.e.frozen(new Uint8Array([9])); // not asked for: ignored
    h.e.ready(); // nothing shipped: ignored
    h.setNow(300);
    h.e.baseAcked();
    expect(h.e.phase).toBe('freezing');
    expect(h.log).toEqual(['checkpoint', 'base', 'freeze']);
    expect(h.e.hold('stdin 2')).toBe(true); // frozen from here on: held
    h.setNow(320);
    h.e.frozen(new Uint8Array([4, 5]));
    await h.flush();
    expect(h.log).toEqual(['checkpoint', 'base', 'freeze', 'delta of 4,5 against base 1,2,3', 'ship delta']);
    expect(h.e.shipped).toBe('delta');
    h.setNow(330);
    h.e.ready();
    h.setNow(350);
    h.e.immigrated();
    expect(h.log).toEqual(['checkpoint', 'base', 'freeze', 'delta of 4,5 against base 1,2,3', 'ship delta', 'go']);
    expect(h.handed()).toEqual(['stdin 2']);
    expect(h.results).toEqual([{ ok: true, peer: TARGET, freezeMs: 50, precopyMs: 300, frozenBytes: 2, phases: { freeze: 20, pack: 0, check: 10, thaw: 20 } }]);
  });

  test("'no base' for the delta: the full image goes at once, from the same freeze (no second one), and the move goes on", async () => {
    const h = precopied();
    await baseSent(h);
    h.e.baseAcked();
    h.e.hold('stdin');
    h.e.frozen(new Uint8Array([4, 5]));
    await h.flush();
    h.e.refused('no base: this peer keeps no pre-copy image of it', true);
    await h.flush();
    expect(h.log).toEqual(['checkpoint', 'base', 'freeze', 'delta of 4,5 against base 1,2,3', 'ship delta', 'ship']);
    expect(h.e.phase).toBe('shipping');
    expect(h.e.shipped).toBe('image');
    expect(h.resumed()).toBeUndefined();
    h.e.refused('no base', true); // for a full image it means nothing more: that is a refusal
    expect(h.resumed()).toEqual({ image: new Uint8Array([4, 5]), held: ['stdin'], committed: false });
    expect(h.results[0]).toMatchObject({ ok: false, message: `peer ${TARGET.slice(0, 8)} refused it: no base` });

    const g = precopied();
    await baseSent(g);
    g.e.baseAcked();
    g.e.frozen(new Uint8Array([4, 5]));
    await g.flush();
    g.e.refused('no base', true);
    await g.flush();
    g.e.ready();
    g.e.immigrated();
    expect(g.log.filter((l) => l === 'freeze')).toHaveLength(1);
    // The delta (2 bytes) and the full image (packed: 3 bytes) both went while it stood still.
    expect(g.results).toEqual([{ ok: true, peer: TARGET, freezeMs: 0, precopyMs: 0, frozenBytes: 5, phases: { freeze: 0, pack: 0, check: 0, thaw: 0 } }]);
  });

  test('a delta refused for another reason (not about the base): the move fails and it thaws here', async () => {
    const h = precopied();
    await baseSent(h);
    h.e.baseAcked();
    h.e.frozen(new Uint8Array([6]));
    await h.flush();
    h.e.refused('the delta: not from this cluster');
    expect(h.log).not.toContain('ship');
    expect(h.resumed()).toMatchObject({ image: new Uint8Array([6]), committed: false });
    expect(h.results[0]).toMatchObject({ ok: false, message: expect.stringMatching(/refused it: the delta: not from this cluster/) });
  });

  test('the base refused, no checkpoint (speculating, in spawn) or a small one: stop-and-copy with the full image', async () => {
    const h = precopied();
    await baseSent(h);
    h.e.baseRefused('no room for a pre-copy base');
    expect(h.e.phase).toBe('freezing');
    h.e.frozen(new Uint8Array([7]));
    await h.flush();
    expect(h.log).toEqual(['checkpoint', 'base', 'freeze', 'ship']);
    h.e.giveUp('given up'); // the base is gone at the target; the image gets its cancel
    expect(h.log).toEqual(['checkpoint', 'base', 'freeze', 'ship', 'cancel']);

    const g = precopied();
    g.e.checkpointFailed('speculation did not settle');
    expect(g.log).toEqual(['checkpoint', 'freeze']);
    g.e.frozen(new Uint8Array([7]));
    await g.flush();
    g.e.ready();
    g.e.immigrated();
    expect(g.log).toEqual(['checkpoint', 'freeze', 'ship', 'go']);
    expect(g.results[0]).toMatchObject({ ok: true, frozenBytes: 2 });

    // A checkpoint too small to be worth it: stop-and-copy, no base.
    const s = precopied({ minBytes: 4 });
    s.e.checkpointed(new Uint8Array([1, 2, 3]));
    await s.flush();
    expect(s.log).toEqual(['checkpoint', 'freeze']);
    s.e.frozen(new Uint8Array([1, 2, 3]));
    await s.flush();
    expect(s.e.shipped).toBe('image');

    // Known to be that small (its last image, or its program's): not even a checkpoint is asked for.
    const k2 = harness({ precopy: { minBytes: 4, expectBytes: () => 3 } });
    k2.e.start();
    expect(k2.log).toEqual(['freeze']);
    const k3 = harness({ precopy: { minBytes: 4, expectBytes: () => 4 } });
    k3.e.start();
    expect(k3.log).toEqual(['checkpoint']);

    // A base that cannot be made (no key): stop-and-copy too.
    const k = precopied({ prepare: () => Promise.reject(new Error('no key')) });
    k.e.checkpointed(new Uint8Array([1]));
    await k.flush();
    expect(k.log).toEqual(['checkpoint', 'freeze']);
  });

  test('the target goes away during the pre-copy: the move fails, nothing was frozen, the process just goes on', async () => {
    for (const at of ['checkpoint', 'sent'] as const) {
      const h = precopied();
      if (at === 'sent') await baseSent(h);
      h.e.peerGone(TARGET);
      expect(h.resumed()).toEqual({ image: undefined, held: [], committed: false });
      expect(h.log).not.toContain('freeze');
      expect(h.results).toEqual([{ ok: false, message: `peer ${TARGET.slice(0, 8)} went away during the move` }]);
      // Late answers change nothing.
      h.e.checkpointed(new Uint8Array([1]));
      h.e.baseAcked();
      await h.flush();
      expect(h.log).not.toContain('freeze');
      expect(h.results).toHaveLength(1);
    }
    // Unreachable when the base is shipped: the same.
    const u = precopied({ shipBase: false });
    u.e.checkpointed(new Uint8Array([1]));
    await u.flush();
    expect(u.resumed()).toEqual({ image: undefined, held: [], committed: false });
    expect(u.results[0]).toMatchObject({ ok: false, message: expect.stringMatching(/cannot be reached/) });
  });

  test('no ack in PRECOPY_TIMEOUT_MS: the base is cancelled and the move goes stop-and-copy', async () => {
    const h = precopied();
    await baseSent(h);
    await h.advance(PRECOPY_TIMEOUT_MS - 1);
    expect(h.log).toEqual(['checkpoint', 'base']);
    await h.advance(1);
    expect(h.log).toEqual(['checkpoint', 'base', 'cancel', 'freeze']);
    h.e.baseAcked(); // too late: no delta against it
    h.e.frozen(new Uint8Array([8]));
    await h.flush();
    expect(h.log).toEqual(['checkpoint', 'base', 'cancel', 'freeze', 'ship']);
  });

  test('it ends during the pre-copy: the move is off (the base is cancelled), "it has ended"; the Scheduler gives up: the same, never frozen', async () => {
    const h = precopied();
    await baseSent(h);
    h.e.ended();
    expect(h.log).toEqual(['checkpoint', 'base', 'cancel']);
    expect(h.resumed()).toEqual({ image: undefined, held: [], committed: false });
    expect(h.results).toEqual([{ ok: false, message: 'cannot move abcdef.1: it has ended' }]);

    const g = precopied();
    g.e.ended(); // no base out yet: nothing to cancel
    expect(g.log).toEqual(['checkpoint']);
    expect(g.results[0]).toMatchObject({ message: 'cannot move abcdef.1: it has ended' });

    const u = precopied();
    await baseSent(u);
    u.e.giveUp('a child of it is being restarted');
    expect(u.log).toEqual(['checkpoint', 'base', 'cancel']);
    expect(u.resumed()).toEqual({ image: undefined, held: [], committed: false });
  });

  test('the base is acked while the process starts a child: the freeze waits for idle (a spawn cannot be asked twice), or for the pre-copy deadline', async () => {
    let busy = true;
    const h = precopied({ busy: () => busy });
    await baseSent(h);
    h.e.baseAcked();
    expect(h.e.step).toBe('settling');
    expect(h.e.hold('reply')).toBe(false); // it still runs: its spawn's reply goes to it
    expect(h.log).toEqual(['checkpoint', 'base']);
    busy = false;
    h.e.idle();
    expect(h.log).toEqual(['checkpoint', 'base', 'freeze']);
    h.e.frozen(new Uint8Array([1]));
    await h.flush();
    expect(h.e.shipped).toBe('delta'); // the base still counts

    const g = precopied({ busy: () => true });
    await baseSent(g);
    g.e.baseAcked();
    await g.advance(PRECOPY_TIMEOUT_MS);
    expect(g.log).toEqual(['checkpoint', 'base', 'freeze']); // no cancel: the base stays good
    g.e.frozen(new Uint8Array([1]));
    await g.flush();
    expect(g.e.shipped).toBe('delta');
  });

  test('a failing delta (cannot be made): the full image instead, still from the one freeze', async () => {
    const h = precopied({ packDelta: () => Promise.reject(new Error('out of memory')) });
    await baseSent(h);
    h.e.baseAcked();
    h.e.frozen(new Uint8Array([3]));
    await h.flush();
    expect(h.log).toEqual(['checkpoint', 'base', 'freeze', 'ship']);
    expect(h.e.shipped).toBe('image');
  });
});

describe('Emigration with pre-copy: a base the target keeps is always let go', () => {
  test('acked, then it ends while being frozen, or its freeze fails for good, or the image cannot be packed: cancel sent', async () => {
    const acked = async (o: PrecopyOpts = {}, pack?: () => Promise<Uint8Array>) => {
      const h = harness({ precopy: o, ...(pack ? { pack } : {}) });
      h.e.start();
      h.e.checkpointed(new Uint8Array([1]));
      await h.flush();
      h.e.baseAcked();
      expect(h.log).toEqual(['checkpoint', 'base', 'freeze']);
      return h;
    };
    const a = await acked();
    a.e.ended();
    expect(a.log).toEqual(['checkpoint', 'base', 'freeze', 'cancel']);
    expect(a.results[0]).toMatchObject({ message: 'cannot move abcdef.1: it has ended' });

    const b = await acked();
    b.e.freezeFailed('its executor did not answer the freeze', true);
    expect(b.log).toEqual(['checkpoint', 'base', 'freeze', 'cancel']);

    // The delta fails, and so does the full image: nothing was shipped but the base.
    const c = await acked({ packDelta: () => Promise.reject(new Error('no')) }, () => Promise.reject(new Error('no key')));
    c.e.frozen(new Uint8Array([2]));
    await c.flush();
    await c.flush();
    expect(c.log).toEqual(['checkpoint', 'base', 'freeze', 'cancel']);
    expect(c.resumed()).toMatchObject({ image: new Uint8Array([2]) });
  });
});
