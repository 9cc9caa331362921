// A tab's identity: a P-256 key pair whose private half is a non-extractable CryptoKey kept in
// IndexedDB. The key belongs to the tab (its id is in sessionStorage), so a reload keeps the
// peer id while two tabs of one profile are two peers. A duplicated tab copies sessionStorage;
// a Web Lock per tab id notices that and gives the copy an identity of its own.
// Outside a secure context (a LAN address over http) there is no crypto.subtle and no Web
// Locks: the key is then a plain-JavaScript one (platform-crypto.ts) and duplicates go unnoticed.
import { openDB } from 'idb';
import { identityFrom, type Identity } from '../../kernel/identity.ts';
import { platformCrypto } from '../common/platform-crypto.ts';

const DB = 'lshapes-identity';
const STORE = 'tabs';
const TAB_KEY = 'lshapes.tab';

interface StoredKeys {
  publicKey: Uint8Array;
  /** A non-extractable CryptoKey, or raw bytes where WebCrypto is missing. */
  privateKey: CryptoKey | Uint8Array;
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
    tabId = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
    sessionStorage.setItem(TAB_KEY, tabId);
    await holdTabLock(tabId);
  }
  const db = await openDB(DB, 1, { upgrade: (d) => d.createObjectStore(STORE) });
  const driver = platformCrypto();
  let keys = (await db.get(STORE, tabId)) as StoredKeys | undefined;
  if (!keys) {
    keys = (await driver.generateKeyPair()) as StoredKeys;
    await db.put(STORE, keys, tabId);
  }
  db.close();
  return identityFrom(driver, keys);
}
