// Admission: a challenge–response run on every new link before any message is accepted.
//
//   A → B  hello { pub_A, nonce_A }          B → A  hello { pub_B, nonce_B }
//   A → B  auth  { mac, sig } over T_A        B → A  auth  { mac, sig } over T_B
//   T_X = "lshapes-admit-v1" | pub_X | pub_Y | nonce_X | nonce_Y | fp_X | fp_Y
//
// mac = HMAC(admissionKey, T) proves knowledge of the cluster token; sig = Sign(priv_X, T)
// proves ownership of the key the peer id is derived from; fp_X, fp_Y are the DTLS
// fingerprints each side sees in its SDP, so a relay that swapped certificates (a
// man in the middle) makes both sides compute different transcripts and fail.
import { peerIdOf } from './identity.ts';
import { utf8, type CryptoDriver, type PeerId, type PrivateKey } from './types.ts';

export interface AdmissionSide {
  pub: Uint8Array;
  nonce: Uint8Array;
  fingerprint: string;
}

export function transcript(sender: AdmissionSide, receiver: AdmissionSide): Uint8Array {
  const parts = [
    utf8('lshapes-admit-v1'),
    sender.pub,
    receiver.pub,
    sender.nonce,
    receiver.nonce,
    utf8(sender.fingerprint.toUpperCase()),
    utf8(receiver.fingerprint.toUpperCase()),
  ];
  let len = 0;
  for (const p of parts) len += 4 + p.length;
  const out = new Uint8Array(len);
  const view = new DataView(out.buffer);
  let off = 0;
  for (const p of parts) {
    view.setUint32(off, p.length);
    out.set(p, off + 4);
    off += 4 + p.length;
  }
  return out;
}

export async function makeAuth(
  crypto: CryptoDriver,
  admissionKey: Uint8Array,
  privateKey: PrivateKey,
  me: AdmissionSide,
  them: AdmissionSide,
): Promise<{ mac: Uint8Array; sig: Uint8Array }> {
  const t = transcript(me, them);
  const [mac, sig] = await Promise.all([crypto.hmacSha256(admissionKey, t), crypto.sign(privateKey, t)]);
  return { mac, sig };
}

export type AdmissionVerdict = { ok: true } | { ok: false; reason: string };

/** Checks the remote side's hello against the peer id it claimed while signaling. */
export async function checkHello(crypto: CryptoDriver, claimed: PeerId, pub: Uint8Array): Promise<AdmissionVerdict> {
  const actual = await peerIdOf(crypto, pub);
  return actual === claimed ? { ok: true } : { ok: false, reason: `forged peer id: claimed ${claimed}, key hashes to ${actual}` };
}

export async function checkAuth(
  crypto: CryptoDriver,
  admissionKey: Uint8Array,
  them: AdmissionSide,
  me: AdmissionSide,
  auth: { mac: Uint8Array; sig: Uint8Array },
): Promise<AdmissionVerdict> {
  const t = transcript(them, me);
  const expected = await crypto.hmacSha256(admissionKey, t);
  if (!equalBytes(expected, auth.mac)) return { ok: false, reason: 'wrong cluster token or tampered DTLS fingerprints' };
  if (!(await crypto.verify(them.pub, t, auth.sig))) return { ok: false, reason: 'bad signature: peer does not own its key' };
  return { ok: true };
}

/** Compares without an early exit, so timing does not reveal how much of a MAC matched. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
