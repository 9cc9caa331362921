// The data plane between the thread that owns the peer connections (a tab's main thread, the
// Node peer's main thread) and the kernel's worker. Two ways, measured in bench/:
//  - "transfer": each RTCDataChannel is transferred to the worker at creation; frames never
//    touch the main thread (Chromium 130+ only);
//  - "bridge": the main thread keeps the channel and forwards frames over postMessage.
// Either way the kernel sees one NetworkInterface (WorkerNic below).
import type { NetworkInterface, NicEvents, PeerId } from '../../kernel/types.ts';
import type { DataPlane, Fingerprints } from './mesh.ts';

export type DataPlaneMode = 'transfer' | 'bridge';

/** Main thread → kernel worker. */
export type ToKernel =
  | { t: 'channel'; peer: PeerId; channel: RTCDataChannel }
  | ({ t: 'up'; peer: PeerId } & Fingerprints)
  | { t: 'down'; peer: PeerId; reason: string }
  | { t: 'frame'; peer: PeerId; data: ArrayBuffer }
  /** Bridge mode: this many bytes the worker posted have left the main thread's queue. */
  | { t: 'sent'; peer: PeerId; bytes: number };

/** Kernel worker → main thread. */
export type FromKernel =
  | { t: 'send'; peer: PeerId; data: ArrayBuffer }
  | { t: 'close'; peer: PeerId; reason: string };

export interface Endpoint<In, Out> {
  post(msg: Out, transfer?: Transferable[]): void;
  listen(fn: (msg: In) => void): void;
}

/** Keep the channel's own buffer under this; Chromium throws past 16 MiB. */
const CHANNEL_HIGH_WATER = 1024 * 1024;
const CHANNEL_LOW_WATER = 256 * 1024;

/** An ArrayBuffer holding exactly these bytes, safe to transfer (encoders share their buffers). */
function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return new Uint8Array(bytes).buffer;
}

/**
 * The main-thread half. In transfer mode it hands channels over; in bridge mode it owns them,
 * forwards frames, and gates sends on bufferedAmount.
 */
export class MainDataPlane implements DataPlane {
  private readonly channels = new Map<PeerId, BridgedChannel>();

  constructor(
    private readonly mode: DataPlaneMode,
    private readonly kernel: Endpoint<FromKernel, ToKernel>,
    private readonly closeConnection: (peer: PeerId, reason: string) => void,
  ) {
    kernel.listen((msg) => {
      if (msg.t === 'close') this.closeConnection(msg.peer, msg.reason);
      else this.channels.get(msg.peer)?.send(msg.data);
    });
  }

  attach(peer: PeerId, channel: RTCDataChannel): void {
    if (this.mode === 'transfer') {
      this.kernel.post({ t: 'channel', peer, channel }, [channel as unknown as Transferable]);
      return;
    }
    this.channels.get(peer)?.detach();
    this.channels.set(peer, new BridgedChannel(peer, channel, this.kernel, () => this.closeConnection(peer, 'data channel closed')));
  }

  up(peer: PeerId, fp: Fingerprints): void {
    const ch = this.channels.get(peer);
    if (ch) ch.whenOpen(() => this.kernel.post({ t: 'up', peer, ...fp }));
    else this.kernel.post({ t: 'up', peer, ...fp });
  }

  down(peer: PeerId, reason: string): void {
    this.channels.get(peer)?.detach();
    this.channels.delete(peer);
    this.kernel.post({ t: 'down', peer, reason });
  }
}

class BridgedChannel {
  private readonly queue: ArrayBuffer[] = [];
  private sentBytes = 0;
  private flushScheduled = false;

  constructor(
    private readonly peer: PeerId,
    private readonly channel: RTCDataChannel,
    private readonly kernel: Endpoint<FromKernel, ToKernel>,
    onClose: () => void,
  ) {
    channel.bufferedAmountLowThreshold = CHANNEL_LOW_WATER;
    channel.onclose = onClose;
    channel.onmessage = (ev: MessageEvent) => {
      if (ev.data instanceof ArrayBuffer) this.kernel.post({ t: 'frame', peer, data: ev.data }, [ev.data]);
    };
    channel.onbufferedamountlow = () => this.flush();
  }

  whenOpen(fn: () => void): void {
    if (this.channel.readyState === 'open') fn();
    else this.channel.addEventListener('open', () => fn(), { once: true });
  }

  send(data: ArrayBuffer): void {
    this.queue.push(data);
    this.flush();
  }

  private flush(): void {
    while (this.queue.length > 0 && this.channel.readyState === 'open' && this.channel.bufferedAmount < CHANNEL_HIGH_WATER) {
      const data = this.queue.shift()!;
      try {
        this.channel.send(data);
      } catch {
        break; // closing: the connection's close event ends the link
      }
      this.sentBytes += data.byteLength;
    }
    // Tell the worker once per task how much left our queue, so its flow control can go on.
    if (this.sentBytes > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        const bytes = this.sentBytes;
        this.sentBytes = 0;
        this.kernel.post({ t: 'sent', peer: this.peer, bytes });
      });
    }
  }

  detach(): void {
    this.channel.onmessage = null;
    this.channel.onclose = null;
    this.channel.onbufferedamountlow = null;
    this.queue.length = 0;
  }
}

/** Below this backlog the kernel is told it may send again. */
const DRAIN_BYTES = 256 * 1024;

interface PeerPlane {
  channel?: RTCDataChannel;
  fp?: Fingerprints;
  linked: boolean;
  /** Frames that came before the kernel was told the link is up. */
  early: Uint8Array[];
  /** Bridge mode: bytes posted to the main thread and not yet confirmed sent. */
  inflight: number;
}

/** The kernel-worker half: one NetworkInterface over either mode. */
export class WorkerNic implements NetworkInterface {
  private events: NicEvents | undefined;
  private readonly peers = new Map<PeerId, PeerPlane>();

  constructor(private readonly main: Endpoint<ToKernel, FromKernel>) {
    main.listen((msg) => this.fromMain(msg));
  }

  attach(events: NicEvents): void {
    this.events = events;
  }

  private plane(peer: PeerId): PeerPlane {
    let p = this.peers.get(peer);
    if (!p) this.peers.set(peer, (p = { linked: false, early: [], inflight: 0 }));
    return p;
  }

  private fromMain(msg: ToKernel): void {
    switch (msg.t) {
      case 'channel': {
        const old = this.peers.get(msg.peer);
        if (old?.linked) this.linkDown(msg.peer, 'replaced by a new connection');
        this.peers.delete(msg.peer);
        const p = this.plane(msg.peer);
        const ch = (p.channel = msg.channel);
        ch.binaryType = 'arraybuffer';
        ch.bufferedAmountLowThreshold = DRAIN_BYTES;
        ch.onmessage = (ev: MessageEvent) => {
          if (this.peers.get(msg.peer)?.channel === ch && ev.data instanceof ArrayBuffer) this.incoming(msg.peer, new Uint8Array(ev.data));
        };
        ch.onopen = () => this.maybeUp(msg.peer);
        ch.onclose = () => {
          // The main thread may not notice (the connection itself can linger): tell it.
          if (this.peers.get(msg.peer)?.channel === ch) this.linkDown(msg.peer, 'data channel closed', true);
        };
        ch.onbufferedamountlow = () => this.events?.drain(msg.peer);
        break;
      }
      case 'up':
        this.plane(msg.peer).fp = { localFingerprint: msg.localFingerprint, remoteFingerprint: msg.remoteFingerprint };
        this.maybeUp(msg.peer);
        break;
      case 'down':
        this.linkDown(msg.peer, msg.reason);
        break;
      case 'frame':
        this.incoming(msg.peer, new Uint8Array(msg.data));
        break;
      case 'sent': {
        const p = this.peers.get(msg.peer);
        if (!p) break;
        const before = p.inflight;
        p.inflight = Math.max(0, p.inflight - msg.bytes);
        if (before >= DRAIN_BYTES && p.inflight < DRAIN_BYTES) this.events?.drain(msg.peer);
        break;
      }
    }
  }

  private maybeUp(peer: PeerId): void {
    const p = this.peers.get(peer);
    if (!p || p.linked || !p.fp) return;
    if (p.channel && p.channel.readyState !== 'open') return;
    p.linked = true;
    this.events?.linkUp({ peer, ...p.fp });
    for (const f of p.early.splice(0)) this.events?.frame(peer, f);
  }

  private incoming(peer: PeerId, bytes: Uint8Array): void {
    const p = this.plane(peer);
    if (p.linked) this.events?.frame(peer, bytes);
    else if (p.early.length < 64) p.early.push(bytes);
  }

  private linkDown(peer: PeerId, reason: string, tellMain = false): void {
    const p = this.peers.get(peer);
    if (!p) return;
    this.peers.delete(peer);
    if (tellMain) this.main.post({ t: 'close', peer, reason });
    if (p.channel) {
      p.channel.onclose = p.channel.onmessage = null;
      if (p.channel.readyState === 'open' || p.channel.readyState === 'connecting') p.channel.close();
    }
    if (p.linked) this.events?.linkDown(peer, reason);
  }

  send(peer: PeerId, frame: Uint8Array): void {
    const p = this.peers.get(peer);
    if (!p?.linked) return;
    if (p.channel) {
      try {
        p.channel.send(frame as Uint8Array<ArrayBuffer>);
      } catch (err) {
        this.linkDown(peer, `send failed: ${(err as Error).message}`, true);
      }
      return;
    }
    const data = toArrayBuffer(frame);
    p.inflight += data.byteLength;
    this.main.post({ t: 'send', peer, data }, [data]);
  }

  bufferedAmount(peer: PeerId): number {
    const p = this.peers.get(peer);
    if (!p) return 0;
    return p.channel ? p.channel.bufferedAmount : p.inflight;
  }

  close(peer: PeerId, reason: string): void {
    const p = this.peers.get(peer);
    if (!p) return;
    this.peers.delete(peer);
    if (p.channel) {
      p.channel.onclose = p.channel.onmessage = null;
      p.channel.close();
    }
    this.main.post({ t: 'close', peer, reason });
  }
}
