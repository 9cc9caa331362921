// Tabs of one browser profile share IndexedDB, but every tab is its own peer. If two peers
// wrote one store, each would count the other's blocks as its own replicas (and one's GC could
// delete blocks the other just committed a manifest for). So one tab at a time owns the
// profile's store, decided by a Web Lock: the owner holds it for the life of its kernel worker
// (the browser releases it when the tab closes or crashes); the others run on memory and take
// over when the lock comes free.
//
// Without Web Locks (they need a secure context: a tab at http://192.168.1.20:8080 has none)
// nothing tells tabs apart reliably (a BroadcastChannel "is anyone the owner?" must wait with a
// timeout, and a frozen background owner does not answer). But of everything a store does only
// deleting is unsafe to share: blocks are content-addressed (re-putting one is harmless), ops
// are keyed by their origin (each tab's own). So such a tab *shares* the IndexedDB store in
// append-only mode: it persists everything and frees nothing (orphans of a crashed drop, an
// emptied trash) until a tab over https or localhost owns it. Files persist on a LAN address.
import { MemoryStore } from '../../servers/stockholder/store.ts';
import { DEFAULT_STORE_DB, IdbStore } from './store-idb.ts';

/** The part of the Web Locks API (navigator.locks) used here. */
export interface LockRequester {
  request(
    name: string,
    options: { ifAvailable?: boolean; signal?: AbortSignal },
    callback: (lock: unknown) => unknown,
  ): Promise<unknown>;
}

export interface ProfileStoreOptions {
  /** IndexedDB database name (tests). */
  dbName?: string;
  /** Web Lock name (tests). */
  lockName?: string;
  /** Default `navigator.locks`; `null` acts as a context without Web Locks. */
  locks?: LockRequester | null;
}

export type ProfileStore =
  | {
      owner: true;
      store: IdbStore;
      /** Closes the store and lets go of the lock (tests; a real tab keeps it until it closes). */
      release(): Promise<void>;
    }
  | {
      owner: false;
      /** another-tab: memory until the owner closes; no-web-locks: the profile's store shared append-only. */
      reason: 'another-tab' | 'no-web-locks';
      store: MemoryStore | IdbStore;
      /**
       * The profile's store, once this tab owns it (the owner tab closed). Moving what the memory
       * store gathered into it is the caller's job. Never settles without Web Locks or after release.
       */
      takeover: Promise<IdbStore>;
      /** Stops waiting for (or lets go of) the lock, closing a taken-over store. */
      release(): Promise<void>;
    };

export const STORE_LOCK = 'lshapes-store';
export const OTHER_TAB_LABEL = "memory (another tab owns this profile's store)";

export async function openProfileStore(opts: ProfileStoreOptions = {}): Promise<ProfileStore> {
  const dbName = opts.dbName ?? DEFAULT_STORE_DB;
  const lockName = opts.lockName ?? STORE_LOCK;
  const locks = opts.locks === undefined ? (globalThis.navigator?.locks as LockRequester | undefined) : opts.locks;
  if (!locks) {
    const store = await IdbStore.open(dbName, { shared: true });
    return { owner: false, reason: 'no-web-locks', store, takeover: new Promise<IdbStore>(() => {}), release: () => store.close() };
  }

  // The lock is held while its callback's promise is pending: `hold` stays pending until release().
  const hold = pendingUntilCalled();
  const granted = await new Promise<boolean>((resolve, reject) => {
    locks
      .request(lockName, { ifAvailable: true }, (lock) => {
        resolve(lock !== null);
        return lock === null ? undefined : hold.promise;
      })
      .catch(reject);
  });

  if (granted) {
    let store: IdbStore;
    try {
      store = await IdbStore.open(dbName);
    } catch (e) {
      hold.resolve();
      throw e;
    }
    return {
      owner: true,
      store,
      release: async () => {
        await store.close();
        hold.resolve();
      },
    };
  }

  // Queue for the lock (no ifAvailable): granted when the owner tab's worker goes away.
  const stopWaiting = new AbortController();
  let released = false;
  let taken: IdbStore | undefined;
  const takeover = new Promise<IdbStore>((resolve, reject) => {
    locks
      .request(lockName, { signal: stopWaiting.signal }, async () => {
        if (released) return;
        try {
          taken = await IdbStore.open(dbName);
        } catch (e) {
          reject(e);
          return;
        }
        if (released) {
          await taken.close();
          return;
        }
        resolve(taken);
        await hold.promise;
      })
      .catch((e) => {
        if (!released) reject(e);
      });
  });
  return {
    owner: false,
    reason: 'another-tab',
    store: new MemoryStore({ label: OTHER_TAB_LABEL }),
    takeover,
    release: async () => {
      released = true;
      stopWaiting.abort();
      await taken?.close();
      hold.resolve();
    },
  };
}

function pendingUntilCalled(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
