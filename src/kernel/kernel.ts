// The microkernel: routes messages between ports (local, or framed to the owning peer),
// keeps one admitted link per peer, and reports what happens as KernelEvents.
// It knows nothing of what servers do; servers are actors behind ports.
import { deriveClusterSecrets, type ClusterSecrets, type Identity } from './identity.ts';
import { Link, type LinkStats } from './link.ts';
import type { Server, ServerContext } from './server.ts';
import type { Address, Envelope, HostDrivers, KernelEvent, LinkInfo, PeerId, PortName } from './types.ts';
import type { Frame } from './wire.ts';

/** Every admitted link is pinged this often; the answer gives its round-trip time. */
export const PING_INTERVAL_MS = 1000;
/** A link that has said nothing for this long is closed (its peer vanished or the network cut). */
export const LINK_SILENCE_MS = 5000;
/** A link must finish admission within this. */
export const ADMISSION_TIMEOUT_MS = 10_000;

export type PortHandler = (env: Envelope) => void;

export interface KernelOptions {
  identity: Identity;
  token: string;
  drivers: HostDrivers;
}

export class Kernel {
  readonly self: PeerId;
  readonly drivers: HostDrivers;
  private readonly identity: Identity;
  private secrets: ClusterSecrets | undefined;
  private readonly ports = new Map<PortName, PortHandler>();
  private readonly servers: Server[] = [];
  private readonly links = new Map<PeerId, Link>();
  private readonly listeners = new Set<(e: KernelEvent) => void>();
  private cancelTick: (() => void) | undefined;
  private running = false;

  private constructor(opts: KernelOptions) {
    this.identity = opts.identity;
    this.self = opts.identity.peerId;
    this.drivers = opts.drivers;
  }

  static async create(opts: KernelOptions): Promise<Kernel> {
    const k = new Kernel(opts);
    k.secrets = await deriveClusterSecrets(opts.drivers.crypto, opts.token);
    return k;
  }

  /** The relay room this kernel's cluster maps to (safe to tell the relay). */
  get room(): string {
    return this.secrets!.room;
  }

  // ---- ports ----

  register(port: PortName, handler: PortHandler): void {
    if (this.ports.has(port)) throw new Error(`port ${port} is already registered`);
    this.ports.set(port, handler);
  }

  unregister(port: PortName): void {
    this.ports.delete(port);
  }

  addServer(server: Server): void {
    this.servers.push(server);
    this.register(server.port, (env) => server.receive(env));
    if (this.running) server.start(this.contextFor(server.port));
  }

  contextFor(port: PortName): ServerContext {
    return {
      self: this.self,
      send: (to, body) => this.send({ peer: this.self, port }, to, body),
      log: (level, text) => this.emit({ type: 'log', level, source: port, text }),
    };
  }

  /**
   * Sends `body` from a local port to any port in the cluster. Location-transparent:
   * local delivery is asynchronous like remote delivery. Returns false when it is
   * known at once that the message cannot be delivered (no link to that peer).
   */
  send(from: Address, to: Address, body: unknown): boolean {
    if (to.peer === this.self) {
      queueMicrotask(() => this.deliverLocal({ from, to, body }));
      return true;
    }
    const link = this.links.get(to.peer);
    if (!link || link.state !== 'admitted') {
      this.emit({ type: 'message.undeliverable', to, reason: link ? 'link not admitted yet' : 'no link to that peer' });
      return false;
    }
    try {
      link.sendFrame({ k: 'msg', from: from.port, to: to.port, body });
    } catch (err) {
      this.emit({ type: 'message.undeliverable', to, reason: (err as Error).message });
      return false;
    }
    return true;
  }

  private deliverLocal(env: Envelope): void {
    const handler = this.ports.get(env.to.port);
    if (!handler) {
      this.emit({ type: 'message.undeliverable', to: env.to, reason: `no port ${env.to.port} on this peer` });
      return;
    }
    try {
      handler(env);
    } catch (err) {
      // A server's bug must not take the kernel down with it.
      this.emit({ type: 'log', level: 'error', source: env.to.port, text: `handler threw: ${(err as Error).stack ?? err}` });
    }
  }

  // ---- links ----

  /** Starts the servers, attaches the network interface and the link keepalive. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.drivers.nic.attach({
      linkUp: (info) => this.onLinkUp(info),
      frame: (peer, bytes) => this.onFrame(peer, bytes),
      drain: (peer) => this.links.get(peer)?.pump(),
      linkDown: (peer, reason) => this.dropLink(peer, reason, false),
    });
    for (const s of this.servers) s.start(this.contextFor(s.port));
    this.scheduleTick();
  }

  private onLinkUp(info: LinkInfo): void {
    if (!this.running) return;
    if (info.peer === this.self) {
      this.drivers.nic.close(info.peer, 'a link to ourselves');
      return;
    }
    // A new transport to a peer replaces the old one (the peer reconnected).
    const old = this.links.get(info.peer);
    if (old) this.dropLink(info.peer, 'replaced by a new connection', false);
    const peer = info.peer;
    const link: Link = new Link(info, {
      crypto: this.drivers.crypto,
      identity: this.identity,
      admissionKey: this.secrets!.admissionKey,
      kind: this.drivers.info.kind,
      now: () => this.drivers.clock.now(),
      nonce: () => this.drivers.random.bytes(32),
      transmit: (bytes) => this.drivers.nic.send(peer, bytes),
      backlog: () => this.drivers.nic.bufferedAmount(peer),
      deliver: (frame) => this.onAdmittedFrame(link, frame),
      admitted: (kind) => this.emit({ type: 'link.admitted', peer, kind }),
      bad: (reason) => this.emit({ type: 'frame.bad', peer, reason }),
      close: (reason) => {
        if (link.state !== 'admitted') this.emit({ type: 'link.refused', peer, reason });
        if (this.links.get(peer) === link) this.dropLink(peer, reason, true);
      },
    });
    this.links.set(peer, link);
    this.emit({ type: 'link.up', peer });
  }

  private onFrame(peer: PeerId, bytes: Uint8Array): void {
    const link = this.links.get(peer);
    if (!link) {
      this.emit({ type: 'frame.bad', peer, reason: 'frame on a link the kernel does not know' });
      return;
    }
    link.receive(bytes);
  }

  private onAdmittedFrame(link: Link, frame: Frame): void {
    switch (frame.k) {
      case 'msg':
        this.deliverLocal({ from: { peer: link.peer, port: frame.from }, to: { peer: this.self, port: frame.to }, body: frame.body });
        break;
      case 'ping':
        link.sendFrame({ k: 'pong', t: frame.t });
        break;
      case 'pong': {
        const rtt = this.drivers.clock.now() - frame.t;
        if (rtt >= 0) link.rttMs = link.rttMs === undefined ? rtt : link.rttMs * 0.7 + rtt * 0.3;
        break;
      }
      case 'bye':
        this.dropLink(link.peer, `peer left: ${frame.reason}`, true);
        break;
      default:
        break; // hello/auth/chunk never reach here (link.ts)
    }
  }

  private dropLink(peer: PeerId, reason: string, closeTransport: boolean): void {
    const link = this.links.get(peer);
    if (!link) return;
    this.links.delete(peer);
    link.markClosed();
    if (closeTransport) this.drivers.nic.close(peer, reason);
    this.emit({ type: 'link.down', peer, reason });
  }

  /** Keepalive: ping admitted links, close silent ones and stalled handshakes. */
  private scheduleTick(): void {
    this.cancelTick = this.drivers.clock.setTimeout(() => {
      const now = this.drivers.clock.now();
      for (const link of [...this.links.values()]) {
        if (link.state === 'handshaking' && now - link.openedAt > ADMISSION_TIMEOUT_MS) {
          this.emit({ type: 'link.refused', peer: link.peer, reason: 'admission timed out' });
          this.dropLink(link.peer, 'admission timed out', true);
        } else if (link.state === 'admitted' && now - link.lastHeard > LINK_SILENCE_MS) {
          this.dropLink(link.peer, `silent for ${LINK_SILENCE_MS} ms`, true);
        } else if (link.state === 'admitted') {
          link.sendFrame({ k: 'ping', t: now });
        }
      }
      if (this.running) this.scheduleTick();
    }, PING_INTERVAL_MS);
  }

  /** Admitted peers with their link statistics. */
  linkStats(): LinkStats[] {
    return [...this.links.values()].map((l) => l.snapshot());
  }

  isAdmitted(peer: PeerId): boolean {
    return this.links.get(peer)?.state === 'admitted';
  }

  /** Graceful leave: servers say goodbye first, then every link gets a `bye`. */
  stop(reason = 'shutting down'): void {
    if (!this.running) return;
    for (const s of this.servers) {
      try {
        s.stop?.();
      } catch (err) {
        this.emit({ type: 'log', level: 'error', source: s.port, text: `stop threw: ${(err as Error).message}` });
      }
    }
    for (const link of [...this.links.values()]) {
      if (link.state === 'admitted') link.sendFrame({ k: 'bye', reason });
    }
    this.running = false;
    this.cancelTick?.();
    for (const peer of [...this.links.keys()]) this.dropLink(peer, reason, true);
  }

  // ---- events ----

  on(listener: (e: KernelEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(e: KernelEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // a broken listener must not stop the others
      }
    }
  }
}
