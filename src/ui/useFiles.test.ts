import { describe, expect, it } from 'vitest';
import type { FilesSnapshot } from '../servers/stockholder/files-api.ts';
import { FakeFilesApi } from './files/fake-files-api.ts';
import { snapshotOf } from './files/fixtures.ts';
import { watchFiles } from './useFiles.ts';

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('watchFiles', () => {
  it('passes every snapshot on, then unwatches with the id it got', async () => {
    const api = new FakeFilesApi();
    const got: FilesSnapshot[] = [];
    const stop = watchFiles(api, (s) => got.push(s), () => {});
    await settle();
    const [id] = [...api.listeners.keys()];
    const s = snapshotOf([]);
    api.listeners.get(id!)!(s);
    expect(got).toEqual([s]);
    stop();
    await settle();
    expect(api.calls).toEqual([['watchFiles'], ['unwatchFiles', id]]);
    expect(api.listeners.size).toBe(0);
  });

  it('unwatches even when stopped before the watch id came back, and drops late snapshots', async () => {
    const api = new FakeFilesApi();
    const got: FilesSnapshot[] = [];
    const stop = watchFiles(api, (s) => got.push(s), () => {});
    const listener = [...api.listeners.values()][0];
    stop();
    listener?.(snapshotOf([]));
    await settle();
    expect(api.calls).toEqual([['watchFiles'], ['unwatchFiles', 7]]);
    expect(got).toEqual([]);
  });

  it('reports a failed watch, and does nothing without watchFiles', async () => {
    const api = new FakeFilesApi();
    api.failing.watchFiles = new Error('no stockholder');
    const errors: string[] = [];
    watchFiles(api, () => {}, (e) => errors.push(e));
    await settle();
    expect(errors).toEqual(['no stockholder']);
    expect(() => watchFiles({}, () => {}, () => {})()).not.toThrow();
  });
});
