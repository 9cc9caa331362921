// The kernel's vocabulary: who peers are, how messages are addressed, and the driver
// interfaces every host (browser tab, Node peer, simulator) hands the kernel.
// Nothing here imports from the DOM or Node: the kernel is host-agnostic.

/** 32 lowercase hex chars: the first 16 bytes of SHA-256(public key). */
export type PeerId = string;
/** A well-known server port ("synchronizer") or a dynamic one ("ui", "proc.42"). */
export type PortName = string;
export type PeerKind = 'browser' | 'node' | 'sim';

export interface Address {
  peer: PeerId;
  port: PortName;
}

/** One message between ports. `from.peer` is set by the kernel, never by the sender. */
export interface Envelope<Body = unknown> {
  from: Address;
  to: Address;
  body: Body;
}

// ---- drivers: what a host gives the kernel ----

export type Cancel = () => void;

export interface Clock {
  /** Milliseconds; monotonic within a run (virtual time in the simulator). */
  now(): number;
  /** Wall-clock milliseconds since the epoch (virtual in the simulator). */
  wallNow(): number;
  setTimeout(fn: () => void, ms: number): Cancel;
}

export interface Random {
  bytes(n: number): Uint8Array;
}

/** An opaque private key: a WebCrypto CryptoKey in real hosts. */
export type PrivateKey = unknown;

export interface KeyPair {
  publicKey: Uint8Array;
  privateKey: PrivateKey;
}

/** The crypto a kernel needs. WebCrypto in real hosts; a deterministic fake in the simulator. */
export interface CryptoDriver {
  sha256(data: Uint8Array): Promise<Uint8Array>;
  hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array>;
  generateKeyPair(): Promise<KeyPair>;
  sign(privateKey: PrivateKey, data: Uint8Array): Promise<Uint8Array>;
  verify(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

/** What the host knows about a fresh transport link, before admission. */
export interface LinkInfo {
  /** The peer id the remote side claimed during signaling; admission checks it. */
  peer: PeerId;
  /** DTLS certificate fingerprints of this side and the remote side, as in the SDP. */
  localFingerprint: string;
  remoteFingerprint: string;
}

/** Callbacks from a network interface into the kernel. */
export interface NicEvents {
  linkUp(info: LinkInfo): void;
  frame(peer: PeerId, bytes: Uint8Array): void;
  /** The link's send backlog fell below the low-water mark. */
  drain(peer: PeerId): void;
  linkDown(peer: PeerId, reason: string): void;
}

/** Frames to and from peers. One transport link per remote peer. */
export interface NetworkInterface {
  attach(events: NicEvents): void;
  send(peer: PeerId, frame: Uint8Array): void;
  /** Bytes queued on the link and not yet on the wire. */
  bufferedAmount(peer: PeerId): number;
  close(peer: PeerId, reason: string): void;
}

export interface ConsoleDriver {
  write(text: string): void;
}

/** Facts about the host the Synchronizer spreads as this peer's resource entry. */
export interface HostInfo {
  kind: PeerKind;
  /** Execution slots: navigator.hardwareConcurrency or os.availableParallelism(). */
  capacity: number;
  version: string;
  /** Runnable work right now (0 until the Scheduler places processes). */
  load(): number;
}

export interface HostDrivers {
  nic: NetworkInterface;
  clock: Clock;
  random: Random;
  crypto: CryptoDriver;
  console: ConsoleDriver;
  info: HostInfo;
}

// ---- what the kernel reports to its host (the shell's event log) ----

export type KernelEvent =
  | { type: 'link.up'; peer: PeerId }
  | { type: 'link.admitted'; peer: PeerId; kind: PeerKind }
  | { type: 'link.down'; peer: PeerId; reason: string }
  | { type: 'link.refused'; peer: PeerId; reason: string }
  | { type: 'frame.bad'; peer: PeerId; reason: string }
  | { type: 'message.undeliverable'; to: Address; reason: string }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; source: string; text: string };

export type KernelEventType = KernelEvent['type'];

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}
