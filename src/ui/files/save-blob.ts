// Handing a downloaded Blob to the browser as a file to save: an object URL on a hidden
// <a download>, clicked, and revoked later (revoking at once can cancel the save in some browsers).

export interface SaveDeps {
  document: Pick<Document, 'createElement' | 'body'>;
  urls: Pick<typeof URL, 'createObjectURL' | 'revokeObjectURL'>;
  /** Runs the revocation later. */
  later(fn: () => void): void;
}

/** How long the object URL outlives the click (FileSaver.js waits as long). */
const REVOKE_AFTER_MS = 40_000;

const browserDeps = (): SaveDeps => ({
  document,
  urls: URL,
  later: (fn) => setTimeout(fn, REVOKE_AFTER_MS),
});

export function saveBlob(blob: Blob, name: string, deps: SaveDeps = browserDeps()): void {
  const url = deps.urls.createObjectURL(blob);
  const a = deps.document.createElement('a');
  a.href = url;
  a.download = name;
  a.style.display = 'none';
  deps.document.body.append(a);
  try {
    a.click();
  } finally {
    a.remove();
    deps.later(() => deps.urls.revokeObjectURL(url));
  }
}
