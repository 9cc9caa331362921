// A scripted executor for the simulator: the Scheduler's half of the executor contract
// (src/kernel/process/protocol.ts) tested on virtual time, deterministically, without WebAssembly.
// A "program" is a JSON script of steps; the real executor (src/kernel/process/executor.ts) runs
// real modules behind the same ExecutionDriver interface.
import type { Clock } from '../../kernel/types.ts';
import type { ExecutionDriver, FromExecutor, KernelReply, Pid, ProcessSpec, ToExecutor } from '../../kernel/process/protocol.ts';
import { EXIT_KILLED } from '../../kernel/process/protocol.ts';
import type { ProgramStore } from '../../servers/scheduler/client.ts';

export type SimStep =
  | { out: string; fd?: 1 | 2 }
  /** Busy (RUNNING) for this many ms of virtual time. */
  | { cpu: number }
  /** Spawns a program ('' = itself) with these args, optionally on a peer. */
  | { spawn: string; args?: string[]; on?: string }
  /** Waits for every child spawned so far; prints `child <pid> exited <code>` or `child <pid> <errno>`. */
  | { waitAll: true }
  /** Prints `peers=<n> slots=<n>`. */
  | { clusterInfo: true }
  /** Runs until killed. */
  | { forever: true }
  | { exit: number };

/** The WebAssembly header (the Scheduler checks it), then the steps as JSON. */
const HEADER = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);

export function simProgram(steps: SimStep[]): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(steps));
  const out = new Uint8Array(HEADER.length + json.length);
  out.set(HEADER);
  out.set(json, HEADER.length);
  return out;
}

export function simPrograms(programs: Record<string, SimStep[]>): ProgramStore {
  return {
    list: async () => Object.keys(programs).sort(),
    load: async (name) => (programs[name] ? simProgram(programs[name]!) : undefined),
  };
}

interface SimProcess {
  spec: ProcessSpec;
  steps: SimStep[];
  next: number;
  cpuMs: number;
  children: Pid[];
  calls: Map<number, (r: KernelReply) => void>;
  cancel?: () => void;
  done: boolean;
  /** Bytes of output posted so far (the next `out`'s `at`). */
  outAt: number;
}

export class SimExecution implements ExecutionDriver {
  private onMessage: ((executor: number, msg: FromExecutor) => void) | undefined;
  private readonly procs = new Map<Pid, { exec: number; p: SimProcess }>();
  private nextCall = 0;

  constructor(
    readonly count: number,
    private readonly clock: Clock,
  ) {}

  attach(onMessage: (executor: number, msg: FromExecutor) => void): void {
    this.onMessage = onMessage;
  }

  /** Processes running here now. */
  get running(): Pid[] {
    return [...this.procs.keys()];
  }

  post(executor: number, msg: ToExecutor): void {
    // Asynchronous like postMessage.
    this.clock.setTimeout(() => this.handle(executor, msg), 0);
  }

  private emit(executor: number, msg: FromExecutor): void {
    this.clock.setTimeout(() => this.onMessage?.(executor, msg), 0);
  }

  private handle(exec: number, msg: ToExecutor): void {
    switch (msg.t) {
      case 'start': {
        let steps: SimStep[];
        try {
          steps = JSON.parse(new TextDecoder().decode((msg.spec.module ?? msg.spec.rewritten)!.subarray(HEADER.length))) as SimStep[];
        } catch {
          this.emit(exec, { t: 'exit', pid: msg.spec.pid, code: 1, message: 'not a sim program', cpuMs: 0 });
          return;
        }
        const p: SimProcess = { spec: msg.spec, steps, next: 0, cpuMs: 0, children: [], calls: new Map(), done: false, outAt: 0 };
        this.procs.set(msg.spec.pid, { exec, p });
        this.emit(exec, { t: 'state', pid: msg.spec.pid, state: 'RUNNING', cpuMs: 0 });
        this.step(exec, p);
        break;
      }
      case 'kill': {
        const e = this.procs.get(msg.pid);
        if (e) this.finish(e.exec, e.p, EXIT_KILLED, `killed: ${msg.reason}`);
        break;
      }
      case 'reply': {
        const e = this.procs.get(msg.pid);
        const k = e?.p.calls.get(msg.call);
        if (!e || !k) return;
        e.p.calls.delete(msg.call);
        k(msg.reply);
        break;
      }
      default:
        break;
    }
  }

  private call(exec: number, p: SimProcess, req: Extract<FromExecutor, { t: 'call' }>['req'], then: (r: KernelReply) => void): void {
    const call = ++this.nextCall;
    p.calls.set(call, (r) => {
      if (p.done) return;
      this.emit(exec, { t: 'state', pid: p.spec.pid, state: 'RUNNING', cpuMs: p.cpuMs });
      then(r);
    });
    this.emit(exec, { t: 'state', pid: p.spec.pid, state: 'WAITING', cpuMs: p.cpuMs });
    this.emit(exec, { t: 'call', pid: p.spec.pid, call, req });
  }

  private out(exec: number, p: SimProcess, text: string, fd: 1 | 2 = 1): void {
    const data = new TextEncoder().encode(text);
    this.emit(exec, { t: 'out', pid: p.spec.pid, fd, data, at: p.outAt });
    p.outAt += data.length;
  }

  private step(exec: number, p: SimProcess): void {
    if (p.done) return;
    const s = p.steps[p.next++];
    const go = () => this.step(exec, p);
    if (!s) return this.finish(exec, p, 0);
    if ('out' in s) {
      this.out(exec, p, s.out, s.fd);
      go();
    } else if ('cpu' in s) {
      p.cancel = this.clock.setTimeout(() => {
        p.cpuMs += s.cpu;
        this.emit(exec, { t: 'state', pid: p.spec.pid, state: 'RUNNING', cpuMs: p.cpuMs });
        go();
      }, s.cpu);
    } else if ('forever' in s) {
      const tick = () => {
        p.cpuMs += 100;
        p.cancel = this.clock.setTimeout(tick, 100);
      };
      tick();
    } else if ('exit' in s) {
      this.finish(exec, p, s.exit);
    } else if ('clusterInfo' in s) {
      this.call(exec, p, { op: 'cluster_info' }, (r) => {
        if (r.ok && r.op === 'cluster_info') this.out(exec, p, `peers=${r.peers} slots=${r.slots}\n`);
        go();
      });
    } else if ('spawn' in s) {
      this.call(exec, p, { op: 'spawn', name: s.spawn, args: s.args ?? [], ...(s.on ? { peer: s.on } : {}) }, (r) => {
        if (r.ok && r.op === 'spawn') p.children.push(r.child);
        else if (!r.ok) this.out(exec, p, `spawn failed: ${r.errno} ${r.message}\n`, 2);
        go();
      });
    } else if ('waitAll' in s) {
      const waitNext = (i: number) => {
        const child = p.children[i];
        if (child === undefined) return go();
        this.call(exec, p, { op: 'wait', child, timeoutMs: -1 }, (r) => {
          this.out(exec, p, r.ok && r.op === 'wait' ? `child ${child} exited ${r.code}\n` : `child ${child} ${r.ok ? '?' : r.errno}\n`);
          waitNext(i + 1);
        });
      };
      waitNext(0);
    }
  }

  private finish(exec: number, p: SimProcess, code: number, message?: string): void {
    if (p.done) return;
    p.done = true;
    p.cancel?.();
    this.procs.delete(p.spec.pid);
    this.emit(exec, { t: 'exit', pid: p.spec.pid, code, cpuMs: p.cpuMs, ...(message ? { message } : {}) });
  }
}
