// WASI preview 1 (`wasi_snapshot_preview1`) as a HostModule: every call of the snapshot, over
// the VFS namespace, injected stdio streams, clock and randomness.
//
// Each call checks its arguments against the program's memory before acting (a bad pointer is
// EFAULT, never an exception), runs as a computation that stays synchronous while nothing blocks
// (see co.ts) and returns a Promise only when it must wait: a filesystem that answers later,
// stdin with no input yet, or a poll_oneoff that sleeps. proc_exit throws ProcessExit.

import type { HostFunction, HostModule, MemoryAccess } from '../wasm/host-calls.ts';
import { ProcessExit } from '../wasm/host-calls.ts';
import { type Co, type MaybePromise, isPromise, run, wait } from './co.ts';
import { ClockId, type WasiClock, systemClock } from './clock.ts';
import { Errno, FsError, fsError } from './errno.ts';
import { Fault, Mem } from './memory.ts';
import {
  ALL_RIGHTS,
  DIR_RIGHTS,
  FILE_RIGHTS,
  Rights as R,
  STDIN_RIGHTS,
  STDOUT_RIGHTS,
  rightsFromU64,
} from './rights.ts';
import { type InputStream, type OutputStream, emptyInput, nullOutput } from './streams.ts';
import type { FileType, Location, Namespace, NodeId, Stat } from './vfs.ts';

export const Filetype = {
  UNKNOWN: 0,
  BLOCK_DEVICE: 1,
  CHARACTER_DEVICE: 2,
  DIRECTORY: 3,
  REGULAR_FILE: 4,
  SOCKET_DGRAM: 5,
  SOCKET_STREAM: 6,
  SYMBOLIC_LINK: 7,
} as const;

export const Fdflags = { APPEND: 1, DSYNC: 2, NONBLOCK: 4, RSYNC: 8, SYNC: 16 } as const;
export const Oflags = { CREAT: 1, DIRECTORY: 2, EXCL: 4, TRUNC: 8 } as const;
export const Fstflags = { ATIM: 1, ATIM_NOW: 2, MTIM: 4, MTIM_NOW: 8 } as const;
export const LOOKUP_SYMLINK_FOLLOW = 1;
export const Whence = { SET: 0, CUR: 1, END: 2 } as const;
export const Eventtype = { CLOCK: 0, FD_READ: 1, FD_WRITE: 2 } as const;
export const EVENT_FD_READWRITE_HANGUP = 1;
export const SUBSCRIPTION_CLOCK_ABSTIME = 1;

const FILETYPE: Record<FileType, number> = {
  unknown: Filetype.UNKNOWN,
  blockdev: Filetype.BLOCK_DEVICE,
  chardev: Filetype.CHARACTER_DEVICE,
  directory: Filetype.DIRECTORY,
  file: Filetype.REGULAR_FILE,
  socket: Filetype.SOCKET_STREAM,
  symlink: Filetype.SYMBOLIC_LINK,
};

/** Highest fd number + 1. */
const MAX_FDS = 4096;
/** Largest single read (a short read is always allowed). */
const MAX_READ = 64 << 20;

const encoder = new TextEncoder();

type FdKind = 'stdin' | 'stdout' | 'stderr' | 'file' | 'dir';

interface FdEntry {
  kind: FdKind;
  filetype: number;
  base: number;
  inheriting: number;
  flags: number;
  offset: number;
  /** file and dir */
  loc?: Location;
  /** Name for fd_prestat_dir_name when this is a preopened directory. */
  preopen?: string;
}

type FsEntry = FdEntry & { loc: Location };

/** One fd in a snapshot: plain data (JSON and structured-clone safe). */
export interface FdSnapshot {
  fd: number;
  kind: FdKind;
  filetype: number;
  rightsBase: number;
  rightsInheriting: number;
  flags: number;
  offset: number;
  /** Mount path, node and namespace path of a file or directory. */
  mount?: string;
  node?: NodeId;
  path?: string;
  type?: FileType;
  preopen?: string;
}

export interface WasiSnapshot {
  version: 1;
  args: string[];
  env: string[];
  fds: FdSnapshot[];
}

export interface WasiOptions {
  /** argv, program name first. */
  args?: readonly string[];
  /** `{ K: 'v' }` or `['K=v']`. */
  env?: Readonly<Record<string, string>> | readonly string[];
  /** The files the program sees; each mount is preopened (fd 3, 4, ...) under its path. */
  namespace?: Namespace;
  /** Mount paths to preopen (default: every mount). */
  preopens?: readonly string[];
  stdin?: InputStream;
  stdout?: OutputStream;
  stderr?: OutputStream;
  clock?: WasiClock;
  /** Fill the array with random bytes (default: crypto.getRandomValues). */
  random?: (buf: Uint8Array<ArrayBuffer>) => void;
  /** Called with errors that are not FsErrors (host failures, bugs) before they become EIO. */
  onError?: (call: string, err: unknown) => void;
  /**
   * Called when a call is given a pointer outside the program's memory. By default the call
   * returns EFAULT; a host may throw ProcessExit here to end the process instead (the LSHAPES
   * executor ends it with 139, "segmentation fault").
   */
  onFault?: (call: string, fault: Fault) => void;
}

function defaultRandom(buf: Uint8Array<ArrayBuffer>): void {
  for (let i = 0; i < buf.length; i += 65536) crypto.getRandomValues(buf.subarray(i, i + 65536));
}

const u64 = (x: number | bigint): bigint => BigInt.asUintN(64, typeof x === 'bigint' ? x : BigInt(x));
const s64 = (x: number | bigint): bigint => BigInt.asIntN(64, typeof x === 'bigint' ? x : BigInt(x));
const u32 = (x: number | bigint): number => Number(BigInt.asUintN(32, typeof x === 'bigint' ? x : BigInt(x)));

/** A file position from a u64 (EFBIG past what a JS number holds exactly). */
function position(x: bigint): number {
  if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw fsError('FBIG');
  return Number(x);
}

function envList(env: WasiOptions['env']): string[] {
  if (!env) return [];
  if (Array.isArray(env)) return [...(env as readonly string[])];
  return Object.entries(env as Record<string, string>).map(([k, v]) => `${k}=${v}`);
}

interface Iovec {
  ptr: number;
  len: number;
}

function iovecs(m: Mem, ptr: number, count: number): Iovec[] {
  m.check(ptr, count * 8);
  const out: Iovec[] = [];
  for (let i = 0; i < count; i++) {
    const buf = m.u32(ptr + i * 8);
    const len = m.u32(ptr + i * 8 + 4);
    m.check(buf, len);
    out.push({ ptr: buf, len });
  }
  return out;
}

function gather(m: Mem, iovs: Iovec[]): Uint8Array {
  const total = iovs.reduce((n, v) => n + v.len, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const v of iovs) {
    out.set(m.bytes(v.ptr, v.len), at);
    at += v.len;
  }
  return out;
}

function scatter(m: Mem, iovs: Iovec[], data: Uint8Array): void {
  let at = 0;
  for (const v of iovs) {
    if (at >= data.length) break;
    const part = data.subarray(at, at + v.len);
    m.write(v.ptr, part);
    at += part.length;
  }
}

function totalLength(iovs: Iovec[]): number {
  return iovs.reduce((n, v) => n + v.len, 0);
}

function writeFilestat(m: Mem, ptr: number, dev: bigint, st: Stat): void {
  m.fill(ptr, 64);
  m.setU64(ptr, dev);
  m.setU64(ptr + 8, st.ino);
  m.setU8(ptr + 16, FILETYPE[st.type]);
  m.setU64(ptr + 24, st.nlink);
  m.setU64(ptr + 32, st.size);
  m.setU64(ptr + 40, st.atim);
  m.setU64(ptr + 48, st.mtim);
  m.setU64(ptr + 56, st.ctim);
}

/** Subscriptions of poll_oneoff, as read from memory. */
type Sub =
  | { kind: 'clock'; userdata: bigint; id: number; deadline: bigint }
  | { kind: 'fd'; userdata: bigint; type: 1 | 2; fd: number; pending?: Promise<void>; settled?: number }
  | { kind: 'bad'; userdata: bigint; type: number; error: number };

interface PollEvent {
  userdata: bigint;
  error: number;
  type: number;
  nbytes: number;
  hangup: boolean;
}

export class Wasi implements HostModule {
  readonly name = 'wasi_snapshot_preview1';
  private args: string[];
  private env: string[];
  private readonly namespace: Namespace | undefined;
  private readonly stdin: InputStream;
  private readonly stdout: OutputStream;
  private readonly stderr: OutputStream;
  private readonly clock: WasiClock;
  private readonly random: (buf: Uint8Array<ArrayBuffer>) => void;
  private readonly onError: ((call: string, err: unknown) => void) | undefined;
  private readonly onFault: ((call: string, fault: Fault) => void) | undefined;
  private fds = new Map<number, FdEntry>();

  constructor(options: WasiOptions = {}) {
    this.args = [...(options.args ?? ['program'])];
    this.env = envList(options.env);
    this.namespace = options.namespace;
    this.stdin = options.stdin ?? emptyInput;
    this.stdout = options.stdout ?? nullOutput;
    this.stderr = options.stderr ?? nullOutput;
    this.clock = options.clock ?? systemClock();
    this.random = options.random ?? defaultRandom;
    this.onError = options.onError;
    this.onFault = options.onFault;

    this.fds.set(0, Wasi.stream('stdin'));
    this.fds.set(1, Wasi.stream('stdout'));
    this.fds.set(2, Wasi.stream('stderr'));
    if (this.namespace) {
      const wanted = options.preopens ? new Set(options.preopens) : undefined;
      let fd = 3;
      for (const mount of this.namespace.mounts()) {
        if (wanted && !wanted.has(mount.path)) continue;
        const loc = this.namespace.rootOf(mount);
        mount.fs.retain?.(loc.node);
        this.fds.set(fd++, {
          kind: 'dir',
          filetype: Filetype.DIRECTORY,
          base: DIR_RIGHTS,
          inheriting: ALL_RIGHTS,
          flags: 0,
          offset: 0,
          loc,
          preopen: mount.path,
        });
      }
    }
  }

  private static stream(kind: 'stdin' | 'stdout' | 'stderr'): FdEntry {
    return {
      kind,
      filetype: Filetype.CHARACTER_DEVICE,
      base: kind === 'stdin' ? STDIN_RIGHTS : STDOUT_RIGHTS,
      inheriting: 0,
      flags: 0,
      offset: 0,
    };
  }

  // ───────────────────────────── snapshot ─────────────────────────────

  snapshot(): WasiSnapshot {
    const fds: FdSnapshot[] = [];
    for (const [fd, e] of [...this.fds].sort((a, b) => a[0] - b[0])) {
      const s: FdSnapshot = {
        fd,
        kind: e.kind,
        filetype: e.filetype,
        rightsBase: e.base,
        rightsInheriting: e.inheriting,
        flags: e.flags,
        offset: e.offset,
      };
      if (e.loc) {
        s.mount = e.loc.mount.path;
        s.node = e.loc.node;
        s.path = e.loc.path;
        s.type = e.loc.type;
      }
      if (e.preopen !== undefined) s.preopen = e.preopen;
      fds.push(s);
    }
    return { version: 1, args: [...this.args], env: [...this.env], fds };
  }

  restore(state: unknown): void {
    const s = state as WasiSnapshot;
    if (!s || s.version !== 1 || !Array.isArray(s.args) || !Array.isArray(s.env) || !Array.isArray(s.fds)) {
      throw new TypeError('not a WASI snapshot');
    }
    const next = new Map<number, FdEntry>();
    for (const f of s.fds) {
      if (!Number.isInteger(f.fd) || f.fd < 0 || f.fd >= MAX_FDS) throw new TypeError(`bad fd ${String(f.fd)}`);
      const e: FdEntry = {
        kind: f.kind,
        filetype: f.filetype,
        base: f.rightsBase & ALL_RIGHTS,
        inheriting: f.rightsInheriting & ALL_RIGHTS,
        flags: f.flags,
        offset: f.offset,
      };
      if (f.kind === 'file' || f.kind === 'dir') {
        const mount = f.mount === undefined ? undefined : this.namespace?.get(f.mount);
        if (!mount || f.node === undefined || f.path === undefined || f.type === undefined) {
          throw new Error(`restore: fd ${f.fd} names mount ${String(f.mount)}, which this namespace lacks`);
        }
        e.loc = { mount, node: f.node, path: f.path, type: f.type };
      } else if (f.kind !== 'stdin' && f.kind !== 'stdout' && f.kind !== 'stderr') {
        throw new TypeError(`bad fd kind ${String(f.kind)}`);
      }
      if (f.preopen !== undefined) e.preopen = f.preopen;
      next.set(f.fd, e);
    }
    for (const e of next.values()) if (e.loc) e.loc.mount.fs.retain?.(e.loc.node);
    for (const e of this.fds.values()) if (e.loc) e.loc.mount.fs.release?.(e.loc.node);
    this.fds = next;
    this.args = [...s.args];
    this.env = [...s.env];
  }

  // ───────────────────────────── fd table ─────────────────────────────

  private entry(fd: number): FdEntry {
    const e = this.fds.get(fd);
    if (!e) throw fsError('BADF');
    return e;
  }

  private static need(e: FdEntry, rights: number, errno: number = Errno.NOTCAPABLE): void {
    if ((e.base & rights) !== rights) throw new FsError(errno);
  }

  /** A directory fd with the given rights (EBADF, ENOTDIR, ENOTCAPABLE). */
  private dirFd(fd: number, rights: number): FsEntry {
    const e = this.entry(fd);
    if (e.kind !== 'dir' || !e.loc) throw fsError('NOTDIR');
    Wasi.need(e, rights);
    return e as FsEntry;
  }

  /** A regular file or directory fd (ESPIPE for a stream). */
  private fsFd(fd: number): FsEntry {
    const e = this.entry(fd);
    if (!e.loc) throw fsError('SPIPE');
    return e as FsEntry;
  }

  private allocFd(e: FdEntry): number {
    for (let fd = 0; fd < MAX_FDS; fd++) {
      if (!this.fds.has(fd)) {
        this.fds.set(fd, e);
        e.loc?.mount.fs.retain?.(e.loc.node);
        return fd;
      }
    }
    throw fsError('MFILE');
  }

  private closeFd(fd: number): void {
    const e = this.entry(fd);
    this.fds.delete(fd);
    if (e.loc) e.loc.mount.fs.release?.(e.loc.node);
  }

  private get ns(): Namespace {
    if (!this.namespace) throw fsError('NOENT', 'no namespace');
    return this.namespace;
  }

  private times(atim: bigint, mtim: bigint, fst: number): [bigint | undefined, bigint | undefined] {
    if (fst & ~0xf) throw fsError('INVAL');
    if (fst & Fstflags.ATIM && fst & Fstflags.ATIM_NOW) throw fsError('INVAL');
    if (fst & Fstflags.MTIM && fst & Fstflags.MTIM_NOW) throw fsError('INVAL');
    const now = fst & (Fstflags.ATIM_NOW | Fstflags.MTIM_NOW) ? this.clock.now(ClockId.REALTIME) : 0n;
    const a = fst & Fstflags.ATIM_NOW ? now : fst & Fstflags.ATIM ? atim : undefined;
    const mt = fst & Fstflags.MTIM_NOW ? now : fst & Fstflags.MTIM ? mtim : undefined;
    return [a, mt];
  }

  // ───────────────────────────── the calls ─────────────────────────────

  functions(access: MemoryAccess): Record<string, HostFunction> {
    const m = new Mem(access);
    const calls = this.calls(m);
    const out: Record<string, HostFunction> = {};
    for (const [name, impl] of Object.entries(calls)) {
      out[name] = (...args) => this.invoke(name, () => impl(...args));
    }
    return out;
  }

  /** Runs one call: errno now, or a Promise of it; only ProcessExit escapes. */
  private invoke(name: string, call: () => number | Co<number>): MaybePromise<number> {
    try {
      const r = call();
      if (typeof r === 'number') return r;
      const out = run(r);
      if (isPromise(out)) return out.catch((err: unknown) => this.errno(name, err));
      return out;
    } catch (err) {
      return this.errno(name, err);
    }
  }

  private errno(name: string, err: unknown): number {
    if (err instanceof ProcessExit) throw err;
    if (err instanceof FsError) return err.errno;
    if (err instanceof Fault) {
      this.onFault?.(name, err);
      return Errno.FAULT;
    }
    this.onError?.(name, err);
    return Errno.IO;
  }

  private calls(m: Mem): Record<string, (...args: (number | bigint)[]) => number | Co<number>> {
    // Arguments arrive as wasm values: i32 as (signed) numbers, i64 as bigints.
    type A = number | bigint;
    const self = this;
    const p = (x: A): number => u32(x);

    const stringsSizes = (list: string[], countPtr: number, sizePtr: number): number => {
      m.check(countPtr, 4);
      m.check(sizePtr, 4);
      const size = list.reduce((n, s) => n + encoder.encode(s).length + 1, 0);
      m.setU32(countPtr, list.length);
      m.setU32(sizePtr, size);
      return Errno.SUCCESS;
    };
    const stringsGet = (list: string[], ptrs: number, buf: number): number => {
      const encoded = list.map((s) => encoder.encode(s + '\0'));
      m.check(ptrs, list.length * 4);
      m.check(buf, encoded.reduce((n, b) => n + b.length, 0));
      let at = buf;
      encoded.forEach((b, i) => {
        m.setU32(ptrs + i * 4, at);
        m.write(at, b);
        at += b.length;
      });
      return Errno.SUCCESS;
    };
    const clockId = (id: number): number => {
      if (id !== ClockId.REALTIME && id !== ClockId.MONOTONIC && id !== ClockId.PROCESS_CPUTIME && id !== ClockId.THREAD_CPUTIME) {
        throw fsError('INVAL', `no clock ${id}`);
      }
      return id;
    };
    const path = (ptr: A, len: A): string => m.string(p(ptr), p(len));
    const notSocket = (fd: A): number => {
      self.entry(p(fd));
      return Errno.NOTSOCK;
    };

    return {
      args_get: (argv, buf) => stringsGet(self.args, p(argv), p(buf)),
      args_sizes_get: (count, size) => stringsSizes(self.args, p(count), p(size)),
      environ_get: (env, buf) => stringsGet(self.env, p(env), p(buf)),
      environ_sizes_get: (count, size) => stringsSizes(self.env, p(count), p(size)),

      clock_res_get(id, out) {
        m.check(p(out), 8);
        m.setU64(p(out), self.clock.resolution(clockId(p(id))));
        return Errno.SUCCESS;
      },
      clock_time_get(id, _precision, out) {
        m.check(p(out), 8);
        m.setU64(p(out), self.clock.now(clockId(p(id))));
        return Errno.SUCCESS;
      },

      fd_advise(fd, _offset, _len, advice) {
        const e = self.fsFd(p(fd));
        if (p(advice) > 5) throw fsError('INVAL');
        Wasi.need(e, R.FD_ADVISE);
        return Errno.SUCCESS;
      },
      *fd_allocate(fd, offset, len) {
        const e = self.fsFd(p(fd));
        Wasi.need(e, R.FD_ALLOCATE);
        if (e.kind !== 'file') throw fsError('BADF');
        if (u64(len) === 0n) throw fsError('INVAL');
        const end = position(u64(offset) + u64(len));
        const st = yield* wait(e.loc.mount.fs.stat(e.loc.node));
        if (st.size < end) yield* wait(e.loc.mount.fs.truncate(e.loc.node, end));
        return Errno.SUCCESS;
      },
      fd_close(fd) {
        self.closeFd(p(fd));
        return Errno.SUCCESS;
      },
      *fd_datasync(fd) {
        const e = self.entry(p(fd));
        if (!e.loc) throw fsError('INVAL');
        Wasi.need(e, R.FD_DATASYNC);
        yield* wait(e.loc.mount.fs.sync?.(e.loc.node, true));
        return Errno.SUCCESS;
      },
      fd_fdstat_get(fd, out) {
        const e = self.entry(p(fd));
        const o = p(out);
        m.fill(o, 24);
        m.setU8(o, e.filetype);
        m.setU16(o + 2, e.flags);
        m.setU64(o + 8, e.base);
        m.setU64(o + 16, e.inheriting);
        return Errno.SUCCESS;
      },
      fd_fdstat_set_flags(fd, flags) {
        const e = self.entry(p(fd));
        Wasi.need(e, R.FD_FDSTAT_SET_FLAGS);
        const f = p(flags);
        if (f & ~0x1f) throw fsError('INVAL');
        e.flags = f;
        return Errno.SUCCESS;
      },
      fd_fdstat_set_rights(fd, base, inheriting) {
        const e = self.entry(p(fd));
        const b = u64(base);
        const i = u64(inheriting);
        // Rights can only be dropped, never gained.
        if (b & ~BigInt(e.base) || i & ~BigInt(e.inheriting)) throw fsError('NOTCAPABLE');
        e.base = rightsFromU64(b);
        e.inheriting = rightsFromU64(i);
        return Errno.SUCCESS;
      },
      *fd_filestat_get(fd, out) {
        const e = self.entry(p(fd));
        Wasi.need(e, R.FD_FILESTAT_GET);
        m.check(p(out), 64);
        if (!e.loc) {
          const t = 0n;
          writeFilestat(m, p(out), 0n, { type: 'chardev', ino: 0n, nlink: 1, size: 0, atim: t, mtim: t, ctim: t });
          return Errno.SUCCESS;
        }
        const st = yield* wait(e.loc.mount.fs.stat(e.loc.node));
        writeFilestat(m, p(out), e.loc.mount.dev, st);
        return Errno.SUCCESS;
      },
      *fd_filestat_set_size(fd, size) {
        const e = self.fsFd(p(fd));
        // Not open for writing: EINVAL, as POSIX ftruncate() and Linux say.
        Wasi.need(e, R.FD_FILESTAT_SET_SIZE, Errno.INVAL);
        if (e.kind !== 'file') throw fsError('INVAL');
        yield* wait(e.loc.mount.fs.truncate(e.loc.node, position(u64(size))));
        return Errno.SUCCESS;
      },
      *fd_filestat_set_times(fd, atim, mtim, fst) {
        const e = self.entry(p(fd));
        Wasi.need(e, R.FD_FILESTAT_SET_TIMES);
        const [a, mt] = self.times(u64(atim), u64(mtim), p(fst));
        if (!e.loc) return Errno.SUCCESS;
        if (e.loc.mount.readonly) throw fsError('ROFS');
        yield* wait(e.loc.mount.fs.setTimes(e.loc.node, a, mt));
        return Errno.SUCCESS;
      },
      *fd_pread(fd, iovsPtr, iovsLen, offset, out) {
        const e = self.fsFd(p(fd));
        if (e.kind === 'dir') throw fsError('ISDIR');
        Wasi.need(e, R.FD_READ, Errno.BADF);
        const iovs = iovecs(m, p(iovsPtr), p(iovsLen));
        m.check(p(out), 4);
        const at = u64(offset);
        const len = Math.min(totalLength(iovs), MAX_READ);
        const data =
          at > BigInt(Number.MAX_SAFE_INTEGER) || len === 0
            ? new Uint8Array(0)
            : yield* wait(e.loc.mount.fs.read(e.loc.node, Number(at), len));
        scatter(m, iovs, data);
        m.setU32(p(out), Math.min(data.length, len));
        return Errno.SUCCESS;
      },
      fd_prestat_get(fd, out) {
        const e = self.entry(p(fd));
        if (e.preopen === undefined) throw fsError('BADF');
        m.check(p(out), 8);
        m.fill(p(out), 8);
        m.setU8(p(out), 0);
        m.setU32(p(out) + 4, encoder.encode(e.preopen).length);
        return Errno.SUCCESS;
      },
      fd_prestat_dir_name(fd, ptr, len) {
        const e = self.entry(p(fd));
        if (e.preopen === undefined) throw fsError('BADF');
        const name = encoder.encode(e.preopen);
        if (p(len) < name.length) throw fsError('NAMETOOLONG');
        m.write(p(ptr), name);
        return Errno.SUCCESS;
      },
      *fd_pwrite(fd, iovsPtr, iovsLen, offset, out) {
        const e = self.fsFd(p(fd));
        Wasi.need(e, R.FD_WRITE, Errno.BADF);
        if (e.kind === 'dir') throw fsError('ISDIR');
        const iovs = iovecs(m, p(iovsPtr), p(iovsLen));
        m.check(p(out), 4);
        const data = gather(m, iovs);
        const at = position(u64(offset));
        const n = data.length === 0 ? 0 : yield* wait(e.loc.mount.fs.write(e.loc.node, at, data));
        m.setU32(p(out), n);
        return Errno.SUCCESS;
      },
      *fd_read(fd, iovsPtr, iovsLen, out) {
        const e = self.entry(p(fd));
        if (e.kind === 'dir') throw fsError('ISDIR');
        Wasi.need(e, R.FD_READ, Errno.BADF);
        const iovs = iovecs(m, p(iovsPtr), p(iovsLen));
        m.check(p(out), 4);
        const len = Math.min(totalLength(iovs), MAX_READ);
        let data: Uint8Array;
        if (len === 0) {
          data = new Uint8Array(0);
        } else if (e.kind === 'stdin') {
          if (e.flags & Fdflags.NONBLOCK && self.stdin.readable) {
            const ready = self.stdin.readable();
            if (isPromise(ready)) {
              ready.catch(() => {});
              throw fsError('AGAIN');
            }
          }
          data = yield* wait(self.stdin.read(len));
          if (data.length > len) data = data.subarray(0, len);
        } else if (e.loc) {
          data = yield* wait(e.loc.mount.fs.read(e.loc.node, e.offset, len));
          e.offset += data.length;
        } else {
          throw fsError('BADF');
        }
        scatter(m, iovs, data);
        m.setU32(p(out), data.length);
        return Errno.SUCCESS;
      },
      *fd_readdir(fd, buf, bufLen, cookie, out) {
        const e = self.entry(p(fd));
        if (e.kind !== 'dir' || !e.loc) throw fsError('NOTDIR');
        Wasi.need(e, R.FD_READDIR);
        const b = p(buf);
        const size = p(bufLen);
        m.check(b, size);
        m.check(p(out), 4);
        const entries = yield* wait(e.loc.mount.fs.readdir(e.loc.node, u64(cookie)));
        let used = 0;
        for (const d of entries) {
          if (used >= size) break;
          const name = encoder.encode(d.name);
          const rec = new Uint8Array(24 + name.length);
          const dv = new DataView(rec.buffer);
          dv.setBigUint64(0, d.next, true);
          dv.setBigUint64(8, BigInt.asUintN(64, d.ino), true);
          dv.setUint32(16, name.length, true);
          dv.setUint8(20, FILETYPE[d.type]);
          rec.set(name, 24);
          // The last entry is cut off when it does not fit; the caller sees a full buffer.
          const n = Math.min(rec.length, size - used);
          m.write(b + used, rec.subarray(0, n));
          used += n;
        }
        m.setU32(p(out), used);
        return Errno.SUCCESS;
      },
      fd_renumber(from, to) {
        const f = p(from);
        const t = p(to);
        const e = self.entry(f);
        self.entry(t);
        if (f === t) return Errno.SUCCESS;
        self.closeFd(t);
        self.fds.delete(f);
        self.fds.set(t, e);
        return Errno.SUCCESS;
      },
      *fd_seek(fd, offset, whence, out) {
        const e = self.fsFd(p(fd));
        const delta = s64(offset);
        const w = p(whence);
        if (w > Whence.END) throw fsError('INVAL');
        Wasi.need(e, w === Whence.CUR && delta === 0n ? R.FD_TELL : R.FD_SEEK);
        m.check(p(out), 8);
        let base = 0n;
        if (w === Whence.CUR) base = BigInt(e.offset);
        else if (w === Whence.END) base = BigInt((yield* wait(e.loc.mount.fs.stat(e.loc.node))).size);
        const next = base + delta;
        if (next < 0n || next > BigInt(Number.MAX_SAFE_INTEGER)) throw fsError('INVAL');
        e.offset = Number(next);
        m.setU64(p(out), next);
        return Errno.SUCCESS;
      },
      *fd_sync(fd) {
        const e = self.entry(p(fd));
        if (!e.loc) throw fsError('INVAL');
        Wasi.need(e, R.FD_SYNC);
        yield* wait(e.loc.mount.fs.sync?.(e.loc.node, false));
        return Errno.SUCCESS;
      },
      fd_tell(fd, out) {
        const e = self.fsFd(p(fd));
        Wasi.need(e, R.FD_TELL);
        m.check(p(out), 8);
        m.setU64(p(out), e.offset);
        return Errno.SUCCESS;
      },
      *fd_write(fd, iovsPtr, iovsLen, out) {
        const e = self.entry(p(fd));
        // A directory is never open for writing: EBADF, as on Linux.
        Wasi.need(e, R.FD_WRITE, Errno.BADF);
        if (e.kind === 'dir') throw fsError('ISDIR');
        const iovs = iovecs(m, p(iovsPtr), p(iovsLen));
        m.check(p(out), 4);
        const data = gather(m, iovs);
        let n = data.length;
        if (e.kind === 'stdout' || e.kind === 'stderr') {
          if (n > 0) yield* wait((e.kind === 'stdout' ? self.stdout : self.stderr).write(data));
        } else if (e.loc) {
          const fs = e.loc.mount.fs;
          if (e.flags & Fdflags.APPEND) e.offset = (yield* wait(fs.stat(e.loc.node))).size;
          n = n === 0 ? 0 : yield* wait(fs.write(e.loc.node, e.offset, data));
          e.offset += n;
        } else {
          throw fsError('BADF');
        }
        m.setU32(p(out), n);
        return Errno.SUCCESS;
      },

      *path_create_directory(fd, ptr, len) {
        const d = self.dirFd(p(fd), R.PATH_CREATE_DIRECTORY);
        yield* self.ns.mkdir(d.loc, path(ptr, len));
        return Errno.SUCCESS;
      },
      *path_filestat_get(fd, flags, ptr, len, out) {
        const d = self.dirFd(p(fd), R.PATH_FILESTAT_GET);
        const name = path(ptr, len);
        m.check(p(out), 64);
        const { loc, stat } = yield* self.ns.stat(d.loc, name, (p(flags) & LOOKUP_SYMLINK_FOLLOW) !== 0);
        writeFilestat(m, p(out), loc.mount.dev, stat);
        return Errno.SUCCESS;
      },
      *path_filestat_set_times(fd, flags, ptr, len, atim, mtim, fst) {
        const d = self.dirFd(p(fd), R.PATH_FILESTAT_SET_TIMES);
        const name = path(ptr, len);
        const [a, mt] = self.times(u64(atim), u64(mtim), p(fst));
        yield* self.ns.setTimes(d.loc, name, (p(flags) & LOOKUP_SYMLINK_FOLLOW) !== 0, a, mt);
        return Errno.SUCCESS;
      },
      *path_link(oldFd, oldFlags, oldPtr, oldLen, newFd, newPtr, newLen) {
        const from = self.dirFd(p(oldFd), R.PATH_LINK_SOURCE);
        const to = self.dirFd(p(newFd), R.PATH_LINK_TARGET);
        const oldPath = path(oldPtr, oldLen);
        const newPath = path(newPtr, newLen);
        yield* self.ns.link(from.loc, oldPath, (p(oldFlags) & LOOKUP_SYMLINK_FOLLOW) !== 0, to.loc, newPath);
        return Errno.SUCCESS;
      },
      *path_open(fd, dirflags, ptr, len, oflags, base, inheriting, fdflags, out) {
        const d = self.dirFd(p(fd), R.PATH_OPEN);
        const of = p(oflags);
        const ff = p(fdflags);
        if (of & ~0xf || ff & ~0x1f) throw fsError('INVAL');
        if (of & Oflags.CREAT) Wasi.need(d, R.PATH_CREATE_FILE);
        if (of & Oflags.TRUNC) Wasi.need(d, R.PATH_FILESTAT_SET_SIZE);
        const wantBase = rightsFromU64(u64(base));
        const wantInheriting = rightsFromU64(u64(inheriting));
        // An fd opened from a directory gets at most what the directory passes on.
        if (wantBase & ~d.inheriting || wantInheriting & ~d.inheriting) throw fsError('NOTCAPABLE');
        const name = path(ptr, len);
        m.check(p(out), 4);
        const loc = yield* self.ns.open(d.loc, name, {
          follow: (p(dirflags) & LOOKUP_SYMLINK_FOLLOW) !== 0,
          create: (of & Oflags.CREAT) !== 0,
          exclusive: (of & Oflags.EXCL) !== 0,
          truncate: (of & Oflags.TRUNC) !== 0,
          directory: (of & Oflags.DIRECTORY) !== 0,
          write: (wantBase & (R.FD_WRITE | R.FD_ALLOCATE | R.FD_FILESTAT_SET_SIZE)) !== 0 || (ff & Fdflags.APPEND) !== 0,
        });
        const isDir = loc.type === 'directory';
        const newFd = self.allocFd({
          kind: isDir ? 'dir' : 'file',
          filetype: FILETYPE[loc.type],
          base: wantBase & (isDir ? DIR_RIGHTS : FILE_RIGHTS),
          inheriting: wantInheriting,
          flags: ff,
          offset: 0,
          loc,
        });
        m.setU32(p(out), newFd);
        return Errno.SUCCESS;
      },
      *path_readlink(fd, ptr, len, buf, bufLen, out) {
        const d = self.dirFd(p(fd), R.PATH_READLINK);
        const name = path(ptr, len);
        m.check(p(buf), p(bufLen));
        m.check(p(out), 4);
        const target = encoder.encode(yield* self.ns.readlink(d.loc, name));
        const n = Math.min(target.length, p(bufLen));
        m.write(p(buf), target.subarray(0, n));
        m.setU32(p(out), n);
        return Errno.SUCCESS;
      },
      *path_remove_directory(fd, ptr, len) {
        const d = self.dirFd(p(fd), R.PATH_REMOVE_DIRECTORY);
        yield* self.ns.rmdir(d.loc, path(ptr, len));
        return Errno.SUCCESS;
      },
      *path_rename(fd, oldPtr, oldLen, newFd, newPtr, newLen) {
        const from = self.dirFd(p(fd), R.PATH_RENAME_SOURCE);
        const to = self.dirFd(p(newFd), R.PATH_RENAME_TARGET);
        yield* self.ns.rename(from.loc, path(oldPtr, oldLen), to.loc, path(newPtr, newLen));
        return Errno.SUCCESS;
      },
      *path_symlink(oldPtr, oldLen, fd, newPtr, newLen) {
        const target = path(oldPtr, oldLen);
        const d = self.dirFd(p(fd), R.PATH_SYMLINK);
        yield* self.ns.symlink(target, d.loc, path(newPtr, newLen));
        return Errno.SUCCESS;
      },
      *path_unlink_file(fd, ptr, len) {
        const d = self.dirFd(p(fd), R.PATH_UNLINK_FILE);
        yield* self.ns.unlink(d.loc, path(ptr, len));
        return Errno.SUCCESS;
      },

      poll_oneoff: (inPtr, outPtr, nsubs, nevents) => self.poll(m, p(inPtr), p(outPtr), p(nsubs), p(nevents)),

      proc_exit(code) {
        throw new ProcessExit(p(code));
      },
      proc_raise: () => Errno.NOSYS,
      sched_yield: () => Errno.SUCCESS,
      random_get(buf, len) {
        const b = p(buf);
        const n = p(len);
        m.check(b, n);
        const bytes = new Uint8Array(n);
        self.random(bytes);
        m.write(b, bytes);
        return Errno.SUCCESS;
      },

      // No socket is ever in the fd table: a valid fd is not a socket.
      sock_accept: (fd) => notSocket(fd),
      sock_recv: (fd) => notSocket(fd),
      sock_send: (fd) => notSocket(fd),
      sock_shutdown: (fd) => notSocket(fd),
    };
  }

  // ───────────────────────────── poll_oneoff ─────────────────────────────

  private *poll(m: Mem, inPtr: number, outPtr: number, nsubs: number, neventsPtr: number): Co<number> {
    if (nsubs === 0) throw fsError('INVAL');
    m.check(inPtr, nsubs * 48);
    m.check(outPtr, nsubs * 32);
    m.check(neventsPtr, 4);
    const subs: Sub[] = [];
    for (let i = 0; i < nsubs; i++) {
      const at = inPtr + i * 48;
      const userdata = m.u64(at);
      const tag = m.u8get(at + 8);
      if (tag === Eventtype.CLOCK) {
        const id = m.u32(at + 16);
        const timeout = m.u64(at + 24);
        const flags = m.u16(at + 40);
        if (id > ClockId.THREAD_CPUTIME) {
          subs.push({ kind: 'bad', userdata, type: tag, error: Errno.INVAL });
          continue;
        }
        const deadline = flags & SUBSCRIPTION_CLOCK_ABSTIME ? timeout : this.clock.now(id) + timeout;
        subs.push({ kind: 'clock', userdata, id, deadline });
      } else if (tag === Eventtype.FD_READ || tag === Eventtype.FD_WRITE) {
        subs.push({ kind: 'fd', userdata, type: tag, fd: m.u32(at + 16) });
      } else {
        throw fsError('INVAL', `bad subscription tag ${tag}`);
      }
    }

    for (;;) {
      const events: PollEvent[] = [];
      const pending: Promise<void>[] = [];
      let sleepFor: bigint | undefined;
      for (const s of subs) {
        if (s.kind === 'bad') {
          events.push({ userdata: s.userdata, error: s.error, type: s.type, nbytes: 0, hangup: false });
        } else if (s.kind === 'clock') {
          const left = s.deadline - this.clock.now(s.id);
          if (left <= 0n) events.push({ userdata: s.userdata, error: 0, type: Eventtype.CLOCK, nbytes: 0, hangup: false });
          else if (sleepFor === undefined || left < sleepFor) sleepFor = left;
        } else {
          const ev = yield* this.fdReadiness(s);
          if (ev) events.push(ev);
          else if (s.pending) pending.push(s.pending);
        }
      }
      if (events.length > 0) {
        events.forEach((ev, i) => {
          const at = outPtr + i * 32;
          m.fill(at, 32);
          m.setU64(at, ev.userdata);
          m.setU16(at + 8, ev.error);
          m.setU8(at + 10, ev.type);
          m.setU64(at + 16, ev.nbytes);
          m.setU16(at + 24, ev.hangup ? EVENT_FD_READWRITE_HANGUP : 0);
        });
        m.setU32(neventsPtr, events.length);
        return Errno.SUCCESS;
      }
      // Nothing ready: block until the earliest clock or any input.
      const abort = new AbortController();
      const waits = [...pending];
      if (sleepFor !== undefined) {
        const slept = this.clock.sleep(sleepFor, abort.signal);
        if (!isPromise(slept)) continue; // virtual time moved on: look again
        waits.push(slept);
      }
      if (waits.length === 0) throw fsError('INVAL', 'poll_oneoff has nothing to wait for');
      try {
        yield* wait(Promise.race(waits));
      } finally {
        abort.abort();
      }
    }
  }

  /** An event for an fd subscription if it is ready now; else sets `s.pending`. */
  private *fdReadiness(s: Extract<Sub, { kind: 'fd' }>): Co<PollEvent | undefined> {
    const ev = (error: number, nbytes = 0, hangup = false): PollEvent => ({
      userdata: s.userdata,
      error,
      type: s.type,
      nbytes,
      hangup,
    });
    const e = this.fds.get(s.fd);
    if (!e) return ev(Errno.BADF);
    if ((e.base & R.POLL_FD_READWRITE) === 0) return ev(Errno.NOTCAPABLE);
    if (s.type === Eventtype.FD_WRITE) return ev((e.base & R.FD_WRITE) === 0 ? Errno.BADF : 0);
    if ((e.base & R.FD_READ) === 0) return ev(Errno.BADF);
    if (e.kind === 'stdin') {
      if (s.settled !== undefined) return ev(0, s.settled, s.settled === 0);
      if (s.pending) return undefined;
      if (!this.stdin.readable) return ev(0);
      const r = this.stdin.readable();
      if (!isPromise(r)) return ev(0, r, r === 0);
      s.pending = r.then(
        (n) => {
          s.settled = n;
        },
        () => {
          s.settled = 0;
        },
      );
      return undefined;
    }
    if (e.loc) {
      try {
        const st = yield* wait(e.loc.mount.fs.stat(e.loc.node));
        return ev(0, Math.max(0, st.size - e.offset));
      } catch (err) {
        if (err instanceof FsError) return ev(err.errno);
        throw err;
      }
    }
    return ev(0);
  }
}
