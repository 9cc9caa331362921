// What crosses peers (migration) or goes into storage (checkpoints): a process image
// (kernel/process/image.ts, already sealed with its own SHA-256), compressed and authenticated
// with a key derived from the cluster token, so only a member of this cluster can make one
// another peer will restore. A pre-copied move's final image travels as a delta against the
// base sent before (below: makeDelta / applyDelta), packed the same way.
//
//   "LSHXFER\0" (8) | version (u32 LE) | image size (u32 LE) | payload size (u32 LE) | payload | MAC (32)
//
// payload = deflate-raw(image) (CompressionStream: Node 20 and Chromium) when version is 1, the
// image as it is when version is STORED (2): an image whose sample does not compress (a heap of
// random or already-compressed bytes) is not worth deflating — that costs more than shipping it
// (16 MiB: ~0.8 s in Node). MAC = HMAC-SHA256(key, everything before it). unpackImage checks, in order: length, magic, version, MAC, then the
// size cap, and only then decompresses — into a buffer of exactly the announced size, failing
// as soon as the stream would overflow it (a zip bomb from a buggy or hostile member stops at
// the cap instead of filling memory).
import { equalBytes } from '../../kernel/admission.ts';
import { IMAGE_FORMAT_VERSION } from '../../kernel/process/image.ts';

/** Deflated payload. */
export const TRANSFER_FORMAT_VERSION = 1;
/** The same layout with the image stored as it is (payload size = image size). */
export const TRANSFER_STORED_VERSION = 2;
/** Bytes of an image deflated to decide whether deflating all of it pays. */
const SAMPLE_BYTES = 64 << 10;
/** Pieces the sample is taken in, spread evenly over the image. */
const SAMPLES = 16;
/** Deflate only when the sample shrinks below this fraction. */
const WORTH_IT = 0.9;
const MAGIC = new Uint8Array([0x4c, 0x53, 0x48, 0x58, 0x46, 0x45, 0x52, 0x00]); // "LSHXFER\0"
const HEADER = MAGIC.length + 12;
const MAC_BYTES = 32;
/** Largest image packed or unpacked by default: the executor's 512 MiB memory cap plus room for /tmp. */
export const MAX_IMAGE_BYTES = 600 * 1024 * 1024;

export type Hmac = (key: Uint8Array, data: Uint8Array) => Promise<Uint8Array>;

/** Why a transfer was refused (the message says the same for people). */
export type TransferRefusal = 'foreign' | 'truncated' | 'not-transfer' | 'version' | 'corrupt' | 'too-large';

export class TransferError extends Error {
  override readonly name = 'TransferError';
  constructor(
    readonly reason: TransferRefusal,
    message: string,
  ) {
    super(message);
  }
}

export interface TransferOptions {
  /** Cap on the (decompressed) image, default MAX_IMAGE_BYTES. */
  maxBytes?: number;
}

const utf8 = (s: string) => new TextEncoder().encode(s);

/** The key images are authenticated with: HMAC(token, "lshapes/process-image/v1"), unrelated to the admission key. */
export function imageKey(token: string, hmacSha256: Hmac): Promise<Uint8Array> {
  return hmacSha256(utf8(token), utf8('lshapes/process-image/v1'));
}

/** Compresses and authenticates an image (encodeImage bytes) for another peer of this cluster. */
export async function packImage(image: Uint8Array, key: Uint8Array, hmac: Hmac, opts: TransferOptions = {}): Promise<Uint8Array> {
  const max = opts.maxBytes ?? MAX_IMAGE_BYTES;
  if (image.length > max) {
    throw new TransferError('too-large', `process image too large to transfer (${image.length} bytes, the limit is ${max})`);
  }
  const stored = !(await worthDeflating(image));
  const payload = stored ? image : await deflate(image);
  const out = new Uint8Array(HEADER + payload.length + MAC_BYTES);
  out.set(MAGIC, 0);
  const view = new DataView(out.buffer);
  view.setUint32(MAGIC.length, stored ? TRANSFER_STORED_VERSION : TRANSFER_FORMAT_VERSION, true);
  view.setUint32(MAGIC.length + 4, image.length, true);
  view.setUint32(MAGIC.length + 8, payload.length, true);
  out.set(payload, HEADER);
  const body = out.subarray(0, HEADER + payload.length);
  out.set(await hmac(key, body), body.length);
  return out;
}

/** The image packImage was given; throws TransferError for anything else. */
export async function unpackImage(packed: Uint8Array, key: Uint8Array, hmac: Hmac, opts: TransferOptions = {}): Promise<Uint8Array> {
  if (!(packed instanceof Uint8Array)) throw new TransferError('not-transfer', 'not a process image transfer (not bytes)');
  const magicLen = Math.min(packed.length, MAGIC.length);
  for (let i = 0; i < magicLen; i++) {
    if (packed[i] !== MAGIC[i]) throw new TransferError('not-transfer', 'not a process image transfer');
  }
  if (packed.length < HEADER + MAC_BYTES) {
    throw new TransferError('truncated', `truncated (${packed.length} bytes, the header and MAC alone are ${HEADER + MAC_BYTES})`);
  }
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const version = view.getUint32(MAGIC.length, true);
  if (version !== TRANSFER_FORMAT_VERSION && version !== TRANSFER_STORED_VERSION) {
    throw new TransferError('version', `made by another version (${version}; this peer reads ${TRANSFER_FORMAT_VERSION} and ${TRANSFER_STORED_VERSION})`);
  }
  const size = view.getUint32(MAGIC.length + 4, true);
  const payloadLen = view.getUint32(MAGIC.length + 8, true);
  const expected = HEADER + payloadLen + MAC_BYTES;
  if (packed.length < expected) throw new TransferError('truncated', `truncated (${packed.length} of ${expected} bytes)`);
  if (packed.length > expected) throw new TransferError('corrupt', `corrupt (${packed.length - expected} bytes after the end)`);
  const body = packed.subarray(0, HEADER + payloadLen);
  if (!equalBytes(await hmac(key, body), packed.subarray(body.length))) {
    throw new TransferError('foreign', 'not from this cluster (authentication failed)');
  }
  const max = opts.maxBytes ?? MAX_IMAGE_BYTES;
  if (size > max) throw new TransferError('too-large', `process image too large (${size} bytes, the limit is ${max})`);
  if (version === TRANSFER_STORED_VERSION) {
    if (payloadLen !== size) throw new TransferError('corrupt', `corrupt (a stored image of ${payloadLen} bytes, ${size} announced)`);
    return packed.slice(HEADER, HEADER + payloadLen);
  }
  return inflate(packed.subarray(HEADER, HEADER + payloadLen), size);
}

/** Whether deflating `image` pays: samples spread over it must shrink enough together. */
async function worthDeflating(image: Uint8Array): Promise<boolean> {
  if (image.length <= SAMPLE_BYTES) return true;
  const piece = SAMPLE_BYTES / SAMPLES;
  const step = Math.floor((image.length - piece) / (SAMPLES - 1));
  const sample = new Uint8Array(SAMPLE_BYTES);
  for (let i = 0; i < SAMPLES; i++) sample.set(image.subarray(i * step, i * step + piece), i * piece);
  return (await deflate(sample)).length < WORTH_IT * SAMPLE_BYTES;
}

async function deflate(data: Uint8Array): Promise<Uint8Array> {
  const cs = new CompressionStream('deflate-raw');
  const writer = cs.writable.getWriter();
  // Written while the output is read, or a large image would stall on backpressure.
  const written = writer.write(data as Uint8Array<ArrayBuffer>).then(() => writer.close());
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = cs.readable.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
  }
  await written;
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Inflates into exactly `size` bytes: more or fewer is corruption (the size is authenticated). */
async function inflate(payload: Uint8Array, size: number): Promise<Uint8Array> {
  const ds = new DecompressionStream('deflate-raw');
  const writer = ds.writable.getWriter();
  const reader = ds.readable.getReader();
  // A corrupt stream rejects both sides; the reader's rejection is the one reported.
  writer.write(payload as Uint8Array<ArrayBuffer>).then(() => writer.close()).catch(() => {});
  const out = new Uint8Array(size);
  let off = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (off + value.length > size) {
        await reader.cancel().catch(() => {});
        throw new TransferError('corrupt', `corrupt (decompresses to more than the announced ${size} bytes)`);
      }
      out.set(value, off);
      off += value.length;
    }
  } catch (e) {
    if (e instanceof TransferError) throw e;
    throw new TransferError('corrupt', `corrupt (cannot decompress: ${(e as Error).message})`);
  }
  if (off !== size) throw new TransferError('corrupt', `corrupt (decompresses to ${off} bytes, ${size} announced)`);
  return out;
}

// ───────────────────────────── deltas (pre-copy) ─────────────────────────────
//
// A move ships the process image twice: first a base (a checkpoint taken while the process runs
// on), then, frozen, the final image as a delta against that base (emigration.ts). A delta:
//
//   "LSHDELT\0" (8) | version (u32 LE) | base size (u32) | base SHA-256 (32)
//                   | image size (u32) | image check (32) | op count (u32) | ops
//   op = 0 (u8) | from (u32) | length (u32)    copy `length` bytes of the base, from `from`
//      | 1 (u8) | length (u32) | the bytes     bytes the base does not have
//
// The ops write the image from its first byte to its last, in order. It travels packed like an
// image (packImage: compressed when that pays, HMAC with the cluster key); applyDelta checks it
// against the base it names (size and SHA-256), rebuilds the image and checks its size, then has
// the caller check it against the image check. The check is whatever identifies the image whole
// that costs its sender nothing while the process stands still: a process image already carries
// the SHA-256 of its payload in its seal (kernel/wasm/sealed.ts, made by the executor's encode),
// so the sender copies those 32 bytes and the receiver hashes the rebuilt payload once (WebCrypto)
// and compares (immigration.ts). The delta's HMAC says who made it; the base's SHA-256 (taken
// during the pre-copy, on both sides) says what it applies to; the check says the rebuild is the
// sender's image, byte for byte.
//
// makeDelta cuts the final image into fixed chunks of DELTA_CHUNK_BYTES. A chunk equal to the
// base's bytes where it is expected becomes a copy (adjacent copies merge), a changed one travels.
// "Where it is expected" is not always the same offset: an image encodes linear memory as runs of
// non-zero 4 KiB pages (kernel/wasm/snapshot.ts captureMemory), so a page that turned from zero
// to non-zero between the two images (a growing heap, a deeper stack) inserts its 4 KiB into the
// image, and every byte after it moves. Diffing only at equal offsets would then send the whole
// rest of the image. So the diff keeps a shift (image offset → base offset), and when a chunk
// does not match at it, looks for the chunk's content anywhere in the base (rsync's rolling hash
// over the chunk's positions against a hash of every base chunk, DeltaBase.index): the new shift
// is found within one chunk after the insertion, and the rest copies again. Decoding the images
// and diffing their memories instead would cost a full decode (SHA-256 of the payload included)
// of the final image while the process stands still; this costs a compare of the two images.
// Memory does not sit at a fixed offset of the image across two captures (the runs above, and
// MessagePack's length prefixes, move it), but between a pre-copy checkpoint and the freeze it
// mostly does: the compare at the current shift is the fast path, and only a chunk that differs
// there costs a search (bounded by `budget`).

/** Chunk size of the diff: the memory encoding's page (captureMemory's CHUNK), so one changed word costs 4 KiB. */
export const DELTA_CHUNK_BYTES = 4096;
/** 2: the image check is the caller's (a process image's own seal checksum), not a SHA-256 of the image the sender computes. */
export const DELTA_FORMAT_VERSION = 2;
const DELTA_MAGIC = new Uint8Array([0x4c, 0x53, 0x48, 0x44, 0x45, 0x4c, 0x54, 0x00]); // "LSHDELT\0"
const DELTA_HEADER = DELTA_MAGIC.length + 4 + 4 + 32 + 4 + 32 + 4;
const OP_COPY = 0;
const OP_DATA = 1;
/** The rolling hash's multiplier (odd: a multiplication mod 2^32 that loses no bits). */
const ROLL_M = 0x9e3779b1;
/** ROLL_M^(DELTA_CHUNK_BYTES - 1) mod 2^32: the weight of the byte leaving the window. */
const ROLL_OUT = (() => {
  let p = 1;
  for (let i = 0; i < DELTA_CHUNK_BYTES - 1; i++) p = Math.imul(p, ROLL_M);
  return p;
})();

/** Why a delta was refused (the message says the same for people). */
export type DeltaRefusal = 'not-delta' | 'truncated' | 'version' | 'corrupt' | 'too-large' | 'other-base' | 'mismatch';

export class DeltaError extends Error {
  override readonly name = 'DeltaError';
  constructor(
    readonly reason: DeltaRefusal,
    message: string,
  ) {
    super(message);
  }
}

export type Sha256 = (data: Uint8Array) => Promise<Uint8Array>;

/** A base image ready to be diffed against: its bytes, its SHA-256, and a hash of each of its chunks. */
export interface DeltaBase {
  image: Uint8Array;
  sha: Uint8Array;
  index: ChunkIndex;
}

/** Prepares `image` as a base (off the frozen path: it hashes the whole image twice). */
export async function deltaBase(image: Uint8Array, sha256: Sha256): Promise<DeltaBase> {
  return { image, sha: await sha256(image), index: new ChunkIndex(image) };
}

export interface Delta {
  /** The delta, to be packed (packImage) for the wire. */
  bytes: Uint8Array;
  /** Bytes of the image that travel as they are (not found in the base). */
  literal: number;
}

/** The size of an image check (a SHA-256). */
export const DELTA_CHECK_BYTES = 32;

/**
 * Checks a rebuilt image against the delta's image check: true when it is the image the sender
 * had (a process image: the SHA-256 of its payload equals its seal's checksum, and that is `check`).
 */
export type DeltaVerify = (image: Uint8Array, check: Uint8Array) => boolean | Promise<boolean>;

/** The delta that rebuilds `image` from `base`; `check` (32 bytes) identifies `image` for the receiver's DeltaVerify. */
export function makeDelta(base: DeltaBase, image: Uint8Array, check: Uint8Array): Delta {
  if (image.length > 0xffffffff || base.image.length > 0xffffffff) throw new DeltaError('too-large', 'image too large for a delta');
  if (check.length !== DELTA_CHECK_BYTES) throw new DeltaError('corrupt', `an image check is ${DELTA_CHECK_BYTES} bytes, not ${check.length}`);
  const sha = check;
  const ops = diff(base.image, base.index, image);
  let size = DELTA_HEADER;
  let literal = 0;
  for (const op of ops) {
    if (op.copy) size += 9;
    else {
      size += 5 + op.len;
      literal += op.len;
    }
  }
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(DELTA_MAGIC, 0);
  let at = DELTA_MAGIC.length;
  view.setUint32(at, DELTA_FORMAT_VERSION, true);
  view.setUint32(at + 4, base.image.length, true);
  out.set(base.sha, at + 8);
  view.setUint32(at + 40, image.length, true);
  out.set(sha, at + 44);
  view.setUint32(at + 76, ops.length, true);
  at = DELTA_HEADER;
  for (const op of ops) {
    if (op.copy) {
      out[at] = OP_COPY;
      view.setUint32(at + 1, op.from, true);
      view.setUint32(at + 5, op.len, true);
      at += 9;
    } else {
      out[at] = OP_DATA;
      view.setUint32(at + 1, op.len, true);
      out.set(image.subarray(op.from, op.from + op.len), at + 5);
      at += 5 + op.len;
    }
  }
  return { bytes: out, literal };
}

/**
 * The image a delta (unpacked) rebuilds from `base` (whose SHA-256 is `baseSha`); throws
 * DeltaError for a delta of another base, a malformed one, or one that rebuilds other bytes
 * than it says (`verify` refuses them against the delta's image check).
 */
export async function applyDelta(base: Uint8Array, baseSha: Uint8Array, delta: Uint8Array, verify: DeltaVerify, opts: TransferOptions = {}): Promise<Uint8Array> {
  if (!(delta instanceof Uint8Array)) throw new DeltaError('not-delta', 'not an image delta (not bytes)');
  for (let i = 0; i < Math.min(delta.length, DELTA_MAGIC.length); i++) {
    if (delta[i] !== DELTA_MAGIC[i]) throw new DeltaError('not-delta', 'not an image delta');
  }
  if (delta.length < DELTA_HEADER) throw new DeltaError('truncated', `truncated delta (${delta.length} bytes, the header alone is ${DELTA_HEADER})`);
  const view = new DataView(delta.buffer, delta.byteOffset, delta.byteLength);
  const h = DELTA_MAGIC.length;
  const version = view.getUint32(h, true);
  if (version !== DELTA_FORMAT_VERSION) throw new DeltaError('version', `delta made by another version (${version}; this peer reads ${DELTA_FORMAT_VERSION})`);
  const baseSize = view.getUint32(h + 4, true);
  if (baseSize !== base.length || !equalBytes(delta.subarray(h + 8, h + 40), baseSha)) {
    throw new DeltaError('other-base', 'the delta was made against another base image');
  }
  const size = view.getUint32(h + 40, true);
  const sha = delta.subarray(h + 44, h + 76);
  const count = view.getUint32(h + 76, true);
  const max = opts.maxBytes ?? MAX_IMAGE_BYTES;
  if (size > max) throw new DeltaError('too-large', `process image too large (${size} bytes, the limit is ${max})`);
  const out = new Uint8Array(size);
  let at = DELTA_HEADER;
  let off = 0;
  let i = 0;
  const corrupt = (what: string): never => {
    throw new DeltaError('corrupt', `corrupt delta (op ${i}: ${what})`);
  };
  // Every op takes at least 5 bytes of the delta: the loop is bounded by its length, whatever the count says.
  for (; i < count; i++) {
    if (at + 5 > delta.length) throw new DeltaError('truncated', `truncated delta (${count} ops announced, ${i} found)`);
    const tag = delta[at]!;
    if (tag === OP_COPY) {
      if (at + 9 > delta.length) throw new DeltaError('truncated', `truncated delta (op ${i} cut short)`);
      const from = view.getUint32(at + 1, true);
      const len = view.getUint32(at + 5, true);
      if (len === 0) corrupt('an empty copy');
      if (from + len > base.length) corrupt(`copies bytes ${from}..${from + len} of a ${base.length}-byte base`);
      if (off + len > size) corrupt(`writes past the announced ${size} bytes`);
      out.set(base.subarray(from, from + len), off);
      at += 9;
      off += len;
    } else if (tag === OP_DATA) {
      const len = view.getUint32(at + 1, true);
      if (len === 0) corrupt('empty data');
      if (at + 5 + len > delta.length) throw new DeltaError('truncated', `truncated delta (op ${i} has ${delta.length - at - 5} of ${len} bytes)`);
      if (off + len > size) corrupt(`writes past the announced ${size} bytes`);
      out.set(delta.subarray(at + 5, at + 5 + len), off);
      at += 5 + len;
      off += len;
    } else corrupt(`unknown op ${tag}`);
  }
  if (at !== delta.length) throw new DeltaError('corrupt', `corrupt delta (${delta.length - at} bytes after the last op)`);
  if (off !== size) throw new DeltaError('corrupt', `corrupt delta (it writes ${off} of the announced ${size} bytes)`);
  if (!(await verify(out, sha.slice()))) throw new DeltaError('mismatch', 'the rebuilt image does not match its check');
  return out;
}

/** A process image's seal (kernel/wasm/sealed.ts): "LSHPROC\0" | version (u32 LE) | SHA-256 of the payload | payload. */
const IMAGE_MAGIC = new Uint8Array([0x4c, 0x53, 0x48, 0x50, 0x52, 0x4f, 0x43, 0x00]);
const IMAGE_SUM_AT = IMAGE_MAGIC.length + 4;
const IMAGE_HEADER = IMAGE_SUM_AT + 32;

/** A process image's check for its delta: the checksum its seal already carries (nothing is hashed while it is frozen). */
export function imageCheck(image: Uint8Array): Uint8Array {
  if (image.length < IMAGE_HEADER || !equalBytes(image.subarray(0, IMAGE_MAGIC.length), IMAGE_MAGIC)) {
    throw new DeltaError('not-delta', 'not a process image: no delta can be made of it');
  }
  return image.slice(IMAGE_SUM_AT, IMAGE_HEADER);
}

/**
 * The DeltaVerify of process images: a process image of this version whose seal carries `check`,
 * and whose payload hashes to it (one SHA-256 over the rebuilt image, the only full pass the
 * receiver makes before it says ready: decodeImage would hash it again, in JavaScript, and the
 * executor does that at the thaw anyway).
 */
export function verifyImage(sha256: Sha256): DeltaVerify {
  return async (image, check) => {
    if (image.length < IMAGE_HEADER || !equalBytes(image.subarray(0, IMAGE_MAGIC.length), IMAGE_MAGIC)) return false;
    if (new DataView(image.buffer, image.byteOffset, image.byteLength).getUint32(IMAGE_MAGIC.length, true) !== IMAGE_FORMAT_VERSION) return false;
    if (!equalBytes(image.subarray(IMAGE_SUM_AT, IMAGE_HEADER), check)) return false;
    return equalBytes(await sha256(image.subarray(IMAGE_HEADER)), check);
  };
}

/** The SHA-256 of the base a delta (unpacked) was made against, or undefined when it is no delta. */
export function deltaBaseSha(delta: Uint8Array): Uint8Array | undefined {
  if (!(delta instanceof Uint8Array) || delta.length < DELTA_HEADER) return undefined;
  for (let i = 0; i < DELTA_MAGIC.length; i++) if (delta[i] !== DELTA_MAGIC[i]) return undefined;
  return delta.slice(DELTA_MAGIC.length + 8, DELTA_MAGIC.length + 40);
}

/** A copy of the base (`from` in the base) or bytes of the image (`from` in the image). */
type Op = { copy: boolean; from: number; len: number };

/** The rolling hash of `b[at..at + DELTA_CHUNK_BYTES)`. */
function chunkHash(b: Uint8Array, at: number): number {
  let h = 0;
  for (let i = at, end = at + DELTA_CHUNK_BYTES; i < end; i++) h = (Math.imul(h, ROLL_M) + b[i]!) | 0;
  return h;
}

/**
 * The base's whole chunks by rolling hash: an open-addressing table (the first chunk of equal
 * hashes wins; a lookup is verified by comparing bytes, so a collision only costs a copy missed).
 */
export class ChunkIndex {
  private readonly keys: Int32Array;
  /** Chunk number + 1 (0: empty slot). */
  private readonly chunks: Int32Array;
  private readonly mask: number;

  constructor(base: Uint8Array) {
    const n = Math.floor(base.length / DELTA_CHUNK_BYTES);
    let size = 16;
    while (size < n * 2) size *= 2;
    this.keys = new Int32Array(size);
    this.chunks = new Int32Array(size);
    this.mask = size - 1;
    for (let c = 0; c < n; c++) {
      const h = chunkHash(base, c * DELTA_CHUNK_BYTES);
      let s = this.slot(h);
      while (this.chunks[s] !== 0 && this.keys[s] !== h) s = (s + 1) & this.mask;
      if (this.chunks[s] !== 0) continue;
      this.keys[s] = h;
      this.chunks[s] = c + 1;
    }
  }

  /** The base offset of a chunk whose hash is `h`, or -1. */
  find(h: number): number {
    for (let s = this.slot(h); this.chunks[s] !== 0; s = (s + 1) & this.mask) {
      if (this.keys[s] === h) return (this.chunks[s]! - 1) * DELTA_CHUNK_BYTES;
    }
    return -1;
  }

  private slot(h: number): number {
    return (Math.imul(h, 0x85ebca6b) >>> 16) & this.mask;
  }
}

function diff(base: Uint8Array, index: ChunkIndex, image: Uint8Array): Op[] {
  const C = DELTA_CHUNK_BYTES;
  const ops: Op[] = [];
  const same = sameBytes(image, base);
  const emit = (copy: boolean, from: number, len: number) => {
    const last = ops.at(-1);
    if (last && last.copy === copy && last.from + last.len === from) last.len += len;
    else ops.push({ copy, from, len });
  };
  /** Positions the rolling search may still look at: a wholly new image must not cost a hash per byte. */
  let budget = (1 << 20) + (image.length >>> 4);
  let shift = 0;
  let o = 0;
  while (o < image.length) {
    const len = Math.min(C, image.length - o);
    const b = o + shift;
    if (b >= 0 && b + len <= base.length && same(o, b, len)) {
      emit(true, b, len);
      o += len;
      continue;
    }
    if (len === C && budget > 0) {
      // Where in the base is a window starting in this chunk? The first hit ends the literal run.
      const last = Math.min(o + C - 1, image.length - C);
      let h = chunkHash(image, o);
      let hit = -1;
      let p = o;
      for (;;) {
        const at = index.find(h);
        if (at >= 0 && same(p, at, C)) {
          hit = at;
          break;
        }
        if (p === last) break;
        h = (Math.imul(h - Math.imul(image[p]!, ROLL_OUT), ROLL_M) + image[p + C]!) | 0;
        p++;
      }
      budget -= p - o + 1;
      if (hit >= 0) {
        if (p > o) emit(false, o, p - o);
        emit(true, hit, C);
        shift = hit - p;
        o = p + C;
        continue;
      }
    }
    emit(false, o, len);
    o += len;
  }
  return ops;
}

/** A compare of `len` bytes of `a` at `ao` with `b` at `bo`, 32 bits at a time where both are aligned. */
function sameBytes(a: Uint8Array, b: Uint8Array): (ao: number, bo: number, len: number) => boolean {
  const a32 = a.byteOffset % 4 === 0 ? new Int32Array(a.buffer, a.byteOffset, a.length >>> 2) : undefined;
  const b32 = b.byteOffset % 4 === 0 ? new Int32Array(b.buffer, b.byteOffset, b.length >>> 2) : undefined;
  return (ao, bo, len) => {
    let i = 0;
    if (a32 && b32 && ao % 4 === 0 && bo % 4 === 0) {
      const aw = ao >>> 2;
      const bw = bo >>> 2;
      const words = len >>> 2;
      for (; i < words; i++) if (a32[aw + i] !== b32[bw + i]) return false;
      i = words << 2;
    }
    for (; i < len; i++) if (a[ao + i] !== b[bo + i]) return false;
    return true;
  };
}
