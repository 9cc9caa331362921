// Live migration of real programs between simulated peers: same pid, output continuous and
// exactly once, stdin and messages that arrive during the move delivered once, files still open.
import { beforeAll, describe, expect, test } from 'vitest';
import { buildPrograms } from '../../kernel/wasi/test-programs.ts';
import { filesOf } from '../../host/common/boot.ts';
import { simCluster, text } from './test-cluster.ts';

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
