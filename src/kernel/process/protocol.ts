// The contract between the Scheduler (in the kernel) and an executor: the place where processes
// actually run (a tab's execution Web Worker, a Node worker thread, or in-process in tests and the
// CLI). Messages are plain structured-cloneable data, so the same contract works over postMessage
// and by direct call. The executor owns the running threads, their WASI state and mailboxes; the
// Scheduler owns the process table and everything that crosses peers.
import type { FsReply, FsRequest } from '../wasi/remote-fs.ts';
import type { NodeId } from '../wasi/vfs.ts';

/** Cluster-unique process id: `<6 hex naming the birth peer's boot>.<n>`, e.g. `4f2a1c.3`. Never changes. */
export type Pid = string;

export type ProcessState = 'READY' | 'RUNNING' | 'WAITING' | 'WAIT_CONFIRM' | 'STOPPED' | 'MIGRATING' | 'EXITED';

/**
 * Fork On Wait for a process: 'off' never speculates; 'on' speculates where the per-site
 * predictor is confident; 'mispredict' (a test mode) speculates at every predictable wait with a
 * deliberately wrong value, so every speculation is rolled back.
 */
export type SpeculationMode = 'off' | 'on' | 'mispredict';

/** One speculation, cluster-unique: `<pid>~<n>`. */
export type SpecId = string;

/** Fork On Wait counters of a process (or summed over a peer's processes). */
export interface SpeculationStats {
  /** Speculations outstanding now: the process runs in WAIT_CONFIRM with this many STOPPED twins. */
  depth: number;
  /** Speculations started (forks at a predicted wait). */
  predictions: number;
  /** Confirmed by the real result. */
  hits: number;
  /** Cancelled (misprediction, or a speculation it depended on failed): the twin resumed. */
  rollbacks: number;
  /** Milliseconds of waiting hidden: for each hit, fork → real result. */
  savedMs: number;
}

/** What the executor needs to start a process. */
export interface ProcessSpec {
  pid: Pid;
  /** The peer it runs on (what `lshapes.peer_id` answers). */
  peer: string;
  /** The program's name as the user gave it ("primes"), for ps and messages. */
  name: string;
  /** SHA-256 (hex) of the original module bytes: the rewrite cache key. */
  hash: string;
  /** The original module, or nothing when `rewritten` is given. */
  module?: Uint8Array;
  /** The module already rewritten for this runtime (from this peer's cache). */
  rewritten?: Uint8Array;
  /** argv, argv[0] (the program name) included. */
  args: string[];
  env: Record<string, string>;
  /** True when the process has a parent process (handle 0 names it). */
  hasParent: boolean;
  /** The parent's pid, when `hasParent` (what handle 0 sends to, kills, and how the parent's messages are recognized). */
  parent?: Pid;
  /** Stdin is fed by `stdin` messages (a terminal); otherwise it is empty. */
  interactiveStdin: boolean;
  /**
   * Flow control of stdout/stderr: once this many bytes are posted and not yet acknowledged by
   * `out.ack`, the process's next write blocks until half of them are. Absent: no limit.
   */
  outputWindow?: number;
  /** Fork On Wait for this process (absent: 'off'). */
  speculation?: SpeculationMode;
}

/** What a process asks of the Scheduler through the `lshapes` imports. */
export type KernelRequest =
  /** `name` '' = the caller's own program; `args` are the arguments after argv[0]; `peer` absent = Scheduler's choice. */
  | { op: 'spawn'; name: string; args: string[]; peer?: string }
  /** `timeoutMs` < 0: no timeout (the Scheduler times the wait). */
  | { op: 'wait'; child: Pid; timeoutMs: number }
  | { op: 'kill'; target: Pid }
  /**
   * Deliver `data` to port `port` of `to` (as a `deliver` with `from` = the caller, same `token`).
   * `token` is non-zero for a `call`; a reply goes to the port `#reply:<token>` of the caller.
   * Port names starting with `#` come only from the runtime. Sends of one process are posted in
   * order and must be delivered in that order.
   */
  | {
      op: 'send';
      to: Pid;
      port: string;
      data: Uint8Array;
      token: number;
      /** Per-sender sequence number (from 1): a receiver drops a repeat (a sender restarted from a checkpoint). */
      seq?: number;
      /** The speculations the sender depends on: the receiver becomes dependent on them too. */
      deps?: SpecId[];
    }
  | { op: 'cluster_info' };

/** Errors use WASI errno names; the executor maps them to numbers. */
export type KernelErrno = 'ENOENT' | 'EHOSTUNREACH' | 'ENOEXEC' | 'EINVAL' | 'ECHILD' | 'ETIMEDOUT' | 'ESRCH' | 'EMSGSIZE' | 'EAGAIN';

export type KernelReply =
  | { ok: true; op: 'spawn'; child: Pid }
  | { ok: true; op: 'wait'; code: number }
  | { ok: true; op: 'kill' }
  | { ok: true; op: 'send' }
  | { ok: true; op: 'cluster_info'; peers: number; slots: number }
  | { ok: false; errno: KernelErrno; message: string };

/** Scheduler → executor. */
export type ToExecutor =
  | { t: 'start'; spec: ProcessSpec }
  | { t: 'stdin'; pid: Pid; data: Uint8Array }
  | { t: 'stdin.end'; pid: Pid }
  /** Stop the process now; it exits with 137 and `reason` as its message. */
  | { t: 'kill'; pid: Pid; reason: string }
  /** The answer to the process's `call` number `call`. */
  | { t: 'reply'; pid: Pid; call: number; reply: KernelReply }
  /** The terminal has taken `bytes` more of the process's output (see ProcessSpec.outputWindow). */
  | { t: 'out.ack'; pid: Pid; bytes: number }
  /** A message for one of the process's ports. `from` is the sender's pid. */
  | { t: 'deliver'; pid: Pid; port: string; from: Pid; token: number; data: Uint8Array; seq?: number; deps?: SpecId[] }
  /** A speculation ended: `ok` committed, otherwise cancelled. Sent to executors with dependents of it. */
  | { t: 'spec.resolved'; id: SpecId; ok: boolean }
  /**
   * Take a checkpoint: the process image as for `freeze`, but the process goes on running.
   * Answered by `checkpointed` or `checkpoint.failed` (blocked in spawn, speculating, exited).
   */
  | { t: 'checkpoint'; pid: Pid }
  /**
   * The cluster filesystem is reachable by `fs` requests; `root` is its root node. Processes
   * started after it see it at /cluster. Hosts of executors in workers send it first thing.
   */
  | { t: 'files'; root: NodeId }
  /** The answer to the executor's `fs` request number `call`. */
  | { t: 'fs.reply'; call: number; reply: FsReply }
  /**
   * Migration, first half: stop the process at its next safe point (between two slices, or
   * blocked in a host call), post its pending output, then answer `frozen` (the process image;
   * the executor forgets the process) or `freeze.failed` (it goes on here as if nothing
   * happened). A process blocked in `spawn` is not frozen: a re-issued spawn would start a
   * second child. Messages for the pid that arrive after the freeze are dropped: keep them
   * (stdin, out.ack, deliver, reply) and send them to the executor that thaws it.
   */
  | { t: 'freeze'; pid: Pid }
  /**
   * Migration, second half: continue a frozen process from its image (`frozen`). `spec` is the
   * process's spec as for `start` (same pid, hash, args, interactiveStdin, outputWindow; the
   * module or rewritten bytes; `peer` the new peer). Then it behaves like a started process: a
   * `state` first, or only `exit` code 1 with the reason when the image is refused (truncated,
   * corrupt, another version, another program or pid) or the program cannot load. `checked`:
   * the host verified the image's checksum already (a migration's target, before it said ready),
   * so the executor does not hash it again while the process stands still.
   */
  | { t: 'thaw'; spec: ProcessSpec; image: Uint8Array; checked?: boolean }
  /**
   * Rewrite (Asyncify) and compile the program of `hash` now, ahead of a `start` or `thaw` of it
   * here: a process pre-copying to this peer thaws without paying for it. Answered by `rewritten`
   * (even if announced before); a broken module is not answered: its start reports it.
   */
  | { t: 'prepare'; hash: string; module: Uint8Array };

/** Executor → Scheduler. */
export type FromExecutor =
  /** The rewritten module for `hash`, so the next start of it skips the rewrite. */
  | { t: 'rewritten'; hash: string; bytes: Uint8Array }
  /**
   * State changes and CPU time (milliseconds of slices run). The first message about a started
   * process is a `state` once its module is loaded (a failed load gives only `exit` code 1).
   * Then sent on WAITING ↔ READY/RUNNING changes and at most every ~250 ms otherwise. EXITED is
   * reported by `exit`.
   */
  | { t: 'state'; pid: Pid; state: ProcessState; cpuMs: number; spec?: SpeculationStats }
  /** Output; `at` is the offset of its first byte in the process's whole output (stdout and stderr together). */
  | { t: 'out'; pid: Pid; fd: 1 | 2; data: Uint8Array; at: number }
  /** A speculation of process `pid` ended (`ok`: committed): tell every dependent of it. */
  | { t: 'spec.resolved'; pid: Pid; id: SpecId; ok: boolean }
  /** Something refused or odd, for the peer's log (e.g. a resolution for an unknown speculation). */
  | { t: 'notice'; pid: Pid; text: string }
  | { t: 'checkpointed'; pid: Pid; image: Uint8Array; cpuMs: number }
  | { t: 'checkpoint.failed'; pid: Pid; reason: string }
  /** The process ended. `message` says why when it did not simply exit (trap, bad module, killed). Sent after all its `out`. */
  | { t: 'exit'; pid: Pid; code: number; message?: string; cpuMs: number }
  /** A request from the process's `lshapes` imports; answered by a `reply` with the same `call`. */
  | { t: 'call'; pid: Pid; call: number; req: KernelRequest }
  /**
   * One operation of process `pid` on the cluster filesystem; answered by an `fs.reply` with the
   * same `call` (unique per executor), even after the process has exited. retain/release are
   * answered too, but nothing waits for those answers.
   */
  | { t: 'fs'; pid: Pid; call: number; req: FsRequest }
  /**
   * The answer to `freeze`: the process image (image.ts; decode with decodeImage). Every `out`,
   * `call` and `state` of the process posted before it came first; after it the executor has
   * forgotten the process and sends nothing more about it: no output, no exit, no state, no
   * calls. Answers to calls it had posted are dropped here (a call it was blocked in is issued
   * again after the thaw); `send`s posted before count as sent.
   */
  | { t: 'frozen'; pid: Pid; image: Uint8Array; cpuMs: number }
  /**
   * The answer to `freeze` when the process cannot be frozen: unknown pid, blocked in spawn,
   * already exited (then after its `exit`), or the image could not be taken. Apart from an exit,
   * the process goes on running here.
   */
  | { t: 'freeze.failed'; pid: Pid; reason: string };

/** Exit codes with a fixed meaning (docs/abi.md). */
export const EXIT_CANNOT_START = 1;
export const EXIT_TRAPPED = 134;
export const EXIT_KILLED = 137;
/** A bad pointer was passed to a WASI call (docs/abi.md). */
export const EXIT_SEGFAULT = 139;

/** How the kernel reaches its executors. A host without one runs no processes. */
export interface ExecutionDriver {
  /** How many executors (execution workers) this host has: its execution slots. */
  readonly count: number;
  post(executor: number, msg: ToExecutor): void;
  /** Called once by the Scheduler. */
  attach(onMessage: (executor: number, msg: FromExecutor) => void): void;
}
