// The files panel. What it shows: rendered to static HTML (react-dom/server) and read back with
// small regexes, like the other panels. What its controls do: the hookless FilesView's element
// tree is walked to find a control and call its handler, as a click or a submit would.
import { createElement, isValidElement, type ReactElement, type ReactNode } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { FileRow, FilesSnapshot } from '../servers/stockholder/files-api.ts';
import { performFileAction, type FileAction } from './files/actions.ts';
import { FakeFilesApi } from './files/fake-files-api.ts';
import { FilesView, PAGE_TARGET, initialFilesUi, type FilesHandlers, type FilesUi } from './files/FilesView.tsx';
import { dirRow, fileRow, snapshotOf } from './files/fixtures.ts';
import { FilesPanel } from './FilesPanel.tsx';
import type { FilesState } from './useFiles.ts';

const MIB = 1024 * 1024;

const ROWS: FileRow[] = [
  dirRow('d1', '/docs'),
  fileRow('f1', '/docs/a.txt', { parent: 'd1', size: 1536, replicas: 3 }),
  fileRow('f2', '/docs/low.bin', { parent: 'd1', size: 5 * MIB, replicas: 1 }),
  dirRow('d2', '/docs/sub', { parent: 'd1' }),
  fileRow('f3', '/solo.txt', { replicas: 1, soleCopy: true }),
  fileRow('f4', '/big.iso', { size: 10 * MIB, local: false, progress: { direction: 'replicate', done: 4.2 * MIB, total: 10 * MIB, bytesPerSecond: 3.1 * MIB } }),
  fileRow('f5', '/stuck.mov', { progress: { direction: 'upload', done: 50, total: 200, bytesPerSecond: 0, paused: 'quota exceeded' } }),
  fileRow('f6', '/solo (conflict 1).txt', { conflictOf: 'f3' }),
  fileRow('t1', 'old.txt', { trashed: true }),
  dirRow('t2', 'gone', { trashed: true }),
  fileRow('t3', 'gone/in.txt', { parent: 't2', trashed: true }),
];

const files = (snapshot: FilesSnapshot | undefined, extra: Partial<FilesState> = {}): FilesState => ({ available: true, snapshot, error: undefined, ...extra });

type Recorded = [string, ...unknown[]];

/** Handlers that record what they were asked; `act` also runs the action against `api`. */
function handlers(api = new FakeFilesApi()) {
  const calls: Recorded[] = [];
  const on: FilesHandlers = {
    act: async (a: FileAction) => {
      calls.push(['act', a]);
      return (await performFileAction(api, a, { save: () => {} })).ok;
    },
    toggle: (id) => void calls.push(['toggle', id]),
    edit: (e) => void calls.push(['edit', e]),
    dragOver: (dir) => void calls.push(['dragOver', dir]),
    drop: (dir, dt) => void calls.push(['drop', dir, dt]),
    setTarget: (id) => void calls.push(['setTarget', id]),
    askEmptyTrash: (asking) => void calls.push(['askEmptyTrash', asking]),
    pick: (kind) => void calls.push(['pick', kind]),
    picked: () => void calls.push(['picked']),
    dismissMessages: () => void calls.push(['dismiss']),
  };
  return { api, calls, on };
}

const view = (state: FilesState, ui: Partial<FilesUi> = {}, on = handlers().on) => createElement(FilesView, { files: state, ui: { ...initialFilesUi, ...ui }, on });
const render = (state: FilesState, ui: Partial<FilesUi> = {}) => renderToStaticMarkup(view(state, ui));

const text = (html: string) => html.replace(/<[^>]+>/g, '').replace(/&#x27;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** Each <tr data-path> as its attributes, cell texts and html. */
function rowsOf(html: string) {
  return [...html.matchAll(/<tr class="([^"]*)" data-id="([^"]*)" data-path="([^"]*)" data-kind="([^"]*)" data-replicas="([^"]*)"[^>]*>(.*?)<\/tr>/g)].map((m) => ({
    classes: m[1]!,
    id: m[2]!,
    path: m[3]!,
    kind: m[4]!,
    replicas: Number(m[5]),
    cells: [...m[6]!.matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((c) => text(c[1]!)),
    html: m[0],
  }));
}

/** Every host element of a tree, expanding hookless function components by calling them. */
function elements(node: ReactNode): ReactElement<Record<string, any>>[] {
  if (Array.isArray(node)) return node.flatMap(elements);
  if (!isValidElement(node)) return [];
  const el = node as ReactElement<Record<string, any>>;
  if (typeof el.type === 'function') return elements((el.type as (p: unknown) => ReactNode)(el.props));
  return [el, ...elements(el.props.children as ReactNode)];
}

function byLabel(tree: ReactNode, label: string) {
  const found = elements(tree).filter((e) => e.props['aria-label'] === label);
  expect(found, `one element labelled ${label}`).toHaveLength(1);
  return found[0]!;
}

function byText(tree: ReactNode, type: string, label: string) {
  const found = elements(tree).filter((e) => e.type === type && e.props.children === label);
  expect(found, `one <${type}> "${label}"`).toHaveLength(1);
  return found[0]!;
}

/** A submit event of a form whose named fields hold `values`. */
function submitEvent(values: Record<string, string>) {
  let reset = false;
  const form = { elements: { namedItem: (n: string) => (n in values ? { value: values[n] } : null) }, reset: () => (reset = true) };
  return { event: { preventDefault: () => {}, currentTarget: form }, wasReset: () => reset };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('FilesView: what it shows', () => {
  const html = render(files(snapshotOf(ROWS)));
  const rows = rowsOf(html);
  const row = (path: string) => rows.find((r) => r.path === path)!;

  it('lists the live namespace as a tree, folders first, each row with its path, kind and replicas', () => {
    const live = rows.filter((r) => !r.html.includes('data-trashed'));
    expect(live.map((r) => [r.path, r.kind, r.replicas])).toEqual([
      ['/docs', 'dir', 0],
      ['/docs/sub', 'dir', 0],
      ['/docs/a.txt', 'file', 3],
      ['/docs/low.bin', 'file', 1],
      ['/big.iso', 'file', 2],
      ['/solo (conflict 1).txt', 'file', 2],
      ['/solo.txt', 'file', 1],
      ['/stuck.mov', 'file', 2],
    ]);
    expect(row('/docs/a.txt').html).toContain('padding-left:18px');
    expect(row('/docs').cells[1]).toBe('3 items');
    expect(html).toContain('<h2 id="files-heading">Files <span class="count muted">(6 files · 3 peers, 2 copies wanted)</span>');
  });

  it('shows sizes and "on N peers", highlighted below the replication factor', () => {
    expect(row('/docs/a.txt').cells.slice(1, 3)).toEqual(['1.5 KiB', 'on 3 peers']);
    expect(row('/docs/a.txt').html).not.toContain('file-replicas-low');
    expect(row('/docs/low.bin').cells.slice(1, 3)).toEqual(['5.0 MiB', 'on 1 peer']);
    expect(row('/docs/low.bin').html).toContain('class="file-replicas file-replicas-low"');
  });

  it('marks a sole copy "only here" and a conflict copy as such', () => {
    expect(row('/solo.txt').cells[0]).toBe('solo.txtonly here');
    expect(row('/solo.txt').classes).toContain('file-sole');
    expect(row('/solo.txt').html).toContain('data-sole-copy="true"');
    expect(row('/docs/a.txt').html).not.toContain('only here');
    const conflict = row('/solo (conflict 1).txt');
    expect(conflict.cells[0]).toBe('solo (conflict 1).txtconflict copy');
    expect(conflict.html).toContain('lost to solo.txt');
  });

  it('shows a transfer with its direction, percentage and speed, and why it is paused', () => {
    const big = row('/big.iso');
    expect(big.cells[3]).toBe('replicating 42% · 3.1 MiB/s');
    expect(big.html).toContain('role="progressbar"');
    expect(big.html).toContain('aria-valuenow="42"');
    expect(big.html).toContain('style="width:42%"');
    const stuck = row('/stuck.mov');
    expect(stuck.cells[3]).toBe('uploading 25%paused: quota exceeded');
    expect(stuck.html).toContain('aria-valuetext="25%, paused: quota exceeded"');
    expect(row('/docs/a.txt').cells[3]).toBe('');
  });

  it('labels every action with the entry it acts on', () => {
    for (const label of ['Download a.txt', 'Rename a.txt', 'Move a.txt', 'Delete a.txt', 'Rename docs', 'Collapse docs']) {
      expect(row(label.endsWith('docs') ? '/docs' : '/docs/a.txt').html).toContain(`aria-label="${label}"`);
    }
    expect(row('/docs').html).not.toContain('Download');
  });

  it('keeps the trash apart, with Restore on what was deleted and Empty trash', () => {
    const trash = rows.filter((r) => r.html.includes('data-trashed="true"'));
    expect(trash.map((r) => r.path)).toEqual(['gone', 'gone/in.txt', 'old.txt']);
    expect(trash[0]!.html).toContain('aria-label="Restore gone"');
    expect(trash[1]!.html).not.toContain('Restore'); // inside a deleted folder: restored with it
    expect(trash[2]!.html).toContain('aria-label="Restore old.txt"');
    for (const t of trash) expect(t.html).not.toContain('Delete');
    expect(html).toContain('Trash <span class="count muted">(2)</span>');
    expect(html).toContain('>Empty trash</button>');
  });

  it('shows the store, the sole-copy warning and the last notices', () => {
    const notices = Array.from({ length: 7 }, (_, i) => ({ at: 0, level: i === 6 ? ('error' as const) : ('info' as const), text: `notice ${i}` }));
    const out = render(files(snapshotOf(ROWS, { notices, store: { label: 'IndexedDB (shared with tab 2)', durable: false, usage: 5 * MIB, quota: 2048 * MIB } })));
    expect(text(out)).toContain('IndexedDB (shared with tab 2) · 5.0 MiB of 2.0 GiB used · not durable');
    expect(text(out)).toContain('1 file exists only in this tab');
    const shown = [...out.matchAll(/<li class="event sev-(\w+)"><time[^>]*>[^<]*<\/time><span class="sev-dot"[^>]*><\/span><span class="text">([^<]*)</g)].map((m) => [m[1], m[2]]);
    expect(shown).toEqual([['info', 'notice 2'], ['info', 'notice 3'], ['info', 'notice 4'], ['info', 'notice 5'], ['error', 'notice 6']]);
    expect(render(files(snapshotOf([fileRow('x', '/x')])))).not.toContain('only in this tab');
  });

  it('shows the panel messages (failures included) and the persistence answer', () => {
    const out = render(files(snapshotOf([])), {
      messages: [{ seq: 1, level: 'error', text: 'Renaming a.txt to b.txt failed: EEXIST' }],
      persist: 'may be evicted',
    });
    expect(out).toContain('<li class="event sev-error" role="alert"><span class="sev-dot" aria-hidden="true"></span><span class="text">Renaming a.txt to b.txt failed: EEXIST</span>');
    expect(text(out)).toContain('storage: may be evicted');
    expect(out).toContain('No files yet.');
    expect(text(render(files(snapshotOf([])), { persist: 'persistent' }))).toContain('storage: persistent');
  });

  it('says when there is no file system, when it fails, and while it waits', () => {
    expect(render(files(undefined, { available: false }))).toContain('offers no file system');
    expect(render(files(undefined, { error: 'boom' }))).toContain('The file system is not answering: boom');
    expect(render(files(undefined))).toContain('Waiting for the file system');
  });

  it('says where a drag would drop', () => {
    expect(text(render(files(snapshotOf(ROWS)), { dragOver: 'd2' }))).toContain('Drop to add to /docs/sub');
    expect(text(render(files(snapshotOf(ROWS)), { dragOver: PAGE_TARGET, target: 'd1' }))).toContain('Drop to add to /docs');
    expect(render(files(snapshotOf(ROWS)), { dragOver: 'd1' })).toMatch(/<tr class="file-row file-kind-dir drop-target" data-id="d1"/);
  });
});

describe('FilesView: what its controls do', () => {
  const state = files(snapshotOf(ROWS));

  it('downloads, deletes and restores the entry of the row, by id', async () => {
    const { api, on } = handlers();
    const tree = view(state, {}, on);
    byLabel(tree, 'Download a.txt').props.onClick();
    byLabel(tree, 'Delete low.bin').props.onClick();
    byLabel(tree, 'Restore gone').props.onClick();
    await settle();
    expect(api.calls).toEqual([['download', 'f1'], ['remove', 'f2'], ['restore', 't2']]);
  });

  it('renames through an inline form: the button opens it, submitting renames the row id', async () => {
    const { api, calls, on } = handlers();
    byLabel(view(state, {}, on), 'Rename a.txt').props.onClick();
    expect(calls).toEqual([['edit', { id: 'f1', mode: 'rename' }]]);
    const editing = view(state, { editing: { id: 'f1', mode: 'rename' } }, on);
    expect(byLabel(editing, 'New name for a.txt').props.defaultValue).toBe('a.txt');
    const form = elements(editing).find((e) => e.type === 'form' && e.props.className === 'file-form')!;
    form.props.onSubmit(submitEvent({ name: 'b.txt' }).event);
    await settle();
    expect(api.calls).toEqual([['rename', 'f1', 'b.txt']]);
  });

  it('moves through a select of the other folders (never into itself)', async () => {
    const { api, on } = handlers();
    const editing = view(state, { editing: { id: 'd2', mode: 'move' } }, on);
    const select = byLabel(editing, 'Destination for sub');
    const options = elements(select).filter((e) => e.type === 'option').map((e) => [e.props.value, e.props.children]);
    expect(options).toEqual([['root', '/']]); // not /docs (already there), not /docs/sub (itself)
    const fileMove = view(state, { editing: { id: 'f3', mode: 'move' } }, on);
    expect(elements(byLabel(fileMove, 'Destination for solo.txt')).filter((e) => e.type === 'option').map((e) => e.props.value)).toEqual(['d1', 'd2']);
    const form = elements(fileMove).find((e) => e.type === 'form' && e.props.className === 'file-form')!;
    form.props.onSubmit(submitEvent({ dir: 'd2' }).event);
    await settle();
    expect(api.calls).toEqual([['move', 'f3', 'd2']]);
  });

  it('creates a folder in the target folder and clears the name when it worked', async () => {
    const { api, on } = handlers();
    const tree = view(state, { target: 'd1' }, on);
    const form = elements(tree).find((e) => e.type === 'form' && e.props.className === 'files-mkdir')!;
    const submit = submitEvent({ name: 'new' });
    form.props.onSubmit(submit.event);
    await settle();
    expect(api.calls).toEqual([['mkdir', 'd1', 'new']]);
    expect(submit.wasReset()).toBe(true);
  });

  it('falls back to the top level when the target folder is gone', async () => {
    const { api, on } = handlers();
    const tree = view(state, { target: 't2' }, on); // a folder in the trash
    expect(byLabel(tree, 'Target folder').props.value).toBe('root');
    elements(tree).find((e) => e.type === 'form' && e.props.className === 'files-mkdir')!.props.onSubmit(submitEvent({ name: 'n' }).event);
    await settle();
    expect(api.calls).toEqual([['mkdir', 'root', 'n']]);
  });

  it('empties the trash only after a confirmation', async () => {
    const { api, calls, on } = handlers();
    byText(view(state, {}, on), 'button', 'Empty trash').props.onClick();
    expect(calls).toEqual([['askEmptyTrash', true]]);
    expect(api.calls).toEqual([]);
    byText(view(state, { confirmEmpty: true }, on), 'button', 'Delete forever').props.onClick();
    await settle();
    expect(api.calls).toEqual([['emptyTrash']]);
  });

  it('collapses and expands folders', () => {
    const { calls, on } = handlers();
    byLabel(view(state, {}, on), 'Collapse docs').props.onClick();
    expect(calls).toEqual([['toggle', 'd1']]);
    const collapsed = renderToStaticMarkup(view(state, { collapsed: new Set(['d1']) }, on));
    expect(collapsed).toContain('aria-label="Expand docs"');
    expect(rowsOf(collapsed).map((r) => r.path)).not.toContain('/docs/a.txt');
  });

  it('takes drops onto a folder row into that folder, and onto a file row into its folder', () => {
    const { calls, on } = handlers();
    const tree = view(state, {}, on);
    const rowEl = (path: string) => elements(tree).find((e) => e.type === 'tr' && e.props['data-path'] === path)!;
    const dt = { types: ['Files'], dropEffect: 'none' };
    let stopped = 0;
    const ev = { preventDefault: () => {}, stopPropagation: () => stopped++, dataTransfer: dt };
    rowEl('/docs/sub').props.onDragOver(ev);
    rowEl('/docs/sub').props.onDrop(ev);
    rowEl('/docs/a.txt').props.onDrop(ev);
    rowEl('/solo.txt').props.onDrop(ev);
    expect(calls).toEqual([
      ['dragOver', 'd2'],
      ['drop', 'd2', dt],
      ['drop', 'd1', dt],
      ['drop', 'root', dt],
    ]);
    expect(stopped).toBe(4); // the page-wide drop handler must not take them too
    expect(dt.dropEffect).toBe('copy');
    expect(rowEl('gone').props.onDrop).toBeUndefined(); // nothing drops into the trash
  });

  it('opens the pickers from the Add buttons', () => {
    const { calls, on } = handlers();
    const tree = view(state, {}, on);
    byText(tree, 'button', 'Add files').props.onClick();
    byText(tree, 'button', 'Add folder').props.onClick();
    expect(calls).toEqual([['pick', 'files'], ['pick', 'folder']]);
    expect(byLabel(tree, 'Folder to add').props.webkitdirectory).toBe('');
    expect(byLabel(tree, 'Files to add').props.multiple).toBe(true);
  });
});

describe('FilesPanel', () => {
  it('renders the view for the state it is given', () => {
    const html = renderToStaticMarkup(createElement(FilesPanel, { api: new FakeFilesApi(), files: files(snapshotOf(ROWS)) }));
    expect(rowsOf(html).map((r) => r.path)).toContain('/docs/a.txt');
    expect(html).toContain('aria-labelledby="files-heading"');
  });
});
