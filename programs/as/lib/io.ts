// Output, arguments and exit for command programs, straight over WASI (fd_write, proc_exit):
// no exceptions, a failed write is simply reported by its errno.
import { fd_write, proc_exit } from "bindings/wasi_snapshot_preview1";

// iovec + nwritten for writeBytes (one call at a time: WebAssembly is single-threaded).
const IOV: usize = memory.data(16, 8);

/** Writes all of `data` to `fd`; 0 or the errno of the failed fd_write. */
export function writeBytes(fd: u32, ptr: usize, len: usize): i32 {
  while (len > 0) {
    store<u32>(IOV, <u32>ptr);
    store<u32>(IOV, <u32>len, 4);
    const err = <i32>fd_write(fd, IOV, 1, IOV + 8);
    if (err != 0) return err;
    const n = <usize>load<u32>(IOV, 8);
    if (n == 0) return 29; // EIO: no progress
    ptr += n;
    len -= n;
  }
  return 0;
}

/** Writes `s` (as UTF-8) to `fd`; 0 or an errno. */
export function writeString(fd: u32, s: string): i32 {
  const buf = String.UTF8.encode(s);
  return writeBytes(fd, changetype<usize>(buf), <usize>buf.byteLength);
}

export function print(s: string): void {
  writeString(1, s);
}

export function println(s: string = ""): void {
  writeString(1, s + "\n");
}

export function eprint(s: string): void {
  writeString(2, s);
}

export function eprintln(s: string = ""): void {
  writeString(2, s + "\n");
}

/** The program's arguments, argv[0] included. */
export function args(): string[] {
  return process.argv;
}

/** argv[0] without its directory, for messages ("primes: ..."). */
export function programName(): string {
  const argv = process.argv;
  if (argv.length == 0) return "program";
  const a0 = argv[0];
  const slash = a0.lastIndexOf("/");
  return slash >= 0 ? a0.substring(slash + 1) : a0;
}

/** Ends the program now with `code` (proc_exit). */
export function exit(code: i32): void {
  proc_exit(<u32>code);
}

/** Prints "NAME: message" to stderr and exits with `code` (1 by default). */
export function die(message: string, code: i32 = 1): void {
  eprintln(programName() + ": " + message);
  exit(code);
}

/** A non-negative decimal integer, or -1 if `s` is not one (or does not fit in i64). */
export function parseUint(s: string): i64 {
  if (s.length == 0 || s.length > 18) return -1;
  let v: i64 = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + <i64>(c - 48);
  }
  return v;
}
