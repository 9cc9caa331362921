// The Scheduler serves its executors' `fs` requests on the cluster filesystem (a MemFs stands in
// for it): real programs in an executor that reaches /cluster only by messages, as in a worker.
import { beforeAll, describe, expect, it } from 'vitest';
import { InProcessExecution } from '../../kernel/process/in-process.ts';
import type { ExecutionDriver, FromExecutor, Pid, ToExecutor } from '../../kernel/process/protocol.ts';
import { writer } from '../../kernel/process/test-file-programs.ts';
import { sha256hex } from '../../kernel/process/test-scheduler.ts';
import type { ServerContext } from '../../kernel/server.ts';
import type { Clock } from '../../kernel/types.ts';
import { Errno } from '../../kernel/wasi/errno.ts';
import { memfsFrom } from '../../kernel/wasi/memfs.ts';
import { buildPrograms, program } from '../../kernel/wasi/test-programs.ts';
import type { FileSystem } from '../../kernel/wasi/vfs.ts';
import { SchedulerServer } from './scheduler.ts';

beforeAll(() => buildPrograms(), 600_000);

const clock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

const ctx: ServerContext = { self: 'a'.repeat(32), send: () => true, log: () => {} };

/** A driver that records what the executor says and what the Scheduler posts to it. */
function recording(inner: ExecutionDriver) {
  const from: FromExecutor[] = [];
  const to: ToExecutor[] = [];
  const driver: ExecutionDriver = {
    count: inner.count,
    attach: (onMessage) =>
      inner.attach((i, msg) => {
        from.push(msg);
        onMessage(i, msg);
      }),
    post: (i, msg) => {
      to.push(msg);
      inner.post(i, msg);
    },
  };
  return { driver, from, to };
}

/** A Scheduler (with `files` or not) over one executor in remote mode; starts programs directly on the executor. */
function setup(files?: FileSystem) {
  const exec = new InProcessExecution(1, { maxMemoryBytes: 16 << 20 });
  const rec = recording(exec);
  const scheduler = new SchedulerServer({ clock, sha256: async () => new Uint8Array(32), exec: rec.driver, ...(files ? { files } : {}) });
  scheduler.start(ctx);
  // What a worker host does first: tell the executor the cluster filesystem's root.
  exec.post(0, { t: 'files', root: files?.root ?? 1 });
  let n = 0;
  const start = (module: Uint8Array, args: string[]): Promise<{ code: number; out: string; err: string }> => {
    const pid: Pid = `aaaaaa.${++n}`;
    exec.post(0, {
      t: 'start',
      spec: { pid, peer: ctx.self, name: args[0]!, hash: sha256hex(module), module, args, env: {}, hasParent: false, interactiveStdin: false },
    });
    return new Promise((resolve) => {
      const poll = () => {
        const exit = rec.from.find((m): m is Extract<FromExecutor, { t: 'exit' }> => m.t === 'exit' && m.pid === pid);
        if (!exit) return void setTimeout(poll, 2);
        const text = (fd: 1 | 2) =>
          rec.from
            .filter((m): m is Extract<FromExecutor, { t: 'out' }> => m.t === 'out' && m.pid === pid && m.fd === fd)
            .map((m) => new TextDecoder().decode(m.data))
            .join('');
        resolve({ code: exit.code, out: text(1), err: text(2) });
      };
      poll();
    });
  };
  return { ...rec, start };
}

describe('the Scheduler serves the cluster filesystem to its executors', () => {
  it('a process in an executor without the filesystem reads and writes /cluster through fs messages', async () => {
    const cluster = memfsFrom({ 'docs/x': 'over messages\n' });
    const { start, from, to } = setup(cluster);
    expect(await start(program('cat'), ['cat', '/cluster/docs/x'])).toEqual({ code: 0, out: 'over messages\n', err: '' });
    expect(await start(writer(3, 'cluster/docs/y', 'written\n'), ['writer'])).toMatchObject({ code: 0 });
    expect(await start(program('cat'), ['cat', '/cluster/docs/y'])).toEqual({ code: 0, out: 'written\n', err: '' });
    const requests = from.filter((m): m is Extract<FromExecutor, { t: 'fs' }> => m.t === 'fs');
    expect(requests.length).toBeGreaterThan(3);
    expect(new Set(requests.map((r) => r.pid))).toEqual(new Set(['aaaaaa.1', 'aaaaaa.2', 'aaaaaa.3']));
    for (const op of ['lookup', 'read', 'createFile', 'write']) expect(requests.map((r) => r.req.op)).toContain(op);
    // every request was answered, with its own call number
    const replies = to.filter((m): m is Extract<ToExecutor, { t: 'fs.reply' }> => m.t === 'fs.reply');
    expect(replies.map((r) => r.call).sort((a, b) => a - b)).toEqual(requests.map((r) => r.call).sort((a, b) => a - b));
    expect(new Set(requests.map((r) => r.call)).size).toBe(requests.length);
  });

  it('errors of the filesystem reach the program with their errno', async () => {
    const { start } = setup(memfsFrom({ d: {} }));
    expect(await start(program('cat'), ['cat', '/cluster/nope'])).toMatchObject({ code: 1, err: 'cat: /cluster/nope: No such file or directory\n' });
    expect(await start(writer(3, 'cluster/d', 'x'), ['writer'])).toMatchObject({ code: Errno.ISDIR });
  });

  it('without a filesystem it answers ENOSYS, saying why', async () => {
    const { start, to } = setup();
    expect(await start(program('cat'), ['cat', '/cluster/x'])).toEqual({ code: 1, out: '', err: 'cat: /cluster/x: Function not implemented\n' });
    const reply = to.find((m): m is Extract<ToExecutor, { t: 'fs.reply' }> => m.t === 'fs.reply');
    expect(reply?.reply).toEqual({ ok: false, errno: Errno.NOSYS, message: 'this peer has no cluster filesystem' });
  });
});
