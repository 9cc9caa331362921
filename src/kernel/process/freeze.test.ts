// Freezing a running process into a process image in one executor and thawing it in another,
// with real programs (programs/c and small WAT programs) on two in-process executors that share
// a cluster filesystem (a MemFs standing in for /cluster).
import { beforeAll, describe, expect, it } from 'vitest';
import { wat } from '../wasm/fixtures/load.ts';
import { VirtualClock } from '../wasi/clock.ts';
import { MemFs, memfsFrom } from '../wasi/memfs.ts';
import { buildPrograms, program } from '../wasi/test-programs.ts';
import { IMAGE_FORMAT_VERSION, decodeImage } from './image.ts';
import { InProcessExecution } from './in-process.ts';
import { EXIT_CANNOT_START, EXIT_KILLED, type FromExecutor, type KernelReply, type Pid, type ProcessSpec } from './protocol.ts';
import { PEER, sha256hex } from './test-scheduler.ts';

beforeAll(() => buildPrograms(), 600_000);

const MAX_MEMORY = 16 << 20;
const A = 0;
const B = 1;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Virtual time whose sleeps still block for a macrotask, so a sleeping program can be frozen. */
class SteppingClock extends VirtualClock {
  override sleep(ns: bigint): Promise<void> {
    super.sleep(ns);
    return new Promise((resolve) => setImmediate(resolve));
  }
}

const escape = (s: string) => [...enc.encode(s)].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('');

/**
 * Optionally creates and removes `junk` first (so later inodes are not numbered as a fresh
 * filesystem would number them) and writes `content` to `path` (relative to fd 3, `/`), then opens `path` for reading
 * and, for every byte read from stdin, prints the next `chunk` bytes of the file; exits 0 at the
 * end of stdin (or with the errno of a failing call).
 */
function stepper(path: string, chunk: number, content?: string, junk?: string): Uint8Array {
  const n = enc.encode(path).length;
  const j = junk === undefined ? 0 : enc.encode(junk).length;
  const removeJunk =
    junk === undefined
      ? ''
      : `(call $check (call $open (i32.const 3) (i32.const 0) (i32.const 3000) (i32.const ${j}) (i32.const 9)
          (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 8)))
        (call $check (call $close (i32.load (i32.const 8))))
        (call $check (call $unlink (i32.const 3) (i32.const 3000) (i32.const ${j})))`;
  const write =
    content === undefined
      ? ''
      : `(call $check (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const ${n}) (i32.const 9)
          (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 8)))
        (i32.store (i32.const 16) (i32.const 2000))
        (i32.store (i32.const 20) (i32.const ${enc.encode(content).length}))
        (call $check (call $write (i32.load (i32.const 8)) (i32.const 16) (i32.const 1) (i32.const 24)))
        (call $check (call $close (i32.load (i32.const 8))))`;
  return wat(`(module
    (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
    (import "wasi_snapshot_preview1" "path_unlink_file" (func $unlink (param i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (data (i32.const 100) "${escape(path)}")
    (data (i32.const 2000) "${escape(content ?? '')}")
    (data (i32.const 3000) "${escape(junk ?? '')}")
    (func $check (param $e i32) (if (local.get $e) (then (call $exit (local.get $e)))))
    (func (export "_start")
      ${removeJunk}
      ${write}
      (call $check (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const ${n}) (i32.const 0)
        (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 12)))
      (loop $next
        (i32.store (i32.const 16) (i32.const 200))
        (i32.store (i32.const 20) (i32.const 1))
        (call $check (call $read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
        (if (i32.eqz (i32.load (i32.const 24))) (then (call $exit (i32.const 0))))
        (i32.store (i32.const 16) (i32.const 1000))
        (i32.store (i32.const 20) (i32.const ${chunk}))
        (call $check (call $read (i32.load (i32.const 12)) (i32.const 16) (i32.const 1) (i32.const 24)))
        (i32.store (i32.const 20) (i32.load (i32.const 24)))
        (call $check (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 28)))
        (br $next))))`);
}

/** Spawns a child (its spawn is never answered here) and exits 0 if it ever returns. */
const SPAWNER = (): Uint8Array =>
  wat(`(module
    (import "lshapes" "spawn" (func $spawn (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 100) "child")
    (func (export "_start") (drop (call $spawn (i32.const 100) (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 8)))))`);

/** Prints every message received on its port "in"; exits 0 at an empty one. */
const RECEIVER = (): Uint8Array =>
  wat(`(module
    (import "lshapes" "port_open" (func $open (param i32 i32 i32) (result i32)))
    (import "lshapes" "recv" (func $recv (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (data (i32.const 100) "in")
    (func $check (param $e i32) (if (local.get $e) (then (call $exit (local.get $e)))))
    (func (export "_start")
      (call $check (call $open (i32.const 100) (i32.const 2) (i32.const 8)))
      (loop $next
        (call $check (call $recv (i32.load (i32.const 8)) (i32.const 1000) (i32.const 1000) (i32.const 24) (i32.const 28) (i32.const 32) (i32.const -1)))
        (if (i32.eqz (i32.load (i32.const 24))) (then (call $exit (i32.const 0))))
        (i32.store (i32.const 16) (i32.const 1000))
        (i32.store (i32.const 20) (i32.load (i32.const 24)))
        (call $check (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 40)))
        (br $next))))`);

type Frozen = Extract<FromExecutor, { t: 'frozen' }>;
type FreezeAnswer = Frozen | Extract<FromExecutor, { t: 'freeze.failed' }>;

/** Two executors (A and B, as if on two peers) and a minimal Scheduler in front of them. */
class Cluster {
  readonly driver: InProcessExecution;
  /** Every message, with the executor it came from. */
  readonly log: { from: number; msg: FromExecutor }[] = [];
  private n = 0;

  constructor(files: MemFs = new MemFs()) {
    this.driver = new InProcessExecution(2, { maxMemoryBytes: MAX_MEMORY, files, wasiClock: new SteppingClock() });
    this.driver.attach((from, msg) => {
      this.log.push({ from, msg });
      if (msg.t === 'call') {
        // spawn is never answered (a process stays blocked in it); the rest is not used here
        if (msg.req.op === 'spawn') return;
        const reply: KernelReply = msg.req.op === 'cluster_info' ? { ok: true, op: 'cluster_info', peers: 2, slots: 2 } : { ok: false, errno: 'EINVAL', message: 'EINVAL' };
        this.driver.post(from, { t: 'reply', pid: msg.pid, call: msg.call, reply });
      }
    });
  }

  spec(module: Uint8Array, name: string, args: string[] = [], extra: Partial<ProcessSpec> = {}): ProcessSpec {
    return {
      pid: `bbbbbb.${++this.n}`,
      peer: PEER,
      name,
      hash: sha256hex(module),
      module,
      args: [name, ...args],
      env: {},
      hasParent: false,
      interactiveStdin: false,
      ...extra,
    };
  }

  start(on: number, spec: ProcessSpec): ProcessSpec {
    this.driver.post(on, { t: 'start', spec });
    return spec;
  }

  stdin(on: number, pid: Pid, text: string): void {
    this.driver.post(on, { t: 'stdin', pid, data: enc.encode(text) });
  }

  messages(pid: Pid, from?: number): FromExecutor[] {
    return this.log.filter((m) => 'pid' in m.msg && m.msg.pid === pid && (from === undefined || m.from === from)).map((m) => m.msg);
  }

  /** stdout of `pid` over all executors, in the order it was posted. */
  text(pid: Pid): string {
    return this.messages(pid)
      .map((m) => (m.t === 'out' && m.fd === 1 ? dec.decode(m.data) : ''))
      .join('');
  }

  lastState(pid: Pid): string | undefined {
    return this.messages(pid).filter((m) => m.t === 'state').at(-1)?.state;
  }

  async freeze(on: number, pid: Pid): Promise<FreezeAnswer> {
    const seen = this.log.length;
    this.driver.post(on, { t: 'freeze', pid });
    let answer: FreezeAnswer | undefined;
    await until(() => {
      answer = this.log.slice(seen).find((m): m is { from: number; msg: FreezeAnswer } => (m.msg.t === 'frozen' || m.msg.t === 'freeze.failed') && m.msg.pid === pid)?.msg;
      return !!answer;
    }, `the answer to freeze ${pid}`);
    return answer!;
  }

  async exit(pid: Pid): Promise<Extract<FromExecutor, { t: 'exit' }>> {
    let e: Extract<FromExecutor, { t: 'exit' }> | undefined;
    await until(() => !!(e = this.messages(pid).find((m): m is Extract<FromExecutor, { t: 'exit' }> => m.t === 'exit')), `the exit of ${pid}`);
    return e!;
  }
}

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A few macrotasks: long enough for an executor to post what it still would. */
async function settle(): Promise<void> {
  for (let i = 0; i < 30; i++) await new Promise((r) => setImmediate(r));
}

async function frozen(c: Cluster, on: number, pid: Pid): Promise<Frozen> {
  const answer = await c.freeze(on, pid);
  if (answer.t !== 'frozen') throw new Error(`freeze failed: ${answer.reason}`);
  return answer;
}

describe('freeze and thaw', () => {
  it('counter frozen mid-run on A continues on B: every tick once, in order; A says nothing after frozen', async () => {
    const c = new Cluster();
    const TICKS = 30;
    const spec = c.start(A, c.spec(program('counter'), 'counter', [String(TICKS)]));
    await until(() => c.text(spec.pid).split('\n').length > 5, 'a few ticks');
    const f = await frozen(c, A, spec.pid);
    const ticksOnA = c.text(spec.pid).split('\n').filter(Boolean).length;
    expect(ticksOnA).toBeGreaterThanOrEqual(5);
    expect(ticksOnA).toBeLessThan(TICKS);
    expect(c.driver.executors[A]!.pids()).toEqual([]);

    c.driver.post(B, { t: 'thaw', spec: { ...spec }, image: f.image });
    const e = await c.exit(spec.pid);
    expect(e.code).toBe(0);
    expect(e.cpuMs).toBeGreaterThanOrEqual(f.cpuMs);
    const ticks = c.text(spec.pid).split('\n').filter(Boolean).map((l) => Number(/^tick (\d+) /.exec(l)?.[1]));
    expect(ticks).toEqual(Array.from({ length: TICKS }, (_, i) => i + 1));
    // the thawed process reported its state from B
    expect(c.messages(spec.pid, B)[0]).toMatchObject({ t: 'state' });

    await settle();
    const fromA = c.messages(spec.pid, A);
    expect(fromA.at(-1)!.t).toBe('frozen');
    expect(fromA.some((m) => m.t === 'exit')).toBe(false);
    expect(c.messages(spec.pid, B).some((m) => m.t === 'frozen')).toBe(false);
  });

  it('cat blocked on stdin: stdin sent before the freeze and not read is read after the thaw, then more', async () => {
    const c = new Cluster();
    const spec = c.start(A, c.spec(program('cat'), 'cat', [], { interactiveStdin: true }));
    await until(() => c.lastState(spec.pid) === 'WAITING', 'cat to wait for input');
    c.stdin(A, spec.pid, 'one\n');
    await until(() => c.text(spec.pid) === 'one\n', 'the first line');
    await until(() => c.lastState(spec.pid) === 'WAITING', 'cat to wait again');
    // delivered in the same batch as the freeze: cat has not printed it when it is frozen
    c.stdin(A, spec.pid, 'two\n');
    const f = await frozen(c, A, spec.pid);
    expect(c.text(spec.pid)).toBe('one\n');

    c.driver.post(B, { t: 'thaw', spec, image: f.image });
    c.stdin(B, spec.pid, 'three\n');
    c.driver.post(B, { t: 'stdin.end', pid: spec.pid });
    expect((await c.exit(spec.pid)).code).toBe(0);
    expect(c.text(spec.pid)).toBe('one\ntwo\nthree\n');
  });

  it('messages: the mailbox travels in the image, and messages delivered while the thaw loads are kept', async () => {
    const c = new Cluster();
    const spec = c.start(A, c.spec(RECEIVER(), 'receiver'));
    const deliver = (on: number, text: string) =>
      c.driver.post(on, { t: 'deliver', pid: spec.pid, port: 'in', from: 'cccccc.1', token: 0, data: enc.encode(text) });
    deliver(A, 'm1,');
    await until(() => c.text(spec.pid) === 'm1,', 'the first message');
    await until(() => c.lastState(spec.pid) === 'WAITING', 'it to wait for a message');
    deliver(A, 'm2,'); // in the same batch as the freeze: queued, not received yet
    const f = await frozen(c, A, spec.pid);
    c.driver.post(B, { t: 'thaw', spec, image: f.image });
    deliver(B, 'm3,'); // arrives while B still loads the program
    deliver(B, '');
    expect((await c.exit(spec.pid)).code).toBe(0);
    expect(c.text(spec.pid)).toBe('m1,m2,m3,');
  });

  it('stdin ended before the freeze stays ended after the thaw', async () => {
    const c = new Cluster();
    const spec = c.start(A, c.spec(program('cat'), 'cat', [], { interactiveStdin: true }));
    await until(() => c.lastState(spec.pid) === 'WAITING', 'cat to wait for input');
    c.stdin(A, spec.pid, 'last\n');
    c.driver.post(A, { t: 'stdin.end', pid: spec.pid });
    const f = await frozen(c, A, spec.pid);
    c.driver.post(B, { t: 'thaw', spec, image: f.image });
    expect((await c.exit(spec.pid)).code).toBe(0);
    expect(c.text(spec.pid)).toBe('last\n');
  });

  it('/tmp survives: a file written on A is read through the same open fd, at its position, on B', async () => {
    const c = new Cluster();
    const text = 'first chunk|second chunk|third chunk|';
    const spec = c.start(A, c.spec(stepper('tmp/x', 12, text, 'tmp/junk'), 'tmp-stepper', [], { interactiveStdin: true }));
    c.stdin(A, spec.pid, '.');
    await until(() => c.text(spec.pid) === 'first chunk|', 'the first chunk');
    await until(() => c.lastState(spec.pid) === 'WAITING', 'it to wait for input');
    const f = await frozen(c, A, spec.pid);
    const image = decodeImage(f.image);
    expect(image.tmp!.entries.map((e) => e.name)).toEqual(['x']);

    c.driver.post(B, { t: 'thaw', spec, image: f.image });
    c.stdin(B, spec.pid, '...');
    c.driver.post(B, { t: 'stdin.end', pid: spec.pid });
    expect((await c.exit(spec.pid)).code).toBe(0);
    expect(c.text(spec.pid)).toBe(text);
  });

  it('an open file of the cluster filesystem keeps its fd and position across the thaw', async () => {
    const files = memfsFrom({ 'data.txt': 'AAAAABBBBBCCCCCDDDDD' });
    const c = new Cluster(files);
    const spec = c.start(A, c.spec(stepper('cluster/data.txt', 5), 'cluster-stepper', [], { interactiveStdin: true }));
    c.stdin(A, spec.pid, '..');
    await until(() => c.text(spec.pid) === 'AAAAABBBBB', 'two chunks');
    await until(() => c.lastState(spec.pid) === 'WAITING', 'it to wait for input');
    const f = await frozen(c, A, spec.pid);
    c.driver.post(B, { t: 'thaw', spec, image: f.image });
    c.stdin(B, spec.pid, '..');
    c.driver.post(B, { t: 'stdin.end', pid: spec.pid });
    expect((await c.exit(spec.pid)).code).toBe(0);
    expect(c.text(spec.pid)).toBe('AAAAABBBBBCCCCCDDDDD');
  });

  it('a writer blocked on output flow control is frozen without printing anything twice; its unread stdin travels', async () => {
    const c = new Cluster();
    const WINDOW = 64 << 10;
    const total = 512 << 10;
    const spec = c.start(A, c.spec(program('cat'), 'cat', [], { interactiveStdin: true, outputWindow: WINDOW }));
    c.stdin(A, spec.pid, 'x'.repeat(total));
    const posted = () => c.messages(spec.pid).reduce((n, m) => n + (m.t === 'out' ? m.data.length : 0), 0);
    await until(() => posted() > 0 && c.lastState(spec.pid) === 'WAITING', 'cat to block on output');
    // while it cannot read: stdin arrives and ends
    c.stdin(A, spec.pid, 'END\n');
    c.driver.post(A, { t: 'stdin.end', pid: spec.pid });
    const f = await frozen(c, A, spec.pid);
    const image = decodeImage(f.image);
    expect(image.unacked).toBe(posted());
    expect(image.stdin!.ended).toBe(true);
    expect(dec.decode(image.stdin!.data.subarray(-4))).toBe('END\n');
    expect(image.stdin!.data.length).toBeGreaterThan(4);
    c.driver.post(B, { t: 'thaw', spec, image: f.image });
    // the terminal acknowledges everything, to B now
    let acked = 0;
    await until(() => {
      const now = posted();
      if (now > acked) {
        c.driver.post(B, { t: 'out.ack', pid: spec.pid, bytes: now - acked });
        acked = now;
      }
      return c.messages(spec.pid).some((m) => m.t === 'exit');
    }, 'cat to finish on B');
    expect((await c.exit(spec.pid)).code).toBe(0);
    expect(posted()).toBe(total + 4);
    expect(c.text(spec.pid)).toBe('x'.repeat(total) + 'END\n');
  });

  it('a process frozen before its first slice thaws and runs from the start', async () => {
    const c = new Cluster();
    const spec = c.spec(program('hello'), 'hello', ['x']);
    c.start(A, spec);
    const f = await frozen(c, A, spec.pid); // posted right after the start: while it loads
    expect(c.text(spec.pid)).toBe('');
    c.driver.post(B, { t: 'thaw', spec, image: f.image });
    expect((await c.exit(spec.pid)).code).toBe(0);
    expect(c.text(spec.pid)).toBe('hello, world\narg 1: x\n');
  });

  it('refuses bad images with exit 1 and a clear message, and goes on running other processes', async () => {
    const c = new Cluster();
    const catSpec = c.start(A, c.spec(program('cat'), 'cat', [], { interactiveStdin: true }));
    await until(() => c.lastState(catSpec.pid) === 'WAITING', 'cat to wait for input');
    const image = (await frozen(c, A, catSpec.pid)).image;

    const flipped = image.slice();
    flipped[flipped.length - 7]! ^= 0x40;
    const otherVersion = image.slice();
    new DataView(otherVersion.buffer).setUint32(8, IMAGE_FORMAT_VERSION + 1, true);
    const cases: [string, ProcessSpec, Uint8Array, RegExp][] = [
      ['truncated header', { ...catSpec }, image.slice(0, 20), /truncated/],
      ['truncated payload', { ...catSpec }, image.slice(0, image.length - 10), /corrupt or truncated/],
      ['flipped byte', { ...catSpec }, flipped, /checksum/],
      ['other version', { ...catSpec }, otherVersion, new RegExp(`unsupported process image format version ${IMAGE_FORMAT_VERSION + 1}`)],
      ['not an image', { ...catSpec }, enc.encode('#!/bin/sh\necho this is a shell script and not a process image at all\n'), /bad magic/],
      ['another program', c.spec(program('hello'), 'hello', [], { pid: catSpec.pid }), image, /belongs to another program/],
      ['another pid', { ...catSpec, pid: 'bbbbbb.999' }, image, /of process bbbbbb\.\d+, not bbbbbb\.999/],
    ];
    for (const [what, spec, bytes, message] of cases) {
      c.driver.post(B, { t: 'thaw', spec, image: bytes });
      const e = await c.exit(spec.pid);
      expect({ what, code: e.code }).toEqual({ what, code: EXIT_CANNOT_START });
      expect(e.message, what).toMatch(message);
      expect(c.messages(spec.pid, B).filter((m) => m.t !== 'rewritten').map((m) => m.t), what).toEqual(['exit']);
      c.log.length = 0; // the next case reuses the pid
    }
    // both executors still run programs
    for (const on of [A, B]) {
      const hello = c.start(on, c.spec(program('hello'), 'hello'));
      expect((await c.exit(hello.pid)).code).toBe(0);
      expect(c.text(hello.pid)).toMatch(/^hello, world\n/);
    }
    // and the good image still thaws
    c.driver.post(B, { t: 'thaw', spec: catSpec, image });
    c.stdin(B, catSpec.pid, 'still here\n');
    c.driver.post(B, { t: 'stdin.end', pid: catSpec.pid });
    expect((await c.exit(catSpec.pid)).code).toBe(0);
    expect(c.text(catSpec.pid)).toBe('still here\n');
  });

  it('does not freeze a process blocked in spawn, nor an unknown one', async () => {
    const c = new Cluster();
    const spec = c.start(A, c.spec(SPAWNER(), 'spawner'));
    await until(() => c.messages(spec.pid).some((m) => m.t === 'call'), 'the spawn call');
    await until(() => c.lastState(spec.pid) === 'WAITING', 'it to wait in spawn');
    expect(await c.freeze(A, spec.pid)).toEqual({ t: 'freeze.failed', pid: spec.pid, reason: 'blocked in spawn' });
    // still alive on A, and still killable
    expect(c.driver.executors[A]!.pids()).toEqual([spec.pid]);
    c.driver.post(A, { t: 'kill', pid: spec.pid, reason: 'test over' });
    expect((await c.exit(spec.pid)).code).toBe(EXIT_KILLED);

    expect(await c.freeze(B, 'bbbbbb.404')).toEqual({ t: 'freeze.failed', pid: 'bbbbbb.404', reason: 'no such process here' });
    // and a pid that lives on A is unknown to B
    const cat = c.start(A, c.spec(program('cat'), 'cat', [], { interactiveStdin: true }));
    await until(() => c.lastState(cat.pid) === 'WAITING', 'cat to wait');
    expect((await c.freeze(B, cat.pid)).t).toBe('freeze.failed');
    c.driver.post(A, { t: 'stdin.end', pid: cat.pid });
    expect((await c.exit(cat.pid)).code).toBe(0);
  });

  it('a freeze right behind the answer to its spawn waits for that answer to land: frozen with the child pid, thawed it does not spawn again', async () => {
    const c = new Cluster();
    const spec = c.start(A, c.spec(SPAWNER(), 'spawner'));
    await until(() => c.lastState(spec.pid) === 'WAITING', 'it to wait in spawn');
    const call = c.messages(spec.pid).find((m): m is Extract<FromExecutor, { t: 'call' }> => m.t === 'call' && m.req.op === 'spawn')!;
    // The Scheduler answers the spawn and asks the freeze at once (a migrate that waited for the spawn).
    c.driver.post(A, { t: 'reply', pid: spec.pid, call: call.call, reply: { ok: true, op: 'spawn', child: 'cccccc.9' } });
    const f = await c.freeze(A, spec.pid);
    expect(f.t).toBe('frozen');
    c.driver.post(B, { t: 'thaw', spec, image: (f as Frozen).image });
    expect((await c.exit(spec.pid)).code).toBe(0);
    expect(c.messages(spec.pid, B).filter((m) => m.t === 'call')).toEqual([]);
  });

  it('a process killed while a freeze waits gets its exit and then freeze.failed', async () => {
    const c = new Cluster();
    const spec = c.start(A, c.spec(program('cat'), 'cat', [], { interactiveStdin: true, outputWindow: 4096 }));
    c.stdin(A, spec.pid, 'y'.repeat(64 << 10));
    await until(() => c.lastState(spec.pid) === 'WAITING' && c.messages(spec.pid).some((m) => m.t === 'out'), 'cat to block on output');
    // the freeze first lets the blocked write finish; the kill in the same batch wins
    c.driver.post(A, { t: 'freeze', pid: spec.pid });
    c.driver.post(A, { t: 'kill', pid: spec.pid, reason: 'stop' });
    await until(() => c.messages(spec.pid).some((m) => m.t === 'freeze.failed' || m.t === 'frozen'), 'the answer');
    const kinds = c.messages(spec.pid).map((m) => m.t);
    expect(kinds.slice(-2)).toEqual(['exit', 'freeze.failed']);
  });
});
