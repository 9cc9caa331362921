// The files a process sees: `/` the sample files (read-only, shared), `/tmp` its own, `/cluster`
// the cluster filesystem (a MemFs stands in for it), with real C programs and a small WAT writer.
import { beforeAll, describe, expect, it } from 'vitest';
import { buildPrograms, program } from '../wasi/test-programs.ts';
import { Errno } from '../wasi/errno.ts';
import { MemFs, memfsFrom } from '../wasi/memfs.ts';
import { Vfs, Namespace, type FileSystem } from '../wasi/vfs.ts';
import { FakeScheduler } from './test-scheduler.ts';
import { holder, writer } from './test-file-programs.ts';

beforeAll(() => buildPrograms(), 600_000);

const MAX_MEMORY = 16 << 20;

function scheduler(files?: FileSystem): FakeScheduler {
  return new FakeScheduler(
    {
      cat: program('cat'),
      'write-cluster-via-root': writer(3, 'cluster/out.txt', 'written through /\n'),
      'write-cluster-dotdot': writer(3, 'cluster/../cluster/direct.txt', 'written to /cluster\n'),
      'hold-cluster-x': holder('cluster/x'),
      'write-tmp': writer(3, 'tmp/t', 'mine\n'),
      'write-root': writer(3, 'new.txt', 'nope\n'),
    },
    1,
    { maxMemoryBytes: MAX_MEMORY, ...(files ? { files } : {}) },
  );
}

async function run(s: FakeScheduler, name: string, args: string[] = []) {
  const p = s.start(name, args);
  const exit = await p.exited;
  return { code: exit.code, message: exit.message, out: s.text(p.pid), err: s.text(p.pid, 2) };
}

describe('the files of a process', () => {
  it('reads the cluster filesystem at /cluster, and the sample files at /', async () => {
    const cluster = memfsFrom({ x: 'from the cluster\n', 'sub/y': 'deeper\n' });
    const s = scheduler(cluster);
    expect(await run(s, 'cat', ['/cluster/x', '/cluster/sub/y'])).toMatchObject({ code: 0, out: 'from the cluster\ndeeper\n', err: '' });
    expect(await run(s, 'cat', ['/cluster/../README.txt'])).toMatchObject({ code: 0, out: expect.stringMatching(/^Welcome to LSHAPES/) });
    expect(await run(s, 'cat', ['/cluster/missing'])).toMatchObject({ code: 1, err: 'cat: /cluster/missing: No such file or directory\n' });
    expect(s.anomalies).toEqual([]);
  });

  it('writes into the cluster filesystem, crossing mounts both ways', async () => {
    const cluster = new MemFs();
    const s = scheduler(cluster);
    expect((await run(s, 'write-cluster-via-root')).code).toBe(0);
    expect((await run(s, 'write-cluster-dotdot')).code).toBe(0);
    const vfs = new Vfs(new Namespace({ '/': cluster }));
    expect(await vfs.readText('/out.txt')).toBe('written through /\n');
    expect(await vfs.readText('/direct.txt')).toBe('written to /cluster\n');
    // and another process reads what the first wrote
    expect(await run(s, 'cat', ['/cluster/out.txt'])).toMatchObject({ code: 0, out: 'written through /\n' });
  });

  it('cannot write the sample files; each process has a /tmp of its own', async () => {
    const s = scheduler(new MemFs());
    expect((await run(s, 'write-root')).code).toBe(Errno.ROFS);
    expect((await run(s, 'write-tmp')).code).toBe(0);
    // a later process starts with an empty /tmp
    expect(await run(s, 'cat', ['/tmp/t'])).toMatchObject({ code: 1, err: 'cat: /tmp/t: No such file or directory\n' });
  });

  it('without a cluster filesystem /cluster is an empty read-only directory', async () => {
    const s = scheduler();
    expect(await run(s, 'cat', ['/cluster/x'])).toMatchObject({ code: 1, err: 'cat: /cluster/x: No such file or directory\n' });
    expect((await run(s, 'write-cluster-via-root')).code).toBe(Errno.ROFS);
    expect(await run(s, 'cat', ['/texts/numbers.txt'])).toMatchObject({ code: 0, out: expect.stringMatching(/^1\n2\n/) });
  });

  it('what a process holds in the cluster filesystem is released when it ends, killed or not', async () => {
    const cluster = memfsFrom({ x: 'held\n' });
    let held = 0;
    const counting = Object.assign(Object.create(cluster) as MemFs, {
      retain: (node: number) => {
        held++;
        cluster.retain(node);
      },
      release: (node: number) => {
        held--;
        cluster.release(node);
      },
    });
    const s = scheduler(counting);
    expect((await run(s, 'cat', ['/cluster/../README.txt'])).code).toBe(0);
    expect(held).toBe(0);
    const p = s.start('hold-cluster-x', [], { interactiveStdin: true });
    for (let i = 0; i < 2000 && held === 0; i++) await new Promise((r) => setTimeout(r, 2));
    expect(held).toBe(1); // the open /cluster/x
    s.kill(p.pid, 'test');
    expect((await p.exited).code).toBe(137);
    await new Promise((r) => setTimeout(r, 0));
    expect(held).toBe(0);
  });
});
