// Checkpoints of parents: a parent is checkpointed with its children's records; when its host
// crashes its spawner restarts it elsewhere, the new host becomes the children's spawner (their
// hosts did not hang them up: the parent had a checkpoint), and a child that ended meanwhile is
// answered from its host's memory. A parent without a checkpoint takes its children along, as before.
import { beforeAll, describe, expect, test } from 'vitest';
import { buildPrograms } from '../../kernel/wasi/test-programs.ts';
import { filesOf } from '../../host/common/boot.ts';
import { CheckpointStore } from '../dispatcher/checkpoint-store.ts';
import type { ProcessInfo } from './client.ts';
import { simCluster, steadyCheckpoint, type Terminal } from './test-cluster.ts';

beforeAll(() => buildPrograms(), 180_000);

/** Checkpoints every 300 virtual ms (the pump advances virtual time slowly while programs run). */
const OPTS = { rebalance: false, checkpointEveryMs: 300 };

/** Output as the terminal shows it, with what depends on where and how fast it ran masked. */
const masked = (out: string) => out.replace(/ on [0-9a-f]{8}:/g, ' on PEER:');

type Cluster = Awaited<ReturnType<typeof simCluster>>;

/** Waits (pumping) until `t`'s table has `n` rows that `pred` accepts. */
async function findRows(c: Cluster, t: Terminal, pred: (r: ProcessInfo) => boolean, n: number): Promise<ProcessInfo[] | undefined> {
  for (let i = 0; i < 400; i++) {
    const rows = (await c.ps(t)).filter(pred);
    if (rows.length >= n) return rows;
    await c.pump(() => false, 50, 0);
  }
  return undefined;
}

describe('checkpoints of parents', () => {
  test('journal (its replica on another peer) checkpointed, its host crashes mid-run: restarted elsewhere, output identical, exit 0', async () => {
    const c = await simCluster(3, { scheduler: OPTS, seed: 'ckpt-journal' });
    const { peers, pump, terminal, crash, intercept, findRow } = c;
    const [a, b, p3] = peers as [(typeof peers)[0], (typeof peers)[0], (typeof peers)[0]];
    const t = terminal(a);
    const store = new CheckpointStore(filesOf(a.kernel).fs);
    const ARGS = ['300', '20', p3.id.slice(0, 8)];
    const run = () => t.run('journal', ARGS, { on: b, speculation: 'off' });
    const uncrashed = await run();
    expect(await pump(() => !!t.exit(uncrashed), 200_000)).toBe(true);
    expect(t.exit(uncrashed)).toMatchObject({ code: 0 });
    const want = t.shown(uncrashed);
    expect(want).toMatch(/writer  [0-9a-f]{16} 1228800, 0 unexpected replies\nreplica [0-9a-f]{16} 1228800\nreplica exited 0\n$/);

    const pid = await run();
    expect(await pump(() => t.raw(pid).includes('record 100 acknowledged'), 200_000)).toBe(true);
    const replica = (await findRow(t, (r) => r.parent === pid && r.state !== 'EXITED'))!;
    expect(replica.peer).toBe(p3.id);
    // The writer's calls are held at the replica's host: it blocks in one, and is checkpointed
    // there (records and calls agree with the image: a call the replica answered after the
    // checkpoint would be a repeat the replica drops, its reply gone with the crashed host).
    const held = intercept(p3, (m) => m.kind === 'deliver' && m.pid === replica.pid);
    expect(await pump(() => held.caught().length > 0, 200_000)).toBe(true);
    expect(await steadyCheckpoint(c, store, pid)).toBeDefined();
    const before = t.raw(pid);
    crash(b);
    // Restarted on a or p3; its new host tells p3 it is the replica's spawner; then the held call goes through.
    const row = await findRow(t, (r) => r.pid === pid && r.state !== 'EXITED' && r.state !== 'MIGRATING' && r.peer !== b.id);
    if (!row) throw new Error(`no restarted row: ${JSON.stringify({ rows: await c.ps(t), lost: t.lost(pid), exit: t.exit(pid), tail: t.msgs.slice(-8) })}`);
    expect(row.moves).toBe(1);
    held.release();
    expect(await pump(() => !!t.exit(pid), 200_000)).toBe(true);
    expect(t.exit(pid)).toMatchObject({ code: 0 });
    expect(t.lost(pid)).toBeUndefined();
    expect(t.shown(pid)).toBe(want);
    expect(t.shown(pid).startsWith(before)).toBe(true);
    expect(t.raw(pid, 2)).toBe('');
  }, 240_000);

  test('primes with parts: a part ends between the checkpoint and the crash; the restarted parent gets its status once, output identical', async () => {
    const c = await simCluster(3, { scheduler: OPTS, seed: 'ckpt-primes' });
    const { peers, pump, terminal, crash, intercept, findRow } = c;
    const [a, b] = peers as [(typeof peers)[0], (typeof peers)[0]];
    const t = terminal(a);
    const store = new CheckpointStore(filesOf(a.kernel).fs);
    const ARGS = ['10000000', '3'];
    const uncrashed = await t.run('primes', ARGS, { on: b });
    expect(await pump(() => !!t.exit(uncrashed), 200_000)).toBe(true);
    expect(t.exit(uncrashed)).toMatchObject({ code: 0 });
    const want = masked(t.shown(uncrashed));
    expect(want).toMatch(/^part 2\.\.\d+ on PEER: \d+ primes\nprimes below 10000000: 664579\n$/);

    const pid = await t.run('primes', ARGS, { on: b });
    // The parts' `exited` never reach b (the parent's host, their spawner): they end "between the
    // checkpoint and the crash" as far as the records go. Their results reach the parent first (same link, sent before).
    // (nor do the tables of their hosts that say how they ended: b would settle them from those)
    const exits = intercept(b, (m) => (m.kind === 'exited' && m.pid !== pid) || (m.kind === 'table' && m.rows.some((r) => r.parent === pid && r.state === 'EXITED')));
    const exited = () => exits.caught().filter((m) => m.kind === 'exited').length;
    expect(await pump(() => exited() === 2, 200_000)).toBe(true);
    const parts = (await findRows(c, t, (r) => r.parent === pid && r.state === 'EXITED', 2))!;
    expect(parts).toHaveLength(2);
    // b has one slot, taken by the parent: the parts run elsewhere, and outlive b's crash in their hosts' memory.
    expect(parts.every((r) => r.peer !== b.id)).toBe(true);
    // A checkpoint taken now has both parts alive in its records, and the parent waiting for them.
    expect(await steadyCheckpoint(c, store, pid)).toBeDefined();
    expect(t.exit(pid)).toBeUndefined();
    crash(b);
    expect(await pump(() => !!t.exit(pid), 200_000)).toBe(true);
    expect(t.exit(pid)).toMatchObject({ code: 0 });
    expect(t.lost(pid)).toBeUndefined();
    expect(masked(t.shown(pid))).toBe(want);
    expect(t.raw(pid, 2)).toBe('');
    const row = await findRow(t, (r) => r.pid === pid && r.state === 'EXITED');
    expect(row?.moves).toBe(1);
  }, 240_000);

  test('a parent with no checkpoint yet: its host crashes, its children are hung up at once (none left running)', async () => {
    // Checkpoints are on, but none is due during the test.
    const c = await simCluster(3, { scheduler: { rebalance: false, checkpointEveryMs: 100_000_000 }, seed: 'ckpt-none' });
    const { peers, pump, terminal, crash, findRow, runningOn } = c;
    const [a, b] = peers as [(typeof peers)[0], (typeof peers)[0]];
    const t = terminal(a);
    const [, , p3] = peers as [(typeof peers)[0], (typeof peers)[0], (typeof peers)[0]];
    // journal's replica waits on p3 for records (a child that would run on forever without its parent).
    const pid = await t.run('journal', ['1000000', '20', p3.id.slice(0, 8)], { on: b, speculation: 'off' });
    expect(await pump(() => t.raw(pid).includes('record 100 acknowledged'), 200_000)).toBe(true);
    const parts = (await findRows(c, t, (r) => r.parent === pid && r.state !== 'EXITED', 1))!.map((r) => r.pid);
    expect(parts).toHaveLength(1);
    crash(b);
    expect(await pump(() => !!t.lost(pid), 200_000)).toBe(true);
    // Hung up well before a restarted parent could have spoken (PARENT_RESTART_GRACE_MS is 67 virtual s).
    const gone = () => parts.every((p) => runningOn(p).executors.length === 0 && runningOn(p).tables.length === 0);
    expect(await pump(gone, 5_000, 0)).toBe(true);
  }, 180_000);
});
