// Test support (Node only, used by *.test.ts): a fake Scheduler in front of an
// InProcessExecution that routes what Fork On Wait needs, as the real Scheduler does: sends
// become deliveries with their `seq` and `deps`; an executor's `spec.resolved` goes to every
// executor that received a delivery carrying that id; `out.at` is checked to be contiguous.
// Optional: a delay on deliveries (a network round trip: replies come late, so speculation
// pays), and replies made to carry a speculation of a third process that commits a little later
// (their comparison waits for it while later replies confirm: out-of-order confirmations). One
// global event log records deliveries and output in the order the Scheduler saw them.
import { createHash } from 'node:crypto';
import { InProcessExecution, type InProcessOptions } from '../process/in-process.ts';
import type { FromExecutor, KernelReply, KernelRequest, Pid, SpecId, SpeculationMode, SpeculationStats, ToExecutor } from '../process/protocol.ts';

export const PEER = '0123456789abcdef0123456789abcdef';

export interface ClusterProc {
  pid: Pid;
  name: string;
  executor: number;
  mode: SpeculationMode;
  parent?: Pid;
  out: { fd: 1 | 2; data: Uint8Array; at: number }[];
  /** Bytes of output seen so far (what the next `at` must be). */
  outBytes: number;
  exit?: { code: number; message?: string };
  exited: Promise<{ code: number; message?: string }>;
  started: Promise<boolean>;
  /** The last speculation counters reported. */
  spec?: SpeculationStats;
  /**
   * Deepest speculation seen: read from the executor at every message of the process (the
   * rate-limited state reports alone can miss a short-lived level on a loaded machine).
   */
  maxDepth: number;
}

export type ClusterEvent =
  | { kind: 'deliver'; to: Pid; port: string; from: Pid; deps: SpecId[] }
  | { kind: 'out'; pid: Pid; text: string }
  | { kind: 'resolved'; pid: Pid; id: SpecId; ok: boolean };

export interface ClusterOptions extends InProcessOptions {
  /** Milliseconds every delivery takes (default 0: the next macrotask). */
  deliverDelayMs?: number;
  /** Only replies take deliverDelayMs (a slow acknowledgement; other messages are prompt). */
  delayRepliesOnly?: boolean;
  /**
   * Every `every`-th reply carries a speculation of a made-up process "zzzzzz.1", committed
   * `commitAfterMs` later.
   */
  foreignDeps?: { every: number; commitAfterMs: number };
}

const decoder = new TextDecoder();

export class SpecCluster {
  readonly driver: InProcessExecution;
  readonly procs = new Map<Pid, ClusterProc>();
  readonly events: ClusterEvent[] = [];
  readonly notices: { pid: Pid; text: string }[] = [];
  readonly anomalies: string[] = [];
  /** Messages sent to pids that are not processes here (a test plays them). */
  readonly external: { to: Pid; port: string; from: Pid; data: Uint8Array; token: number; seq?: number; deps?: SpecId[] }[] = [];
  /** Images answered to `checkpoint`, by pid. */
  readonly checkpoints = new Map<Pid, { image?: Uint8Array; reason?: string }[]>();
  /** Replies given a foreign speculation (foreignDeps). */
  tainted = 0;
  private replies = 0;
  private n = 0;
  private nextExecutor = 0;
  private resolvers = new Map<Pid, { exit: (e: { code: number; message?: string }) => void; started: (ok: boolean) => void }>();
  /** Executors that received deliveries carrying an id. */
  private readonly dependents = new Map<SpecId, Set<number>>();
  private readonly delay: number;
  private readonly delayRepliesOnly: boolean;
  private readonly foreign: ClusterOptions['foreignDeps'];

  constructor(
    private readonly programs: Record<string, Uint8Array>,
    executors = 2,
    options: ClusterOptions = {},
  ) {
    const { deliverDelayMs, foreignDeps, delayRepliesOnly, ...rest } = options;
    this.delay = deliverDelayMs ?? 0;
    this.delayRepliesOnly = !!delayRepliesOnly;
    this.foreign = foreignDeps;
    this.driver = new InProcessExecution(executors, rest);
    this.driver.attach((i, msg) => this.onMessage(i, msg));
  }

  start(name: string, args: string[] = [], opts: { mode?: SpeculationMode; parent?: Pid; executor?: number; interactiveStdin?: boolean } = {}): ClusterProc {
    const module = this.programs[name];
    const pid = `aaaaaa.${++this.n}`;
    const executor = opts.executor ?? this.nextExecutor++ % this.driver.count;
    let exit!: (e: { code: number; message?: string }) => void;
    let started!: (ok: boolean) => void;
    const p: ClusterProc = {
      pid,
      name,
      executor,
      mode: opts.mode ?? 'off',
      out: [],
      outBytes: 0,
      maxDepth: 0,
      exited: new Promise((r) => (exit = r)),
      started: new Promise((r) => (started = r)),
    };
    if (opts.parent) p.parent = opts.parent;
    this.resolvers.set(pid, { exit, started });
    this.procs.set(pid, p);
    this.driver.post(executor, {
      t: 'start',
      spec: {
        pid,
        peer: PEER,
        name,
        hash: module ? createHash('sha256').update(module).digest('hex') : 'none',
        ...(module ? { module } : {}),
        args: [name, ...args],
        env: {},
        hasParent: !!opts.parent,
        ...(opts.parent ? { parent: opts.parent } : {}),
        interactiveStdin: !!opts.interactiveStdin,
        speculation: p.mode,
      },
    });
    return p;
  }

  post(pid: Pid, msg: ToExecutor): void {
    this.driver.post(this.procs.get(pid)!.executor, msg);
  }

  text(pid: Pid, fd: 1 | 2 = 1): string {
    return this.procs
      .get(pid)!
      .out.filter((o) => o.fd === fd)
      .map((o) => decoder.decode(o.data, { stream: true }))
      .join('');
  }

  /** The counters of `pid` as its executor has them now (also after its exit: the last report). */
  stats(pid: Pid): SpeculationStats | undefined {
    const p = this.procs.get(pid)!;
    return this.driver.executors[p.executor]!.speculation(pid) ?? p.spec;
  }

  private onMessage(executor: number, msg: FromExecutor): void {
    if (msg.t === 'rewritten') return;
    if (msg.t === 'spec.resolved') {
      this.events.push({ kind: 'resolved', pid: msg.pid, id: msg.id, ok: msg.ok });
      this.resolve(msg.id, msg.ok);
      return;
    }
    if (msg.t === 'notice') {
      this.notices.push({ pid: msg.pid, text: msg.text });
      return;
    }
    const p = this.procs.get(msg.pid);
    if (!p) {
      this.anomalies.push(`${msg.t} for unknown pid ${msg.pid}`);
      return;
    }
    if (p.exit) this.anomalies.push(`${msg.t} after the exit of ${msg.pid}`);
    p.maxDepth = Math.max(p.maxDepth, this.driver.executors[executor]!.speculation(msg.pid)?.depth ?? 0);
    const r = this.resolvers.get(msg.pid)!;
    switch (msg.t) {
      case 'out':
        if (msg.at !== p.outBytes) this.anomalies.push(`out of ${p.pid} at ${msg.at}, expected ${p.outBytes}`);
        p.outBytes += msg.data.length;
        p.out.push({ fd: msg.fd, data: msg.data, at: msg.at });
        this.events.push({ kind: 'out', pid: p.pid, text: decoder.decode(msg.data) });
        break;
      case 'state':
        if (msg.spec) {
          p.spec = msg.spec;
          p.maxDepth = Math.max(p.maxDepth, msg.spec.depth);
        }
        r.started(true);
        break;
      case 'exit': {
        p.exit = msg.message === undefined ? { code: msg.code } : { code: msg.code, message: msg.message };
        r.started(false);
        r.exit(p.exit);
        break;
      }
      case 'checkpointed':
      case 'checkpoint.failed': {
        const list = this.checkpoints.get(p.pid) ?? [];
        list.push(msg.t === 'checkpointed' ? { image: msg.image } : { reason: msg.reason });
        this.checkpoints.set(p.pid, list);
        break;
      }
      case 'call':
        void this.answer(p, msg.req).then((reply) => this.driver.post(p.executor, { t: 'reply', pid: p.pid, call: msg.call, reply }));
        break;
    }
  }

  private dependOn(id: SpecId, executor: number): void {
    let s = this.dependents.get(id);
    if (!s) this.dependents.set(id, (s = new Set()));
    s.add(executor);
  }

  /** Tells every executor that received deliveries carrying `id` (transitive dependents included). */
  private resolve(id: SpecId, ok: boolean): void {
    for (const e of this.dependents.get(id) ?? []) this.driver.post(e, { t: 'spec.resolved', id, ok });
    this.dependents.delete(id);
  }

  private deliver(to: ClusterProc, msg: Extract<ToExecutor, { t: 'deliver' }>): void {
    const isReply = msg.port.startsWith('#reply:');
    if (isReply && this.foreign && ++this.replies % this.foreign.every === 0) {
      const id = `zzzzzz.1~${++this.tainted}`;
      msg.deps = [...(msg.deps ?? []), id];
      this.dependOn(id, to.executor);
      setTimeout(() => this.resolve(id, true), this.foreign.commitAfterMs);
    }
    for (const id of msg.deps ?? []) this.dependOn(id, to.executor);
    const go = (): void => {
      this.events.push({ kind: 'deliver', to: to.pid, port: msg.port, from: msg.from, deps: msg.deps ?? [] });
      this.driver.post(to.executor, msg);
    };
    if (this.delay > 0 && (isReply || !this.delayRepliesOnly)) setTimeout(go, this.delay);
    else go();
  }

  private async answer(p: ClusterProc, req: KernelRequest): Promise<KernelReply> {
    const fail = (errno: Extract<KernelReply, { ok: false }>['errno']): KernelReply => ({ ok: false, errno, message: errno });
    switch (req.op) {
      case 'cluster_info':
        return { ok: true, op: 'cluster_info', peers: 1, slots: this.driver.count };
      case 'spawn': {
        const name = req.name === '' ? p.name : req.name;
        if (!(name in this.programs)) return fail('ENOENT');
        const child = this.start(name, req.args, { parent: p.pid, mode: p.mode, executor: (p.executor + 1) % this.driver.count });
        return (await child.started) ? { ok: true, op: 'spawn', child: child.pid } : fail('ENOEXEC');
      }
      case 'wait': {
        const c = this.procs.get(req.child);
        if (!c || c.parent !== p.pid) return fail('ECHILD');
        return { ok: true, op: 'wait', code: (await c.exited).code };
      }
      case 'kill': {
        const t = this.procs.get(req.target);
        if (!t || t.exit) return fail('ESRCH');
        this.driver.post(t.executor, { t: 'kill', pid: t.pid, reason: `killed by ${p.pid}` });
        return { ok: true, op: 'kill' };
      }
      case 'send': {
        const t = this.procs.get(req.to);
        if (!t) {
          const e: SpecCluster['external'][number] = { to: req.to, port: req.port, from: p.pid, data: req.data, token: req.token };
          if (req.seq !== undefined) e.seq = req.seq;
          if (req.deps) e.deps = req.deps;
          this.external.push(e);
          return { ok: true, op: 'send' };
        }
        if (t.exit) return fail('ESRCH');
        const msg: Extract<ToExecutor, { t: 'deliver' }> = { t: 'deliver', pid: t.pid, port: req.port, from: p.pid, token: req.token, data: req.data };
        if (req.seq !== undefined) msg.seq = req.seq;
        if (req.deps?.length) msg.deps = req.deps;
        this.deliver(t, msg);
        return { ok: true, op: 'send' };
      }
    }
  }
}
