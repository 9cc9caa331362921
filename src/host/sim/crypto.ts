// A deterministic, INSECURE CryptoDriver for the simulator only.
//
// Why fake: WebCrypto's promises settle on a thread pool (macrotasks), at times the simulator
// does not control, so a run with real crypto would not replay; ECDSA key generation from a
// seed is not offered by WebCrypto either. Here every promise is already resolved when
// returned, so all of a kernel's crypto settles in microtasks the simulator drains between
// events, and keys come from the run's seeded PRNG.
//
// Why it is insecure: the "signature" is HMAC(public key, data), so anyone who knows a public
// key can sign for it. The simulator tests membership and routing, not attacks; the real
// ECDSA path is covered by the admission unit tests on WebCrypto and by the e2e tests.
// SHA-256 and HMAC-SHA-256 are real (node:crypto), so ids and admission MACs are the real ones.
import { createHash, createHmac } from 'node:crypto';
import type { CryptoDriver, KeyPair, PrivateKey, Random } from '../../kernel/types.ts';

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(data).digest());
}

/** 0x04 || H(priv) || H(H(priv)): shaped like an uncompressed P-256 point (65 bytes). */
function publicFromPrivate(priv: Uint8Array): Uint8Array {
  const h1 = sha256(priv);
  const out = new Uint8Array(65);
  out[0] = 0x04;
  out.set(h1, 1);
  out.set(sha256(h1), 33);
  return out;
}

/** The opaque private key handed to the kernel. */
interface SimPrivateKey {
  readonly sim: Uint8Array;
}

function isSimKey(k: PrivateKey): k is SimPrivateKey {
  return typeof k === 'object' && k !== null && (k as SimPrivateKey).sim instanceof Uint8Array;
}

export function simCryptoDriver(random: Random): CryptoDriver {
  return {
    sha256: (data) => Promise.resolve(sha256(data)),
    hmacSha256: (key, data) => Promise.resolve(hmac(key, data)),
    generateKeyPair: () => Promise.resolve(simKeyPair(random.bytes(32))),
    sign(privateKey, data) {
      if (!isSimKey(privateKey)) return Promise.reject(new TypeError('not a simulator private key'));
      return Promise.resolve(hmac(publicFromPrivate(privateKey.sim), data));
    },
    verify(publicKey, data, signature) {
      const expected = hmac(publicKey, data);
      let diff = expected.length ^ signature.length;
      for (let i = 0; i < expected.length && i < signature.length; i++) diff |= expected[i]! ^ signature[i]!;
      return Promise.resolve(diff === 0);
    },
  };
}

/** A key pair from 32 private bytes (the simulator draws them from the peer's PRNG). */
export function simKeyPair(priv: Uint8Array): KeyPair {
  const key: SimPrivateKey = { sim: new Uint8Array(priv) };
  return { publicKey: publicFromPrivate(priv), privateKey: key };
}
