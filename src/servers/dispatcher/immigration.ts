// A process arriving at this peer: the checks an `immigrate` passes before anything runs, and the
// checkpoint record (what a spawner needs to restart a process on another peer). Part of the
// Scheduler actor like the rest of the Dispatcher (see emigration.ts).
//
// An image crosses peers compressed and authenticated with a key only cluster members can derive
// (transfer.ts). The receiver refuses, with the reason, a module that is not the one its hash
// names, an image from outside the cluster (bad MAC), and a truncated, corrupt, other-version,
// other-process or other-program image (decodeImage and the checks after it). Nothing starts
// until all of that passed, and then only when the sender says go (the hand-over's commit step:
// emigration.ts).
import type { SpeculationMode } from '../../kernel/process/protocol.ts';
import { decodeImage, ImageError } from '../../kernel/process/image.ts';
import type { Pid } from '../../kernel/process/protocol.ts';
import { seal, unseal, type SealedFormat } from '../../kernel/wasm/sealed.ts';
import { toHex, type Address, type PeerId } from '../../kernel/types.ts';
import { TransferError, unpackImage, type Hmac } from './transfer.ts';

export interface Keys {
  /** The cluster's image key (imageKey in transfer.ts), or undefined on a peer that has none. */
  key: Uint8Array | undefined;
  hmac: Hmac;
  sha256(data: Uint8Array): Promise<Uint8Array>;
}

/** The raw (sealed) process image when every check passed, or the reason it is refused. */
export async function admitImage(
  m: { pid: Pid; hash: string; module: Uint8Array; image: Uint8Array },
  keys: Keys,
): Promise<{ ok: true; image: Uint8Array; cpuMs: number } | { ok: false; reason: string }> {
  if (!keys.key) return { ok: false, reason: 'this peer cannot authenticate process images' };
  let digest: Uint8Array;
  try {
    digest = await keys.sha256(m.module);
  } catch (e) {
    return { ok: false, reason: `cannot hash the module: ${(e as Error).message}` };
  }
  if (toHex(digest) !== m.hash) return { ok: false, reason: 'the module does not match its hash' };
  let raw: Uint8Array;
  try {
    raw = await unpackImage(m.image, keys.key, keys.hmac);
  } catch (e) {
    if (e instanceof TransferError) return { ok: false, reason: e.message };
    return { ok: false, reason: `cannot open the image: ${(e as Error).message}` };
  }
  try {
    const image = decodeImage(raw);
    if (image.pid !== m.pid) return { ok: false, reason: `the process image is of process ${image.pid}, not ${m.pid}` };
    if (image.moduleHash !== m.hash) return { ok: false, reason: 'the process image belongs to another program' };
    return { ok: true, image: raw, cpuMs: image.cpuMs };
  } catch (e) {
    if (e instanceof ImageError) return { ok: false, reason: e.message };
    return { ok: false, reason: `cannot decode the image: ${(e as Error).message}` };
  }
}

// ───────────────────────────── checkpoint records ─────────────────────────────

/** What a process needs besides its image to run again elsewhere. */
export interface CheckpointMeta {
  pid: Pid;
  name: string;
  args: string[];
  env: Record<string, string>;
  hash: string;
  client: Address;
  parent?: Pid;
  interactive: boolean;
  window?: number;
  spawner: PeerId;
  startedAt: number;
  moves: number;
  /** Fork On Wait mode (absent: off). */
  speculation?: SpeculationMode;
}

export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

const FORMAT: SealedFormat = {
  magic: new Uint8Array([0x4c, 0x53, 0x48, 0x43, 0x4b, 0x50, 0x54, 0x00]), // "LSHCKPT\0"
  version: 1,
  noun: 'checkpoint',
  title: 'checkpoint',
  error: (message) => new CheckpointError(message),
};

/** The record stored for a checkpoint (then packed: compressed and authenticated, like a migration). */
export function encodeCheckpoint(meta: CheckpointMeta, image: Uint8Array): Uint8Array {
  return seal(FORMAT, { meta, image });
}

export function decodeCheckpoint(bytes: Uint8Array): { meta: CheckpointMeta; image: Uint8Array } {
  const raw = unseal(FORMAT, bytes) as { meta?: Partial<CheckpointMeta>; image?: unknown };
  const m = raw?.meta;
  if (
    !m ||
    !(raw.image instanceof Uint8Array) ||
    typeof m.pid !== 'string' ||
    typeof m.name !== 'string' ||
    !Array.isArray(m.args) ||
    typeof m.env !== 'object' ||
    typeof m.hash !== 'string' ||
    typeof m.client?.peer !== 'string' ||
    typeof m.client?.port !== 'string' ||
    typeof m.interactive !== 'boolean' ||
    typeof m.spawner !== 'string' ||
    typeof m.startedAt !== 'number' ||
    typeof m.moves !== 'number' ||
    (m.speculation !== undefined && m.speculation !== 'on' && m.speculation !== 'off' && m.speculation !== 'mispredict')
  ) {
    throw new CheckpointError('malformed checkpoint');
  }
  return { meta: m as CheckpointMeta, image: raw.image };
}
