// Link frames: every kind round-trips, big messages chunk and reassemble, and untrusted bytes
// are refused with a reason — never a throw.
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, test } from 'vitest';
import { Link, type LinkEnv } from './link.ts';
import type { Identity } from './identity.ts';
import {
  CHUNK_BYTES,
  MAX_FRAME_BYTES,
  MAX_MESSAGE_BYTES,
  MAX_PARTIAL_MESSAGES,
  PROTOCOL_VERSION,
  Reassembler,
  decodeFrame,
  encodeFrame,
  ownFrame,
  splitFrame,
  type Frame,
} from './wire.ts';

/** Plain MessagePack, to build frames the kernel's encoder would never produce. */
const raw = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

const bytesOf = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** Buffers decode as Node Buffers: compare plain byte arrays. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

function decodeOk(bytes: Uint8Array): Frame {
  const d = decodeFrame(bytes);
  if (!d.ok) throw new Error(`expected a valid frame: ${d.reason}`);
  return d.frame;
}

function refused(bytes: Uint8Array): string {
  const d = decodeFrame(bytes);
  if (d.ok) throw new Error(`expected a refusal, got ${JSON.stringify(plain(d.frame))}`);
  return d.reason;
}

const SAMPLES: Frame[] = [
  { k: 'hello', v: PROTOCOL_VERSION, pub: bytesOf(65), nonce: bytesOf(32, 7), kind: 'browser' },
  { k: 'hello', v: PROTOCOL_VERSION, pub: bytesOf(32), nonce: bytesOf(32), kind: 'sim' },
  { k: 'auth', mac: bytesOf(32), sig: bytesOf(64) },
  { k: 'ack', bytes: 3 << 20 },
  { k: 'msg', from: 'synchronizer', to: 'ui', body: { kind: 'gossip', m: [['a', 1, 2.5, null, true]], bin: bytesOf(100) } },
  { k: 'msg', from: 'p', to: 'q', body: null },
  { k: 'msg', from: 'p', to: 'q', body: 'just a string' },
  { k: 'chunk', id: 0, i: 1, n: 2, data: bytesOf(CHUNK_BYTES) },
  { k: 'ping', t: 1234.5678 },
  { k: 'pong', t: 0 },
  { k: 'bye', reason: 'tab closed' },
];

describe('encode/decode', () => {
  test.each(SAMPLES.map((f) => [f.k, f] as const))('%s round-trips', (_k, frame) => {
    expect(plain(decodeOk(encodeFrame(frame)))).toEqual(plain(frame));
  });

  test('every frame kind is covered', () => {
    expect(new Set(SAMPLES.map((f) => f.k))).toEqual(new Set(['hello', 'auth', 'ack', 'msg', 'chunk', 'ping', 'pong', 'bye']));
  });

  test('the encoding is plain MessagePack any decoder reads', () => {
    expect(plain(raw.unpack(encodeFrame({ k: 'bye', reason: 'x' })))).toEqual({ k: 'bye', reason: 'x' });
  });

  test('ownFrame: the frame alone, out of the encode buffer it shares with every frame after a big one', () => {
    encodeFrame({ k: 'msg', from: 'p', to: 'q', body: { bin: new Uint8Array(1 << 20) } });
    const frame = encodeFrame({ k: 'msg', from: 'p', to: 'q', body: { bin: bytesOf(8) } });
    expect(frame.buffer.byteLength).toBeGreaterThan(4 << 20);
    const own = ownFrame(frame);
    const copy = Uint8Array.from(frame);
    frame.fill(0);
    expect(own.byteOffset).toBe(0);
    expect(own.buffer.byteLength).toBe(copy.length);
    expect([...own]).toEqual([...copy]);
    // what a receiver decodes from it holds no more than the frame either
    const msg = decodeOk(own) as Extract<Frame, { k: 'msg' }>;
    expect((msg.body as { bin: Uint8Array }).bin.buffer.byteLength).toBe(copy.length);
  });
});

describe('refusals', () => {
  const valid = encodeFrame({ k: 'msg', from: 'a', to: 'b', body: { x: [1, 2, 3] } });

  test('empty', () => {
    expect(refused(new Uint8Array())).toBe('empty frame');
  });

  test('truncated', () => {
    for (let cut = 1; cut < valid.length; cut++) expect(decodeFrame(valid.subarray(0, cut)).ok).toBe(false);
    expect(refused(valid.subarray(0, valid.length - 1))).toMatch(/undecodable|invalid/);
  });

  test('garbage bytes', () => {
    expect(refused(Uint8Array.of(0xdb, 0xff))).toMatch(/undecodable/); // a str32 header cut short
    expect(refused(Uint8Array.of(0xd4, 0x01, 0x02))).toMatch(/undecodable/); // unknown extension
    expect(refused(Uint8Array.of(0x2a))).toMatch(/invalid frame/); // a bare number
    expect(refused(Uint8Array.of(0xc1))).toMatch(/invalid frame/); // a byte MessagePack never uses
    expect(refused(new TextEncoder().encode('{"k":"ping","t":1}'))).toBeTruthy(); // JSON is not MessagePack
  });

  test('unknown kind', () => {
    expect(refused(raw.pack({ k: 'launch', missiles: true }))).toMatch(/invalid frame \(kind launch\)/);
    expect(refused(raw.pack({ nokind: 1 }))).toMatch(/invalid frame \(kind \?\)/);
  });

  test('wrong field types', () => {
    const bad: unknown[] = [
      { k: 'ping', t: 'now' },
      { k: 'ack', bytes: -1 },
      { k: 'ack', bytes: 1.5 },
      { k: 'ack' },
      { k: 'pong' },
      { k: 'bye', reason: 'x'.repeat(257) },
      { k: 'msg', from: '', to: 'b', body: 1 },
      { k: 'msg', from: 'a', to: 'b'.repeat(129), body: 1 },
      { k: 'msg', from: 7, to: 'b', body: 1 },
      { k: 'hello', v: PROTOCOL_VERSION - 1, pub: bytesOf(65), nonce: bytesOf(32), kind: 'sim' },
      { k: 'hello', v: PROTOCOL_VERSION, pub: bytesOf(65), nonce: bytesOf(31), kind: 'sim' },
      { k: 'hello', v: PROTOCOL_VERSION, pub: bytesOf(16), nonce: bytesOf(32), kind: 'sim' },
      { k: 'hello', v: PROTOCOL_VERSION, pub: bytesOf(65), nonce: bytesOf(32), kind: 'toaster' },
      { k: 'hello', v: PROTOCOL_VERSION, pub: 'not bytes', nonce: bytesOf(32), kind: 'sim' },
      { k: 'auth', mac: bytesOf(31), sig: bytesOf(64) },
      { k: 'auth', mac: bytesOf(32), sig: new Uint8Array() },
      { k: 'chunk', id: -1, i: 0, n: 2, data: bytesOf(10) },
      { k: 'chunk', id: 1.5, i: 0, n: 2, data: bytesOf(10) },
      { k: 'chunk', id: 0, i: 2, n: 2, data: bytesOf(10) }, // index out of range
      { k: 'chunk', id: 0, i: 0, n: 1, data: bytesOf(10) }, // a one-chunk message is not chunked
      { k: 'chunk', id: 0, i: 0, n: 2, data: new Uint8Array() },
      { k: 'chunk', id: 0, i: 0, n: 2, data: bytesOf(CHUNK_BYTES + 1) },
    ];
    for (const v of bad) expect(decodeFrame(raw.pack(v)).ok, JSON.stringify(plain(v)).slice(0, 120)).toBe(false);
  });

  test('oversized chunk count', () => {
    const max = Math.ceil(MAX_MESSAGE_BYTES / CHUNK_BYTES);
    expect(decodeFrame(raw.pack({ k: 'chunk', id: 0, i: 0, n: max, data: bytesOf(10) })).ok).toBe(true);
    expect(refused(raw.pack({ k: 'chunk', id: 0, i: 0, n: max + 1, data: bytesOf(10) }))).toMatch(/invalid frame \(kind chunk\)/);
  });

  test('a message larger than MAX_MESSAGE_BYTES is not split', () => {
    expect(() => splitFrame(new Uint8Array(MAX_MESSAGE_BYTES + 1), 0)).toThrow(RangeError);
  });
});

describe('chunking', () => {
  function reassemble(parts: Uint8Array[], r = new Reassembler()): Uint8Array {
    let out: Uint8Array | null = null;
    parts.forEach((p, i) => {
      const f = decodeOk(p);
      if (f.k !== 'chunk') throw new Error('expected a chunk');
      const res = r.add(f);
      if (res && 'error' in res) throw new Error(res.error);
      if (i < parts.length - 1) expect(res).toBeNull();
      else out = res;
    });
    if (!out) throw new Error('not reassembled');
    return out;
  }

  const sizes = [
    MAX_FRAME_BYTES - 1,
    MAX_FRAME_BYTES,
    MAX_FRAME_BYTES + 1,
    2 * CHUNK_BYTES - 1,
    2 * CHUNK_BYTES,
    2 * CHUNK_BYTES + 1,
    3 * CHUNK_BYTES,
    5 * 1024 * 1024 + 17,
  ];

  test.each(sizes)('%i bytes', (size) => {
    const data = bytesOf(size, size);
    const parts = splitFrame(data, 9);
    if (size <= MAX_FRAME_BYTES) {
      expect(parts).toEqual([data]);
      return;
    }
    expect(parts).toHaveLength(Math.ceil(size / CHUNK_BYTES));
    for (const p of parts) expect(p.length).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    expect(Buffer.from(reassemble(parts)).equals(Buffer.from(data))).toBe(true);
  });

  test('a chunked msg frame decodes to the original message', () => {
    const body = bytesOf(1 << 20);
    const encoded = encodeFrame({ k: 'msg', from: 'a', to: 'b', body });
    const whole = decodeOk(reassemble(splitFrame(encoded, 1)));
    expect(whole.k === 'msg' && Buffer.from(whole.body as Uint8Array).equals(Buffer.from(body))).toBe(true);
  });

  test('chunks may arrive in any order, and messages interleave', () => {
    const a = bytesOf(3 * CHUNK_BYTES + 5, 1);
    const b = bytesOf(2 * CHUNK_BYTES + 9, 2);
    const pa = splitFrame(a, 1).reverse();
    const pb = splitFrame(b, 2);
    const r = new Reassembler();
    const got: Uint8Array[] = [];
    for (const p of [pa[0]!, pb[0]!, pa[1]!, pb[1]!, pa[2]!, pb[2]!, pa[3]!]) {
      const f = decodeOk(p);
      const res = f.k === 'chunk' ? r.add(f) : { error: 'not a chunk' };
      if (res && 'error' in res) throw new Error(res.error);
      if (res) got.push(res);
    }
    expect(got.map((x) => x.length)).toEqual([b.length, a.length]);
    expect(Buffer.from(got[1]!).equals(Buffer.from(a))).toBe(true);
    expect(r.inFlight).toBe(0);
  });

  const chunk = (id: number, i: number, n: number, len = CHUNK_BYTES) => ({ k: 'chunk' as const, id, i, n, data: bytesOf(len) });

  test('duplicate chunk', () => {
    const r = new Reassembler();
    expect(r.add(chunk(1, 0, 3))).toBeNull();
    expect(r.add(chunk(1, 0, 3))).toEqual({ error: 'duplicate chunk 0 of message 1' });
    expect(r.inFlight).toBe(0); // the message is dropped, not kept half-built
  });

  test('short chunk that is not the last', () => {
    const r = new Reassembler();
    expect(r.add(chunk(1, 0, 3, CHUNK_BYTES - 1))).toEqual({ error: 'short chunk 0 of message 1' });
    expect(r.add(chunk(2, 2, 3, 1))).toBeNull(); // the last one may be short
  });

  test('chunk count changed mid-message', () => {
    const r = new Reassembler();
    expect(r.add(chunk(1, 0, 3))).toBeNull();
    expect(r.add(chunk(1, 1, 4))).toEqual({ error: 'chunk count changed mid-message (3 → 4)' });
  });

  test('too many partial messages', () => {
    const r = new Reassembler();
    for (let id = 0; id < MAX_PARTIAL_MESSAGES; id++) expect(r.add(chunk(id, 0, 2))).toBeNull();
    expect(r.add(chunk(99, 0, 2))).toEqual({ error: `more than ${MAX_PARTIAL_MESSAGES} chunked messages in flight` });
    // Finishing one makes room again.
    expect(r.add(chunk(0, 1, 2, 3))).toBeInstanceOf(Uint8Array);
    expect(r.add(chunk(99, 0, 2))).toBeNull();
  });

  test('chunk inside a chunked message is refused by the link', () => {
    const bad: string[] = [];
    const env: LinkEnv = {
      crypto: {} as LinkEnv['crypto'],
      identity: { peerId: 'x', publicKey: bytesOf(65), privateKey: null } as Identity,
      admissionKey: bytesOf(32),
      kind: 'sim',
      now: () => 0,
      nonce: () => bytesOf(32),
      transmit: () => {},
      backlog: () => 0,
      deliver: () => {},
      admitted: () => {},
      bad: (reason) => bad.push(reason),
      close: () => {},
    };
    const link = new Link({ peer: 'y', localFingerprint: 'a', remoteFingerprint: 'b' }, env);
    // A whole chunk frame (just under one frame long) carried as the payload of two chunks:
    // no honest encoder does this, so it is split by hand.
    const inner = encodeFrame({ k: 'chunk', id: 5, i: 0, n: 2, data: bytesOf(CHUNK_BYTES) });
    expect(inner.length).toBeGreaterThan(CHUNK_BYTES);
    link.receive(encodeFrame({ k: 'chunk', id: 1, i: 0, n: 2, data: inner.subarray(0, CHUNK_BYTES) }));
    link.receive(encodeFrame({ k: 'chunk', id: 1, i: 1, n: 2, data: inner.subarray(CHUNK_BYTES) }));
    expect(bad).toEqual(['chunk inside a chunked message']);
  });
});

describe('fuzz: decodeFrame never throws', () => {
  const check = (bytes: Uint8Array) => {
    const d = decodeFrame(bytes);
    expect(typeof d.ok).toBe('boolean');
    if (!d.ok) expect(d.reason.length).toBeGreaterThan(0);
  };

  test('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (b) => check(b)), { numRuns: 3000 });
  });

  test('random MessagePack values', () => {
    fc.assert(
      fc.property(fc.anything({ withTypedArray: true, withBigInt: true, withDate: true, withMap: true, withSet: true }), (v) => {
        let bytes: Uint8Array;
        try {
          bytes = new Packr({ useRecords: false, moreTypes: true }).pack(v);
        } catch {
          return; // not encodable: nothing to decode
        }
        check(bytes);
      }),
      { numRuns: 1000 },
    );
  });

  test('mutations of valid frames', () => {
    const frames = SAMPLES.filter((f) => f.k !== 'chunk').map((f) => encodeFrame(f));
    const mutation = fc.record({
      frame: fc.integer({ min: 0, max: frames.length - 1 }),
      edits: fc.array(
        fc.oneof(
          fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
          fc.record({ op: fc.constant('cut' as const), at: fc.nat() }),
          fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
        ),
        { minLength: 1, maxLength: 6 },
      ),
    });
    fc.assert(
      fc.property(mutation, ({ frame, edits }) => {
        let b = Uint8Array.from(frames[frame]!);
        for (const e of edits) {
          const at = b.length === 0 ? 0 : e.at % b.length;
          if (e.op === 'set' && b.length > 0) b[at] = e.byte;
          else if (e.op === 'cut') b = b.subarray(0, at);
          else if (e.op === 'insert') b = Uint8Array.from([...b.subarray(0, at), ...e.bytes, ...b.subarray(at)]);
        }
        check(b);
      }),
      { numRuns: 3000 },
    );
  });

  test('random chunk sequences never throw in the reassembler', () => {
    const chunkArb = fc.record({
      id: fc.integer({ min: 0, max: 20 }),
      n: fc.integer({ min: 2, max: 4 }),
      i: fc.integer({ min: 0, max: 3 }),
      len: fc.constantFrom(1, 10, CHUNK_BYTES),
    });
    fc.assert(
      fc.property(fc.array(chunkArb, { maxLength: 60 }), (chunks) => {
        const r = new Reassembler();
        for (const c of chunks) {
          if (c.i >= c.n) continue; // the schema refuses these before the reassembler
          const res = r.add({ k: 'chunk', id: c.id, i: c.i, n: c.n, data: new Uint8Array(c.len) });
          expect(res === null || res instanceof Uint8Array || typeof res.error === 'string').toBe(true);
          expect(r.inFlight).toBeLessThanOrEqual(MAX_PARTIAL_MESSAGES);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('message bodies are plain data', () => {
  test('extension types decoded by msgpackr are refused, plain data passes', async () => {
    const { Packr } = await import('msgpackr');
    const rich = new Packr({ useRecords: false, moreTypes: true });
    // (a Map is a plain MessagePack map: it decodes to a plain object, which is fine)
    for (const body of [new Set([1]), /re/, new Error('x'), new Date(0)]) {
      const d = decodeFrame(rich.pack({ k: 'msg', from: 'a', to: 'b', body: { nested: [body] } }));
      expect(d.ok, String(body)).toBe(false);
      if (!d.ok) expect(d.reason).toContain('body must be plain data');
    }
    const ok = decodeFrame(encodeFrame({ k: 'msg', from: 'a', to: 'b', body: { a: [1, 'x', null, true, new Uint8Array(3), { b: 2n }] } }));
    expect(ok.ok).toBe(true);
  });

  test('bodies nested deeper than the limit are refused', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    expect(decodeFrame(encodeFrame({ k: 'msg', from: 'a', to: 'b', body: deep })).ok).toBe(false);
  });
});
