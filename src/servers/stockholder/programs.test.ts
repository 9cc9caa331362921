// Real programs on the cluster filesystem, across a simulated cluster: a file added on one peer is
// read by a program on another, and a program's fsync on /cluster returns only once a second
// peer holds what it wrote.
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import { InProcessExecution } from '../../kernel/process/in-process.ts';
import { buildPrograms, program } from '../../kernel/wasi/test-programs.ts';
import { Simulation, type SimPeer } from '../../host/sim/sim.ts';
import { SchedulerClient } from '../../host/common/scheduler-client.ts';
import { filesOf } from '../../host/common/boot.ts';
import type { ProgramStore } from '../scheduler/client.ts';
import { ROOT } from './types.ts';

const NAMES = ['cat', 'tee', 'sha256sum'];
const programs: ProgramStore = { list: async () => NAMES, load: async (name) => (NAMES.includes(name) ? program(name) : undefined) };

beforeAll(() => buildPrograms(), 180_000);

async function cluster(n: number) {
  const sim = new Simulation({ seed: 'files-programs', latencyMs: 1, jitterMs: 0, programs, exec: () => new InProcessExecution(1) });
  const peers: SimPeer[] = [];
  for (let i = 0; i < n; i++) peers.push(await sim.addPeer());
  expect(await sim.runUntil(() => sim.converged(), 20_000)).toBe(true);
  await sim.run(1000);
  /** Virtual time in small steps while real time passes for the executors. */
  const pump = async (done: () => boolean, maxSteps = 60_000) => {
    for (let i = 0; i < maxSteps && !done(); i++) {
      await sim.run(1);
      await new Promise((r) => setImmediate(r));
    }
    return done();
  };
  /** Runs a program on `on` from a terminal on `from`, feeding `stdin`; returns its output and exit. */
  const run = async (from: SimPeer, on: SimPeer, name: string, args: string[], stdin?: string, whenExited?: () => void) => {
    const client = new SchedulerClient(from.kernel, `t${Math.random()}`);
    let out = '';
    let err = '';
    const handle = client.run(name, args, {
      on: on.id,
      interactive: stdin !== undefined,
      onOutput: (fd, data) => {
        if (fd === 1) out += new TextDecoder().decode(data);
        else err += new TextDecoder().decode(data);
      },
    });
    let started: Awaited<typeof handle> | undefined;
    void handle.then((h) => (started = h));
    expect(await pump(() => !!started)).toBe(true);
    if (stdin !== undefined) {
      client.stdin(started!.pid, new TextEncoder().encode(stdin));
      client.stdinEnd(started!.pid);
    }
    let exit: { code: number } | undefined;
    void started!.exit.then((e) => {
      whenExited?.();
      exit = e;
    });
    expect(await pump(() => !!exit)).toBe(true);
    return { code: exit!.code, stdout: out, stderr: err };
  };
  return { sim, peers, pump, run };
}

describe('programs on /cluster', () => {
  test('a file added on A is read by a program running on B', async () => {
    const { peers, pump, run } = await cluster(2);
    const [a, b] = peers as [SimPeer, SimPeer];
    const text = 'I met a traveller from an antique land\n'.repeat(1000);
    const blob = new TextEncoder().encode(text);
    let added = false;
    void filesOf(a.kernel)
      .stockholder.ingest(ROOT, [{ path: 'poem.txt', source: { size: blob.length, read: async (o, l) => blob.slice(o, o + l) } }])
      .then(() => (added = true));
    expect(await pump(() => added)).toBe(true);
    const r = await run(b, b, 'sha256sum', ['/cluster/poem.txt']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${createHash('sha256').update(blob).digest('hex')}  /cluster/poem.txt\n`);
  }, 120_000);

  test('tee -s on A: when fsync returns, B already holds the file; a program on B reads it back', async () => {
    const { peers, run } = await cluster(2);
    const [a, b] = peers as [SimPeer, SimPeer];
    let heldByBAtExit: boolean | undefined;
    const r = await run(a, a, 'tee', ['-s', '/cluster/out.txt'], 'written on A\n', () => {
      const sb = filesOf(b.kernel).stockholder;
      const e = sb.model.lookup(ROOT, 'out.txt');
      heldByBAtExit = e?.manifest !== undefined && e.size > 0 && sb.holdsAll(e.manifest);
    });
    expect(r).toMatchObject({ code: 0, stdout: 'written on A\n', stderr: 'tee: 13 bytes synced to /cluster/out.txt\n' });
    expect(heldByBAtExit).toBe(true);
    const back = await run(b, b, 'cat', ['/cluster/out.txt']);
    expect(back).toMatchObject({ code: 0, stdout: 'written on A\n' });
  }, 120_000);
});
