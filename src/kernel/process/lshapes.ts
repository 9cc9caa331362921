// The `lshapes` import module (docs/abi.md) as a HostModule: process ids, spawn and wait, kill,
// ports and messages. What needs the kernel (spawn, wait, kill, cluster_info, and every message
// sent) goes out as a KernelRequest through the injected `request`; what arrives for the process
// (`deliver`) is fed in with `deliver()`. Host-agnostic, one instance per process.
//
// Handles: 0 is the parent; spawn gives one per child, recv one per new sender (a pid already
// known keeps its handle). Ports: numbers from port_open; messages to a port not opened yet
// wait in its mailbox. Reply tokens: a `call` sends with a fresh token (per caller) and waits
// on the runtime port `#reply:<token>`; the receiver's recv hands out a local token of its own
// (tokens of different callers may collide) that `reply` maps back to caller and token.
//
// Every pointer and length is checked (EFAULT), names (EINVAL), sizes (EMSGSIZE); nothing throws
// but ProcessExit from an `onFault` hook.
//
// send and reply are fire-and-forget (the kernel's answer only counts for flow control); call
// waits for its reply. snapshot()/restore() carry handles, ports, queued messages and tokens. A
// thread restored while blocked re-issues its call: recv and wait start their timeout again, a
// call in flight is not sent again (it waits for the same reply token), a spawn in flight IS
// issued again (the Scheduler must not migrate a process before its spawn was answered).
//
// Sequence numbers: every send, call and reply carries `seq` (per sender, from 1); a delivery
// with a `seq` not above the last one seen from its sender is a repeat (a sender restarted from
// a checkpoint sends again) and is dropped. Both counters are in the snapshot.
//
// Early replies: call tokens are deterministic per caller (nextCallToken is in the snapshot), so
// a process restarted from a checkpoint makes its calls again with the same tokens. A reply to
// one of those that reaches it before the call is made again (the callee's peer sends it again
// from its message log, scheduler/message-log.ts; the call itself is a repeat the callee drops)
// is kept, up to MAX_EARLY_REPLIES, for a token not used yet, and answers that call when it comes.
//
// Fork On Wait (executor.ts) sees a call waiting for its reply through pendingCall(), settles it
// early with a predicted reply (settleCall) and takes the real reply before it gets here.

import type { HostFunction, HostModule, HostResult, MemoryAccess } from '../wasm/host-calls.ts';
import { Errno } from '../wasi/errno.ts';
import { Fault, Mem } from '../wasi/memory.ts';
import type { KernelReply, KernelRequest, Pid } from './protocol.ts';

/** Largest message (and reply). */
export const MAX_MESSAGE_BYTES = 1 << 20;
/** What a process's mailboxes hold at most; beyond, the oldest messages are dropped. */
export const MAILBOX_MAX_MESSAGES = 1024;
export const MAILBOX_MAX_BYTES = 16 << 20;
const MAX_PORT_NAME = 64;
/** Largest spawn argument block. */
const MAX_ARGV_BYTES = 1 << 20;
/** Sends not yet acknowledged by the kernel before `send` blocks (flow control). */
const MAX_INFLIGHT_SENDS = 256;
const MAX_INFLIGHT_BYTES = 16 << 20;
const REPLY_PORT = '#reply:';
/** Tells a caller its call will never be answered: the callee ended first, or was gone. */
export const NOREPLY_PORT = '#noreply:';
/** Calls received and not answered yet, at most. */
const MAX_REPLY_TOKENS = 4096;
/** Senders whose last `seq` is remembered, at most (the oldest is forgotten first). */
const MAX_SEEN_SENDERS = 4096;
/** Replies (or no-replies) to calls not made yet that are kept, at most; and how far ahead their tokens may be. */
const MAX_EARLY_REPLIES = 64;
const EARLY_TOKEN_SPAN = 1 << 16;
const MAX_CALL_TOKEN = 0x7fffffff;

export interface LshapesOptions {
  pid: Pid;
  /** The peer the process runs on (peer_id). */
  peer: string;
  /** The parent's pid (handle 0); absent: no parent, handle 0 is ESRCH. */
  parent?: Pid | undefined;
  /** Sends a request to the Scheduler; resolves with its reply. Never rejects. */
  request(req: KernelRequest): Promise<KernelReply>;
  /** Runs `fn` after `ms` milliseconds; returns a cancel function. Default: setTimeout. */
  setTimer?: (ms: number, fn: () => void) => () => void;
  /** A bad pointer: return EFAULT (default), or throw ProcessExit to end the process. */
  onFault?: (call: string, fault: Fault) => void;
  /** The message of a call settled early (settleCall) could not be sent: the real result is this errno. */
  onCallFailed?: (token: number, errno: number) => void;
}

interface Message {
  port: string;
  from: Pid;
  token: number;
  data: Uint8Array;
  seq: number;
}

/** A call waiting for its reply. */
interface Calling {
  token: number;
  reply: Uint8Array | null;
  /** errno of a failed send (the target is gone), 0 while none. */
  error: number;
  /** The callee, its port and the call's timeout (< 0: none): what Fork On Wait predicts by. */
  to?: Pid;
  port?: string;
  timeoutMs?: number;
}

/** A call blocked waiting for its reply, as Fork On Wait sees it. */
export interface PendingCall {
  token: number;
  to: Pid;
  port: string;
  timeoutMs: number;
}

/** Plain data: carried in a thread snapshot. */
export interface LshapesSnapshot {
  version: 1;
  pid: Pid;
  handles: [handle: number, pid: Pid][];
  children: number[];
  nextHandle: number;
  ports: [name: string, port: number][];
  nextPort: number;
  /** Queued messages in arrival order. */
  mailbox: { port: string; from: Pid; token: number; data: Uint8Array }[];
  /** Local reply token → the caller and its token. */
  replyTokens: [local: number, to: Pid, token: number][];
  nextReplyToken: number;
  nextCallToken: number;
  calling: Calling | null;
  /** The last `seq` this process sent (absent in older snapshots: 0). */
  sendSeq?: number;
  /** The last `seq` seen from each sender. */
  lastSeen?: [from: Pid, seq: number][];
  /** Replies to calls not made yet, by call token (null: a no-reply). */
  early?: [token: number, reply: Uint8Array | null][];
}

const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

const u32 = (x: number | bigint): number => Number(BigInt.asUintN(32, BigInt(x)));
const i32 = (x: number | bigint): number => Number(BigInt.asIntN(32, BigInt(x)));

class Invalid extends Error {}

function defaultSetTimer(ms: number, fn: () => void): () => void {
  const t = setTimeout(fn, Math.min(ms, 2 ** 31 - 1));
  return () => clearTimeout(t);
}

function utf8(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new Invalid('not UTF-8');
  }
}

export function validPortName(name: string): boolean {
  const n = encoder.encode(name).length;
  return n >= 1 && n <= MAX_PORT_NAME && !name.startsWith('#');
}

export class LshapesHost implements HostModule {
  readonly name = 'lshapes';
  readonly pid: Pid;
  readonly peer: string;
  private readonly parent: Pid | undefined;
  private readonly request: LshapesOptions['request'];
  private readonly setTimer: NonNullable<LshapesOptions['setTimer']>;
  private readonly onFault: LshapesOptions['onFault'];
  private readonly onCallFailed: LshapesOptions['onCallFailed'];

  private handles = new Map<number, Pid>();
  private handleOf = new Map<Pid, number>();
  private children = new Set<number>();
  private nextHandle = 1;
  private ports = new Map<string, number>();
  private portNames = new Map<number, string>();
  private nextPort = 1;
  private queues = new Map<string, Message[]>();
  private queued = 0;
  private queuedBytes = 0;
  private seq = 0;
  private replyTokens = new Map<number, { to: Pid; token: number }>();
  private nextReplyToken = 1;
  private nextCallToken = 1;
  private calling: Calling | null = null;
  /** The port a blocked recv waits on. */
  private receiving: string | null = null;
  private sendSeq = 0;
  private lastSeen = new Map<Pid, number>();
  private early = new Map<number, Uint8Array | null>();

  private inflight = 0;
  private inflightBytes = 0;
  /** The blocked call's re-check, run when something it may wait for happens. */
  private waiter: (() => void) | null = null;
  private cancelTimer: (() => void) | null = null;
  private disposed = false;

  constructor(options: LshapesOptions) {
    this.pid = options.pid;
    this.peer = options.peer;
    this.parent = options.parent;
    this.request = options.request;
    this.setTimer = options.setTimer ?? defaultSetTimer;
    this.onFault = options.onFault;
    this.onCallFailed = options.onCallFailed;
  }

  // ───────────────────────────── from the kernel ─────────────────────────────

  /** A message for one of this process's ports (a `deliver`); `seq`: see accept(). */
  deliver(port: string, from: Pid, token: number, data: Uint8Array, seq?: number): void {
    if (this.disposed) return;
    if (seq !== undefined && !this.accept(from, seq)) return;
    if (port.startsWith(NOREPLY_PORT)) {
      const c = this.calling;
      if (c && !c.reply && !c.error && port === NOREPLY_PORT + c.token) {
        c.error = Errno.SRCH;
        this.wake();
      } else this.keepEarly(port.slice(NOREPLY_PORT.length), null);
      return;
    }
    if (port.startsWith(REPLY_PORT)) {
      const c = this.calling;
      if (c && !c.reply && !c.error && port === REPLY_PORT + c.token) {
        c.reply = data;
        this.wake();
      } else this.keepEarly(port.slice(REPLY_PORT.length), data);
      return;
    }
    if (!validPortName(port) || data.length > MAX_MESSAGE_BYTES) return;
    let q = this.queues.get(port);
    if (!q) this.queues.set(port, (q = []));
    q.push({ port, from, token: token >>> 0, data, seq: this.seq++ });
    this.queued++;
    this.queuedBytes += data.length;
    while (this.queued > MAILBOX_MAX_MESSAGES || this.queuedBytes > MAILBOX_MAX_BYTES) this.dropOldest();
    this.wake();
  }

  /** Keeps the reply to call `token` if that call is still to be made (see the header); else it is a late or stray one. */
  private keepEarly(tokenText: string, reply: Uint8Array | null): void {
    if (!/^[1-9]\d{0,9}$/.test(tokenText)) return;
    const token = Number(tokenText);
    if (token > MAX_CALL_TOKEN || (reply && reply.length > MAX_MESSAGE_BYTES)) return;
    const ahead = (token - this.nextCallToken + MAX_CALL_TOKEN) % MAX_CALL_TOKEN;
    if (ahead >= EARLY_TOKEN_SPAN || this.early.has(token)) return;
    this.early.set(token, reply);
    if (this.early.size > MAX_EARLY_REPLIES) this.early.delete(this.early.keys().next().value as number);
  }

  /**
   * Whether a delivery numbered `seq` from `from` is new (it is then counted as seen); false for
   * a repeat (a sender restarted from a checkpoint sent it again).
   */
  accept(from: Pid, seq: number): boolean {
    if (!Number.isSafeInteger(seq) || seq < 1) return true; // not numbered: as before
    const last = this.lastSeen.get(from) ?? 0;
    if (seq <= last) return false;
    this.lastSeen.delete(from); // re-inserted last: the map's order is the forgetting order
    this.lastSeen.set(from, seq);
    if (this.lastSeen.size > MAX_SEEN_SENDERS) this.lastSeen.delete(this.lastSeen.keys().next().value as Pid);
    return true;
  }

  /**
   * Whether the process is blocked waiting for a message to `port` now: in recv on it with
   * nothing queued there, or in a call whose reply (or no-reply) port it is. Fork On Wait hands a
   * speculative message over only then: a message merely queued has not influenced anything.
   */
  wants(port: string): boolean {
    if (!this.waiter) return false;
    if (this.receiving !== null) return this.receiving === port && !this.queues.get(port)?.length;
    const c = this.calling;
    return !!c && !c.reply && !c.error && (port === REPLY_PORT + c.token || port === NOREPLY_PORT + c.token);
  }

  /**
   * Forgets that `seq` from `from` (and anything after it) was seen: that message was dropped
   * unread (it depended on a cancelled speculation), and its sender sends it again.
   */
  unaccept(from: Pid, seq: number): void {
    const last = this.lastSeen.get(from);
    if (last !== undefined && last >= seq) this.lastSeen.set(from, seq - 1);
  }

  /** The call the process is blocked in, waiting for its reply (null: none). */
  pendingCall(): PendingCall | null {
    const c = this.calling;
    if (!c || c.reply || c.error || c.to === undefined || c.port === undefined) return null;
    return { token: c.token, to: c.to, port: c.port, timeoutMs: c.timeoutMs ?? -1 };
  }

  /**
   * Answers the pending call `token` now, as if `reply` (errno 0) or the error `errno` had
   * arrived: Fork On Wait's predicted result, or the real one handed to a restored twin.
   */
  settleCall(token: number, reply: Uint8Array | null, errno = 0): boolean {
    const c = this.calling;
    if (!c || c.reply || c.error || c.token !== token) return false;
    if (errno) c.error = errno;
    else c.reply = reply ?? new Uint8Array(0);
    this.wake();
    return true;
  }

  /** Ports with messages waiting. */
  get mailboxPorts(): number {
    return this.queues.size;
  }

  /** Messages waiting in the mailboxes (all ports). */
  get queuedMessages(): number {
    return this.queued;
  }

  /** The process is ending: callers it still owes a reply hear that none will come. */
  abandonCalls(): void {
    if (this.disposed) return;
    for (const [, t] of this.replyTokens) void this.post(t.to, NOREPLY_PORT + t.token, new Uint8Array(0), 0);
    this.replyTokens.clear();
  }

  /** Stops timers and waiting; the process is gone. */
  dispose(): void {
    this.disposed = true;
    this.waiter = null;
    this.receiving = null;
    this.cancelTimer?.();
    this.cancelTimer = null;
  }

  private dropOldest(): void {
    let oldest: [string, Message[]] | undefined;
    for (const e of this.queues) if (e[1].length && (!oldest || e[1][0]!.seq < oldest[1][0]!.seq)) oldest = e;
    const m = oldest?.[1].shift();
    if (!m) return;
    // An empty queue goes: a sender inventing port names must not grow the map for ever.
    if (oldest![1].length === 0) this.queues.delete(oldest![0]);
    this.queued--;
    this.queuedBytes -= m.data.length;
  }

  private wake(): void {
    this.waiter?.();
  }

  // ───────────────────────────── snapshot ─────────────────────────────

  snapshot(): LshapesSnapshot {
    const mailbox = [...this.queues.values()]
      .flat()
      .sort((a, b) => a.seq - b.seq)
      .map((m) => ({ port: m.port, from: m.from, token: m.token, data: m.data.slice() }));
    return {
      version: 1,
      pid: this.pid,
      handles: [...this.handles],
      children: [...this.children],
      nextHandle: this.nextHandle,
      ports: [...this.ports],
      nextPort: this.nextPort,
      mailbox,
      replyTokens: [...this.replyTokens].map(([k, v]) => [k, v.to, v.token]),
      nextReplyToken: this.nextReplyToken,
      nextCallToken: this.nextCallToken,
      calling: this.calling ? { ...this.calling, reply: this.calling.reply?.slice() ?? null } : null,
      sendSeq: this.sendSeq,
      lastSeen: [...this.lastSeen],
      ...(this.early.size ? { early: [...this.early].map(([t, r]): [number, Uint8Array | null] => [t, r?.slice() ?? null]) } : {}),
    };
  }

  restore(state: unknown): void {
    const s = state as LshapesSnapshot;
    if (!s || s.version !== 1 || !Array.isArray(s.handles) || !Array.isArray(s.ports) || !Array.isArray(s.mailbox)) {
      throw new TypeError('not an lshapes snapshot');
    }
    if (s.pid !== this.pid) throw new TypeError(`lshapes snapshot of process ${s.pid}, not ${this.pid}`);
    this.handles = new Map(s.handles);
    this.handleOf = new Map(s.handles.map(([h, p]) => [p, h]));
    this.children = new Set(s.children);
    this.nextHandle = s.nextHandle;
    this.ports = new Map(s.ports);
    this.portNames = new Map(s.ports.map(([n, p]) => [p, n]));
    this.nextPort = s.nextPort;
    this.queues.clear();
    this.queued = 0;
    this.queuedBytes = 0;
    this.seq = 0;
    for (const m of s.mailbox) this.deliver(m.port, m.from, m.token, m.data);
    this.replyTokens = new Map(s.replyTokens.map(([k, to, token]) => [k, { to, token }]));
    this.nextReplyToken = s.nextReplyToken;
    this.nextCallToken = s.nextCallToken;
    this.calling = s.calling ? { ...s.calling } : null;
    this.sendSeq = Number.isSafeInteger(s.sendSeq) ? s.sendSeq! : 0;
    this.lastSeen = new Map(Array.isArray(s.lastSeen) ? s.lastSeen : []);
    this.early = new Map(Array.isArray(s.early) ? s.early : []);
    // A call blocked in the instance this state replaces must not wake into the restored one.
    this.waiter = null;
    this.receiving = null;
    this.cancelTimer?.();
    this.cancelTimer = null;
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

  private invoke(name: string, call: () => number | Promise<number>): HostResult {
    try {
      const r = call();
      if (typeof r === 'number') return r;
      return r.catch((e: unknown) => this.errno(name, e));
    } catch (e) {
      return this.errno(name, e);
    }
  }

  private errno(name: string, e: unknown): number {
    if (e instanceof Fault) {
      this.onFault?.(name, e);
      return Errno.FAULT;
    }
    if (e instanceof Invalid) return Errno.INVAL;
    throw e;
  }

  private target(handle: number): Pid | undefined {
    if (handle === 0) return this.parent;
    return this.handles.get(handle);
  }

  private handleFor(pid: Pid): number {
    if (pid === this.parent) return 0;
    let h = this.handleOf.get(pid);
    if (h === undefined) {
      h = this.nextHandle++;
      this.handles.set(h, pid);
      this.handleOf.set(pid, h);
    }
    return h;
  }

  /**
   * Blocks until `attempt` gives an answer (it is tried whenever something arrives), or the
   * timeout (< 0: none) passes: then `onTimeout`.
   */
  private block(timeoutMs: number, attempt: () => number | null, onTimeout: () => number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const done = (f: () => number): void => {
        this.waiter = null;
        this.receiving = null;
        this.cancelTimer?.();
        this.cancelTimer = null;
        try {
          resolve(f());
        } catch (e) {
          reject(e);
        }
      };
      this.waiter = () => {
        let r: number | null;
        try {
          r = attempt();
        } catch (e) {
          done(() => {
            throw e;
          });
          return;
        }
        if (r !== null) done(() => r);
      };
      if (timeoutMs >= 0) this.cancelTimer = this.setTimer(timeoutMs, () => done(onTimeout));
    });
  }

  /** Posts a send; resolves with its errno (0, or the kernel's error). Counts it for flow control. */
  private post(to: Pid, port: string, data: Uint8Array, token: number): Promise<number> {
    this.inflight++;
    this.inflightBytes += data.length;
    return this.request({ op: 'send', to, port, data, token, seq: ++this.sendSeq }).then(
      (r) => {
        this.inflight--;
        this.inflightBytes -= data.length;
        this.wake();
        return r.ok ? 0 : errnoOf(r.errno);
      },
      () => {
        this.inflight--;
        this.inflightBytes -= data.length;
        this.wake();
        return Errno.IO;
      },
    );
  }

  private congested(): boolean {
    return this.inflight >= MAX_INFLIGHT_SENDS || this.inflightBytes >= MAX_INFLIGHT_BYTES;
  }

  /** Sends now, or once the kernel has taken enough of the earlier sends. */
  private sendWhenRoom(to: Pid, port: string, data: Uint8Array): number | Promise<number> {
    if (!this.congested()) {
      void this.post(to, port, data, 0);
      return 0;
    }
    return this.block(
      -1,
      () => {
        if (this.congested()) return null;
        void this.post(to, port, data, 0);
        return 0;
      },
      () => 0,
    );
  }

  private calls(m: Mem): Record<string, (...args: (number | bigint)[]) => number | Promise<number>> {
    type A = number | bigint;
    const self = this;
    const bytes = (ptr: A, len: A): Uint8Array => m.bytes(u32(ptr), u32(len));
    const str = (ptr: A, len: A): string => utf8(bytes(ptr, len));
    const portName = (ptr: A, len: A): string | null => {
      const n = u32(len);
      if (n < 1 || n > MAX_PORT_NAME) return null;
      let name: string;
      try {
        name = str(ptr, len);
      } catch (e) {
        if (e instanceof Invalid) return null;
        throw e;
      }
      return validPortName(name) ? name : null;
    };
    const writeString = (s: string, buf: A, cap: A, lenOut: A): number => {
      const b = encoder.encode(s);
      m.check(u32(lenOut), 4);
      if (u32(cap) < b.length) {
        m.setU32(u32(lenOut), b.length);
        return Errno.NOBUFS;
      }
      m.write(u32(buf), b);
      m.setU32(u32(lenOut), b.length);
      return Errno.SUCCESS;
    };
    /** Asks the kernel; `ok` handles a successful reply (of the request's op, else EIO). */
    const ask = async (req: KernelRequest, ok: (r: Extract<KernelReply, { ok: true }>) => number): Promise<number> => {
      const r = await self.request(req);
      if (!r.ok) return errnoOf(r.errno);
      if (r.op !== req.op) return Errno.IO;
      return ok(r);
    };

    return {
      getpid(buf, cap, lenOut) {
        return writeString(self.pid, buf, cap, lenOut);
      },

      peer_id(buf, cap, lenOut) {
        return writeString(self.peer, buf, cap, lenOut);
      },

      cluster_info(peersOut, slotsOut) {
        m.check(u32(peersOut), 4);
        m.check(u32(slotsOut), 4);
        return ask({ op: 'cluster_info' }, (r) => {
          if (r.op !== 'cluster_info') return Errno.IO;
          m.setU32(u32(peersOut), r.peers);
          m.setU32(u32(slotsOut), r.slots);
          return Errno.SUCCESS;
        });
      },

      spawn(name, nameLen, argv, argvLen, peer, peerLen, handleOut) {
        m.check(u32(handleOut), 4);
        const program = str(name, nameLen);
        if (u32(argvLen) > MAX_ARGV_BYTES) return Errno.INVAL;
        const raw = bytes(argv, argvLen);
        if (raw.length > 0 && raw[raw.length - 1] !== 0) return Errno.INVAL;
        const args: string[] = [];
        let at = 0;
        while (at < raw.length) {
          const end = raw.indexOf(0, at);
          args.push(utf8(raw.subarray(at, end)));
          at = end + 1;
        }
        const where = str(peer, peerLen);
        const req: KernelRequest = { op: 'spawn', name: program, args };
        if (where !== '') req.peer = where;
        return ask(req, (r) => {
          if (r.op !== 'spawn') return Errno.IO;
          const h = self.handleFor(r.child);
          self.children.add(h);
          m.setU32(u32(handleOut), h);
          return Errno.SUCCESS;
        });
      },

      wait(handle, codeOut, timeoutMs) {
        m.check(u32(codeOut), 4);
        const h = i32(handle);
        const child = self.children.has(h) ? self.handles.get(h) : undefined;
        if (child === undefined) return Errno.CHILD;
        const t = i32(timeoutMs);
        return ask({ op: 'wait', child, timeoutMs: t < 0 ? -1 : t }, (r) => {
          if (r.op !== 'wait') return Errno.IO;
          m.setU32(u32(codeOut), r.code);
          return Errno.SUCCESS;
        });
      },

      kill(handle) {
        const target = self.target(i32(handle));
        if (target === undefined) return Errno.SRCH;
        return ask({ op: 'kill', target }, () => Errno.SUCCESS);
      },

      port_open(name, nameLen, portOut) {
        m.check(u32(portOut), 4);
        const n = portName(name, nameLen);
        if (n === null) return Errno.INVAL;
        let port = self.ports.get(n);
        if (port === undefined) {
          port = self.nextPort++;
          self.ports.set(n, port);
          self.portNames.set(port, n);
        }
        m.setU32(u32(portOut), port);
        return Errno.SUCCESS;
      },

      send(to, port, portLen, data, dataLen) {
        const pid = self.target(i32(to));
        if (pid === undefined) return Errno.SRCH;
        const n = portName(port, portLen);
        if (n === null) return Errno.INVAL;
        if (u32(dataLen) > MAX_MESSAGE_BYTES) return Errno.MSGSIZE;
        return self.sendWhenRoom(pid, n, bytes(data, dataLen));
      },

      recv(port, buf, cap, lenOut, fromOut, tokenOut, timeoutMs) {
        for (const p of [lenOut, fromOut, tokenOut]) m.check(u32(p), 4);
        m.check(u32(buf), Math.min(u32(cap), MAX_MESSAGE_BYTES));
        const name = self.portNames.get(i32(port));
        if (name === undefined) return Errno.BADF;
        const attempt = (): number | null => {
          const q = self.queues.get(name);
          const msg = q?.[0];
          if (!q || !msg) return null;
          m.setU32(u32(lenOut), msg.data.length);
          if (msg.data.length > u32(cap)) return Errno.NOBUFS;
          m.write(u32(buf), msg.data);
          let token = 0;
          if (msg.token !== 0) {
            token = self.nextReplyToken;
            self.nextReplyToken = (self.nextReplyToken % 0x7fffffff) + 1;
            self.replyTokens.set(token, { to: msg.from, token: msg.token });
            // Calls never answered pile up: past the bound the oldest caller hears "no reply".
            if (self.replyTokens.size > MAX_REPLY_TOKENS) {
              const [old, t] = self.replyTokens.entries().next().value!;
              self.replyTokens.delete(old);
              void self.post(t.to, NOREPLY_PORT + t.token, new Uint8Array(0), 0);
            }
          }
          m.setU32(u32(fromOut), self.handleFor(msg.from));
          m.setU32(u32(tokenOut), token);
          q.shift();
          if (q.length === 0) self.queues.delete(name);
          self.queued--;
          self.queuedBytes -= msg.data.length;
          return Errno.SUCCESS;
        };
        const now = attempt();
        if (now !== null) return now;
        const t = i32(timeoutMs);
        if (t === 0) return Errno.TIMEDOUT;
        const blocked = self.block(t, attempt, () => Errno.TIMEDOUT);
        self.receiving = name;
        return blocked;
      },

      call(to, port, portLen, data, dataLen, buf, cap, lenOut, timeoutMs) {
        m.check(u32(lenOut), 4);
        m.check(u32(buf), Math.min(u32(cap), MAX_MESSAGE_BYTES));
        // A call already in flight: this instance was restored from a snapshot taken while the
        // thread waited for the reply. The message went out then; wait for the reply again.
        if (!self.calling) {
          const pid = self.target(i32(to));
          if (pid === undefined) return Errno.SRCH;
          const n = portName(port, portLen);
          if (n === null) return Errno.INVAL;
          if (u32(dataLen) > MAX_MESSAGE_BYTES) return Errno.MSGSIZE;
          const payload = bytes(data, dataLen);
          const token = self.nextCallToken;
          self.nextCallToken = (self.nextCallToken % MAX_CALL_TOKEN) + 1;
          const c: Calling = { token, reply: null, error: 0, to: pid, port: n, timeoutMs: i32(timeoutMs) };
          self.calling = c;
          // Answered already (an early reply, see the header): the callee drops this call as a repeat.
          if (self.early.has(token)) {
            const r = self.early.get(token)!;
            self.early.delete(token);
            if (r) c.reply = r;
            else c.error = Errno.SRCH;
          }
          void self.post(pid, n, payload, token).then((errno) => {
            if (errno === 0) return;
            if (self.calling === c && !c.reply && !c.error) {
              c.error = errno;
              self.wake();
            } else if (self.calling !== c) {
              // settled early by a prediction: the real result is this failure
              self.onCallFailed?.(token, errno);
            }
          });
        }
        const c = self.calling!;
        const attempt = (): number | null => {
          if (c.error) {
            self.calling = null;
            return c.error;
          }
          if (!c.reply) return null;
          self.calling = null;
          const r = c.reply;
          m.write(u32(buf), r.subarray(0, Math.min(r.length, u32(cap))));
          m.setU32(u32(lenOut), r.length);
          return Errno.SUCCESS;
        };
        const now = attempt();
        if (now !== null) return now;
        return self.block(i32(timeoutMs), attempt, () => {
          self.calling = null;
          return Errno.TIMEDOUT;
        });
      },

      reply(token, data, dataLen) {
        const t = self.replyTokens.get(i32(token));
        if (!t) return Errno.INVAL;
        if (u32(dataLen) > MAX_MESSAGE_BYTES) return Errno.MSGSIZE;
        const payload = bytes(data, dataLen);
        self.replyTokens.delete(i32(token));
        return self.sendWhenRoom(t.to, REPLY_PORT + t.token, payload);
      },
    };
  }
}

/** A KernelErrno name ('ESRCH') as its WASI number. */
export function errnoOf(name: string): number {
  const n = (Errno as Record<string, number>)[name.replace(/^E/, '')];
  return n ?? Errno.IO;
}
