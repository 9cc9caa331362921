// The container both migration formats travel in (thread snapshots, process images):
//
//   magic (8 bytes) | format version (u32 LE) | SHA-256 of the payload (32 bytes) | payload
//
// where the payload is MessagePack. Opening one refuses, with the format's own error, anything
// that is not bytes, truncated, of another kind (magic), of another version, corrupt
// (checksum) or undecodable.
import { sha256 } from '@noble/hashes/sha2.js';
import { Packr } from 'msgpackr';

export const packr = new Packr({ structuredClone: true, useBigIntExtension: true, moreTypes: true });

export interface SealedFormat {
  /** 8 bytes naming the format ("LSHSNAP\0"). */
  magic: Uint8Array;
  version: number;
  /** How messages name one ("snapshot", "process image"), and its kind after "not an LSHAPES". */
  noun: string;
  title: string;
  error: (message: string) => Error;
}

const headerOf = (f: SealedFormat) => f.magic.length + 4 + 32;

/** MessagePack of `value`, sealed. */
export function seal(f: SealedFormat, value: unknown): Uint8Array {
  const out = sealUnsummed(f, value);
  const { sum, payload } = sealParts(f, out);
  sum.set(sha256(payload));
  return out;
}

/**
 * `seal` with zeros where the checksum goes: for a caller that hashes the payload elsewhere
 * (WebCrypto, off its thread) and fills the checksum in (sealParts) before anyone opens it.
 */
export function sealUnsummed(f: SealedFormat, value: unknown): Uint8Array {
  const payload = packr.pack(value);
  const header = headerOf(f);
  const out = new Uint8Array(header + payload.length);
  out.set(f.magic, 0);
  new DataView(out.buffer).setUint32(f.magic.length, f.version, true);
  out.set(payload, header);
  return out;
}

/** Views of a sealed value's checksum field and the payload it sums. */
export function sealParts(f: SealedFormat, bytes: Uint8Array): { sum: Uint8Array; payload: Uint8Array } {
  return { sum: bytes.subarray(f.magic.length + 4, headerOf(f)), payload: bytes.subarray(headerOf(f)) };
}

/**
 * The decoded payload of a sealed value (still to be checked by its format). `checked`: its
 * checksum was verified already (by whoever handed it over): the SHA-256 pass is skipped.
 */
export function unseal(f: SealedFormat, bytes: Uint8Array, checked = false): unknown {
  if (!(bytes instanceof Uint8Array)) throw f.error(`${f.noun} must be bytes`);
  const header = headerOf(f);
  if (bytes.length < header) throw f.error(`${f.noun} is truncated (${bytes.length} bytes, the header alone is ${header})`);
  for (let i = 0; i < f.magic.length; i++) {
    if (bytes[i] !== f.magic[i]) throw f.error(`not an LSHAPES ${f.title} (bad magic)`);
  }
  const version = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(f.magic.length, true);
  if (version !== f.version) {
    throw f.error(`unsupported ${f.noun} format version ${version} (this runtime reads version ${f.version})`);
  }
  const payload = bytes.subarray(header);
  if (!checked) {
    const sum = sha256(payload);
    for (let i = 0; i < 32; i++) {
      if (sum[i] !== bytes[f.magic.length + 4 + i]) throw f.error(`${f.noun} is corrupt or truncated (checksum mismatch)`);
    }
  }
  try {
    return packr.unpack(payload);
  } catch (e) {
    throw f.error(`${f.noun} payload cannot be decoded: ${(e as Error).message}`);
  }
}
