// The table lines of one entry of the files panel: the row itself (name with its markers, size,
// copies, transfer, actions) and, while it is being renamed or moved, the small form under it.
// No hooks: the panel owns every piece of state and passes it in.
import type { DragEvent, FormEvent } from 'react';
import type { FileProgress, FileRow } from '../../servers/stockholder/files-api.ts';
import { formatBytes, formatPercent, formatRate } from '../format.ts';
import type { FileAction } from './actions.ts';
import { dragHasFiles } from './drop.ts';
import type { FolderChoice, VisibleRow } from './tree.ts';

export type EditMode = 'rename' | 'move';

export interface Editing {
  id: string;
  mode: EditMode;
}

export interface FileRowHandlers {
  act(action: FileAction): Promise<boolean>;
  toggle(id: string): void;
  edit(editing: Editing | undefined): void;
  /** A drag with files is over folder `dir` (undefined: it left). */
  dragOver(dir: string | undefined): void;
  /** Files dropped onto folder `dir`; the DataTransfer is only readable during the call. */
  drop(dir: string, dt: DataTransfer): void;
}

export interface FileRowsProps {
  line: VisibleRow;
  /** 'trash' rows can only be restored (the top ones) or looked at. */
  place: 'live' | 'trash';
  expanded: boolean;
  editing: EditMode | undefined;
  /** Wanted copies per file, from the snapshot. */
  factor: number;
  /** Where a move may go (only read while moving). */
  folders: readonly FolderChoice[];
  /** The name a conflict copy lost to, when known. */
  conflictWith: string | undefined;
  /** The folder a drag is over. */
  dropTarget: boolean;
  on: FileRowHandlers;
}

const COLUMNS = 5;

/** The value of a named field of a submitted form. */
export function fieldValue(form: HTMLFormElement, name: string): string {
  const field = form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement | null;
  return field?.value ?? '';
}

const DIRECTION_WORD: Record<FileProgress['direction'], string> = { upload: 'uploading', replicate: 'replicating' };

export function TransferStatus({ progress, name }: { progress: FileProgress; name: string }) {
  const percent = formatPercent(progress.done, progress.total);
  return (
    <div
      className={`file-progress${progress.paused ? ' file-progress-paused' : ''}`}
      role="progressbar"
      aria-label={`${DIRECTION_WORD[progress.direction]} ${name}`}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={Number.parseInt(percent, 10)}
      aria-valuetext={progress.paused ? `${percent}, paused: ${progress.paused}` : percent}
      data-direction={progress.direction}
    >
      <span className="file-progress-track" aria-hidden="true">
        <span className="file-progress-fill" style={{ width: percent }} />
      </span>
      <span className="file-progress-text">
        {DIRECTION_WORD[progress.direction]} {percent}
        {progress.paused ? '' : ` · ${formatRate(progress.bytesPerSecond)}`}
      </span>
      {progress.paused && <span className="file-paused">paused: {progress.paused}</span>}
    </div>
  );
}

export function FileRows({ line, place, expanded, editing, factor, folders, conflictWith, dropTarget, on }: FileRowsProps) {
  const { row, depth, childCount } = line;
  const isDir = row.kind === 'dir';
  // Dropping onto a file adds next to it, in its folder.
  const dropDir = isDir ? row.id : row.parent;
  const low = !isDir && row.replicas < factor;
  const classes = ['file-row', `file-kind-${row.kind}`];
  if (row.soleCopy) classes.push('file-sole');
  if (row.conflictOf) classes.push('file-conflict');
  if (dropTarget) classes.push('drop-target');

  const dragProps =
    place === 'live'
      ? {
          onDragOver: (e: DragEvent) => {
            if (!dragHasFiles(e.dataTransfer)) return;
            e.preventDefault();
            e.stopPropagation();
            e.dataTransfer.dropEffect = 'copy';
            on.dragOver(dropDir);
          },
          onDrop: (e: DragEvent) => {
            e.preventDefault();
            e.stopPropagation();
            on.drop(dropDir, e.dataTransfer);
          },
        }
      : {};

  const submitRename = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    void on.act({ type: 'rename', id: row.id, name: row.name, to: fieldValue(e.currentTarget, 'name') });
  };
  const submitMove = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const dir = fieldValue(e.currentTarget, 'dir');
    void on.act({ type: 'move', id: row.id, name: row.name, dir, dirPath: folders.find((f) => f.id === dir)?.path ?? dir });
  };
  const moveChoices = folders.filter((f) => f.id !== row.parent);

  const lines = [
    <tr
      key={row.id}
      className={classes.join(' ')}
      data-id={row.id}
      data-path={row.path}
      data-kind={row.kind}
      data-replicas={row.replicas}
      data-sole-copy={row.soleCopy ? 'true' : undefined}
      data-trashed={row.trashed ? 'true' : undefined}
      {...dragProps}
    >
      <td className="file-name">
        <div className="file-name-line" style={{ paddingLeft: `${depth * 18}px` }}>
          {isDir ? (
            <button
              type="button"
              className="file-toggle"
              aria-expanded={expanded}
              aria-label={`${expanded ? 'Collapse' : 'Expand'} ${row.name}`}
              onClick={() => on.toggle(row.id)}
            >
              {expanded ? '▾' : '▸'}
            </button>
          ) : (
            <span className="file-toggle-space" aria-hidden="true" />
          )}
          <span className="file-label" title={row.path}>
            {row.name}
            {isDir ? '/' : ''}
          </span>
          {row.conflictOf && (
            <span className="file-mark file-mark-conflict" title={`A conflict copy: a concurrent write that lost to ${conflictWith ?? 'another version'}`}>
              conflict copy
            </span>
          )}
          {row.soleCopy && (
            <span className="file-mark file-mark-sole" title="No other live peer holds this file: closing this tab would lose it">
              only here
            </span>
          )}
        </div>
      </td>
      <td className="num">{isDir ? <span className="muted">{childCount === 1 ? '1 item' : `${childCount} items`}</span> : formatBytes(row.size)}</td>
      <td>
        {!isDir && (
          <span className={`file-replicas${low ? ' file-replicas-low' : ''}`} title={`${row.replicas} of ${factor} wanted copies`}>
            on {row.replicas} {row.replicas === 1 ? 'peer' : 'peers'}
          </span>
        )}
      </td>
      <td className="file-status">
        {row.progress ? (
          <TransferStatus progress={row.progress} name={row.name} />
        ) : !isDir && !row.local ? (
          <span className="muted" title="This peer does not hold every block: downloading fetches them from a peer that does">
            not on this peer
          </span>
        ) : null}
      </td>
      <td>
        <div className="file-actions">
          {place === 'live' ? (
            <>
              {!isDir && (
                <button type="button" className="secondary" aria-label={`Download ${row.name}`} onClick={() => void on.act({ type: 'download', id: row.id, name: row.name })}>
                  Download
                </button>
              )}
              <button type="button" className="secondary" aria-label={`Rename ${row.name}`} aria-pressed={editing === 'rename'} onClick={() => on.edit(editing === 'rename' ? undefined : { id: row.id, mode: 'rename' })}>
                Rename
              </button>
              <button type="button" className="secondary" aria-label={`Move ${row.name}`} aria-pressed={editing === 'move'} onClick={() => on.edit(editing === 'move' ? undefined : { id: row.id, mode: 'move' })}>
                Move
              </button>
              <button type="button" className="danger" aria-label={`Delete ${row.name}`} onClick={() => void on.act({ type: 'remove', id: row.id, name: row.name })}>
                Delete
              </button>
            </>
          ) : depth === 0 ? (
            <button type="button" className="secondary" aria-label={`Restore ${row.name}`} onClick={() => void on.act({ type: 'restore', id: row.id, name: row.name })}>
              Restore
            </button>
          ) : null}
        </div>
      </td>
    </tr>,
  ];

  if (place === 'live' && editing === 'rename') {
    lines.push(
      <tr key={`${row.id}/edit`} className="file-edit" data-edit-for={row.path}>
        <td colSpan={COLUMNS}>
          <form className="file-form" onSubmit={submitRename}>
            <input name="name" aria-label={`New name for ${row.name}`} defaultValue={row.name} autoFocus required />
            <button type="submit">Save</button>
            <button type="button" className="secondary" onClick={() => on.edit(undefined)}>
              Cancel
            </button>
          </form>
        </td>
      </tr>,
    );
  } else if (place === 'live' && editing === 'move') {
    lines.push(
      <tr key={`${row.id}/edit`} className="file-edit" data-edit-for={row.path}>
        <td colSpan={COLUMNS}>
          <form className="file-form" onSubmit={submitMove}>
            {moveChoices.length === 0 ? (
              <span className="muted">There is no other folder to move it to.</span>
            ) : (
              <>
                <select name="dir" aria-label={`Destination for ${row.name}`} defaultValue={moveChoices[0]!.id}>
                  {moveChoices.map((f) => (
                    <option key={f.id} value={f.id}>
                      {f.path}
                    </option>
                  ))}
                </select>
                <button type="submit">Move here</button>
              </>
            )}
            <button type="button" className="secondary" onClick={() => on.edit(undefined)}>
              Cancel
            </button>
          </form>
        </td>
      </tr>,
    );
  }
  return <>{lines}</>;
}
