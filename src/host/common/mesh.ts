// The full mesh of peer connections, shared by the tab's main thread and the Node peer.
// simple-peer does offer/answer/trickle-ICE; the relay carries its signals. Rules:
//  - the peer with the lower id initiates, so two peers never offer to each other at once;
//  - each connection attempt has a session number, so late signals of an old attempt are dropped;
//  - a connection that drops between two peers still in the room comes back by itself
//    (the lower id re-initiates after a backoff; the higher id knocks to ask for that).
// The data plane (what carries kernel frames) is a separate negotiated data channel, created
// with the connection so it can be transferred to the kernel worker before any send.
import type { RelayMessage } from '../../relay/protocol.ts';
import type { PeerId } from '../../kernel/types.ts';
import { SignalingClient, type WebSocketLike } from './signaling.ts';

/** The part of a simple-peer instance we use (the browser fork and simple-peer 9 alike). */
export interface SimplePeerLike {
  _pc: RTCPeerConnection;
  signal(data: unknown): void;
  destroy(err?: Error): void;
  on(event: 'signal', fn: (data: unknown) => void): void;
  on(event: 'connect', fn: () => void): void;
  on(event: 'close', fn: () => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
}

export type CreatePeer = (initiator: boolean) => SimplePeerLike;

export interface Fingerprints {
  localFingerprint: string;
  remoteFingerprint: string;
}

/** Where kernel frames travel: told of each connection's channel, and when it is up or down. */
export interface DataPlane {
  /** Called in the task that created `channel`, so it can still be transferred. */
  attach(peer: PeerId, channel: RTCDataChannel): void;
  up(peer: PeerId, fp: Fingerprints): void;
  down(peer: PeerId, reason: string): void;
}

/** The kernel's data channel: negotiated out of band, same id on both sides. */
export const DATA_CHANNEL = { label: 'lshapes', id: 1000 } as const;
const CONNECT_TIMEOUT_MS = 15_000;
const RETRY_MS = [500, 1000, 2000, 4000, 8000];
/** After this many failed attempts in a row, wait until the peer joins the relay room again. */
const MAX_ATTEMPTS = 10;
/** A connection that stayed up this long resets the backoff. */
const STABLE_MS = 10_000;

type ConnState = 'connecting' | 'up' | 'closed';

interface Conn {
  session: number;
  sp: SimplePeerLike;
  state: ConnState;
  since: number;
  timeout: ReturnType<typeof setTimeout>;
}

interface SignalEnvelope {
  s: number;
  sig?: { type?: string } & Record<string, unknown>;
  knock?: true;
}

export interface MeshOptions {
  self: PeerId;
  room: string;
  relayUrl: string;
  createSocket(url: string): WebSocketLike;
  createPeer: CreatePeer;
  dataPlane: DataPlane;
  log(text: string): void;
  onRelayStatus?(status: 'connecting' | 'open' | 'closed'): void;
}

export class Mesh {
  private readonly conns = new Map<PeerId, Conn>();
  private readonly room = new Set<PeerId>();
  private readonly attempts = new Map<PeerId, number>();
  private readonly retryTimers = new Map<PeerId, ReturnType<typeof setTimeout>>();
  private readonly signaling: SignalingClient;
  private stopped = false;

  constructor(private readonly opts: MeshOptions) {
    this.signaling = new SignalingClient({
      url: opts.relayUrl,
      room: opts.room,
      peer: opts.self,
      createSocket: opts.createSocket,
      onMessage: (m) => this.onRelay(m),
      onStatus: opts.onRelayStatus,
      log: opts.log,
    });
  }

  /** Peers we have a live connection to. */
  connected(): PeerId[] {
    return [...this.conns].filter(([, c]) => c.state === 'up').map(([p]) => p);
  }

  /** The kernel closed the link (failed admission, silence): drop it; the retry rule applies. */
  close(peer: PeerId, reason: string): void {
    const c = this.conns.get(peer);
    if (c) this.end(peer, c, reason);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.retryTimers.values()) clearTimeout(t);
    for (const [peer, c] of this.conns) this.end(peer, c, 'leaving');
    this.signaling.stop();
  }

  private onRelay(msg: RelayMessage): void {
    switch (msg.t) {
      case 'peers':
        this.room.clear();
        for (const p of msg.peers) {
          this.room.add(p);
          if (!this.conns.has(p)) this.maybeInitiate(p);
        }
        break;
      case 'joined': {
        this.room.add(msg.peer);
        this.attempts.delete(msg.peer);
        // A peer that (re)joins gets a fresh connection: its old one, if any, belongs to a closed tab.
        const old = this.conns.get(msg.peer);
        if (old && old.state !== 'up') this.end(msg.peer, old, 'peer rejoined');
        if (!this.conns.has(msg.peer)) this.maybeInitiate(msg.peer);
        break;
      }
      case 'left':
        this.room.delete(msg.peer);
        break;
      case 'signal':
        this.onSignal(msg.from, msg.data);
        break;
      case 'error':
        this.opts.log(`relay: ${msg.reason}`);
        break;
    }
  }

  private maybeInitiate(peer: PeerId): void {
    if (this.opts.self < peer) this.open(peer, true, randomSession());
  }

  private onSignal(from: PeerId, data: unknown): void {
    const env = data as SignalEnvelope;
    if (!env || typeof env !== 'object' || typeof env.s !== 'number') return this.opts.log(`malformed signal from ${from.slice(0, 8)}`);
    const cur = this.conns.get(from);
    if (env.knock) {
      if (this.opts.self < from && (!cur || cur.state === 'closed')) this.open(from, true, randomSession());
      return;
    }
    if (!env.sig || typeof env.sig !== 'object') return;
    if (env.sig.type === 'offer') {
      if (this.opts.self < from) return this.opts.log(`ignored an offer from ${from.slice(0, 8)}: the lower id initiates`);
      if (cur && cur.session === env.s) return cur.sp.signal(env.sig);
      if (cur) this.end(from, cur, 'replaced by a new offer', false);
      this.open(from, false, env.s).sp.signal(env.sig);
      return;
    }
    if (cur && cur.session === env.s && cur.state !== 'closed') {
      try {
        cur.sp.signal(env.sig);
      } catch (err) {
        this.opts.log(`bad signal from ${from.slice(0, 8)}: ${(err as Error).message}`);
      }
    }
  }

  private open(peer: PeerId, initiator: boolean, session: number): Conn {
    clearTimeout(this.retryTimers.get(peer));
    this.retryTimers.delete(peer);
    this.opts.log(`${initiator ? 'offering' : 'answering'} ${peer.slice(0, 8)} (session ${session})`);
    const sp = this.opts.createPeer(initiator);
    // Same task as the connection's creation: the data plane may transfer this channel.
    const channel = sp._pc.createDataChannel(DATA_CHANNEL.label, { negotiated: true, id: DATA_CHANNEL.id, ordered: true });
    channel.binaryType = 'arraybuffer';
    const conn: Conn = {
      session,
      sp,
      state: 'connecting',
      since: Date.now(),
      timeout: setTimeout(() => this.end(peer, conn, 'connection attempt timed out'), CONNECT_TIMEOUT_MS),
    };
    this.conns.set(peer, conn);
    this.opts.dataPlane.attach(peer, channel);
    sp.on('signal', (sig) => this.signaling.send({ t: 'signal', to: peer, data: { s: session, sig } }));
    sp.on('connect', () => {
      if (conn.state !== 'connecting') return;
      clearTimeout(conn.timeout);
      conn.state = 'up';
      conn.since = Date.now();
      this.opts.dataPlane.up(peer, fingerprints(sp._pc));
    });
    sp.on('close', () => this.end(peer, conn, 'connection closed'));
    sp.on('error', (err) => this.end(peer, conn, `connection error: ${err.message}`));
    return conn;
  }

  /** Ends one connection; unless replaced or leaving, schedules its comeback. */
  private end(peer: PeerId, conn: Conn, reason: string, retry = true): void {
    if (conn.state === 'closed') return;
    const wasUp = conn.state === 'up';
    conn.state = 'closed';
    clearTimeout(conn.timeout);
    this.opts.log(`connection to ${peer.slice(0, 8)} ended: ${reason}`);
    if (this.conns.get(peer) === conn) this.conns.delete(peer);
    try {
      conn.sp.destroy();
    } catch {
      // already torn down
    }
    this.opts.dataPlane.down(peer, reason);
    if (wasUp && Date.now() - conn.since > STABLE_MS) this.attempts.delete(peer);
    if (retry && !this.stopped) this.scheduleRetry(peer);
  }

  private scheduleRetry(peer: PeerId): void {
    if (this.retryTimers.has(peer)) return;
    const n = this.attempts.get(peer) ?? 0;
    this.attempts.set(peer, n + 1);
    if (n >= MAX_ATTEMPTS) {
      this.opts.log(`giving up on ${peer.slice(0, 8)} after ${n} failed attempts, until it joins again`);
      return;
    }
    const delay = RETRY_MS[Math.min(n, RETRY_MS.length - 1)]! * (0.75 + Math.random() * 0.5);
    this.retryTimers.set(
      peer,
      setTimeout(() => {
        this.retryTimers.delete(peer);
        if (this.stopped || !this.room.has(peer) || this.conns.has(peer)) return;
        this.opts.log(`reconnecting to ${peer.slice(0, 8)}`);
        if (this.opts.self < peer) this.open(peer, true, randomSession());
        else this.signaling.send({ t: 'signal', to: peer, data: { s: 0, knock: true } });
      }, delay),
    );
  }
}

function randomSession(): number {
  return Math.floor(Math.random() * 2 ** 31);
}

/** The DTLS certificate fingerprints from both SDPs ("sha-256 AB:CD:…"). */
export function fingerprints(pc: RTCPeerConnection): Fingerprints {
  return { localFingerprint: sdpFingerprint(pc.localDescription?.sdp), remoteFingerprint: sdpFingerprint(pc.remoteDescription?.sdp) };
}

export function sdpFingerprint(sdp: string | undefined): string {
  const m = /a=fingerprint:(\S+) ([0-9A-Fa-f:]+)/.exec(sdp ?? '');
  return m ? `${m[1]!.toLowerCase()} ${m[2]!.toUpperCase()}` : 'none';
}
