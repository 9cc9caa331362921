// WASI preview 1 called directly: arguments written into a WebAssembly.Memory, results read back.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProcessExit } from '../wasm/host-calls.ts';
import { ClockId, VirtualClock, systemClock } from './clock.ts';
import { isPromise } from './co.ts';
import { Errno, FsError } from './errno.ts';
import { MemFs, memfsFrom } from './memfs.ts';
import { Eventtype, Fdflags, Filetype, Oflags, Wasi, type WasiOptions, type WasiSnapshot } from './preview1.ts';
import { ALL_RIGHTS, DIR_RIGHTS, Rights as R } from './rights.ts';
import { QueueInput, bytesInput } from './streams.ts';
import { Namespace, type FileSystem } from './vfs.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
const FOLLOW = 1;
const FILE_RW = R.FD_READ | R.FD_WRITE | R.FD_SEEK | R.FD_TELL | R.FD_FILESTAT_GET | R.FD_FILESTAT_SET_SIZE | R.POLL_FD_READWRITE;

/** A Wasi with its functions bound to a fresh memory, and helpers to lay out arguments. */
function harness(options: WasiOptions = {}) {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 4 });
  const wasi = new Wasi({ clock: new VirtualClock(), ...options });
  const fns = wasi.functions({ memory: () => memory });
  let top = 1024;
  const h = {
    wasi,
    memory,
    fns,
    call(name: string, ...args: (number | bigint)[]): number {
      const r = fns[name]!(...args);
      if (isPromise(r)) throw new Error(`${name} returned a Promise`);
      return r as number;
    },
    async callAsync(name: string, ...args: (number | bigint)[]): Promise<number> {
      return (await fns[name]!(...args)) as number;
    },
    dv: () => new DataView(memory.buffer),
    alloc(n: number): number {
      const p = top;
      top += (n + 7) & ~7;
      return p;
    },
    str(s: string): [number, number] {
      const b = enc.encode(s);
      const p = h.alloc(b.length);
      new Uint8Array(memory.buffer).set(b, p);
      return [p, b.length];
    },
    bytes: (p: number, n: number) => new Uint8Array(memory.buffer, p, n).slice(),
    u32: (p: number) => new DataView(memory.buffer).getUint32(p, true),
    u64: (p: number) => new DataView(memory.buffer).getBigUint64(p, true),
    /** An iovec array over fresh buffers (or over given data). */
    iovs(...parts: (number | string)[]): { ptr: number; bufs: number[] } {
      const ptr = h.alloc(parts.length * 8);
      const bufs: number[] = [];
      parts.forEach((part, i) => {
        const data = typeof part === 'string' ? enc.encode(part) : new Uint8Array(part);
        const b = h.alloc(data.length);
        new Uint8Array(memory.buffer).set(data, b);
        h.dv().setUint32(ptr + i * 8, b, true);
        h.dv().setUint32(ptr + i * 8 + 4, data.length, true);
        bufs.push(b);
      });
      return { ptr, bufs };
    },
    open(dirfd: number, path: string, oflags = 0, rights = FILE_RW, fdflags = 0): number {
      const [p, n] = h.str(path);
      const out = h.alloc(4);
      const e = h.call('path_open', dirfd, FOLLOW, p, n, oflags, BigInt(rights), 0n, fdflags, out);
      if (e !== 0) throw new FsError(e);
      return h.u32(out);
    },
    write(fd: number, s: string): number {
      const { ptr } = h.iovs(s);
      const out = h.alloc(4);
      const e = h.call('fd_write', fd, ptr, 1, out);
      return e === 0 ? h.u32(out) : -e;
    },
    read(fd: number, n: number): string {
      const { ptr, bufs } = h.iovs(n);
      const out = h.alloc(4);
      const e = h.call('fd_read', fd, ptr, 1, out);
      if (e !== 0) throw new FsError(e);
      return dec.decode(h.bytes(bufs[0]!, h.u32(out)));
    },
  };
  return h;
}

const rootNs = (tree = {}) => new Namespace({ '/': memfsFrom(tree) });

describe('preview1: arguments, environment, clocks, randomness', () => {
  it('lays out argv and environ as pointers to NUL-terminated strings', () => {
    const h = harness({ args: ['prog', 'a b', 'é'], env: { A: '1', B: 'two' } });
    const [count, size] = [h.alloc(4), h.alloc(4)];
    expect(h.call('args_sizes_get', count, size)).toBe(0);
    expect([h.u32(count), h.u32(size)]).toEqual([3, 5 + 4 + 3]);
    const argv = h.alloc(12);
    const buf = h.alloc(12);
    expect(h.call('args_get', argv, buf)).toBe(0);
    const arg = (i: number) => {
      const p = h.u32(argv + 4 * i);
      const bytes = new Uint8Array(h.memory.buffer, p);
      return dec.decode(bytes.subarray(0, bytes.indexOf(0)));
    };
    expect([arg(0), arg(1), arg(2)]).toEqual(['prog', 'a b', 'é']);
    expect(h.call('environ_sizes_get', count, size)).toBe(0);
    expect([h.u32(count), h.u32(size)]).toEqual([2, 4 + 6]);
    const env = h.alloc(8);
    expect(h.call('environ_get', env, buf)).toBe(0);
    expect(dec.decode(h.bytes(h.u32(env + 4), 5))).toBe('B=two');
    expect(h.call('args_get', 65536 - 4, buf)).toBe(Errno.FAULT);
  });

  it('reads the injected clock; bad clock ids are EINVAL', () => {
    const clock = new VirtualClock(5_000_000_000n);
    clock.advance(42n);
    const h = harness({ clock });
    const out = h.alloc(8);
    expect(h.call('clock_time_get', ClockId.REALTIME, 0n, out)).toBe(0);
    expect(h.u64(out)).toBe(5_000_000_042n);
    expect(h.call('clock_time_get', ClockId.MONOTONIC, 0n, out)).toBe(0);
    expect(h.u64(out)).toBe(42n);
    expect(h.call('clock_res_get', ClockId.MONOTONIC, out)).toBe(0);
    expect(h.u64(out)).toBe(1n);
    expect(h.call('clock_time_get', 4, 0n, out)).toBe(Errno.INVAL);
    expect(h.call('clock_time_get', 0, 0n, 70000)).toBe(Errno.FAULT);
  });

  it('the system clock tells real time', () => {
    const c = systemClock();
    const t = c.now(ClockId.REALTIME);
    expect(Number(t / 1_000_000n)).toBeGreaterThan(Date.now() - 1000);
    expect(Number(t / 1_000_000n)).toBeLessThan(Date.now() + 1000);
  });

  it('fills random_get from the injected source', () => {
    const h = harness({ random: (b) => b.fill(7) });
    const p = h.alloc(100_000 > 60000 ? 16 : 0);
    expect(h.call('random_get', p, 16)).toBe(0);
    expect([...h.bytes(p, 16)]).toEqual(Array(16).fill(7));
    expect(h.call('random_get', 65530, 16)).toBe(Errno.FAULT);
  });

  it('proc_exit throws ProcessExit; proc_raise is ENOSYS; sched_yield succeeds', () => {
    const h = harness();
    expect(() => h.fns.proc_exit!(3)).toThrow(ProcessExit);
    try {
      h.fns.proc_exit!(300);
    } catch (err) {
      expect((err as ProcessExit).code).toBe(300);
    }
    expect(h.call('proc_raise', 9)).toBe(Errno.NOSYS);
    expect(h.call('sched_yield')).toBe(0);
  });

  it('sockets: no fd is one', () => {
    const h = harness();
    const p = h.alloc(16);
    expect(h.call('sock_accept', 1, 0, p)).toBe(Errno.NOTSOCK);
    expect(h.call('sock_recv', 42, p, 1, 0, p, p)).toBe(Errno.BADF);
    expect(h.call('sock_send', 0, p, 1, 0, p)).toBe(Errno.NOTSOCK);
    expect(h.call('sock_shutdown', 2, 3)).toBe(Errno.NOTSOCK);
  });
});

describe('preview1: fds, preopens and layouts', () => {
  it('stdio are character devices without seek; each mount is a preopen', () => {
    const ns = new Namespace();
    ns.mount('/', new MemFs());
    ns.mount('/tmp', new MemFs());
    const h = harness({ namespace: ns });
    const st = h.alloc(24);
    expect(h.call('fd_fdstat_get', 1, st)).toBe(0);
    expect(h.dv().getUint8(st)).toBe(Filetype.CHARACTER_DEVICE);
    expect(h.u64(st + 8) & BigInt(R.FD_SEEK)).toBe(0n);
    expect(h.u64(st + 8) & BigInt(R.FD_WRITE)).toBe(BigInt(R.FD_WRITE));
    expect(h.call('fd_fdstat_get', 4, st)).toBe(0);
    expect(h.dv().getUint8(st)).toBe(Filetype.DIRECTORY);
    expect(h.u64(st + 8)).toBe(BigInt(DIR_RIGHTS));
    expect(h.u64(st + 16)).toBe(BigInt(ALL_RIGHTS));
    const ps = h.alloc(8);
    expect(h.call('fd_prestat_get', 4, ps)).toBe(0);
    expect([h.dv().getUint8(ps), h.u32(ps + 4)]).toEqual([0, 4]);
    const name = h.alloc(8);
    expect(h.call('fd_prestat_dir_name', 4, name, 4)).toBe(0);
    expect(dec.decode(h.bytes(name, 4))).toBe('/tmp');
    expect(h.call('fd_prestat_dir_name', 4, name, 3)).toBe(Errno.NAMETOOLONG);
    expect(h.call('fd_prestat_get', 5, ps)).toBe(Errno.BADF);
    expect(h.call('fd_prestat_get', 1, ps)).toBe(Errno.BADF);
  });

  it('preopens can be limited to some mounts', () => {
    const ns = new Namespace();
    ns.mount('/', new MemFs());
    ns.mount('/secret', new MemFs());
    const h = harness({ namespace: ns, preopens: ['/'] });
    expect(h.call('fd_prestat_get', 3, h.alloc(8))).toBe(0);
    expect(h.call('fd_prestat_get', 4, h.alloc(8))).toBe(Errno.BADF);
  });

  it('writes filestat with the documented offsets', () => {
    const h = harness({ namespace: rootNs({ f: 'hello' }) });
    const fd = h.open(3, 'f');
    const st = h.alloc(64);
    expect(h.call('fd_filestat_get', fd, st)).toBe(0);
    expect(h.u64(st)).toBe(1n); // dev: the first mount
    expect(h.u64(st + 8)).toBeGreaterThan(1n); // ino
    expect(h.dv().getUint8(st + 16)).toBe(Filetype.REGULAR_FILE);
    expect(h.u64(st + 24)).toBe(1n); // nlink
    expect(h.u64(st + 32)).toBe(5n); // size
    expect(h.call('fd_filestat_get', fd, 65536 - 32)).toBe(Errno.FAULT);
  });

  it('reads and writes through iovecs, scattering and gathering', () => {
    const h = harness({ namespace: rootNs() });
    const fd = h.open(3, 'f', Oflags.CREAT);
    const { ptr } = h.iovs('ab', '', 'cde');
    const out = h.alloc(4);
    expect(h.call('fd_write', fd, ptr, 3, out)).toBe(0);
    expect(h.u32(out)).toBe(5);
    const pos = h.alloc(8);
    expect(h.call('fd_seek', fd, 0n, 0, pos)).toBe(0);
    const r = h.iovs(2, 0, 10);
    expect(h.call('fd_read', fd, r.ptr, 3, out)).toBe(0);
    expect(h.u32(out)).toBe(5);
    expect(dec.decode(h.bytes(r.bufs[0]!, 2))).toBe('ab');
    expect(dec.decode(h.bytes(r.bufs[2]!, 3))).toBe('cde');
    expect(h.call('fd_seek', fd, -1n, 2, pos)).toBe(0);
    expect(h.u64(pos)).toBe(4n);
    expect(h.call('fd_seek', fd, 2n ** 62n, 0, pos)).toBe(Errno.INVAL);
  });

  it('fd_readdir writes dirents (24-byte header + name) and cuts the last one off', () => {
    const h = harness({ namespace: rootNs({ d: { alpha: '', beta: {} } }) });
    const d = h.open(3, 'd', Oflags.DIRECTORY, R.FD_READDIR);
    const buf = h.alloc(256);
    const used = h.alloc(4);
    expect(h.call('fd_readdir', d, buf, 256, 0n, used)).toBe(0);
    const entries: [string, number, bigint][] = [];
    for (let at = buf; at < buf + h.u32(used); ) {
      const len = h.u32(at + 16);
      entries.push([dec.decode(h.bytes(at + 24, len)), h.dv().getUint8(at + 20), h.u64(at)]);
      at += 24 + len;
    }
    expect(entries).toEqual([
      ['.', Filetype.DIRECTORY, 1n],
      ['..', Filetype.DIRECTORY, 2n],
      ['alpha', Filetype.REGULAR_FILE, 3n],
      ['beta', Filetype.DIRECTORY, 4n],
    ]);
    expect(h.u32(used)).toBe(24 * 4 + 1 + 2 + 5 + 4);
    expect(h.call('fd_readdir', d, buf, 60, 0n, used)).toBe(0);
    expect(h.u32(used)).toBe(60);
    expect(h.call('fd_readdir', d, buf, 256, 3n, used)).toBe(0);
    expect(dec.decode(h.bytes(buf + 24, 4))).toBe('beta');
  });

  it('path_open: rights narrow to what the directory passes on and to the file type', () => {
    const h = harness({ namespace: rootNs({ d: {}, f: 'x' }) });
    const st = h.alloc(24);
    const fd = h.open(3, 'f', 0, ALL_RIGHTS);
    h.call('fd_fdstat_get', fd, st);
    expect(h.u64(st + 8) & BigInt(R.PATH_OPEN)).toBe(0n); // no path rights on a file
    expect(h.u64(st + 8) & BigInt(R.FD_READ)).toBe(BigInt(R.FD_READ));
    const [p, n] = h.str('d');
    const out = h.alloc(4);
    expect(h.call('path_open', 3, FOLLOW, p, n, Oflags.DIRECTORY, BigInt(DIR_RIGHTS), BigInt(R.FD_READ), 0, out)).toBe(0);
    const d = h.u32(out);
    const [fp, fn] = h.str('g');
    expect(h.call('path_open', d, FOLLOW, fp, fn, Oflags.CREAT, BigInt(R.FD_WRITE), 0n, 0, out)).toBe(Errno.NOTCAPABLE);
    expect(h.call('path_open', d, FOLLOW, fp, fn, Oflags.CREAT, BigInt(R.FD_READ), 0n, 0, out)).toBe(0);
    // Unknown high bits of a rights mask are ignored.
    const [f, fl] = h.str('f');
    expect(h.call('path_open', 3, FOLLOW, f, fl, 0, (1n << 63n) | BigInt(R.FD_READ), 0n, 0, out)).toBe(0);
  });

  it('fd_fdstat_set_rights only drops rights; fd_renumber moves an fd', () => {
    const h = harness({ namespace: rootNs({ f: 'abc' }) });
    const fd = h.open(3, 'f');
    expect(h.call('fd_fdstat_set_rights', fd, BigInt(R.FD_READ), 0n)).toBe(0);
    expect(h.call('fd_fdstat_set_rights', fd, BigInt(FILE_RW), 0n)).toBe(Errno.NOTCAPABLE);
    expect(h.write(fd, 'x')).toBe(-Errno.BADF);
    const other = h.open(3, 'f');
    expect(h.call('fd_renumber', fd, other)).toBe(0);
    expect(h.read(other, 3)).toBe('abc');
    expect(h.call('fd_close', fd)).toBe(Errno.BADF);
    expect(h.call('fd_renumber', other, 99)).toBe(Errno.BADF);
  });

  it('append mode writes at the end whatever the position', () => {
    const h = harness({ namespace: rootNs({ f: 'abc' }) });
    const fd = h.open(3, 'f', 0, FILE_RW, Fdflags.APPEND);
    h.write(fd, 'd');
    const pos = h.alloc(8);
    h.call('fd_seek', fd, 0n, 0, pos);
    h.write(fd, 'e');
    h.call('fd_tell', fd, pos);
    expect(h.u64(pos)).toBe(5n);
    h.call('fd_seek', fd, 0n, 0, pos);
    expect(h.read(fd, 10)).toBe('abcde');
  });

  it('looks up the memory again after it grows', () => {
    const h = harness({ args: ['x'] });
    h.memory.grow(1);
    const p = 65536 + 100;
    expect(h.call('args_sizes_get', p, p + 4)).toBe(0);
    expect(h.u32(p)).toBe(1);
  });

  it('an unexpected host failure is EIO and reported', () => {
    const seen: string[] = [];
    const h = harness({
      stdout: {
        write() {
          throw new Error('terminal gone');
        },
      },
      onError: (call, err) => seen.push(`${call}: ${(err as Error).message}`),
    });
    expect(h.write(1, 'x')).toBe(-Errno.IO);
    expect(seen).toEqual(['fd_write: terminal gone']);
  });
});

describe('preview1: bad pointers and arguments never escape as exceptions', () => {
  const NAMES = Object.keys(harness().fns).filter((n) => n !== 'proc_exit');

  it('covers every preview 1 import', () => {
    const all = harness().fns;
    expect(Object.keys(all).sort()).toEqual(
      [
        'args_get', 'args_sizes_get', 'environ_get', 'environ_sizes_get', 'clock_res_get', 'clock_time_get',
        'fd_advise', 'fd_allocate', 'fd_close', 'fd_datasync', 'fd_fdstat_get', 'fd_fdstat_set_flags',
        'fd_fdstat_set_rights', 'fd_filestat_get', 'fd_filestat_set_size', 'fd_filestat_set_times', 'fd_pread',
        'fd_prestat_get', 'fd_prestat_dir_name', 'fd_pwrite', 'fd_read', 'fd_readdir', 'fd_renumber', 'fd_seek',
        'fd_sync', 'fd_tell', 'fd_write', 'path_create_directory', 'path_filestat_get', 'path_filestat_set_times',
        'path_link', 'path_open', 'path_readlink', 'path_remove_directory', 'path_rename', 'path_symlink',
        'path_unlink_file', 'poll_oneoff', 'proc_exit', 'proc_raise', 'sched_yield', 'random_get', 'sock_accept',
        'sock_recv', 'sock_send', 'sock_shutdown',
      ].sort(),
    );
  });

  it('pointers at or past the end of memory are EFAULT', () => {
    const h = harness({ namespace: rootNs({ f: 'x' }), args: ['a'], env: ['A=1'] });
    const END = 65536;
    const [p, n] = h.str('f');
    const ok = h.alloc(64);
    const file = h.open(3, 'f');
    const sub = h.alloc(48);
    h.dv().setUint8(sub + 8, Eventtype.CLOCK);
    const cases: [string, (number | bigint)[]][] = [
      ['args_sizes_get', [END, ok]],
      ['args_get', [ok, END - 1]],
      ['environ_get', [END - 1, ok]],
      ['environ_sizes_get', [ok, -4]],
      ['clock_res_get', [0, END - 7]],
      ['clock_time_get', [1, 0n, END]],
      ['fd_fdstat_get', [1, END - 23]],
      ['fd_filestat_get', [1, END]],
      ['fd_prestat_get', [3, -1]],
      ['fd_prestat_dir_name', [3, END, 1]],
      ['fd_read', [file, END, 1, ok]],
      ['fd_write', [1, END - 4, 1, ok]],
      ['fd_write', [1, ok, 1, END - 2]],
      ['fd_pread', [file, END, 1, 0n, ok]],
      ['fd_pwrite', [file, ok, 1, 0n, END]],
      ['fd_readdir', [3, END - 10, 100, 0n, ok]],
      ['fd_seek', [file, 0n, 0, END]],
      ['fd_tell', [file, END - 4]],
      ['path_open', [3, 1, END, 4, 0, 0n, 0n, 0, ok]],
      ['path_open', [3, 1, p, n, 0, 0n, 0n, 0, END]],
      ['path_filestat_get', [3, 1, p, n, END - 63]],
      ['path_readlink', [3, p, n, END, 10, ok]],
      ['path_create_directory', [3, END - 1, 2]],
      ['path_symlink', [END, 1, 3, p, n]],
      ['path_rename', [3, p, n, 3, END, 1]],
      ['path_link', [3, 0, -8, 2, 3, p, n]],
      ['path_unlink_file', [3, END, 1]],
      ['path_remove_directory', [3, END, 1]],
      ['path_filestat_set_times', [3, 0, END, 1, 0n, 0n, 0]],
      ['poll_oneoff', [sub, END - 16, 1, ok]],
      ['poll_oneoff', [END - 40, ok, 1, ok]],
      ['random_get', [0xffffffff, 1]],
    ];
    for (const [name, args] of cases) {
      expect([name, h.call(name, ...args)]).toEqual([name, Errno.FAULT]);
    }
  });

  it('random arguments to every call answer with an errno, synchronously', () => {
    const i32 = fc.oneof(
      fc.integer({ min: 0, max: 16 }),
      fc.integer({ min: 0, max: 70_000 }),
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    );
    const i64 = fc.oneof(fc.bigInt({ min: 0n, max: 100n }), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }));
    fc.assert(
      fc.property(fc.constantFrom(...NAMES), fc.array(fc.oneof(i32, i64), { minLength: 9, maxLength: 9 }), (name, args) => {
        const h = harness({ namespace: rootNs({ f: 'content', d: { g: 'x' } }), stdin: bytesInput('in') });
        const r = h.fns[name]!(...args.map((a) => (typeof a === 'bigint' ? a : a | 0)));
        expect(isPromise(r)).toBe(false);
        expect(typeof r).toBe('number');
        expect(r as number).toBeGreaterThanOrEqual(0);
        expect(r as number).toBeLessThanOrEqual(76);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('preview1: blocking calls return Promises', () => {
  it('poll_oneoff sleeps on the system clock', async () => {
    const h = harness({ clock: systemClock() });
    const sub = h.alloc(48);
    const ev = h.alloc(32);
    const n = h.alloc(4);
    h.dv().setBigUint64(sub, 99n, true);
    h.dv().setUint8(sub + 8, Eventtype.CLOCK);
    h.dv().setUint32(sub + 16, ClockId.MONOTONIC, true);
    h.dv().setBigUint64(sub + 24, 30_000_000n, true);
    const t0 = performance.now();
    const r = h.fns.poll_oneoff!(sub, ev, 1, n);
    expect(isPromise(r)).toBe(true);
    expect(await r).toBe(0);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
    expect(h.u32(n)).toBe(1);
    expect(h.u64(ev)).toBe(99n);
    expect(h.dv().getUint16(ev + 8, true)).toBe(0);
    expect(h.dv().getUint8(ev + 10)).toBe(Eventtype.CLOCK);
  });

  it('poll_oneoff wakes on stdin before a long clock', async () => {
    const stdin = new QueueInput();
    const h = harness({ clock: systemClock(), stdin });
    const sub = h.alloc(96);
    const ev = h.alloc(64);
    const n = h.alloc(4);
    h.dv().setBigUint64(sub, 1n, true);
    h.dv().setUint8(sub + 8, Eventtype.CLOCK);
    h.dv().setUint32(sub + 16, ClockId.MONOTONIC, true);
    h.dv().setBigUint64(sub + 24, 10_000_000_000n, true);
    h.dv().setBigUint64(sub + 48, 2n, true);
    h.dv().setUint8(sub + 56, Eventtype.FD_READ);
    h.dv().setUint32(sub + 64, 0, true);
    const r = h.fns.poll_oneoff!(sub, ev, 2, n);
    expect(isPromise(r)).toBe(true);
    setTimeout(() => stdin.push('hello'), 10);
    expect(await r).toBe(0);
    expect(h.u32(n)).toBe(1);
    expect(h.u64(ev)).toBe(2n);
    expect(h.u64(ev + 16)).toBe(5n);
  });

  it('fd_read on stdin waits for input; EOF reads 0; nonblocking is EAGAIN', async () => {
    const stdin = new QueueInput();
    const h = harness({ stdin });
    const { ptr, bufs } = h.iovs(16);
    const out = h.alloc(4);
    const r = h.fns.fd_read!(0, ptr, 1, out);
    expect(isPromise(r)).toBe(true);
    stdin.push('typed');
    expect(await r).toBe(0);
    expect(dec.decode(h.bytes(bufs[0]!, h.u32(out)))).toBe('typed');
    h.call('fd_fdstat_set_flags', 0, Fdflags.NONBLOCK);
    expect(h.call('fd_read', 0, ptr, 1, out)).toBe(Errno.AGAIN);
    h.call('fd_fdstat_set_flags', 0, 0);
    stdin.end();
    expect(await h.callAsync('fd_read', 0, ptr, 1, out)).toBe(0);
    expect(h.u32(out)).toBe(0);
  });

  it('a stdout that blocks makes fd_write block', async () => {
    const seen: string[] = [];
    const h = harness({
      stdout: {
        write: (d) =>
          new Promise<void>((resolve) =>
            setTimeout(() => {
              seen.push(dec.decode(d));
              resolve();
            }, 5),
          ),
      },
    });
    const { ptr } = h.iovs('out');
    const out = h.alloc(4);
    const r = h.fns.fd_write!(1, ptr, 1, out);
    expect(isPromise(r)).toBe(true);
    expect(await r).toBe(0);
    expect(h.u32(out)).toBe(3);
    expect(seen).toEqual(['out']);
  });

  it('works over a filesystem whose every answer is a Promise', async () => {
    const mem = memfsFrom({ d: { f: 'async content' } });
    const later = <T>(v: () => T): Promise<T> => new Promise((res, rej) => setTimeout(() => {
      try {
        res(v());
      } catch (e) {
        rej(e);
      }
    }, 1));
    const asyncFs = new Proxy(mem, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function' || prop === 'retain' || prop === 'release') return v;
        return (...args: unknown[]) => later(() => (v as (...a: unknown[]) => unknown).apply(target, args));
      },
    }) as FileSystem;
    const h = harness({ namespace: new Namespace({ '/': asyncFs }) });
    const [p, n] = h.str('d/f');
    const out = h.alloc(4);
    const r = h.fns.path_open!(3, FOLLOW, p, n, 0, BigInt(FILE_RW), 0n, 0, out);
    expect(isPromise(r)).toBe(true);
    expect(await r).toBe(0);
    const fd = h.u32(out);
    const { ptr, bufs } = h.iovs(64);
    expect(await h.callAsync('fd_read', fd, ptr, 1, out)).toBe(0);
    expect(dec.decode(h.bytes(bufs[0]!, h.u32(out)))).toBe('async content');
    const [m, mn] = h.str('d/missing');
    expect(await h.callAsync('path_open', 3, FOLLOW, m, mn, 0, BigInt(FILE_RW), 0n, 0, out)).toBe(Errno.NOENT);
    const [l, ln] = h.str('d/l');
    expect(await h.callAsync('path_symlink', p + 2, 1, 3, l, ln)).toBe(0);
    expect(await h.callAsync('path_open', 3, FOLLOW, l, ln, 0, BigInt(FILE_RW), 0n, 0, out)).toBe(0);
  });
});

describe('preview1: snapshot and restore', () => {
  it('the fd table survives a JSON round trip into a new Wasi: same fds, offsets, rights', () => {
    const fs = memfsFrom({ f: 'abcdefgh' });
    const ns = new Namespace({ '/': fs });
    const h = harness({ namespace: ns, args: ['a', 'b'], env: ['X=1'] });
    const fd = h.open(3, 'f');
    expect(h.read(fd, 3)).toBe('abc');
    h.call('fd_fdstat_set_rights', fd, BigInt(R.FD_READ | R.FD_SEEK | R.FD_TELL), 0n);
    const snap = JSON.parse(JSON.stringify(h.wasi.snapshot())) as WasiSnapshot;
    expect(snap.fds.map((f) => f.fd)).toEqual([0, 1, 2, 3, 4]);

    const h2 = harness({ namespace: ns });
    h2.wasi.restore(snap);
    expect(h2.read(fd, 10)).toBe('defgh');
    expect(h2.write(fd, 'x')).toBe(-Errno.BADF);
    const count = h2.alloc(4);
    const size = h2.alloc(4);
    h2.call('args_sizes_get', count, size);
    expect(h2.u32(count)).toBe(2);
    // The original keeps its own position.
    expect(h.read(fd, 2)).toBe('de');
  });

  it('an open unlinked file stays alive for the restored copy too', () => {
    const fs = memfsFrom({ f: 'kept' });
    const ns = new Namespace({ '/': fs });
    const h = harness({ namespace: ns });
    const fd = h.open(3, 'f');
    const snap = h.wasi.snapshot();
    const h2 = harness({ namespace: ns });
    h2.wasi.restore(snap);
    const [p, n] = h.str('f');
    expect(h.call('path_unlink_file', 3, p, n)).toBe(0);
    expect(h.call('fd_close', fd)).toBe(0);
    expect(h2.read(fd, 10)).toBe('kept');
  });

  it('refuses snapshots it cannot use', () => {
    const h = harness({ namespace: rootNs() });
    expect(() => h.wasi.restore({ version: 2 })).toThrow(TypeError);
    expect(() => h.wasi.restore(null)).toThrow(TypeError);
    const snap = h.wasi.snapshot();
    snap.fds[3]!.mount = '/elsewhere';
    expect(() => h.wasi.restore(snap)).toThrow(/elsewhere/);
  });
});
