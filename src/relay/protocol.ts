// Signaling protocol between a peer and the LAN relay: JSON text frames over one WebSocket.
// The relay only groups peers by room and forwards `signal` payloads inside a room; it never
// sees the cluster token (room = SHA-256("lshapes-room:" + token), see src/kernel/identity.ts).
import { z } from 'zod';

export const PEER_ID = /^[0-9a-f]{32}$/;
export const ROOM_ID = /^[0-9a-f]{64}$/;
/** Largest WebSocket message the relay accepts (an SDP with candidates is a few KiB). */
export const MAX_SIGNAL_BYTES = 64 * 1024;

const peerId = z.string().regex(PEER_ID);

/** Peer → relay. `join` must be the first message of a connection. */
export const ClientMessage = z.discriminatedUnion('t', [
  z.object({ t: z.literal('join'), room: z.string().regex(ROOM_ID), peer: peerId }),
  z.object({ t: z.literal('signal'), to: peerId, data: z.unknown() }),
]);
export type ClientMessage = z.infer<typeof ClientMessage>;

/** Relay → peer. */
export type RelayMessage =
  | { t: 'peers'; peers: string[] } // answer to join: who is in the room already
  // also sent when a peer id joins again (tab reload): its new connection replaced the old one,
  // whose links are dead; no `left` is sent for the replaced connection
  | { t: 'joined'; peer: string }
  | { t: 'left'; peer: string }
  | { t: 'signal'; from: string; data: unknown }
  | { t: 'error'; reason: string }; // repeated errors, floods, oversized frames: socket closed (1008/1009)
