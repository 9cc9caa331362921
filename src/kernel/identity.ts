// Cluster secrets and peer identity.
// The cluster token lives only in the URL fragment. From it we derive two unrelated values:
// the room id the relay groups peers by, and the admission key only members can compute.
import { toHex, utf8, type CryptoDriver, type KeyPair, type PeerId } from './types.ts';

export interface ClusterSecrets {
  /** Told to the relay: SHA-256("lshapes-room:" + token), hex. Reveals nothing about the key. */
  room: string;
  /** Never leaves the peer: HMAC key proving knowledge of the token during admission. */
  admissionKey: Uint8Array;
}

export async function deriveClusterSecrets(crypto: CryptoDriver, token: string): Promise<ClusterSecrets> {
  const room = toHex(await crypto.sha256(utf8(`lshapes-room:${token}`)));
  const admissionKey = await crypto.hmacSha256(utf8(token), utf8('lshapes-admission-key-v1'));
  return { room, admissionKey };
}

export async function peerIdOf(crypto: CryptoDriver, publicKey: Uint8Array): Promise<PeerId> {
  return toHex((await crypto.sha256(publicKey)).subarray(0, 16));
}

export interface Identity extends KeyPair {
  peerId: PeerId;
}

export async function identityFrom(crypto: CryptoDriver, keys: KeyPair): Promise<Identity> {
  return { ...keys, peerId: await peerIdOf(crypto, keys.publicKey) };
}

/** A new cluster token: 128 random bits, base64url. */
export function newClusterToken(random: (n: number) => Uint8Array): string {
  let s = '';
  for (const b of random(16)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;
