// A Node peer's identity, kept in its state directory so a restarted peer keeps its id.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { identityFrom, type Identity } from '../../kernel/identity.ts';
import { fromHex, toHex } from '../../kernel/types.ts';
import { exportPrivateKey, generateKeyPair, importPrivateKey, webCryptoDriver } from '../common/webcrypto.ts';

interface StoredKey {
  publicKey: string;
  privateKey: JsonWebKey;
}

export async function nodeIdentity(stateDir: string): Promise<Identity> {
  const file = path.join(stateDir, 'peer-key.json');
  try {
    const stored = JSON.parse(await readFile(file, 'utf8')) as StoredKey;
    return identityFrom(webCryptoDriver(), { publicKey: fromHex(stored.publicKey), privateKey: await importPrivateKey(stored.privateKey) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  const keys = await generateKeyPair(true);
  await mkdir(stateDir, { recursive: true });
  const stored: StoredKey = { publicKey: toHex(keys.publicKey), privateKey: await exportPrivateKey(keys.privateKey) };
  await writeFile(file, JSON.stringify(stored), { mode: 0o600 });
  return identityFrom(webCryptoDriver(), { publicKey: keys.publicKey, privateKey: await importPrivateKey(stored.privateKey) });
}
