// The cluster filesystem in the shell: the namespace as a tree with sizes, copies and transfers,
// the actions on it, and drops of files and folders from the desktop anywhere on the page.
// This component owns the panel's state and talks to the api; FilesView draws it.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { FilesApi } from '../servers/stockholder/files-api.ts';
import { performFileAction, type ActionMessage, type FileAction } from './files/actions.ts';
import { dragHasFiles, droppedFromPicked, takeDrop, walkDrop, type TakenDrop, type WalkedDrop } from './files/drop.ts';
import { FilesView, PAGE_TARGET, effectiveTarget, initialFilesUi, type FilesHandlers, type FilesUi, type PanelMessage } from './files/FilesView.tsx';
import { requestPersistence } from './files/persist.ts';
import { saveBlob } from './files/save-blob.ts';
import { ROOT_ID, buildFileTree, type FolderChoice } from './files/tree.ts';
import type { FilesState } from './useFiles.ts';
import './files/files.css';

/** How many of its own messages the panel keeps. */
export const MAX_MESSAGES = 6;

const TOP: FolderChoice = { id: ROOT_ID, path: '/' };

export interface FilesPanelProps {
  api: Partial<FilesApi>;
  files: FilesState;
}

export function FilesPanel({ api, files }: FilesPanelProps) {
  const [ui, setUi] = useState<FilesUi>(initialFilesUi);
  const update = useCallback((patch: (ui: FilesUi) => Partial<FilesUi>) => setUi((prev) => ({ ...prev, ...patch(prev) })), []);
  const inputs = { files: useRef<HTMLInputElement | null>(null), folder: useRef<HTMLInputElement | null>(null) };
  const seq = useRef(0);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  const tree = useMemo(() => (files.snapshot ? buildFileTree(files.snapshot.rows) : undefined), [files.snapshot]);
  // Read by the page-wide drop listener, which is installed once.
  const target = tree ? effectiveTarget(tree, ui.target) : TOP;
  const targetRef = useRef(target);
  targetRef.current = target;
  const pathOf = useCallback((dir: string) => (dir === targetRef.current.id ? targetRef.current.path : (tree?.byId.get(dir)?.row.path ?? '/')), [tree]);

  const report = useCallback(
    (messages: ActionMessage[]) => {
      if (!mounted.current || messages.length === 0) return;
      const fresh = messages.map((m) => ({ ...m, seq: seq.current++ }));
      update((prev) => ({ messages: [...prev.messages, ...fresh].slice(-MAX_MESSAGES) }));
    },
    [update],
  );

  const act = useCallback(
    async (action: FileAction): Promise<boolean> => {
      const outcome = await performFileAction(api, action, { save: (blob, name) => saveBlob(blob, name) });
      report(outcome.messages);
      if (outcome.ok && mounted.current) {
        if (action.type === 'rename' || action.type === 'move') update((prev) => (prev.editing?.id === action.id ? { editing: undefined } : {}));
        if (action.type === 'emptyTrash') update(() => ({ confirmEmpty: false }));
      }
      return outcome.ok;
    },
    [api, report, update],
  );

  // Called on every ingest; only the first call per page really asks the browser.
  const askPersistence = useCallback(() => {
    void requestPersistence().then((persist) => {
      if (mounted.current) update(() => ({ persist }));
    });
  }, [update]);

  const ingest = useCallback(
    async (dir: string, walked: Promise<WalkedDrop>) => {
      update((prev) => ({ adding: prev.adding + 1 }));
      try {
        const { files: dropped, problems } = await walked;
        await act({ type: 'ingest', dir, dirPath: pathOf(dir), files: dropped, problems });
      } catch (err) {
        report([{ level: 'error', text: `Could not read the drop: ${err instanceof Error ? err.message : String(err)}` }]);
      } finally {
        if (mounted.current) update((prev) => ({ adding: prev.adding - 1 }));
      }
    },
    [act, pathOf, report, update],
  );

  const dropInto = useCallback(
    (dir: string, dt: DataTransfer | null) => {
      // The DataTransfer empties when the event handler returns: take its entries now.
      const taken: TakenDrop = takeDrop(dt);
      update(() => ({ dragOver: undefined }));
      askPersistence();
      void ingest(dir, walkDrop(taken));
    },
    [askPersistence, ingest, update],
  );

  // The whole page accepts drops; rows that are folders stop their own drops from getting here.
  const dropIntoRef = useRef(dropInto);
  dropIntoRef.current = dropInto;
  const enabled = files.available && files.snapshot !== undefined && !files.error;
  useEffect(() => {
    if (!enabled || typeof window === 'undefined') return;
    const onDragOver = (e: DragEvent) => {
      if (!dragHasFiles(e.dataTransfer)) return;
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
      update((prev) => (prev.dragOver === PAGE_TARGET ? {} : { dragOver: PAGE_TARGET }));
    };
    const onDragLeave = (e: DragEvent) => {
      // Leaving the window (not just moving between elements).
      if (e.relatedTarget === null) update(() => ({ dragOver: undefined }));
    };
    const onDrop = (e: DragEvent) => {
      if (!dragHasFiles(e.dataTransfer)) return;
      e.preventDefault();
      dropIntoRef.current(targetRef.current.id, e.dataTransfer);
    };
    window.addEventListener('dragover', onDragOver);
    window.addEventListener('dragleave', onDragLeave);
    window.addEventListener('drop', onDrop);
    return () => {
      window.removeEventListener('dragover', onDragOver);
      window.removeEventListener('dragleave', onDragLeave);
      window.removeEventListener('drop', onDrop);
    };
  }, [enabled, update]);

  const on: FilesHandlers = {
    act,
    toggle: (id) =>
      update((prev) => {
        const collapsed = new Set(prev.collapsed);
        if (!collapsed.delete(id)) collapsed.add(id);
        return { collapsed };
      }),
    edit: (editing) => update(() => ({ editing })),
    dragOver: (dir) => update((prev) => (prev.dragOver === dir ? {} : { dragOver: dir })),
    drop: (dir, dt) => dropInto(dir, dt),
    setTarget: (target) => update(() => ({ target })),
    askEmptyTrash: (confirmEmpty) => update(() => ({ confirmEmpty })),
    pick: (kind) => (kind === 'files' ? inputs.files : inputs.folder).current?.click(),
    picked: (input) => {
      const picked = droppedFromPicked(input.files ?? []);
      input.value = ''; // so picking the same files again fires a change again
      if (picked.length === 0) return;
      askPersistence();
      void ingest(targetRef.current.id, Promise.resolve({ files: picked, problems: [] }));
    },
    dismissMessages: () => update(() => ({ messages: [] as PanelMessage[] })),
  };

  return <FilesView files={files} ui={ui} on={on} inputs={inputs} />;
}
