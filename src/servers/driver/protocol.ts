// Messages the Driver server understands and sends. Other servers reach the host's devices
// (clock, randomness, console, network interface) only through these.
import { z } from 'zod';
import type { LinkStats } from '../../kernel/link.ts';
import type { PeerId, PeerKind } from '../../kernel/types.ts';

export const DriverRequest = z.discriminatedUnion('kind', [
  /** Fire `timer.fire` back to the sender after `ms`, once or every `ms`. */
  z.object({ kind: z.literal('timer.set'), id: z.string().max(64), ms: z.number().min(0).max(86_400_000), repeat: z.boolean().optional() }),
  z.object({ kind: z.literal('timer.cancel'), id: z.string().max(64) }),
  z.object({ kind: z.literal('random'), n: z.number().int().min(1).max(4096), tag: z.string().max(64).optional() }),
  z.object({ kind: z.literal('console.write'), text: z.string().max(1 << 20) }),
  /** Subscribe to link admissions and losses; the current links are sent at once. */
  z.object({ kind: z.literal('net.watch') }),
  z.object({ kind: z.literal('net.stats') }),
  z.object({ kind: z.literal('host.info') }),
  /** The local Scheduler's count of runnable processes: the load host.info reports and gossip spreads. */
  z.object({ kind: z.literal('load.report'), load: z.number().min(0).max(1e6) }),
]);
export type DriverRequest = z.infer<typeof DriverRequest>;

export interface HostInfoReply {
  kind: 'host.info';
  peerKind: PeerKind;
  capacity: number;
  load: number;
  version: string;
  now: number;
  wallNow: number;
}

export type DriverReply =
  | { kind: 'timer.fire'; id: string; now: number; wallNow: number }
  | { kind: 'random'; bytes: Uint8Array; tag: string | undefined }
  | { kind: 'net.up'; peer: PeerId; peerKind: PeerKind }
  | { kind: 'net.down'; peer: PeerId; reason: string }
  | { kind: 'net.stats'; links: LinkStats[] }
  | HostInfoReply
  | { kind: 'error'; reason: string };
