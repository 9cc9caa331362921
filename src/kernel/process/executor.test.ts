// The executor with real C programs (programs/c) through InProcessExecution and a fake
// Scheduler (test-scheduler.ts): output and exit codes, interactive stdin, kills, time slicing
// of busy loops, and every way a program can go wrong ending only that program.
import { beforeAll, describe, expect, it } from 'vitest';
import { wat } from '../wasm/fixtures/load.ts';
import { buildPrograms, program } from '../wasi/test-programs.ts';
import { Executor } from './executor.ts';
import { InProcessExecution } from './in-process.ts';
import { EXIT_CANNOT_START, EXIT_KILLED, EXIT_SEGFAULT, EXIT_TRAPPED, type FromExecutor } from './protocol.ts';
import { FakeScheduler, sha256hex, type FakeProc } from './test-scheduler.ts';

// Building may first install the toolchain with apt-get (as root on Debian): allow minutes.
beforeAll(() => buildPrograms(), 600_000);

// One memory cap for every test here, so each program is rewritten once for the whole file.
const MAX_MEMORY = 16 << 20;

const UNKNOWN_IMPORT = (): Uint8Array =>
  wat(`(module
    (import "lshapes" "foo" (func $foo (result i32)))
    (import "env" "bar" (func $bar))
    (memory (export "memory") 1)
    (func (export "_start") (drop (call $foo)) (call $bar)))`);

function programs(): Record<string, Uint8Array> {
  const hello = program('hello');
  return {
    hello,
    cat: program('cat'),
    busy: program('busy'),
    trap: program('trap'),
    oom: program('oom'),
    badptr: program('badptr'),
    'not-wasm': new TextEncoder().encode('#!/bin/sh\necho hi\n'),
    truncated: hello.slice(0, hello.length - 100),
    'unknown-import': UNKNOWN_IMPORT(),
    'big-memory': wat(`(module (memory (export "memory") 300) (func (export "_start")))`),
  };
}

function scheduler(executors = 1): FakeScheduler {
  return new FakeScheduler(programs(), executors, { maxMemoryBytes: MAX_MEMORY });
}

/** Waits (on macrotasks) until `cond` holds; fails after `ms`. */
async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function lines(s: FakeScheduler, p: FakeProc): string[] {
  return s.text(p.pid).split('\n').filter(Boolean);
}

describe('Executor: running programs', () => {
  it('runs hello: a state first, the output, then the exit; posts the rewritten module once', async () => {
    const s = scheduler();
    const p = s.start('hello', ['one', 'two words']);
    expect(await p.exited).toEqual({ code: 0, cpuMs: expect.any(Number) });
    expect(s.text(p.pid)).toBe('hello, world\narg 1: one\narg 2: two words\n');
    expect(p.log[0]).toBe('state:READY');
    expect(p.log[p.log.length - 1]).toBe('exit');
    expect(s.anomalies).toEqual([]);
    expect(s.rewritten.size).toBe(1);
    const bytes = [...s.rewritten.values()][0]!;

    // started again from the rewritten bytes: runs without rewriting, announces nothing new
    const again = s.start('hello', ['x'], { rewritten: bytes });
    expect((await again.exited).code).toBe(0);
    expect(s.text(again.pid)).toBe('hello, world\narg 1: x\n');
    expect(s.rewritten.size).toBe(1);
    expect(s.driver.size).toBe(0);
  });

  it('prepare rewrites a program ahead of its start (announced once); a broken one is reported only by its start', async () => {
    const s = scheduler();
    const hello = program('hello');
    s.driver.post(0, { t: 'prepare', hash: sha256hex(hello), module: hello });
    await until(() => s.rewritten.size === 1, 'the rewritten bytes');
    expect([...s.rewritten.keys()]).toEqual([sha256hex(hello)]);
    const p = s.start('hello', ['x']);
    expect((await p.exited).code).toBe(0);
    expect(s.text(p.pid)).toBe('hello, world\narg 1: x\n');
    expect(s.rewritten.size).toBe(1);
    const broken = programs().truncated!;
    s.driver.post(0, { t: 'prepare', hash: sha256hex(broken), module: broken });
    const bad = s.start('truncated');
    expect((await bad.exited).code).toBe(EXIT_CANNOT_START);
    expect(s.rewritten.size).toBe(1);
    expect(s.anomalies).toEqual([]);
  });

  it('refuses rewritten bytes of another program, or bytes that are not a rewrite', async () => {
    const s = scheduler();
    const first = s.start('hello');
    await first.exited;
    const bytes = [...s.rewritten.values()][0]!;
    const foreign = s.start('cat', [], { rewritten: bytes });
    const e = await foreign.exited;
    expect(e.code).toBe(EXIT_CANNOT_START);
    expect(e.message).toMatch(/belongs to another program/);
    // (an executor that has hello ready already uses that: a fresh one must read the bytes)
    const raw = scheduler().start('hello', [], { rewritten: program('hello') });
    expect((await raw.exited).message).toMatch(/not a module rewritten by LSHAPES/);
  });

  it('feeds interactive stdin: cat echoes each line as it comes and ends at stdin.end', async () => {
    const s = scheduler();
    const p = s.start('cat', [], { interactiveStdin: true });
    await until(() => p.states.some((x) => x.state === 'WAITING'), 'cat to wait for input');
    s.stdin(p.pid, 'one\n');
    await until(() => s.text(p.pid) === 'one\n', 'the first line');
    s.stdin(p.pid, 'two\n');
    s.stdinEnd(p.pid);
    s.stdin(p.pid, 'ignored after the end\n');
    expect((await p.exited).code).toBe(0);
    expect(s.text(p.pid)).toBe('one\ntwo\n');
    expect(s.anomalies).toEqual([]);
  });

  it('output flow control: a writer whose output is not acknowledged waits; acknowledgements let it finish', async () => {
    const s = scheduler();
    const WINDOW = 64 << 10;
    const p = s.start('cat', [], { interactiveStdin: true, outputWindow: WINDOW });
    const total = 1 << 20;
    s.stdin(p.pid, 'x'.repeat(total));
    s.stdinEnd(p.pid);
    const posted = () => p.out.reduce((n, o) => n + o.data.length, 0);
    // It has written past the window and now waits for the terminal.
    await until(() => posted() > 0 && p.states.at(-1)?.state === 'WAITING', 'cat to block on output');
    const stalled = posted();
    expect(stalled).toBeGreaterThanOrEqual(WINDOW);
    expect(stalled).toBeLessThan(total);
    // Nothing moves without acknowledgements (several slices' worth of macrotasks later).
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(posted()).toBe(stalled);
    // A terminal that takes everything it gets lets it run to the end.
    let acked = 0;
    await until(() => {
      const now = posted();
      if (now > acked) {
        s.ack(p.pid, now - acked);
        acked = now;
      }
      return !!p.exit;
    }, 'cat to finish once acknowledged');
    expect((await p.exited).code).toBe(0);
    expect(posted()).toBe(total);
  });

  it('a process without interactive stdin reads end of input at once', async () => {
    const s = scheduler();
    const p = s.start('cat');
    s.stdin(p.pid, 'not for it');
    expect((await p.exited).code).toBe(0);
    expect(s.text(p.pid)).toBe('');
  });

  it('kills an endless loop with 137 and the reason', async () => {
    const s = scheduler();
    const p = s.start('busy');
    await until(() => p.states.some((x) => x.cpuMs > 0), 'busy to run');
    s.kill(p.pid, 'killed by ^C');
    expect(await p.exited).toEqual({ code: EXIT_KILLED, message: 'killed by ^C', cpuMs: expect.any(Number) });
    expect(s.driver.size).toBe(0);
  });

  it('kills a process that is still loading', async () => {
    const s = scheduler();
    const p = s.start('busy');
    s.kill(p.pid, 'never mind');
    expect(await p.exited).toEqual({ code: EXIT_KILLED, message: 'never mind', cpuMs: 0 });
    expect(p.log).toEqual(['exit']);
  });

  it('time-slices two busy loops in one executor: both print and both get CPU time', async () => {
    const s = scheduler();
    const a = s.start('busy', ['20000'], { executor: 0 });
    const b = s.start('busy', ['20000'], { executor: 0 });
    await until(() => lines(s, a).length >= 5 && lines(s, b).length >= 5, 'both to print five lines');
    const cpu = (p: FakeProc): number => p.states[p.states.length - 1]?.cpuMs ?? 0;
    const [ca, cb] = [cpu(a), cpu(b)];
    await until(() => cpu(a) > ca && cpu(b) > cb, 'both to report more CPU time');
    expect(a.states.every((x) => x.state !== 'WAITING')).toBe(true);
    expect(a.states.at(-1)!.state).toBe('RUNNING');
    s.kill(a.pid, 'done');
    s.kill(b.pid, 'done');
    await s.all();
    // the counter lines are complete and in order: no output lost or reordered
    for (const p of [a, b]) {
      const l = lines(s, p);
      expect(l).toEqual(l.map((_, i) => String(i + 1)));
    }
  });
});

describe('Executor: a bad program ends alone, with a code and a clear message', () => {
  const cases: { name: string; args?: string[]; code: number; message: RegExp; stdout?: string; stderr?: RegExp; kill?: boolean }[] = [
    { name: 'not-wasm', code: EXIT_CANNOT_START, message: /^not a WebAssembly module/ },
    { name: 'truncated', code: EXIT_CANNOT_START, message: /^invalid WebAssembly module: / },
    {
      name: 'unknown-import',
      code: EXIT_CANNOT_START,
      message: /^the program imports lshapes\.foo and env\.bar, which LSHAPES does not provide$/,
    },
    { name: 'big-memory', code: EXIT_CANNOT_START, message: /needs 18\.8 MiB of memory to start, more than the limit of 16 MiB/ },
    { name: 'trap', code: EXIT_TRAPPED, message: /unreachable/, stdout: 'about to trap\n' },
    { name: 'oom', code: EXIT_TRAPPED, message: /unreachable.*out of memory\? it uses 1\d(\.\d)? MiB of its 16 MiB limit/, stderr: /^oom: malloc failed after 1\d MiB\n$/ },
    { name: 'badptr', code: EXIT_SEGFAULT, message: /^bad pointer passed to fd_write \(segmentation fault\)$/, stdout: 'before\n' },
    { name: 'busy', args: ['1000'], code: EXIT_KILLED, message: /^stop$/, kill: true },
  ];

  it('each of them, while a cat in the same executor keeps going', async () => {
    const s = scheduler();
    const cat = s.start('cat', [], { interactiveStdin: true, executor: 0 });
    s.stdin(cat.pid, 'before\n');
    await until(() => s.text(cat.pid) === 'before\n', 'cat to echo');
    const bad = cases.map((c) => ({ c, p: s.start(c.name, c.args ?? [], { executor: 0 }) }));
    for (const { c, p } of bad) {
      if (c.kill) {
        await until(() => lines(s, p).length > 2, `${c.name} to run`);
        s.kill(p.pid, 'stop');
      }
      const e = await p.exited;
      expect({ name: c.name, code: e.code }).toEqual({ name: c.name, code: c.code });
      expect(e.message, c.name).toMatch(c.message);
      if (c.stdout !== undefined) expect(s.text(p.pid), c.name).toBe(c.stdout);
      expect(s.text(p.pid, 2), c.name).toMatch(c.stderr ?? /^$/);
      if (c.code === EXIT_CANNOT_START) expect(p.log, c.name).toEqual(['exit']);
    }
    expect(s.driver.size).toBe(1); // only cat
    s.stdin(cat.pid, 'after\n');
    s.stdinEnd(cat.pid);
    expect((await cat.exited).code).toBe(0);
    expect(s.text(cat.pid)).toBe('before\nafter\n');
    expect(s.anomalies).toEqual([]);
  });
});

describe('Executor: the memory cap', () => {
  // exit 0: both grows as expected; 2: growing by 10 pages failed; 3: growing past the cap worked
  const grower = (memory: string): Uint8Array =>
    wat(`(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      ${memory}
      (func (export "_start")
        (if (i32.eq (memory.grow (i32.const 10)) (i32.const -1)) (then (call $exit (i32.const 2))))
        (if (i32.ne (memory.grow (i32.const 300)) (i32.const -1)) (then (call $exit (i32.const 3))))))`);

  it('memory.grow fails beyond maxMemoryBytes, for a memory of its own or an imported one', async () => {
    const s = new FakeScheduler(
      {
        own: grower('(memory (export "memory") 1)'),
        'own-max': grower('(memory (export "memory") 1 1000)'),
        imported: grower('(import "env" "memory" (memory 1))'),
      },
      1,
      { maxMemoryBytes: MAX_MEMORY },
    );
    const ps = ['own', 'own-max', 'imported'].map((n) => s.start(n));
    const exits = await Promise.all(ps.map((p) => p.exited));
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0]);
  });
});

describe('Executor: the message contract', () => {
  it('InProcessExecution delivers asynchronously, in order, and copies messages', async () => {
    const ex = new InProcessExecution(2);
    const got: [number, FromExecutor][] = [];
    ex.post(1, { t: 'start', spec: { pid: 'p.1', peer: 'x', name: 'not-wasm', hash: 'h', module: new Uint8Array([1, 2, 3]), args: [], env: {}, hasParent: false, interactiveStdin: false } });
    ex.attach((i, m) => got.push([i, m]));
    expect(ex.executors[1]!.size).toBe(0); // not handled yet: posting is asynchronous
    await until(() => got.length > 0, 'the exit');
    expect(got).toEqual([[1, { t: 'exit', pid: 'p.1', code: 1, cpuMs: 0, message: expect.stringMatching(/^not a WebAssembly module/) }]]);
    expect(() => ex.post(2, { t: 'stdin.end', pid: 'p.1' })).toThrow(RangeError);
  });

  it('an Executor ignores messages for unknown processes and never throws', () => {
    const posted: FromExecutor[] = [];
    const ex = new Executor({ post: (m) => posted.push(m), clock: performance, yieldToHost: () => Promise.resolve() });
    for (const m of [
      { t: 'stdin', pid: 'x.1', data: new Uint8Array(1) },
      { t: 'stdin.end', pid: 'x.1' },
      { t: 'kill', pid: 'x.1', reason: 'r' },
      { t: 'reply', pid: 'x.1', call: 1, reply: { ok: true, op: 'kill' } },
      { t: 'deliver', pid: 'x.1', port: 'p', from: 'y.1', token: 0, data: new Uint8Array(0) },
      { t: 'bogus' },
      null,
    ]) {
      expect(() => ex.handle(m as never)).not.toThrow();
    }
    expect(posted).toEqual([]);
    expect(ex.size).toBe(0);
  });
});
