// The `lshapes` ABI (docs/abi.md) for AssemblyScript programs.
//
// Every raw import returns a WASI errno; this library turns them into typed values:
//   - calls that can fail for reasons a program should handle return a Result<T>
//     (`.ok`, `.errno`, `.value`, `.orExit("what")`);
//   - calls that only fail on a bug (a bad pointer) or that cannot fail end the program with
//     a clear message on stderr and exit code 1.
// Calls block (the kernel suspends the program with Asyncify) exactly like the raw imports.
import { errno, errnoName } from "./errno";
import { die } from "./io";

export { errno, errnoName } from "./errno";
export { print, println, eprint, eprintln, args, exit, die, programName, parseUint, writeString, writeBytes } from "./io";

// ───────────────────────────── raw imports (docs/abi.md) ─────────────────────────────

export namespace raw {
  @external("lshapes", "getpid")
  export declare function getpid(buf: usize, cap: u32, len_out: usize): i32;
  @external("lshapes", "peer_id")
  export declare function peer_id(buf: usize, cap: u32, len_out: usize): i32;
  @external("lshapes", "cluster_info")
  export declare function cluster_info(peers_out: usize, slots_out: usize): i32;
  @external("lshapes", "spawn")
  export declare function spawn(name: usize, name_len: u32, argv: usize, argv_len: u32, peer: usize, peer_len: u32, handle_out: usize): i32;
  @external("lshapes", "wait")
  export declare function wait(handle: i32, code_out: usize, timeout_ms: i32): i32;
  @external("lshapes", "kill")
  export declare function kill(handle: i32): i32;
  @external("lshapes", "port_open")
  export declare function port_open(name: usize, name_len: u32, port_out: usize): i32;
  @external("lshapes", "send")
  export declare function send(to: i32, port: usize, port_len: u32, data: usize, data_len: u32): i32;
  @external("lshapes", "recv")
  export declare function recv(port: i32, buf: usize, cap: u32, len_out: usize, from_out: usize, token_out: usize, timeout_ms: i32): i32;
  @external("lshapes", "call")
  export declare function call(to: i32, port: usize, port_len: u32, data: usize, data_len: u32, buf: usize, cap: u32, len_out: usize, timeout_ms: i32): i32;
  @external("lshapes", "reply")
  export declare function reply(token: i32, data: usize, data_len: u32): i32;
}

// Out-parameters of the raw calls (one call at a time: WebAssembly is single-threaded).
const OUT: usize = memory.data(16, 8);

// ───────────────────────────── results and strings ─────────────────────────────

/** A value, or the errno of the call that failed. */
export class Result<T> {
  constructor(readonly errno: i32, private readonly _value: T) {}

  get ok(): bool {
    return this.errno == 0;
  }

  /** The value; ends the program (exit 1) if the call failed. */
  get value(): T {
    if (this.errno != 0) die("unchecked lshapes error: " + errnoName(this.errno));
    return this._value;
  }

  /** The value, or prints "PROGRAM: what: EXXX" to stderr and exits with 1. */
  orExit(what: string): T {
    if (this.errno != 0) die(what + ": " + errnoName(this.errno));
    return this._value;
  }
}

function ok<T>(v: T): Result<T> {
  return new Result<T>(0, v);
}

function err<T>(e: i32): Result<T> {
  if (isReference<T>()) return new Result<T>(e, changetype<T>(0));
  return new Result<T>(e, <T>0);
}

/** UTF-8 bytes of a string. */
export function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

/** A string from UTF-8 bytes. */
export function str(b: Uint8Array): string {
  return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.length);
}

// ───────────────────────────── who and where ─────────────────────────────

function readName(which: i32): string {
  let cap: u32 = 64;
  for (;;) {
    const buf = new ArrayBuffer(<i32>cap);
    const e = which == 0 ? raw.getpid(changetype<usize>(buf), cap, OUT) : raw.peer_id(changetype<usize>(buf), cap, OUT);
    const len = load<u32>(OUT);
    if (e == errno.NOBUFS && len > cap) {
      cap = len;
      continue;
    }
    if (e != 0) die((which == 0 ? "getpid" : "peer_id") + ": " + errnoName(e));
    return String.UTF8.decodeUnsafe(changetype<usize>(buf), <usize>len);
  }
}

/** This process's pid, e.g. "4f2a1c.3". */
export function getpid(): string {
  return readName(0);
}

/** The id of the peer this process runs on now (32 hex chars). It can change (migration). */
export function peerId(): string {
  return readName(1);
}

export class ClusterInfo {
  constructor(readonly peers: u32, readonly slots: u32) {}
}

/** Peers in the cluster now (this one included) and their execution slots in all. */
export function clusterInfo(): ClusterInfo {
  const e = raw.cluster_info(OUT, OUT + 4);
  if (e != 0) die("cluster_info: " + errnoName(e));
  return new ClusterInfo(load<u32>(OUT), load<u32>(OUT, 4));
}

// ───────────────────────────── processes ─────────────────────────────

/** Another process, named by a handle (0 = the parent, others from spawn or recv). */
export class Process {
  constructor(readonly handle: i32) {}

  /** Sends `data` to its port `port`; 0 or ESRCH, EMSGSIZE, EINVAL. Delivery is not confirmed. */
  send(port: string, data: Uint8Array): i32 {
    return send(this.handle, port, data);
  }

  sendString(port: string, s: string): i32 {
    return send(this.handle, port, utf8(s));
  }

  /** Sends `data` to its port `port` and waits for the reply (see call()). */
  call(port: string, data: Uint8Array, timeoutMs: i32 = -1, maxReply: i32 = 65536): Result<Uint8Array> {
    return call(this.handle, port, data, timeoutMs, maxReply);
  }

  /** Like call(), with strings. */
  callString(port: string, s: string, timeoutMs: i32 = -1, maxReply: i32 = 65536): Result<string> {
    const r = call(this.handle, port, utf8(s), timeoutMs, maxReply);
    return r.ok ? ok<string>(str(r.value)) : err<string>(r.errno);
  }

  /** Stops it (its exit code becomes 137); 0 or ESRCH. */
  kill(): i32 {
    return raw.kill(this.handle);
  }
}

/** A process this one spawned. */
export class Child extends Process {
  /**
   * Waits for it to exit (timeoutMs < 0: forever) and gives its exit code; errors ETIMEDOUT,
   * ECHILD, EHOSTUNREACH (lost with its peer). Can be called again after it exited.
   */
  wait(timeoutMs: i32 = -1): Result<i32> {
    const e = raw.wait(this.handle, OUT, timeoutMs);
    return e == 0 ? ok<i32>(load<i32>(OUT)) : err<i32>(e);
  }
}

/** The parent (handle 0); calls on it fail with ESRCH when started from a terminal. */
export function parent(): Process {
  return new Process(0);
}

/**
 * Starts program `name` ("" = this program's own module) with `args` (after argv[0]) on `peer`
 * (a peer id or unique prefix; "" lets the Scheduler choose). Blocks until the child runs.
 * Errors: ENOENT, EHOSTUNREACH, ENOEXEC, EINVAL.
 */
export function spawn(name: string, args: string[] = [], peer: string = ""): Result<Child> {
  let argvLen = 0;
  const encoded = new Array<ArrayBuffer>(args.length);
  for (let i = 0; i < args.length; i++) {
    const a = String.UTF8.encode(args[i]);
    encoded[i] = a;
    argvLen += a.byteLength + 1;
  }
  const argv = new Uint8Array(argvLen);
  let at = 0;
  for (let i = 0; i < encoded.length; i++) {
    const a = encoded[i];
    memory.copy(argv.dataStart + <usize>at, changetype<usize>(a), <usize>a.byteLength);
    at += a.byteLength;
    argv[at++] = 0;
  }
  const n = String.UTF8.encode(name);
  const p = String.UTF8.encode(peer);
  const e = raw.spawn(
    changetype<usize>(n), <u32>n.byteLength,
    argv.dataStart, <u32>argvLen,
    changetype<usize>(p), <u32>p.byteLength,
    OUT,
  );
  return e == 0 ? ok<Child>(new Child(load<i32>(OUT))) : err<Child>(e);
}

// ───────────────────────────── messages ─────────────────────────────

/** Sends `data` to port `port` of process `handle`; 0 or an errno (ESRCH, EMSGSIZE, EINVAL). */
export function send(handle: i32, port: string, data: Uint8Array): i32 {
  const p = String.UTF8.encode(port);
  return raw.send(handle, changetype<usize>(p), <u32>p.byteLength, data.dataStart, <u32>data.length);
}

/**
 * Sends `data` to port `port` of process `handle` and waits (timeoutMs < 0: forever) for the
 * reply. Errors: those of send, ETIMEDOUT, and ENOBUFS when the reply was longer than
 * `maxReply` bytes (its start is lost with the rest: pass a larger maxReply).
 */
export function call(handle: i32, port: string, data: Uint8Array, timeoutMs: i32 = -1, maxReply: i32 = 65536): Result<Uint8Array> {
  const p = String.UTF8.encode(port);
  const buf = new Uint8Array(maxReply);
  const e = raw.call(
    handle, changetype<usize>(p), <u32>p.byteLength,
    data.dataStart, <u32>data.length,
    buf.dataStart, <u32>maxReply, OUT, timeoutMs,
  );
  if (e != 0) return err<Uint8Array>(e);
  const len = load<i32>(OUT);
  if (len > maxReply) return err<Uint8Array>(errno.NOBUFS);
  return ok<Uint8Array>(buf.slice(0, len));
}

/** Answers the call that delivered `token`; 0 or EINVAL (unknown or used token), EMSGSIZE. */
export function reply(token: i32, data: Uint8Array): i32 {
  return raw.reply(token, data.dataStart, <u32>data.length);
}

/** A message taken from a port. */
export class Message {
  constructor(
    readonly data: Uint8Array,
    /** Its sender. */
    readonly from: Process,
    /** Non-zero when the sender waits in call() for a reply. */
    readonly token: i32,
  ) {}

  /** The data as a UTF-8 string. */
  text(): string {
    return str(this.data);
  }

  get wantsReply(): bool {
    return this.token != 0;
  }

  /** Answers the sender's call(); 0 or EINVAL (not a call, or answered already), EMSGSIZE. */
  reply(data: Uint8Array): i32 {
    return reply(this.token, data);
  }

  replyString(s: string): i32 {
    return reply(this.token, utf8(s));
  }
}

// Messages are received here first, and the buffer grows when one is longer (ENOBUFS leaves
// the message queued, so nothing is lost).
let recvBuf = new Uint8Array(4096);

/** A named mailbox of this process. */
export class Port {
  private constructor(readonly name: string, readonly number: i32) {}

  /** Opens port `name` (1–64 bytes, not starting with '#'); EINVAL for a bad name. */
  static open(name: string): Result<Port> {
    const n = String.UTF8.encode(name);
    const e = raw.port_open(changetype<usize>(n), <u32>n.byteLength, OUT);
    return e == 0 ? ok<Port>(new Port(name, load<i32>(OUT))) : err<Port>(e);
  }

  /**
   * Takes the oldest message, waiting at most timeoutMs (< 0: forever, 0: poll); null on
   * timeout. Any other error is a bug (EBADF, EFAULT) and ends the program.
   */
  recv(timeoutMs: i32 = -1): Message | null {
    for (;;) {
      const e = raw.recv(this.number, recvBuf.dataStart, <u32>recvBuf.length, OUT, OUT + 4, OUT + 8, timeoutMs);
      if (e == errno.TIMEDOUT) return null;
      const len = load<i32>(OUT);
      if (e == errno.NOBUFS && len > recvBuf.length) {
        recvBuf = new Uint8Array(len);
        continue;
      }
      if (e != 0) die("recv on port " + this.name + ": " + errnoName(e));
      return new Message(recvBuf.slice(0, len), new Process(load<i32>(OUT, 4)), load<i32>(OUT, 8));
    }
  }
}
