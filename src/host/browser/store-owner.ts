// Tabs of one browser profile share IndexedDB, but every tab is its own peer. If two peers
// wrote one store, each would count the other's blocks as its own replicas (and one's GC could
// delete blocks the other just committed a manifest for). So one tab at a time owns the
// profile's store, decided by a Web Lock: the owner holds it for the life of its kernel worker
// (the browser releases it when the tab closes or crashes); the others run on memory and take
// over when the lock comes free.
//
// Without Web Locks (they need a secure context: a tab at http://192.168.1.20:8080 has none)
// the tab runs on memory. We choose safety over persistence: nothing else tells tabs apart
// reliably. A BroadcastChannel "is anyone the owner?" check must wait for an answer with a
// timeout, and a frozen background owner tab does not answer, so two tabs would end up writing
// one store. An insecure-origin user keeps files by serving over https or localhost, or by
// running a Node peer (which stores on disk).
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
      reason: 'another-tab' | 'no-web-locks';
      store: MemoryStore;
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
export const NO_LOCKS_LABEL =
  'memory (no Web Locks on an insecure http origin, so this tab cannot safely own the store: open LSHAPES over https or localhost to keep files)';

export async function openProfileStore(opts: ProfileStoreOptions = {}): Promise<ProfileStore> {
  const dbName = opts.dbName ?? DEFAULT_STORE_DB;
  const lockName = opts.lockName ?? STORE_LOCK;
  const locks = opts.locks === undefined ? (globalThis.navigator?.locks as LockRequester | undefined) : opts.locks;
  if (!locks) {
    return {
      owner: false,
      reason: 'no-web-locks',
      store: new MemoryStore({ label: NO_LOCKS_LABEL }),
      takeover: new Promise<IdbStore>(() => {}),
      release: async () => {},
    };
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
