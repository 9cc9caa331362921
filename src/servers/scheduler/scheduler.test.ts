// The Scheduler across a simulated cluster: placement, remote start, output routing, kill, wait,
// lost processes and hangup — deterministic, on virtual time, with scripted executors.
import { describe, expect, test } from 'vitest';
import { SimExecution, simPrograms, type SimStep } from '../../host/sim/exec.ts';
import { Simulation, type SimPeer } from '../../host/sim/sim.ts';
import type { PeerId } from '../../kernel/types.ts';
import type { ClientMessage, ClientRequest, ProcessInfo } from './client.ts';
import { choosePeer, resolvePeer } from './placement.ts';

const PROGRAMS: Record<string, SimStep[]> = {
  hello: [{ out: 'hello\n' }, { out: 'oops\n', fd: 2 }, { exit: 3 }],
  busy: [{ forever: true }],
  work: [{ cpu: 500 }, { exit: 0 }],
  // Spawns three children while it runs, then waits for them.
  fanout: [{ spawn: 'work' }, { spawn: 'work' }, { spawn: 'work' }, { cpu: 200 }, { waitAll: true }, { exit: 0 }],
  info: [{ clusterInfo: true }, { exit: 0 }],
};

interface Client {
  peer: SimPeer;
  msgs: ClientMessage[];
  send(body: ClientRequest): void;
  text(pid: string, fd?: 1 | 2): string;
}

async function cluster(slots: number[], seed = 'scheduler') {
  const execs = new Map<PeerId, SimExecution>();
  const sim = new Simulation({
    seed,
    latencyMs: 2,
    jitterMs: 1,
    programs: simPrograms(PROGRAMS),
    exec: (p, clock) => {
      const e = new SimExecution(slots[p.index]!, clock);
      execs.set(p.id, e);
      return e;
    },
  });
  const peers: SimPeer[] = [];
  for (let i = 0; i < slots.length; i++) peers.push(await sim.addPeer());
  expect(await sim.runUntil(() => sim.converged(), 20_000)).toBe(true);
  await sim.run(500);
  let nextReq = 0;
  let nextPort = 0;
  const client = (peer: SimPeer): Client => {
    const msgs: ClientMessage[] = [];
    const port = `test${++nextPort}`;
    peer.kernel.register(port, (env) => msgs.push(env.body as ClientMessage));
    return {
      peer,
      msgs,
      send: (body) => peer.kernel.send({ peer: peer.id, port }, { peer: peer.id, port: 'scheduler' }, body),
      text: (pid, fd = 1) =>
        msgs
          .filter((m): m is Extract<ClientMessage, { kind: 'out' }> => m.kind === 'out' && m.pid === pid && m.fd === fd)
          .map((m) => new TextDecoder().decode(m.data))
          .join(''),
    };
  };
  const run = async (c: Client, name: string, extra: Partial<Extract<ClientRequest, { kind: 'run' }>> = {}) => {
    const req = ++nextReq;
    c.send({ kind: 'run', req, name, args: [], ...extra });
    let reply: ClientMessage | undefined;
    await sim.runUntil(() => !!(reply = c.msgs.find((m) => (m.kind === 'run.ok' || m.kind === 'run.failed') && m.req === req)), 5000, 10);
    if (reply?.kind !== 'run.ok') throw new Error(reply?.kind === 'run.failed' ? reply.message : 'no answer to run');
    return reply;
  };
  const ps = async (c: Client): Promise<ProcessInfo[]> => {
    const req = ++nextReq;
    c.send({ kind: 'ps', req });
    let reply: ClientMessage | undefined;
    await sim.runUntil(() => !!(reply = c.msgs.find((m) => m.kind === 'ps.ok' && m.req === req)), 1000, 10);
    return (reply as Extract<ClientMessage, { kind: 'ps.ok' }>).rows;
  };
  const exitOf = (c: Client, pid: string) => c.msgs.find((m): m is Extract<ClientMessage, { kind: 'exit' }> => m.kind === 'exit' && m.pid === pid);
  return { sim, peers, execs, client, run, ps, exitOf };
}

describe('placement rule', () => {
  const a = 'a'.repeat(32);
  const b = 'b'.repeat(32);
  const c = 'c'.repeat(32);
  test('most spare capacity wins; self on ties; then the lower id', () => {
    expect(choosePeer([{ id: a, capacity: 2, load: 1 }, { id: b, capacity: 4, load: 1 }], a)).toBe(b);
    expect(choosePeer([{ id: a, capacity: 2, load: 0 }, { id: b, capacity: 2, load: 0 }], b)).toBe(b);
    expect(choosePeer([{ id: a, capacity: 2, load: 0 }, { id: c, capacity: 2, load: 0 }, { id: b, capacity: 2, load: 0 }], 'x'.repeat(32))).toBe(a);
    expect(choosePeer([{ id: a, capacity: 1, load: 3 }, { id: b, capacity: 1, load: 2 }], a)).toBe(b);
    expect(choosePeer([{ id: a, capacity: 0, load: 0 }], a)).toBeUndefined();
  });
  test('peer arguments: full id or unique prefix', () => {
    expect(resolvePeer('aaaa', [a, b])).toEqual({ peer: a });
    expect(resolvePeer('zz', [a])).toEqual({ error: 'not a peer id: zz' });
    expect(resolvePeer('cccc', [a, b])).toEqual({ error: 'no peer cccc in the cluster' });
    expect(resolvePeer('aaaa', [a, 'aaaa' + 'b'.repeat(28)])).toHaveProperty('error');
  });
});

describe('Scheduler', () => {
  test('a process runs, its stdout and stderr and then its exit reach the terminal; ps shows it everywhere', async () => {
    const { sim, peers, client, run, ps, exitOf } = await cluster([2, 2, 2]);
    const c = client(peers[0]!);
    const { pid, peer } = await run(c, 'hello');
    expect(pid).toMatch(/^[0-9a-f]{6}\.\d+$/);
    expect(peer).toBe(peers[0]!.id); // a tie: it stays local
    await sim.runUntil(() => !!exitOf(c, pid), 2000, 10);
    expect(exitOf(c, pid)?.code).toBe(3);
    expect(c.text(pid)).toBe('hello\n');
    expect(c.text(pid, 2)).toBe('oops\n');
    const kinds = c.msgs.filter((m) => 'pid' in m && m.pid === pid).map((m) => m.kind);
    expect(kinds.at(-1)).toBe('exit'); // after every byte of output
    await sim.run(300);
    for (const p of peers) {
      const row = (await ps(client(p))).find((r) => r.pid === pid);
      expect(row).toMatchObject({ pid, name: 'hello', peer: peers[0]!.id, state: 'EXITED', exitCode: 3 });
    }
  });

  test('placement fills the peers with the most spare capacity: each ends with as many as it has cores', async () => {
    const { sim, peers, client, run, execs } = await cluster([1, 2, 4]);
    const c = client(peers[0]!);
    for (let i = 0; i < 7; i++) {
      await run(c, 'busy');
      await sim.run(200); // let tables and gossip catch up, as between two commands
    }
    expect(peers.map((p) => execs.get(p.id)!.running.length)).toEqual([1, 2, 4]);
  });

  test('--on places a process on the named peer (unique prefix); a wrong peer is a clear error', async () => {
    const { peers, client, run } = await cluster([2, 2, 2]);
    const c = client(peers[0]!);
    const r = await run(c, 'busy', { on: peers[2]!.id.slice(0, 8) });
    expect(r.peer).toBe(peers[2]!.id);
    await expect(run(c, 'busy', { on: 'ffff0000' })).rejects.toThrow(/no peer ffff0000 in the cluster|not a peer/);
    await expect(run(c, 'nope')).rejects.toThrow('no such program: nope');
  });

  test('a running parent spawns its children on the other peers, waits for them, and the terminal sees it all', async () => {
    const { sim, peers, client, run, ps, exitOf } = await cluster([2, 2, 2, 2]);
    const c = client(peers[0]!);
    const { pid } = await run(c, 'fanout');
    expect(await sim.runUntil(() => !!exitOf(c, pid), 10_000, 10)).toBe(true);
    expect(exitOf(c, pid)?.code).toBe(0);
    const rows = (await ps(c)).filter((r) => r.parent === pid);
    expect(rows).toHaveLength(3);
    expect(new Set(rows.map((r) => r.peer))).toEqual(new Set([peers[1]!.id, peers[2]!.id, peers[3]!.id]));
    expect(c.text(pid).split('\n').filter(Boolean).sort()).toEqual(rows.map((r) => `child ${r.pid} exited 0`).sort());
  });

  test('cluster_info counts peers and execution slots', async () => {
    const { sim, peers, client, run, exitOf } = await cluster([1, 2, 4]);
    const c = client(peers[1]!);
    const { pid } = await run(c, 'info');
    await sim.runUntil(() => !!exitOf(c, pid), 2000, 10);
    expect(c.text(pid)).toBe('peers=3 slots=7\n');
  });

  test('kill reaches a process on another peer; killing it again is an error', async () => {
    const { sim, peers, client, run, exitOf, execs } = await cluster([2, 2]);
    const c = client(peers[0]!);
    const { pid, peer } = await run(c, 'busy', { on: peers[1]!.id });
    expect(peer).toBe(peers[1]!.id);
    await sim.run(300);
    c.send({ kind: 'kill', req: 900, pid });
    await sim.runUntil(() => !!exitOf(c, pid), 2000, 10);
    expect(c.msgs.find((m) => m.kind === 'kill.ok' && m.req === 900)).toBeDefined();
    expect(exitOf(c, pid)).toMatchObject({ code: 137, message: expect.stringContaining('killed') });
    expect(execs.get(peers[1]!.id)!.running).toEqual([]);
    c.send({ kind: 'kill', req: 901, pid });
    await sim.run(100);
    expect(c.msgs.find((m) => m.kind === 'kill.failed' && m.req === 901)).toMatchObject({ message: `no such process: ${pid}` });
  });

  test('a host that vanishes: its processes are reported lost to the terminal and to waiting parents', async () => {
    const programs = { ...PROGRAMS };
    const { sim, peers, client, run } = await cluster([2, 2, 2]);
    const c = client(peers[0]!);
    const lostOne = await run(c, 'busy', { on: peers[2]!.id });
    PROGRAMS.parent = [{ spawn: 'busy', on: peers[2]!.id.slice(0, 8) }, { waitAll: true }, { exit: 0 }];
    const parent = await run(c, 'parent', { on: peers[1]!.id });
    await sim.run(500);
    sim.crash(peers[2]!);
    await sim.runUntil(() => c.msgs.some((m) => m.kind === 'lost' && m.pid === lostOne.pid), 20_000);
    const lost = c.msgs.find((m) => m.kind === 'lost' && m.pid === lostOne.pid);
    expect(lost).toMatchObject({ message: expect.stringContaining(peers[2]!.id.slice(0, 8)) });
    await sim.runUntil(() => c.msgs.some((m) => m.kind === 'exit' && m.pid === parent.pid), 5000);
    expect(c.text(parent.pid)).toMatch(/^child [0-9a-f]{6}\.\d+ EHOSTUNREACH\n$/);
    Object.assign(PROGRAMS, programs);
  });

  test('hangup: when the terminal\'s peer vanishes, the processes it started elsewhere are killed', async () => {
    const { sim, peers, client, run, execs } = await cluster([2, 2]);
    const c = client(peers[0]!);
    await run(c, 'busy', { on: peers[1]!.id });
    await sim.run(300);
    expect(execs.get(peers[1]!.id)!.running).toHaveLength(1);
    sim.crash(peers[0]!);
    expect(await sim.runUntil(() => execs.get(peers[1]!.id)!.running.length === 0, 20_000)).toBe(true);
  });

  test('a restarted peer keeps its id but not its pids: a run right after a reload works on a peer that remembers the old ones', async () => {
    const { sim, peers, client, run, exitOf } = await cluster([2, 2]);
    const before = client(peers[0]!);
    const first = await run(before, 'hello', { on: peers[1]!.id });
    await sim.runUntil(() => !!exitOf(before, first.pid), 2000, 10);
    await sim.restart(peers[0]!);
    expect(await sim.runUntil(() => sim.converged(), 20_000)).toBe(true);
    const after = client(peers[0]!);
    const second = await run(after, 'hello', { on: peers[1]!.id });
    expect(second.pid).not.toBe(first.pid);
    await sim.runUntil(() => !!exitOf(after, second.pid), 2000, 10);
    expect(exitOf(after, second.pid)?.code).toBe(3);
  });

  test('a start whose module does not match its hash is refused; too many arguments is a clear error', async () => {
    const { sim, peers, client, run, execs } = await cluster([2, 2]);
    const replies: unknown[] = [];
    peers[0]!.kernel.register('forger', (env) => replies.push(env.body));
    const forged = {
      kind: 'start',
      pid: 'abcdef.1',
      name: 'evil',
      args: [],
      env: {},
      hash: 'a'.repeat(64),
      module: new TextEncoder().encode('[{"forever":true}]'),
      client: { peer: peers[0]!.id, port: 'forger' },
      interactive: false,
    };
    // As if peer 0's Scheduler sent it: the reply goes to that port.
    peers[0]!.kernel.send({ peer: peers[0]!.id, port: 'scheduler' }, { peer: peers[1]!.id, port: 'scheduler' }, forged);
    await sim.run(200);
    expect(execs.get(peers[1]!.id)!.running).toEqual([]);
    const c = client(peers[0]!);
    await expect(run(c, 'hello', { args: Array.from({ length: 300 }, (_, i) => String(i)) })).rejects.toThrow('at most 256 arguments');
  });

  test('garbage from a peer or a local port is refused and logged; the Scheduler keeps working', async () => {
    const { sim, peers, client, run, exitOf } = await cluster([2, 2]);
    const logs: string[] = [];
    peers[1]!.kernel.on((e) => e.type === 'log' && e.source === 'scheduler' && logs.push(e.text));
    const bad: unknown[] = [null, 42, { kind: 'start', pid: 'x' }, { kind: 'deliver' }, { kind: 'table', rows: [{ pid: 1 }] }, { kind: 'nope' }];
    for (const b of bad) peers[0]!.kernel.send({ peer: peers[0]!.id, port: 'scheduler' }, { peer: peers[1]!.id, port: 'scheduler' }, b);
    for (const b of bad) peers[1]!.kernel.send({ peer: peers[1]!.id, port: 'x' }, { peer: peers[1]!.id, port: 'scheduler' }, b);
    await sim.run(200);
    expect(logs.length).toBe(bad.length * 2);
    const c = client(peers[1]!);
    const { pid } = await run(c, 'hello');
    await sim.runUntil(() => !!exitOf(c, pid), 2000, 10);
    expect(exitOf(c, pid)?.code).toBe(3);
  });
});
