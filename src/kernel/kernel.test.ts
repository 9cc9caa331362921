// Kernel routing and links on the simulator's clock and network (bare kernels, no servers).
import { describe, expect, test } from 'vitest';
import { Scheduler, TimerOwner, settle } from '../host/sim/clock.ts';
import { simCryptoDriver, simKeyPair } from '../host/sim/crypto.ts';
import { SimNetwork, type NetworkOptions, type SimNic } from '../host/sim/network.ts';
import { SimRandom } from '../host/sim/random.ts';
import { identityFrom } from './identity.ts';
import { LINK_SILENCE_MS, PING_INTERVAL_MS, Kernel } from './kernel.ts';
import { HIGH_WATER_BYTES, MAX_BAD_FRAMES, WINDOW_BYTES } from './link.ts';
import type { Envelope, KernelEvent, NetworkInterface, NicEvents, PeerId } from './types.ts';
import { CHUNK_BYTES, MAX_FRAME_BYTES, PROTOCOL_VERSION, decodeFrame, encodeFrame } from './wire.ts';

interface Node {
  id: PeerId;
  kernel: Kernel;
  nic: SimNic;
  events: KernelEvent[];
}

/** A NIC whose backlog a test can pin high, to watch the kernel hold frames back. */
class ThrottledNic implements NetworkInterface {
  events: NicEvents | undefined;
  congested = false;
  sends = 0;
  constructor(readonly inner: SimNic) {}
  attach(events: NicEvents): void {
    this.events = events;
    this.inner.attach(events);
  }
  send(peer: PeerId, frame: Uint8Array): void {
    this.sends++;
    this.inner.send(peer, frame);
  }
  bufferedAmount(peer: PeerId): number {
    return this.congested ? HIGH_WATER_BYTES : this.inner.bufferedAmount(peer);
  }
  close(peer: PeerId, reason: string): void {
    this.inner.close(peer, reason);
  }
}

/** A NIC that can sit on the acknowledgements its kernel sends (a slow receiver), then let them go. */
class AckHoldingNic implements NetworkInterface {
  holding = false;
  readonly held: [PeerId, Uint8Array][] = [];
  constructor(readonly inner: SimNic) {}
  attach(events: NicEvents): void {
    this.inner.attach(events);
  }
  send(peer: PeerId, frame: Uint8Array): void {
    const d = decodeFrame(frame);
    if (this.holding && d.ok && d.frame.k === 'ack') this.held.push([peer, frame]);
    else this.inner.send(peer, frame);
  }
  release(): void {
    this.holding = false;
    for (const [peer, frame] of this.held.splice(0)) this.inner.send(peer, frame);
  }
  bufferedAmount(peer: PeerId): number {
    return this.inner.bufferedAmount(peer);
  }
  close(peer: PeerId, reason: string): void {
    this.inner.close(peer, reason);
  }
}

async function world(n: number, net: Partial<NetworkOptions> = {}, wrap?: (nic: SimNic, i: number) => NetworkInterface) {
  const sched = new Scheduler();
  const random = new SimRandom(`kernel-test-${n}`);
  const network = new SimNetwork(sched, random.fork(), { latencyMs: 10, jitterMs: 0, ...net });
  const nodes: Node[] = [];
  for (let i = 0; i < n; i++) {
    const r = random.fork();
    const crypto = simCryptoDriver(r);
    const identity = await identityFrom(crypto, simKeyPair(r.bytes(32)));
    const owner = new TimerOwner(identity.peerId);
    const nic = network.addNic(identity.peerId, owner);
    const kernel = await Kernel.create({
      identity,
      token: 'kernel-test-token-0001',
      drivers: {
        nic: wrap ? wrap(nic, i) : nic,
        clock: sched.clockFor(owner),
        random: r,
        crypto,
        console: { write: () => {} },
        info: { kind: 'sim', capacity: 1, version: 'test', load: () => 0 },
      },
    });
    const events: KernelEvent[] = [];
    kernel.on((e) => events.push(e));
    kernel.start();
    nodes.push({ id: identity.peerId, kernel, nic, events });
  }
  const run = (ms: number) => sched.run(sched.now + ms);
  /** Connects two nodes and runs until both admitted. */
  const link = async (a: Node, b: Node) => {
    network.connect(a.id, b.id);
    await run(500);
    expect(a.kernel.isAdmitted(b.id) && b.kernel.isAdmitted(a.id)).toBe(true);
  };
  return { sched, network, nodes, run, link };
}

const of = <T extends KernelEvent['type']>(n: Node, type: T) => n.events.filter((e): e is Extract<KernelEvent, { type: T }> => e.type === type);

describe('routing', () => {
  test('local delivery is asynchronous, like remote delivery', async () => {
    const { nodes } = await world(1);
    const a = nodes[0]!;
    const got: Envelope[] = [];
    a.kernel.register('p', (env) => got.push(env));
    expect(a.kernel.send({ peer: a.id, port: 'q' }, { peer: a.id, port: 'p' }, 42)).toBe(true);
    expect(got).toEqual([]); // not inside send()
    await settle();
    expect(got).toEqual([{ from: { peer: a.id, port: 'q' }, to: { peer: a.id, port: 'p' }, body: 42 }]);
  });

  test('remote delivery to a port over an admitted link; the sender peer is set by the receiver', async () => {
    const { nodes, run, link } = await world(2);
    const [a, b] = nodes as [Node, Node];
    await link(a, b);
    const got: Envelope[] = [];
    b.kernel.register('inbox', (env) => got.push(env));
    expect(a.kernel.send({ peer: a.id, port: 'out' }, { peer: b.id, port: 'inbox' }, { n: 1, bin: Uint8Array.of(1, 2) })).toBe(true);
    // A lying `from.peer` is ignored: the link knows who sent it.
    a.kernel.send({ peer: 'f'.repeat(32), port: 'out' }, { peer: b.id, port: 'inbox' }, 'second');
    expect(got).toEqual([]);
    await run(100);
    expect(got.map((e) => e.from)).toEqual([
      { peer: a.id, port: 'out' },
      { peer: a.id, port: 'out' },
    ]);
    expect([...(got[0]!.body as { bin: Uint8Array }).bin]).toEqual([1, 2]);
    expect(got[1]!.body).toBe('second');
  });

  test('an unknown port is reported as message.undeliverable (locally, and on the receiving peer)', async () => {
    const { nodes, run, link } = await world(2);
    const [a, b] = nodes as [Node, Node];
    a.kernel.send({ peer: a.id, port: 'x' }, { peer: a.id, port: 'nope' }, 1);
    await settle();
    expect(of(a, 'message.undeliverable')).toEqual([{ type: 'message.undeliverable', to: { peer: a.id, port: 'nope' }, reason: 'no port nope on this peer' }]);
    await link(a, b);
    expect(a.kernel.send({ peer: a.id, port: 'x' }, { peer: b.id, port: 'nope' }, 1)).toBe(true);
    await run(100);
    expect(of(b, 'message.undeliverable')).toEqual([{ type: 'message.undeliverable', to: { peer: b.id, port: 'nope' }, reason: 'no port nope on this peer' }]);
  });

  test('no link: send returns false at once; a link still handshaking also refuses', async () => {
    const { nodes, network, run } = await world(2);
    const [a, b] = nodes as [Node, Node];
    expect(a.kernel.send({ peer: a.id, port: 'x' }, { peer: b.id, port: 'y' }, 1)).toBe(false);
    expect(of(a, 'message.undeliverable').at(-1)!.reason).toBe('no link to that peer');
    network.connect(a.id, b.id);
    await run(network.opts.connectMs + 1); // link up, hello sent, nothing back yet
    expect(of(a, 'link.up')).toHaveLength(1);
    expect(a.kernel.send({ peer: a.id, port: 'x' }, { peer: b.id, port: 'y' }, 1)).toBe(false);
    expect(of(a, 'message.undeliverable').at(-1)!.reason).toBe('link not admitted yet');
  });

  test('a handler that throws does not break the kernel', async () => {
    const { nodes, run, link } = await world(2);
    const [a, b] = nodes as [Node, Node];
    await link(a, b);
    let calls = 0;
    b.kernel.register('fragile', (env) => {
      calls++;
      if (env.body === 'boom') throw new Error('kaboom');
    });
    a.kernel.send({ peer: a.id, port: 'x' }, { peer: b.id, port: 'fragile' }, 'boom');
    a.kernel.send({ peer: a.id, port: 'x' }, { peer: b.id, port: 'fragile' }, 'fine');
    b.kernel.send({ peer: b.id, port: 'x' }, { peer: b.id, port: 'fragile' }, 'boom');
    await run(100);
    expect(calls).toBe(3);
    const errors = of(b, 'log').filter((e) => e.level === 'error');
    expect(errors).toHaveLength(2);
    expect(errors[0]!.text).toMatch(/handler threw: Error: kaboom/);
    expect(b.kernel.isAdmitted(a.id)).toBe(true);
  });

  test('a 1 MiB body travels chunked and arrives intact', async () => {
    const { nodes, network, run, link } = await world(2);
    const [a, b] = nodes as [Node, Node];
    await link(a, b);
    const body = new Uint8Array(1 << 20);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 11)) & 0xff;
    const got: Uint8Array[] = [];
    b.kernel.register('big', (env) => got.push(env.body as Uint8Array));
    const before = network.stats.framesDelivered;
    a.kernel.send({ peer: a.id, port: 'x' }, { peer: b.id, port: 'big' }, body);
    await run(500);
    expect(got).toHaveLength(1);
    expect(Buffer.from(got[0]!).equals(Buffer.from(body))).toBe(true);
    expect(network.stats.framesDelivered - before).toBeGreaterThanOrEqual(Math.ceil((1 << 20) / CHUNK_BYTES)); // chunked
    expect(of(b, 'frame.bad')).toEqual([]);
  });
});

describe('flow control', () => {
  test('frames wait in the link while the transport is congested, and go on drain', async () => {
    let throttle!: ThrottledNic;
    const { nodes, run, link } = await world(2, {}, (nic, i) => (i === 0 ? (throttle = new ThrottledNic(nic)) : nic));
    const [a, b] = nodes as [Node, Node];
    await link(a, b);
    const got: unknown[] = [];
    b.kernel.register('in', (env) => got.push(env.body));
    throttle.congested = true;
    const sendsBefore = throttle.sends;
    for (let i = 0; i < 5; i++) a.kernel.send({ peer: a.id, port: 'x' }, { peer: b.id, port: 'in' }, i);
    await run(200);
    expect(throttle.sends).toBe(sendsBefore); // nothing handed to the transport
    expect(got).toEqual([]);
    expect(a.kernel.linkStats().find((l) => l.peer === b.id)!.queuedBytes).toBeGreaterThan(0);
    throttle.congested = false;
    throttle.events!.drain(b.id);
    await run(100);
    expect(got).toEqual([0, 1, 2, 3, 4]); // all of them, in order
    expect(a.kernel.linkStats().find((l) => l.peer === b.id)!.queuedBytes).toBe(0);
  });

  test('a big message from one port does not hold up another port’s messages; each port keeps its order', async () => {
    const { nodes, run, link } = await world(2, { bandwidth: 4 << 20 });
    const [a, b] = nodes as [Node, Node];
    await link(a, b);
    const got: string[] = [];
    b.kernel.register('in', (env) => got.push(env.body instanceof Uint8Array ? `big${env.body.length}` : String(env.body)));
    const big = new Uint8Array(8 << 20);
    a.kernel.send({ peer: a.id, port: 'bulk' }, { peer: b.id, port: 'in' }, big);
    a.kernel.send({ peer: a.id, port: 'bulk' }, { peer: b.id, port: 'in' }, 'after-big');
    for (let i = 0; i < 3; i++) a.kernel.send({ peer: a.id, port: 'chat' }, { peer: b.id, port: 'in' }, `chat${i}`);
    await run(10_000);
    // At 4 MiB/s the big one takes 2 s; the other port's small messages pass it at once.
    expect(got).toEqual(['chat0', 'chat1', 'chat2', `big${8 << 20}`, 'after-big']);
    expect(of(a, 'link.down')).toEqual([]);
  });

  test('a message over the largest size is refused and leaves the link working', async () => {
    const { nodes, run, link } = await world(2);
    const [a, b] = nodes as [Node, Node];
    await link(a, b);
    const got: unknown[] = [];
    b.kernel.register('in', (env) => got.push(env.body));
    expect(a.kernel.send({ peer: a.id, port: 'bulk' }, { peer: b.id, port: 'in' }, new Uint8Array(65 << 20))).toBe(false);
    expect(a.kernel.send({ peer: a.id, port: 'chat' }, { peer: b.id, port: 'in' }, 'still here')).toBe(true);
    await run(500);
    expect(got).toEqual(['still here']);
  });

  test('a big burst is paced by the window: the real (simulated) buffer never holds more than the window', async () => {
    let throttle!: ThrottledNic;
    const { nodes, run, link } = await world(2, { bandwidth: 1024 }, (nic, i) => (i === 0 ? (throttle = new ThrottledNic(nic)) : nic));
    const [a, b] = nodes as [Node, Node];
    await link(a, b);
    let maxBuffered = 0;
    const inner = throttle.inner;
    const send = inner.send.bind(inner);
    inner.send = (peer, frame) => {
      send(peer, frame);
      maxBuffered = Math.max(maxBuffered, inner.bufferedAmount(peer));
    };
    const got: number[] = [];
    b.kernel.register('in', (env) => got.push((env.body as Uint8Array).length));
    for (let i = 0; i < 4; i++) a.kernel.send({ peer: a.id, port: 'x' }, { peer: b.id, port: 'in' }, new Uint8Array(1 << 20));
    await run(10_000); // 4 MiB at 1 MiB/s
    expect(got).toEqual([1 << 20, 1 << 20, 1 << 20, 1 << 20]);
    // In flight: at most the window (plus a keepalive or two), and the window was used.
    expect(maxBuffered).toBeLessThanOrEqual(WINDOW_BYTES + 1024);
    expect(maxBuffered).toBeGreaterThan(WINDOW_BYTES / 2);
    expect(WINDOW_BYTES).toBeLessThan(HIGH_WATER_BYTES);
  });

  test('a receiver slow to acknowledge holds the sender to its window; keepalives still pass; its acks let the rest go', async () => {
    let slow!: AckHoldingNic;
    const { nodes, run, link } = await world(2, {}, (nic, i) => (i === 1 ? (slow = new AckHoldingNic(nic)) : nic));
    const [a, b] = nodes as [Node, Node];
    await link(a, b);
    const got: number[] = [];
    b.kernel.register('in', (env) => got.push((env.body as Uint8Array).length));
    slow.holding = true;
    for (let i = 0; i < 4; i++) a.kernel.send({ peer: a.id, port: 'x' }, { peer: b.id, port: 'in' }, new Uint8Array(1 << 20));
    await run(LINK_SILENCE_MS * 3);
    const stalled = a.kernel.linkStats().find((l) => l.peer === b.id)!;
    expect(stalled.unackedBytes).toBeLessThanOrEqual(WINDOW_BYTES + 4096); // + the keepalives it kept sending
    expect(stalled.unackedBytes).toBeGreaterThan(WINDOW_BYTES - MAX_FRAME_BYTES);
    expect(stalled.queuedBytes).toBeGreaterThan(3 << 20);
    expect(got).toEqual([]);
    expect(slow.held.length).toBeGreaterThan(0);
    // Pings and pongs bypass the window: nobody was declared silent.
    expect(a.kernel.isAdmitted(b.id) && b.kernel.isAdmitted(a.id)).toBe(true);
    slow.release();
    await run(2000);
    expect(got).toEqual([1 << 20, 1 << 20, 1 << 20, 1 << 20]);
    expect(a.kernel.linkStats().find((l) => l.peer === b.id)!.queuedBytes).toBe(0);
  });

  test('an acknowledgement of more bytes than were sent is a bad frame', async () => {
    const { nodes, run, link } = await world(2);
    const [a, b] = nodes as [Node, Node];
    await link(a, b);
    b.nic.send(a.id, encodeFrame({ k: 'ack', bytes: 1e12 }));
    await run(50);
    expect(of(a, 'frame.bad').at(-1)!.reason).toMatch(/^ack of 1000000000000 bytes, only \d+ sent$/);
    expect(a.kernel.isAdmitted(b.id)).toBe(true);
  });
});

describe('link hygiene', () => {
  test('bad frames are counted; the link is closed after MAX_BAD_FRAMES', async () => {
    const { nodes, run, link } = await world(2);
    const [a, b] = nodes as [Node, Node];
    await link(a, b);
    for (let i = 0; i < MAX_BAD_FRAMES - 1; i++) b.nic.send(a.id, Uint8Array.of(0xc1, i));
    await run(50);
    expect(of(a, 'frame.bad')).toHaveLength(MAX_BAD_FRAMES - 1);
    expect(a.kernel.isAdmitted(b.id)).toBe(true); // still tolerated
    b.nic.send(a.id, encodeFrame({ k: 'hello', v: PROTOCOL_VERSION, pub: new Uint8Array(65), nonce: new Uint8Array(32), kind: 'sim' }));
    await run(50);
    expect(of(a, 'frame.bad').at(-1)!.reason).toBe('hello after admission');
    expect(a.kernel.isAdmitted(b.id)).toBe(false);
    expect(of(a, 'link.down').at(-1)!.reason).toBe('too many bad frames (last: hello after admission)');
    // The other side hears the transport close.
    expect(of(b, 'link.down').at(-1)!.reason).toMatch(/^remote closed: too many bad frames/);
  });

  test('a frame larger than MAX_FRAME_BYTES is refused as oversized, before decoding', async () => {
    const { nodes, run, link } = await world(2);
    const [a, b] = nodes as [Node, Node];
    await link(a, b);
    b.nic.send(a.id, new Uint8Array(MAX_FRAME_BYTES + 1));
    await run(50);
    expect(of(a, 'frame.bad').map((e) => e.reason)).toEqual([`oversized frame: ${MAX_FRAME_BYTES + 1} bytes > ${MAX_FRAME_BYTES}`]);
    expect(a.kernel.isAdmitted(b.id)).toBe(true);
  });

  test('an idle link stays up on pings and measures its round trip', async () => {
    const { nodes, run, link } = await world(2, { latencyMs: 25 });
    const [a, b] = nodes as [Node, Node];
    await link(a, b);
    await run(10 * LINK_SILENCE_MS);
    expect(a.kernel.isAdmitted(b.id) && b.kernel.isAdmitted(a.id)).toBe(true);
    expect(a.kernel.linkStats()[0]!.rttMs).toBeCloseTo(50, 5);
  });

  test('keepalive closes a silent link (a cut cable gives no linkDown)', async () => {
    const { nodes, network, run, link, sched } = await world(2);
    const [a, b] = nodes as [Node, Node];
    await link(a, b);
    network.partition([a.id], [b.id]);
    const cutAt = sched.now;
    await run(LINK_SILENCE_MS - PING_INTERVAL_MS);
    expect(a.kernel.isAdmitted(b.id)).toBe(true);
    await run(2 * PING_INTERVAL_MS + 100);
    expect(a.kernel.isAdmitted(b.id)).toBe(false);
    expect(b.kernel.isAdmitted(a.id)).toBe(false);
    const down = of(a, 'link.down');
    expect(down.map((e) => e.reason)).toEqual([`silent for ${LINK_SILENCE_MS} ms`]);
    expect(sched.now - cutAt).toBeLessThanOrEqual(LINK_SILENCE_MS + 2 * PING_INTERVAL_MS + 100);
  });

  test('a graceful stop says bye: the other side drops the link at once', async () => {
    const { nodes, run, link } = await world(2);
    const [a, b] = nodes as [Node, Node];
    await link(a, b);
    a.kernel.stop('going home');
    await run(30);
    expect(of(b, 'link.down').map((e) => e.reason)).toEqual(['peer left: going home']);
  });

  test('a new connection to the same peer replaces the old link', async () => {
    const { nodes, network, run, link } = await world(2);
    const [a, b] = nodes as [Node, Node];
    await link(a, b);
    network.connect(a.id, b.id);
    await run(500);
    expect(of(a, 'link.down').map((e) => e.reason)).toEqual(['replaced by a new connection']);
    expect(of(a, 'link.admitted')).toHaveLength(2);
    expect(a.kernel.isAdmitted(b.id)).toBe(true);
    const got: unknown[] = [];
    b.kernel.register('in', (env) => got.push(env.body));
    a.kernel.send({ peer: a.id, port: 'x' }, { peer: b.id, port: 'in' }, 'over the new link');
    await run(50);
    expect(got).toEqual(['over the new link']);
  });

  test('a frame for a link the kernel does not know is reported, not acted on', async () => {
    const { nodes } = await world(1);
    const a = nodes[0]!;
    (a.nic.events as NicEvents).frame('0'.repeat(32), encodeFrame({ k: 'ping', t: 1 }));
    expect(of(a, 'frame.bad')).toEqual([{ type: 'frame.bad', peer: '0'.repeat(32), reason: 'frame on a link the kernel does not know' }]);
  });
});
