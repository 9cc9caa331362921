// What Stockholders say to each other, and the schemas every incoming message is checked
// against before anything acts on it.
//
//   vv    "this is every op I have" (per origin, highest gap-free seq): the receiver answers
//         with `ops` for what the sender lacks. Sent periodically and to a peer that appears.
//   ops   operations: pushed to every linked peer when made, and as answers to `vv`.
//   have  which file versions this peer holds whole, and which loose blocks of the others:
//         what `get` may ask it for, and what "on N peers" counts.
//   get   "send me these blocks"; answered by one `block` or `nohave` per hash.
import { z } from 'zod';
import { BLOCK_SIZE, type FsOp, type Hash, type VersionId, type VersionVector } from './types.ts';

/** Most ops in one `ops` message (an answer to `vv` continues in the next round). */
export const MAX_OPS_PER_MESSAGE = 1000;
/** An answer to `vv` stops at about this many bytes (a 1 GiB file's op alone is ~70 KB). */
export const MAX_OPS_BYTES = 4 << 20;
/** Most hashes a `get` or `have` may name. */
export const MAX_HASHES = 1 << 16;

const hash = z.string().regex(/^[0-9a-f]{64}$/, 'not a SHA-256 hex digest');
const origin = z.string().regex(/^[0-9a-f]{32}~[0-9a-f]{8}$/, 'not an origin');
const seq = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const opId = z.string().regex(/^[0-9a-f]{32}~[0-9a-f]{8}:\d{1,16}$/, 'not an op id');
const nodeId = z.union([z.literal('root'), z.literal('trash'), opId]);
const name = z
  .string()
  .min(1)
  .max(255)
  .refine((s) => s !== '.' && s !== '..' && !s.includes('/') && !s.includes('\0'), 'not a file name');
const vv = z.record(origin, z.number().int().min(0).max(Number.MAX_SAFE_INTEGER));
const manifest = z
  .object({ size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), blocks: z.array(hash).max(1 << 24) })
  .refine((m) => m.blocks.length === Math.ceil(m.size / BLOCK_SIZE), 'manifest block count does not match its size');

const body = z.discriminatedUnion('t', [
  z.object({ t: z.literal('move'), child: nodeId, parent: nodeId, meta: z.object({ name, kind: z.enum(['dir', 'file']) }), seen: vv.optional() }),
  z.object({ t: z.literal('write'), node: nodeId, manifest, supersedes: z.array(opId).max(1024) }),
  z.object({ t: z.literal('drop'), node: nodeId, version: opId }),
  z.object({ t: z.literal('purge'), nodes: z.array(nodeId).max(1 << 16), seen: vv }),
]);

export const FsOpSchema = z
  .object({
    origin,
    seq,
    time: z.tuple([z.number().int().min(1).max(Number.MAX_SAFE_INTEGER), z.string()]),
    wall: z.number().finite(),
    body,
  })
  .refine((op) => op.time[1] === op.origin, 'op time names another origin');

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array && v.length <= BLOCK_SIZE, 'expected at most one block of bytes');

export const PeerMessageSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('vv'), vv }),
  z.object({ kind: z.literal('ops'), ops: z.array(FsOpSchema).max(MAX_OPS_PER_MESSAGE), more: z.boolean().optional() }),
  z.object({ kind: z.literal('have'), versions: z.array(opId).max(MAX_HASHES), blocks: z.array(hash).max(MAX_HASHES) }),
  z.object({ kind: z.literal('get'), hashes: z.array(hash).min(1).max(64) }),
  z.object({ kind: z.literal('block'), hash, bytes }),
  z.object({ kind: z.literal('nohave'), hash }),
]);

export type PeerMessage =
  | { kind: 'vv'; vv: VersionVector }
  /** `more`: an answer to `vv` that stopped short (count or size): ask again at once. */
  | { kind: 'ops'; ops: FsOp[]; more?: boolean }
  | { kind: 'have'; versions: VersionId[]; blocks: Hash[] }
  | { kind: 'get'; hashes: Hash[] }
  | { kind: 'block'; hash: Hash; bytes: Uint8Array }
  | { kind: 'nohave'; hash: Hash };
