// A client of the Scheduler of its own peer, for the shell's terminal, the processes panel and the
// CLI: it registers one kernel port, sends ClientRequests to the `scheduler` port and pairs the
// replies with them. Host-agnostic (no DOM, no Node): timers come from the kernel's clock driver.
//
// Ordering: the kernel delivers the messages of one port in the order they were sent, and the
// Scheduler sends a process's `exit` after all its `out`. `onOutput` is called synchronously for
// each `out` as it arrives, and `exit` is settled only when the `exit` (or `lost`) message itself
// is handled, so every output chunk before it has been handed to `onOutput` by then.
//
// Repeats: a process that moved (or restarted from a checkpoint) may print again what it printed
// after its image was taken. Each `out` says where its bytes sit in the process's whole output
// (`at`); the client remembers per pid how far it got and hands on only the bytes past that, so
// the terminal sees every byte once and in order.
import { PORTS } from '../../kernel/server.ts';
import type { Address, Cancel, Envelope, PeerId, PortName } from '../../kernel/types.ts';
import type { ClientMessage, ClientRequest, Pid, ProcessInfo, ProcessState, SpeculationMode, SpeculationStats } from '../../servers/scheduler/client.ts';

/** The few kernel methods the client uses (a Kernel has them all). */
export interface SchedulerClientKernel {
  readonly self: PeerId;
  register(port: PortName, handler: (env: Envelope) => void): void;
  unregister(port: PortName): void;
  send(from: Address, to: Address, body: unknown): boolean;
  readonly drivers: { readonly clock: { setTimeout(fn: () => void, ms: number): Cancel } };
}

export interface ProcessExit {
  code: number;
  /** Why it ended when it did not simply exit (trap, killed, could not start). */
  message?: string;
}

export interface RunOptions {
  /** A full peer id or a unique prefix; otherwise the Scheduler places the process. */
  on?: string;
  env?: Record<string, string>;
  /** The module itself, for a program the program store does not have. */
  module?: Uint8Array;
  /** Stdin is fed with stdin()/stdinEnd(); otherwise it is empty. */
  interactive?: boolean;
  /** Fork On Wait for it and its children (default: the Scheduler's). */
  speculation?: SpeculationMode;
  /**
   * Output of the process and of its children, in the order it was written. Return a Promise to
   * say when the chunk has really been taken (shown, written): the process may only have
   * ~1 MiB of output in flight, so a slow terminal slows the program down instead of filling
   * memory.
   */
  onOutput(fd: 1 | 2, data: Uint8Array): unknown;
}

export interface RunHandle {
  pid: Pid;
  peer: PeerId;
  /** Settles after every output chunk before the exit went through onOutput. Rejects with
   *  Error(message) when the process was lost with its peer (or the client closed). */
  exit: Promise<ProcessExit>;
}

/** Where a process runs after migrate(), and how long it was stopped for the move. */
export interface Moved {
  peer: PeerId;
  freezeMs: number;
  /** The pre-copy before the stop (the process ran on meanwhile), and the bytes shipped while it was stopped. */
  precopyMs?: number;
  frozenBytes?: number;
  /** Where the downtime went (ms; dispatcher/emigration.ts FreezePhases). */
  phases?: { freeze: number; pack: number; check: number; thaw: number };
}

/** What drain() did: processes moved away, and processes still on this peer (could not move). */
export interface Drained {
  moved: number;
  left: number;
}

export interface SchedulerClientOptions {
  /** The Scheduler's port (default PORTS.scheduler). */
  schedulerPort?: PortName;
  /** Timeout of a run request (default 60 s: a first run rewrites the module, several seconds). */
  runTimeoutMs?: number;
  /** Timeout of migrate and drain (default 60 s: a process image of many MiB crosses a link). */
  moveTimeoutMs?: number;
  /** Timeout of the other requests (default 10 s). */
  requestTimeoutMs?: number;
}

export const RUN_TIMEOUT_MS = 60_000;
export const REQUEST_TIMEOUT_MS = 10_000;
export const MOVE_TIMEOUT_MS = 60_000;
/** Messages for pids not known yet, held while a run request is pending (its run.ok may come later). */
const MAX_HELD = 10_000;

/** What the client saw that it could not use. For tests and diagnostics. */
export interface SchedulerClientStats {
  /** Bodies that were not a valid ClientMessage. */
  garbage: number;
  /** Replies to no pending request (late after a timeout, duplicates). */
  unmatched: number;
  /** out/exit/lost for no run (or for a run that had already ended). */
  orphans: number;
  /** Output bytes dropped because the client already had them (a moved process printed them again). */
  repeated: number;
  /** Output bytes that never came: an `out` started past where the last one ended. */
  missing: number;
}

interface Pending {
  kind: 'run' | 'kill' | 'migrate' | 'drain' | 'ps' | 'programs';
  /** run only: where its output goes. */
  onOutput?: RunOptions['onOutput'];
  resolve(msg: ClientMessage): void;
  reject(err: Error): void;
  cancel: Cancel;
}

type ProcessMessage = Extract<ClientMessage, { kind: 'out' | 'exit' | 'lost' }>;

interface Run {
  pid: Pid;
  peer: PeerId;
  /** Order of start, for "the latest run". */
  seq: number;
  alive: boolean;
  onOutput: RunOptions['onOutput'];
  resolve(exit: ProcessExit): void;
  reject(err: Error): void;
}

const STATES: ReadonlySet<string> = new Set<ProcessState>(['READY', 'RUNNING', 'WAITING', 'WAIT_CONFIRM', 'STOPPED', 'MIGRATING', 'EXITED']);

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isReq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const isStrArr = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr);
const isCount = (v: unknown): v is number => isNum(v) && v >= 0;
const isPhases = (v: unknown): v is Moved['phases'] & object => {
  const p = v as Record<string, unknown> | null;
  return typeof p === 'object' && p !== null && isNum(p.freeze) && isNum(p.pack) && isNum(p.check) && isNum(p.thaw);
};

function isSpeculationStats(v: unknown): v is SpeculationStats {
  return isObj(v) && isCount(v.depth) && isCount(v.predictions) && isCount(v.hits) && isCount(v.rollbacks) && isCount(v.savedMs);
}

/** A ProcessInfo row, loosely checked (unknown extra fields are kept). */
export function isProcessInfo(v: unknown): v is ProcessInfo {
  return (
    isObj(v) &&
    isStr(v.pid) &&
    isStr(v.name) &&
    isStrArr(v.args) &&
    isStr(v.peer) &&
    isStr(v.state) &&
    STATES.has(v.state) &&
    isNum(v.cpuMs) &&
    isNum(v.startedAt) &&
    (v.exitCode === undefined || isNum(v.exitCode)) &&
    (v.parent === undefined || isStr(v.parent)) &&
    (v.speculation === undefined || isSpeculationStats(v.speculation)) &&
    (v.moves === undefined || isCount(v.moves))
  );
}

/** The body as a ClientMessage, or undefined when it is not one. Rows that are not ProcessInfo are dropped (and counted in `bad`). */
export function parseClientMessage(body: unknown, bad: { rows: number } = { rows: 0 }): ClientMessage | undefined {
  if (!isObj(body) || !isStr(body.kind)) return undefined;
  const rows = (v: unknown): ProcessInfo[] | undefined => {
    if (!Array.isArray(v)) return undefined;
    const ok = v.filter(isProcessInfo);
    bad.rows += v.length - ok.length;
    return ok;
  };
  const b = body;
  switch (b.kind) {
    case 'run.ok':
      return isReq(b.req) && isStr(b.pid) && isStr(b.peer) ? { kind: 'run.ok', req: b.req, pid: b.pid, peer: b.peer } : undefined;
    case 'run.failed':
    case 'kill.failed':
    case 'migrate.failed':
      return isReq(b.req) && isStr(b.message) ? { kind: b.kind, req: b.req, message: b.message } : undefined;
    case 'kill.ok':
      return isReq(b.req) ? { kind: 'kill.ok', req: b.req } : undefined;
    case 'migrate.ok':
      return isReq(b.req) && isStr(b.pid) && isStr(b.peer) && isCount(b.freezeMs)
        ? { kind: 'migrate.ok', req: b.req, pid: b.pid, peer: b.peer, freezeMs: b.freezeMs, ...(isCount(b.precopyMs) ? { precopyMs: b.precopyMs } : {}), ...(isCount(b.frozenBytes) ? { frozenBytes: b.frozenBytes } : {}), ...(isPhases(b.phases) ? { phases: b.phases } : {}) }
        : undefined;
    case 'drain.ok':
      return isReq(b.req) && isCount(b.moved) && isCount(b.left) ? { kind: 'drain.ok', req: b.req, moved: b.moved, left: b.left } : undefined;
    case 'out': {
      if (!isStr(b.pid) || (b.fd !== 1 && b.fd !== 2) || !(b.data instanceof Uint8Array)) return undefined;
      if (b.at === undefined) return { kind: 'out', pid: b.pid, fd: b.fd, data: b.data };
      return isReq(b.at) && b.at >= 0 ? { kind: 'out', pid: b.pid, fd: b.fd, data: b.data, at: b.at } : undefined;
    }
    case 'exit':
      if (!isStr(b.pid) || !isNum(b.code) || (b.message !== undefined && !isStr(b.message))) return undefined;
      return b.message === undefined ? { kind: 'exit', pid: b.pid, code: b.code } : { kind: 'exit', pid: b.pid, code: b.code, message: b.message };
    case 'lost':
      return isStr(b.pid) && isStr(b.message) ? { kind: 'lost', pid: b.pid, message: b.message } : undefined;
    case 'ps.ok': {
      const r = rows(b.rows);
      return isReq(b.req) && r ? { kind: 'ps.ok', req: b.req, rows: r } : undefined;
    }
    case 'programs.ok':
      return isReq(b.req) && isStrArr(b.names) ? { kind: 'programs.ok', req: b.req, names: b.names } : undefined;
    case 'table': {
      const r = rows(b.rows);
      return r ? { kind: 'table', rows: r } : undefined;
    }
    default:
      return undefined;
  }
}

/** Bounded memory of pids: the oldest entry goes first. */
const MAX_REMEMBERED = 4096;
function remember<V>(into: Set<Pid> | Map<Pid, V>, pid: Pid, value?: V): void {
  if (into instanceof Set) into.add(pid);
  else into.set(pid, value as V);
  if (into.size > MAX_REMEMBERED) into.delete(into.keys().next().value as Pid);
}

export class SchedulerClient {
  readonly stats: SchedulerClientStats = { garbage: 0, unmatched: 0, orphans: 0, repeated: 0, missing: 0 };
  private readonly scheduler: Address;
  private readonly me: Address;
  private readonly runTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly moveTimeoutMs: number;
  private nextReq = 1;
  private nextSeq = 1;
  private readonly pending = new Map<number, Pending>();
  /** Runs by their own pid. */
  private readonly runs = new Map<Pid, Run>();
  /** Other pids (children) whose output went to a run. */
  private readonly routed = new Map<Pid, Run>();
  /** Pids of runs that ended (bounded). */
  private readonly ended = new Set<Pid>();
  /** Per pid (runs and their children): the offset in its output the next new byte has. */
  private readonly nextAt = new Map<Pid, number>();
  /** Handles made on run.ok, until run() picks them up. */
  private readonly handles = new Map<Pid, RunHandle>();
  /** out/exit/lost for unknown pids that came while a run request was pending. */
  private held: ProcessMessage[] = [];
  private readonly watchers = new Set<(rows: ProcessInfo[]) => void>();
  private table: ProcessInfo[] | undefined;
  private parents = new Map<Pid, Pid>();
  private closed = false;

  constructor(
    private readonly kernel: SchedulerClientKernel,
    readonly port: PortName,
    opts: SchedulerClientOptions = {},
  ) {
    this.scheduler = { peer: kernel.self, port: opts.schedulerPort ?? PORTS.scheduler };
    this.me = { peer: kernel.self, port };
    this.runTimeoutMs = opts.runTimeoutMs ?? RUN_TIMEOUT_MS;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.moveTimeoutMs = opts.moveTimeoutMs ?? MOVE_TIMEOUT_MS;
    kernel.register(port, (env) => {
      try {
        this.receive(env);
      } catch {
        // Never throw out of the port handler; a bug here must not hide the message's sender.
        this.stats.garbage++;
      }
    });
  }

  // ---- requests ----

  async run(name: string, args: string[], opts: RunOptions): Promise<RunHandle> {
    const req = this.nextReq++;
    const body: ClientRequest = { kind: 'run', req, name, args };
    if (opts.env !== undefined) body.env = opts.env;
    if (opts.on !== undefined) body.on = opts.on;
    if (opts.module !== undefined) body.module = opts.module;
    if (opts.interactive !== undefined) body.interactive = opts.interactive;
    if (opts.speculation !== undefined) body.speculation = opts.speculation;
    body.acks = true;
    // The run is registered by the port handler as run.ok arrives (see onRunOk), so an `out`
    // right behind it finds it.
    const reply = await this.request('run', req, body, this.runTimeoutMs, `run ${name}`, opts.onOutput);
    const pid = reply.kind === 'run.ok' ? reply.pid : '';
    const handle = this.handles.get(pid);
    if (!handle) throw new Error('the scheduler client was closed');
    this.handles.delete(pid);
    return handle;
  }

  stdin(pid: Pid, data: Uint8Array): void {
    this.post({ kind: 'stdin', pid, data });
  }

  stdinEnd(pid: Pid): void {
    this.post({ kind: 'stdin.end', pid });
  }

  async kill(pid: Pid): Promise<void> {
    const req = this.nextReq++;
    await this.request('kill', req, { kind: 'kill', req, pid }, this.requestTimeoutMs, `kill ${pid}`);
  }

  /** Moves a running process to peer `to` (a full id or a unique prefix). Rejects with the
   *  Scheduler's reason (no such process, no such peer, it cannot move now…). */
  async migrate(pid: Pid, to: string): Promise<Moved> {
    const req = this.nextReq++;
    const reply = await this.request('migrate', req, { kind: 'migrate', req, pid, to }, this.moveTimeoutMs, `migrate ${pid}`);
    if (reply.kind !== 'migrate.ok') throw new Error(`unexpected answer to migrate: ${reply.kind}`);
    const { precopyMs, frozenBytes, phases } = reply;
    return { peer: reply.peer, freezeMs: reply.freezeMs, ...(precopyMs !== undefined ? { precopyMs } : {}), ...(frozenBytes !== undefined ? { frozenBytes } : {}), ...(phases ? { phases } : {}) };
  }

  /** Moves every process running on this peer elsewhere (before the peer leaves). */
  async drain(): Promise<Drained> {
    const req = this.nextReq++;
    const reply = await this.request('drain', req, { kind: 'drain', req }, this.moveTimeoutMs, 'drain');
    if (reply.kind !== 'drain.ok') throw new Error(`unexpected answer to drain: ${reply.kind}`);
    return { moved: reply.moved, left: reply.left };
  }

  async ps(): Promise<ProcessInfo[]> {
    const req = this.nextReq++;
    const reply = await this.request('ps', req, { kind: 'ps', req }, this.requestTimeoutMs, 'ps');
    return reply.kind === 'ps.ok' ? reply.rows : [];
  }

  async programs(): Promise<string[]> {
    const req = this.nextReq++;
    const reply = await this.request('programs', req, { kind: 'programs', req }, this.requestTimeoutMs, 'programs');
    return reply.kind === 'programs.ok' ? reply.names : [];
  }

  /** Calls `listener` with the whole cluster table on every change (and at once with the last one
   *  known). Returns the unsubscribe function. */
  watch(listener: (rows: ProcessInfo[]) => void): () => void {
    if (this.closed) return () => {};
    this.watchers.add(listener);
    if (this.watchers.size === 1) this.post({ kind: 'watch' });
    else if (this.table) this.call(listener, this.table);
    return () => {
      if (!this.watchers.delete(listener)) return;
      if (this.watchers.size === 0 && !this.closed) {
        this.post({ kind: 'unwatch' });
        this.table = undefined;
      }
    };
  }

  /** Unregisters the port; pending requests reject and running processes' exits reject. */
  close(): void {
    if (this.closed) return;
    if (this.watchers.size > 0) this.post({ kind: 'unwatch' });
    this.closed = true;
    this.kernel.unregister(this.port);
    this.watchers.clear();
    const err = new Error('the scheduler client was closed');
    for (const p of [...this.pending.values()]) {
      p.cancel();
      p.reject(err);
    }
    this.pending.clear();
    for (const r of this.runs.values()) if (r.alive) r.reject(err);
    this.runs.clear();
    this.routed.clear();
    this.ended.clear();
    this.nextAt.clear();
    this.handles.clear();
    this.held = [];
  }

  /** Pids of the runs whose exit has not come yet. */
  get liveRuns(): Pid[] {
    return [...this.runs.values()].filter((r) => r.alive).map((r) => r.pid);
  }

  /** Tells the Scheduler that `bytes` of `pid`'s output were taken (flow control). */
  private ack(pid: Pid, bytes: number): void {
    if (!this.closed) this.post({ kind: 'ack', pid, bytes });
  }

  private post(body: ClientRequest): boolean {
    if (this.closed) return false;
    return this.kernel.send(this.me, this.scheduler, body);
  }

  private request(
    kind: Pending['kind'],
    req: number,
    body: ClientRequest,
    timeoutMs: number,
    what: string,
    onOutput?: RunOptions['onOutput'],
  ): Promise<ClientMessage> {
    if (this.closed) return Promise.reject(new Error('the scheduler client was closed'));
    return new Promise<ClientMessage>((resolve, reject) => {
      const cancel = this.kernel.drivers.clock.setTimeout(() => {
        if (!this.pending.delete(req)) return;
        reject(new Error(`the scheduler did not answer ${what} within ${Math.round(timeoutMs / 1000)} s`));
        this.releaseHeld();
      }, timeoutMs);
      this.pending.set(req, onOutput ? { kind, resolve, reject, cancel, onOutput } : { kind, resolve, reject, cancel });
      if (!this.post(body)) {
        this.pending.delete(req);
        cancel();
        reject(new Error('could not reach the scheduler'));
      }
    });
  }

  // ---- messages ----

  private receive(env: Envelope): void {
    if (this.closed) return;
    // Only Schedulers talk to this port: this peer's answers requests, and the Scheduler of the
    // peer a process runs on sends its output and exit straight here.
    if (env.from.port !== this.scheduler.port) {
      this.stats.garbage++;
      return;
    }
    const bad = { rows: 0 };
    const msg = parseClientMessage(env.body, bad);
    this.stats.garbage += bad.rows;
    if (!msg) {
      this.stats.garbage++;
      return;
    }
    // Answers, tables and lost-process news come from our own Scheduler only; another peer's
    // Scheduler may only send the output and exit of a process it runs.
    if (msg.kind !== 'out' && msg.kind !== 'exit' && env.from.peer !== this.scheduler.peer) {
      this.stats.garbage++;
      return;
    }
    switch (msg.kind) {
      case 'run.ok':
      case 'run.failed':
      case 'kill.ok':
      case 'kill.failed':
      case 'migrate.ok':
      case 'migrate.failed':
      case 'drain.ok':
      case 'ps.ok':
      case 'programs.ok':
        this.reply(msg);
        break;
      case 'out':
      case 'exit':
      case 'lost':
        this.processMessage(msg);
        break;
      case 'table':
        this.onTable(msg.rows);
        break;
    }
  }

  private reply(msg: Extract<ClientMessage, { req: number }>): void {
    const p = this.pending.get(msg.req);
    const expected = p && (msg.kind === `${p.kind}.ok` || msg.kind === `${p.kind}.failed`);
    if (!p || !expected) {
      this.stats.unmatched++;
      return;
    }
    this.pending.delete(msg.req);
    p.cancel();
    if (msg.kind === 'run.failed' || msg.kind === 'kill.failed' || msg.kind === 'migrate.failed') p.reject(new Error(msg.message));
    else {
      if (msg.kind === 'run.ok') this.onRunOk(msg, p.onOutput ?? (() => {}));
      p.resolve(msg);
    }
    // Messages held while the run was pending may be for its pid.
    if (p.kind === 'run') this.releaseHeld();
  }

  private onRunOk(msg: Extract<ClientMessage, { kind: 'run.ok' }>, onOutput: RunOptions['onOutput']): void {
    let resolve!: (exit: ProcessExit) => void;
    let reject!: (err: Error) => void;
    const exit = new Promise<ProcessExit>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Nobody may ever await it (a detached job): do not let a rejection go unhandled.
    exit.catch(() => {});
    const run: Run = { pid: msg.pid, peer: msg.peer, seq: this.nextSeq++, alive: true, onOutput, resolve, reject };
    // A pid the Scheduler reused (it should not happen): the old run is over.
    const old = this.runs.get(run.pid);
    if (old?.alive) old.reject(new Error(`pid ${run.pid} was reused`));
    this.runs.set(run.pid, run);
    this.handles.set(run.pid, { pid: run.pid, peer: run.peer, exit });
  }

  private get runPending(): boolean {
    for (const p of this.pending.values()) if (p.kind === 'run') return true;
    return false;
  }

  /** Delivers the held messages once no run request is pending (their pid may be known now). */
  private releaseHeld(): void {
    if (this.runPending || this.held.length === 0) return;
    const held = this.held;
    this.held = [];
    for (const m of held) this.processMessage(m);
  }

  private processMessage(msg: ProcessMessage): void {
    const own = this.runs.get(msg.pid);
    const known = own !== undefined || this.routed.has(msg.pid) || this.ended.has(msg.pid) || this.ancestorRun(msg.pid) !== undefined;
    // While a run request is pending, a message for an unknown pid may be for that run (its
    // run.ok not handled yet): hold it, and everything after it, to keep the order.
    if ((!known && this.runPending) || this.held.length > 0) {
      if (this.held.length >= MAX_HELD) this.stats.orphans++;
      else this.held.push(msg);
      return;
    }
    if (msg.kind === 'out') {
      const run = own ?? (this.ended.has(msg.pid) ? undefined : this.routeUnknown(msg.pid));
      if (!run || !run.alive) {
        this.stats.orphans++;
        this.ack(msg.pid, msg.data.length); // dropped, but the writer must not wait for it
        return;
      }
      // Every byte that came is acknowledged, repeats too: the Scheduler counted them as sent.
      const bytes = msg.data.length;
      const fresh = this.unseen(msg);
      if (fresh.length === 0) {
        this.ack(msg.pid, bytes);
        return;
      }
      let taken: unknown;
      try {
        taken = run.onOutput(msg.fd, fresh);
      } catch {
        // The listener's problem; the next chunk still goes out.
      }
      void Promise.resolve(taken).then(
        () => this.ack(msg.pid, bytes),
        () => this.ack(msg.pid, bytes),
      );
      return;
    }
    this.nextAt.delete(msg.pid);
    if (!own) {
      // A child's end: its output is already through; forget where it went.
      if (!this.routed.delete(msg.pid)) this.stats.orphans++;
      return;
    }
    if (!own.alive) {
      this.stats.orphans++;
      return;
    }
    own.alive = false;
    this.runs.delete(own.pid);
    // Late chunks of it (or of its children, which stay routed to it) are dropped, not misrouted.
    remember(this.ended, own.pid);
    if (msg.kind === 'exit') own.resolve(msg.message === undefined ? { code: msg.code } : { code: msg.code, message: msg.message });
    else own.reject(new Error(msg.message));
  }

  /** The part of an `out` the client has not had yet: nothing when it lies wholly before the
   *  offset reached, its tail when it overlaps it. An `out` without `at` follows the last one. */
  private unseen(msg: Extract<ClientMessage, { kind: 'out' }>): Uint8Array {
    const next = this.nextAt.get(msg.pid) ?? 0;
    const at = msg.at ?? next;
    const end = at + msg.data.length;
    if (end <= next) {
      this.stats.repeated += msg.data.length;
      return msg.data.subarray(0, 0);
    }
    if (at > next) this.stats.missing += at - next;
    remember(this.nextAt, msg.pid, end);
    if (at >= next) return msg.data;
    this.stats.repeated += next - at;
    return msg.data.subarray(next - at);
  }

  /** The run a child pid's output belongs to: through its known ancestors, else the single live
   *  run, else the latest live one. Remembered for the pid's next chunks. */
  private routeUnknown(pid: Pid): Run | undefined {
    let run = this.routed.get(pid) ?? this.ancestorRun(pid);
    if (!run) {
      for (const r of this.runs.values()) if (r.alive && (!run || r.seq > run.seq)) run = r;
    }
    if (run) remember(this.routed, pid, run);
    return run;
  }

  /** The run of the nearest ancestor of `pid` the client knows, from the last table. */
  private ancestorRun(pid: Pid): Run | undefined {
    const seen = new Set<Pid>();
    for (let p = this.parents.get(pid); p !== undefined && !seen.has(p); p = this.parents.get(p)) {
      seen.add(p);
      const run = this.runs.get(p) ?? this.routed.get(p);
      if (run) return run;
    }
    return undefined;
  }

  private onTable(rows: ProcessInfo[]): void {
    this.parents = new Map();
    for (const r of rows) if (r.parent !== undefined) this.parents.set(r.pid, r.parent);
    if (this.watchers.size === 0) return;
    this.table = rows;
    for (const l of [...this.watchers]) this.call(l, rows);
  }

  private call(listener: (rows: ProcessInfo[]) => void, rows: ProcessInfo[]): void {
    try {
      listener(rows);
    } catch {
      // A watcher's bug stays its own.
    }
  }
}
