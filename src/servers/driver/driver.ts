// Driver: owns the host's devices and is the only server that touches them.
// Devices are local: requests from other peers are refused.
import type { LinkStats } from '../../kernel/link.ts';
import { PORTS, type Server, type ServerContext } from '../../kernel/server.ts';
import type { Address, Cancel, Envelope, HostDrivers, KernelEvent } from '../../kernel/types.ts';
import { DriverRequest, type DriverReply } from './protocol.ts';

/** The privileged view of the kernel a device server needs. */
export interface DeviceAccess {
  readonly drivers: HostDrivers;
  on(listener: (e: KernelEvent) => void): () => void;
  linkStats(): LinkStats[];
}

export class DriverServer implements Server {
  readonly port = PORTS.driver;
  private ctx!: ServerContext;
  private readonly timers = new Map<string, Cancel>();
  private readonly netWatchers = new Map<string, Address>();
  private unsubscribe: (() => void) | undefined;
  private reportedLoad = 0;

  constructor(private readonly devices: DeviceAccess) {}

  start(ctx: ServerContext): void {
    this.ctx = ctx;
    this.unsubscribe = this.devices.on((e) => this.onKernelEvent(e));
  }

  stop(): void {
    this.unsubscribe?.();
    for (const cancel of this.timers.values()) cancel();
    this.timers.clear();
  }

  receive(env: Envelope): void {
    if (env.from.peer !== this.ctx.self) {
      this.ctx.log('warn', `refused a device request from remote peer ${env.from.peer}`);
      return;
    }
    const parsed = DriverRequest.safeParse(env.body);
    if (!parsed.success) {
      this.reply(env.from, { kind: 'error', reason: `bad driver request: ${parsed.error.issues[0]?.message}` });
      return;
    }
    const req = parsed.data;
    const { clock, random, console, info } = this.devices.drivers;
    switch (req.kind) {
      case 'timer.set': {
        const key = `${env.from.port}/${req.id}`;
        this.timers.get(key)?.();
        const fire = () => {
          if (req.repeat) this.timers.set(key, clock.setTimeout(fire, req.ms));
          else this.timers.delete(key);
          this.reply(env.from, { kind: 'timer.fire', id: req.id, now: clock.now(), wallNow: clock.wallNow() });
        };
        this.timers.set(key, clock.setTimeout(fire, req.ms));
        break;
      }
      case 'timer.cancel': {
        const key = `${env.from.port}/${req.id}`;
        this.timers.get(key)?.();
        this.timers.delete(key);
        break;
      }
      case 'random':
        this.reply(env.from, { kind: 'random', bytes: random.bytes(req.n), tag: req.tag });
        break;
      case 'console.write':
        console.write(req.text);
        break;
      case 'net.watch':
        this.netWatchers.set(`${env.from.peer}/${env.from.port}`, env.from);
        for (const l of this.devices.linkStats()) {
          if (l.state === 'admitted' && l.kind) this.reply(env.from, { kind: 'net.up', peer: l.peer, peerKind: l.kind });
        }
        break;
      case 'net.stats':
        this.reply(env.from, { kind: 'net.stats', links: this.devices.linkStats() });
        break;
      case 'load.report':
        if (env.from.port === PORTS.scheduler) this.reportedLoad = req.load;
        break;
      case 'host.info':
        this.reply(env.from, {
          kind: 'host.info',
          peerKind: info.kind,
          capacity: info.capacity,
          load: Math.max(info.load(), this.reportedLoad),
          version: info.version,
          now: clock.now(),
          wallNow: clock.wallNow(),
        });
        break;
    }
  }

  private onKernelEvent(e: KernelEvent): void {
    let msg: DriverReply | undefined;
    if (e.type === 'link.admitted') msg = { kind: 'net.up', peer: e.peer, peerKind: e.kind };
    else if (e.type === 'link.down') msg = { kind: 'net.down', peer: e.peer, reason: e.reason };
    if (!msg) return;
    for (const w of this.netWatchers.values()) this.reply(w, msg);
  }

  private reply(to: Address, body: DriverReply): void {
    this.ctx.send(to, body);
  }
}
