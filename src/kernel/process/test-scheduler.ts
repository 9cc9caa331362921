// Test support (Node only, used by *.test.ts): a small fake Scheduler in front of an
// InProcessExecution. It starts processes, collects their output, states and exits, and answers
// their `call`s: spawn starts the child on the executor after its parent's and answers once the
// child reported its first state (ENOEXEC if it could not start), wait answers when the child's
// exit is seen (with timeouts), kill and send turn into `kill` and `deliver`, cluster_info is
// fixed at 3 peers and 8 slots.
import { createHash } from 'node:crypto';
import { InProcessExecution, type InProcessOptions } from './in-process.ts';
import type { FromExecutor, KernelReply, KernelRequest, Pid, ProcessState } from './protocol.ts';

export const PEER = '0123456789abcdef0123456789abcdef';

export interface Exit {
  code: number;
  message?: string;
  cpuMs: number;
}

export interface FakeProc {
  pid: Pid;
  name: string;
  executor: number;
  parent?: Pid;
  out: { fd: 1 | 2; data: Uint8Array }[];
  states: { state: ProcessState; cpuMs: number }[];
  /** Every message about this pid, in order (`t` only, or `t:state`). */
  log: string[];
  exit?: Exit;
  exited: Promise<Exit>;
  /** Resolves on the first state (true) or an exit before any (false). */
  started: Promise<boolean>;
  calls: KernelRequest[];
}

const decoder = new TextDecoder();

export function sha256hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class FakeScheduler {
  readonly driver: InProcessExecution;
  readonly procs = new Map<Pid, FakeProc>();
  readonly rewritten = new Map<string, Uint8Array>();
  /** Messages that named no known pid, or came out of order (should stay empty). */
  readonly anomalies: string[] = [];
  private n = 0;
  private nextExecutor = 0;
  private resolvers = new Map<Pid, { exit: (e: Exit) => void; started: (ok: boolean) => void }>();

  constructor(
    private readonly programs: Record<string, Uint8Array>,
    executors = 1,
    options: InProcessOptions = {},
  ) {
    this.driver = new InProcessExecution(executors, options);
    this.driver.attach((i, msg) => this.onMessage(i, msg));
  }

  /** Starts `name` (a program of the table) with `args` after argv[0]. */
  start(
    name: string,
    args: string[] = [],
    opts: { interactiveStdin?: boolean; parent?: Pid; executor?: number; rewritten?: Uint8Array; env?: Record<string, string>; outputWindow?: number } = {},
  ): FakeProc {
    const module = this.programs[name];
    const pid = `aaaaaa.${++this.n}`;
    const executor = opts.executor ?? this.nextExecutor++ % this.driver.count;
    let exit!: (e: Exit) => void;
    let started!: (ok: boolean) => void;
    const p: FakeProc = {
      pid,
      name,
      executor,
      out: [],
      states: [],
      log: [],
      calls: [],
      exited: new Promise<Exit>((r) => (exit = r)),
      started: new Promise<boolean>((r) => (started = r)),
    };
    if (opts.parent) p.parent = opts.parent;
    this.resolvers.set(pid, { exit, started });
    this.procs.set(pid, p);
    const hash = module ? sha256hex(module) : 'none';
    this.driver.post(executor, {
      t: 'start',
      spec: {
        pid,
        peer: PEER,
        name,
        hash,
        ...(opts.rewritten ? { rewritten: opts.rewritten } : module ? { module } : {}),
        args: [name, ...args],
        env: opts.env ?? {},
        hasParent: !!opts.parent,
        ...(opts.parent ? { parent: opts.parent } : {}),
        interactiveStdin: !!opts.interactiveStdin,
        ...(opts.outputWindow ? { outputWindow: opts.outputWindow } : {}),
      },
    });
    return p;
  }

  stdin(pid: Pid, data: string): void {
    this.driver.post(this.procs.get(pid)!.executor, { t: 'stdin', pid, data: new TextEncoder().encode(data) });
  }

  /** The terminal took `bytes` of the process's output. */
  ack(pid: Pid, bytes: number): void {
    this.driver.post(this.procs.get(pid)!.executor, { t: 'out.ack', pid, bytes });
  }

  stdinEnd(pid: Pid): void {
    this.driver.post(this.procs.get(pid)!.executor, { t: 'stdin.end', pid });
  }

  kill(pid: Pid, reason: string): void {
    this.driver.post(this.procs.get(pid)!.executor, { t: 'kill', pid, reason });
  }

  text(pid: Pid, fd: 1 | 2 = 1): string {
    const p = this.procs.get(pid)!;
    return p.out.filter((o) => o.fd === fd).map((o) => decoder.decode(o.data, { stream: true })).join('');
  }

  /** Exits of all processes, in order of start. */
  async all(): Promise<Exit[]> {
    return Promise.all([...this.procs.values()].map((p) => p.exited));
  }

  private onMessage(executor: number, msg: FromExecutor): void {
    if (msg.t === 'rewritten') {
      this.rewritten.set(msg.hash, msg.bytes);
      return;
    }
    const p = this.procs.get(msg.pid);
    if (!p) {
      this.anomalies.push(`${msg.t} for unknown pid ${msg.pid}`);
      return;
    }
    if (p.exit) this.anomalies.push(`${msg.t} after the exit of ${msg.pid}`);
    if (executor !== p.executor) this.anomalies.push(`${msg.t} of ${msg.pid} from executor ${executor}`);
    p.log.push(msg.t === 'state' ? `state:${msg.state}` : msg.t);
    const r = this.resolvers.get(msg.pid)!;
    switch (msg.t) {
      case 'out':
        p.out.push({ fd: msg.fd, data: msg.data });
        break;
      case 'state':
        p.states.push({ state: msg.state, cpuMs: msg.cpuMs });
        r.started(true);
        break;
      case 'exit': {
        const e: Exit = { code: msg.code, cpuMs: msg.cpuMs };
        if (msg.message !== undefined) e.message = msg.message;
        p.exit = e;
        r.started(false);
        r.exit(e);
        break;
      }
      case 'call':
        p.calls.push(msg.req);
        void this.answer(p, msg.req).then((reply) => this.driver.post(p.executor, { t: 'reply', pid: p.pid, call: msg.call, reply }));
        break;
    }
  }

  private async answer(p: FakeProc, req: KernelRequest): Promise<KernelReply> {
    const fail = (errno: Extract<KernelReply, { ok: false }>['errno']): KernelReply => ({ ok: false, errno, message: errno });
    switch (req.op) {
      case 'cluster_info':
        return { ok: true, op: 'cluster_info', peers: 3, slots: 8 };
      case 'spawn': {
        const name = req.name === '' ? p.name : req.name;
        if (!(name in this.programs)) return fail('ENOENT');
        if (req.peer !== undefined && !PEER.startsWith(req.peer)) return fail('EHOSTUNREACH');
        const child = this.start(name, req.args, { parent: p.pid, executor: (p.executor + 1) % this.driver.count });
        return (await child.started) ? { ok: true, op: 'spawn', child: child.pid } : fail('ENOEXEC');
      }
      case 'wait': {
        const c = this.procs.get(req.child);
        if (!c || c.parent !== p.pid) return fail('ECHILD');
        if (c.exit) return { ok: true, op: 'wait', code: c.exit.code };
        if (req.timeoutMs === 0) return fail('ETIMEDOUT');
        const timeout =
          req.timeoutMs < 0 ? new Promise<never>(() => {}) : new Promise<null>((r) => setTimeout(() => r(null), req.timeoutMs));
        const e = await Promise.race([c.exited, timeout]);
        return e ? { ok: true, op: 'wait', code: e.code } : fail('ETIMEDOUT');
      }
      case 'kill': {
        const t = this.procs.get(req.target);
        if (!t || t.exit) return fail('ESRCH');
        this.kill(t.pid, `killed by ${p.pid}`);
        return { ok: true, op: 'kill' };
      }
      case 'send': {
        const t = this.procs.get(req.to);
        if (!t || t.exit) return fail('ESRCH');
        this.driver.post(t.executor, { t: 'deliver', pid: t.pid, port: req.port, from: p.pid, token: req.token, data: req.data });
        return { ok: true, op: 'send' };
      }
    }
  }
}
