// Admission with the real crypto (WebCrypto ECDSA P-256, as in tabs and Node peers): two kernels
// over a pair of in-memory NICs admit each other only with the same token, matching DTLS
// fingerprints and honest keys — and refuse early messages and stalled handshakes.
import { afterEach, describe, expect, test } from 'vitest';
import { nobleCryptoDriver } from '../host/common/noble-crypto.ts';
import { webCryptoDriver } from '../host/common/webcrypto.ts';
import { Scheduler, TimerOwner } from '../host/sim/clock.ts';
import { makeAuth } from './admission.ts';
import { deriveClusterSecrets, identityFrom, type Identity } from './identity.ts';
import { ADMISSION_TIMEOUT_MS, Kernel } from './kernel.ts';
import type { CryptoDriver, KernelEvent, LinkInfo, NetworkInterface, NicEvents, PeerId } from './types.ts';
import { PROTOCOL_VERSION, decodeFrame, encodeFrame, type Frame } from './wire.ts';

const TOKEN = 'admission-test-token-1234';

/** One side of an in-memory transport. Frames cross on a macrotask, like a real channel. */
class MemNic implements NetworkInterface {
  events: NicEvents | undefined;
  /** Where our frames go: the other NIC, or a raw handler standing in for a hand-made peer. */
  peerEnd: MemNic | ((bytes: Uint8Array) => void) | undefined;
  /** The id under which the other side's frames reach our kernel (what signaling claimed). */
  remoteName: PeerId = '';
  closed: string[] = [];

  attach(events: NicEvents): void {
    this.events = events;
  }

  send(_peer: PeerId, frame: Uint8Array): void {
    const copy = frame.slice();
    const to = this.peerEnd;
    setImmediate(() => {
      if (typeof to === 'function') to(copy);
      else to?.events?.frame(to.remoteName, copy);
    });
  }

  bufferedAmount(): number {
    return 0;
  }

  close(_peer: PeerId, reason: string): void {
    this.closed.push(reason);
  }

  /** Frames from the hand-made peer. */
  inject(frame: Frame): void {
    this.events?.frame(this.remoteName, encodeFrame(frame));
  }
}

interface Side {
  kernel: Kernel;
  identity: Identity;
  nic: MemNic;
  events: KernelEvent[];
  crypto: CryptoDriver;
}

const sched = new Scheduler();
const kernels: Kernel[] = [];
afterEach(() => {
  for (const k of kernels.splice(0)) k.stop();
});

async function side(opts: { token?: string; crypto?: CryptoDriver } = {}): Promise<Side> {
  const crypto = opts.crypto ?? webCryptoDriver();
  const identity = await identityFrom(crypto, await crypto.generateKeyPair());
  const nic = new MemNic();
  const kernel = await Kernel.create({
    identity,
    token: opts.token ?? TOKEN,
    drivers: {
      nic,
      // Virtual time: the keepalive only ticks when a test advances the clock.
      clock: sched.clockFor(new TimerOwner(identity.peerId)),
      random: { bytes: (n) => globalThis.crypto.getRandomValues(new Uint8Array(n)) },
      crypto,
      console: { write: () => {} },
      info: { kind: 'node', capacity: 2, version: 'test', load: () => 0 },
    },
  });
  const events: KernelEvent[] = [];
  kernel.on((e) => events.push(e));
  kernel.start();
  kernels.push(kernel);
  return { kernel, identity, nic, events, crypto };
}

/** Waits (on real async crypto) until `cond` holds; fails after many event-loop turns. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const has = (s: Side, type: KernelEvent['type']) => s.events.some((e) => e.type === type);
const reasons = (s: Side, type: 'link.refused' | 'link.down') =>
  s.events.filter((e): e is Extract<KernelEvent, { type: typeof type }> => e.type === type).map((e) => e.reason);
const settled = (s: Side) => has(s, 'link.admitted') || has(s, 'link.refused');

/**
 * Joins two kernels. `seen` overrides what each side's host reports: the peer id signaling
 * claimed and the fingerprints in its SDPs (an attacker in the middle changes these).
 */
function connect(a: Side, b: Side, seen: { aSees?: Partial<LinkInfo>; bSees?: Partial<LinkInfo> } = {}): void {
  const fpA = 'sha-256 AA:AA:AA';
  const fpB = 'sha-256 BB:BB:BB';
  const infoA: LinkInfo = { peer: b.identity.peerId, localFingerprint: fpA, remoteFingerprint: fpB, ...seen.aSees };
  const infoB: LinkInfo = { peer: a.identity.peerId, localFingerprint: fpB, remoteFingerprint: fpA, ...seen.bSees };
  a.nic.peerEnd = b.nic;
  b.nic.peerEnd = a.nic;
  a.nic.remoteName = infoA.peer;
  b.nic.remoteName = infoB.peer;
  a.nic.events!.linkUp(infoA);
  b.nic.events!.linkUp(infoB);
}

describe('admission over WebCrypto', () => {
  test('same token: both sides admit, then messages flow', async () => {
    const [a, b] = await Promise.all([side(), side()]);
    connect(a, b);
    await until(() => settled(a) && settled(b), 'admission');
    expect(a.events).toContainEqual({ type: 'link.admitted', peer: b.identity.peerId, kind: 'node' });
    expect(b.events).toContainEqual({ type: 'link.admitted', peer: a.identity.peerId, kind: 'node' });
    expect(a.kernel.isAdmitted(b.identity.peerId)).toBe(true);

    const got: unknown[] = [];
    b.kernel.register('echo', (env) => got.push({ from: env.from, body: env.body }));
    expect(a.kernel.send({ peer: a.identity.peerId, port: 'me' }, { peer: b.identity.peerId, port: 'echo' }, { hi: 1 })).toBe(true);
    await until(() => got.length === 1, 'the message');
    // The sender peer is the link's admitted peer, set by the receiving kernel.
    expect(got[0]).toEqual({ from: { peer: a.identity.peerId, port: 'me' }, body: { hi: 1 } });
  });

  test('different token: refused on both sides', async () => {
    const [a, b] = await Promise.all([side(), side({ token: 'another-cluster-token-xyz' })]);
    connect(a, b);
    await until(() => settled(a) && settled(b), 'refusal');
    expect(reasons(a, 'link.refused')).toEqual(['wrong cluster token or tampered DTLS fingerprints']);
    expect(reasons(b, 'link.refused')).toEqual(['wrong cluster token or tampered DTLS fingerprints']);
    expect(has(a, 'link.admitted') || has(b, 'link.admitted')).toBe(false);
    expect(a.nic.closed).toHaveLength(1); // the transport is closed, not just the link forgotten
  });

  test('fingerprints seen differ (a man in the middle re-terminated DTLS): refused', async () => {
    const [a, b] = await Promise.all([side(), side()]);
    // Each side talks DTLS with the attacker and sees the attacker's certificate.
    connect(a, b, { aSees: { remoteFingerprint: 'sha-256 EE:EE:01' }, bSees: { remoteFingerprint: 'sha-256 EE:EE:02' } });
    await until(() => settled(a) && settled(b), 'refusal');
    expect(reasons(a, 'link.refused')).toEqual(['wrong cluster token or tampered DTLS fingerprints']);
    expect(reasons(b, 'link.refused')).toEqual(['wrong cluster token or tampered DTLS fingerprints']);
  });

  test('a fingerprint wrong on one side only: both sides refuse', async () => {
    const [a, b] = await Promise.all([side(), side()]);
    connect(a, b, { aSees: { remoteFingerprint: 'sha-256 EE:EE:01' } });
    await until(() => settled(a) && settled(b), 'refusal');
    expect(reasons(a, 'link.refused')).toEqual(['wrong cluster token or tampered DTLS fingerprints']);
    expect(reasons(b, 'link.refused')).toEqual(['wrong cluster token or tampered DTLS fingerprints']);
  });

  test('fingerprints compare case-insensitively (SDPs differ in hex case)', async () => {
    const [a, b] = await Promise.all([side(), side()]);
    connect(a, b, { aSees: { remoteFingerprint: 'sha-256 bb:bb:bb' } });
    await until(() => settled(a) && settled(b), 'admission');
    expect(has(a, 'link.admitted') && has(b, 'link.admitted')).toBe(true);
  });

  test('forged peer id: the hello key does not hash to the id signaling claimed', async () => {
    const [a, b, c] = await Promise.all([side(), side(), side()]);
    // B tells A (through signaling) that it is C.
    connect(a, b, { aSees: { peer: c.identity.peerId } });
    await until(() => settled(a), 'refusal');
    expect(reasons(a, 'link.refused')).toEqual([`forged peer id: claimed ${c.identity.peerId}, key hashes to ${b.identity.peerId}`]);
    expect(a.kernel.isAdmitted(c.identity.peerId)).toBe(false);
  });

  test("a member who replays someone else's public key cannot sign for it", async () => {
    const [a, victim, thief] = await Promise.all([side(), side(), side()]);
    const secrets = await deriveClusterSecrets(thief.crypto, TOKEN); // the thief knows the token
    const nonce = globalThis.crypto.getRandomValues(new Uint8Array(32));
    const fpA = 'sha-256 AA:AA:AA';
    const fpThief = 'sha-256 77:77:77';
    a.nic.remoteName = victim.identity.peerId;
    a.nic.peerEnd = (bytes) => {
      const d = decodeFrame(bytes);
      if (!d.ok || d.frame.k !== 'hello') return;
      const them = { pub: d.frame.pub, nonce: d.frame.nonce, fingerprint: fpA };
      const me = { pub: victim.identity.publicKey, nonce, fingerprint: fpThief };
      void makeAuth(thief.crypto, secrets.admissionKey, thief.identity.privateKey, me, them).then((auth) => a.nic.inject({ k: 'auth', ...auth }));
    };
    a.nic.events!.linkUp({ peer: victim.identity.peerId, localFingerprint: fpA, remoteFingerprint: fpThief });
    a.nic.inject({ k: 'hello', v: PROTOCOL_VERSION, pub: victim.identity.publicKey, nonce, kind: 'node' });
    await until(() => settled(a), 'refusal');
    expect(reasons(a, 'link.refused')).toEqual(['bad signature: peer does not own its key']);
  });

  test('a msg frame before admission is refused and never delivered', async () => {
    const a = await side();
    const delivered: unknown[] = [];
    a.kernel.register('target', (env) => delivered.push(env));
    a.nic.remoteName = 'f'.repeat(32);
    a.nic.peerEnd = () => {};
    a.nic.events!.linkUp({ peer: a.nic.remoteName, localFingerprint: 'x', remoteFingerprint: 'y' });
    a.nic.inject({ k: 'msg', from: 'evil', to: 'target', body: 'early' });
    await until(() => settled(a), 'refusal');
    expect(reasons(a, 'link.refused')).toEqual(['msg frame before admission']);
    await new Promise((r) => setTimeout(r, 5));
    expect(delivered).toEqual([]);
  });

  test('a handshake that never finishes times out', async () => {
    const a = await side();
    a.nic.remoteName = 'e'.repeat(32);
    a.nic.peerEnd = () => {}; // the other side says nothing
    a.nic.events!.linkUp({ peer: a.nic.remoteName, localFingerprint: 'x', remoteFingerprint: 'y' });
    sched.runSync(sched.now + ADMISSION_TIMEOUT_MS - 1000);
    expect(has(a, 'link.refused')).toBe(false);
    sched.runSync(sched.now + 2000);
    expect(reasons(a, 'link.refused')).toEqual(['admission timed out']);
    expect(reasons(a, 'link.down')).toEqual(['admission timed out']);
    expect(a.nic.closed).toEqual(['admission timed out']);
  });
});

describe('admission across crypto drivers', () => {
  test('a WebCrypto peer and a pure-JavaScript (noble) peer admit each other', async () => {
    const [a, b] = await Promise.all([side(), side({ crypto: nobleCryptoDriver() })]);
    connect(a, b);
    await until(() => settled(a) && settled(b), 'admission');
    expect(has(a, 'link.admitted') && has(b, 'link.admitted')).toBe(true);
  });
});
