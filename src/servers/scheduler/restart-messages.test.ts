// A restarted process loses no message: messages its dead copy took after its checkpoint are sent
// again from their senders' peers' logs (sender-based message logging, message-log.ts), so a
// restarted callee answers the calls it answered before (its caller drops the repeats), and a
// restarted caller gets the replies of the calls it makes again (the callee drops those repeats).
// Each crash comes after the checkpoint AND after messages were taken: the host stops storing
// checkpoints (as if each later one failed), so the restart is from the older one for sure.
import { beforeAll, describe, expect, test } from 'vitest';
import { buildPrograms } from '../../kernel/wasi/test-programs.ts';
import { filesOf } from '../../host/common/boot.ts';
import type { SimPeer } from '../../host/sim/sim.ts';
import { CheckpointStore } from '../dispatcher/checkpoint-store.ts';
import { LshapesHost } from '../../kernel/process/lshapes.ts';
import type { KernelRequest } from '../../kernel/process/protocol.ts';
import type { PeerMessage } from './protocol.ts';
import { simCluster, steadyCheckpoint } from './test-cluster.ts';

beforeAll(() => buildPrograms(), 180_000);

const OPTS = { rebalance: false, checkpointEveryMs: 300 };

/** Output as the terminal shows it, with what depends on where and how fast it ran masked. */
const masked = (out: string) => out.replace(/ on [0-9a-f]{8}:/g, ' on PEER:').replace(/avg [0-9.]+ ms/, 'avg T ms');

type Cluster = Awaited<ReturnType<typeof simCluster>>;
type Deliver = Extract<PeerMessage, { kind: 'deliver' }>;

/** Records (catching nothing) the replayed deliveries every peer receives. Installed before any other intercept. */
function spyReplays(c: Cluster): Deliver[] {
  const seen: Deliver[] = [];
  for (const p of c.peers)
    c.intercept(p, (m) => {
      if (m.kind === 'deliver' && m.replay === true) seen.push(m);
      return false;
    });
  return seen;
}

/**
 * From now on `peer` stores no checkpoint (as if every later one failed): a restart is from the
 * last one stored. Then ten virtual seconds pass (the process still blocked) for that one to be
 * replicated: its blocks must outlive `peer`'s crash.
 */
async function stopCheckpoints(c: Cluster, peer: SimPeer): Promise<void> {
  const store = (c.schedulerOf(peer) as unknown as { checkpoints: CheckpointStore }).checkpoints;
  store.save = () => Promise.reject(new Error('checkpoints stopped by the test'));
  await c.pump(() => false, 10_000, 0);
}

const lines = (s: string) => s.split('\n').length - 1;

/** Messages the peers sent again from their logs (to a restart on another peer or their own). */
const sentAgain = (c: Cluster) => c.peers.reduce((n, p) => n + c.schedulerOf(p).sentAgain, 0);

/** Holds back, at `peer`, the calls to pong's port after the first `n` (pong then blocks in recv; its caller in its call). */
function holdCallsAfter(c: Cluster, peer: SimPeer, n: number) {
  let seen = 0;
  return c.intercept(peer, (m) => m.kind === 'deliver' && m.port === 'ball' && !m.replay && ++seen > n);
}

/**
 * A 3-peer cluster where ping on the second peer plays 30 rounds against pong on the third, run
 * once to the end: `want` is the output a run with a crash in it must still show.
 */
async function pingPongReference(seed: string) {
  const c = await simCluster(3, { scheduler: OPTS, seed });
  const [a, b, p3] = c.peers as [SimPeer, SimPeer, SimPeer];
  const replays = spyReplays(c);
  const t = c.terminal(a);
  const store = new CheckpointStore(filesOf(a.kernel).fs);
  const ARGS = ['30', '--on', p3.id.slice(0, 8)];
  const uncrashed = await t.run('ping', ARGS, { on: b });
  expect(await c.pump(() => !!t.exit(uncrashed), 200_000)).toBe(true);
  expect(t.exit(uncrashed)).toMatchObject({ code: 0 });
  const want = masked(t.shown(uncrashed));
  expect(want).toMatch(/^pong 1\n(.|\n)*pong 30\n30 round trips, avg T ms\npong exited with 0\n$/);
  return { c, b, p3, replays, t, store, ARGS, want };
}

describe('a restarted process loses no message', () => {
  test('pong (callee) restarted: calls its dead copy answered after the checkpoint are sent again; ping gets every answer once, output identical', async () => {
    const { c, b, p3, replays, t, store, ARGS, want } = await pingPongReference('replay-pong');
    const { pump, crash, findRow } = c;

    // ping's sixth call waits at pong's host: pong blocks in recv, and is checkpointed so.
    const held = holdCallsAfter(c, p3, 5);
    const pid = await t.run('ping', ARGS, { on: b });
    expect(await pump(() => held.caught().length > 0, 200_000)).toBe(true);
    const pong = (await findRow(t, (r) => r.parent === pid && r.state !== 'EXITED'))!;
    expect(pong.peer).toBe(p3.id);
    expect(await steadyCheckpoint(c, store, pong.pid)).toBeDefined();
    await stopCheckpoints(c, p3);
    const atCheckpoint = lines(t.raw(pid));
    held.release();
    // pong's dead copy answers three more calls after its checkpoint.
    expect(await pump(() => lines(t.raw(pid)) >= atCheckpoint + 3, 200_000)).toBe(true);
    crash(p3);
    expect(await pump(() => !!t.exit(pid), 400_000)).toBe(true);
    expect(t.exit(pid)).toMatchObject({ code: 0 });
    expect(masked(t.shown(pid))).toBe(want);
    expect(t.raw(pid, 2)).toBe('');
    // Every answer once: no line was printed twice (ping is not restarted, its output has no repeats).
    expect(masked(t.raw(pid))).toBe(want);
    // The calls pong's dead copy took came again, from ping's host's log.
    expect(sentAgain(c)).toBeGreaterThanOrEqual(3);
    expect(replays.every((m) => m.pid === pong.pid && m.from === pid)).toBe(true);
    const row = await findRow(t, (r) => r.pid === pong.pid && r.state === 'EXITED');
    expect(row?.moves).toBe(1);
  }, 300_000);

  test('ping (caller, a parent) restarted after more calls were answered: the replies come again and answer its repeated calls; output identical', async () => {
    const { c, b, p3, replays, t, store, ARGS, want } = await pingPongReference('replay-ping');
    const { pump, crash, findRow } = c;

    // ping blocks in its sixth call, held at pong's host, and is checkpointed so (with pong's record).
    const held = holdCallsAfter(c, p3, 5);
    const pid = await t.run('ping', ARGS, { on: b });
    expect(await pump(() => held.caught().length > 0, 200_000)).toBe(true);
    const pong = (await findRow(t, (r) => r.parent === pid && r.state !== 'EXITED'))!;
    expect(pong.peer).toBe(p3.id);
    expect(await steadyCheckpoint(c, store, pid)).toBeDefined();
    await stopCheckpoints(c, b);
    const atCheckpoint = lines(t.raw(pid));
    held.release();
    expect(await pump(() => lines(t.raw(pid)) >= atCheckpoint + 3, 200_000)).toBe(true);
    crash(b);
    expect(await pump(() => !!t.exit(pid), 400_000)).toBe(true);
    expect(t.exit(pid)).toMatchObject({ code: 0 });
    expect(t.lost(pid)).toBeUndefined();
    expect(masked(t.shown(pid))).toBe(want);
    expect(t.raw(pid, 2)).toBe('');
    // pong's replies to the calls ping's dead copy made came again from pong's host's log.
    expect(sentAgain(c)).toBeGreaterThanOrEqual(3);
    expect(replays.every((m) => m.pid === pid && m.from === pong.pid)).toBe(true);
    expect((await findRow(t, (r) => r.pid === pid && r.state === 'EXITED'))?.moves).toBe(1);
  }, 300_000);

  test('journal (a parent, its replica on another peer): the writer restarted after more records were acknowledged; output and digests identical', async () => {
    const c = await simCluster(3, { scheduler: OPTS, seed: 'replay-journal' });
    const { peers, pump, terminal, crash, intercept, findRow } = c;
    const [a, b, p3] = peers as [SimPeer, SimPeer, SimPeer];
    const replays = spyReplays(c);
    const t = terminal(a);
    const store = new CheckpointStore(filesOf(a.kernel).fs);
    const ARGS = ['300', '20', p3.id.slice(0, 8)];
    const run = () => t.run('journal', ARGS, { on: b, speculation: 'off' });
    const uncrashed = await run();
    expect(await pump(() => !!t.exit(uncrashed), 200_000)).toBe(true);
    expect(t.exit(uncrashed)).toMatchObject({ code: 0 });
    const want = t.shown(uncrashed);
    expect(want).toMatch(/writer  [0-9a-f]{16} 1228800, 0 unexpected replies\nreplica [0-9a-f]{16} 1228800\nreplica exited 0\n$/);

    // The writer blocks in its 121st record's call, held at the replica's host, and is checkpointed so.
    let recs = 0;
    const held = intercept(p3, (m) => m.kind === 'deliver' && m.port === 'rec' && !m.replay && ++recs > 120);
    const pid = await run();
    expect(await pump(() => held.caught().length > 0, 200_000)).toBe(true);
    const replica = (await findRow(t, (r) => r.parent === pid && r.state !== 'EXITED'))!;
    expect(replica.peer).toBe(p3.id);
    expect(await steadyCheckpoint(c, store, pid)).toBeDefined();
    await stopCheckpoints(c, b);
    held.release();
    // The replica takes a hundred more records from the writer's dead copy (appended once: its digest says so).
    expect(await pump(() => t.raw(pid).includes('record 200 acknowledged'), 200_000)).toBe(true);
    crash(b);
    expect(await pump(() => !!t.exit(pid), 400_000)).toBe(true);
    expect(t.exit(pid)).toMatchObject({ code: 0 });
    expect(t.lost(pid)).toBeUndefined();
    expect(t.shown(pid)).toBe(want);
    expect(t.raw(pid, 2)).toBe('');
    expect(sentAgain(c)).toBeGreaterThanOrEqual(80);
    expect(replays.every((m) => m.pid === pid && m.from === replica.pid)).toBe(true);
  }, 300_000);

  test('a restarted message is heeded only from the host of the process; malformed ones are dropped; nothing crashes', async () => {
    const c = await simCluster(3, { scheduler: OPTS, seed: 'replay-forged' });
    const { peers, pump, terminal, findRow, schedulerOf } = c;
    const [a, b, p3] = peers as [SimPeer, SimPeer, SimPeer];
    const replays = spyReplays(c);
    const dones: string[] = [];
    for (const p of peers)
      c.intercept(p, (m, from) => {
        if (m.kind === 'restarted.done') dones.push(`${from}>${p.id}`);
        return false;
      });
    const t = terminal(a);
    const ARGS = ['1000000', '--on', b.id.slice(0, 8)];
    const pid = await t.run('ping', ARGS, { on: a });
    expect(await pump(() => t.raw(pid).includes('pong 5\n'), 200_000)).toBe(true);
    const pong = (await findRow(t, (r) => r.parent === pid && r.state !== 'EXITED'))!;
    expect(pong.peer).toBe(b.id);
    const forge = (from: SimPeer, body: unknown) =>
      schedulerOf(a).receive({ from: { peer: from.id, port: 'scheduler' }, to: { peer: a.id, port: 'scheduler' }, body });
    // p3 does not run pong: a (ping's host, whose log has ping's calls) sends nothing again.
    forge(p3, { kind: 'restarted', pid: pong.pid, lastSeen: [] });
    for (const bad of [
      { kind: 'restarted', pid: pong.pid },
      { kind: 'restarted', pid: pong.pid, lastSeen: [[pid, -1]] },
      { kind: 'restarted', pid: pong.pid, lastSeen: [[pid, 1.5]] },
      { kind: 'restarted', pid: 'nope', lastSeen: [] },
      { kind: 'restarted', pid: pong.pid, lastSeen: Array.from({ length: 5000 }, () => [pid, 1]) },
      { kind: 'restarted.done' },
      { kind: 'deliver', pid: pong.pid, port: 'ball', from: pid, token: 0, data: new Uint8Array(1), replay: 'yes' },
    ])
      forge(b, bad);
    expect(await pump(() => dones.includes(`${a.id}>${p3.id}`), 20_000)).toBe(true);
    await pump(() => false, 2_000, 0);
    expect(replays).toEqual([]);
    // The same from pong's host: sent again (pong drops them as repeats and plays on).
    forge(b, { kind: 'restarted', pid: pong.pid, lastSeen: [] });
    expect(await pump(() => replays.length > 0, 20_000)).toBe(true);
    expect(replays.every((m) => m.pid === pong.pid && m.from === pid)).toBe(true);
    const shownBefore = lines(t.raw(pid));
    expect(await pump(() => lines(t.raw(pid)) >= shownBefore + 5, 200_000)).toBe(true);
    expect(t.raw(pid, 2)).toBe('');
    expect(t.raw(pid)).toMatch(/^(pong \d+\n)+$/);
    const got = t.raw(pid).trim().split('\n').map((l) => Number(l.slice(5)));
    expect(got).toEqual(got.map((_, i) => i + 1));
    void p3;
  }, 300_000);
});

describe('early replies (lshapes): a replayed reply that comes before its call is made again answers that call', () => {
  const PARENT = 'aaaaaa.1';
  const enc = (t: string) => new TextEncoder().encode(t);
  /** A process whose `call`s go to its parent (handle 0) and are sent (the callee would drop them as repeats). */
  function proc() {
    const sent: KernelRequest[] = [];
    const host = new LshapesHost({ pid: 'aaaaaa.2', peer: 'p', parent: PARENT, request: async (req) => (sent.push(req), { ok: true, op: 'send' }) });
    const mem = new WebAssembly.Memory({ initial: 1 });
    const u8 = new Uint8Array(mem.buffer);
    u8.set(enc('ball'), 0);
    u8.set(enc('ping'), 16);
    const fns = host.functions({ memory: () => mem });
    /** A call of port "ball": its result now (a number), or 'blocked'; and the reply's text. */
    const call = () => {
      const r = fns.call!(0, 0, 4, 16, 4, 64, 256, 32, -1);
      if (typeof r !== 'number') return { r: 'blocked' as const, text: '' };
      const len = new DataView(mem.buffer).getUint32(32, true);
      return { r, text: new TextDecoder().decode(u8.subarray(64, 64 + len)) };
    };
    return { host, call, sent };
  }

  test('kept for a token still to be used, answered at once when the call comes; stray ones are not kept; snapshots carry them', () => {
    const a = proc();
    // Replies to calls 1 and 2 (replayed by the callee's peer) before the restored process calls.
    a.host.deliver('#reply:1', PARENT, 0, enc('pong 1'), 11);
    a.host.deliver('#reply:2', PARENT, 0, enc('pong 2'), 12);
    expect(a.call()).toEqual({ r: 0, text: 'pong 1' });
    expect(a.sent).toHaveLength(1); // sent again all the same (same seq): the callee drops the repeat
    // A late reply to call 1 is stray: call 3 will not take it.
    a.host.deliver('#reply:1', PARENT, 0, enc('late'), 13);
    expect(a.host.snapshot().early?.map(([t]) => t)).toEqual([2]);
    const b = proc();
    b.host.restore(a.host.snapshot());
    expect(b.call()).toEqual({ r: 0, text: 'pong 2' });
    expect(b.call().r).toBe('blocked');
    // A no-reply for a call still to come answers it with ESRCH.
    const c = proc();
    c.host.deliver('#noreply:1', PARENT, 0, new Uint8Array(0));
    expect(c.call().r).toBe(71); // ESRCH
  });
});
