// Processes in the middle of Fork On Wait move and are checkpointed (executor.ts quiesces them:
// no new forks until the open speculation settled, then the image; the Scheduler lets the real
// results through while it does): journal, whose writer pipelines its records to its replica on
// another peer, migrates mid-run and prints what a run without speculation prints; journal -f,
// speculating at every fsync, is checkpointed and restarted from it when its host crashes.
// Real programs on simulated peers (test-cluster.ts).
import { beforeAll, describe, expect, test } from 'vitest';
import { buildPrograms } from '../../kernel/wasi/test-programs.ts';
import { filesOf } from '../../host/common/boot.ts';
import { CheckpointStore } from '../dispatcher/checkpoint-store.ts';
import type { InProcessExecution } from '../../kernel/process/in-process.ts';
import type { FromExecutor } from '../../kernel/process/protocol.ts';
import { simCluster, type Terminal } from './test-cluster.ts';

beforeAll(() => buildPrograms(), 180_000);

/** Checkpoints every 300 virtual ms (the pump advances virtual time slowly while programs run). */
const OPTS = { rebalance: false, checkpointEveryMs: 300 };

type Cluster = Awaited<ReturnType<typeof simCluster>>;

/**
 * The freeze answers `peer`'s executors give (frozen / freeze.failed), as its Scheduler receives
 * them: tapped on the way (the simulator builds the executors; their handler is private).
 */
function freezeAnswers(cl: Cluster, peer: Cluster['peers'][number]): { t: string; reason?: string }[] {
  const exec = (cl.schedulerOf(peer) as unknown as { devices: { exec: InProcessExecution } }).devices.exec;
  const box = exec as unknown as { onMessage: (i: number, msg: FromExecutor) => void };
  const deliver = box.onMessage;
  const seen: { t: string; reason?: string }[] = [];
  box.onMessage = (i, msg) => {
    if (msg.t === 'frozen') seen.push({ t: msg.t });
    if (msg.t === 'freeze.failed') seen.push({ t: msg.t, reason: msg.reason });
    deliver(i, msg);
  };
  return seen;
}

async function run(t: Terminal, args: string[], on: string, speculation: 'off' | 'on' | 'mispredict'): Promise<string> {
  const r = await t.request({ kind: 'run', name: 'journal', args, on, speculation });
  if (r.kind !== 'run.ok') throw new Error(JSON.stringify(r));
  return r.pid;
}

/** Whether the checkpoint store (on /cluster) holds an image of `pid`, polled between pumps (a load is asynchronous). */
async function checkpointed(cl: Cluster, store: CheckpointStore, pid: string, also: () => Promise<boolean> = async () => true): Promise<boolean> {
  for (let i = 0; i < 400; i++) {
    const r = await cl.settled(store.load(pid));
    if (r.ok && r.value && (await also())) return true;
    await cl.pump(() => false, 50, 0);
  }
  return false;
}

describe('a speculating process moves and is checkpointed', () => {
  test('journal (speculation on) migrated mid-run: migrate.ok, and the output an unspeculated, unmoved run prints', async () => {
    const cl = await simCluster(3, { seed: 'spec-journal' });
    const { peers, pump, terminal, ps, findRow } = cl;
    const [a, b, c] = peers as [(typeof peers)[0], (typeof peers)[0], (typeof peers)[0]];
    const t = terminal(a);
    const onB = terminal(b);
    const ARGS = ['400', '20', c.id.slice(0, 8)];
    const unmoved = await run(t, ARGS, b.id, 'off');
    expect(await pump(() => !!t.exit(unmoved), 200_000)).toBe(true);
    expect(t.exit(unmoved)).toMatchObject({ code: 0 });
    const want = t.shown(unmoved);
    expect(want).toMatch(/record 400 acknowledged\nwriter  [0-9a-f]{16} 1638400, 0 unexpected replies\nreplica [0-9a-f]{16} 1638400\nreplica exited 0\n$/);

    const pid = await run(t, ARGS, b.id, 'on');
    expect(await pump(() => t.raw(pid).includes('record 100 acknowledged'), 200_000)).toBe(true);
    // It pipelines: its host's table counts its predictions.
    expect(await findRow(onB, (r) => r.pid === pid && (r.speculation?.predictions ?? 0) > 0)).toBeDefined();
    expect(t.exit(pid)).toBeUndefined(); // still running: moved mid-run
    const answers = freezeAnswers(cl, b);
    expect(await t.request({ kind: 'migrate', pid, to: a.id })).toMatchObject({ kind: 'migrate.ok', pid, peer: a.id });
    // Frozen at the first asking: it quiesced, it did not refuse (and the move did not retry).
    expect(answers).toEqual([{ t: 'frozen' }]);
    if (!(await pump(() => !!t.exit(pid), 200_000))) throw new Error(`journal did not end: ${JSON.stringify({ tail: t.raw(pid).slice(-200), err: t.raw(pid, 2), rows: await ps(t) })}`);
    expect(t.exit(pid)).toMatchObject({ code: 0 });
    expect(t.shown(pid)).toBe(want);
    expect(t.raw(pid, 2)).toBe('');
    // It went on speculating where it moved to.
    const row = (await ps(t)).find((r) => r.pid === pid)!;
    expect(row).toMatchObject({ peer: a.id, moves: 1 });
    expect(row.speculation?.predictions ?? 0).toBeGreaterThan(0);
  }, 240_000);

  test("journal's replica moved while its writer pipelines records at it: the records that would make it dependent wait for the move; migrate.ok, output identical", async () => {
    const cl = await simCluster(3, { seed: 'spec-replica' });
    const { peers, pump, terminal } = cl;
    const [a, b, c] = peers as [(typeof peers)[0], (typeof peers)[0], (typeof peers)[0]];
    const t = terminal(a);
    const ARGS = ['6000', '20', c.id.slice(0, 8)];
    const unmoved = await run(t, ARGS, b.id, 'off');
    expect(await pump(() => !!t.exit(unmoved), 200_000)).toBe(true);
    expect(t.exit(unmoved)).toMatchObject({ code: 0 });
    const want = t.shown(unmoved);

    const pid = await run(t, ARGS, b.id, 'on');
    // The replica as soon as c hosts it, and the writer pipelining at it (its host's row counts
    // predictions): the whole run takes a few hundred virtual ms, a table look 20 ms apart is
    // too slow, and so would be waiting for a's table to list it; c's terminal asks.
    let replica: { pid: string; peer: string } | undefined;
    const predictions = () => cl.schedulerOf(b).table().find((r) => r.pid === pid && r.peer === b.id)?.speculation?.predictions ?? 0;
    cl.monitors.push(() => void (replica ??= cl.schedulerOf(c).table().find((r) => r.parent === pid && r.peer === c.id && r.state !== 'EXITED')));
    // (The predictor may find the writer's waits too short for a fork on a loaded machine, its
    // costs being real time in a virtual-time cluster: then it is moved mid-run all the same.)
    const midRun = () => predictions() >= 50 || t.raw(pid).includes('record 1000 acknowledged');
    if (!(await pump(() => !!replica && midRun(), 200_000))) throw new Error(`not caught mid-run: ${JSON.stringify({ replica, predictions: predictions(), exit: t.exit(pid) })}`);
    expect(t.exit(pid)).toBeUndefined();
    const speculating = predictions() >= 50;
    const answers = freezeAnswers(cl, c);
    const r = await terminal(c).request({ kind: 'migrate', pid: replica!.pid, to: a.id });
    expect(r, JSON.stringify(r)).toMatchObject({ kind: 'migrate.ok', pid: replica!.pid, peer: a.id });
    // Frozen at the first asking: its open levels settled, no new one came (before: "speculation did not settle").
    expect(answers).toEqual([{ t: 'frozen' }]);
    // No pre-copy: its checkpoint would have waited for a settling that cannot come while records reach it.
    if (speculating) expect(r).toMatchObject({ precopyMs: 0 });
    if (!(await pump(() => !!t.exit(pid), 200_000))) throw new Error(`journal did not end: ${JSON.stringify({ tail: t.raw(pid).slice(-300), err: t.raw(pid, 2), rows: await cl.ps(t) })}`);
    expect(t.exit(pid)).toMatchObject({ code: 0 });
    expect(t.shown(pid)).toBe(want);
    expect(t.raw(pid, 2)).toBe('');
  }, 240_000);

  test('journal -f speculating at every fsync (mispredict) is checkpointed; its host crashes: restarted from the checkpoint, same output and file as a run without speculation', async () => {
    const cl = await simCluster(3, { seed: 'spec-ckpt', scheduler: OPTS });
    const { peers, pump, terminal, findRow, crash } = cl;
    const [a, b] = peers as [(typeof peers)[0], (typeof peers)[0]];
    const t = terminal(a);
    const onB = terminal(b);
    const fs = filesOf(a.kernel).fs;
    const store = new CheckpointStore(fs);
    const ARGS = ['-f', '/cluster/j.bin', '60', '20'];
    const read = async () => {
      const node = (await fs.lookup(fs.root, 'j.bin')).node;
      return fs.read(node, 0, 60 * 4096 + 1);
    };
    const plain = await run(t, ARGS, b.id, 'off');
    expect(await pump(() => !!t.exit(plain), 200_000)).toBe(true);
    expect(t.exit(plain)).toMatchObject({ code: 0 });
    const want = t.shown(plain);
    expect(want).toMatch(/^\/cluster\/j\.bin: 245760 bytes, digest [0-9a-f]{16}\n$/);
    const r = await cl.settled(read());
    expect(r.ok).toBe(true);
    const file = (r as { ok: true; value: Uint8Array }).value.slice();

    // 'mispredict' forks at every fsync's replica wait (with a wrong guess: each is rolled back),
    // so a checkpoint nearly always finds one open. (With 'on', the simulator's replica waits are
    // too short for the predictor to bother.)
    const pid = await run(t, ARGS, b.id, 'mispredict');
    const speculated = async () => !!(await findRow(onB, (row) => row.pid === pid && (row.speculation?.rollbacks ?? 0) > 0));
    expect(await checkpointed(cl, store, pid, speculated)).toBe(true);
    expect(t.exit(pid)).toBeUndefined();
    crash(b);
    expect(await pump(() => !!t.exit(pid), 200_000, 60_000)).toBe(true);
    expect(t.lost(pid)).toBeUndefined();
    expect(t.exit(pid)).toMatchObject({ code: 0 });
    expect(t.shown(pid)).toBe(want);
    const row = await findRow(t, (x) => x.pid === pid);
    expect(row?.peer).not.toBe(b.id);
    expect(row?.moves).toBe(1);
    const after = await cl.settled(read());
    expect(after.ok && after.value).toEqual(file);
  }, 240_000);
});
