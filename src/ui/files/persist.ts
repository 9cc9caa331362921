// Asking the browser, once per page, to keep this origin's storage (IndexedDB holds the blocks):
// without it the browser may evict them under storage pressure. Asked on the first drop, when
// the user has shown they mean to keep files here.

export type PersistState = 'persistent' | 'may be evicted' | 'unsupported';

/** The part of navigator.storage used. */
export interface StorageManagerLike {
  persist?(): Promise<boolean>;
}

/** The line the panel shows for a state. */
export function persistLabel(state: PersistState): string {
  return state === 'unsupported' ? 'storage: may be evicted (this browser cannot keep it)' : `storage: ${state}`;
}

/** A function that asks at most once and then keeps answering with that first result. */
export function createPersistRequester(storage: () => StorageManagerLike | undefined): () => Promise<PersistState> {
  let asked: Promise<PersistState> | undefined;
  return () => {
    asked ??= (async (): Promise<PersistState> => {
      const s = storage();
      if (!s?.persist) return 'unsupported';
      try {
        return (await s.persist()) ? 'persistent' : 'may be evicted';
      } catch {
        return 'may be evicted';
      }
    })();
    return asked;
  };
}

/** This page's requester. */
export const requestPersistence = createPersistRequester(() => (typeof navigator === 'undefined' ? undefined : navigator.storage));
