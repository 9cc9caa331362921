// The executor side of the Scheduler ↔ executor protocol (protocol.ts): loads programs, runs
// their threads round-robin in time slices, and talks to the Scheduler only by messages.
// Host-agnostic (no DOM, no node:*): a tab's execution worker, a Node worker thread and
// InProcessExecution all wrap one of these.
//
//   start    → rewrite (or load the rewritten bytes), instantiate with WASI + lshapes, READY
//   the loop → one slice of the next READY thread, flush its output, report, yieldToHost(), ...
//   blocked  → WAITING until the host call's Promise settles, then READY again
//   the end  → its `out` flushed, then `exit` (code and message), then everything about it dropped
//   freeze   → at its next safe point (between slices or blocked), `out` flushed, the process
//              image taken (image.ts), the process dropped, `frozen` posted; a speculating
//              process quiesces first (forks no more until its open speculation settled, bounded)
//   thaw     → like start, but the thread, /tmp, stdin and flow control come from an image
//   checkpoint → the same image as freeze, but the process goes on here
//
// Fork On Wait (DESIGN.md; docs/speculation.md; the bookkeeping is speculation/speculation.ts):
// a process with spec.speculation 'on' or 'mispredict' that blocks in an lshapes call (no
// timeout) or in the replica wait of an fsync on /cluster may be forked: its twin (thread
// snapshot, /tmp, a stdin mark) is kept STOPPED, and the running copy goes on with a predicted
// result (WAIT_CONFIRM). The real result confirms it (the twin is dropped) or cancels it (the
// twin is restored and gets the real result). Any process that receives a message carrying
// `deps` becomes dependent on them (a twin is taken before the delivery). While a process
// depends on anything, its output and exit are held, its /cluster mutations, spawn, wait, kill
// and cluster_info stall, and its sends carry its dependencies. Output carries `at`, sends
// carry `seq`. Where to fork is the predictor's call (speculation/predictor.ts); it is told the
// waits, forks and rollbacks timed here.
//
// Nothing a program does throws out of here or stops another process: bad modules end with 1,
// traps with 134, bad pointers passed to WASI with 139, kills with 137.
//
// Files: every process sees `/` = the sample files (read-only, one copy shared by all), `/tmp` =
// its own empty in-memory filesystem, and `/cluster` = the cluster filesystem when the executor
// has one: given directly (`files`, in-process executors), or reached by `fs` messages to the
// Scheduler once a `files` message named its root (executors in workers).

import { Namespace, type FileSystem, type NodeId } from '../wasi/vfs.ts';
import { MemFs, memfsFrom } from '../wasi/memfs.ts';
import { MUTATING_FS_OPS, RemoteFileSystem, serveFileSystem, type FsCall, type FsReply, type FsRequest } from '../wasi/remote-fs.ts';
import { Wasi } from '../wasi/preview1.ts';
import type { WasiClock } from '../wasi/clock.ts';
import { Errno, FsError } from '../wasi/errno.ts';
import { QueueInput, emptyInput, type InputStream, type OutputStream } from '../wasi/streams.ts';
import { SnapshotError, WasmLinkError, WasmLoadError, describe } from '../wasm/errors.ts';
import { ProcessExit, type HostModule } from '../wasm/host-calls.ts';
import { loadRewritten, rewriteModule } from '../wasm/rewrite.ts';
import { WasmThread, type RestoreOptions, type RunResult } from '../wasm/thread.ts';
import type { RewrittenModule } from '../wasm/types.ts';
import { Predictor, type PredictorOptions } from '../speculation/predictor.ts';
import {
  ProcSpeculation,
  ResolvedIds,
  originOf,
  sameResult,
  twinBytes,
  type Delivery,
  type Level,
  type LevelKind,
  type OwnSpec,
  type Twin,
  type WaitResult,
} from '../speculation/speculation.ts';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { ImageError, captureTmp, decodeImage, encodeImage, imageSum, openTmpNodes, rebuildTmp, remapTmpFds, type ProcessImage } from './image.ts';
import { LshapesHost, NOREPLY_PORT } from './lshapes.ts';
import {
  EXIT_CANNOT_START,
  EXIT_KILLED,
  EXIT_SEGFAULT,
  EXIT_TRAPPED,
  type FromExecutor,
  type KernelReply,
  type Pid,
  type ProcessSpec,
  type ProcessState,
  type SpecId,
  type SpeculationMode,
  type SpeculationStats,
  type ToExecutor,
} from './protocol.ts';
import { SAMPLE_FILES } from './sample-files.ts';

export interface ExecutorOptions {
  /** To the Scheduler. Called synchronously from handle() and from the run loop. */
  post(msg: FromExecutor): void;
  /** Milliseconds, for slices and CPU time (performance, or the simulator's clock). */
  clock: { now(): number };
  /** Lets the host deliver messages (kill, stdin, replies) between two slices. */
  yieldToHost(): Promise<void>;
  /** Length of a time slice in ms (default 10). */
  sliceMs?: number;
  /** Cap on a process's linear memory (default 512 MiB): memory.grow fails beyond it. */
  maxMemoryBytes?: number;
  /**
   * The files a process sees, replacing the standard layout (samples at `/`, a fresh `/tmp`,
   * the cluster filesystem at `/cluster`). Tests and the CLI use it.
   */
  namespace?: (spec: ProcessSpec) => Namespace;
  /**
   * The cluster filesystem itself, mounted at `/cluster` (executors on the kernel's own thread).
   * Executors in workers have none: they reach it by `fs` messages after a `files` message.
   */
  files?: FileSystem;
  /** Random bytes for WASI random_get (default crypto.getRandomValues). */
  random?: (buf: Uint8Array<ArrayBuffer>) => void;
  /** WASI clocks and sleeping (default the host's: performance.now and setTimeout). */
  wasiClock?: WasiClock;
  /** Timers for recv/call timeouts and deferred state reports (default setTimeout). */
  setTimer?: (ms: number, fn: () => void) => () => void;
  /** Minimum gap between two `state` reports of a process (default 250 ms; WAITING ↔ READY: 20 ms). */
  stateIntervalMs?: number;
  /**
   * SHA-256 for the rewrite cache (default @noble/hashes; hosts may pass WebCrypto), and for the
   * checksum of a frozen process's image: given, it is hashed after the freeze instead of inside
   * it, in JavaScript (a migration's downtime: several times slower than WebCrypto).
   */
  sha256?: (bytes: Uint8Array) => Promise<Uint8Array> | Uint8Array;
  /** Fork On Wait bounds and the predictor's tuning. */
  speculation?: SpeculationOptions;
}

export interface SpeculationOptions {
  /** Levels (own speculations and dependencies) a process may have open; beyond, it just waits (default 32). */
  maxLevels?: number;
  /** Bytes all twins of this executor may hold; beyond, no more forks (default 256 MiB). */
  maxTwinBytes?: number;
  predictor?: PredictorOptions<WaitResult>;
}

const DEFAULT_SLICE_MS = 10;
const DEFAULT_MAX_MEMORY = 512 << 20;
/** CPU-time-only reports: often enough for a live panel, rare enough to cost nothing. */
const DEFAULT_STATE_INTERVAL = 250;
/** Output buffered beyond this is posted before the slice ends. */
const OUT_FLUSH_BYTES = 64 << 10;
/** Rewritten modules compiled from `spec.rewritten`, by hash. */
const LOADED_LIMIT = 32;
const DEFAULT_MAX_LEVELS = 32;
const DEFAULT_MAX_TWIN_BYTES = 256 << 20;
/** Output a speculating process may hold before its writes wait for the commit. */
const HELD_OUTPUT_LIMIT = 1 << 20;
/**
 * How long a freeze or checkpoint of a speculating process waits for its open speculation to
 * settle (quiescing, docs/speculation.md). Settling takes the real results of the open levels:
 * a round trip or a replica wait, milliseconds. Seconds without them mean a peer gone quiet or a
 * dependency whose owner is stuck; the process must not go on unspeculated for that long, and the
 * Dispatcher's freeze bound (FREEZE_TIMEOUT_MS, 10 s) leaves room for it to try again.
 */
export const QUIESCE_TIMEOUT_MS = 2_000;
const REPLY_PORT = '#reply:';
const EMPTY = new Uint8Array(0);
const MISPREDICTED = new TextEncoder().encode('\u0000lshapes: mispredicted reply');

/** 'EXIT_HELD': a speculative copy ended; the exit is posted once what it depends on commits. */
type Phase = 'loading' | 'READY' | 'RUNNING' | 'WAITING' | 'EXIT_HELD' | 'EXITED';

interface Proc {
  readonly spec: ProcessSpec;
  readonly pid: Pid;
  readonly mode: SpeculationMode;
  phase: Phase;
  thread: WasmThread | null;
  /** The loaded program (a rollback restores a twin into a new instance of it). */
  module: RewrittenModule | null;
  /**
   * The host modules of the current instance (a rollback makes new ones: callbacks of the old
   * instance must not reach the restored one). Null while loading.
   */
  lshapes: LshapesHost | null;
  wasi: Wasi | null;
  reader: (InputStream & { detach(): void }) | null;
  readonly stdin: QueueInput | null;
  /** Output not posted yet, in order. */
  out: { fd: 1 | 2; data: Uint8Array }[];
  outBytes: number;
  /** Output posted and not acknowledged yet, and the most allowed (0: no flow control). */
  unacked: number;
  readonly window: number;
  /** Writers blocked until acknowledgements bring `unacked` down. */
  ackWaiters: (() => void)[];
  cpuMs: number;
  /** What the Scheduler was last told. */
  shown: ProcessState | null;
  shownCpu: number;
  shownAt: number;
  /** The state to report: RUNNING after a slice it yielded, READY when woken, WAITING when blocked. */
  state: ProcessState;
  nextCall: number;
  readonly calls: Map<number, (reply: KernelReply) => void>;
  /** A kill that arrived while the thread was running (handle() called from inside a slice). */
  pendingKill: string | null;
  /** Set when a WASI call got a bad pointer: the exit message. */
  fault: string | null;
  maxMemoryBytes: number;
  /** Its view of the cluster filesystem: what it still holds is released when it ends. */
  cluster: RemoteFileSystem | null;
  /** Its private /tmp (null with a custom namespace). */
  tmp: MemFs | null;
  /** A `freeze` is waiting for the next safe point. */
  freezing: boolean;
  /** A `checkpoint` is waiting for the next safe point. */
  checkpointing: boolean;
  /** Slices that ended blocked: a freeze's wait for a result already on its way is per block. */
  blocks: number;
  /**
   * The freeze of a blocked thread waits a macrotask for a result already on its way: the block
   * (a `blocks` count) it waits in, and whether that macrotask has passed.
   */
  settle: { block: number; done: boolean } | null;
  /**
   * Quiescing: a freeze or checkpoint waits for its open speculation to settle (no new forks
   * meanwhile); cancels the QUIESCE_TIMEOUT_MS bound. Null when not quiescing.
   */
  quiesce: (() => void) | null;
  /** Offset of the next output byte posted (`out.at`). */
  outAt: number;
  /** Fork On Wait: levels, held output, logged deliveries, counters. */
  readonly sp: ProcSpeculation;
  /**
   * Deliveries not handed to the mailbox yet, in order: while it loads or is rolled back, or
   * one that makes it dependent and waits for a safe point to take the twin.
   */
  deferred: Delivery[];
  /** A twin is being restored (async): like loading. */
  restoring: boolean;
  /** A rollback waiting for the slice (or the restore) to end. */
  pendingRollback: { level: Level; real?: WaitResult | undefined } | null;
  /** The exit of a speculative copy, posted at commit. */
  heldExit: { code: number; message?: string | undefined } | null;
  /**
   * Blocked in a predictable call while the level (or twin memory) bound said no, or while its
   * site's probe is out (predictor.ts): it forks as soon as a level goes, instead of waiting a
   * whole round trip for its reply.
   */
  forkLater: boolean;
  /** Clock time its last slice ended blocked: an unspeculated call's wait, for the predictor. */
  blockedAt: number;
  /** /cluster mutations in flight (no dependency twin is taken meanwhile: a re-issue could repeat one). */
  fsMutations: number;
  pumping: boolean;
  shownDepth: number;
  shownStats: string;
}

function defaultSetTimer(ms: number, fn: () => void): () => void {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
}

function mib(bytes: number): string {
  const m = bytes / (1 << 20);
  return `${Number.isInteger(m) ? m : m.toFixed(1)} MiB`;
}

export class Executor {
  private readonly opts: ExecutorOptions;
  private readonly sliceMs: number;
  private readonly maxMemoryBytes: number;
  private readonly stateInterval: number;
  private readonly setTimer: (ms: number, fn: () => void) => () => void;
  private readonly procs = new Map<Pid, Proc>();
  private readonly ready: Proc[] = [];
  private readonly dirty = new Set<Proc>();
  private looping = false;
  private reportTimer: (() => void) | null = null;
  private readonly loaded = new Map<string, Promise<RewrittenModule>>();
  private readonly announced = new Set<string>();
  /** The sample files, read-only and shared by every process (built on first use). */
  private samples: MemFs | null = null;
  /** How a process reaches the cluster filesystem, and its root; null: no cluster filesystem. */
  private clusterFs: { call: (pid: Pid) => FsCall; root: NodeId } | null = null;
  private nextFsCall = 1;
  /** `fs` requests posted and not answered yet, by call number. */
  private readonly fsCalls = new Map<number, (reply: FsReply) => void>();
  private readonly maxLevels: number;
  private readonly maxTwinBytes: number;
  /** Bytes held by all twins. */
  private twinTotal = 0;
  /** Per program and wait site: what the wait returned, and how sure we are it repeats. */
  private readonly predictor: Predictor<WaitResult>;
  /** The last real result per site (what 'mispredict' mode alters). */
  private readonly lastResult = new Map<string, WaitResult>();
  private readonly resolved = new ResolvedIds();
  /** Ids deliveries here carried lately: a resolution of one is not "unknown" even if nothing depends on it any more. */
  private readonly seen = new ResolvedIds();
  /** Processes whose deferred deliveries wait for twin memory. */
  private readonly roomWaiters = new Set<Proc>();

  constructor(options: ExecutorOptions) {
    this.opts = options;
    this.sliceMs = Math.max(1, options.sliceMs ?? DEFAULT_SLICE_MS);
    this.maxMemoryBytes = Math.max(1 << 16, options.maxMemoryBytes ?? DEFAULT_MAX_MEMORY);
    this.stateInterval = Math.max(1, options.stateIntervalMs ?? DEFAULT_STATE_INTERVAL);
    this.setTimer = options.setTimer ?? defaultSetTimer;
    this.maxLevels = Math.max(1, options.speculation?.maxLevels ?? DEFAULT_MAX_LEVELS);
    this.maxTwinBytes = Math.max(0, options.speculation?.maxTwinBytes ?? DEFAULT_MAX_TWIN_BYTES);
    this.predictor = new Predictor<WaitResult>({ equals: sameResult, ...options.speculation?.predictor });
    const files = options.files;
    // A direct filesystem is used through the same request layer as a remote one, so each
    // process's holds are counted (and dropped when it ends) the same way in both cases.
    if (files) this.clusterFs = { call: () => (req) => serveFileSystem(files, req), root: files.root };
  }

  /** Live processes (loading, running, waiting). */
  get size(): number {
    return this.procs.size;
  }

  /** The pids of the live processes. */
  pids(): Pid[] {
    return [...this.procs.keys()];
  }

  /** Fork On Wait counters of a live process (tests, diagnostics). */
  speculation(pid: Pid): SpeculationStats | undefined {
    const p = this.procs.get(pid);
    return p && { ...p.sp.stats, depth: p.sp.depth };
  }

  /** Bytes all twins hold now. */
  get twinBytes(): number {
    return this.twinTotal;
  }

  /** A message from the Scheduler. Never throws. */
  handle(msg: ToExecutor): void {
    try {
      this.dispatch(msg);
    } catch {
      // A malformed message must not take the executor down; there is no one to tell but the
      // Scheduler, which sent it.
    }
  }

  private dispatch(msg: ToExecutor): void {
    if (msg.t === 'start') {
      this.start(msg.spec);
      return;
    }
    if (msg.t === 'files') {
      if (!this.opts.files) this.clusterFs = { call: (pid) => (req) => this.fsRequest(pid, req), root: msg.root };
      return;
    }
    if (msg.t === 'thaw') {
      this.thaw(msg.spec, msg.image, msg.checked === true);
      return;
    }
    if (msg.t === 'prepare') {
      // Answered with the bytes even if announced before (the host's cache may have dropped
      // them): by the rewrite, or here when it was done already. A broken module is answered
      // by nothing here: its start reports it.
      this.announced.delete(msg.hash);
      this.rewritten({ hash: msg.hash, module: msg.module }).then(
        (r) => this.announce(r),
        () => {},
      );
      return;
    }
    if (msg.t === 'freeze' && !this.procs.has(msg.pid)) {
      this.opts.post({ t: 'freeze.failed', pid: msg.pid, reason: 'no such process here' });
      return;
    }
    if (msg.t === 'checkpoint' && !this.procs.has(msg.pid)) {
      this.opts.post({ t: 'checkpoint.failed', pid: msg.pid, reason: 'no such process here' });
      return;
    }
    if (msg.t === 'spec.resolved') {
      this.specResolved(msg.id, msg.ok);
      return;
    }
    if (msg.t === 'fs.reply') {
      const resolve = this.fsCalls.get(msg.call);
      if (resolve) {
        this.fsCalls.delete(msg.call);
        resolve(msg.reply);
      }
      return;
    }
    const p = this.procs.get(msg.pid);
    if (!p) return; // already gone: late stdin, replies and messages are dropped
    switch (msg.t) {
      case 'stdin':
        if (p.stdin) {
          try {
            p.stdin.push(msg.data);
          } catch {
            // after stdin.end
          }
        }
        break;
      case 'stdin.end':
        p.stdin?.end();
        break;
      case 'kill':
        this.kill(p, msg.reason);
        break;
      case 'freeze':
        if (p.freezing) break; // one answer per process
        p.freezing = true;
        this.tryFreeze(p);
        break;
      case 'checkpoint':
        if (p.checkpointing) break;
        p.checkpointing = true;
        this.tryFreeze(p);
        break;
      case 'reply': {
        const resolve = p.calls.get(msg.call);
        if (resolve) {
          p.calls.delete(msg.call);
          resolve(msg.reply);
        }
        break;
      }
      case 'deliver': {
        const m: Delivery = { port: msg.port, from: msg.from, token: msg.token, data: msg.data };
        if (msg.seq !== undefined) m.seq = msg.seq;
        if (msg.deps?.length) m.deps = msg.deps;
        this.inbound(p, m);
        break;
      }
      case 'out.ack':
        p.unacked = Math.max(0, p.unacked - msg.bytes);
        if (p.unacked <= p.window / 2) for (const wake of p.ackWaiters.splice(0)) wake();
        break;
    }
  }

  // ───────────────────────────── starting ─────────────────────────────

  private start(spec: ProcessSpec): void {
    if (this.procs.has(spec.pid)) return; // a duplicate start: the pid runs already
    const p = this.newProc(spec);
    this.procs.set(spec.pid, p);
    void this.load(p);
  }

  private thaw(spec: ProcessSpec, image: Uint8Array, checked: boolean): void {
    if (this.procs.has(spec.pid)) return; // the pid runs here already
    const p = this.newProc(spec);
    this.procs.set(spec.pid, p);
    let decoded: ProcessImage;
    try {
      // At once, not after the load: stdin and acks that follow the thaw apply on top of it.
      decoded = this.checkedImage(p, image, checked);
    } catch (e) {
      this.finish(p, EXIT_CANNOT_START, loadMessage(e));
      return;
    }
    void this.load(p, decoded);
  }

  private newProc(spec: ProcessSpec): Proc {
    const stdin = spec.interactiveStdin ? new QueueInput() : null;
    const calls = new Map<number, (reply: KernelReply) => void>();
    const mode: SpeculationMode = spec.speculation === 'on' || spec.speculation === 'mispredict' ? spec.speculation : 'off';
    const p: Proc = {
      spec,
      pid: spec.pid,
      mode,
      phase: 'loading',
      thread: null,
      module: null,
      lshapes: null,
      wasi: null,
      reader: null,
      stdin,
      out: [],
      outBytes: 0,
      unacked: 0,
      window: spec.outputWindow && spec.outputWindow > 0 ? spec.outputWindow : 0,
      ackWaiters: [],
      cpuMs: 0,
      shown: null,
      shownCpu: 0,
      shownAt: 0,
      state: 'READY',
      nextCall: 1,
      calls,
      pendingKill: null,
      fault: null,
      maxMemoryBytes: this.maxMemoryBytes,
      cluster: null,
      tmp: null,
      freezing: false,
      checkpointing: false,
      blocks: 0,
      settle: null,
      quiesce: null,
      outAt: 0,
      sp: new ProcSpeculation(spec.pid),
      deferred: [],
      restoring: false,
      pendingRollback: null,
      heldExit: null,
      fsMutations: 0,
      forkLater: false,
      blockedAt: 0,
      pumping: false,
      shownDepth: 0,
      shownStats: '',
    };
    if (this.clusterFs) p.cluster = this.clusterFiles(p, this.clusterFs.call(spec.pid), this.clusterFs.root);
    return p;
  }

  /**
   * The process's view of the cluster filesystem: mutations stall while it speculates, and
   * (speculating processes) sync is split so its replica wait can be predicted.
   */
  private clusterFiles(p: Proc, raw: FsCall, root: NodeId): RemoteFileSystem {
    const call: FsCall = (req) => {
      if (!MUTATING_FS_OPS.has(req.op)) return raw(req);
      const go = (): Promise<FsReply> => {
        p.fsMutations++;
        return raw(req).finally(() => {
          p.fsMutations--;
          if (p.fsMutations === 0 && p.deferred.length) this.pump(p);
        });
      };
      return p.sp.active ? p.sp.whenCommitted().then(go) : go();
    };
    return new RemoteFileSystem(call, root, p.mode === 'off' ? {} : { replicaWait: (_node, wait) => this.replicaWait(p, wait) });
  }

  /** The lshapes host of a new instance of the process. */
  private makeLshapes(p: Proc): LshapesHost {
    const spec = p.spec;
    const host: LshapesHost = new LshapesHost({
      pid: spec.pid,
      peer: spec.peer,
      parent: spec.hasParent ? spec.parent : undefined,
      setTimer: this.setTimer,
      request: (req) =>
        new Promise<KernelReply>((resolve) => {
          const go = (): void => {
            // an instance replaced by a rollback asks nothing more
            if (gone(p) || p.lshapes !== host) return;
            this.flushOut(p); // what the program printed before asking comes first
            const call = p.nextCall++;
            p.calls.set(call, resolve);
            if (req.op === 'send') {
              const deps = p.sp.deps();
              if (deps.length) req = { ...req, deps };
            }
            this.opts.post({ t: 'call', pid: p.pid, call, req });
          };
          // Messages go out at once (carrying deps); the rest affects the world: it waits.
          if (req.op !== 'send' && p.sp.active) void p.sp.whenCommitted().then(go);
          else go();
        }),
      onCallFailed: (token, errno) => {
        if (p.lshapes !== host) return;
        const level = p.sp.awaiting(token);
        if (level) this.ownResult(p, level, { kind: 'call', errno, data: EMPTY });
      },
    });
    return host;
  }

  /** Loads the program and makes the thread: a new one, or the one in `image` (thaw). */
  private async load(p: Proc, image?: ProcessImage): Promise<void> {
    let thread: WasmThread;
    try {
      const rewritten = await this.rewritten(p.spec);
      if (p.phase === 'EXITED') return;
      const tmp = image?.tmp ? rebuildTmp(image.tmp) : null;
      const hosts = this.hostModules(p, tmp?.fs);
      const missing = missingImports(rewritten, hosts);
      if (missing.length) {
        const list = missing.length === 1 ? missing[0]! : `${missing.slice(0, -1).join(', ')} and ${missing[missing.length - 1]!}`;
        throw new WasmLoadError(`the program imports ${list}, which LSHAPES does not provide`);
      }
      if (image) {
        const snapshot = tmp ? remapTmpFds(image.thread, tmp.nodeMap) : image.thread;
        thread = await WasmThread.restore(rewritten, snapshot, hosts, { clock: this.opts.clock });
        tmp?.dropOrphans();
      } else {
        thread = await WasmThread.create(rewritten, hosts, { clock: this.opts.clock });
      }
      p.module = rewritten;
    } catch (e) {
      if (p.phase !== 'EXITED') this.finish(p, EXIT_CANNOT_START, loadMessage(e));
      return;
    }
    if (gone(p)) return;
    p.thread = thread;
    p.phase = 'READY';
    p.state = 'READY';
    this.report(p, true);
    // Messages that came while it loaded (a thaw's restored mailbox would have dropped them).
    this.pump(p);
    if (p.freezing || p.checkpointing) {
      this.tryFreeze(p);
      if (gone(p)) return;
    }
    this.makeReady(p);
  }

  /** The image of a thaw, checked against the spec; its stdin, flow control and CPU time go into the process. */
  private checkedImage(p: Proc, bytes: Uint8Array, checked = false): ProcessImage {
    const image = decodeImage(bytes, checked);
    if (image.pid !== p.pid) throw new ImageError(`the process image is of process ${image.pid}, not ${p.pid}`);
    if (image.moduleHash !== p.spec.hash) {
      throw new ImageError(
        `the process image belongs to another program (module ${image.moduleHash.slice(0, 12)}…, not ${p.spec.hash.slice(0, 12)}…)`,
      );
    }
    p.unacked = image.unacked;
    p.cpuMs = image.cpuMs;
    p.outAt = image.outAt;
    p.sp.nextSpec = Math.max(p.sp.nextSpec, image.specNext);
    if (image.stdin && p.stdin) {
      if (image.stdin.data.length) p.stdin.push(image.stdin.data);
      if (image.stdin.ended) p.stdin.end();
    }
    return image;
  }

  /** The program of `spec`, ready to instantiate: loaded or rewritten once per hash (a `prepare`'s still under way is shared). */
  private rewritten(spec: Pick<ProcessSpec, 'hash' | 'module' | 'rewritten'>): Promise<RewrittenModule> {
    const once = (make: () => Promise<RewrittenModule>) => {
      let r = this.loaded.get(spec.hash);
      if (!r) {
        r = make();
        this.loaded.set(spec.hash, r);
        while (this.loaded.size > LOADED_LIMIT) this.loaded.delete(this.loaded.keys().next().value as string);
        r.catch(() => this.loaded.delete(spec.hash));
      }
      return r;
    };
    if (spec.rewritten) {
      const bytes = spec.rewritten;
      return once(() => loadRewritten(bytes, spec.hash)).catch(async (e: unknown) => {
        // stale or foreign rewritten bytes: rewrite the original when we have it
        if (spec.module) return this.rewrite(spec.module);
        throw e;
      });
    }
    const module = spec.module;
    if (!module) return Promise.reject(new WasmLoadError('no module to run (neither module nor rewritten bytes given)'));
    return once(() => this.rewrite(module));
  }

  private async rewrite(module: Uint8Array): Promise<RewrittenModule> {
    const options: Parameters<typeof rewriteModule>[1] = { maxMemoryBytes: this.maxMemoryBytes };
    if (this.opts.sha256) options.sha256 = this.opts.sha256;
    const r = await rewriteModule(module, options);
    this.announce(r);
    return r;
  }

  /** Tells the host a program's rewritten bytes, once (it skips the rewrite next time). */
  private announce(r: RewrittenModule): void {
    if (this.announced.has(r.hash)) return;
    this.announced.add(r.hash);
    this.opts.post({ t: 'rewritten', hash: r.hash, bytes: r.bytes });
  }

  /** New host modules for an instance of the process (they become its current ones). */
  private hostModules(p: Proc, tmp?: MemFs): HostModule[] {
    const spec = p.spec;
    const lshapes = this.makeLshapes(p);
    p.lshapes = lshapes;
    p.reader?.detach();
    p.reader = p.stdin ? p.stdin.reader() : null;
    const current = { wasi: null as Wasi | null };
    const output = (fd: 1 | 2): OutputStream => ({
      write: (data) => {
        if (data.length === 0 || p.phase === 'EXITED' || p.wasi !== current.wasi) return;
        if (p.sp.active) {
          // Speculative: held until what it depends on commits (dropped on a rollback).
          p.sp.hold(fd, data);
          if (p.sp.heldBytes > Math.max(p.window, HELD_OUTPUT_LIMIT)) return p.sp.whenCommitted();
          return;
        }
        p.out.push({ fd, data });
        p.outBytes += data.length;
        if (p.outBytes >= OUT_FLUSH_BYTES) this.flushOut(p);
        if (p.window > 0 && p.unacked + p.outBytes > p.window) {
          // The terminal is behind: the writer waits, as on a full pipe.
          this.flushOut(p);
          return new Promise<void>((resolve) => p.ackWaiters.push(resolve));
        }
      },
    });
    const wasi = new Wasi({
      args: spec.args.length ? spec.args : [spec.name],
      env: spec.env,
      // The standard layout preopens `/` only: paths then cross mounts in the Namespace, so
      // `/cluster/../README.txt` works as on a real system (with a preopen per mount, wasi-libc
      // would resolve it inside /cluster's preopen and refuse the `..`).
      ...(this.opts.namespace ? { namespace: this.opts.namespace(spec) } : { namespace: this.namespace(p, tmp), preopens: ['/'] }),
      stdin: p.reader ?? emptyInput,
      stdout: output(1),
      stderr: output(2),
      ...(this.opts.wasiClock ? { clock: this.opts.wasiClock } : {}),
      ...(this.opts.random ? { random: this.opts.random } : {}),
      onFault: (call) => {
        p.fault = `bad pointer passed to ${call} (segmentation fault)`;
        throw new ProcessExit(EXIT_SEGFAULT);
      },
    });
    current.wasi = wasi;
    p.wasi = wasi;
    return [wasi, lshapes];
  }

  /** The standard layout: `/` the samples (read-only, shared), `/tmp` its own, `/cluster`. */
  private namespace(p: Proc, tmp: MemFs = new MemFs()): Namespace {
    this.samples ??= memfsFrom(SAMPLE_FILES);
    const ns = new Namespace();
    ns.mount('/', this.samples, { readonly: true });
    p.tmp = tmp;
    ns.mount('/tmp', tmp);
    if (p.cluster) ns.mount('/cluster', p.cluster);
    return ns;
  }

  /** One `fs` request to the Scheduler; resolves on its `fs.reply`. */
  private fsRequest(pid: Pid, req: FsRequest): Promise<FsReply> {
    return new Promise<FsReply>((resolve) => {
      const call = this.nextFsCall++;
      this.fsCalls.set(call, resolve);
      this.opts.post({ t: 'fs', pid, call, req });
    });
  }

  // ───────────────────────────── running ─────────────────────────────

  private makeReady(p: Proc): void {
    this.ready.push(p);
    if (!this.looping) void this.loop();
  }

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      for (;;) {
        const p = this.ready.shift();
        if (!p) break;
        if (p.phase !== 'READY') continue;
        this.slice(p);
        this.flushReports();
        try {
          await this.opts.yieldToHost();
        } catch {
          // a host that cannot yield still must not stop the loop
        }
      }
    } finally {
      this.looping = false;
    }
  }

  private slice(p: Proc): void {
    const thread = p.thread!;
    p.phase = 'RUNNING';
    p.forkLater = false;
    const t0 = this.opts.clock.now();
    let r: RunResult;
    try {
      r = thread.run({ ms: this.sliceMs });
    } catch (e) {
      // the runtime itself failed: end this process only
      try {
        if (thread.state !== 'RUNNING') thread.terminate(EXIT_TRAPPED);
      } catch {
        // nothing more to do
      }
      r = { state: 'trapped', message: `internal error: ${describe(e)}` };
    }
    p.cpuMs += Math.max(0, this.opts.clock.now() - t0);
    if (gone(p)) return; // cannot happen (kills wait for the slice), but be safe
    p.phase = 'READY';
    this.flushOut(p);
    if (p.pendingKill !== null && r.state !== 'exited' && r.state !== 'trapped') {
      this.kill(p, p.pendingKill);
      return;
    }
    if (p.pendingRollback) {
      // whatever this slice ended in, the copy it ran is cancelled
      this.rollback(p);
      return;
    }
    switch (r.state) {
      case 'yielded':
        p.state = 'RUNNING';
        this.dirty.add(p);
        this.ready.push(p);
        break;
      case 'blocked':
        p.blocks++;
        p.blockedAt = this.opts.clock.now();
        p.phase = 'WAITING';
        p.state = 'WAITING';
        this.dirty.add(p);
        r.until.then(
          () => this.wake(p, thread),
          () => this.wake(p, thread),
        );
        this.forkAtCall(p);
        break;
      case 'exited':
        if (r.code === EXIT_SEGFAULT && p.fault) this.finish(p, r.code, p.fault);
        else this.finish(p, r.code);
        break;
      case 'trapped':
        this.finish(p, EXIT_TRAPPED, this.trapMessage(p, r.message));
        break;
    }
    this.pump(p);
    if (p.freezing || p.checkpointing) this.tryFreeze(p);
  }

  private wake(p: Proc, thread: WasmThread): void {
    if (p.thread !== thread || p.phase !== 'WAITING' || thread.state !== 'READY') return;
    if (p.freezing || p.checkpointing) {
      this.tryFreeze(p);
      if (gone(p)) return;
    }
    p.phase = 'READY';
    p.state = 'READY';
    this.dirty.add(p);
    this.makeReady(p);
  }

  private trapMessage(p: Proc, message: string): string {
    const used = p.thread ? p.thread.memory.buffer.byteLength : 0;
    const cap = p.maxMemoryBytes;
    if (used > 0 && used >= cap - Math.max(2 << 20, cap / 16)) {
      return `${message} — out of memory? it uses ${mib(used)} of its ${mib(cap)} limit`;
    }
    return message;
  }

  // ───────────────────────────── ending ─────────────────────────────

  private kill(p: Proc, reason: string): void {
    if (p.phase === 'EXITED') return;
    if (p.phase === 'RUNNING') {
      p.pendingKill = reason;
      return;
    }
    try {
      if (p.thread && p.thread.state !== 'EXITED') p.thread.terminate(EXIT_KILLED);
    } catch {
      // terminate refuses only a running thread, excluded above
    }
    // A kill is not speculative: its twins go, its speculations are cancelled, held output dropped.
    this.dropSpeculation(p);
    this.finish(p, EXIT_KILLED, reason || 'killed');
  }

  private finish(p: Proc, code: number, message?: string): void {
    if (p.sp.active) {
      // A speculative copy ended: its exit waits for the commit (a rollback forgets it).
      p.heldExit = message === undefined ? { code } : { code, message };
      p.phase = 'EXIT_HELD';
      p.state = 'WAITING';
      this.dirty.add(p);
      return;
    }
    p.quiesce?.();
    p.quiesce = null;
    p.lshapes?.abandonCalls();
    this.flushOut(p);
    // Counters a rate-limited report held back are not lost with the process.
    const st = p.sp.stats;
    if (p.mode !== 'off' && `${st.predictions},${st.hits},${st.rollbacks}` !== p.shownStats) this.report(p, true);
    p.phase = 'EXITED';
    p.state = 'EXITED';
    p.lshapes?.dispose();
    p.reader?.detach();
    p.cluster?.releaseAll();
    p.calls.clear();
    p.deferred = [];
    this.dirty.delete(p);
    this.roomWaiters.delete(p);
    this.procs.delete(p.pid);
    const msg: FromExecutor = { t: 'exit', pid: p.pid, code, cpuMs: p.cpuMs };
    if (message !== undefined) msg.message = message;
    this.opts.post(msg);
    const why = `it exited (code ${code}) before it could be frozen`;
    if (p.freezing) this.opts.post({ t: 'freeze.failed', pid: p.pid, reason: why });
    if (p.checkpointing) this.opts.post({ t: 'checkpoint.failed', pid: p.pid, reason: why });
    p.thread = null;
  }

  // ───────────────────────────── freezing and checkpoints ─────────────────────────────

  /**
   * Takes the image for a freeze or a checkpoint if the process is at a safe point now;
   * otherwise the load, the slice or the wake that ends the current phase calls this again.
   * Only a state nothing speculative went into may travel (or be restarted from): a process
   * with open speculation quiesces first. It forks no more (forkAtCall, replicaWait) while the
   * real results settle its levels (commit or rollback); the commit (afterShrink → pump), the
   * delivery (pump) or the restore comes back here. Past QUIESCE_TIMEOUT_MS the freeze or
   * checkpoint fails; answered either way, it speculates again (endQuiesce).
   */
  private tryFreeze(p: Proc): void {
    if (!(p.freezing || p.checkpointing) || gone(p) || p.phase === 'loading' || p.phase === 'RUNNING') return;
    if (speculative(p)) {
      this.quiesce(p);
      return;
    }
    const thread = p.thread!;
    if (thread.state === 'WAITING') {
      const on = thread.waitingOn;
      // Blocked in spawn: the image would re-issue it on thaw (a second child). Unless its reply
      // came already (no call out): then it is READY with the child's pid a macrotask from now,
      // so it settles below first; still in spawn after that, it fails all the same.
      if (on?.module === 'lshapes' && on.name === 'spawn' && (p.calls.size > 0 || (p.settle?.block === p.blocks && p.settle.done))) {
        this.imageFailed(p, 'blocked in spawn');
        return;
      }
      if (p.ackWaiters.length) {
        // Blocked writing to a terminal that is behind: its data is already taken (posted), so
        // a re-issued write would print it twice. Let the write finish; wake() comes back here
        // and the image carries the unacknowledged bytes.
        for (const wake of p.ackWaiters.splice(0)) wake();
        return;
      }
      if (p.settle?.block !== p.blocks || !p.settle.done) {
        // A host call may have done its work already (recv took the message, a read its bytes)
        // with the result still travelling through Promise callbacks: once they ran (a
        // macrotask later) the thread is READY with the result, or truly blocked with no work
        // done, and a re-issued call is right. wake() or this timer comes back here. Per block:
        // calls meanwhile (a commit, a delivery) wait for the same timer.
        if (p.settle?.block !== p.blocks) {
          const settle = { block: p.blocks, done: false };
          p.settle = settle;
          this.setTimer(0, () => {
            settle.done = true;
            this.tryFreeze(p);
          });
        }
        return;
      }
    }
    // Earlier output first; flow control counts it before the image records `unacked`.
    this.flushOut(p);
    let image: Uint8Array;
    // A freeze alone: the checksum is filled in by opts.sha256 before `frozen` goes (below).
    const hashLater = p.freezing && !p.checkpointing ? this.opts.sha256 : undefined;
    try {
      const snapshot = thread.snapshot();
      image = encodeImage({
        pid: p.pid,
        moduleHash: snapshot.moduleHash,
        thread: snapshot,
        tmp: p.tmp ? captureTmp(p.tmp, openTmpNodes(snapshot)) : null,
        stdin: p.stdin ? p.stdin.state() : null,
        unacked: p.unacked,
        cpuMs: p.cpuMs,
        outAt: p.outAt,
        specNext: p.sp.nextSpec,
      }, !hashLater);
    } catch (e) {
      this.imageFailed(p, `cannot take its image: ${describe(e)}`);
      return;
    }
    p.settle = null;
    if (p.checkpointing) {
      p.checkpointing = false;
      this.opts.post({ t: 'checkpointed', pid: p.pid, image, cpuMs: p.cpuMs });
    }
    if (!p.freezing) {
      this.endQuiesce(p);
      return;
    }
    // Dropped without an exit: its reply tokens, mailbox and holds travel in the image.
    p.quiesce?.();
    p.quiesce = null;
    p.phase = 'EXITED';
    p.state = 'EXITED';
    p.freezing = false;
    p.lshapes?.dispose();
    p.reader?.detach();
    p.cluster?.releaseAll();
    p.calls.clear();
    p.ackWaiters = [];
    this.dirty.delete(p);
    this.procs.delete(p.pid);
    p.thread = null;
    const frozen: FromExecutor = { t: 'frozen', pid: p.pid, image, cpuMs: p.cpuMs };
    if (!hashLater) return this.opts.post(frozen);
    // Nothing else about this pid is posted from here on (it is gone): `frozen` may come later.
    const { sum, payload } = imageSum(image);
    void (async () => sum.set(await hashLater(payload)))()
      .catch(() => sum.set(nobleSha256(payload))) // the host's hash failed: the slow one, never an unsummed image
      .then(() => this.opts.post(frozen));
  }

  private imageFailed(p: Proc, reason: string): void {
    p.settle = null;
    if (p.freezing) {
      p.freezing = false;
      this.opts.post({ t: 'freeze.failed', pid: p.pid, reason });
    }
    if (p.checkpointing) {
      p.checkpointing = false;
      this.opts.post({ t: 'checkpoint.failed', pid: p.pid, reason });
    }
    this.endQuiesce(p);
  }

  /** Starts the bound of a quiesce (tryFreeze): past it, the freeze or checkpoint fails. */
  private quiesce(p: Proc): void {
    if (p.quiesce) return;
    p.quiesce = this.setTimer(QUIESCE_TIMEOUT_MS, () => {
      p.quiesce = null;
      if (gone(p) || !(p.freezing || p.checkpointing)) return;
      // Settled just now: the settle wait or the slice under way takes the image.
      if (speculative(p)) this.imageFailed(p, `speculation did not settle within ${QUIESCE_TIMEOUT_MS} ms`);
    });
  }

  /**
   * The freeze or checkpoint was answered (image or failure): the bound goes, and the process
   * speculates again where the quiesce held it back (a call it blocked in).
   */
  private endQuiesce(p: Proc): void {
    p.quiesce?.();
    p.quiesce = null;
    if (gone(p) || p.freezing || p.checkpointing) return;
    this.forkIfDue(p);
  }

  // ───────────────────────────── Fork On Wait ─────────────────────────────

  /** A message for the process: the real result of one of its speculations, or one for its mailbox. */
  private inbound(p: Proc, m: Delivery): void {
    for (const id of m.deps ?? []) this.seen.set(id, true);
    const token = replyToken(m.port);
    const level = token === null ? undefined : p.sp.awaiting(token);
    // From a cancelled world: dropped before its seq counts (the re-sent one has the same).
    if (this.liveDeps(p, m.deps) === null) return;
    if (!this.checkSeq(p, m)) return; // a repeat
    if (level) {
      this.ownResult(p, level, callResult(m), m.deps);
      return;
    }
    p.deferred.push(m);
    this.pump(p);
  }

  /**
   * Repeats (a sender restarted from a checkpoint sends again) are recognized in arrival order,
   * which is the sender's order (the mailbox may get them in another order across ports).
   * False: drop it. Messages arriving while no instance is loaded are checked once one is.
   */
  private checkSeq(p: Proc, m: Delivery): boolean {
    if (m.seq === undefined || m.checked) return true;
    if (!p.lshapes || p.restoring || p.phase === 'loading') return true;
    if (!p.lshapes.accept(m.from, m.seq)) return false;
    m.checked = true;
    return true;
  }

  /**
   * Hands deferred deliveries to the mailbox as far as it can now, in order per port. One that
   * would make the process dependent waits until the process asks for it (blocked in recv on
   * its port, or in the call it answers: before that it influenced nothing), and then needs
   * its twin, taken at a safe point (a blocked thread a macrotask later, no /cluster mutation in
   * flight) and within the bounds.
   */
  private pump(p: Proc): void {
    if (p.pumping) return;
    p.pumping = true;
    try {
      let i = 0;
      const waiting = new Set<string>(); // ports whose earlier message waits: later ones wait behind
      while (i < p.deferred.length) {
        if (gone(p) || p.phase === 'loading' || p.restoring || p.pendingRollback) return;
        const m = p.deferred[i]!;
        const deps = this.liveDeps(p, m.deps);
        if (deps === null) {
          // it depends on a cancelled speculation: it never happened (its sender sends it again)
          p.deferred.splice(i, 1);
          if (m.checked && m.seq !== undefined) p.lshapes?.unaccept(m.from, m.seq);
          continue;
        }
        if (!this.checkSeq(p, m)) {
          p.deferred.splice(i, 1);
          continue;
        }
        if (waiting.has(m.port)) {
          i++;
          continue;
        }
        const fresh = deps.filter((id) => !p.sp.dependsOn(id));
        if (fresh.length && p.phase !== 'EXIT_HELD') {
          const ok = this.readyForDependency(p, m.port);
          if (ok === 'stop') return;
          if (ok === 'later') {
            waiting.add(m.port);
            i++;
            continue;
          }
          // Beyond the memory bound only when no twin at all is held: it could never fit.
          const twin = this.takeTwin(p, this.twinTotal === 0);
          if (!twin) {
            this.roomWaiters.add(p);
            return;
          }
          this.pushLevel(p, 'dep', fresh, twin);
        }
        p.deferred.splice(i, 1);
        const live: Delivery = { ...m };
        if (deps.length) live.deps = deps;
        else delete live.deps;
        this.deliverNow(p, live);
      }
    } finally {
      p.pumping = false;
      // A freeze or checkpoint waiting for its speculation to settle: what went may have been the last.
      if (p.freezing || p.checkpointing) this.tryFreeze(p);
    }
  }

  /**
   * Whether a twin may be taken now for a message to `port`: 'now'; 'later' (the process does
   * not ask for it yet: the slice that blocks it in recv pumps again); 'stop' (running, a
   * mutation in flight, at the level bound: their end pumps again). A quiescing process takes
   * dependencies too: held back, the message would wait for the same resolution, and its
   * sender's pipeline would stall on the reply.
   */
  private readyForDependency(p: Proc, port: string): 'now' | 'later' | 'stop' {
    if (p.phase === 'RUNNING' || p.fsMutations > 0) return 'stop';
    if (p.sp.levels.length >= this.maxLevels) return 'stop';
    // Blocked in lshapes with its waiter set: no result is on its way (one that arrived would
    // have cleared the waiter at once), so the twin is of a thread that has not seen it.
    return p.thread!.state === 'WAITING' && p.lshapes?.wants(port) ? 'now' : 'later';
  }

  /** The ids of `deps` still open (null: one was cancelled, the message never happened). */
  private liveDeps(p: Proc, deps: readonly SpecId[] | undefined): SpecId[] | null {
    if (!deps?.length) return [];
    const out: SpecId[] = [];
    for (const id of deps) {
      const r = this.resolved.get(id);
      if (r === false) return null;
      if (r === true) continue;
      // its own: already depends on it while open (not open any more: resolved long ago)
      if (p.sp.isOwn(id) && !p.sp.dependsOn(id)) continue;
      out.push(id);
    }
    return out;
  }

  private deliverNow(p: Proc, m: Delivery): void {
    if (p.phase !== 'EXIT_HELD') {
      this.observeReply(p, m);
      p.lshapes!.deliver(m.port, m.from, m.token, m.data); // seq checked on arrival
    }
    // kept while a rollback may go back before it (an EXIT_HELD copy may be rolled back too)
    p.sp.logDelivery(m);
  }

  /** Teaches the predictor the reply of a call that was not speculated on. */
  private observeReply(p: Proc, m: Delivery): void {
    if (p.mode === 'off' || !p.lshapes) return;
    const token = replyToken(m.port);
    const pc = token === null ? null : p.lshapes.pendingCall();
    if (!pc || pc.token !== token) return;
    const site = callSite(p, pc.to, pc.port);
    const actual = callResult(m);
    this.lastResult.set(site, actual);
    if (p.mode === 'on') this.predictor.record(site, actual, undefined, this.opts.clock.now() - p.blockedAt);
  }

  /** At the end of a slice blocked in lshapes.call: fork if the reply is predictable. */
  private forkAtCall(p: Proc): void {
    if (p.mode === 'off' || !p.lshapes) return;
    const on = p.thread?.waitingOn;
    if (on?.module !== 'lshapes' || on.name !== 'call') return;
    const pc = p.lshapes.pendingCall();
    if (!pc || pc.timeoutMs >= 0) return; // a call with a timeout is not speculated on
    if (p.freezing || p.checkpointing) {
      // Quiescing for an image: it waits; endQuiesce forks it if it is still blocked here then.
      p.forkLater = true;
      return;
    }
    if (p.sp.levels.length >= this.maxLevels) {
      p.forkLater = true;
      return;
    }
    const site = callSite(p, pc.to, pc.port);
    const predicted = this.predict(p, site, 'call');
    if (predicted === 'probing') {
      p.forkLater = true; // the probe's confirmation lets it fork at once
      return;
    }
    if (!predicted || predicted.kind !== 'call') return;
    const level = this.fork(p, 'call', site, predicted, pc.token);
    if (!level) {
      p.forkLater = true;
      return;
    }
    p.lshapes.settleCall(pc.token, predicted.errno ? null : predicted.data, predicted.errno);
  }

  /**
   * The replica wait of a split fsync on /cluster (the local commit succeeded): speculate that it
   * succeeds, or just wait.
   */
  private replicaWait(p: Proc, wait: Promise<void>): Promise<void> {
    const real = wait.then(
      () => Errno.SUCCESS as number,
      (e: unknown) => (e instanceof FsError ? e.errno : Errno.IO),
    );
    const site = `${p.spec.hash}|sync`;
    const since = this.opts.clock.now();
    const on = p.thread?.waitingOn;
    const blocked =
      !gone(p) &&
      !p.restoring &&
      p.phase === 'WAITING' &&
      !p.freezing &&
      !p.checkpointing &&
      p.thread?.state === 'WAITING' &&
      on?.module === 'wasi_snapshot_preview1' &&
      (on.name === 'fd_sync' || on.name === 'fd_datasync');
    const predicted = blocked ? this.predict(p, site, 'sync') : undefined;
    const level = predicted && predicted !== 'probing' ? this.fork(p, 'sync', site, predicted) : null;
    if (!level) {
      void real.then((errno) => {
        const actual: WaitResult = { kind: 'sync', errno };
        this.lastResult.set(site, actual);
        if (p.mode === 'on') this.predictor.record(site, actual, undefined, this.opts.clock.now() - since);
      });
      return wait;
    }
    void real.then((errno) => this.ownResult(p, level, { kind: 'sync', errno }));
    const guess = level.own!.predicted.errno;
    return guess ? Promise.reject(new FsError(guess, 'the replica wait failed (predicted)')) : Promise.resolve();
  }

  /** What to run on instead of waiting at `site`; undefined: wait; 'probing': wait, but fork once the probe out there is confirmed. */
  private predict(p: Proc, site: string, kind: LevelKind): WaitResult | 'probing' | undefined {
    if (p.sp.levels.length >= this.maxLevels) return undefined;
    if (p.mode === 'mispredict') {
      // deliberately wrong: every speculation is rolled back
      if (kind === 'sync') return { kind: 'sync', errno: Errno.IO };
      const last = this.lastResult.get(site);
      if (last?.kind === 'call' && last.errno === 0 && last.data.length) {
        const data = last.data.slice();
        data[0] = data[0]! ^ 0xff;
        return { kind: 'call', errno: 0, data };
      }
      return { kind: 'call', errno: 0, data: MISPREDICTED };
    }
    if (p.mode !== 'on') return undefined;
    const d = this.predictor.decide(site, { outstanding: p.sp.outstandingAt(site) });
    if (d.kind === 'probing') return 'probing';
    return d.kind === 'predict' && d.value.kind === kind ? d.value : undefined;
  }

  /** Takes the twin and opens an own level; null when a bound says no. */
  private fork(p: Proc, kind: 'call' | 'sync', site: string, predicted: WaitResult, token?: number): Level | null {
    const t0 = this.opts.clock.now();
    const twin = this.takeTwin(p, false);
    if (!twin) return null;
    if (p.mode === 'on') this.predictor.cost(site, 'fork', this.opts.clock.now() - t0);
    const id = p.sp.newId();
    const own: OwnSpec = { id, site, predicted, forkAt: this.opts.clock.now() };
    if (token !== undefined) own.token = token;
    p.sp.stats.predictions++;
    return this.pushLevel(p, kind, [id], twin, own);
  }

  /** The thread and what lives beside it, as a rollback needs them; null beyond the memory bound. */
  private takeTwin(p: Proc, force: boolean): Twin | null {
    const thread = p.thread;
    if (!thread) return null;
    let snap;
    try {
      snap = thread.snapshot();
    } catch {
      return null;
    }
    const tmp = p.tmp ? captureTmp(p.tmp, openTmpNodes(snap)) : null;
    const bytes = twinBytes(snap, tmp);
    if (!force && this.twinTotal + bytes > this.maxTwinBytes) return null;
    return { thread: snap, tmp, stdinMark: p.stdin ? p.stdin.consumed : null, bytes };
  }

  private pushLevel(p: Proc, kind: LevelKind, ids: SpecId[], twin: Twin, own?: OwnSpec): Level {
    if (!p.sp.active) {
      this.flushOut(p); // output from before is not speculative
      p.stdin?.keep();
    }
    this.twinTotal += twin.bytes;
    const level = p.sp.push(kind, ids, twin, own);
    this.dirty.add(p);
    return level;
  }

  /**
   * The real result of an own speculation. One carrying others' speculations is compared once
   * they commit; one depending on a speculation of this process at or above this level is not
   * evidence for it (the prediction would confirm itself): the level is cancelled.
   */
  private ownResult(p: Proc, level: Level, actual: WaitResult, deps?: readonly SpecId[]): void {
    const own = level.own;
    if (!own || !p.sp.levels.includes(level) || !level.ids.has(own.id) || own.waiting) return;
    const foreign = new Set<SpecId>();
    const at = p.sp.levels.indexOf(level);
    for (const id of deps ?? []) {
      const r = this.resolved.get(id);
      if (r === true) continue;
      if (r === false) return; // from a cancelled world: the sender answers again after its rollback
      if (p.sp.isOwn(id)) {
        const i = p.sp.ownIndex(id);
        if (i >= at) {
          this.requestRollback(p, level);
          return;
        }
        continue;
      }
      foreign.add(id);
    }
    if (foreign.size) {
      own.waiting = { result: actual, deps: foreign };
      return;
    }
    this.settleOwn(p, level, actual);
  }

  /** Compares the real result with the prediction: confirm, or roll back to the twin. */
  private settleOwn(p: Proc, level: Level, actual: WaitResult): void {
    const own = level.own!;
    if (!p.sp.levels.includes(level) || !level.ids.has(own.id)) return;
    this.lastResult.set(own.site, actual);
    if (p.mode === 'on') this.predictor.record(own.site, actual, { value: own.predicted }, this.opts.clock.now() - own.forkAt);
    if (!sameResult(own.predicted, actual)) {
      this.requestRollback(p, level, actual);
      return;
    }
    p.sp.stats.hits++;
    p.sp.stats.savedMs += Math.max(0, this.opts.clock.now() - own.forkAt);
    this.resolved.set(own.id, true);
    this.opts.post({ t: 'spec.resolved', pid: p.pid, id: own.id, ok: true });
    this.freeTwins(p.sp.commit(own.id));
    this.resolveLocal(own.id, true, p);
    this.afterShrink(p);
  }

  /** A `spec.resolved` from the Scheduler: a speculation of another process ended. */
  private specResolved(id: SpecId, ok: boolean): void {
    if (this.resolved.get(id) !== undefined) return; // heard already (or it is our own)
    const concerned = [...this.procs.values()].filter((q) => this.concerns(q, id));
    if (!concerned.length) {
      if (this.seen.get(id) !== undefined) this.resolved.set(id, ok); // its messages were dropped already
      else this.opts.post({ t: 'notice', pid: originOf(id), text: `refused: no speculation ${id} here` });
      return;
    }
    this.resolved.set(id, ok);
    for (const q of concerned) this.applyResolution(q, id, ok);
  }

  /** Tells the other processes here that depend on `id` (no need to wait for the Scheduler). */
  private resolveLocal(id: SpecId, ok: boolean, origin: Proc): void {
    for (const q of [...this.procs.values()]) if (q !== origin && this.concerns(q, id)) this.applyResolution(q, id, ok);
  }

  private concerns(q: Proc, id: SpecId): boolean {
    return q.sp.knows(id) || q.deferred.some((m) => m.deps?.includes(id));
  }

  private applyResolution(q: Proc, id: SpecId, ok: boolean): void {
    if (gone(q)) return;
    const ready: Level[] = [];
    for (const l of q.sp.levels) {
      const w = l.own?.waiting;
      if (!w?.deps.has(id)) continue;
      if (!ok) delete l.own!.waiting; // a real result from a cancelled world: it comes again
      else {
        w.deps.delete(id);
        if (w.deps.size === 0) ready.push(l);
      }
    }
    if (ok) {
      this.freeTwins(q.sp.commit(id));
      for (const l of ready) {
        const w = l.own!.waiting!;
        delete l.own!.waiting;
        this.settleOwn(q, l, w.result);
      }
      this.afterShrink(q);
      return;
    }
    const level = q.sp.firstWith(id);
    if (level) this.requestRollback(q, level);
    else this.pump(q); // deferred messages carrying it are dropped now
  }

  /** Levels went: release what no open level holds back any more. */
  private afterShrink(p: Proc): void {
    if (gone(p)) return;
    const out = p.sp.releasable();
    if (out.length) {
      for (const c of out) {
        p.out.push(c);
        p.outBytes += c.data.length;
      }
      this.flushOut(p);
    }
    p.sp.trimLog();
    this.dirty.add(p);
    if (!p.sp.active) {
      p.stdin?.forget(Infinity);
      p.sp.releaseStalls();
      if (p.heldExit) {
        const e = p.heldExit;
        p.heldExit = null;
        this.finish(p, e.code, e.message);
        return;
      }
    } else if (p.stdin) {
      const marks = p.sp.levels.map((l) => l.twin.stdinMark ?? Infinity);
      p.stdin.forget(Math.min(...marks));
    }
    this.forkIfDue(p);
    this.pump(p);
  }

  /** Blocked in a predictable call it did not fork at (a bound, a probe, a quiesce): fork now if it may. */
  private forkIfDue(p: Proc): void {
    if (p.forkLater && p.phase === 'WAITING' && !p.restoring && !p.pendingRollback && p.sp.levels.length < this.maxLevels) {
      p.forkLater = false;
      this.forkAtCall(p);
    }
  }

  private freeTwins(levels: readonly Level[]): void {
    if (!levels.length) return;
    for (const l of levels) this.twinTotal -= l.twin.bytes;
    for (const q of [...this.roomWaiters]) {
      this.roomWaiters.delete(q);
      this.pump(q);
    }
  }

  /** Rolls back to `level` now, or once the slice (or a restore) ends. */
  private requestRollback(p: Proc, level: Level, real?: WaitResult): void {
    if (gone(p) || !p.sp.levels.includes(level)) return;
    const cur = p.pendingRollback;
    if (cur && p.sp.levels.indexOf(cur.level) <= p.sp.levels.indexOf(level)) return; // an earlier one wins
    p.pendingRollback = { level, real };
    if (p.phase !== 'RUNNING' && !p.restoring) this.rollback(p);
  }

  /**
   * Cancels `level` and every level above: their own speculations are cancelled (dependents
   * told), their output dropped, the instance replaced by the twin (restored async), and the
   * deliveries logged since the twin are delivered again (those of cancelled worlds drop out).
   */
  private rollback(p: Proc): void {
    const { level, real } = p.pendingRollback!;
    p.pendingRollback = null;
    if (!p.sp.levels.includes(level)) return;
    const { dropped, redeliver } = p.sp.cut(level);
    this.freeTwins(dropped);
    p.sp.stats.rollbacks++;
    for (const l of dropped) if (l.own && l.ids.has(l.own.id)) this.cancelOwn(p, l.own.id);
    p.heldExit = null;
    if (p.stdin && level.twin.stdinMark !== null) p.stdin.rewind(level.twin.stdinMark);
    if (!p.sp.active) p.stdin?.forget(Infinity);
    p.deferred = [...redeliver, ...p.deferred];
    p.forkLater = false;
    this.dropInstance(p);
    p.restoring = true;
    p.phase = 'loading';
    p.state = 'READY';
    this.dirty.add(p);
    void this.restoreTwin(p, level, real);
  }

  /** The current instance goes (a rollback or the end): nothing of it may reach the next one. */
  private dropInstance(p: Proc): void {
    const t = p.thread;
    try {
      if (t && t.state !== 'EXITED' && t.state !== 'RUNNING') t.terminate(EXIT_KILLED);
    } catch {
      // nothing more to do
    }
    p.thread = null;
    p.lshapes?.dispose();
    p.lshapes = null;
    p.reader?.detach();
    p.reader = null;
    try {
      // releases the fds' holds on /cluster nodes (the twin's fd table takes its own)
      p.wasi?.restore({ version: 1, args: [], env: [], fds: [] });
    } catch {
      // nothing held
    }
    p.wasi = null;
    p.ackWaiters = [];
  }

  private async restoreTwin(p: Proc, level: Level, real: WaitResult | undefined): Promise<void> {
    let thread: WasmThread;
    try {
      const tmp = level.twin.tmp ? rebuildTmp(level.twin.tmp) : null;
      const hosts = this.hostModules(p, tmp?.fs);
      const snapshot = tmp ? remapTmpFds(level.twin.thread, tmp.nodeMap) : level.twin.thread;
      const options: RestoreOptions = { clock: this.opts.clock };
      // The twin gets the real result at once, without speculating again.
      if (real?.kind === 'sync') options.resumeWith = { ok: true, value: real.errno };
      const t0 = this.opts.clock.now();
      thread = await WasmThread.restore(p.module!, snapshot, hosts, options);
      if (p.mode === 'on' && level.own) this.predictor.cost(level.own.site, 'restore', this.opts.clock.now() - t0);
      tmp?.dropOrphans();
    } catch (e) {
      if (gone(p)) return;
      p.restoring = false;
      this.dropSpeculation(p);
      this.finish(p, EXIT_TRAPPED, `cannot roll back a speculation: ${describe(e)}`);
      return;
    }
    if (gone(p)) return;
    if (real?.kind === 'call' && level.own?.token !== undefined) {
      p.lshapes!.settleCall(level.own.token, real.errno ? null : real.data, real.errno);
    }
    // The twin's record of seen seqs predates messages that arrived since (logged or deferred).
    for (const m of p.deferred) if (m.checked && m.seq !== undefined) p.lshapes!.accept(m.from, m.seq);
    p.thread = thread;
    p.restoring = false;
    p.phase = 'READY';
    p.state = 'READY';
    this.dirty.add(p);
    if (p.pendingKill !== null) {
      this.kill(p, p.pendingKill);
      return;
    }
    if (p.pendingRollback) {
      this.rollback(p);
      return;
    }
    this.pump(p);
    if (p.freezing || p.checkpointing) this.tryFreeze(p);
    this.makeReady(p);
  }

  /** An own speculation is cancelled: dependents hear it. */
  private cancelOwn(p: Proc, id: SpecId): void {
    this.resolved.set(id, false);
    this.opts.post({ t: 'spec.resolved', pid: p.pid, id, ok: false });
    this.resolveLocal(id, false, p);
  }

  /** Everything speculative goes (a kill, a failed rollback): own speculations are cancelled. */
  private dropSpeculation(p: Proc): void {
    const dropped = p.sp.clear();
    this.freeTwins(dropped);
    for (const l of dropped) if (l.own && l.ids.has(l.own.id)) this.cancelOwn(p, l.own.id);
    p.heldExit = null;
    p.pendingRollback = null;
    p.stdin?.forget(Infinity);
  }

  // ───────────────────────────── output and reports ─────────────────────────────

  private flushOut(p: Proc): void {
    if (p.out.length === 0) return;
    const chunks = p.out;
    p.out = [];
    p.outBytes = 0;
    let i = 0;
    while (i < chunks.length) {
      const fd = chunks[i]!.fd;
      let j = i;
      let n = 0;
      while (j < chunks.length && chunks[j]!.fd === fd) n += chunks[j++]!.data.length;
      let data: Uint8Array;
      if (j === i + 1) data = chunks[i]!.data;
      else {
        data = new Uint8Array(n);
        let at = 0;
        for (let k = i; k < j; k++) {
          data.set(chunks[k]!.data, at);
          at += chunks[k]!.data.length;
        }
      }
      this.opts.post({ t: 'out', pid: p.pid, fd, data, at: p.outAt });
      p.outAt += data.length;
      if (p.window > 0) p.unacked += data.length;
      i = j;
    }
  }

  /** The state the Scheduler sees: WAIT_CONFIRM while it runs on its own predictions. */
  private shownState(p: Proc): ProcessState {
    if (p.phase === 'EXIT_HELD') return 'WAITING';
    if (p.state === 'WAITING' || p.state === 'EXITED') return p.state;
    return p.sp.depth > 0 ? 'WAIT_CONFIRM' : p.state;
  }

  /**
   * Tells the Scheduler a process's state and CPU time: at once for the first report and when
   * it starts or stops WAITING or its speculation depth changes (but not more than every 20 ms:
   * a deferred report is sent by a timer), otherwise at most every stateIntervalMs while
   * something changed.
   */
  private report(p: Proc, first = false): void {
    if (p.phase === 'EXITED') return;
    const now = this.opts.clock.now();
    const state = this.shownState(p);
    const depth = p.sp.depth;
    const st = p.sp.stats;
    const stats = `${st.predictions},${st.hits},${st.rollbacks}`;
    const quick = p.shown === null || (p.shown === 'WAITING') !== (state === 'WAITING') || depth !== p.shownDepth;
    const gap = now - p.shownAt;
    const due = first || (quick ? gap >= Math.min(20, this.stateInterval) : gap >= this.stateInterval);
    const changed = state !== p.shown || p.cpuMs !== p.shownCpu || depth !== p.shownDepth || stats !== p.shownStats;
    if (!changed) {
      this.dirty.delete(p);
      return;
    }
    if (!due) {
      this.dirty.add(p);
      this.armReportTimer(quick ? Math.min(20, this.stateInterval) - gap : this.stateInterval - gap);
      return;
    }
    this.dirty.delete(p);
    p.shown = state;
    p.shownCpu = p.cpuMs;
    p.shownAt = now;
    p.shownDepth = depth;
    p.shownStats = stats;
    const msg: FromExecutor = { t: 'state', pid: p.pid, state, cpuMs: p.cpuMs };
    if (p.mode !== 'off' || st.predictions || st.rollbacks) msg.spec = { ...st, depth };
    this.opts.post(msg);
  }

  private flushReports(): void {
    for (const p of [...this.dirty]) this.report(p);
  }

  private armReportTimer(ms: number): void {
    if (this.reportTimer) return;
    this.reportTimer = this.setTimer(Math.max(1, Math.ceil(ms)), () => {
      this.reportTimer = null;
      this.flushReports();
    });
  }
}

/** The token of a reply (`#reply:<t>`) or no-reply (`#noreply:<t>`) port; null for other ports. */
function replyToken(port: string): number | null {
  const rest = port.startsWith(REPLY_PORT) ? port.slice(REPLY_PORT.length) : port.startsWith(NOREPLY_PORT) ? port.slice(NOREPLY_PORT.length) : null;
  if (rest === null || !/^\d+$/.test(rest)) return null;
  return Number(rest);
}

/** A reply delivery as a call's result. */
function callResult(m: Delivery): WaitResult {
  if (m.port.startsWith(NOREPLY_PORT)) return { kind: 'call', errno: Errno.SRCH, data: EMPTY };
  return { kind: 'call', errno: 0, data: m.data };
}

/** Predictor key of a call: the program, the callee and its port. */
function callSite(p: Proc, to: Pid, port: string): string {
  return `${p.spec.hash}|call|${to}|${port}`;
}

/** Whether the process has ended (a function: TypeScript would keep a narrowing across awaits). */
function gone(p: Proc): boolean {
  return p.phase === 'EXITED';
}

/** Whether anything speculative is open or went into its state: no image may be taken then. */
function speculative(p: Proc): boolean {
  return p.sp.active || p.restoring || p.pendingRollback !== null || p.deferred.length > 0 || p.phase === 'EXIT_HELD';
}

/** The imports no host module provides, as "module.name". */
function missingImports(rewritten: RewrittenModule, hosts: readonly HostModule[]): string[] {
  const dummy = { memory: (): WebAssembly.Memory => new WebAssembly.Memory({ initial: 0 }) };
  const tables = new Map(hosts.map((h) => [h.name, h.functions(dummy)]));
  const out: string[] = [];
  for (const imp of rewritten.imports) {
    const t = tables.get(imp.module);
    if (!t || typeof t[imp.name] !== 'function' || !Object.hasOwn(t, imp.name)) out.push(`${imp.module}.${imp.name}`);
  }
  return out;
}

function loadMessage(e: unknown): string {
  if (e instanceof WasmLinkError || e instanceof WasmLoadError || e instanceof ImageError) return e.message;
  if (e instanceof SnapshotError) return `cannot thaw the process: ${e.message}`;
  return `cannot start: ${describe(e)}`;
}
