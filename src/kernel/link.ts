// One link per remote peer: admission handshake, then framed, flow-controlled messages.
//
//   handshaking ──(both auths verified)──▶ admitted ──(bye, timeout, error)──▶ closed
//        └────────────(admission fails)─────────────────────────────────────────┘
//
// Flow control: the receiver acknowledges the bytes it got (`ack`, cumulative, every
// ACK_EVERY_BYTES); the sender keeps at most WINDOW_BYTES unacknowledged (see there why).
import { checkAuth, checkHello, makeAuth, type AdmissionSide } from './admission.ts';
import type { Identity } from './identity.ts';
import type { CryptoDriver, LinkInfo, PeerKind } from './types.ts';
import { Reassembler, decodeFrame, encodeFrame, splitFrame, MAX_FRAME_BYTES, PROTOCOL_VERSION, type Frame } from './wire.ts';

export type LinkState = 'handshaking' | 'admitted' | 'closed';

/** Keep at most this much queued in the transport; the rest waits here (a backstop: the window below is tighter). */
export const HIGH_WATER_BYTES = 2 * 1024 * 1024;
/**
 * Bytes sent and not yet acknowledged by the other kernel, at most (a bigger frame goes alone).
 * The transport's own flow control is not enough: on a fresh WebRTC connection, a 16 MiB burst
 * into the data channel lost packets and stalled SCTP for 3–5 s (retransmission timeouts not
 * yet tuned to the real round trip) — long enough for membership to drop the sender. Measured
 * between fresh tab pairs (16 MiB cold, then 64 MiB warm, against a raw channel at 33–36 MiB/s):
 *   512 KiB: cold 0.6–0.7 s every time, warm 27 MiB/s (0.75× raw: two 256 KiB frames in flight);
 *   1 MiB:   cold 0.47–0.74 s, 16/16 without a stall, warm 31–33 MiB/s (≈ raw);
 *   2 MiB, or a window that grows with the bytes already delivered (slow start, to 4 or 16 MiB):
 *            stalled 3–8 s in most cold runs: the trouble is a young connection, not a young window.
 */
export const WINDOW_BYTES = 1024 * 1024;
/** The receiver acknowledges after this many new bytes (≤ WINDOW_BYTES, or a sender could wait forever). */
export const ACK_EVERY_BYTES = 64 * 1024;
/** The lane of the kernel's own frames (handshake, keepalives, acks): never held by the window. */
const KERNEL_LANE = '#kernel';
/** A link sending this many bad frames is closed. */
export const MAX_BAD_FRAMES = 8;

/** What a link needs from its kernel. */
export interface LinkEnv {
  crypto: CryptoDriver;
  identity: Identity;
  admissionKey: Uint8Array;
  kind: PeerKind;
  now(): number;
  nonce(): Uint8Array;
  transmit(bytes: Uint8Array): void;
  backlog(): number;
  /** An admitted frame for the kernel to act on (msg, ping, pong, bye). */
  deliver(frame: Frame): void;
  admitted(kind: PeerKind): void;
  bad(reason: string): void;
  close(reason: string): void;
}

export interface LinkStats {
  peer: string;
  state: LinkState;
  kind: PeerKind | undefined;
  rttMs: number | undefined;
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  queuedBytes: number;
  /** Sent and not yet acknowledged (the window in use). */
  unackedBytes: number;
}

export class Link {
  state: LinkState = 'handshaking';
  kind: PeerKind | undefined;
  rttMs: number | undefined;
  readonly openedAt: number;
  lastHeard: number;
  private badFrames = 0;
  private readonly me: AdmissionSide;
  private them: AdmissionSide | undefined;
  private sentAuth = false;
  private theirAuth: { mac: Uint8Array; sig: Uint8Array } | undefined;
  /** Handshake frames are handled one at a time, in arrival order (crypto is async). */
  private handshakeChain: Promise<void> = Promise.resolve();
  private readonly reassembler = new Reassembler();
  /**
   * Frames waiting for the transport, one FIFO lane per sending port (the kernel's own frames —
   * pings, handshake — have theirs), served round-robin a frame at a time: a 16 MiB message
   * (a migrating process) must not hold up keepalives and membership gossip for the second it
   * takes to send, or the peer is declared dead mid-transfer. Messages of one port keep their
   * order; there never was an order between ports.
   */
  private readonly lanes = new Map<string, Uint8Array[]>();
  private queuedBytes = 0;
  /** Our bytesOut the other kernel has acknowledged receiving; bytesIn we last acknowledged. */
  private ackedOut = 0;
  private ackedIn = 0;
  private nextMessageId = 0;
  private stats = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 };

  constructor(readonly info: LinkInfo, private readonly env: LinkEnv) {
    this.openedAt = this.lastHeard = env.now();
    this.me = { pub: env.identity.publicKey, nonce: env.nonce(), fingerprint: info.localFingerprint };
    this.sendFrame({ k: 'hello', v: PROTOCOL_VERSION, pub: this.me.pub, nonce: this.me.nonce, kind: env.kind });
  }

  get peer(): string {
    return this.info.peer;
  }

  /** Bytes from the transport. Never throws; bad input is reported and counted. */
  receive(bytes: Uint8Array): void {
    if (this.state === 'closed') return;
    this.stats.framesIn++;
    this.stats.bytesIn += bytes.length;
    this.lastHeard = this.env.now();
    this.acknowledge();
    if (bytes.length > MAX_FRAME_BYTES) return this.strike(`oversized frame: ${bytes.length} bytes > ${MAX_FRAME_BYTES}`);
    const decoded = decodeFrame(bytes);
    if (!decoded.ok) return this.strike(decoded.reason);
    let frame = decoded.frame;
    // Flow control works in any state: the other side may be admitted before we are.
    if (frame.k === 'ack') return this.acknowledged(frame.bytes);
    if (frame.k === 'chunk') {
      const whole = this.reassembler.add(frame);
      if (whole === null) return;
      if ('error' in whole) return this.strike(whole.error);
      const inner = decodeFrame(whole);
      if (!inner.ok) return this.strike(inner.reason);
      if (inner.frame.k === 'chunk') return this.strike('chunk inside a chunked message');
      frame = inner.frame;
    }
    if (this.state === 'handshaking') {
      const f = frame;
      this.handshakeChain = this.handshakeChain.then(() => this.handshake(f)).catch((err) => this.env.close(`admission error: ${(err as Error).message}`));
    } else if (frame.k === 'hello' || frame.k === 'auth') {
      this.strike(`${frame.k} after admission`);
    } else {
      this.env.deliver(frame);
    }
  }

  private async handshake(frame: Frame): Promise<void> {
    if (this.state !== 'handshaking') {
      // Frames that queued behind the last auth check arrive here once admitted.
      if (this.state === 'admitted') this.receiveAdmitted(frame);
      return;
    }
    switch (frame.k) {
      case 'hello': {
        if (this.them) return this.strike('second hello');
        const verdict = await checkHello(this.env.crypto, this.info.peer, frame.pub);
        if (!verdict.ok) return this.env.close(verdict.reason);
        this.them = { pub: frame.pub, nonce: frame.nonce, fingerprint: this.info.remoteFingerprint };
        this.kind = frame.kind;
        const auth = await makeAuth(this.env.crypto, this.env.admissionKey, this.env.identity.privateKey, this.me, this.them);
        if (this.state !== 'handshaking') return;
        this.sendFrame({ k: 'auth', ...auth });
        this.sentAuth = true;
        break;
      }
      case 'auth':
        if (!this.them) return this.env.close('auth before hello');
        if (this.theirAuth) return this.strike('second auth');
        this.theirAuth = frame;
        break;
      case 'bye':
        return this.env.close(`remote left during admission: ${frame.reason}`);
      default:
        return this.env.close(`${frame.k} frame before admission`);
    }
    if (this.sentAuth && this.theirAuth && this.them) {
      const verdict = await checkAuth(this.env.crypto, this.env.admissionKey, this.them, this.me, this.theirAuth);
      if (this.state !== 'handshaking') return;
      if (!verdict.ok) return this.env.close(verdict.reason);
      this.state = 'admitted';
      this.env.admitted(this.kind!);
    }
  }

  private receiveAdmitted(frame: Frame): void {
    if (frame.k === 'hello' || frame.k === 'auth') this.strike(`${frame.k} after admission`);
    else this.env.deliver(frame);
  }

  /** Every ACK_EVERY_BYTES received (counting every frame, bad ones too), say so. */
  private acknowledge(): void {
    if (this.stats.bytesIn - this.ackedIn < ACK_EVERY_BYTES) return;
    this.ackedIn = this.stats.bytesIn;
    this.sendFrame({ k: 'ack', bytes: this.ackedIn });
  }

  private acknowledged(bytes: number): void {
    if (bytes > this.stats.bytesOut) return this.strike(`ack of ${bytes} bytes, only ${this.stats.bytesOut} sent`);
    if (bytes <= this.ackedOut) return;
    this.ackedOut = bytes;
    this.pump();
  }

  private strike(reason: string): void {
    this.env.bad(reason);
    if (++this.badFrames >= MAX_BAD_FRAMES) this.env.close(`too many bad frames (last: ${reason})`);
  }

  /** Encode, chunk if needed, and queue behind the transport's backlog. */
  sendFrame(frame: Frame): void {
    if (this.state === 'closed') return;
    // Split first: a message too large throws here, leaving no empty lane behind.
    const parts = splitFrame(encodeFrame(frame), this.nextMessageId++);
    const laneKey = frame.k === 'msg' ? frame.from : KERNEL_LANE;
    let lane = this.lanes.get(laneKey);
    if (!lane) this.lanes.set(laneKey, (lane = []));
    for (const part of parts) {
      lane.push(part);
      this.queuedBytes += part.length;
    }
    this.pump();
  }

  /**
   * Moves queued frames to the transport while its backlog is under the high-water mark and the
   * window has room; the kernel's lane goes even when the window is full (its frames are tiny,
   * and a peer that cannot hear our keepalives would drop us).
   */
  pump(): void {
    while (this.lanes.size > 0 && this.state !== 'closed' && this.env.backlog() < HIGH_WATER_BYTES) {
      // The first lane's head goes out; a lane with more goes to the back (Map order = rotation).
      let key: string = this.lanes.keys().next().value!;
      if (!this.windowAllows(this.lanes.get(key)![0]!.length)) {
        if (!this.lanes.has(KERNEL_LANE)) return; // an ack will pump again
        key = KERNEL_LANE;
      }
      const lane = this.lanes.get(key)!;
      const part = lane.shift()!;
      this.lanes.delete(key);
      if (lane.length > 0) this.lanes.set(key, lane);
      this.queuedBytes -= part.length;
      this.stats.framesOut++;
      this.stats.bytesOut += part.length;
      this.env.transmit(part);
    }
  }

  private windowAllows(bytes: number): boolean {
    const inFlight = this.stats.bytesOut - this.ackedOut;
    return inFlight === 0 || inFlight + bytes <= WINDOW_BYTES;
  }

  markClosed(): void {
    this.state = 'closed';
    this.lanes.clear();
    this.queuedBytes = 0;
  }

  snapshot(): LinkStats {
    return { peer: this.peer, state: this.state, kind: this.kind, rttMs: this.rttMs, ...this.stats, queuedBytes: this.queuedBytes, unackedBytes: this.stats.bytesOut - this.ackedOut };
  }
}
