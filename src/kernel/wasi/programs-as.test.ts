// The AssemblyScript programs in programs/as, built by scripts/build-programs.mjs with asc:
// they must be WASI commands the runtime accepts, wasi_as must print programs/expected/wasi_as.out
// (directly and on the thread runtime), and primes, ping and pong must speak the lshapes ABI
// (docs/abi.md). For that, a small in-test cluster (MiniCluster below) implements the ABI over
// WasmThreads: enough to run a parent and its children together, not the real Scheduler.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { HostModule, HostResult, MemoryAccess } from '../wasm/host-calls.ts';
import { rewriteModule } from '../wasm/rewrite.ts';
import { WasmThread } from '../wasm/thread.ts';
import { VirtualClock } from './clock.ts';
import { Errno } from './errno.ts';
import { MemFs, memfsFrom } from './memfs.ts';
import { Wasi } from './preview1.ts';
import { runSync } from './run-sync.ts';
import { CollectOutput, bytesInput } from './streams.ts';
import { ROOT, buildPrograms, expected, program, rewrittenProgram, runThreaded } from './test-programs.ts';
import { Namespace } from './vfs.ts';

// The first build may install the C toolchain (apt-get) and compiles every program: minutes.
beforeAll(() => buildPrograms(), 600_000);

const AS_PROGRAMS = ['primes', 'ping', 'pong', 'wasi_as'];
const PEER_A = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const PEER_B = 'b0b1b2b3b4b5b6b7b8b9babbbcbdbebf';

function wasiFor(args: string[], opts: { ns?: Namespace; stdin?: string; stdout?: CollectOutput; stderr?: CollectOutput } = {}) {
  const stdout = opts.stdout ?? new CollectOutput();
  const stderr = opts.stderr ?? new CollectOutput();
  const errors: unknown[] = [];
  const wasi = new Wasi({
    args,
    env: { HOME: '/', TESTVAR: 'value' },
    namespace: opts.ns ?? new Namespace({ '/': new MemFs() }),
    stdin: bytesInput(opts.stdin ?? ''),
    stdout,
    stderr,
    clock: new VirtualClock(),
    onError: (call, err) => errors.push([call, err]),
  });
  return { wasi, stdout, stderr, errors };
}

// ───────────────────────────── memory helpers for fake hosts ─────────────────────────────

const enc = new TextEncoder();
const dec = new TextDecoder();
const u = (x: number | bigint) => Number(x) >>> 0;
const i32 = (x: number | bigint) => Number(x) | 0;

function memIo(access: MemoryAccess) {
  const view = () => new DataView(access.memory().buffer);
  return {
    bytes: (ptr: number | bigint, len: number | bigint) => new Uint8Array(access.memory().buffer, u(ptr), u(len)).slice(),
    text: (ptr: number | bigint, len: number | bigint) => dec.decode(new Uint8Array(access.memory().buffer, u(ptr), u(len))),
    put: (ptr: number | bigint, data: Uint8Array) => new Uint8Array(access.memory().buffer).set(data, u(ptr)),
    setU32: (ptr: number | bigint, v: number) => view().setUint32(u(ptr), v >>> 0, true),
    setI32: (ptr: number | bigint, v: number) => view().setInt32(u(ptr), v | 0, true),
  };
}

/** getpid / peer_id: the name, or ENOBUFS with its length. */
function putName(io: ReturnType<typeof memIo>, name: string, buf: number | bigint, cap: number | bigint, lenOut: number | bigint): number {
  const b = enc.encode(name);
  io.setU32(lenOut, b.length);
  if (u(cap) < b.length) return Errno.NOBUFS;
  io.put(buf, b);
  return 0;
}

// ───────────────────────────── the build ─────────────────────────────

describe('AssemblyScript programs: the build', () => {
  for (const name of AS_PROGRAMS) {
    it(`${name} is a wasm32-wasi command importing only wasi_snapshot_preview1 and lshapes, accepted by the rewriter`, async () => {
      const module = await WebAssembly.compile(program(name));
      const modules = new Set(WebAssembly.Module.imports(module).map((i) => i.module));
      modules.delete('wasi_snapshot_preview1');
      modules.delete('lshapes');
      expect([...modules]).toEqual([]);
      const exports = WebAssembly.Module.exports(module).map((e) => `${e.name}:${e.kind}`);
      expect(exports).toContain('_start:function');
      expect(exports).toContain('memory:memory');
      // Validates with exactly the features LSHAPES supports, then adds Asyncify.
      await expect(rewriteModule(program(name))).resolves.toBeDefined();
    });
  }

  it('the lshapes programs import what they use from the ABI', async () => {
    const lshapes = async (name: string) =>
      WebAssembly.Module.imports(await WebAssembly.compile(program(name)))
        .filter((i) => i.module === 'lshapes')
        .map((i) => i.name)
        .sort();
    expect(await lshapes('primes')).toEqual(['getpid', 'kill', 'peer_id', 'port_open', 'recv', 'spawn', 'wait', 'send'].sort());
    expect(await lshapes('ping')).toEqual(['call', 'kill', 'send', 'spawn', 'wait']);
    expect(await lshapes('pong')).toEqual(['port_open', 'recv', 'reply']);
    expect(await lshapes('wasi_as')).toEqual([]);
  });

  it('index.json lists the runnable programs, not the test programs', () => {
    const names = JSON.parse(readFileSync(path.join(ROOT, 'programs', 'build', 'index.json'), 'utf8')) as string[];
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(expect.arrayContaining(['hello', 'cat', 'primes', 'ping', 'pong']));
    expect(names.filter((n) => /^(wasi_|lshapes_)/.test(n) || ['busy', 'oom', 'badptr', 'trap'].includes(n))).toEqual([]);
  });
});

// ───────────────────────────── wasi_as ─────────────────────────────

/** The setup of wasi_raw (see the top of programs/as/wasi_as.ts). */
function wasiAsSetup() {
  const ns = new Namespace();
  ns.mount('/', memfsFrom({ tmp: {}, ro: {} }));
  ns.mount('/ro', memfsFrom({ readme: 'read me' }), { readonly: true });
  ns.mount('/tmp', new MemFs());
  return wasiFor(['wasi_as', 'one', 'two words'], { ns, stdin: 'abc' });
}

describe('wasi_as: raw WASI calls from AssemblyScript (expected output in programs/expected)', () => {
  it('runs to proc_exit(9) with the expected output', async () => {
    const { wasi, stdout, stderr, errors } = wasiAsSetup();
    const code = await runSync(program('wasi_as'), wasi);
    expect(errors).toEqual([]);
    expect(stderr.text()).toBe('');
    expect(stdout.text()).toBe(expected('wasi_as'));
    expect(code).toBe(9);
  });

  it('prints the same on the thread runtime (Asyncify)', async () => {
    const { wasi, stdout, stderr, errors } = wasiAsSetup();
    const { code } = await runThreaded('wasi_as', wasi);
    expect(errors).toEqual([]);
    expect(stderr.text()).toBe('');
    expect(stdout.text()).toBe(expected('wasi_as'));
    expect(code).toBe(9);
  });
});

// ───────────────────────────── primes, alone ─────────────────────────────

/** getpid, peer_id and cluster_info; every other lshapes call is recorded and fails (ENOSYS or `fail`). */
function soloLshapes(fail: Partial<Record<string, number>> = {}) {
  const calls: string[] = [];
  const host: HostModule = {
    name: 'lshapes',
    functions(access) {
      const io = memIo(access);
      const other = (name: string) => (): HostResult => {
        calls.push(name);
        return fail[name] ?? Errno.NOSYS;
      };
      return {
        getpid: (buf, cap, len) => (calls.push('getpid'), putName(io, '4f2a1c.3', buf, cap, len)),
        peer_id: (buf, cap, len) => (calls.push('peer_id'), putName(io, PEER_A, buf, cap, len)),
        cluster_info: (peers, slots) => {
          calls.push('cluster_info');
          io.setU32(peers, 1);
          io.setU32(slots, 4);
          return 0;
        },
        ...Object.fromEntries(['spawn', 'wait', 'kill', 'port_open', 'send', 'recv', 'call', 'reply'].map((n) => [n, other(n)])),
      };
    },
    snapshot: () => null,
    restore: () => {},
  };
  return { host, calls };
}

describe('primes with PARTS = 1 (no other process)', () => {
  it('primes 10000 1 counts 1229 primes and uses only peer_id', async () => {
    const { wasi, stdout, stderr } = wasiFor(['primes', '10000', '1']);
    const { host, calls } = soloLshapes();
    const code = await runSync(program('primes'), wasi, host);
    expect(stderr.text()).toBe('');
    expect(stdout.text()).toBe('part 2..10000 on a1b2c3d4: 1229 primes\nprimes below 10000: 1229\n');
    expect(code).toBe(0);
    expect(calls.filter((c) => c !== 'getpid' && c !== 'peer_id')).toEqual([]);
  });

  it('counts right at the edges (no PARTS means 1)', async () => {
    for (const [limit, count] of [['0', 0], ['2', 0], ['3', 1], ['100', 25], ['7919', 999], ['7920', 1000]] as const) {
      const { wasi, stdout } = wasiFor(['primes', limit]);
      expect(await runSync(program('primes'), wasi, soloLshapes().host)).toBe(0);
      expect(stdout.text().split('\n').at(-2)).toBe(`primes below ${limit}: ${count}`);
    }
  });

  it('bad arguments: usage on stderr, exit 2', async () => {
    for (const args of [[], ['x'], ['10', '0'], ['10', '2', '3'], ['-5']]) {
      const { wasi, stdout, stderr } = wasiFor(['primes', ...args]);
      expect(await runSync(program('primes'), wasi, soloLshapes().host)).toBe(2);
      expect(stdout.text()).toBe('');
      expect(stderr.text()).toMatch(/usage: primes LIMIT \[PARTS\]/);
    }
  });

  it('a failed spawn is reported on stderr with its errno, exit 1', async () => {
    const { wasi, stdout, stderr } = wasiFor(['primes', '1000', '3']);
    const { host, calls } = soloLshapes({ port_open: 0, spawn: Errno.NOEXEC });
    expect(await runSync(program('primes'), wasi, host)).toBe(1);
    expect(stderr.text()).toBe('primes: spawning part 1: ENOEXEC\nprimes: gave up\n');
    expect(stdout.text()).toBe('');
    expect(calls).toContain('spawn');
  });
});

// ───────────────────────────── a tiny cluster for several processes ─────────────────────────────

interface Msg {
  data: Uint8Array;
  from: Proc;
  token: number;
}

interface Mailbox {
  num: number;
  queue: Msg[];
  waiters: (() => void)[];
}

interface Proc {
  pid: string;
  peer: string;
  program: string;
  args: string[];
  handles: (Proc | undefined)[];
  mailboxes: Map<string, Mailbox>;
  thread?: WasmThread;
  code?: number;
  trap?: string;
  killed: boolean;
  /** Wakes the driver of a process blocked in a host call (kill). */
  interrupt?: () => void;
  exitWaiters: (() => void)[];
}

/**
 * The lshapes ABI over WasmThreads in one JS thread: spawn (placing children round-robin on two
 * fake peers, or on the one asked for), wait, kill, ports with queues, send, recv, call, reply.
 * Every process shares one stdout and stderr, like children of one terminal.
 */
class MiniCluster {
  readonly stdout = new CollectOutput();
  readonly stderr = new CollectOutput();
  readonly procs: Proc[] = [];
  readonly spawned: { program: string; args: string[]; peer: string }[] = [];
  private readonly replies = new Map<number, (data: Uint8Array) => void>();
  private nextToken = 1;
  private placed = 0;
  private readonly done: Promise<void>[] = [];

  /** `onStart` sees every process before it first runs. */
  constructor(private readonly onStart: (p: Proc) => void = () => {}) {}

  /** Runs `args` (program first) to the end of every process; the first one's exit code. */
  async run(args: string[]): Promise<number> {
    const root = await this.start(args[0]!, args.slice(1), PEER_A, undefined);
    // Children started later push to `done`: wait until no process is left running.
    for (let n = 0; n < this.done.length; ) {
      n = this.done.length;
      await Promise.all(this.done.slice(0, n));
    }
    for (const p of this.procs) if (p.trap) throw new Error(`${p.program} trapped: ${p.trap}`);
    return root.code!;
  }

  private async start(program: string, args: string[], peer: string, parent: Proc | undefined): Promise<Proc> {
    const p: Proc = {
      pid: `a1b2c3.${this.procs.length + 1}`,
      peer,
      program,
      args,
      handles: [parent],
      mailboxes: new Map(),
      killed: false,
      exitWaiters: [],
    };
    this.procs.push(p);
    const { wasi } = wasiFor([program, ...args], { stdout: this.stdout, stderr: this.stderr });
    p.thread = await WasmThread.create(await rewrittenProgram(program), [wasi, this.lshapes(p)]);
    this.onStart(p);
    this.done.push(this.drive(p));
    return p;
  }

  private async drive(p: Proc): Promise<void> {
    const t = p.thread!;
    for (;;) {
      if (p.killed) {
        t.terminate(137);
        p.code = 137;
        break;
      }
      const r = t.run({ ms: 20 });
      if (r.state === 'yielded') {
        await new Promise((resolve) => setImmediate(resolve));
      } else if (r.state === 'blocked') {
        // A kill must also end a process blocked in a call.
        await Promise.race([r.until, new Promise<void>((resolve) => (p.interrupt = resolve))]);
      } else {
        if (r.state === 'trapped') p.trap = r.message;
        p.code = r.state === 'exited' ? r.code : 134;
        break;
      }
    }
    for (const w of p.exitWaiters.splice(0)) w();
  }

  private mailbox(p: Proc, name: string): Mailbox {
    let m = p.mailboxes.get(name);
    if (!m) {
      m = { num: -1, queue: [], waiters: [] };
      p.mailboxes.set(name, m);
    }
    return m;
  }

  private deliver(to: Proc, port: string, msg: Msg): void {
    const m = this.mailbox(to, port);
    m.queue.push(msg);
    m.waiters.shift()?.();
  }

  private handleOf(p: Proc, other: Proc): number {
    const i = p.handles.indexOf(other);
    if (i >= 0) return i;
    p.handles.push(other);
    return p.handles.length - 1;
  }

  /** Resolves with `r()` when `wake` is called, or with ETIMEDOUT after `timeout` ms (< 0: never). */
  private block(waiters: (() => void)[], timeout: number, r: () => number): number | Promise<number> {
    if (timeout === 0) return Errno.TIMEDOUT;
    return new Promise<number>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const wake = () => {
        clearTimeout(timer);
        resolve(r());
      };
      waiters.push(wake);
      if (timeout > 0) {
        timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(wake), 1);
          resolve(Errno.TIMEDOUT);
        }, timeout);
      }
    });
  }

  private lshapes(self: Proc): HostModule {
    return {
      name: 'lshapes',
      functions: (access) => {
        const io = memIo(access);
        return {
          getpid: (buf, cap, len) => putName(io, self.pid, buf, cap, len),
          peer_id: (buf, cap, len) => putName(io, self.peer, buf, cap, len),
          cluster_info: (peers, slots) => {
            io.setU32(peers, 2);
            io.setU32(slots, 4);
            return 0;
          },
          spawn: async (name, nameLen, argv, argvLen, peer, peerLen, handleOut) => {
            const program = io.text(name, nameLen) || self.program;
            const raw = io.text(argv, argvLen);
            if (raw.length && !raw.endsWith('\0')) return Errno.INVAL;
            const args = raw.length ? raw.slice(0, -1).split('\0') : [];
            const want = io.text(peer, peerLen);
            this.spawned.push({ program, args, peer: want });
            const at = want ? [PEER_A, PEER_B].find((id) => id.startsWith(want)) : [PEER_B, PEER_A][this.placed++ % 2];
            if (!at) return Errno.HOSTUNREACH;
            if (!AS_PROGRAMS.includes(program)) return Errno.NOENT;
            const child = await this.start(program, args, at, self);
            io.setI32(handleOut, this.handleOf(self, child));
            return 0;
          },
          wait: (handle, codeOut, timeout) => {
            const child = self.handles[i32(handle)];
            if (!child || i32(handle) === 0 || child.handles[0] !== self) return Errno.CHILD;
            const answer = () => (io.setI32(codeOut, child.code!), 0);
            return child.code !== undefined ? answer() : this.block(child.exitWaiters, i32(timeout), answer);
          },
          kill: (handle) => {
            const p = self.handles[i32(handle)];
            if (!p) return Errno.SRCH;
            p.killed = true;
            p.interrupt?.();
            return 0;
          },
          port_open: (name, nameLen, portOut) => {
            const n = io.text(name, nameLen);
            if (n.length === 0 || n.length > 64 || n.startsWith('#')) return Errno.INVAL;
            const m = this.mailbox(self, n);
            if (m.num < 0) m.num = [...self.mailboxes.values()].filter((x) => x.num >= 0).length + 1;
            io.setI32(portOut, m.num);
            return 0;
          },
          send: (to, port, portLen, data, dataLen) => {
            const target = self.handles[i32(to)];
            if (!target) return Errno.SRCH;
            this.deliver(target, io.text(port, portLen), { data: io.bytes(data, dataLen), from: self, token: 0 });
            return 0;
          },
          recv: (port, buf, cap, lenOut, fromOut, tokenOut, timeout) => {
            const m = [...self.mailboxes.values()].find((x) => x.num === i32(port));
            if (!m) return Errno.BADF;
            const take = (): number => {
              const msg = m.queue[0]!;
              io.setU32(lenOut, msg.data.length);
              if (msg.data.length > u(cap)) return Errno.NOBUFS;
              m.queue.shift();
              io.put(buf, msg.data);
              io.setI32(fromOut, this.handleOf(self, msg.from));
              io.setI32(tokenOut, msg.token);
              return 0;
            };
            return m.queue.length ? take() : this.block(m.waiters, i32(timeout), take);
          },
          call: (to, port, portLen, data, dataLen, buf, cap, lenOut, timeout) => {
            const target = self.handles[i32(to)];
            if (!target) return Errno.SRCH;
            const token = this.nextToken++;
            const waiters: (() => void)[] = [];
            let answer: Uint8Array = new Uint8Array(0);
            this.replies.set(token, (d) => {
              answer = d;
              waiters.shift()?.();
            });
            this.deliver(target, io.text(port, portLen), { data: io.bytes(data, dataLen), from: self, token });
            return this.block(waiters, i32(timeout), () => {
              io.put(buf, answer.subarray(0, u(cap)));
              io.setU32(lenOut, answer.length);
              return 0;
            });
          },
          reply: (token, data, dataLen) => {
            const r = this.replies.get(i32(token));
            if (!r) return Errno.INVAL;
            this.replies.delete(i32(token));
            r(io.bytes(data, dataLen));
            return 0;
          },
        };
      },
      snapshot: () => null,
      restore: () => {},
    };
  }
}

describe('primes with PARTS > 1 (children spawned on a MiniCluster)', () => {
  it('primes 100000 4: four parts, three of them children of itself, 9592 primes', async () => {
    const c = new MiniCluster();
    expect(await c.run(['primes', '100000', '4'])).toBe(0);
    expect(c.stderr.text()).toBe('');
    const lines = c.stdout.text().trimEnd().split('\n');
    expect(lines.at(-1)).toBe('primes below 100000: 9592');
    const parts = lines.slice(0, -1).map((l) => {
      const m = /^part (\d+)\.\.(\d+) on ([0-9a-f]{8}): (\d+) primes$/.exec(l);
      expect(m, l).not.toBeNull();
      return { lo: Number(m![1]), hi: Number(m![2]), peer: m![3]!, n: Number(m![4]) };
    });
    expect(parts).toHaveLength(4);
    parts.sort((a, b) => a.lo - b.lo);
    expect(parts.map((p) => [p.lo, p.hi])).toEqual([
      // Ranges of equal work, not equal length: larger numbers cost more to test.
      [2, 37391],
      [37391, 61191],
      [61191, 81572],
      [81572, 100000],
    ]);
    expect(parts.reduce((s, p) => s + p.n, 0)).toBe(9592);
    expect(new Set(parts.map((p) => p.peer))).toEqual(new Set([PEER_A.slice(0, 8), PEER_B.slice(0, 8)]));
    // Spawned with an empty name (its own module) and no peer: the Scheduler places them.
    expect(c.spawned).toEqual([
      { program: 'primes', args: ['--part', '37391', '61191'], peer: '' },
      { program: 'primes', args: ['--part', '61191', '81572'], peer: '' },
      { program: 'primes', args: ['--part', '81572', '100000'], peer: '' },
    ]);
    expect(c.procs.map((p) => p.code)).toEqual([0, 0, 0, 0]);
  });

  it('more parts than numbers: empty ranges still report', async () => {
    const c = new MiniCluster();
    expect(await c.run(['primes', '5', '6'])).toBe(0);
    expect(c.stdout.text().trimEnd().split('\n').at(-1)).toBe('primes below 5: 2');
    expect(c.procs).toHaveLength(6);
  });

  it('a child that ends without reporting (killed) makes the parent fail, not hang', async () => {
    const c = new MiniCluster((p) => {
      if (p.args[0] === '--part') p.killed = true;
    });
    expect(await c.run(['primes', '20000', '2'])).toBe(1);
    expect(c.procs[1]!.code).toBe(137);
    expect(c.stderr.text()).toBe('primes: part 1 exited with 137 without reporting\n');
    expect(c.stdout.text()).toBe('part 2..12175 on a1b2c3d4: 1457 primes\n');
  });
});

describe('ping and pong (on a MiniCluster)', () => {
  it('ping 3: three calls answered by pong, then stop, pong exits 0', async () => {
    const c = new MiniCluster();
    expect(await c.run(['ping', '3'])).toBe(0);
    expect(c.stderr.text()).toBe('');
    const lines = c.stdout.text().trimEnd().split('\n');
    expect(lines[0]).toBe('pong 1');
    expect(lines[1]).toBe('pong 2');
    expect(lines[2]).toBe('pong 3');
    expect(lines[3]).toMatch(/^3 round trips, avg \d+\.\d{3} ms$/);
    expect(lines[4]).toBe('pong exited with 0');
    expect(lines).toHaveLength(5);
    expect(c.spawned).toEqual([{ program: 'pong', args: [], peer: '' }]);
  });

  it('ping with no count makes 5 calls; --on PEER places pong there', async () => {
    const c = new MiniCluster();
    expect(await c.run(['ping', '--on', PEER_B.slice(0, 6)])).toBe(0);
    const lines = c.stdout.text().trimEnd().split('\n');
    expect(lines.filter((l) => l.startsWith('pong '))).toEqual(['pong 1', 'pong 2', 'pong 3', 'pong 4', 'pong 5', 'pong exited with 0']);
    expect(c.spawned).toEqual([{ program: 'pong', args: [], peer: PEER_B.slice(0, 6) }]);
    expect(c.procs[1]!.peer).toBe(PEER_B);
  });

  it('ping --on an unknown peer: the errno on stderr, exit 1', async () => {
    const c = new MiniCluster();
    expect(await c.run(['ping', '2', '--on', 'ffff'])).toBe(1);
    expect(c.stderr.text()).toBe('ping: spawning pong on ffff: EHOSTUNREACH\n');
    expect(c.stdout.text()).toBe('');
  });
});
