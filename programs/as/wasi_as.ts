// WASI test in AssemblyScript: preview 1 calls made directly through raw imports (declared
// below, not the wasi-shim's), one line per check: "label: ok" / "label: ENAME" or a value.
// programs/expected/wasi_as.out is what it must print (src/kernel/wasi/programs-as.test.ts).
//
// Expects the setup of wasi_raw: argv = [wasi_as, one, "two words"], env HOME=/ and
// TESTVAR=value, stdin "abc", preopens "/" (fd 3, with empty directories tmp and ro), "/ro"
// (read-only, holding "readme" = "read me"), "/tmp". Ends with proc_exit(9).
import { errnoName } from "./lib/errno";

// ───────────────────────────── raw imports ─────────────────────────────

@external("wasi_snapshot_preview1", "args_sizes_get")
declare function args_sizes_get(argc: usize, size: usize): i32;
@external("wasi_snapshot_preview1", "args_get")
declare function args_get(argv: usize, buf: usize): i32;
@external("wasi_snapshot_preview1", "environ_sizes_get")
declare function environ_sizes_get(count: usize, size: usize): i32;
@external("wasi_snapshot_preview1", "environ_get")
declare function environ_get(environ: usize, buf: usize): i32;
@external("wasi_snapshot_preview1", "clock_res_get")
declare function clock_res_get(id: i32, out: usize): i32;
@external("wasi_snapshot_preview1", "clock_time_get")
declare function clock_time_get(id: i32, precision: i64, out: usize): i32;
@external("wasi_snapshot_preview1", "random_get")
declare function random_get(buf: usize, len: usize): i32;
@external("wasi_snapshot_preview1", "fd_prestat_get")
declare function fd_prestat_get(fd: i32, out: usize): i32;
@external("wasi_snapshot_preview1", "fd_prestat_dir_name")
declare function fd_prestat_dir_name(fd: i32, buf: usize, len: usize): i32;
@external("wasi_snapshot_preview1", "path_open")
declare function path_open(fd: i32, dirflags: i32, path: usize, path_len: usize, oflags: i32, base: i64, inheriting: i64, fdflags: i32, fd_out: usize): i32;
@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: i32, iovs: usize, iovs_len: usize, nwritten: usize): i32;
@external("wasi_snapshot_preview1", "fd_read")
declare function fd_read(fd: i32, iovs: usize, iovs_len: usize, nread: usize): i32;
@external("wasi_snapshot_preview1", "fd_seek")
declare function fd_seek(fd: i32, offset: i64, whence: i32, out: usize): i32;
@external("wasi_snapshot_preview1", "fd_tell")
declare function fd_tell(fd: i32, out: usize): i32;
@external("wasi_snapshot_preview1", "fd_close")
declare function fd_close(fd: i32): i32;
@external("wasi_snapshot_preview1", "fd_readdir")
declare function fd_readdir(fd: i32, buf: usize, len: usize, cookie: i64, used: usize): i32;
@external("wasi_snapshot_preview1", "fd_filestat_get")
declare function fd_filestat_get(fd: i32, out: usize): i32;
@external("wasi_snapshot_preview1", "path_filestat_get")
declare function path_filestat_get(fd: i32, flags: i32, path: usize, path_len: usize, out: usize): i32;
@external("wasi_snapshot_preview1", "path_create_directory")
declare function path_create_directory(fd: i32, path: usize, path_len: usize): i32;
@external("wasi_snapshot_preview1", "path_remove_directory")
declare function path_remove_directory(fd: i32, path: usize, path_len: usize): i32;
@external("wasi_snapshot_preview1", "path_unlink_file")
declare function path_unlink_file(fd: i32, path: usize, path_len: usize): i32;
@external("wasi_snapshot_preview1", "path_rename")
declare function path_rename(fd: i32, old_path: usize, old_len: usize, new_fd: i32, new_path: usize, new_len: usize): i32;
@external("wasi_snapshot_preview1", "path_symlink")
declare function path_symlink(old_path: usize, old_len: usize, fd: i32, new_path: usize, new_len: usize): i32;
@external("wasi_snapshot_preview1", "path_readlink")
declare function path_readlink(fd: i32, path: usize, path_len: usize, buf: usize, buf_len: usize, used: usize): i32;
@external("wasi_snapshot_preview1", "proc_exit")
declare function proc_exit(code: i32): void;

// ───────────────────────────── constants ─────────────────────────────

const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;

const O_CREAT = 1;
const O_DIRECTORY = 2;
const O_EXCL = 4;
const O_TRUNC = 8;
const FOLLOW = 1;
const SEEK_SET = 0;
const SEEK_CUR = 1;
const SEEK_END = 2;

const FD_READ: i64 = 1 << 1;
const FD_SEEK: i64 = 1 << 2;
const FD_TELL: i64 = 1 << 5;
const FD_WRITE: i64 = 1 << 6;
const FD_READDIR: i64 = 1 << 14;
const FD_FILESTAT_GET: i64 = 1 << 21;
const FILE_RW: i64 = FD_READ | FD_WRITE | FD_SEEK | FD_TELL | FD_FILESTAT_GET;

const BAD: usize = 0xFFFFFFF0;
const ROOT = 3;

// Scratch memory for out-parameters, iovecs and data (static, so never moved or collected).
const OUT: usize = memory.data(64, 8);
const IOV: usize = memory.data(16, 8);
const BUF: usize = memory.data(1024, 8);
const BUF_LEN: usize = 1024;

// ───────────────────────────── output ─────────────────────────────

function put(fd: i32, s: string): i32 {
  const b = String.UTF8.encode(s);
  store<u32>(IOV, <u32>changetype<usize>(b));
  store<u32>(IOV, <u32>b.byteLength, 4);
  return fd_write(fd, IOV, 1, IOV + 8);
}

function say(s: string): void {
  put(1, s + "\n");
}

/** "label: ok" or "label: ENAME". */
function R(label: string, e: i32): void {
  say(label + ": " + errnoName(e));
}

function CHECK(label: string, cond: bool): void {
  say(label + ": " + (cond ? "yes" : "no"));
}

function q(s: string): string {
  return "\"" + s + "\"";
}

/** Bytes of a path (pass ptr(b), len(b)). */
function P(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

function ptr(b: ArrayBuffer): usize {
  return changetype<usize>(b);
}

function len(b: ArrayBuffer): usize {
  return <usize>b.byteLength;
}

function text(at: usize, n: usize): string {
  return String.UTF8.decodeUnsafe(at, n);
}

// ───────────────────────────── helpers ─────────────────────────────

let lastErr: i32 = 0;
let lastCount: u32 = 0;

/** path_open from `dir`; the new fd, or -1 with lastErr set. */
function open(dir: i32, path: string, oflags: i32, rights: i64 = FILE_RW, fdflags: i32 = 0): i32 {
  const p = P(path);
  store<i32>(OUT, -1);
  lastErr = path_open(dir, FOLLOW, ptr(p), len(p), oflags, rights, 0, fdflags, OUT);
  return lastErr == 0 ? load<i32>(OUT) : -1;
}

/** fd_write of `s`; the errno, and the bytes written in lastCount. */
function write(fd: i32, s: string): i32 {
  const e = put(fd, s);
  lastCount = e == 0 ? load<u32>(IOV, 8) : 0;
  return e;
}

/** Reads up to `n` bytes at the current offset; the text, or "<ENAME>". */
function read(fd: i32, n: usize): string {
  store<u32>(IOV, <u32>BUF);
  store<u32>(IOV, <u32>n, 4);
  const e = fd_read(fd, IOV, 1, IOV + 8);
  if (e != 0) return "<" + errnoName(e) + ">";
  return text(BUF, <usize>load<u32>(IOV, 8));
}

function filetype(dir: i32, flags: i32, path: string): string {
  const p = P(path);
  const e = path_filestat_get(dir, flags, ptr(p), len(p), BUF);
  if (e != 0) return errnoName(e);
  return "filetype " + load<u8>(BUF, 16).toString() + " size " + load<u64>(BUF, 32).toString();
}

// ───────────────────────────── checks ─────────────────────────────

function argsEnv(): void {
  R("args_sizes_get", args_sizes_get(OUT, OUT + 4));
  const argc = load<u32>(OUT);
  const size = load<u32>(OUT, 4);
  say("argc: " + argc.toString() + ", argv bytes: " + size.toString());
  const argv = heap.alloc(<usize>argc * 4);
  const buf = heap.alloc(<usize>size);
  R("args_get", args_get(argv, buf));
  for (let i: u32 = 0; i < argc; i++) {
    const s = load<u32>(argv + <usize>i * 4);
    let end = <usize>s;
    while (load<u8>(end) != 0) end++;
    say("argv[" + i.toString() + "] = " + q(text(<usize>s, end - <usize>s)));
  }
  CHECK("argv strings NUL-terminated inside the buffer", load<u8>(buf + <usize>size - 1) == 0);
  R("args_get bad pointer", args_get(BAD, buf));
  R("args_sizes_get bad pointer", args_sizes_get(BAD, OUT));
  heap.free(argv);
  heap.free(buf);

  R("environ_sizes_get", environ_sizes_get(OUT, OUT + 4));
  const envc = load<u32>(OUT);
  const envSize = load<u32>(OUT, 4);
  say("envc: " + envc.toString() + ", environ bytes: " + envSize.toString());
  const env = heap.alloc(<usize>envc * 4);
  const envBuf = heap.alloc(<usize>envSize);
  R("environ_get", environ_get(env, envBuf));
  for (let i: u32 = 0; i < envc; i++) {
    const s = load<u32>(env + <usize>i * 4);
    let end = <usize>s;
    while (load<u8>(end) != 0) end++;
    say("environ[" + i.toString() + "] = " + q(text(<usize>s, end - <usize>s)));
  }
  R("environ_get bad pointer", environ_get(env, BAD));
  heap.free(env);
  heap.free(envBuf);
}

function clocksRandom(): void {
  R("clock_res_get realtime", clock_res_get(CLOCK_REALTIME, OUT));
  CHECK("resolution > 0", load<u64>(OUT) > 0);
  R("clock_res_get monotonic", clock_res_get(CLOCK_MONOTONIC, OUT));
  R("clock_time_get realtime", clock_time_get(CLOCK_REALTIME, 1, OUT));
  CHECK("realtime after 2020", load<u64>(OUT) > 1577836800 * <u64>1000000000);
  clock_time_get(CLOCK_MONOTONIC, 1, OUT);
  const a = load<u64>(OUT);
  R("clock_time_get monotonic", clock_time_get(CLOCK_MONOTONIC, 1, OUT));
  CHECK("monotonic does not go back", load<u64>(OUT) >= a);
  R("clock_time_get bad clock", clock_time_get(99, 1, OUT));
  R("clock_res_get bad clock", clock_res_get(99, OUT));
  R("clock_time_get bad pointer", clock_time_get(CLOCK_REALTIME, 1, BAD));

  memory.fill(BUF, 0, 32);
  R("random_get", random_get(BUF, 32));
  let nonzero = false;
  for (let i: usize = 0; i < 32; i++) if (load<u8>(BUF + i) != 0) nonzero = true;
  CHECK("random bytes not all zero", nonzero);
  R("random_get empty", random_get(BUF, 0));
  R("random_get bad pointer", random_get(BAD, 16));
}

function preopens(): void {
  for (let fd = 3; fd < 8; fd++) {
    if (fd_prestat_get(fd, OUT) != 0) continue;
    const n = <usize>load<u32>(OUT, 4);
    R("fd_prestat_dir_name", fd_prestat_dir_name(fd, BUF, n));
    say("preopen fd " + fd.toString() + ": tag " + load<u8>(OUT).toString() + " " + q(text(BUF, n)));
  }
  R("fd_prestat_get stdout", fd_prestat_get(1, OUT));
  R("fd_prestat_get closed fd", fd_prestat_get(100, OUT));
}

function files(): void {
  const fd = open(ROOT, "as.txt", O_CREAT | O_TRUNC);
  R("path_open create", lastErr);
  R("fd_write", write(fd, "hello, assemblyscript"));
  say("written: " + lastCount.toString());
  R("fd_tell", fd_tell(fd, OUT));
  say("tell: " + load<u64>(OUT).toString());
  R("fd_seek set 7", fd_seek(fd, 7, SEEK_SET, OUT));
  say("seek: " + load<u64>(OUT).toString());
  say("fd_read 8: " + q(read(fd, 8)));
  R("fd_seek cur -4", fd_seek(fd, -4, SEEK_CUR, OUT));
  say("seek: " + load<u64>(OUT).toString());
  R("fd_seek end -6", fd_seek(fd, -6, SEEK_END, OUT));
  say("seek: " + load<u64>(OUT).toString());
  say("fd_read to the end: " + q(read(fd, 100)));
  say("fd_read at the end: " + q(read(fd, 100)));
  R("fd_seek past the end", fd_seek(fd, 100, SEEK_SET, OUT));
  R("fd_write past the end", write(fd, "!"));
  R("fd_filestat_get", fd_filestat_get(fd, BUF));
  say("size: " + load<u64>(BUF, 32).toString() + ", filetype " + load<u8>(BUF, 16).toString());
  R("fd_seek bad whence", fd_seek(fd, 0, 3, OUT));
  R("fd_seek negative", fd_seek(fd, -1000, SEEK_CUR, OUT));
  R("fd_seek stdout", fd_seek(1, 0, SEEK_CUR, OUT));
  R("fd_tell bad pointer", fd_tell(fd, BAD));
  R("fd_close", fd_close(fd));
  R("fd_close again", fd_close(fd));
  R("fd_write closed fd", write(fd, "x"));
  say("fd_read closed fd: " + read(fd, 1));

  const ro = open(ROOT, "as.txt", 0, FD_READ);
  R("path_open read-only", lastErr);
  R("fd_write without right", write(ro, "x"));
  say("fd_read: " + q(read(ro, 5)));
  fd_close(ro);

  const t = open(ROOT, "as.txt", O_TRUNC);
  R("path_open trunc", lastErr);
  fd_filestat_get(t, BUF);
  say("size after trunc: " + load<u64>(BUF, 32).toString());
  write(t, "0123456789");
  fd_close(t);
  const ap = open(ROOT, "as.txt", 0, FILE_RW, 1 /* APPEND */);
  R("path_open append", lastErr);
  fd_seek(ap, 0, SEEK_SET, OUT);
  write(ap, "AB");
  fd_seek(ap, 0, SEEK_SET, OUT);
  say("after append: " + q(read(ap, 100)));
  fd_close(ap);
}

function opening(): void {
  open(ROOT, "missing", 0);
  R("path_open missing", lastErr);
  open(ROOT, "missing/x", O_CREAT);
  R("path_open create in missing dir", lastErr);
  open(ROOT, "as.txt", O_CREAT | O_EXCL);
  R("path_open create exclusive existing", lastErr);
  const fd = open(ROOT, "new.txt", O_CREAT | O_EXCL);
  R("path_open create exclusive new", lastErr);
  fd_close(fd);
  open(ROOT, "as.txt", O_DIRECTORY, FD_READ);
  R("path_open file as directory", lastErr);
  open(ROOT, "as.txt/x", 0, FD_READ);
  R("path_open through a file", lastErr);
  open(ROOT, "tmp", 0, FD_READ | FD_WRITE);
  R("path_open directory for writing", lastErr);
  open(ROOT, "tmp", O_TRUNC, FD_READ);
  R("path_open truncate directory", lastErr);
  const d = open(ROOT, "tmp", O_DIRECTORY, FD_READ | FD_READDIR);
  R("path_open directory", lastErr);
  say("fd_read directory: " + read(d, 4));
  fd_close(d);
  open(ROOT, "../as.txt", 0, FD_READ);
  R("path_open .. above root", lastErr);
  open(100, "as.txt", 0, FD_READ);
  R("path_open from closed fd", lastErr);
  const p = P("as.txt");
  R("path_open bad fd pointer", path_open(ROOT, FOLLOW, ptr(p), len(p), 0, FD_READ, 0, 0, BAD));
  R("path_open bad path pointer", path_open(ROOT, FOLLOW, BAD, 4, 0, FD_READ, 0, 0, OUT));
}

function directories(): void {
  const sub = P("sub");
  R("path_create_directory", path_create_directory(ROOT, ptr(sub), len(sub)));
  R("path_create_directory again", path_create_directory(ROOT, ptr(sub), len(sub)));
  const f = P("as.txt/d");
  R("path_create_directory in a file", path_create_directory(ROOT, ptr(f), len(f)));
  say("path_filestat_get sub: " + filetype(ROOT, 0, "sub"));
  say("path_filestat_get as.txt: " + filetype(ROOT, 0, "as.txt"));
  say("path_filestat_get missing: " + filetype(ROOT, 0, "missing"));
  const names = ["sub/one", "sub/two", "sub/three"];
  for (let i = 0; i < names.length; i++) fd_close(open(ROOT, names[i], O_CREAT));
  const inner = P("sub/inner");
  path_create_directory(ROOT, ptr(inner), len(inner));

  const d = open(ROOT, "sub", O_DIRECTORY, FD_READDIR);
  R("open sub", lastErr);
  R("fd_readdir", fd_readdir(d, BUF, BUF_LEN, 0, OUT));
  const used = <usize>load<u32>(OUT);
  say("bufused: " + used.toString());
  let at: usize = 0;
  let count = 0;
  let cookieAfterOne: u64 = 0;
  while (at + 24 <= used) {
    const next = load<u64>(BUF + at);
    const namlen = <usize>load<u32>(BUF + at, 16);
    const type = load<u8>(BUF + at, 20);
    const name = text(BUF + at + 24, namlen);
    say("  " + name + " type " + type.toString() + " next " + next.toString());
    if (name == "one") cookieAfterOne = next;
    at += 24 + namlen;
    count++;
  }
  say("entries: " + count.toString());
  R("fd_readdir from a cookie", fd_readdir(d, BUF, BUF_LEN, cookieAfterOne, OUT));
  say("first after one: " + text(BUF + 24, <usize>load<u32>(BUF, 16)));
  R("fd_readdir past the end", fd_readdir(d, BUF, BUF_LEN, 1000, OUT));
  say("bufused: " + load<u32>(OUT).toString());
  R("fd_readdir small buffer", fd_readdir(d, BUF, 30, 0, OUT));
  say("bufused: " + load<u32>(OUT).toString());
  R("fd_readdir bad buffer", fd_readdir(d, BAD, 100, 0, OUT));
  fd_close(d);
  const file = open(ROOT, "as.txt", 0, FD_READ | FD_READDIR);
  R("fd_readdir on a file", fd_readdir(file, BUF, BUF_LEN, 0, OUT));
  fd_close(file);

  R("path_remove_directory non-empty", path_remove_directory(ROOT, ptr(sub), len(sub)));
  const one = P("sub/one");
  R("path_remove_directory a file", path_remove_directory(ROOT, ptr(one), len(one)));
  R("path_unlink_file a directory", path_unlink_file(ROOT, ptr(inner), len(inner)));
  R("path_remove_directory", path_remove_directory(ROOT, ptr(inner), len(inner)));
  R("path_remove_directory again", path_remove_directory(ROOT, ptr(inner), len(inner)));
  R("path_unlink_file", path_unlink_file(ROOT, ptr(one), len(one)));
  R("path_unlink_file again", path_unlink_file(ROOT, ptr(one), len(one)));
  say("path_filestat_get unlinked: " + filetype(ROOT, 0, "sub/one"));
}

function renames(): void {
  const a = P("sub/two");
  const b = P("renamed.txt");
  R("path_rename", path_rename(ROOT, ptr(a), len(a), ROOT, ptr(b), len(b)));
  say("old name: " + filetype(ROOT, 0, "sub/two"));
  say("new name: " + filetype(ROOT, 0, "renamed.txt"));
  R("path_rename missing", path_rename(ROOT, ptr(a), len(a), ROOT, ptr(b), len(b)));
  const s = P("as.txt");
  R("path_rename over a file", path_rename(ROOT, ptr(s), len(s), ROOT, ptr(b), len(b)));
  const fd = open(ROOT, "renamed.txt", 0, FD_READ);
  say("content after rename over: " + q(read(fd, 100)));
  fd_close(fd);
  const sub = P("sub");
  R("path_rename file over a directory", path_rename(ROOT, ptr(b), len(b), ROOT, ptr(sub), len(sub)));
  R("path_rename directory over a file", path_rename(ROOT, ptr(sub), len(sub), ROOT, ptr(b), len(b)));
  const sub2 = P("sub2");
  R("path_rename directory", path_rename(ROOT, ptr(sub), len(sub), ROOT, ptr(sub2), len(sub2)));
  say("sub2/three: " + filetype(ROOT, 0, "sub2/three"));
}

function symlinks(): void {
  const target = P("renamed.txt");
  const link = P("as.lnk");
  R("path_symlink", path_symlink(ptr(target), len(target), ROOT, ptr(link), len(link)));
  R("path_symlink over existing", path_symlink(ptr(target), len(target), ROOT, ptr(link), len(link)));
  R("path_readlink", path_readlink(ROOT, ptr(link), len(link), BUF, BUF_LEN, OUT));
  say("readlink: " + load<u32>(OUT).toString() + " " + q(text(BUF, <usize>load<u32>(OUT))));
  R("path_readlink short buffer", path_readlink(ROOT, ptr(link), len(link), BUF, 3, OUT));
  say("readlink: " + load<u32>(OUT).toString() + " " + q(text(BUF, <usize>load<u32>(OUT))));
  const file = P("renamed.txt");
  R("path_readlink not a link", path_readlink(ROOT, ptr(file), len(file), BUF, BUF_LEN, OUT));
  const missing = P("missing");
  R("path_readlink missing", path_readlink(ROOT, ptr(missing), len(missing), BUF, BUF_LEN, OUT));
  say("link nofollow: " + filetype(ROOT, 0, "as.lnk"));
  say("link follow: " + filetype(ROOT, FOLLOW, "as.lnk"));
  const fd = open(ROOT, "as.lnk", 0, FD_READ);
  R("open through the link", lastErr);
  say("content: " + q(read(fd, 100)));
  fd_close(fd);
  const dangling = P("dangling");
  const nowhere = P("nowhere");
  R("path_symlink dangling", path_symlink(ptr(nowhere), len(nowhere), ROOT, ptr(dangling), len(dangling)));
  open(ROOT, "dangling", 0, FD_READ);
  R("open dangling", lastErr);
  R("path_unlink_file link", path_unlink_file(ROOT, ptr(link), len(link)));
  say("target still there: " + filetype(ROOT, 0, "renamed.txt"));
}

function mounts(): void {
  const fd = open(ROOT, "ro/readme", 0, FD_READ);
  R("open read-only mount for reading", lastErr);
  say("readme: " + q(read(fd, 100)));
  fd_close(fd);
  open(ROOT, "ro/readme", 0, FD_READ | FD_WRITE);
  R("open read-only mount for writing", lastErr);
  open(ROOT, "ro/new", O_CREAT, FD_READ);
  R("create on read-only mount", lastErr);
  const t = open(5, "t.txt", O_CREAT);
  R("create in /tmp (fd 5)", lastErr);
  write(t, "in tmp");
  fd_close(t);
  const back = open(ROOT, "tmp/t.txt", 0, FD_READ);
  say("tmp/t.txt from root: " + q(read(back, 100)));
  fd_close(back);
  const a = P("renamed.txt");
  const b = P("tmp/renamed.txt");
  R("rename across mounts", path_rename(ROOT, ptr(a), len(a), ROOT, ptr(b), len(b)));
}

function stdio(): void {
  say("fd_read stdin: " + q(read(0, 10)));
  say("fd_read stdin at end: " + q(read(0, 10)));
  R("fd_write stdin", write(0, "x"));
  R("fd_write stderr", put(2, ""));
}

argsEnv();
clocksRandom();
preopens();
files();
opening();
directories();
renames();
symlinks();
mounts();
stdio();
say("exiting with 9");
proc_exit(9);
say("not reached");
