// A scripted stand-in for the Scheduler's client port, on a real Kernel, for tests of its clients
// (the SchedulerClient, the shell service, the terminal backend). Not used by the app.
import { Kernel } from '../../kernel/kernel.ts';
import { identityFrom } from '../../kernel/identity.ts';
import type { Address, NetworkInterface } from '../../kernel/types.ts';
import type { ClientMessage, ClientRequest, ProcessInfo } from '../../servers/scheduler/client.ts';
import { Scheduler, TimerOwner } from '../sim/clock.ts';
import { simCryptoDriver, simKeyPair } from '../sim/crypto.ts';
import { SimRandom } from '../sim/random.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A kernel with no links, on a virtual clock (timeouts only fire when the test advances it). */
export async function bareKernel(seed = 'fake-scheduler'): Promise<{ kernel: Kernel; clock: Scheduler }> {
  const clock = new Scheduler();
  const random = new SimRandom(seed);
  const crypto = simCryptoDriver(random);
  const identity = await identityFrom(crypto, simKeyPair(random.bytes(32)));
  const nic: NetworkInterface = { attach() {}, send() {}, bufferedAmount: () => 0, close() {} };
  const kernel = await Kernel.create({
    identity,
    token: `${seed}-token-0001`,
    drivers: {
      nic,
      clock: clock.clockFor(new TimerOwner(identity.peerId)),
      random,
      crypto,
      console: { write: () => {} },
      info: { kind: 'sim', capacity: 1, version: 'test', load: () => 0 },
    },
  });
  return { kernel, clock };
}

interface FakeProc {
  info: ProcessInfo;
  client: Address;
  stdin: string;
}

/**
 * Programs: `hello [name]` (output in `chunks` pieces, then exit 0), `crash` (a line, then exit
 * 134 with a message), `vanish` (a partial line, then lost), `upper` (stdin upper-cased a line at
 * a time, exit 0 at end of input), `spin` (runs until killed: exit 137 "killed"). Others fail.
 */
export class FakeScheduler {
  readonly requests: ClientRequest[] = [];
  readonly procs = new Map<string, FakeProc>();
  /** How many pieces hello's output is cut into. */
  chunks = 50;
  private n = 0;
  private watcher: Address | undefined;

  constructor(readonly kernel: Kernel) {
    kernel.register('scheduler', (env) => this.receive(env.from, env.body as ClientRequest));
  }

  static readonly PROGRAMS = ['crash', 'hello', 'spin', 'upper', 'vanish'];

  private send(to: Address, body: ClientMessage): void {
    this.kernel.send({ peer: this.kernel.self, port: 'scheduler' }, to, body);
  }

  private out(p: FakeProc, text: string, fd: 1 | 2 = 1): void {
    this.send(p.client, { kind: 'out', pid: p.info.pid, fd, data: enc.encode(text) });
  }

  private end(p: FakeProc, code: number, message?: string): void {
    p.info = { ...p.info, state: 'EXITED', exitCode: code };
    this.send(p.client, message === undefined ? { kind: 'exit', pid: p.info.pid, code } : { kind: 'exit', pid: p.info.pid, code, message });
    this.table();
  }

  private table(): void {
    if (this.watcher) this.send(this.watcher, { kind: 'table', rows: [...this.procs.values()].map((p) => p.info) });
  }

  private receive(from: Address, req: ClientRequest): void {
    this.requests.push(req);
    switch (req.kind) {
      case 'run': {
        if (!FakeScheduler.PROGRAMS.includes(req.name)) {
          this.send(from, { kind: 'run.failed', req: req.req, message: `no such program: ${req.name}` });
          return;
        }
        const pid = `${this.kernel.self.slice(0, 6)}.${++this.n}`;
        const p: FakeProc = {
          info: { pid, name: req.name, args: req.args, peer: this.kernel.self, state: 'RUNNING', cpuMs: 100 * this.n, startedAt: 1000 + this.n },
          client: from,
          stdin: '',
        };
        this.procs.set(pid, p);
        this.send(from, { kind: 'run.ok', req: req.req, pid, peer: this.kernel.self });
        this.table();
        // Everything below goes out right behind run.ok, as fast as it can.
        if (req.name === 'hello') {
          const text = Array.from({ length: this.chunks }, (_, i) => `hello ${req.args[0] ?? 'world'} ${i}\n`);
          for (const t of text) this.out(p, t);
          this.end(p, 0);
        } else if (req.name === 'crash') {
          this.out(p, 'about to crash\n');
          this.out(p, 'oh no\n', 2);
          this.end(p, 134, 'trap: unreachable executed');
        } else if (req.name === 'vanish') {
          this.out(p, 'working');
          p.info = { ...p.info, state: 'EXITED' };
          this.send(from, { kind: 'lost', pid, message: 'peer 7e57ab1e left the cluster' });
        }
        return;
      }
      case 'stdin': {
        const p = this.procs.get(req.pid);
        if (!p || p.info.name !== 'upper' || p.info.state === 'EXITED') return;
        p.stdin += dec.decode(req.data);
        let nl: number;
        while ((nl = p.stdin.indexOf('\n')) >= 0) {
          this.out(p, p.stdin.slice(0, nl + 1).toUpperCase());
          p.stdin = p.stdin.slice(nl + 1);
        }
        return;
      }
      case 'stdin.end': {
        const p = this.procs.get(req.pid);
        if (!p || p.info.state === 'EXITED') return;
        if (p.info.name === 'upper') {
          if (p.stdin) this.out(p, p.stdin.toUpperCase());
          this.end(p, 0);
        }
        return;
      }
      case 'kill': {
        const p = this.procs.get(req.pid);
        if (!p || p.info.state === 'EXITED') {
          this.send(from, { kind: 'kill.failed', req: req.req, message: `no such process: ${req.pid}` });
          return;
        }
        this.send(from, { kind: 'kill.ok', req: req.req });
        this.end(p, 137, 'killed');
        return;
      }
      case 'migrate': {
        // Moves a live process to the peer named by `to` if it is this one's id (or a prefix).
        const p = this.procs.get(req.pid);
        if (!p || p.info.state === 'EXITED') this.send(from, { kind: 'migrate.failed', req: req.req, message: `no such process: ${req.pid}` });
        else if (!this.kernel.self.startsWith(req.to)) this.send(from, { kind: 'migrate.failed', req: req.req, message: `no peer matches "${req.to}"` });
        else {
          p.info = { ...p.info, moves: (p.info.moves ?? 0) + 1 };
          this.send(from, { kind: 'migrate.ok', req: req.req, pid: req.pid, peer: this.kernel.self, freezeMs: 7 });
          this.table();
        }
        return;
      }
      case 'drain': {
        // Nowhere to go: a lone peer keeps them all.
        const left = [...this.procs.values()].filter((p) => p.info.state !== 'EXITED').length;
        this.send(from, { kind: 'drain.ok', req: req.req, moved: 0, left });
        return;
      }
      case 'ps':
        this.send(from, { kind: 'ps.ok', req: req.req, rows: [...this.procs.values()].map((p) => p.info) });
        return;
      case 'programs':
        this.send(from, { kind: 'programs.ok', req: req.req, names: FakeScheduler.PROGRAMS });
        return;
      case 'watch':
        this.watcher = from;
        this.table();
        return;
      case 'unwatch':
        this.watcher = undefined;
        return;
    }
  }
}
