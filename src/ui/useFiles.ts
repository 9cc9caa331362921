// The cluster filesystem as the shell sees it: the latest FilesSnapshot, watched for as long as
// the component is mounted (and unwatched after, even when the watch id arrives late).
import { useEffect, useState } from 'react';
import { proxy } from 'comlink';
import type { FilesApi, FilesSnapshot } from '../servers/stockholder/files-api.ts';

export interface FilesState {
  /** The api offers a file system at all. */
  available: boolean;
  /** Undefined until the first snapshot. */
  snapshot: FilesSnapshot | undefined;
  /** Set when watching failed. */
  error: string | undefined;
}

/**
 * Watches the files of `api`, calling `onSnapshot` with each snapshot until the returned stop
 * function is called. Stopping unwatches; if the watch id has not come back yet, it unwatches
 * as soon as it does. Without `watchFiles` it does nothing.
 */
export function watchFiles(api: Partial<FilesApi>, onSnapshot: (s: FilesSnapshot) => void, onError: (message: string) => void): () => void {
  if (typeof api.watchFiles !== 'function') return () => {};
  let stopped = false;
  let id: number | undefined;
  const unwatch = (watchId: number) => {
    api.unwatchFiles?.(watchId)?.catch((err: unknown) => console.warn('cannot unwatch the files:', err));
  };
  // proxy(): the api may be a comlink Remote of the kernel worker; on a plain object it is a no-op marker.
  api
    .watchFiles(
      proxy((s: FilesSnapshot) => {
        if (!stopped) onSnapshot(s);
      }),
    )
    .then(
      (got) => {
        if (stopped) unwatch(got);
        else id = got;
      },
      (err: unknown) => {
        if (!stopped) onError(err instanceof Error ? err.message : String(err));
      },
    );
  return () => {
    stopped = true;
    if (id !== undefined) unwatch(id);
  };
}

export function useFiles(api: Partial<FilesApi>): FilesState {
  const [snapshot, setSnapshot] = useState<FilesSnapshot | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  useEffect(() => {
    setSnapshot(undefined);
    setError(undefined);
    return watchFiles(api, setSnapshot, setError);
  }, [api]);
  return { available: typeof api.watchFiles === 'function', snapshot, error };
}
