// WebCrypto where the platform has it (secure contexts, Node); pure JavaScript elsewhere.
import type { CryptoDriver } from '../../kernel/types.ts';
import { nobleCryptoDriver } from './noble-crypto.ts';
import { webCryptoDriver } from './webcrypto.ts';

export function platformCrypto(): CryptoDriver {
  return globalThis.crypto?.subtle ? webCryptoDriver() : nobleCryptoDriver();
}
