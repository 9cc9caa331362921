// Synchronizer messages: gossip between peers, and the view it publishes to local watchers.
import { z } from 'zod';
import type { PeerId, PeerKind } from '../../kernel/types.ts';
import type { MemberRecord, MemberStatus } from './membership.ts';

const STATUSES: MemberStatus[] = ['alive', 'dead', 'left'];

/** A member on the wire: a tuple, so a 200-peer digest stays a few KiB. */
const WireMember = z.tuple([
  z.string().regex(/^[0-9a-f]{32}$/),
  z.number().int().nonnegative(), // incarnation
  z.number().int().nonnegative(), // heartbeat
  z.number().int().min(0).max(2), // status
  z.enum(['browser', 'node', 'sim']),
  z.number().int().min(0).max(4096), // capacity
  z.number().min(0).max(1e6), // load
  z.number().min(0), // uptime ms
  z.string().max(32), // version
]);

export const SynchronizerRequest = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('gossip'), m: z.array(WireMember).max(4096) }),
  /** Subscribe (local ports only) to `view` updates; one is sent at once. */
  z.object({ kind: z.literal('watch') }),
  z.object({ kind: z.literal('unwatch') }),
]);
export type SynchronizerRequest = z.infer<typeof SynchronizerRequest>;

export function toWire(records: MemberRecord[]): z.infer<typeof WireMember>[] {
  return records.map((r) => [r.id, r.incarnation, r.heartbeat, STATUSES.indexOf(r.status), r.entry.kind, r.entry.capacity, r.entry.load, r.entry.uptimeMs, r.entry.version]);
}

export function fromWire(m: z.infer<typeof WireMember>[]): MemberRecord[] {
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
