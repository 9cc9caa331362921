// A tab's identity: a P-256 key pair whose private half is a non-extractable CryptoKey kept in
// IndexedDB. The key belongs to the tab (its id is in sessionStorage), so a reload keeps the
// peer id while two tabs of one profile are two peers. A duplicated tab copies sessionStorage;
// a Web Lock per tab id notices that and gives the copy an identity of its own.
import { openDB } from 'idb';
import { identityFrom, type Identity } from '../../kernel/identity.ts';
import { generateKeyPair, webCryptoDriver } from '../common/webcrypto.ts';

const DB = 'lshapes-identity';
const STORE = 'tabs';
const TAB_KEY = 'lshapes.tab';

interface StoredKeys {
  publicKey: Uint8Array;
  privateKey: CryptoKey;
}

async function holdTabLock(tabId: string): Promise<boolean> {
  if (!navigator.locks) return true;
  return new Promise((resolve) => {
    void navigator.locks.request(`lshapes-tab-${tabId}`, { ifAvailable: true }, (lock) => {
      resolve(lock !== null);
      // Held for the life of the tab: a duplicate of this tab cannot take it.
      return lock ? new Promise<void>(() => {}) : undefined;
    });
  });
}

export async function tabIdentity(): Promise<Identity> {
  let tabId = sessionStorage.getItem(TAB_KEY);
  if (!tabId || !(await holdTabLock(tabId))) {
    tabId = crypto.randomUUID();
    sessionStorage.setItem(TAB_KEY, tabId);
    await holdTabLock(tabId);
  }
  const db = await openDB(DB, 1, { upgrade: (d) => d.createObjectStore(STORE) });
  let keys = (await db.get(STORE, tabId)) as StoredKeys | undefined;
  if (!keys) {
    keys = (await generateKeyPair(false)) as StoredKeys;
    await db.put(STORE, keys, tabId);
  }
  db.close();
  return identityFrom(webCryptoDriver(), keys);
}
