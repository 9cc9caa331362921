// A parent moved while it is blocked in a timed `wait` keeps that wait's deadline (the go carries
// what is left of it; the thawed process asks the wait again and gets the first deadline): it
// times out once, at the original deadline and not a full timeout after the move, or gets its
// child's status once when the child ends first; its output is the unmoved one. Real programs:
// `waiter 0 30000 PEER` (programs/c/waiter.c) spawns a child on PEER and waits for it 30 s.
//
// Determinism: the child's end is held back by the test, not left to a race between the child's
// real time and the simulator's virtual clock. Its host's `exited` and `table` (either settles
// the parent's record) are caught at every peer the parent runs on and released when the case
// says the child ends. Times are simulated: the timeout's distance from the line the parent
// prints just before it waits is exact up to message latencies (SLACK_MS).
import { beforeAll, describe, expect, test } from 'vitest';
import { buildPrograms, program } from '../../kernel/wasi/test-programs.ts';
import { simCluster, type Terminal } from './test-cluster.ts';

beforeAll(() => buildPrograms(), 180_000);

/**
 * The parent's wait timeout: long, because a move lasts as long as its thaw takes in real time
 * (the module compiled on the new host) while simulated time runs on (0.1–1.2 s of it seen
 * here): every move must end well inside the wait. 30 s of simulated time pump in well under a second.
 */
const TIMEOUT_MS = 30_000;
/** The print → wait gap, the latency of go (which carries the time left) and of the reply. */
const SLACK_MS = 100;
const WAITING = `waiting up to ${TIMEOUT_MS} ms for a child of 0 ms\n`;

type Cluster = Awaited<ReturnType<typeof simCluster>>;
type Peer = Cluster['peers'][number];

/** The answers to the parent's `wait` calls, in order (a status, or a timeout), with the peer that gave them. */
type WaitAnswer = { peer: string; code: number } | { peer: string; errno: 'ETIMEDOUT' };

function waitAnswers(replies: Cluster['replies'], pid: string): WaitAnswer[] {
  const out: WaitAnswer[] = [];
  for (const { peer, pid: p, reply } of replies) {
    if (p !== pid) continue;
    if (reply.ok && reply.op === 'wait') out.push({ peer, code: reply.code });
    else if (!reply.ok && reply.errno === 'ETIMEDOUT') out.push({ peer, errno: 'ETIMEDOUT' });
  }
  return out;
}

/**
 * One waiter run: started on `on` with its child on `childHost`, its moments stamped in virtual
 * time after every pump step (when its "waiting" line reached the terminal, when it timed out, when it exited).
 */
async function startWaiter(cl: Cluster, t: Terminal, on: Peer, childHost: Peer) {
  // Without Fork On Wait: a process in a speculation (on its wait) cannot be frozen.
  const r = await t.request({ kind: 'run', name: 'waiter', module: program('waiter'), args: ['0', String(TIMEOUT_MS), childHost.id.slice(0, 8)], on: on.id, speculation: 'off' });
  if (r.kind !== 'run.ok') throw new Error(JSON.stringify(r));
  const pid = r.pid;
  const at: { printed?: number; timedOut?: number; exited?: number } = {};
  cl.monitors.push(() => {
    const now = cl.sim.now;
    if (at.printed === undefined && t.raw(pid).startsWith(WAITING)) at.printed = now;
    if (at.timedOut === undefined && waitAnswers(cl.replies, pid).some((a) => 'errno' in a)) at.timedOut = now;
    if (at.exited === undefined && t.exit(pid)) at.exited = now;
  });
  return { pid, at };
}

/** Holds back what tells `hosts` that a process on `childHost` ended, until release(). */
function holdChildEnd(cl: Cluster, hosts: Peer[], childHost: Peer) {
  const held = hosts.map((p) => cl.intercept(p, (m, from) => from === childHost.id && (m.kind === 'exited' || m.kind === 'table')));
  return {
    /** The child's `exited` is held somewhere (it has ended). */
    ended: () => held.some((h) => h.caught().some((m) => m.kind === 'exited')),
    release: () => held.forEach((h) => h.release()),
  };
}

describe('a parent moved during a timed wait keeps its deadline', () => {
  // Moved once (b → a), and twice (b → a → d): the timeout comes at the first deadline, on the last host.
  for (const hops of [1, 2] as const) {
    test(`the child outlives the timeout, the parent moved ${hops === 1 ? 'once' : 'twice'} while waiting: it times out once, at the original deadline; output identical`, async () => {
      const cl = await simCluster(4, { seed: `timed-wait-timeout-${hops}` });
      const { peers, pump, terminal, replies } = cl;
      const [a, b, c, d] = peers as [Peer, Peer, Peer, Peer];
      const t = terminal(a);
      const parentHosts = [a, b, d];

      // Unmoved: the reference output and timing.
      let gate = holdChildEnd(cl, parentHosts, c);
      const u = await startWaiter(cl, t, b, c);
      expect(await pump(() => u.at.timedOut !== undefined, 200_000)).toBe(true);
      gate.release();
      expect(await pump(() => !!t.exit(u.pid), 200_000)).toBe(true);
      const want = t.shown(u.pid);
      expect(want).toBe(`${WAITING}timed out\nchild exited 7\n`);
      expect(Math.abs(u.at.timedOut! - u.at.printed! - TIMEOUT_MS)).toBeLessThanOrEqual(SLACK_MS);

      // Moved while waiting, at even steps of the timeout.
      gate = holdChildEnd(cl, parentHosts, c);
      const m = await startWaiter(cl, t, b, c);
      expect(await pump(() => m.at.printed !== undefined, 200_000)).toBe(true);
      const printed = m.at.printed!;
      const route = [a, d].slice(0, hops);
      for (const [i, to] of route.entries()) {
        const when = printed + ((i + 1) * TIMEOUT_MS) / (hops + 1) - SLACK_MS;
        expect(await pump(() => cl.sim.now >= when, 200_000)).toBe(true);
        expect(await t.request({ kind: 'migrate', pid: m.pid, to: to.id })).toMatchObject({ kind: 'migrate.ok', peer: to.id });
        expect(m.at.timedOut).toBeUndefined(); // it moved while blocked in the wait
      }
      expect(gate.ended()).toBe(true); // the child has ended; only its news is held
      expect(await pump(() => m.at.timedOut !== undefined, 200_000)).toBe(true);
      // The first deadline: not restarted by a move (that would be at least TIMEOUT_MS after the last move).
      expect(Math.abs(m.at.timedOut! - printed - TIMEOUT_MS)).toBeLessThanOrEqual(SLACK_MS);
      gate.release();
      expect(await pump(() => !!t.exit(m.pid), 200_000)).toBe(true);
      expect(t.exit(m.pid)).toMatchObject({ code: 0 });
      expect(t.shown(m.pid)).toBe(want);
      const last = route[route.length - 1]!;
      // One timeout, then the status of the wait without one: both on the last host.
      expect(waitAnswers(replies, m.pid)).toEqual([
        { peer: last.id, errno: 'ETIMEDOUT' },
        { peer: last.id, code: 7 },
      ]);
    }, 240_000);
  }

  test('the child ends before the deadline, after the parent moved while waiting: its status once, no timeout; output identical', async () => {
    const cl = await simCluster(3, { seed: 'timed-wait-exit' });
    const { peers, pump, terminal, replies } = cl;
    const [a, b, c] = peers as [Peer, Peer, Peer];
    const t = terminal(a);

    // Unmoved: the child's end is released as soon as it happened (well before the deadline).
    let gate = holdChildEnd(cl, [a, b], c);
    const u = await startWaiter(cl, t, b, c);
    expect(await pump(() => gate.ended(), 200_000)).toBe(true);
    gate.release();
    expect(await pump(() => !!t.exit(u.pid), 200_000)).toBe(true);
    const want = t.shown(u.pid);
    expect(want).toBe(`${WAITING}child exited 7\n`);

    gate = holdChildEnd(cl, [a, b], c);
    const m = await startWaiter(cl, t, b, c);
    expect(await pump(() => m.at.printed !== undefined && gate.ended(), 200_000)).toBe(true);
    const printed = m.at.printed!;
    expect(await pump(() => cl.sim.now >= printed + TIMEOUT_MS / 3, 200_000)).toBe(true);
    expect(await t.request({ kind: 'migrate', pid: m.pid, to: a.id })).toMatchObject({ kind: 'migrate.ok', peer: a.id });
    // The thawed parent waits again on a (with what is left of its timeout), the child's end still held.
    await pump(() => false, 200, 0);
    expect(waitAnswers(replies, m.pid)).toEqual([]);
    expect(cl.sim.now).toBeLessThan(printed + TIMEOUT_MS - 1000);
    gate.release();
    expect(await pump(() => !!t.exit(m.pid), 200_000)).toBe(true);
    expect(m.at.exited!).toBeLessThan(printed + TIMEOUT_MS);
    expect(t.exit(m.pid)).toMatchObject({ code: 0 });
    expect(t.shown(m.pid)).toBe(want);
    expect(waitAnswers(replies, m.pid)).toEqual([{ peer: a.id, code: 7 }]);
  }, 240_000);
});
