// Live migration of real programs between simulated peers: same pid, output continuous and
// exactly once, stdin and messages that arrive during the move delivered once, files still open;
// and a `migrate` that follows its process (to where it moved, or after the move it met).
import { beforeAll, describe, expect, test } from 'vitest';
import { buildPrograms } from '../../kernel/wasi/test-programs.ts';
import { filesOf } from '../../host/common/boot.ts';
import { MAX_MIGRATE_HOPS } from './protocol.ts';
import { MIGRATE_BUDGET_MS } from './scheduler.ts';
import { BUSY_EVERY, busyLines, simCluster, text } from './test-cluster.ts';

beforeAll(() => buildPrograms(), 180_000);

describe('live migration', () => {
  test('counter moves mid-run: same pid, every tick exactly once, ps shows the new peer, moves counted', async () => {
    const { peers, pump, terminal, seenOn } = await simCluster(3);
    const [a, b, c] = peers as [typeof peers[0], typeof peers[0], typeof peers[0]];
    const t = terminal(a);
    const pid = await t.run('counter', ['3'], { on: b });
    expect(await pump(() => t.raw(pid).includes('tick 1'))).toBe(true);
    const r = await t.request({ kind: 'migrate', pid, to: c.id.slice(0, 8) });
    expect(r).toMatchObject({ kind: 'migrate.ok', pid, peer: c.id });
    if (r.kind === 'migrate.ok') expect(r.freezeMs).toBeGreaterThanOrEqual(0);
    const row = await seenOn(t, pid, c);
    expect(row).toMatchObject({ pid, peer: c.id, moves: 1 });
    expect(await pump(() => !!t.exit(pid))).toBe(true);
    expect(t.exit(pid)).toMatchObject({ code: 0 });
    expect(t.raw(pid)).toMatch(/^tick 1 \(\ds\)\ntick 2 \(\ds\)\ntick 3 \(\ds\)\n$/);
  }, 120_000);

  test('cat (interactive stdin) moves; stdin sent during and after the move reaches it once, in order', async () => {
    const { peers, pump, terminal } = await simCluster(2);
    const [a, b] = peers as [typeof peers[0], typeof peers[0]];
    const t = terminal(a);
    const pid = await t.run('cat', [], { on: b, interactive: true });
    t.send({ kind: 'stdin', pid, data: text('one\n') });
    expect(await pump(() => t.raw(pid) === 'one\n')).toBe(true);
    t.send({ kind: 'migrate', req: 9001, pid, to: a.id });
    // In flight with the move: held by the old host, then handed over.
    t.send({ kind: 'stdin', pid, data: text('two\n') });
    expect(await pump(() => t.msgs.some((m) => m.kind === 'migrate.ok' || m.kind === 'migrate.failed'))).toBe(true);
    expect(t.msgs.find((m) => m.kind === 'migrate.ok' || m.kind === 'migrate.failed')).toMatchObject({ kind: 'migrate.ok', peer: a.id });
    t.send({ kind: 'stdin', pid, data: text('three\n') });
    t.send({ kind: 'stdin.end', pid });
    expect(await pump(() => !!t.exit(pid))).toBe(true);
    expect(t.exit(pid)).toMatchObject({ code: 0 });
    expect(t.raw(pid)).toBe('one\ntwo\nthree\n');
  }, 120_000);

  test('tee keeps its /cluster and /tmp files open across a move; what it wrote before and after is all there', async () => {
    const { peers, pump, terminal } = await simCluster(2);
    const [a, b] = peers as [typeof peers[0], typeof peers[0]];
    const t = terminal(a);
    const onCluster = await t.run('tee', ['/cluster/moved.txt'], { on: b, interactive: true });
    const onTmp = await t.run('tee', ['/tmp/moved.txt'], { on: b, interactive: true });
    for (const pid of [onCluster, onTmp]) t.send({ kind: 'stdin', pid, data: text('before\n') });
    expect(await pump(() => t.raw(onCluster) === 'before\n' && t.raw(onTmp) === 'before\n')).toBe(true);
    for (const pid of [onCluster, onTmp]) {
      const r = await t.request({ kind: 'migrate', pid, to: a.id });
      expect(r).toMatchObject({ kind: 'migrate.ok', peer: a.id });
      t.send({ kind: 'stdin', pid, data: text('after\n') });
      t.send({ kind: 'stdin.end', pid });
    }
    expect(await pump(() => !!t.exit(onCluster) && !!t.exit(onTmp))).toBe(true);
    // close() succeeding means the fd was still valid on the new peer
    expect(t.exit(onCluster)).toMatchObject({ code: 0 });
    expect(t.exit(onTmp)).toMatchObject({ code: 0 });
    expect(t.raw(onCluster)).toBe('before\nafter\n');
    const fs = filesOf(a.kernel).fs;
    const node = (await fs.lookup(fs.root, 'moved.txt')).node;
    expect(new TextDecoder().decode(await fs.read(node, 0, 100))).toBe('before\nafter\n');
  }, 120_000);

  test('pong moves while ping plays with it: every call is answered exactly once', async () => {
    const { peers, pump, terminal, findRow } = await simCluster(3);
    const [a, b, c] = peers as [typeof peers[0], typeof peers[0], typeof peers[0]];
    const t = terminal(a);
    const ping = await t.run('ping', ['400', '--on', b.id.slice(0, 8)], { on: a });
    expect(await pump(() => t.raw(ping).includes('pong 20\n'))).toBe(true);
    const pong = await findRow(t, (r) => r.name === 'pong' && r.state !== 'EXITED');
    expect(pong?.peer).toBe(b.id);
    const r = await t.request({ kind: 'migrate', pid: pong!.pid, to: c.id });
    expect(r).toMatchObject({ kind: 'migrate.ok', peer: c.id });
    expect(await pump(() => !!t.exit(ping), 200_000)).toBe(true);
    expect(t.exit(ping)).toMatchObject({ code: 0 });
    const lines = t.raw(ping, 1).split('\n');
    const pongs = lines.filter((l) => /^pong \d+$/.test(l));
    expect(pongs).toEqual(Array.from({ length: 400 }, (_, i) => `pong ${i + 1}`));
    expect(t.raw(ping)).toMatch(/400 round trips, avg [\d.]+ ms\npong exited with 0\n$/);
  }, 180_000);
});

describe('a migrate follows its process', () => {
  test('sent to the old host right after a move: passed on to the new host, which moves it', async () => {
    const { peers, pump, terminal, findRow, intercept } = await simCluster(3, { seed: 'follow' });
    const [a, b, c] = peers as [typeof peers[0], typeof peers[0], typeof peers[0]];
    const t = terminal(a);
    const lines = (pid: string) => t.raw(pid).split('\n').length - 1;
    const pid = await t.run('busy', [String(BUSY_EVERY)], { on: b });
    expect(await pump(() => lines(pid) >= 1)).toBe(true);
    expect(await t.request({ kind: 'migrate', pid, to: c.id })).toMatchObject({ kind: 'migrate.ok', peer: c.id });
    // A client of the old host: its Scheduler knows only that the process went to c.
    expect(await terminal(b).request({ kind: 'migrate', pid, to: a.id })).toMatchObject({ kind: 'migrate.ok', peer: a.id });
    // A peer's request that reaches the old host (as a stale table would send it): followed too,
    // and the answer comes back through the old host.
    const results = intercept(a, (m) => m.kind === 'migrate.result');
    a.kernel.send({ peer: a.id, port: 'scheduler' }, { peer: c.id, port: 'scheduler' }, { kind: 'migrate', ref: 9_000, pid, to: b.id, hops: 0, budgetMs: MIGRATE_BUDGET_MS });
    expect(await pump(() => results.caught().length > 0, 200_000)).toBe(true);
    expect(results.caught()[0]).toMatchObject({ kind: 'migrate.result', ref: 9_000, ok: true, peer: b.id });
    // Passed on too often (it keeps moving away): a clear error, not an endless chase.
    a.kernel.send({ peer: a.id, port: 'scheduler' }, { peer: c.id, port: 'scheduler' }, { kind: 'migrate', ref: 9_001, pid, to: c.id, hops: MAX_MIGRATE_HOPS, budgetMs: MIGRATE_BUDGET_MS });
    expect(await pump(() => results.caught().length > 1, 200_000)).toBe(true);
    expect(results.caught()[1]).toMatchObject({ ref: 9_001, ok: false, message: expect.stringMatching(/moved on 5 times while the request followed it/) });
    results.release();
    expect(await findRow(t, (r) => r.pid === pid && r.peer === b.id && r.moves === 3 && r.state !== 'MIGRATING')).toBeDefined();
    const after = lines(pid);
    expect(await pump(() => lines(pid) >= after + 2)).toBe(true);
    expect(await t.request({ kind: 'kill', pid })).toMatchObject({ kind: 'kill.ok' });
    expect(await pump(() => !!t.exit(pid))).toBe(true);
    expect(t.raw(pid)).toBe(busyLines(lines(pid)));
  }, 180_000);

  test('one that meets the process while it moves waits for that move to end, then is done where it is', async () => {
    const { peers, pump, terminal, findRow } = await simCluster(3, { seed: 'meet' });
    const [a, b, c] = peers as [typeof peers[0], typeof peers[0], typeof peers[0]];
    const t = terminal(a);
    const lines = (pid: string) => t.raw(pid).split('\n').length - 1;
    const pid = await t.run('busy', [String(BUSY_EVERY)], { on: b });
    expect(await pump(() => lines(pid) >= 1)).toBe(true);
    // Both at once: the second reaches b while the process is frozen for the first.
    t.send({ kind: 'migrate', req: 801, pid, to: c.id });
    t.send({ kind: 'migrate', req: 802, pid, to: a.id });
    const reply = (req: number) => t.msgs.find((m) => 'req' in m && m.req === req);
    expect(await pump(() => !!reply(801) && !!reply(802), 200_000)).toBe(true);
    expect(reply(801)).toMatchObject({ kind: 'migrate.ok', peer: c.id });
    expect(reply(802)).toMatchObject({ kind: 'migrate.ok', peer: a.id });
    expect(await findRow(t, (r) => r.pid === pid && r.peer === a.id && r.moves === 2 && r.state !== 'MIGRATING')).toBeDefined();
    const after = lines(pid);
    expect(await pump(() => lines(pid) >= after + 2)).toBe(true);
    expect(await t.request({ kind: 'kill', pid })).toMatchObject({ kind: 'kill.ok' });
    expect(await pump(() => !!t.exit(pid))).toBe(true);
    expect(t.raw(pid)).toBe(busyLines(lines(pid)));
  }, 180_000);
});

