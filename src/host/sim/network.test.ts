// The simulator's own parts: event order, seeded randomness, and what the virtual network
// promises a kernel (FIFO links, silent partitions and crashes, close after the last frame).
import { describe, expect, test } from 'vitest';
import type { LinkInfo, NicEvents, PeerId } from '../../kernel/types.ts';
import { Scheduler, TimerOwner } from './clock.ts';
import { simCryptoDriver, simKeyPair } from './crypto.ts';
import { LOW_WATER_BYTES, SimNetwork, type NetworkOptions, type SimNic } from './network.ts';
import { SimRandom } from './random.ts';
import { decodeFrame, encodeFrame } from '../../kernel/wire.ts';

describe('scheduler', () => {
  test('events run in time order, ties in scheduling order; dead owners never fire', () => {
    const s = new Scheduler();
    const out: string[] = [];
    const dead = new TimerOwner('dead');
    s.after(10, () => out.push('b1'));
    s.after(5, () => out.push('a'));
    s.after(10, () => out.push('b2'));
    s.after(10, () => out.push('never'), dead);
    const cancel = s.after(7, () => out.push('cancelled'));
    cancel();
    s.after(0, () => s.after(0, () => out.push('nested')));
    dead.alive = false;
    s.after(1, () => out.push('also never'), dead);
    s.runSync(100);
    expect(out).toEqual(['nested', 'a', 'b1', 'b2']);
    expect(s.now).toBe(100);
    const clock = s.clockFor(new TimerOwner('x'));
    expect(clock.wallNow() - clock.now()).toBe(Date.UTC(2025, 0, 1));
  });

  test('the heap keeps order over many random events', () => {
    const s = new Scheduler();
    const r = new SimRandom(3);
    const got: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const at = r.int(0, 500);
      s.at(at, () => got.push(at));
    }
    s.runSync(1000);
    expect(got).toHaveLength(2000);
    expect(got).toEqual([...got].sort((a, b) => a - b));
  });
});

describe('random', () => {
  test('a seed gives one stream; forks are independent and reproducible', () => {
    const a = new SimRandom('seed');
    const b = new SimRandom('seed');
    expect([...a.bytes(16)]).toEqual([...b.bytes(16)]);
    expect([...a.fork().bytes(8)]).toEqual([...b.fork().bytes(8)]);
    expect([...new SimRandom(1).bytes(8)]).not.toEqual([...new SimRandom(2).bytes(8)]);
    const r = new SimRandom(9);
    const counts = new Array(8).fill(0);
    for (let i = 0; i < 8000; i++) counts[r.int(1, 8) - 1]++;
    for (const c of counts) expect(c).toBeGreaterThan(800); // roughly uniform, all of 1..8
  });
});

describe('simulator crypto (insecure on purpose, deterministic)', () => {
  test('keys come from the seed; signatures verify only for the matching public key', async () => {
    const c = simCryptoDriver(new SimRandom(1));
    const k1 = await c.generateKeyPair();
    const k2 = await simCryptoDriver(new SimRandom(1)).generateKeyPair();
    expect([...k1.publicKey]).toEqual([...k2.publicKey]);
    expect(k1.publicKey).toHaveLength(65);
    expect(k1.publicKey[0]).toBe(4);
    const data = new TextEncoder().encode('transcript');
    const sig = await c.sign(k1.privateKey, data);
    expect(await c.verify(k1.publicKey, data, sig)).toBe(true);
    const other = await c.generateKeyPair();
    expect(await c.verify(other.publicKey, data, sig)).toBe(false);
    expect(await c.verify(k1.publicKey, new TextEncoder().encode('other'), sig)).toBe(false);
    // SHA-256 is the real one: ids match what WebCrypto peers compute.
    expect(Buffer.from(await c.sha256(new Uint8Array())).toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  test('every promise is already settled: nothing waits for a macrotask', async () => {
    const c = simCryptoDriver(new SimRandom(1));
    const keys = simKeyPair(new Uint8Array(32));
    let done = 0;
    void c.sha256(new Uint8Array(1)).then(() => done++);
    void c.hmacSha256(new Uint8Array(1), new Uint8Array(1)).then(() => done++);
    void c.sign(keys.privateKey, new Uint8Array(1)).then(() => done++);
    for (let i = 0; i < 3; i++) await Promise.resolve();
    expect(done).toBe(3);
  });
});

/** A recording NIC user: what a kernel would see. */
function listen(nic: SimNic) {
  const log: string[] = [];
  const ups: LinkInfo[] = [];
  const events: NicEvents = {
    linkUp: (info) => {
      ups.push(info);
      log.push(`up ${info.peer}`);
    },
    frame: (peer, bytes) => log.push(`frame ${peer} ${bytes[0]}`),
    drain: (peer) => log.push(`drain ${peer}`),
    linkDown: (peer, reason) => log.push(`down ${peer} ${reason}`),
  };
  nic.attach(events);
  return { log, ups };
}

function net(opts: Partial<NetworkOptions> = {}) {
  const s = new Scheduler();
  const n = new SimNetwork(s, new SimRandom(1), { latencyMs: 10, jitterMs: 50, ...opts });
  const lost: string[] = [];
  n.onLinkLost = (a, b) => lost.push(`${a}-${b}`);
  const nic = (id: PeerId) => n.addNic(id, new TimerOwner(id));
  return { s, n, nic, lost };
}

describe('virtual network', () => {
  test('connect: both sides up with mirrored fingerprints', () => {
    const { s, n, nic } = net();
    const a = nic('a');
    const b = nic('b');
    const la = listen(a);
    const lb = listen(b);
    n.connect('a', 'b');
    s.runSync(1000);
    expect(la.ups).toEqual([{ peer: 'b', localFingerprint: a.fingerprint, remoteFingerprint: b.fingerprint }]);
    expect(lb.ups).toEqual([{ peer: 'a', localFingerprint: b.fingerprint, remoteFingerprint: a.fingerprint }]);
    expect(a.fingerprint).toMatch(/^sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(n.isLinked('a', 'b')).toBe(true);
  });

  test('frames keep their order despite jitter', () => {
    const { s, n, nic } = net({ jitterMs: 200 });
    const a = nic('a');
    const lb = listen(nic('b'));
    listen(a);
    n.connect('a', 'b');
    s.runSync(100);
    for (let i = 0; i < 100; i++) s.after(i, () => a.send('b', Uint8Array.of(i)));
    s.runSync(2000);
    expect(lb.log.filter((l) => l.startsWith('frame')).map((l) => Number(l.split(' ')[2]))).toEqual([...Array(100).keys()]);
  });

  test('a frame arrives as its own bytes, not as a view into the sender\'s encode buffer', () => {
    // encodeFrame gives a view into msgpackr's shared encode buffer, ~4× the largest message
    // packed so far; Buffer#slice is no copy. A receiver handed that view decoded every field
    // as a view into the whole buffer, and a worker executor's `deliver` cloned all of it.
    const { s, n, nic } = net({ jitterMs: 0 });
    const a = nic('a');
    const b = nic('b');
    listen(a);
    const got: Uint8Array[] = [];
    b.attach({ linkUp: () => {}, frame: (_peer, bytes) => got.push(bytes), drain: () => {}, linkDown: () => {} });
    n.connect('a', 'b');
    s.runSync(100);
    encodeFrame({ k: 'msg', from: 'stockholder', to: 'stockholder', body: { kind: 'block', bytes: new Uint8Array(1 << 20) } });
    const sent = encodeFrame({ k: 'msg', from: 'p', to: 'q', body: { data: Uint8Array.of(1, 2, 3) } });
    expect(sent.buffer.byteLength).toBeGreaterThan(4 << 20); // what the big message left behind
    const original = Uint8Array.from(sent);
    a.send('b', sent);
    sent.fill(0); // the encoder's buffer is the sender's business once sent
    s.runSync(1000);
    expect(got).toHaveLength(1);
    expect(got[0]!.buffer.byteLength).toBe(original.length);
    expect([...got[0]!]).toEqual([...original]);
    const decoded = decodeFrame(got[0]!);
    if (!decoded.ok || decoded.frame.k !== 'msg') throw new Error('not a msg frame');
    const data = (decoded.frame.body as { data: Uint8Array }).data;
    expect([...data]).toEqual([1, 2, 3]);
    expect(data.buffer.byteLength).toBe(original.length);
  });

  test('a partition is silent and holds frames; heal lets them through in order', () => {
    const { s, n, nic } = net();
    const a = nic('a');
    listen(a);
    const lb = listen(nic('b'));
    n.connect('a', 'b');
    s.runSync(100);
    n.partition(['a'], ['b']);
    a.send('b', Uint8Array.of(1));
    a.send('b', Uint8Array.of(2));
    s.runSync(5000);
    expect(lb.log).toEqual(['up a']); // nothing crossed, and nobody was told
    expect(a.bufferedAmount('b')).toBe(2);
    n.heal();
    s.runSync(6000);
    expect(lb.log).toEqual(['up a', 'frame a 1', 'frame a 2']);
    expect(a.bufferedAmount('b')).toBe(0);
  });

  test('a crashed peer hears nothing and its links stay up on the other side', () => {
    const { s, n, nic } = net();
    const a = nic('a');
    const b = nic('b');
    const la = listen(a);
    const lb = listen(b);
    n.connect('a', 'b');
    s.runSync(100);
    b.send('a', Uint8Array.of(7)); // in flight at the crash: still arrives
    n.crash('b');
    a.send('b', Uint8Array.of(1));
    b.send('a', Uint8Array.of(8)); // a dead NIC sends nothing
    s.runSync(5000);
    expect(lb.log).toEqual(['up a']);
    expect(la.log).toEqual(['up b', 'frame b 7']);
    a.close('b', 'silent');
    s.runSync(6000);
    expect(n.isLinked('a', 'b')).toBe(false);
  });

  test('close reaches the other side after the frames sent before it', () => {
    const { s, n, nic, lost } = net();
    const a = nic('a');
    listen(a);
    const lb = listen(nic('b'));
    n.connect('a', 'b');
    s.runSync(100);
    a.send('b', Uint8Array.of(1));
    a.close('b', 'bye now');
    a.send('b', Uint8Array.of(2)); // after close: goes nowhere
    s.runSync(1000);
    expect(lb.log).toEqual(['up a', 'frame a 1', 'down a remote closed: bye now']);
    expect(lost).toContain('a-b');
  });

  test('bufferedAmount counts bytes not yet delivered; drain fires under the low-water mark', () => {
    const { s, n, nic } = net({ bandwidth: 1024 });
    const a = nic('a');
    const la = listen(a);
    listen(nic('b'));
    n.connect('a', 'b');
    s.runSync(100);
    for (let i = 0; i < 8; i++) a.send('b', new Uint8Array(64 * 1024));
    expect(a.bufferedAmount('b')).toBe(8 * 64 * 1024);
    expect(la.log.filter((l) => l.startsWith('drain'))).toEqual([]);
    s.runSync(10_000);
    expect(a.bufferedAmount('b')).toBe(0);
    expect(la.log.filter((l) => l.startsWith('drain'))).toEqual(['drain b']);
    expect(8 * 64 * 1024).toBeGreaterThan(LOW_WATER_BYTES);
  });

  test('a new connection replaces the old one; frames of the old one are dropped', () => {
    const { s, n, nic } = net();
    const a = nic('a');
    listen(a);
    const lb = listen(nic('b'));
    n.connect('a', 'b');
    s.runSync(100);
    n.connect('a', 'b');
    s.runSync(s.now + n.opts.connectMs - 1);
    a.send('b', Uint8Array.of(1)); // on the old connection, still in flight when the new one opens
    s.runSync(1000);
    expect(lb.log.filter((l) => l.startsWith('frame'))).toEqual([]);
    expect(lb.ups).toHaveLength(2);
    a.send('b', Uint8Array.of(2));
    s.runSync(2000);
    expect(lb.log.at(-1)).toBe('frame a 2');
  });

  test('connecting across a partition fails and tells the host', () => {
    const { s, n, nic, lost } = net();
    listen(nic('a'));
    const lb = listen(nic('b'));
    n.partition(['a'], ['b']);
    n.connect('a', 'b');
    s.runSync(1000);
    expect(lb.ups).toEqual([]);
    expect(lost).toEqual(['a-b']);
  });
});
