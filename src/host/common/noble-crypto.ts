// CryptoDriver in plain JavaScript (@noble/curves, @noble/hashes), for pages that are not a
// secure context: a tab opened at http://192.168.1.20:8080 from another machine of the LAN
// has no crypto.subtle. Wire-compatible with webcrypto.ts: P-256, raw uncompressed public
// keys, r||s signatures over SHA-256 — so both kinds of peer admit each other.
import { p256 } from '@noble/curves/nist.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { CryptoDriver } from '../../kernel/types.ts';

export function nobleCryptoDriver(): CryptoDriver {
  return {
    sha256: async (data) => sha256(data),
    hmacSha256: async (key, data) => hmac(sha256, key, data),
    async generateKeyPair() {
      const privateKey = p256.utils.randomSecretKey();
      return { privateKey, publicKey: p256.getPublicKey(privateKey, false) };
    },
    sign: async (privateKey, data) => p256.sign(data, privateKey as Uint8Array, { prehash: true, lowS: false }),
    async verify(publicKey, data, signature) {
      try {
        // WebCrypto signers do not normalize S, so high-S signatures must verify too.
        return p256.verify(signature, data, publicKey, { prehash: true, lowS: false });
      } catch {
        return false;
      }
    },
  };
}
