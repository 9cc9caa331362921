// Real programs on a simulated cluster: the Scheduler of each peer drives real executors
// (InProcessExecution running the actual WebAssembly), so the prime counter's children and the
// ping-pong pair really cross peers. The network and the Schedulers' timers run on virtual time,
// pumped while the executors run in real time.
import { beforeAll, describe, expect, test } from 'vitest';
import { InProcessExecution } from '../../kernel/process/in-process.ts';
import { buildPrograms, program } from '../../kernel/wasi/test-programs.ts';
import { Simulation, type SimPeer } from '../../host/sim/sim.ts';
import type { ClientMessage, ProgramStore } from './client.ts';
import { SchedulerClient } from '../../host/common/scheduler-client.ts';

const NAMES = ['primes', 'ping', 'pong', 'hello', 'cat'];
const store: ProgramStore = {
  list: async () => NAMES,
  load: async (name) =>
    name === 'junk' ? new TextEncoder().encode('#!/bin/sh\necho not wasm\n') : name === 'cut' ? program('hello').slice(0, 200) : NAMES.includes(name) ? program(name) : undefined,
};

beforeAll(() => buildPrograms(), 180_000);

async function cluster(n: number) {
  const sim = new Simulation({ seed: 'programs', latencyMs: 1, jitterMs: 0, programs: store, exec: () => new InProcessExecution(1) });
  const peers: SimPeer[] = [];
  for (let i = 0; i < n; i++) peers.push(await sim.addPeer());
  expect(await sim.runUntil(() => sim.converged(), 20_000)).toBe(true);
  await sim.run(1000);
  /** Advances virtual time in small steps while real time passes for the executors. */
  const pump = async (done: () => boolean, maxSteps = 60_000) => {
    for (let i = 0; i < maxSteps && !done(); i++) {
      await sim.run(1);
      await new Promise((r) => setImmediate(r));
    }
    return done();
  };
  const terminal = (peer: SimPeer) => {
    const msgs: ClientMessage[] = [];
    peer.kernel.register('term', (env) => msgs.push(env.body as ClientMessage));
    let req = 0;
    return {
      msgs,
      run: async (name: string, args: string[], on?: string) => {
        const r = ++req;
        peer.kernel.send({ peer: peer.id, port: 'term' }, { peer: peer.id, port: 'scheduler' }, { kind: 'run', req: r, name, args, ...(on ? { on } : {}) });
        let ok: ClientMessage | undefined;
        expect(await pump(() => !!(ok = msgs.find((m) => (m.kind === 'run.ok' || m.kind === 'run.failed') && m.req === r)))).toBe(true);
        if (ok?.kind !== 'run.ok') throw new Error(JSON.stringify(ok));
        const pid = ok.pid;
        const exit = () => msgs.find((m): m is Extract<ClientMessage, { kind: 'exit' }> => m.kind === 'exit' && m.pid === pid);
        expect(await pump(() => !!exit())).toBe(true);
        const text = (fd: 1 | 2) =>
          msgs
            .filter((m): m is Extract<ClientMessage, { kind: 'out' }> => m.kind === 'out' && m.fd === fd)
            .map((m) => new TextDecoder().decode(m.data))
            .join('');
        return { pid, code: exit()!.code, message: exit()!.message, stdout: text(1), stderr: text(2) };
      },
    };
  };
  return { sim, peers, terminal, pump };
}

describe('real programs across a simulated cluster', () => {
  test('primes splits its range into children on the other peers and sums their counts', async () => {
    const { peers, terminal } = await cluster(3);
    const r = await terminal(peers[0]!).run('primes', ['200000', '3']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/primes below 200000: 17984\n$/);
    const where = [...r.stdout.matchAll(/part \d+\.\.\d+ on ([0-9a-f]{8})/g)].map((m) => m[1]!);
    expect(where).toHaveLength(3);
    // Each peer has one execution slot and the parent keeps its own busy: both children go to
    // the other peers (the same one twice only if the first child had already finished).
    const [a, ...others] = peers.map((p) => p.id.slice(0, 8));
    expect(where.filter((w) => w === a)).toHaveLength(1);
    for (const w of where.filter((x) => x !== a)) expect(others).toContain(w);
  }, 120_000);

  test('not WebAssembly fails the run; a broken module exits 1 with the loader\'s message on the other peer; the peer runs the next one', async () => {
    const { peers, terminal } = await cluster(2);
    const t = terminal(peers[0]!);
    await expect(t.run('junk', [], peers[1]!.id)).rejects.toThrow(/junk is not a WebAssembly module/);
    // A module that looks like WebAssembly but is cut short: it starts, and exits 1 saying why.
    const cut = await t.run('cut', [], peers[1]!.id);
    expect(cut.code).toBe(1);
    expect(cut.message).toMatch(/^invalid WebAssembly module: /);
    const r = await t.run('hello', ['again'], peers[1]!.id);
    expect(r).toMatchObject({ code: 0, stdout: 'hello, world\narg 1: again\n' });
  }, 120_000);

  test('ping on one peer and pong on another play over ports with call and reply', async () => {
    const { peers, terminal } = await cluster(2);
    const r = await terminal(peers[0]!).run('ping', ['3', '--on', peers[1]!.id.slice(0, 8)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pong 1\npong 2\npong 3\n3 round trips, avg [\d.]+ ms\npong exited with 0\n$/);
  }, 120_000);
});

describe('calls to a process that ends', () => {
  test('ping\'s call gets ESRCH when pong is killed, instead of waiting forever', async () => {
    const { peers, pump } = await cluster(2);
    const client = new SchedulerClient(peers[0]!.kernel, 'calls');
    let out = '';
    let err = '';
    const handle = client.run('ping', ['1000000', '--on', peers[1]!.id.slice(0, 8)], {
      onOutput: (fd, data) => {
        if (fd === 1) out += new TextDecoder().decode(data);
        else err += new TextDecoder().decode(data);
      },
    });
    let started: Awaited<typeof handle> | undefined;
    void handle.then((h) => (started = h));
    expect(await pump(() => !!started && out.includes('pong 3\n'))).toBe(true);
    // The host's table reaches this peer within a coalescing period.
    let pong: Awaited<ReturnType<typeof client.ps>>[number] | undefined;
    for (let i = 0; i < 100 && !pong; i++) {
      await pump(() => false, 50);
      pong = (await client.ps()).find((r) => r.name === 'pong' && r.state !== 'EXITED');
    }
    expect(pong?.peer).toBe(peers[1]!.id);
    void client.kill(pong!.pid);
    let exit: { code: number } | undefined;
    void started!.exit.then((e) => (exit = e));
    expect(await pump(() => !!exit)).toBe(true);
    expect(exit!.code).toBe(1);
    expect(err).toMatch(/call \d+: ESRCH/);
  }, 120_000);
});

describe('output flow control end to end', () => {
  test('a terminal that does not take output stops the writer at the 1 MiB window; taking it lets every byte through in order', async () => {
    const { peers, pump } = await cluster(2);
    const client = new SchedulerClient(peers[0]!.kernel, 'flow');
    const chunks: Uint8Array[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const handle = client.run('cat', [], {
      on: peers[1]!.id,
      interactive: true,
      onOutput: (_fd, data) => {
        chunks.push(data);
        return gate; // taken only once the test opens the gate
      },
    });
    let started: Awaited<typeof handle> | undefined;
    void handle.then((h) => (started = h));
    expect(await pump(() => !!started)).toBe(true);
    const input = new Uint8Array(3 << 20).map((_, i) => 97 + (i % 26));
    for (let i = 0; i < input.length; i += 1 << 19) client.stdin(started!.pid, input.subarray(i, i + (1 << 19)));
    client.stdinEnd(started!.pid);
    const received = () => chunks.reduce((n, c) => n + c.length, 0);
    expect(await pump(() => received() >= 1 << 20)).toBe(true);
    await pump(() => false, 2000);
    expect(received()).toBeLessThan(2 << 20); // the window (1 MiB) and one flush, not 3 MiB
    open();
    let exit: { code: number } | undefined;
    void started!.exit.then((e) => (exit = e));
    expect(await pump(() => !!exit)).toBe(true);
    expect(exit!.code).toBe(0);
    const out = new Uint8Array(received());
    let at = 0;
    for (const c of chunks) (out.set(c, at), (at += c.length));
    expect(out).toEqual(input);
  }, 120_000);
});
