// An in-memory ShellBackend for tests and the render harness: a few programs, three peers, a tiny
// filesystem laid out as the real one (`/` read-only, `/cluster` writable). It records what the
// terminal asked of it. Not used by the app.
import type { DirEntry, PeerRow, Pid, ProcessExit, ProcessHandle, ProcessIO, ProcessRow, ShellBackend } from './commands.ts';

export const SELF = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
export const NODE = 'a1f00d5e9c8b7a6958473625140f1e2d';
export const GOSSIP = '7e57ab1e000011112222333344445555';

const enc = new TextEncoder();
const dec = new TextDecoder();

interface FakeProcess {
  row: ProcessRow;
  io: ProcessIO;
  stdin: string;
  stdinClosed: boolean;
  finish(code: number, message?: string): void;
  lose(message: string): void;
  onStdin?: () => void;
}

/** CPU time each program reports in ps. */
const CPU_MS: Record<string, number> = { hello: 12, echo: 3, fail: 400, spin: 125_000, upper: 7, greet: 5, crash: 20 };

export interface FakeBackendOptions {
  /** Delay before output and exits, in ms; 0 = next microtask. */
  delayMs?: number;
}

export class FakeBackend implements ShellBackend {
  readonly calls: {
    run: { prog: string; args: string[]; on: string | undefined }[];
    kill: Pid[];
    migrate: { pid: Pid; to: string }[];
    stdin: string[];
    eof: Pid[];
  } = {
    run: [],
    kill: [],
    migrate: [],
    stdin: [],
    eof: [],
  };
  readonly procs = new Map<Pid, FakeProcess>();
  peerRows: PeerRow[] = [
    { id: SELF, kind: 'browser', state: 'self', load: 0.5, capacity: 4, uptimeMs: 200_000, rttMs: undefined },
    { id: NODE, kind: 'node', state: 'connected', load: 1.25, capacity: 16, uptimeMs: 7_500_000, rttMs: 3.14 },
    { id: GOSSIP, kind: 'browser', state: 'gossip', load: 0, capacity: 2, uptimeMs: 30_000, rttMs: undefined },
  ];
  files = new Map<string, Uint8Array>([
    ['/README.txt', enc.encode('read me\n')],
    ['/cluster/hello.txt', enc.encode('hello from the filesystem\nsecond line\n')],
    ['/cluster/docs/readme.md', enc.encode('# LSHAPES\n')],
    ['/cluster/blob.bin', new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2])],
  ]);
  dirs = new Set(['/', '/cluster', '/cluster/docs', '/cluster/empty']);
  private nextPid = 1;

  constructor(private readonly opts: FakeBackendOptions = {}) {}

  private later(f: () => void): void {
    if (this.opts.delayMs) setTimeout(f, this.opts.delayMs);
    else queueMicrotask(f);
  }

  async programs(): Promise<string[]> {
    return ['hello', 'echo', 'greet', 'upper', 'spin', 'fail', 'stubborn', 'crash', 'vanish'];
  }

  async run(prog: string, args: string[], opts: { on?: string; io: ProcessIO }): Promise<ProcessHandle> {
    this.calls.run.push({ prog, args, on: opts.on });
    if (!(await this.programs()).includes(prog)) throw new Error(`no such program: ${prog}`);
    if (opts.on !== undefined && !this.peerRows.some((p) => p.id === opts.on)) throw new Error(`unknown peer ${opts.on}`);
    const n = this.nextPid++;
    // Pids are named after the peer the process was born on: this tab.
    const pid: Pid = `${SELF.slice(0, 6)}.${n}`;
    let finish!: (exit: ProcessExit) => void;
    let lose!: (err: Error) => void;
    const exit = new Promise<ProcessExit>((resolve, reject) => {
      finish = resolve;
      lose = reject;
    });
    const p: FakeProcess = {
      row: { pid, prog, args, peer: opts.on ?? SELF, state: 'RUNNING', cpuMs: CPU_MS[prog] ?? 0, startedAt: 1_000 + n },
      io: opts.io,
      stdin: '',
      stdinClosed: false,
      finish: (code, message) => {
        if (p.row.state === 'EXITED') return;
        p.row = { ...p.row, state: 'EXITED', exitCode: code };
        finish(message === undefined ? { code } : { code, message });
      },
      lose: (message) => {
        if (p.row.state === 'EXITED') return;
        this.procs.delete(pid);
        lose(new Error(message));
      },
    };
    this.procs.set(pid, p);
    const out = (s: string) => p.io.onStdout(enc.encode(s));
    const err = (s: string) => p.io.onStderr(enc.encode(s));
    switch (prog) {
      case 'hello':
        this.later(() => {
          out(`Hello, ${args[0] ?? 'world'}!\n`);
          out(`I am pid ${pid} on ${p.row.peer.slice(0, 8)}.\n`);
          p.finish(0);
        });
        break;
      case 'echo':
        this.later(() => {
          out(args.join(' ') + '\n');
          p.finish(0);
        });
        break;
      case 'fail':
        this.later(() => {
          err('fail: something went wrong\n');
          p.finish(3);
        });
        break;
      case 'upper':
        // Echoes stdin upper-cased, a line at a time, until EOF.
        p.onStdin = () => {
          let nl: number;
          while ((nl = p.stdin.indexOf('\n')) >= 0) {
            out(p.stdin.slice(0, nl + 1).toUpperCase());
            p.stdin = p.stdin.slice(nl + 1);
          }
          if (p.stdinClosed) {
            if (p.stdin) out(p.stdin.toUpperCase());
            p.stdin = '';
            out('[upper: end of input]\n');
            p.finish(0);
          }
        };
        break;
      case 'greet':
        // Asks without a newline, answers the first line.
        this.later(() => out('name? '));
        p.onStdin = () => {
          const nl = p.stdin.indexOf('\n');
          if (nl >= 0) {
            out(`hi ${p.stdin.slice(0, nl)}\n`);
            p.finish(0);
          } else if (p.stdinClosed) p.finish(1);
        };
        break;
      case 'crash':
        // Dies of a trap: the runtime says why.
        this.later(() => {
          out('about to crash\n');
          p.finish(134, 'trap: unreachable executed');
        });
        break;
      case 'vanish':
        // Its peer leaves the cluster while it runs.
        this.later(() => {
          out('working');
          p.lose(`peer ${GOSSIP.slice(0, 8)} left the cluster`);
        });
        break;
      case 'spin':
      case 'stubborn':
        p.row = { ...p.row, state: 'WAITING' };
        break;
    }
    return {
      pid,
      exit,
      writeStdin: (bytes) => {
        const text = dec.decode(bytes);
        this.calls.stdin.push(text);
        if (p.stdinClosed || p.row.state === 'EXITED') return;
        p.stdin += text;
        this.later(() => p.row.state !== 'EXITED' && p.onStdin?.());
      },
      closeStdin: () => {
        this.calls.eof.push(pid);
        p.stdinClosed = true;
        this.later(() => p.row.state !== 'EXITED' && p.onStdin?.());
      },
    };
  }

  async ps(): Promise<ProcessRow[]> {
    return [...this.procs.values()].map((p) => p.row);
  }

  async kill(pid: Pid): Promise<void> {
    this.calls.kill.push(pid);
    const p = this.procs.get(pid);
    if (!p || p.row.state === 'EXITED') throw new Error(`no such process: ${pid}`);
    // "stubborn" stands for a process on a peer that no longer answers: it never exits.
    if (p.row.prog === 'stubborn') return;
    this.later(() => p.finish(137, 'killed'));
  }

  /** Moves a live process to a listed peer: it stops for 12 ms. */
  async migrate(pid: Pid, to: string): Promise<{ peer: string; freezeMs: number }> {
    this.calls.migrate.push({ pid, to });
    const p = this.procs.get(pid);
    if (!p || p.row.state === 'EXITED') throw new Error(`no such process: ${pid}`);
    if (p.row.peer === to) throw new Error(`${pid} already runs on ${to.slice(0, 8)}`);
    p.row = { ...p.row, peer: to };
    return { peer: to, freezeMs: 12 };
  }

  async peers(): Promise<PeerRow[]> {
    return this.peerRows;
  }

  async stat(path: string): Promise<DirEntry> {
    const name = path.slice(path.lastIndexOf('/') + 1) || '/';
    if (this.dirs.has(path)) return { name, kind: 'dir' };
    const bytes = this.files.get(path);
    if (!bytes) throw new Error(`${path}: no such file`);
    return { name, kind: 'file', size: bytes.length };
  }

  /** Only /cluster is writable, as in the real layout; `path`'s parent must be a directory. */
  private writable(path: string): void {
    if (path !== '/cluster' && !path.startsWith('/cluster/')) throw new Error(`${path}: read-only`);
    const parent = path.slice(0, path.lastIndexOf('/')) || '/';
    if (!this.dirs.has(parent)) throw new Error(`${path}: no such file`);
  }

  /** Where src goes given dst: into dst when it is a directory. */
  private into(src: string, dst: string): string {
    return this.dirs.has(dst) ? `${dst === '/' ? '' : dst}/${src.slice(src.lastIndexOf('/') + 1)}` : dst;
  }

  async cp(src: string, dst: string): Promise<void> {
    const bytes = this.files.get(src);
    if (!bytes) throw new Error(this.dirs.has(src) ? `${src}: is a directory (cp copies files)` : `${src}: no such file`);
    const to = this.into(src, dst);
    this.writable(to);
    this.files.set(to, bytes.slice());
  }

  async mv(src: string, dst: string): Promise<void> {
    if (!this.files.has(src) && !this.dirs.has(src)) throw new Error(`${src}: no such file`);
    this.writable(src);
    const to = this.into(src, dst);
    this.writable(to);
    if (this.files.has(to) && this.dirs.has(src)) throw new Error(`${to}: not a directory`);
    const move = <T>(m: Map<string, T> | Set<string>) => {
      for (const k of [...m.keys()]) {
        if (k !== src && !k.startsWith(src + '/')) continue;
        const next = to + k.slice(src.length);
        if (m instanceof Map) m.set(next, m.get(k)!);
        else m.add(next);
        m.delete(k);
      }
    };
    move(this.files);
    move(this.dirs);
  }

  async rm(path: string, opts: { recursive: boolean }): Promise<void> {
    if (this.files.has(path)) {
      this.writable(path);
      this.files.delete(path);
      return;
    }
    if (!this.dirs.has(path)) throw new Error(`${path}: no such file`);
    if (path === '/' || path === '/cluster') throw new Error(`${path}: is a mount point`);
    this.writable(path);
    if (!opts.recursive) throw new Error(`${path}: is a directory (use rm -r)`);
    for (const m of [this.files, this.dirs]) for (const k of [...m.keys()]) if (k === path || k.startsWith(path + '/')) m.delete(k);
  }

  async mkdir(path: string, opts: { parents: boolean }): Promise<void> {
    if (this.dirs.has(path)) {
      if (opts.parents) return;
      throw new Error(`${path}: already exists`);
    }
    if (this.files.has(path)) throw new Error(`${path}: already exists`);
    if (opts.parents) {
      const parent = path.slice(0, path.lastIndexOf('/')) || '/';
      if (!this.dirs.has(parent)) await this.mkdir(parent, opts);
    }
    this.writable(path);
    this.dirs.add(path);
  }

  async ls(path: string): Promise<DirEntry[]> {
    if (!this.dirs.has(path)) {
      if (this.files.has(path)) throw new Error(`${path}: not a directory`);
      throw new Error(`${path}: no such directory`);
    }
    const prefix = path === '/' ? '/' : path + '/';
    const entries: DirEntry[] = [];
    for (const d of this.dirs) {
      if (d !== path && d.startsWith(prefix) && !d.slice(prefix.length).includes('/')) entries.push({ name: d.slice(prefix.length), kind: 'dir' });
    }
    for (const [f, bytes] of this.files) {
      if (f.startsWith(prefix) && !f.slice(prefix.length).includes('/')) entries.push({ name: f.slice(prefix.length), kind: 'file', size: bytes.length, replicas: 2 });
    }
    return entries;
  }

  async cat(path: string): Promise<Uint8Array> {
    const bytes = this.files.get(path);
    if (!bytes) throw new Error(this.dirs.has(path) ? `${path}: is a directory` : `${path}: no such file`);
    return bytes;
  }
}
