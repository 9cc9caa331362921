import { describe, expect, it } from 'vitest';
import { invalidName, performFileAction, type FileAction } from './actions.ts';
import { FakeFilesApi } from './fake-files-api.ts';
import { saveBlob, type SaveDeps } from './save-blob.ts';

function setup() {
  const api = new FakeFilesApi();
  const saved: [string, Blob][] = [];
  const deps = { save: (blob: Blob, name: string) => void saved.push([name, blob]) };
  return { api, saved, deps, run: (a: FileAction) => performFileAction(api, a, deps) };
}

describe('performFileAction', () => {
  it('calls the api with the ids of the entry and the folder', async () => {
    const { api, run } = setup();
    await run({ type: 'rename', id: 'f1', name: 'a.txt', to: 'b.txt' });
    await run({ type: 'move', id: 'f1', name: 'a.txt', dir: 'd9', dirPath: '/docs' });
    await run({ type: 'remove', id: 'f2', name: 'x' });
    await run({ type: 'restore', id: 't1', name: 'y' });
    await run({ type: 'emptyTrash' });
    await run({ type: 'mkdir', dir: 'd9', name: 'new' });
    expect(api.calls).toEqual([
      ['rename', 'f1', 'b.txt'],
      ['move', 'f1', 'd9'],
      ['remove', 'f2'],
      ['restore', 't1'],
      ['emptyTrash'],
      ['mkdir', 'd9', 'new'],
    ]);
  });

  it('saves a download under the file name', async () => {
    const { api, saved, run } = setup();
    expect(await run({ type: 'download', id: 'f1', name: 'a.txt' })).toEqual({ ok: true, messages: [] });
    expect(api.calls).toEqual([['download', 'f1']]);
    expect(saved.map(([name]) => name)).toEqual(['a.txt']);
    expect(await saved[0]![1].text()).toBe('bytes of f1');
  });

  it('turns a rejection into an error message instead of throwing', async () => {
    const { api, run } = setup();
    api.failing.rename = new Error('EEXIST: b.txt exists');
    expect(await run({ type: 'rename', id: 'f1', name: 'a.txt', to: 'b.txt' })).toEqual({
      ok: false,
      messages: [{ level: 'error', text: 'Renaming a.txt to b.txt failed: EEXIST: b.txt exists' }],
    });
    api.failing.download = new Error('no live peer holds block 3');
    const out = await run({ type: 'download', id: 'f1', name: 'a.txt' });
    expect(out.ok).toBe(false);
    expect(out.messages[0]!.text).toBe('Download of a.txt failed: no live peer holds block 3');
  });

  it('refuses bad names without asking the api, and skips a rename to the same name', async () => {
    const { api, run } = setup();
    expect((await run({ type: 'mkdir', dir: 'root', name: '  ' })).messages[0]!.text).toBe('Cannot create the folder: a name cannot be empty.');
    expect((await run({ type: 'rename', id: 'f', name: 'a', to: 'x/y' })).ok).toBe(false);
    expect((await run({ type: 'rename', id: 'f', name: 'a', to: 'a' })).ok).toBe(true);
    expect(api.calls).toEqual([]);
    expect(invalidName('..')).toBe('".." is not a name');
    expect(invalidName('ok.txt')).toBeUndefined();
  });

  it('ingests into the folder and reports both what it added and every item that failed', async () => {
    const { api, run } = setup();
    const files = [
      { path: 'a.txt', file: new Blob(['a']) },
      { path: 'dir/b.txt', file: new Blob(['b']) },
    ];
    api.ingestResult = { added: 1, failed: [{ path: 'dir/b.txt', error: 'quota exceeded' }] };
    const out = await run({ type: 'ingest', dir: 'd1', dirPath: '/docs', files, problems: [{ path: 'c.bin', error: 'NotReadableError' }] });
    expect(api.calls).toEqual([['ingest', 'd1', files]]);
    expect((api.calls[0]![2] as typeof files)[0]!.file).toBe(files[0]!.file);
    expect(out).toEqual({
      ok: false,
      messages: [
        { level: 'info', text: 'Added 1 file to /docs.' },
        { level: 'error', text: 'Could not read c.bin: NotReadableError' },
        { level: 'error', text: 'Could not add dir/b.txt: quota exceeded' },
      ],
    });
  });

  it('does not call ingest for a drop without files', async () => {
    const { api, run } = setup();
    const out = await run({ type: 'ingest', dir: 'root', dirPath: '/', files: [], problems: [] });
    expect(api.calls).toEqual([]);
    expect(out.messages).toEqual([{ level: 'warn', text: 'Nothing to add: the drop held no files.' }]);
  });

  it('says the file system is missing when the api lacks the method', async () => {
    const out = await performFileAction({}, { type: 'remove', id: 'f', name: 'a.txt' }, { save: () => {} });
    expect(out).toEqual({ ok: false, messages: [{ level: 'error', text: "Cannot delete a.txt: this tab's kernel has no file system." }] });
  });
});

describe('saveBlob', () => {
  it('clicks a hidden <a download> on an object URL and revokes it only later', () => {
    const events: string[] = [];
    let deferred: (() => void) | undefined;
    const a = {
      href: '',
      download: '',
      style: { display: '' },
      click: () => events.push(`click ${a.href} as ${a.download}`),
      remove: () => events.push('remove'),
    };
    const deps = {
      document: { createElement: () => a, body: { append: () => events.push('append') } },
      urls: { createObjectURL: () => 'blob:x', revokeObjectURL: (u: string) => events.push(`revoke ${u}`) },
      later: (fn: () => void) => (deferred = fn),
    } as unknown as SaveDeps;
    saveBlob(new Blob(['hi']), 'a.txt', deps);
    expect(events).toEqual(['append', 'click blob:x as a.txt', 'remove']);
    deferred!();
    expect(events.at(-1)).toBe('revoke blob:x');
  });
});
