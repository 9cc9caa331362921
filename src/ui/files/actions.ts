// What the files panel asks of the cluster filesystem, as one union, and the function that
// performs an action against a (possibly partial) FilesApi. It never throws: every failure comes
// back as a message the panel shows.
import type { DroppedFile, FilesApi } from '../../servers/stockholder/files-api.ts';
import type { DropProblem } from './drop.ts';

export type FileAction =
  | { type: 'download'; id: string; name: string }
  | { type: 'rename'; id: string; name: string; to: string }
  | { type: 'move'; id: string; name: string; dir: string; dirPath: string }
  | { type: 'remove'; id: string; name: string }
  | { type: 'restore'; id: string; name: string }
  | { type: 'emptyTrash' }
  | { type: 'mkdir'; dir: string; name: string }
  /** `problems`: what the drop walk could not read; reported along with the ingest's own failures. */
  | { type: 'ingest'; dir: string; dirPath: string; files: DroppedFile[]; problems: DropProblem[] };

export type MessageLevel = 'info' | 'warn' | 'error';

export interface ActionMessage {
  level: MessageLevel;
  text: string;
}

export interface ActionOutcome {
  /** The action did what was asked (an ingest with some failed items is not ok). */
  ok: boolean;
  messages: ActionMessage[];
}

export interface ActionDeps {
  /** Saves a downloaded file (saveBlob in the browser). */
  save(blob: Blob, name: string): void;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Why a name is not acceptable, or undefined when it is. */
export function invalidName(name: string): string | undefined {
  if (name.trim() === '') return 'a name cannot be empty';
  if (name.includes('/')) return 'a name cannot contain "/"';
  if (name === '.' || name === '..') return `"${name}" is not a name`;
  return undefined;
}

const fail = (text: string): ActionOutcome => ({ ok: false, messages: [{ level: 'error', text }] });
const done = (text?: string): ActionOutcome => ({ ok: true, messages: text ? [{ level: 'info', text }] : [] });
const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

/** Whether the api offers `key` (called on the api itself: a comlink Remote must not be `.bind`-ed). */
function offers<K extends keyof FilesApi>(api: Partial<FilesApi>, key: K): api is Partial<FilesApi> & Pick<FilesApi, K> {
  return typeof api[key] === 'function';
}

export async function performFileAction(api: Partial<FilesApi>, action: FileAction, deps: ActionDeps): Promise<ActionOutcome> {
  const unavailable = (what: string) => fail(`Cannot ${what}: this tab's kernel has no file system.`);
  try {
    switch (action.type) {
      case 'download': {
        if (!offers(api, 'download')) return unavailable(`download ${action.name}`);
        deps.save(await api.download(action.id), action.name);
        return done();
      }
      case 'rename': {
        if (!offers(api, 'rename')) return unavailable(`rename ${action.name}`);
        const bad = invalidName(action.to);
        if (bad) return fail(`Cannot rename ${action.name}: ${bad}.`);
        if (action.to === action.name) return done();
        await api.rename(action.id, action.to);
        return done();
      }
      case 'move': {
        if (!offers(api, 'move')) return unavailable(`move ${action.name}`);
        await api.move(action.id, action.dir);
        return done();
      }
      case 'remove': {
        if (!offers(api, 'remove')) return unavailable(`delete ${action.name}`);
        await api.remove(action.id);
        return done(`${action.name} moved to the trash.`);
      }
      case 'restore': {
        if (!offers(api, 'restore')) return unavailable(`restore ${action.name}`);
        await api.restore(action.id);
        return done(`${action.name} restored.`);
      }
      case 'emptyTrash': {
        if (!offers(api, 'emptyTrash')) return unavailable('empty the trash');
        await api.emptyTrash();
        return done('Trash emptied.');
      }
      case 'mkdir': {
        if (!offers(api, 'mkdir')) return unavailable('create a folder');
        const bad = invalidName(action.name);
        if (bad) return fail(`Cannot create the folder: ${bad}.`);
        await api.mkdir(action.dir, action.name);
        return done();
      }
      case 'ingest': {
        if (!offers(api, 'ingest')) return unavailable('add files');
        const skipped: ActionMessage[] = action.problems.map((p) => ({ level: 'error', text: `Could not read ${p.path}: ${p.error}` }));
        if (action.files.length === 0) {
          return { ok: skipped.length === 0, messages: skipped.length > 0 ? skipped : [{ level: 'warn', text: 'Nothing to add: the drop held no files.' }] };
        }
        const result = await api.ingest(action.dir, action.files);
        const failed: ActionMessage[] = result.failed.map((f) => ({ level: 'error', text: `Could not add ${f.path}: ${f.error}` }));
        const added: ActionMessage[] = result.added > 0 ? [{ level: 'info', text: `Added ${plural(result.added, 'file')} to ${action.dirPath}.` }] : [];
        return { ok: failed.length === 0 && skipped.length === 0, messages: [...added, ...skipped, ...failed] };
      }
    }
  } catch (err) {
    return fail(`${describe(action)} failed: ${errorText(err)}`);
  }
}

/** "Rename a.txt", for failure messages. */
function describe(action: FileAction): string {
  switch (action.type) {
    case 'download':
      return `Download of ${action.name}`;
    case 'rename':
      return `Renaming ${action.name} to ${action.to}`;
    case 'move':
      return `Moving ${action.name} to ${action.dirPath}`;
    case 'remove':
      return `Deleting ${action.name}`;
    case 'restore':
      return `Restoring ${action.name}`;
    case 'emptyTrash':
      return 'Emptying the trash';
    case 'mkdir':
      return `Creating folder ${action.name}`;
    case 'ingest':
      return `Adding ${plural(action.files.length, 'file')} to ${action.dirPath}`;
  }
}
