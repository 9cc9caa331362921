// The kernel side of the shell over a real SchedulerClient and a scripted Scheduler port.
import { describe, expect, it } from 'vitest';
import type { ProcessInfo } from '../../servers/scheduler/client.ts';
import { settle } from '../sim/clock.ts';
import { FakeScheduler, bareKernel } from './fake-scheduler.ts';
import { SchedulerClient } from './scheduler-client.ts';
import { createShellService } from './shell-service.ts';
import { ShellFiles } from './shell-files.ts';
import { memfsFrom } from '../../kernel/wasi/memfs.ts';

const dec = new TextDecoder();

async function setup() {
  const { kernel } = await bareKernel();
  const fake = new FakeScheduler(kernel);
  const client = new SchedulerClient(kernel, 'shell');
  const service = createShellService(() => client, new ShellFiles());
  return { kernel, fake, client, service };
}

describe('createShellService', () => {
  it('waitExit answers only after every output call before the exit has returned', async () => {
    const { service } = await setup();
    // An output callback that answers late, as a comlink proxy on another port would.
    const seen: string[] = [];
    const answers: (() => void)[] = [];
    const output = (fd: 1 | 2, data: Uint8Array) =>
      new Promise<void>((resolve) =>
        answers.push(() => {
          seen.push(`${fd}:${dec.decode(data)}`);
          resolve();
        }),
      );
    const { pid } = await service.run('crash', [], undefined, false, output);
    let exited: unknown;
    void service.waitExit(pid).then((e) => (exited = e));
    await settle();
    expect(answers).toHaveLength(2);
    expect(exited).toBeUndefined();
    answers[0]!();
    await settle();
    expect(exited).toBeUndefined();
    answers[1]!();
    await settle();
    expect(seen).toEqual(['1:about to crash\n', '2:oh no\n']);
    expect(exited).toEqual({ code: 134, message: 'trap: unreachable executed' });
  });

  it('waitExit rejects for a lost process, after its output, and is once per pid', async () => {
    const { service } = await setup();
    const seen: string[] = [];
    const { pid } = await service.run('vanish', [], undefined, false, (_fd, d) => void seen.push(dec.decode(d)));
    await expect(service.waitExit(pid)).rejects.toThrow('peer 7e57ab1e left the cluster');
    expect(seen).toEqual(['working']);
    await expect(service.waitExit(pid)).rejects.toThrow(/no process .* started here/);
  });

  it('passes run options, stdin and kill through; run failures keep the Scheduler message', async () => {
    const { fake, service } = await setup();
    const chunks: string[] = [];
    const { pid } = await service.run('upper', ['x'], 'a1f', true, (_fd, d) => void chunks.push(dec.decode(d)));
    expect(fake.requests[0]).toMatchObject({ kind: 'run', name: 'upper', args: ['x'], on: 'a1f', interactive: true });
    await service.stdin(pid, new TextEncoder().encode('abc\nde'));
    await service.stdinEnd(pid);
    await expect(service.waitExit(pid)).resolves.toEqual({ code: 0 });
    expect(chunks.join('')).toBe('ABC\nDE');
    await expect(service.run('nope', [], undefined, false, () => {})).rejects.toThrow('no such program: nope');
    const spin = await service.run('spin', [], undefined, false, () => {});
    await service.kill(spin.pid);
    await expect(service.waitExit(spin.pid)).resolves.toEqual({ code: 137, message: 'killed' });
    await expect(service.kill(spin.pid)).rejects.toThrow(`no such process: ${spin.pid}`);
  });

  it('ps, programs, watchProcesses, ls and cat', async () => {
    const { service } = await setup();
    expect(await service.programs()).toEqual(FakeScheduler.PROGRAMS);
    const tables: ProcessInfo[][] = [];
    const id = await service.watchProcesses((rows) => tables.push(rows));
    const { pid } = await service.run('hello', [], undefined, false, () => {});
    await service.waitExit(pid);
    await settle();
    expect(tables.at(-1)?.map((r) => [r.pid, r.state, r.exitCode])).toEqual([[pid, 'EXITED', 0]]);
    expect((await service.ps()).map((r) => r.pid)).toEqual([pid]);
    await service.unwatchProcesses(id);
    const n = tables.length;
    await service.run('spin', [], undefined, false, () => {});
    await settle();
    expect(tables).toHaveLength(n);
    expect((await service.ls('/')).map((e) => e.name)).toEqual(['README.txt', 'cluster', 'texts', 'tmp']);
    expect(dec.decode(await service.cat('/README.txt'))).toMatch(/^Welcome to LSHAPES/);
    await expect(service.cat('/x')).rejects.toThrow('/x: no such file');
  });

  it('passes the file commands to its files, the cluster filesystem at /cluster', async () => {
    const fs = memfsFrom({ 'a.txt': 'alpha\n' });
    const service = createShellService(() => {
      throw new Error('no kernel needed for files');
    }, new ShellFiles(fs));
    await service.mkdir('/cluster/d/e', true);
    await service.cp('/cluster/a.txt', '/cluster/d');
    await service.mv('/cluster/d/a.txt', '/cluster/d/e/b.txt');
    expect(await service.stat('/cluster/d/e/b.txt')).toEqual({ name: 'b.txt', kind: 'file', size: 6 });
    expect(dec.decode(await service.cat('/cluster/d/e/b.txt'))).toBe('alpha\n');
    await expect(service.rm('/cluster/d', false)).rejects.toThrow('/cluster/d: is a directory (use rm -r)');
    await service.rm('/cluster/d', true);
    expect((await service.ls('/cluster')).map((e) => e.name)).toEqual(['a.txt']);
  });
});

describe('createShellService: moving processes', () => {
  it('migrate answers where the process went, or rejects with the reason; drain says what moved', async () => {
    const { kernel, fake, service } = await setup();
    const spin = await service.run('spin', [], undefined, false, () => {});
    await expect(service.migrate(spin.pid, kernel.self.slice(0, 8))).resolves.toEqual({ peer: kernel.self, freezeMs: 7 });
    expect(fake.requests.at(-1)).toMatchObject({ kind: 'migrate', pid: spin.pid, to: kernel.self.slice(0, 8) });
    await expect(service.migrate(spin.pid, 'ffff')).rejects.toThrow('no peer matches "ffff"');
    await expect(service.migrate('abc.9', kernel.self)).rejects.toThrow('no such process: abc.9');
    expect((await service.ps()).find((r) => r.pid === spin.pid)?.moves).toBe(1);
    await expect(service.drain()).resolves.toEqual({ moved: 0, left: 1 });
  });
});
