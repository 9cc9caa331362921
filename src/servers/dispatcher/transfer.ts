// What crosses peers (migration) or goes into storage (checkpoints): a process image
// (kernel/process/image.ts, already sealed with its own SHA-256), compressed and authenticated
// with a key derived from the cluster token, so only a member of this cluster can make one
// another peer will restore.
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
