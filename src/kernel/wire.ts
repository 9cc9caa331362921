// Link frames: the binary messages two kernels exchange over one data channel.
// MessagePack (msgpackr) on the wire; every decoded frame is checked against its schema
// before anything acts on it. Frames larger than MAX_FRAME_BYTES travel as `chunk` frames.
import { Packr } from 'msgpackr';
import { z } from 'zod';

/**
 * Largest data-channel message we send: 256 KiB, Chromium's (and libwebrtc's) maximum message
 * and its fastest size. DESIGN.md said 64 KiB; bulk transfer (replicating files) ran ~10 %
 * faster with 256 KiB frames (bench: 0.71× → 0.82–0.85× of a raw channel).
 */
export const MAX_FRAME_BYTES = 256 * 1024;
/** Payload bytes per chunk frame, leaving room for the chunk header. */
export const CHUNK_BYTES = MAX_FRAME_BYTES - 256;
/** Largest message reassembled from chunks; more is refused, not buffered. */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** Chunked messages one link may have half-received at once. */
export const MAX_PARTIAL_MESSAGES = 16;
/** 2: links acknowledge the bytes they received (`ack`), and senders keep a window in flight. */
export const PROTOCOL_VERSION = 2;

/** Binary fields; Node's Buffer is a Uint8Array too. */
export const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected bytes');
const portName = z.string().min(1).max(128);

export const Frame = z.discriminatedUnion('k', [
  // Admission (see admission.ts): public key, fresh nonce, and what kind of peer we are.
  z.object({
    k: z.literal('hello'),
    v: z.literal(PROTOCOL_VERSION),
    pub: bytes.refine((b) => b.length >= 32 && b.length <= 256, 'public key size'),
    nonce: bytes.refine((b) => b.length === 32, 'nonce must be 32 bytes'),
    kind: z.enum(['browser', 'node', 'sim']),
  }),
  z.object({
    k: z.literal('auth'),
    mac: bytes.refine((b) => b.length === 32, 'mac must be 32 bytes'),
    sig: bytes.refine((b) => b.length > 0 && b.length <= 256, 'signature size'),
  }),
  // A port-to-port message. The sender peer is the link's admitted peer: it cannot be forged.
  z.object({ k: z.literal('msg'), from: portName, to: portName, body: z.custom<unknown>((b) => isPlainData(b, 0), 'body must be plain data') }),
  z.object({
    k: z.literal('chunk'),
    id: z.number().int().nonnegative(),
    i: z.number().int().nonnegative(),
    n: z.number().int().min(2).max(Math.ceil(MAX_MESSAGE_BYTES / CHUNK_BYTES)),
    data: bytes.refine((b) => b.length > 0 && b.length <= CHUNK_BYTES, 'chunk size'),
  }).refine((c) => c.i < c.n, 'chunk index out of range'),
  // Flow control (link.ts): all the bytes this side has received on the link so far.
  z.object({ k: z.literal('ack'), bytes: z.number().int().nonnegative() }),
  z.object({ k: z.literal('ping'), t: z.number() }),
  z.object({ k: z.literal('pong'), t: z.number() }),
  z.object({ k: z.literal('bye'), reason: z.string().max(256) }),
]);
export type Frame = z.infer<typeof Frame>;
export type FrameKind = Frame['k'];

/** Deepest nesting a message body may have. */
export const MAX_BODY_DEPTH = 32;

/**
 * Message bodies are plain data: null, booleans, numbers, bigints, strings, bytes, arrays and
 * plain objects. msgpackr can also decode extension types (Date, Set, RegExp, Error…); a peer
 * must not be able to hand a server such objects.
 */
export function isPlainData(v: unknown, depth: number): boolean {
  if (v === null || v === undefined) return true;
  switch (typeof v) {
    case 'boolean':
    case 'number':
    case 'bigint':
    case 'string':
      return true;
    case 'object': {
      if (depth >= MAX_BODY_DEPTH) return false;
      if (v instanceof Uint8Array) return true;
      if (Array.isArray(v)) return v.every((x) => isPlainData(x, depth + 1));
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return false;
      for (const key in v) if (!isPlainData((v as Record<string, unknown>)[key], depth + 1)) return false;
      return true;
    }
    default:
      return false;
  }
}

// useRecords:false keeps the format plain MessagePack that any decoder reads;
// mapsAsObjects gives plain objects for the schema check.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/**
 * The encoded frame: a view into msgpackr's encode buffer, which every Packr in the process
 * shares and which grows to 4× the largest message packed (a 1 MiB file block: ~6 MiB) and
 * stays that size. Use it at once, or keep a copy (ownFrame).
 */
export function encodeFrame(frame: Frame): Uint8Array {
  return packr.pack(frame);
}

/**
 * A frame's bytes in a buffer of their own, as a real transport delivers them. An emulated
 * wire that hands on encodeFrame's view instead (Node's Buffer#slice is no copy) drags the
 * whole encode buffer along: every field decoded from the frame is a view into it, and each
 * `deliver` posted to a worker executor cloned all ~6 MiB of it (journal at 30 ms: 3.5× slower
 * once a cluster had replicated a large file).
 */
export function ownFrame(frame: Uint8Array): Uint8Array {
  return new Uint8Array(frame);
}

export type Decoded = { ok: true; frame: Frame } | { ok: false; reason: string };

/** Decode and validate untrusted bytes. Never throws. */
export function decodeFrame(data: Uint8Array): Decoded {
  if (data.length === 0) return { ok: false, reason: 'empty frame' };
  let value: unknown;
  try {
    value = packr.unpack(data);
  } catch (err) {
    return { ok: false, reason: `undecodable frame: ${(err as Error).message}` };
  }
  const parsed = Frame.safeParse(value);
  if (!parsed.success) {
    const kind = typeof value === 'object' && value !== null && 'k' in value ? String((value as { k: unknown }).k) : '?';
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `invalid frame (kind ${kind.slice(0, 32)}): ${issue?.path.join('.') || '-'} ${issue?.message ?? ''}`.trim() };
  }
  return { ok: true, frame: parsed.data };
}

/** Split an encoded frame into data-channel-sized frames (the frame itself when it fits). */
export function splitFrame(encoded: Uint8Array, id: number): Uint8Array[] {
  if (encoded.length <= MAX_FRAME_BYTES) return [encoded];
  if (encoded.length > MAX_MESSAGE_BYTES) throw new RangeError(`message of ${encoded.length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  const n = Math.ceil(encoded.length / CHUNK_BYTES);
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    out.push(encodeFrame({ k: 'chunk', id, i, n, data: encoded.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES) }));
  }
  return out;
}

type ChunkFrame = Extract<Frame, { k: 'chunk' }>;

/** Reassembles chunked messages of one link. Bounded in count and size. */
export class Reassembler {
  private partial = new Map<number, { n: number; got: number; parts: (Uint8Array | undefined)[]; bytes: number }>();

  /** Returns the whole message's bytes when the last chunk arrives, an error string, or null. */
  add(c: ChunkFrame): Uint8Array | { error: string } | null {
    let p = this.partial.get(c.id);
    if (!p) {
      if (this.partial.size >= MAX_PARTIAL_MESSAGES) return { error: `more than ${MAX_PARTIAL_MESSAGES} chunked messages in flight` };
      p = { n: c.n, got: 0, parts: new Array(c.n), bytes: 0 };
      this.partial.set(c.id, p);
    }
    if (p.n !== c.n) return this.fail(c.id, `chunk count changed mid-message (${p.n} → ${c.n})`);
    if (p.parts[c.i]) return this.fail(c.id, `duplicate chunk ${c.i} of message ${c.id}`);
    // Only the last chunk may be short: anything else is a malformed split.
    if (c.i < c.n - 1 && c.data.length !== CHUNK_BYTES) return this.fail(c.id, `short chunk ${c.i} of message ${c.id}`);
    p.parts[c.i] = c.data;
    p.got++;
    p.bytes += c.data.length;
    if (p.got < p.n) return null;
    this.partial.delete(c.id);
    const out = new Uint8Array(p.bytes);
    let off = 0;
    for (const part of p.parts) {
      out.set(part!, off);
      off += part!.length;
    }
    return out;
  }

  get inFlight(): number {
    return this.partial.size;
  }

  private fail(id: number, error: string): { error: string } {
    this.partial.delete(id);
    return { error };
  }
}
