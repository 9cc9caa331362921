// Pre-copy live migration on simulated peers with real programs (test-cluster.ts): memhog (a heap
// of incompressible bytes it keeps walking, one word changed per round) moves while its base — a
// checkpoint taken as it runs — travels first; frozen, only a delta goes. Its output is the
// unmoved one, and what travelled while it stood still is a small part of its image (stop-and-copy
// ships all of it). A target that lost the base gets the full image, from the same freeze. Drain
// moves pre-copy too.
import { beforeAll, describe, expect, test } from 'vitest';
import { buildPrograms } from '../../kernel/wasi/test-programs.ts';
import type { SimPeer } from '../../host/sim/sim.ts';
import type { Envelope } from '../../kernel/types.ts';
import type { ToExecutor } from '../../kernel/process/protocol.ts';
import type { PeerMessage } from './protocol.ts';
import { simCluster, type Terminal } from './test-cluster.ts';

beforeAll(() => buildPrograms(), 180_000);

const KIB = 2048;
const HEAP = KIB * 1024;
/** Rounds of the unmoved run that checks memhogLines against the real program. */
const ROUNDS = 100;
/** Stop-and-copy or pre-copy, no rebalancing, no periodic checkpoints. */
const OPTS = { rebalance: false, checkpointEveryMs: 0 };

type Cluster = Awaited<ReturnType<typeof simCluster>>;

/** Every Scheduler message `peer` receives from other peers, with the bytes of its image, delta or module (passed on unchanged). */
function spy(c: Cluster, peer: SimPeer) {
  const seen: { from: string; kind: string; pid?: string; bytes: number; noBase?: boolean; at: number }[] = [];
  const sched = c.schedulerOf(peer);
  const receive = sched.receive.bind(sched);
  sched.receive = (env: Envelope) => {
    if (env.from.port === 'scheduler' && env.from.peer !== peer.id) {
      const m = env.body as PeerMessage & { image?: Uint8Array; delta?: Uint8Array; noBase?: boolean };
      seen.push({ from: env.from.peer, kind: m.kind, ...('pid' in m ? { pid: m.pid } : {}), bytes: (m.image ?? m.delta)?.length ?? 0, ...(m.noBase ? { noBase: true } : {}), at: c.sim.now });
    }
    receive(env);
  };
  return {
    /** Kinds of the messages about `pid` (only those from `from`, when given). */
    kinds: (pid: string, from?: SimPeer) => seen.filter((s) => s.pid === pid && (!from || s.from === from.id)).map((s) => s.kind),
    of: (pid: string, kind: string) => seen.filter((s) => s.pid === pid && s.kind === kind),
  };
}

/** What `peer`'s Scheduler posts to its executors, in order (kind and executor). */
function posted(c: Cluster, peer: SimPeer): { t: string; executor: number }[] {
  const exec = (c.schedulerOf(peer) as unknown as { devices: { exec: { post(e: number, m: ToExecutor): void } } }).devices.exec;
  const post = exec.post.bind(exec);
  const seen: { t: string; executor: number }[] = [];
  exec.post = (e, m) => {
    seen.push({ t: m.t, executor: e });
    post(e, m);
  };
  return seen;
}

/** Counts the freezes `peer`'s Scheduler asks its executors for. */
function freezes(c: Cluster, peer: SimPeer): () => number {
  const seen = posted(c, peer);
  return () => seen.filter((m) => m.t === 'freeze').length;
}

/**
 * The first `n` lines memhog KIB prints (programs/c/memhog.c, computed here: they depend only on
 * its arguments), so a run killed after any number of rounds can be checked whole.
 */
const memhogLines = (() => {
  const heap = new Uint32Array(HEAP / 4);
  let x = 2463534242;
  for (let i = 0; i < heap.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    heap[i] = x >>> 0;
  }
  const lines: string[] = [];
  let sum = 0;
  return (n: number): string => {
    for (let r = lines.length + 1; r <= n; r++) {
      for (let i = 0; i < heap.length; i++) sum = (Math.imul(sum, 31) + heap[i]!) >>> 0;
      heap[r % heap.length]! ^= sum;
      lines.push(`round ${r} sum ${sum.toString(16).padStart(8, '0')}\n`);
    }
    return lines.slice(0, n).join('');
  };
})();

/** An unmoved run of ROUNDS rounds prints what memhogLines says (the reference the moved runs are checked against). */
async function unmoved(c: Cluster): Promise<void> {
  const t = c.terminal(c.peers[0]!);
  const pid = await t.run('memhog', [String(KIB), String(ROUNDS)], { on: c.peers[1]! });
  expect(await c.pump(() => !!t.exit(pid), 400_000)).toBe(true);
  expect(t.exit(pid)).toMatchObject({ code: 0 });
  expect(t.shown(pid)).toBe(memhogLines(ROUNDS));
}

const lines = (t: Terminal, pid: string) => t.shown(pid).split('\n').length - 1;

/** memhog (no round limit) on b, once it printed a few rounds (its heap is filled and walked). */
async function started(c: Cluster) {
  const [a, b, t3] = c.peers as [SimPeer, SimPeer, SimPeer];
  const t = c.terminal(a);
  const pid = await run(c, t, b);
  return { a, b, t3, t, pid };
}

async function run(c: Cluster, t: Terminal, on: SimPeer): Promise<string> {
  const pid = await t.run('memhog', [String(KIB)], { on });
  expect(await c.pump(() => lines(t, pid) >= 3, 400_000)).toBe(true);
  return pid;
}

/** Lets it print a few rounds more where it runs now, kills it, and checks its output: every round once, in order, as unmoved. */
async function finish(c: Cluster, t: Terminal, pid: string): Promise<void> {
  const n = lines(t, pid);
  expect(await c.pump(() => lines(t, pid) >= n + 3, 400_000)).toBe(true);
  expect(await t.request({ kind: 'kill', pid })).toMatchObject({ kind: 'kill.ok' });
  expect(await c.pump(() => !!t.exit(pid), 400_000)).toBe(true);
  expect(lines(t, pid)).toBeGreaterThan(n);
  expect(t.shown(pid)).toBe(memhogLines(lines(t, pid)));
}

describe('pre-copy migration', () => {
  test('memhog moves: the base goes while it runs, only a delta while it is frozen; same output as unmoved, far fewer bytes frozen than its image', async () => {
    const c = await simCluster(3, { seed: 'precopy', scheduler: OPTS });
    await unmoved(c);
    const { b, t3, t, pid } = await started(c);
    const atTarget = spy(c, t3);
    const atSource = spy(c, b);
    const frozenTimes = freezes(c, b);
    const toT3 = posted(c, t3);
    const r = await t.request({ kind: 'migrate', pid, to: t3.id });
    expect(r).toMatchObject({ kind: 'migrate.ok', pid, peer: t3.id });
    const ok = r as Extract<typeof r, { kind: 'migrate.ok' }>;
    // memhog never ran on t3: its executor rewrote it while the base was on its way, not at the thaw (same executor).
    const prepares = toT3.filter((m) => m.t === 'prepare');
    const thaw = toT3.findIndex((m) => m.t === 'thaw');
    expect(prepares).toHaveLength(1);
    expect(toT3.indexOf(prepares[0]!)).toBeLessThan(thaw);
    expect(toT3[thaw]!.executor).toBe(prepares[0]!.executor);
    // The base, then the delta, then go: no full image.
    expect(atTarget.kinds(pid)).toEqual(['precopy', 'immigrate.delta', 'immigrate.go']);
    expect(atSource.kinds(pid, t3)).toEqual(['precopy.ok', 'immigrate.ready', 'immigrated']);
    expect(frozenTimes()).toBe(1);
    const base = atTarget.of(pid, 'precopy')[0]!;
    const delta = atTarget.of(pid, 'immigrate.delta')[0]!;
    expect(base.bytes).toBeGreaterThan(HEAP); // incompressible: the whole heap travelled, before the freeze
    expect(ok.frozenBytes).toBe(delta.bytes);
    expect(ok.frozenBytes!).toBeLessThan(HEAP / 4);
    expect(ok.precopyMs).toBeGreaterThanOrEqual(0);
    expect(ok.freezeMs).toBeGreaterThanOrEqual(0);
    // Its new host lists it (a busy program makes polling another peer's table slow: ask the host).
    expect(c.schedulerOf(t3).table().find((row) => row.pid === pid)).toMatchObject({ peer: t3.id, moves: 1 });
    await finish(c, t, pid);
  }, 300_000);

  test('stop-and-copy (precopy: false) for comparison: the whole image travels while it is frozen', async () => {
    const c = await simCluster(3, { seed: 'stop-and-copy', scheduler: { ...OPTS, precopy: false } });
    const { t3, t, pid } = await started(c);
    const atTarget = spy(c, t3);
    const r = await t.request({ kind: 'migrate', pid, to: t3.id });
    expect(r).toMatchObject({ kind: 'migrate.ok', peer: t3.id, precopyMs: 0 });
    expect(atTarget.kinds(pid)).toEqual(['immigrate', 'immigrate.go']);
    expect((r as unknown as { frozenBytes: number }).frozenBytes).toBeGreaterThan(HEAP);
    expect(await t.request({ kind: 'kill', pid })).toMatchObject({ kind: 'kill.ok' });
  }, 300_000);

  test("the target lost the base before the delta came: 'no base', and the full image goes from the same freeze; output as unmoved", async () => {
    const c = await simCluster(3, { seed: 'no-base', scheduler: OPTS });
    const { b, t3, t, pid } = await started(c);
    const atSource = spy(c, b);
    const frozenTimes = freezes(c, b);
    const deltas = c.intercept(t3, (m) => m.kind === 'immigrate.delta');
    t.send({ kind: 'migrate', req: 7001, pid, to: t3.id });
    expect(await c.pump(() => deltas.caught().length > 0, 400_000)).toBe(true);
    // As if t3 had restarted (or dropped it): the base is gone when the delta arrives.
    (c.schedulerOf(t3) as unknown as { bases: { drop(pid: string): void; size: number } }).bases.drop(pid);
    deltas.release();
    const reply = () => t.msgs.find((m) => 'req' in m && m.req === 7001);
    expect(await c.pump(() => !!reply(), 400_000)).toBe(true);
    expect(reply()).toMatchObject({ kind: 'migrate.ok', peer: t3.id });
    const refusal = atSource.of(pid, 'immigrate.failed');
    expect(refusal).toHaveLength(1);
    expect(refusal[0]!.noBase).toBe(true);
    expect(atSource.kinds(pid, t3)).toEqual(['precopy.ok', 'immigrate.failed', 'immigrate.ready', 'immigrated']);
    expect(frozenTimes()).toBe(1);
    // The delta and then the whole image went while it stood still.
    expect((reply() as unknown as { frozenBytes: number }).frozenBytes).toBeGreaterThan(HEAP);
    await finish(c, t, pid);
    expect((c.schedulerOf(t3) as unknown as { bases: { size: number } }).bases.size).toBe(0);
  }, 300_000);

  test('killed during the pre-copy: the move ends ("it has ended"), nothing was frozen, and the target drops the base it kept', async () => {
    const c = await simCluster(3, { seed: 'precopy-kill', scheduler: OPTS });
    const { b, t3, t, pid } = await started(c);
    const frozenTimes = freezes(c, b);
    const atTarget = spy(c, t3);
    const targetBases = () => (c.schedulerOf(t3) as unknown as { bases: { size: number } }).bases.size;
    let keptUntil: number | undefined;
    c.monitors.push(() => {
      if (keptUntil === undefined && atTarget.of(pid, 'precopy').length && targetBases() === 0) keptUntil = c.sim.now;
    });
    // The base's ack is kept from the source: it is still pre-copying when the kill comes.
    const acks = c.intercept(b, (m) => m.kind === 'precopy.ok');
    t.send({ kind: 'migrate', req: 7101, pid, to: t3.id });
    expect(await c.pump(() => acks.caught().length > 0, 400_000)).toBe(true);
    expect(targetBases()).toBe(1);
    expect(await t.request({ kind: 'kill', pid })).toMatchObject({ kind: 'kill.ok' });
    const reply = () => t.msgs.find((m) => 'req' in m && m.req === 7101);
    expect(await c.pump(() => !!reply() && targetBases() === 0, 400_000)).toBe(true);
    // Dropped when the cancel came (the step it arrived in), not by the base's own timeout.
    const cancels = atTarget.of(pid, 'immigrate.cancel');
    expect(cancels).toHaveLength(1);
    expect(keptUntil! - cancels[0]!.at).toBeGreaterThanOrEqual(0);
    expect(keptUntil! - cancels[0]!.at).toBeLessThanOrEqual(1);
    expect(reply()).toMatchObject({ kind: 'migrate.failed', message: `cannot move ${pid}: it has ended` });
    expect(frozenTimes()).toBe(0);
    acks.release(); // a late ack changes nothing: the move is over
    expect(await c.pump(() => !!t.exit(pid), 400_000)).toBe(true);
    expect(targetBases()).toBe(0);
  }, 300_000);

  test('drain moves every process with pre-copy: deltas only, outputs as unmoved', async () => {
    const c = await simCluster(3, { seed: 'drain-precopy', scheduler: OPTS, slots: 2 });
    const [a, b, t3] = c.peers as [SimPeer, SimPeer, SimPeer];
    const t = c.terminal(a);
    const pids = [await run(c, t, b), await run(c, t, b)];
    const spies = [spy(c, a), spy(c, t3)];
    expect(await c.terminal(b).request({ kind: 'drain' })).toMatchObject({ kind: 'drain.ok', moved: 2, left: 0 });
    for (const pid of pids) {
      const got = spies.flatMap((s) => s.kinds(pid));
      expect(got).toContain('precopy');
      expect(got).toContain('immigrate.delta');
      expect(got).not.toContain('immigrate');
    }
    for (const pid of pids) await finish(c, t, pid);
  }, 300_000);
});
