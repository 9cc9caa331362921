// A parent moves with its children's records: real programs that spawn (primes and its parts,
// ping and pong, journal and its replica) moved while their children run, while they wait for
// them, and while a child ends; the output is the unmoved one, every wait is answered once with
// the child's real status, the old host may leave afterwards without hanging the children up,
// and a relayed `exited` is taken only from the peer the records came from.
import { beforeAll, describe, expect, test } from 'vitest';
import { buildPrograms } from '../../kernel/wasi/test-programs.ts';
import type { PeerMessage } from './protocol.ts';
import { simCluster, type Terminal } from './test-cluster.ts';

beforeAll(() => buildPrograms(), 180_000);

/** Output as the terminal shows it, with what depends on where and how fast it ran masked. */
function masked(out: string): string {
  return out.replace(/ on [0-9a-f]{8}:/g, ' on PEER:').replace(/avg [\d.]+ ms/g, 'avg X ms');
}

/** The rows of `t`'s table whose process is `name`, not the parent itself. */
const childRows = async (ps: (t: Terminal) => Promise<{ pid: string; name: string; parent?: string; peer: string; state: string }[]>, t: Terminal, parent: string) =>
  (await ps(t)).filter((r) => r.parent === parent);

describe('a parent moves with its children', () => {
  test('primes with parts: moved while its parts run, then while it waits; a part moves at the same time; output identical', async () => {
    const { peers, pump, terminal, ps, findRow, intercept } = await simCluster(3, { seed: 'parents-primes' });
    const [a, b, c] = peers as [(typeof peers)[0], (typeof peers)[0], (typeof peers)[0]];
    const t = terminal(a);
    const ARGS = ['10000000', '3'];
    const unmoved = await t.run('primes', ARGS, { on: b });
    expect(await pump(() => !!t.exit(unmoved), 200_000)).toBe(true);
    expect(t.exit(unmoved)).toMatchObject({ code: 0 });
    const want = masked(t.shown(unmoved));
    expect(want).toMatch(/^part 2\.\.\d+ on PEER: \d+ primes\nprimes below 10000000: 664579\n$/);

    const pid = await t.run('primes', ARGS, { on: b });
    // What reaches a (its first new host) for it is held: its parts' results (so it is surely
    // waiting when it moves on) and their exits (relayed after it moved on).
    const held = intercept(a, (m) => (m.kind === 'deliver' && m.pid === pid) || (m.kind === 'exited' && m.pid !== pid));
    // Its parts run (their rows are there, not ended) while it counts its own part.
    expect(await findRow(t, (r) => r.parent === pid && r.state !== 'EXITED')).toBeDefined();
    expect(t.raw(pid)).toBe('');
    const part = (await childRows(ps, t, pid)).find((r) => r.state !== 'EXITED')!;
    const partTo = [b, c].find((p) => p.id !== part.peer)!;
    // The parent and one of its parts move at once.
    t.send({ kind: 'migrate', req: 7001, pid, to: a.id });
    t.send({ kind: 'migrate', req: 7002, pid: part.pid, to: partTo.id });
    const reply = (req: number) => t.msgs.find((m) => 'req' in m && m.req === req);
    expect(await pump(() => !!reply(7001) && !!reply(7002), 200_000)).toBe(true);
    expect(reply(7001), JSON.stringify(reply(7001))).toMatchObject({ kind: 'migrate.ok', peer: a.id }); // the reason, should it fail
    // The part may have ended first; if it moved, it moved where asked.
    if (reply(7002)!.kind === 'migrate.ok') expect(reply(7002)).toMatchObject({ peer: partTo.id });
    else expect((reply(7002) as { message: string }).message).toMatch(/has ended|no such process/);
    // Its own part done, it waits for a result that is held: moved again meanwhile.
    expect(await pump(() => t.raw(pid).startsWith('part ') && held.caught().some((m) => m.kind === 'deliver'), 200_000)).toBe(true);
    expect(t.exit(pid)).toBeUndefined();
    expect(await t.request({ kind: 'migrate', pid, to: c.id })).toMatchObject({ kind: 'migrate.ok', peer: c.id });
    held.release();
    expect(await pump(() => !!t.exit(pid), 200_000)).toBe(true);
    expect(t.exit(pid)).toMatchObject({ code: 0 });
    expect(masked(t.shown(pid))).toBe(want);
  }, 240_000);

  test('a migrate asked while the parent is starting a child waits for the start, then moves it; output identical', async () => {
    const { peers, pump, terminal, intercept } = await simCluster(3, { seed: 'parents-starting' });
    const [a, b, c] = peers as [(typeof peers)[0], (typeof peers)[0], (typeof peers)[0]];
    const t = terminal(a);
    const ARGS = ['10000000', '3'];
    const unmoved = await t.run('primes', ARGS, { on: b });
    expect(await pump(() => !!t.exit(unmoved), 200_000)).toBe(true);
    const want = masked(t.shown(unmoved));

    // Its parts' starts are held where they would run: the parent sits in `spawn`.
    const starts = [a, c].map((p) => intercept(p, (m) => m.kind === 'start' && m.parent !== undefined));
    const pid = await t.run('primes', ARGS, { on: b });
    expect(await pump(() => starts.some((h) => h.caught().length > 0), 200_000)).toBe(true);
    t.send({ kind: 'migrate', req: 7101, pid, to: c.id });
    const reply = () => t.msgs.find((m) => 'req' in m && m.req === 7101);
    await pump(() => false, 500, 0);
    expect(reply()).toBeUndefined(); // waiting, not refused
    for (const h of starts) h.release();
    expect(await pump(() => !!reply(), 200_000)).toBe(true);
    expect(reply(), JSON.stringify(reply())).toMatchObject({ kind: 'migrate.ok', peer: c.id });
    expect(await pump(() => !!t.exit(pid), 200_000)).toBe(true);
    expect(t.exit(pid)).toMatchObject({ code: 0 });
    expect(masked(t.shown(pid))).toBe(want);
  }, 240_000);

  test('ping moved mid-game (it spawned pong): every call answered once, pong\'s exit reaches it, exit 0', async () => {
    const { peers, pump, terminal } = await simCluster(3, { seed: 'parents-ping' });
    const [a, b, c] = peers as [(typeof peers)[0], (typeof peers)[0], (typeof peers)[0]];
    const t = terminal(a);
    const ping = await t.run('ping', ['300', '--on', c.id.slice(0, 8)], { on: b });
    expect(await pump(() => t.raw(ping).includes('pong 20\n'))).toBe(true);
    expect(await t.request({ kind: 'migrate', pid: ping, to: a.id })).toMatchObject({ kind: 'migrate.ok', peer: a.id });
    expect(await pump(() => !!t.exit(ping), 200_000)).toBe(true);
    expect(t.exit(ping)).toMatchObject({ code: 0 });
    expect(masked(t.shown(ping))).toBe(pingOutput(300));
  }, 180_000);

  test('journal moved mid-run (it spawned its replica): output and digests identical to the unmoved run', async () => {
    const { peers, pump, terminal } = await simCluster(3, { seed: 'parents-journal' });
    const [a, b, c] = peers as [(typeof peers)[0], (typeof peers)[0], (typeof peers)[0]];
    const t = terminal(a);
    const ARGS = ['400', '20', c.id.slice(0, 8)];
    // Without Fork On Wait: this test is about the parent's records moving, not about quiesce.
    const run = () => t.run('journal', ARGS, { on: b, speculation: 'off' });
    const unmoved = await run();
    expect(await pump(() => !!t.exit(unmoved), 200_000)).toBe(true);
    expect(t.exit(unmoved)).toMatchObject({ code: 0 });
    const want = t.shown(unmoved);
    expect(want).toMatch(/record 400 acknowledged\nwriter  [0-9a-f]{16} 1638400, 0 unexpected replies\nreplica [0-9a-f]{16} 1638400\nreplica exited 0\n$/);
    const pid = await run();
    expect(await pump(() => t.raw(pid).includes('record 100 acknowledged'), 200_000)).toBe(true);
    expect(await t.request({ kind: 'migrate', pid, to: a.id })).toMatchObject({ kind: 'migrate.ok', peer: a.id });
    expect(await pump(() => !!t.exit(pid), 200_000)).toBe(true);
    expect(t.exit(pid)).toMatchObject({ code: 0 });
    expect(t.shown(pid)).toBe(want);
    expect(t.raw(pid, 2)).toBe('');
  }, 180_000);

  // ping has sent pong its stop and waits for it; pong's exit is held at ping's host (the
  // spawner) until ping is frozen there, on its way after go, or moved: its wait gets pong's
  // status exactly once, on the new host.
  for (const when of ['frozen', 'on its way', 'moved'] as const) {
    test(`a child exits while its parent is ${when}: the parent's wait gets its status once`, async () => {
      const { peers, pump, terminal, intercept, replies } = await simCluster(3, { seed: `parents-exit-${when}` });
      const [a, b, c] = peers as [(typeof peers)[0], (typeof peers)[0], (typeof peers)[0]];
      const t = terminal(a);
      // Caught in this order and released in it: the exit, then the step of the move it must meet.
      const gate = when === 'frozen' ? 'immigrate.ready' : when === 'on its way' ? 'immigrated' : undefined;
      // pong's host's table (which says how pong ended too) reaches neither ping's old nor its new
      // host: only the `exited` can, carried or relayed.
      const tables = [a, b].map((p) => intercept(p, (m, from) => m.kind === 'table' && from === c.id));
      let ping = '';
      const held = intercept(b, (m) => (m.kind === 'exited' && m.pid !== ping) || m.kind === gate);
      ping = await t.run('ping', ['20', '--on', c.id.slice(0, 8)], { on: b });
      expect(await pump(() => t.raw(ping).includes('round trips') && held.caught().some((m) => m.kind === 'exited'), 200_000)).toBe(true);
      // It waits for pong (blocked in wait), whose exit is held.
      await pump(() => false, 50, 0);
      expect(t.exit(ping)).toBeUndefined();
      t.send({ kind: 'migrate', req: 8001, pid: ping, to: a.id });
      const reply = () => t.msgs.find((m) => 'req' in m && m.req === 8001);
      if (gate) expect(await pump(() => held.caught().some((m) => m.kind === gate), 200_000)).toBe(true);
      else expect(await pump(() => !!reply(), 200_000)).toBe(true);
      held.release();
      expect(await pump(() => !!reply() && !!t.exit(ping), 200_000)).toBe(true);
      expect(reply()).toMatchObject({ kind: 'migrate.ok', peer: a.id });
      expect(t.exit(ping)).toMatchObject({ code: 0 });
      expect(t.raw(ping)).toMatch(/round trips, avg [\d.]+ ms\npong exited with 0\n$/);
      const waits = replies.filter((r) => r.pid === ping && r.reply.ok && r.reply.op === 'wait');
      expect(waits).toEqual([{ peer: a.id, pid: ping, reply: { ok: true, op: 'wait', code: 0 } }]);
      for (const x of tables) x.release();
    }, 180_000);
  }

  test('the target vanishes after go: the parent goes on on its old host with its child records, a child\'s exit meanwhile included', async () => {
    const { peers, pump, terminal, intercept, crash, replies } = await simCluster(4, { seed: 'parents-gone-after-go' });
    const [a, b, c, d] = peers as [(typeof peers)[0], (typeof peers)[0], (typeof peers)[0], (typeof peers)[0]];
    const t = terminal(a);
    const tables = intercept(b, (m, from) => m.kind === 'table' && from === c.id); // only the `exited` tells b
    let ping = '';
    const exits = intercept(b, (m) => m.kind === 'exited' && m.pid !== ping);
    ping = await t.run('ping', ['20', '--on', c.id.slice(0, 8)], { on: b });
    expect(await pump(() => t.raw(ping).includes('round trips') && exits.caught().length > 0, 200_000)).toBe(true);
    await pump(() => false, 50, 0);
    const go = intercept(d, (m) => m.kind === 'immigrate.go');
    t.send({ kind: 'migrate', req: 8101, pid: ping, to: d.id });
    expect(await pump(() => go.caught().length > 0, 200_000)).toBe(true);
    // b is committed (its records lent to d): pong's exit reaches it now, then d goes away.
    exits.release();
    await pump(() => false, 20, 0);
    crash(d);
    const reply = () => t.msgs.find((m) => 'req' in m && m.req === 8101);
    expect(await pump(() => !!reply() && !!t.exit(ping), 200_000)).toBe(true);
    expect(reply()).toMatchObject({ kind: 'migrate.failed', message: expect.stringMatching(/went away during the move/) });
    expect(t.exit(ping)).toMatchObject({ code: 0 });
    expect(t.raw(ping)).toMatch(/round trips, avg [\d.]+ ms\npong exited with 0\n$/);
    expect(replies.filter((r) => r.pid === ping && r.reply.ok && r.reply.op === 'wait')).toEqual([{ peer: b.id, pid: ping, reply: { ok: true, op: 'wait', code: 0 } }]);
    tables.release();
  }, 180_000);

  test('the old host leaves (drain) after the parent moved: its children are not hung up (their spawner moved too)', async () => {
    const { peers, pump, terminal, crash } = await simCluster(3, { seed: 'parents-drain' });
    const [a, b, c] = peers as [(typeof peers)[0], (typeof peers)[0], (typeof peers)[0]];
    const t = terminal(a);
    const ping = await t.run('ping', ['2000', '--on', c.id.slice(0, 8)], { on: b });
    expect(await pump(() => t.raw(ping).includes('pong 20\n'))).toBe(true);
    expect(await terminal(b).request({ kind: 'drain' })).toMatchObject({ kind: 'drain.ok', moved: 1, left: 0 });
    // The new host's `spawner` reaches pong's host within milliseconds; the tables that route
    // pong's replies to ping's new host (not through the old one) within TABLE_COALESCE_MS.
    await pump(() => false, 400, 0);
    expect(t.exit(ping)).toBeUndefined(); // still playing when b goes
    crash(b);
    expect(await pump(() => !!t.exit(ping), 200_000)).toBe(true);
    expect(t.exit(ping)).toMatchObject({ code: 0 });
    expect(masked(t.shown(ping))).toBe(pingOutput(2000));
  }, 180_000);

  test('a relayed exited from a peer that is not the old spawner is refused (at the new spawner and at the old one)', async () => {
    const { peers, pump, terminal, findRow } = await simCluster(4, { seed: 'parents-forged' });
    const [a, b, c, d] = peers as [(typeof peers)[0], (typeof peers)[0], (typeof peers)[0], (typeof peers)[0]];
    const t = terminal(a);
    const ping = await t.run('ping', ['200', '--on', c.id.slice(0, 8)], { on: b });
    expect(await pump(() => t.raw(ping).includes('pong 20\n'))).toBe(true);
    const pong = await findRow(t, (r) => r.parent === ping);
    expect(await t.request({ kind: 'migrate', pid: ping, to: a.id })).toMatchObject({ kind: 'migrate.ok', peer: a.id });
    // d says pong ended with 7, to ping's new host and to its old one (which relays what its host says).
    for (const to of [a, b]) d.kernel.send({ peer: d.id, port: 'scheduler' }, { peer: to.id, port: 'scheduler' }, { kind: 'exited', pid: pong!.pid, code: 7 });
    expect(await pump(() => !!t.exit(ping), 200_000)).toBe(true);
    expect(t.raw(ping)).toMatch(/pong exited with 0\n$/);
    expect(t.exit(ping)).toMatchObject({ code: 0 });
  }, 180_000);

  test("a parent moves on again while its child's exit takes the long way (to its first spawner, relayed twice): the exit still reaches it", async () => {
    const c = await simCluster(3, { seed: 'relay-twice' });
    const [a, b, h] = c.peers as [(typeof c.peers)[0], (typeof c.peers)[0], (typeof c.peers)[0]];
    const t = c.terminal(a);
    const ping = await t.run('ping', ['3000', '--on', h.id.slice(0, 8)], { on: b });
    expect(await c.pump(() => t.raw(ping).includes('pong 5\n'), 400_000)).toBe(true);
    // pong's host does not hear that its spawner changed (ping's move to a), so pong's exit goes to b…
    const notices = c.intercept(h, (m) => m.kind === 'spawner');
    // …which relays it to a, where it waits until ping has moved on from a too.
    const exits = c.intercept(a, (m, from) => m.kind === 'exited' && from === b.id);
    expect(await t.request({ kind: 'migrate', pid: ping, to: a.id })).toMatchObject({ kind: 'migrate.ok', peer: a.id });
    expect(await c.pump(() => exits.caught().length > 0, 400_000)).toBe(true); // the game ended, pong exited
    expect(t.exit(ping)).toBeUndefined(); // ping waits for pong's exit
    expect(await t.request({ kind: 'migrate', pid: ping, to: h.id })).toMatchObject({ kind: 'migrate.ok', peer: h.id });
    exits.release(); // a relays it on to h, though it came from b (a took pong's record over from b)
    expect(await c.pump(() => !!t.exit(ping), 400_000)).toBe(true);
    expect(t.exit(ping)).toMatchObject({ code: 0 });
    expect(masked(t.shown(ping))).toBe(pingOutput(3000));
    notices.release();
  }, 300_000);
});

/** What `ping N` prints, its timing masked. */
function pingOutput(n: number): string {
  return Array.from({ length: n }, (_, i) => `pong ${i + 1}\n`).join('') + `${n} round trips, avg X ms\npong exited with 0\n`;
}
