// Fork On Wait across peers, as the Scheduler routes it: a delivery's `seq`/`deps` arrive
// unchanged; a speculation's outcome reaches every executor that got a dependent delivery (also
// transitively, through a peer that forwarded one for a process that moved); a delivery arriving
// after the outcome has a committed dependency stripped and is dropped for a cancelled one.
// Deterministic: scripted executors stand in for the real ones (they only record and answer).
import { describe, expect, test } from 'vitest';
import { Simulation, type SimPeer } from '../../host/sim/sim.ts';
import type { ExecutionDriver, FromExecutor, ToExecutor } from '../../kernel/process/protocol.ts';
import type { ClientMessage, ProgramStore } from './client.ts';

/** Records what the Scheduler posts; the test makes the "process" send, resolve, and so on. */
class ScriptedExec implements ExecutionDriver {
  readonly count = 1;
  readonly got: ToExecutor[] = [];
  private on: ((e: number, m: FromExecutor) => void) | undefined;
  attach(fn: (e: number, m: FromExecutor) => void): void {
    this.on = fn;
  }
  post(_e: number, msg: ToExecutor): void {
    this.got.push(msg);
    if (msg.t === 'start') this.emit({ t: 'state', pid: msg.spec.pid, state: 'RUNNING', cpuMs: 0 });
  }
  emit(m: FromExecutor): void {
    this.on?.(0, m);
  }
  of<T extends ToExecutor['t']>(t: T): Extract<ToExecutor, { t: T }>[] {
    return this.got.filter((m): m is Extract<ToExecutor, { t: T }> => m.t === t);
  }
}

const WASM = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
const programs: ProgramStore = { list: async () => ['p'], load: async () => WASM };

async function cluster() {
  const execs = new Map<string, ScriptedExec>();
  const sim = new Simulation({
    seed: 'spec-routing',
    latencyMs: 2,
    jitterMs: 0,
    programs,
    exec: (p) => {
      const e = new ScriptedExec();
      execs.set(p.id, e);
      return e;
    },
    scheduler: { rebalance: false, checkpointEveryMs: 0 },
  });
  const peers: SimPeer[] = [];
  for (let i = 0; i < 3; i++) peers.push(await sim.addPeer());
  expect(await sim.runUntil(() => sim.converged(), 20_000)).toBe(true);
  await sim.run(1000);
  const msgs: ClientMessage[] = [];
  peers[0]!.kernel.register('t', (env) => msgs.push(env.body as ClientMessage));
  let req = 0;
  const run = async (on: SimPeer) => {
    const r = ++req;
    peers[0]!.kernel.send({ peer: peers[0]!.id, port: 't' }, { peer: peers[0]!.id, port: 'scheduler' }, { kind: 'run', req: r, name: 'p', args: [], on: on.id });
    await sim.run(200);
    const ok = msgs.find((m) => m.kind === 'run.ok' && m.req === r);
    if (ok?.kind !== 'run.ok') throw new Error('not started');
    return ok.pid;
  };
  return { sim, peers, exec: (p: SimPeer) => execs.get(p.id)!, run };
}

describe('speculation outcomes follow dependent deliveries', () => {
  test('seq and deps arrive unchanged; the outcome reaches the receiver; later deliveries are stripped or dropped', async () => {
    const { sim, peers, exec, run } = await cluster();
    const [a, b] = peers as [SimPeer, SimPeer];
    const sender = await run(a);
    const receiver = await run(b);
    const spec = `${sender}~1`;
    const send = (seq: number, deps?: string[]) =>
      exec(a).emit({ t: 'call', pid: sender, call: seq, req: { op: 'send', to: receiver, port: 'in', data: new Uint8Array([seq]), token: 0, seq, ...(deps ? { deps } : {}) } });
    send(1, [spec]);
    await sim.run(100);
    expect(exec(b).of('deliver')).toMatchObject([{ pid: receiver, from: sender, seq: 1, deps: [spec] }]);
    // The sender's executor says the guess was right: the receiver's executor hears it.
    exec(a).emit({ t: 'spec.resolved', pid: sender, id: spec, ok: true });
    await sim.run(100);
    expect(exec(b).of('spec.resolved')).toEqual([{ t: 'spec.resolved', id: spec, ok: true }]);
    expect(exec(a).of('spec.resolved')).toEqual([]); // nobody there depends on it
    // A late delivery depending on it: the committed dependency is stripped.
    send(2, [spec]);
    await sim.run(100);
    expect(exec(b).of('deliver')[1]).toMatchObject({ seq: 2 });
    expect(exec(b).of('deliver')[1]!.deps).toBeUndefined();
    // A cancelled one: the receiver hears it, and a delivery depending on it that comes later
    // (one held or forwarded on a longer way) is dropped: as far as anyone can tell it was never sent.
    const bad = `${sender}~2`;
    send(3, [bad]);
    await sim.run(100);
    exec(a).emit({ t: 'spec.resolved', pid: sender, id: bad, ok: false });
    await sim.run(100);
    expect(exec(b).of('spec.resolved').at(-1)).toEqual({ t: 'spec.resolved', id: bad, ok: false });
    send(4, [bad]);
    send(5, [spec]);
    await sim.run(100);
    expect(exec(b).of('deliver').map((d) => d.seq)).toEqual([1, 2, 3, 5]);
  });

  test('transitively: the receiver forwards to its own dependents on another peer', async () => {
    const { sim, peers, exec, run } = await cluster();
    const [a, b, c] = peers as [SimPeer, SimPeer, SimPeer];
    const x = await run(a);
    const y = await run(b);
    const z = await run(c);
    const spec = `${x}~7`;
    exec(a).emit({ t: 'call', pid: x, call: 1, req: { op: 'send', to: y, port: 'in', data: new Uint8Array(1), token: 0, seq: 1, deps: [spec] } });
    await sim.run(100);
    // y, now dependent on x's guess, sends to z (its executor carries the dependency on).
    exec(b).emit({ t: 'call', pid: y, call: 1, req: { op: 'send', to: z, port: 'in', data: new Uint8Array(1), token: 0, seq: 1, deps: [spec] } });
    await sim.run(100);
    exec(a).emit({ t: 'spec.resolved', pid: x, id: spec, ok: false });
    await sim.run(200);
    expect(exec(b).of('spec.resolved')).toEqual([{ t: 'spec.resolved', id: spec, ok: false }]);
    expect(exec(c).of('spec.resolved')).toEqual([{ t: 'spec.resolved', id: spec, ok: false }]);
  });

  test('a notice from an executor goes to the peer log', async () => {
    const { sim, peers, exec, run } = await cluster();
    const pid = await run(peers[0]!);
    exec(peers[0]!).emit({ t: 'notice', pid, text: 'resolution for an unknown speculation' });
    await sim.run(10);
    expect(sim.trace.some((l) => l.includes(`log warn scheduler process ${pid}: resolution for an unknown speculation`))).toBe(true);
  });
});
