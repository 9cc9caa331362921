// The Driver replies the Synchronizer acts on. Local messages are trusted less than one might
// think (a bug elsewhere can send anything), so they are checked like everything else.
import { z } from 'zod';
import { bytes } from '../../kernel/wire.ts';

const peer = z.string();
const kind = z.enum(['browser', 'node', 'sim']);

export const DriverReplySchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('timer.fire'), id: z.string(), now: z.number(), wallNow: z.number() }),
  z.object({ kind: z.literal('random'), bytes: bytes.refine((b) => b.length >= 4), tag: z.string().optional() }),
  z.object({ kind: z.literal('net.up'), peer, peerKind: kind }),
  z.object({ kind: z.literal('net.down'), peer, reason: z.string() }),
  z.object({ kind: z.literal('net.stats'), links: z.array(z.object({ peer, rttMs: z.number().optional() }).loose()) }),
  z.object({ kind: z.literal('host.info'), peerKind: kind, capacity: z.number(), load: z.number(), version: z.string(), now: z.number(), wallNow: z.number() }),
  z.object({ kind: z.literal('error'), reason: z.string() }),
]);
