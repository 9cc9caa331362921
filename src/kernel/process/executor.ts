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
//              image taken (image.ts), the process dropped, `frozen` posted
//   thaw     → like start, but the thread, /tmp, stdin and flow control come from an image
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
import { RemoteFileSystem, serveFileSystem, type FsCall, type FsReply, type FsRequest } from '../wasi/remote-fs.ts';
import { Wasi } from '../wasi/preview1.ts';
import type { WasiClock } from '../wasi/clock.ts';
import { QueueInput, emptyInput, type OutputStream } from '../wasi/streams.ts';
import { SnapshotError, WasmLinkError, WasmLoadError, describe } from '../wasm/errors.ts';
import { ProcessExit, type HostModule } from '../wasm/host-calls.ts';
import { loadRewritten, rewriteModule } from '../wasm/rewrite.ts';
import { WasmThread, type RunResult } from '../wasm/thread.ts';
import type { RewrittenModule } from '../wasm/types.ts';
import { ImageError, captureTmp, decodeImage, encodeImage, openTmpNodes, rebuildTmp, remapTmpFds, type ProcessImage } from './image.ts';
import { LshapesHost } from './lshapes.ts';
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
  /** SHA-256 for the rewrite cache (default @noble/hashes; hosts may pass WebCrypto). */
  sha256?: (bytes: Uint8Array) => Promise<Uint8Array> | Uint8Array;
}

const DEFAULT_SLICE_MS = 10;
const DEFAULT_MAX_MEMORY = 512 << 20;
/** CPU-time-only reports: often enough for a live panel, rare enough to cost nothing. */
const DEFAULT_STATE_INTERVAL = 250;
/** Output buffered beyond this is posted before the slice ends. */
const OUT_FLUSH_BYTES = 64 << 10;
/** Rewritten modules compiled from `spec.rewritten`, by hash. */
const LOADED_LIMIT = 32;

type Phase = 'loading' | 'READY' | 'RUNNING' | 'WAITING' | 'EXITED';

interface Proc {
  readonly spec: ProcessSpec;
  readonly pid: Pid;
  phase: Phase;
  thread: WasmThread | null;
  readonly lshapes: LshapesHost;
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
  /** The freeze of a blocked thread waited a macrotask for a result already on its way. */
  freezeSettled: boolean;
  /**
   * Messages delivered while a thaw loads (restoring the mailbox would drop them): handed over
   * once the thread is restored. Null otherwise.
   */
  earlyDeliveries: { port: string; from: Pid; token: number; data: Uint8Array }[] | null;
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

  constructor(options: ExecutorOptions) {
    this.opts = options;
    this.sliceMs = Math.max(1, options.sliceMs ?? DEFAULT_SLICE_MS);
    this.maxMemoryBytes = Math.max(1 << 16, options.maxMemoryBytes ?? DEFAULT_MAX_MEMORY);
    this.stateInterval = Math.max(1, options.stateIntervalMs ?? DEFAULT_STATE_INTERVAL);
    this.setTimer = options.setTimer ?? defaultSetTimer;
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
      this.thaw(msg.spec, msg.image);
      return;
    }
    if (msg.t === 'freeze' && !this.procs.has(msg.pid)) {
      this.opts.post({ t: 'freeze.failed', pid: msg.pid, reason: 'no such process here' });
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
      case 'reply': {
        const resolve = p.calls.get(msg.call);
        if (resolve) {
          p.calls.delete(msg.call);
          resolve(msg.reply);
        }
        break;
      }
      case 'deliver':
        if (p.earlyDeliveries) p.earlyDeliveries.push({ port: msg.port, from: msg.from, token: msg.token, data: msg.data });
        else p.lshapes.deliver(msg.port, msg.from, msg.token, msg.data);
        break;
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

  private thaw(spec: ProcessSpec, image: Uint8Array): void {
    if (this.procs.has(spec.pid)) return; // the pid runs here already
    const p = this.newProc(spec);
    this.procs.set(spec.pid, p);
    let decoded: ProcessImage;
    try {
      // At once, not after the load: stdin and acks that follow the thaw apply on top of it.
      decoded = this.checkedImage(p, image);
    } catch (e) {
      this.finish(p, EXIT_CANNOT_START, loadMessage(e));
      return;
    }
    p.earlyDeliveries = [];
    void this.load(p, decoded);
  }

  private newProc(spec: ProcessSpec): Proc {
    const stdin = spec.interactiveStdin ? new QueueInput() : null;
    const calls = new Map<number, (reply: KernelReply) => void>();
    const p: Proc = {
      spec,
      pid: spec.pid,
      phase: 'loading',
      thread: null,
      lshapes: null as unknown as LshapesHost,
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
      cluster: this.clusterFs ? new RemoteFileSystem(this.clusterFs.call(spec.pid), this.clusterFs.root) : null,
      tmp: null,
      freezing: false,
      freezeSettled: false,
      earlyDeliveries: null,
    };
    (p as { lshapes: LshapesHost }).lshapes = new LshapesHost({
      pid: spec.pid,
      peer: spec.peer,
      parent: spec.hasParent ? spec.parent : undefined,
      setTimer: this.setTimer,
      request: (req) =>
        new Promise<KernelReply>((resolve) => {
          if (p.phase === 'EXITED') return;
          this.flushOut(p); // what the program printed before asking comes first
          const call = p.nextCall++;
          calls.set(call, resolve);
          this.opts.post({ t: 'call', pid: p.pid, call, req });
        }),
    });
    return p;
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
        for (const m of p.earlyDeliveries!.splice(0)) p.lshapes.deliver(m.port, m.from, m.token, m.data);
        p.earlyDeliveries = null;
      } else {
        thread = await WasmThread.create(rewritten, hosts, { clock: this.opts.clock });
      }
    } catch (e) {
      if (p.phase !== 'EXITED') this.finish(p, EXIT_CANNOT_START, loadMessage(e));
      return;
    }
    if (gone(p)) return;
    p.thread = thread;
    p.phase = 'READY';
    p.state = 'READY';
    this.report(p, true);
    if (p.freezing) {
      this.tryFreeze(p);
      if (gone(p)) return;
    }
    this.makeReady(p);
  }

  /** The image of a thaw, checked against the spec; its stdin, flow control and CPU time go into the process. */
  private checkedImage(p: Proc, bytes: Uint8Array): ProcessImage {
    const image = decodeImage(bytes);
    if (image.pid !== p.pid) throw new ImageError(`the process image is of process ${image.pid}, not ${p.pid}`);
    if (image.moduleHash !== p.spec.hash) {
      throw new ImageError(
        `the process image belongs to another program (module ${image.moduleHash.slice(0, 12)}…, not ${p.spec.hash.slice(0, 12)}…)`,
      );
    }
    p.unacked = image.unacked;
    p.cpuMs = image.cpuMs;
    if (image.stdin && p.stdin) {
      if (image.stdin.data.length) p.stdin.push(image.stdin.data);
      if (image.stdin.ended) p.stdin.end();
    }
    return image;
  }

  private rewritten(spec: ProcessSpec): Promise<RewrittenModule> {
    if (spec.rewritten) {
      const bytes = spec.rewritten;
      let r = this.loaded.get(spec.hash);
      if (!r) {
        r = loadRewritten(bytes, spec.hash);
        this.loaded.set(spec.hash, r);
        while (this.loaded.size > LOADED_LIMIT) this.loaded.delete(this.loaded.keys().next().value as string);
        r.catch(() => this.loaded.delete(spec.hash));
      }
      return r.catch(async (e: unknown) => {
        // stale or foreign rewritten bytes: rewrite the original when we have it
        if (spec.module) return this.rewrite(spec.module);
        throw e;
      });
    }
    if (!spec.module) return Promise.reject(new WasmLoadError('no module to run (neither module nor rewritten bytes given)'));
    return this.rewrite(spec.module);
  }

  private async rewrite(module: Uint8Array): Promise<RewrittenModule> {
    const options: Parameters<typeof rewriteModule>[1] = { maxMemoryBytes: this.maxMemoryBytes };
    if (this.opts.sha256) options.sha256 = this.opts.sha256;
    const r = await rewriteModule(module, options);
    if (!this.announced.has(r.hash)) {
      this.announced.add(r.hash);
      this.opts.post({ t: 'rewritten', hash: r.hash, bytes: r.bytes });
    }
    return r;
  }

  private hostModules(p: Proc, tmp?: MemFs): HostModule[] {
    const spec = p.spec;
    const output = (fd: 1 | 2): OutputStream => ({
      write: (data) => {
        if (data.length === 0 || p.phase === 'EXITED') return;
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
      stdin: p.stdin ?? emptyInput,
      stdout: output(1),
      stderr: output(2),
      ...(this.opts.wasiClock ? { clock: this.opts.wasiClock } : {}),
      ...(this.opts.random ? { random: this.opts.random } : {}),
      onFault: (call) => {
        p.fault = `bad pointer passed to ${call} (segmentation fault)`;
        throw new ProcessExit(EXIT_SEGFAULT);
      },
    });
    return [wasi, p.lshapes];
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
    switch (r.state) {
      case 'yielded':
        p.state = 'RUNNING';
        this.dirty.add(p);
        this.ready.push(p);
        break;
      case 'blocked':
        p.phase = 'WAITING';
        p.state = 'WAITING';
        this.dirty.add(p);
        r.until.then(
          () => this.wake(p),
          () => this.wake(p),
        );
        break;
      case 'exited':
        if (r.code === EXIT_SEGFAULT && p.fault) this.finish(p, r.code, p.fault);
        else this.finish(p, r.code);
        break;
      case 'trapped':
        this.finish(p, EXIT_TRAPPED, this.trapMessage(p, r.message));
        break;
    }
    if (p.freezing) this.tryFreeze(p);
  }

  private wake(p: Proc): void {
    if (p.phase !== 'WAITING' || p.thread?.state !== 'READY') return;
    if (p.freezing) {
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
    this.finish(p, EXIT_KILLED, reason || 'killed');
  }

  private finish(p: Proc, code: number, message?: string): void {
    p.lshapes.abandonCalls();
    this.flushOut(p);
    p.phase = 'EXITED';
    p.state = 'EXITED';
    p.lshapes.dispose();
    p.cluster?.releaseAll();
    p.calls.clear();
    this.dirty.delete(p);
    this.procs.delete(p.pid);
    const msg: FromExecutor = { t: 'exit', pid: p.pid, code, cpuMs: p.cpuMs };
    if (message !== undefined) msg.message = message;
    this.opts.post(msg);
    if (p.freezing) this.opts.post({ t: 'freeze.failed', pid: p.pid, reason: `it exited (code ${code}) before it could be frozen` });
    p.thread = null;
  }

  // ───────────────────────────── freezing ─────────────────────────────

  /**
   * Freezes the process if it is at a safe point now; otherwise the load, the slice or the wake
   * that ends the current phase calls this again.
   */
  private tryFreeze(p: Proc): void {
    if (!p.freezing || gone(p) || p.phase === 'loading' || p.phase === 'RUNNING') return;
    const thread = p.thread!;
    if (thread.state === 'WAITING') {
      const on = thread.waitingOn;
      if (on?.module === 'lshapes' && on.name === 'spawn') {
        this.freezeFailed(p, 'blocked in spawn');
        return;
      }
      if (p.ackWaiters.length) {
        // Blocked writing to a terminal that is behind: its data is already taken (posted), so
        // a re-issued write would print it twice. Let the write finish; wake() comes back here
        // and the image carries the unacknowledged bytes.
        for (const wake of p.ackWaiters.splice(0)) wake();
        return;
      }
      if (!p.freezeSettled) {
        // A host call may have done its work already (recv took the message, a read its bytes)
        // with the result still travelling through Promise callbacks: once they ran (a
        // macrotask later) the thread is READY with the result, or truly blocked with no work
        // done, and a re-issued call is right. wake() or this timer comes back here.
        p.freezeSettled = true;
        this.setTimer(0, () => this.tryFreeze(p));
        return;
      }
    }
    // Earlier output first; flow control counts it before the image records `unacked`.
    this.flushOut(p);
    let image: Uint8Array;
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
      });
    } catch (e) {
      this.freezeFailed(p, `cannot take its image: ${describe(e)}`);
      return;
    }
    // Dropped without an exit: its reply tokens, mailbox and holds travel in the image.
    p.phase = 'EXITED';
    p.state = 'EXITED';
    p.freezing = false;
    p.lshapes.dispose();
    p.cluster?.releaseAll();
    p.calls.clear();
    p.ackWaiters = [];
    this.dirty.delete(p);
    this.procs.delete(p.pid);
    p.thread = null;
    this.opts.post({ t: 'frozen', pid: p.pid, image, cpuMs: p.cpuMs });
  }

  private freezeFailed(p: Proc, reason: string): void {
    p.freezing = false;
    p.freezeSettled = false;
    this.opts.post({ t: 'freeze.failed', pid: p.pid, reason });
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
      this.opts.post({ t: 'out', pid: p.pid, fd, data });
      if (p.window > 0) p.unacked += data.length;
      i = j;
    }
  }

  /**
   * Tells the Scheduler a process's state and CPU time: at once for the first report and when
   * it starts or stops WAITING (but not more than every 20 ms: a deferred report is sent by a
   * timer), otherwise at most every stateIntervalMs while something changed.
   */
  private report(p: Proc, first = false): void {
    if (p.phase === 'EXITED') return;
    const now = this.opts.clock.now();
    const waitingChanged = p.shown === null || (p.shown === 'WAITING') !== (p.state === 'WAITING');
    const gap = now - p.shownAt;
    const due = first || (waitingChanged ? gap >= Math.min(20, this.stateInterval) : gap >= this.stateInterval);
    const changed = p.state !== p.shown || p.cpuMs !== p.shownCpu;
    if (!changed) {
      this.dirty.delete(p);
      return;
    }
    if (!due) {
      this.dirty.add(p);
      this.armReportTimer(waitingChanged ? Math.min(20, this.stateInterval) - gap : this.stateInterval - gap);
      return;
    }
    this.dirty.delete(p);
    p.shown = p.state;
    p.shownCpu = p.cpuMs;
    p.shownAt = now;
    this.opts.post({ t: 'state', pid: p.pid, state: p.state, cpuMs: p.cpuMs });
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

/** Whether the process has ended (a function: TypeScript would keep a narrowing across awaits). */
function gone(p: Proc): boolean {
  return p.phase === 'EXITED';
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
