// CryptoDriver over WebCrypto: the same code in a browser worker and in Node (globalThis.crypto).
// Peer keys are ECDSA P-256: supported everywhere WebCrypto is.
import type { CryptoDriver, KeyPair, PrivateKey } from '../../kernel/types.ts';

const subtle = () => globalThis.crypto.subtle;
const ECDSA = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

// WebCrypto's types want ArrayBuffer-backed views; copy anything else (e.g. a pooled Buffer).
const buf = (b: Uint8Array): Uint8Array<ArrayBuffer> =>
  b.buffer instanceof ArrayBuffer && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? (b as Uint8Array<ArrayBuffer>) : new Uint8Array(b);

export function webCryptoDriver(): CryptoDriver {
  return {
    async sha256(data) {
      return new Uint8Array(await subtle().digest('SHA-256', buf(data)));
    },
    async hmacSha256(key, data) {
      const k = await subtle().importKey('raw', buf(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
      return new Uint8Array(await subtle().sign('HMAC', k, buf(data)));
    },
    async generateKeyPair() {
      return generateKeyPair(false);
    },
    async sign(privateKey: PrivateKey, data) {
      return new Uint8Array(await subtle().sign(SIGN, privateKey as CryptoKey, buf(data)));
    },
    async verify(publicKey, data, signature) {
      try {
        const k = await subtle().importKey('raw', buf(publicKey), ECDSA, false, ['verify']);
        return await subtle().verify(SIGN, k, buf(signature), buf(data));
      } catch {
        return false; // not a valid P-256 point: not a valid signature either
      }
    },
  };
}

/**
 * A new P-256 key pair; the public key as raw uncompressed point bytes.
 * `extractable` only for hosts that must write the private key to disk (Node);
 * a tab keeps a non-extractable CryptoKey in IndexedDB instead.
 */
export async function generateKeyPair(extractable: boolean): Promise<KeyPair> {
  const pair = await subtle().generateKey(ECDSA, extractable, ['sign', 'verify']);
  const publicKey = new Uint8Array(await subtle().exportKey('raw', pair.publicKey));
  return { publicKey, privateKey: pair.privateKey };
}

export async function exportPrivateKey(key: PrivateKey): Promise<JsonWebKey> {
  return subtle().exportKey('jwk', key as CryptoKey);
}

export async function importPrivateKey(jwk: JsonWebKey): Promise<CryptoKey> {
  return subtle().importKey('jwk', jwk, ECDSA, false, ['sign']);
}
