// Closing a tab that holds the only copy of some files loses them: while it does, the browser
// is asked to confirm before the tab goes (beforeunload).
import type { FilesSnapshot } from '../../servers/stockholder/files-api.ts';

/** Whether closing now would lose files: some are on this peer only. */
export function shouldWarnOnClose(latest: Pick<FilesSnapshot, 'soleCopies'> | undefined): boolean {
  return latest !== undefined && latest.soleCopies > 0;
}

/** "1 file exists only in this tab", "3 files exist only in this tab". */
export function soleCopiesText(n: number): string {
  return n === 1 ? '1 file exists only in this tab' : `${n} files exist only in this tab`;
}

/** The parts of BeforeUnloadEvent the guard touches. */
export interface BeforeUnloadLike {
  preventDefault(): void;
  returnValue: unknown;
}

export interface EventTargetLike {
  addEventListener(type: 'beforeunload', fn: (e: BeforeUnloadLike) => void): void;
  removeEventListener(type: 'beforeunload', fn: (e: BeforeUnloadLike) => void): void;
}

/** Installs the beforeunload handler; `latest` gives the newest snapshot. Returns the uninstaller. */
export function installCloseGuard(target: EventTargetLike, latest: () => Pick<FilesSnapshot, 'soleCopies'> | undefined): () => void {
  const onBeforeUnload = (e: BeforeUnloadLike) => {
    const snapshot = latest();
    if (!shouldWarnOnClose(snapshot)) return;
    e.preventDefault();
    // Older Chromium and Safari only warn when returnValue is set (the text itself is not shown).
    e.returnValue = soleCopiesText(snapshot!.soleCopies);
  };
  target.addEventListener('beforeunload', onBeforeUnload);
  return () => target.removeEventListener('beforeunload', onBeforeUnload);
}
