// What the files panel shows, from the snapshot and the panel's own state: the store, the sole
// copy warning, the toolbar (target folder, add files/folder, new folder), messages, the tree,
// the trash and the file system's notices. No hooks: FilesPanel owns the state.
import type { FormEvent, RefObject } from 'react';
import type { FilesSnapshot } from '../../servers/stockholder/files-api.ts';
import { formatBytes, formatClock } from '../format.ts';
import type { FilesState } from '../useFiles.ts';
import type { ActionMessage } from './actions.ts';
import { soleCopiesText } from './close-guard.ts';
import { FileRows, fieldValue, type Editing, type FileRowHandlers } from './FileRows.tsx';
import { persistLabel, type PersistState } from './persist.ts';
import { ROOT_ID, buildFileTree, countFiles, folderChoices, visibleRows, type FileNode, type FileTree, type FolderChoice } from './tree.ts';

/** How many of the snapshot's notices are shown (newest last). */
export const NOTICES_SHOWN = 5;

export interface PanelMessage extends ActionMessage {
  /** Unique within the panel: the React key. */
  seq: number;
}

/** The panel's own state (everything not in the snapshot). */
export interface FilesUi {
  collapsed: ReadonlySet<string>;
  editing: Editing | undefined;
  /** The folder new folders, picked files and page drops go to (a view id). */
  target: string;
  /** "Empty trash" was clicked once and waits for the confirmation. */
  confirmEmpty: boolean;
  /** The folder a drag with files is over, or PAGE_TARGET for anywhere else on the page. */
  dragOver: string | undefined;
  /** Ingests under way. */
  adding: number;
  /** Results of the panel's own actions, newest last. */
  messages: readonly PanelMessage[];
  /** The answer to the persistence request, once asked. */
  persist: PersistState | undefined;
}

export const PAGE_TARGET = '*page*';

export const initialFilesUi: FilesUi = {
  collapsed: new Set(),
  editing: undefined,
  target: ROOT_ID,
  confirmEmpty: false,
  dragOver: undefined,
  adding: 0,
  messages: [],
  persist: undefined,
};

export interface FilesHandlers extends FileRowHandlers {
  setTarget(dir: string): void;
  askEmptyTrash(asking: boolean): void;
  /** Opens the file (or folder) picker. */
  pick(kind: 'files' | 'folder'): void;
  /** The picker's input changed. */
  picked(input: HTMLInputElement): void;
  dismissMessages(): void;
}

export interface FilesViewProps {
  files: FilesState;
  ui: FilesUi;
  on: FilesHandlers;
  /** The hidden pickers the "Add" buttons open. */
  inputs?: { files: RefObject<HTMLInputElement | null>; folder: RefObject<HTMLInputElement | null> };
}

/** The target folder, or the top level when it is gone (deleted, or never existed). */
export function effectiveTarget(tree: FileTree, target: string): FolderChoice {
  const node = tree.byId.get(target);
  return node && node.row.kind === 'dir' && !node.row.trashed ? { id: node.row.id, path: node.row.path } : { id: ROOT_ID, path: '/' };
}

function Heading({ snapshot, tree }: { snapshot: FilesSnapshot | undefined; tree: FileTree | undefined }) {
  const fileCount = tree ? countFiles(tree.live) : 0;
  return (
    <h2 id="files-heading">
      Files{' '}
      {snapshot && tree && (
        <span className="count muted">
          ({fileCount} {fileCount === 1 ? 'file' : 'files'} · {snapshot.peers} {snapshot.peers === 1 ? 'peer' : 'peers'}, {snapshot.factor} copies wanted)
        </span>
      )}
    </h2>
  );
}

function StorageLine({ store, persist }: { store: FilesSnapshot['store']; persist: PersistState | undefined }) {
  return (
    <p className="files-storage" data-durable={store.durable ? 'true' : 'false'}>
      <span className="files-store-label">{store.label}</span>
      {' · '}
      {formatBytes(store.usage)} {store.quota > 0 ? `of ${formatBytes(store.quota)} used` : 'used (quota unknown)'}
      {' · '}
      <span className={store.durable ? 'files-durable' : 'files-not-durable'}>{store.durable ? 'durable' : 'not durable'}</span>
      {persist && (
        <>
          {' · '}
          <span className="files-persist" data-persist={persist}>
            {persistLabel(persist)}
          </span>
        </>
      )}
    </p>
  );
}

function Messages({ messages, on }: { messages: readonly PanelMessage[]; on: FilesHandlers }) {
  if (messages.length === 0) return null;
  return (
    <div className="files-messages">
      <ul className="events" aria-label="File actions" aria-live="polite">
        {messages.map((m) => (
          <li key={m.seq} className={`event sev-${m.level}`} role={m.level === 'error' ? 'alert' : undefined}>
            <span className="sev-dot" aria-hidden="true" />
            <span className="text">{m.text}</span>
          </li>
        ))}
      </ul>
      <button type="button" className="secondary small" onClick={() => on.dismissMessages()}>
        Dismiss
      </button>
    </div>
  );
}

function Notices({ notices }: { notices: FilesSnapshot['notices'] }) {
  if (notices.length === 0) return null;
  return (
    <ol className="events files-notices" aria-label="File system notices">
      {notices.slice(-NOTICES_SHOWN).map((n, i) => (
        <li key={`${n.at}/${i}`} className={`event sev-${n.level}`}>
          <time dateTime={Number.isFinite(n.at) ? new Date(n.at).toISOString() : undefined}>{formatClock(n.at)}</time>
          <span className="sev-dot" aria-hidden="true" />
          <span className="text">{n.text}</span>
        </li>
      ))}
    </ol>
  );
}

function Toolbar({ tree, target, on, inputs }: { tree: FileTree; target: FolderChoice; on: FilesHandlers; inputs: FilesViewProps['inputs'] }) {
  const folders = folderChoices(tree);
  const submitFolder = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    void on.act({ type: 'mkdir', dir: target.id, name: fieldValue(form, 'name') }).then((ok) => {
      if (ok) form.reset();
    });
  };
  // `webkitdirectory` is not in React's types; React passes unknown lower-case attributes through.
  const folderPicker = { webkitdirectory: '', directory: '' } as Record<string, string>;
  return (
    <div className="files-toolbar">
      <label className="files-target">
        <span>Into</span>
        <select aria-label="Target folder" value={target.id} onChange={(e) => on.setTarget(e.currentTarget.value)}>
          {folders.map((f) => (
            <option key={f.id} value={f.id}>
              {f.path}
            </option>
          ))}
        </select>
      </label>
      <button type="button" onClick={() => on.pick('files')}>
        Add files
      </button>
      <button type="button" onClick={() => on.pick('folder')}>
        Add folder
      </button>
      <input ref={inputs?.files} type="file" multiple hidden aria-label="Files to add" onChange={(e) => on.picked(e.currentTarget)} />
      <input ref={inputs?.folder} type="file" multiple hidden aria-label="Folder to add" {...folderPicker} onChange={(e) => on.picked(e.currentTarget)} />
      <form className="files-mkdir" onSubmit={submitFolder}>
        <input name="name" aria-label="New folder name" placeholder="folder name" required />
        <button type="submit">New folder</button>
      </form>
    </div>
  );
}

function FileTable({
  caption,
  nodes,
  place,
  tree,
  snapshot,
  ui,
  on,
}: {
  caption: string;
  nodes: readonly FileNode[];
  place: 'live' | 'trash';
  tree: FileTree;
  snapshot: FilesSnapshot;
  ui: FilesUi;
  on: FilesHandlers;
}) {
  const lines = visibleRows(nodes, ui.collapsed);
  return (
    <div className="table-scroll">
      <table className="files-table" data-place={place}>
        <caption className="sr-only">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col" className="num">
              Size
            </th>
            <th scope="col">Copies</th>
            <th scope="col">Transfer</th>
            <th scope="col">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {lines.map((line) => {
            const editing = ui.editing?.id === line.row.id ? ui.editing.mode : undefined;
            return (
              <FileRows
                key={line.row.id}
                line={line}
                place={place}
                expanded={!ui.collapsed.has(line.row.id)}
                editing={editing}
                factor={snapshot.factor}
                folders={editing === 'move' ? folderChoices(tree, line.row) : []}
                conflictWith={line.row.conflictOf ? tree.byId.get(line.row.conflictOf)?.row.name : undefined}
                dropTarget={place === 'live' && line.row.kind === 'dir' && ui.dragOver === line.row.id}
                on={on}
              />
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function Trash({ tree, snapshot, ui, on }: { tree: FileTree; snapshot: FilesSnapshot; ui: FilesUi; on: FilesHandlers }) {
  return (
    <section className="files-trash" aria-labelledby="trash-heading">
      <h3 id="trash-heading">
        Trash <span className="count muted">({tree.trash.length})</span>
      </h3>
      {tree.trash.length === 0 ? (
        <p className="muted">The trash is empty.</p>
      ) : (
        <>
          <FileTable caption="Trash" nodes={tree.trash} place="trash" tree={tree} snapshot={snapshot} ui={ui} on={on} />
          <p className="files-trash-actions">
            {ui.confirmEmpty ? (
              <>
                <span>Delete everything in the trash for good, on every peer?</span>
                <button type="button" className="danger" onClick={() => void on.act({ type: 'emptyTrash' })}>
                  Delete forever
                </button>
                <button type="button" className="secondary" onClick={() => on.askEmptyTrash(false)}>
                  Keep
                </button>
              </>
            ) : (
              <button type="button" className="secondary" onClick={() => on.askEmptyTrash(true)}>
                Empty trash
              </button>
            )}
          </p>
        </>
      )}
    </section>
  );
}

export function FilesView({ files, ui, on, inputs }: FilesViewProps) {
  const { snapshot } = files;
  const tree = snapshot ? buildFileTree(snapshot.rows) : undefined;
  const target = tree ? effectiveTarget(tree, ui.target) : { id: ROOT_ID, path: '/' };
  const dragTargetPath = ui.dragOver === PAGE_TARGET ? target.path : ui.dragOver ? tree?.byId.get(ui.dragOver)?.row.path : undefined;
  return (
    <section
      className={`panel files${ui.dragOver ? ' files-dragging' : ''}`}
      aria-labelledby="files-heading"
      data-sole-copies={snapshot?.soleCopies}
    >
      <Heading snapshot={snapshot} tree={tree} />
      {!files.available ? (
        <p className="muted" role="status">
          This tab's kernel offers no file system.
        </p>
      ) : files.error ? (
        <p className="files-error" role="alert">
          The file system is not answering: {files.error}
        </p>
      ) : !snapshot || !tree ? (
        <p className="muted" role="status">
          Waiting for the file system…
        </p>
      ) : (
        <>
          <StorageLine store={snapshot.store} persist={ui.persist} />
          {snapshot.soleCopies > 0 && (
            <p className="files-sole-warning" role="status">
              {soleCopiesText(snapshot.soleCopies)}: closing it would lose them until another peer has a copy.
            </p>
          )}
          <Toolbar tree={tree} target={target} on={on} inputs={inputs} />
          <p className={`files-drop-hint${dragTargetPath ? ' active' : ''}`}>
            {dragTargetPath
              ? `Drop to add to ${dragTargetPath}`
              : `Drop files or folders anywhere on the page to add them to ${target.path}, or onto a folder to add them there.`}
          </p>
          {ui.adding > 0 && (
            <p className="muted" role="status">
              Adding files…
            </p>
          )}
          <Messages messages={ui.messages} on={on} />
          {tree.live.length === 0 ? (
            <p className="muted files-empty">No files yet.</p>
          ) : (
            <FileTable caption="Files" nodes={tree.live} place="live" tree={tree} snapshot={snapshot} ui={ui} on={on} />
          )}
          <Trash tree={tree} snapshot={snapshot} ui={ui} on={on} />
          <Notices notices={snapshot.notices} />
        </>
      )}
    </section>
  );
}
