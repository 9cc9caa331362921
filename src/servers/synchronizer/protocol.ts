// Synchronizer messages: gossip between peers, and the view it publishes to local watchers.
import { z } from 'zod';
import type { PeerId, PeerKind } from '../../kernel/types.ts';
import type { MemberRecord, MemberStatus } from './membership.ts';

const STATUSES: MemberStatus[] = ['alive', 'dead', 'left'];

/** A member on the wire: a tuple, so a 200-peer digest stays a few KiB. */
type WireMember = [
  id: PeerId,
  incarnation: number,
  heartbeat: number,
  status: number, // index into STATUSES
  kind: PeerKind,
  capacity: number,
  load: number,
  uptimeMs: number,
  version: string,
];

const PEER_ID = /^[0-9a-f]{32}$/;
const KINDS: ReadonlySet<unknown> = new Set<PeerKind>(['browser', 'node', 'sim']);
const count = (v: unknown, max = Number.MAX_SAFE_INTEGER): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
const amount = (v: unknown, max: number): boolean => typeof v === 'number' && v >= 0 && v <= max;

/**
 * Checked by hand rather than with z.tuple: zod spends about 1.5 µs per member, and every
 * peer merges several full digests a second — in a 200-peer simulation that was the largest
 * cost of the whole run. Same rules as the tuple schema it replaces.
 */
export function isWireMember(v: unknown): v is WireMember {
  return (
    Array.isArray(v) &&
    v.length === 9 &&
    typeof v[0] === 'string' &&
    PEER_ID.test(v[0]) &&
    count(v[1]) &&
    count(v[2]) &&
    count(v[3], 2) &&
    KINDS.has(v[4]) &&
    count(v[5], 4096) &&
    amount(v[6], 1e6) &&
    amount(v[7], Number.MAX_VALUE) &&
    typeof v[8] === 'string' &&
    v[8].length <= 32
  );
}

const WireMemberSchema = z.custom<WireMember>(isWireMember, 'invalid member record');

export const SynchronizerRequest = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('gossip'), m: z.array(WireMemberSchema).max(4096) }),
  /** Subscribe (local ports only) to `view` updates; one is sent at once. */
  z.object({ kind: z.literal('watch') }),
  z.object({ kind: z.literal('unwatch') }),
]);
export type SynchronizerRequest = z.infer<typeof SynchronizerRequest>;

export function toWire(records: MemberRecord[]): WireMember[] {
  return records.map((r) => [r.id, r.incarnation, r.heartbeat, STATUSES.indexOf(r.status), r.entry.kind, r.entry.capacity, r.entry.load, r.entry.uptimeMs, r.entry.version]);
}

export function fromWire(m: WireMember[]): MemberRecord[] {
  return m.map(([id, incarnation, heartbeat, status, kind, capacity, load, uptimeMs, version]) => ({
    id,
    incarnation,
    heartbeat,
    status: STATUSES[status]!,
    entry: { kind, capacity, load, uptimeMs, version },
  }));
}

/** How this peer relates to a member: itself, over a direct admitted link, or known by gossip only. */
export type PeerState = 'self' | 'connected' | 'gossip';

export interface PeerView {
  id: PeerId;
  kind: PeerKind;
  capacity: number;
  load: number;
  uptimeMs: number;
  version: string;
  state: PeerState;
  /** Round trip of the direct link, when there is one. */
  rttMs: number | undefined;
}

export interface ViewMessage {
  kind: 'view';
  self: PeerId;
  peers: PeerView[];
}
