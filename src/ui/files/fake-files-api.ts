// A FilesApi for the panel's tests: records every call; answers can be replaced per method.
import type { DroppedFile, FilesApi, FilesSnapshot } from '../../servers/stockholder/files-api.ts';

export type Call = [method: keyof FilesApi, ...args: unknown[]];

export class FakeFilesApi implements FilesApi {
  calls: Call[] = [];
  listeners = new Map<number, (s: FilesSnapshot) => void>();
  nextId = 7;
  ingestResult: { added: number; failed: { path: string; error: string }[] } | undefined;
  /** Makes the named method reject with this error. */
  failing: Partial<Record<keyof FilesApi, Error>> = {};

  private async record<T>(method: keyof FilesApi, args: unknown[], answer: () => T): Promise<T> {
    this.calls.push([method, ...args]);
    const err = this.failing[method];
    if (err) throw err;
    return answer();
  }

  watchFiles(listener: (s: FilesSnapshot) => void) {
    return this.record('watchFiles', [], () => {
      const id = this.nextId++;
      this.listeners.set(id, listener);
      return id;
    });
  }
  unwatchFiles(id: number) {
    return this.record('unwatchFiles', [id], () => void this.listeners.delete(id));
  }
  ingest(dir: string, files: DroppedFile[]) {
    return this.record('ingest', [dir, files], () => this.ingestResult ?? { added: files.length, failed: [] });
  }
  download(id: string) {
    return this.record('download', [id], () => new Blob([`bytes of ${id}`]));
  }
  mkdir(dir: string, name: string) {
    return this.record('mkdir', [dir, name], () => `new-${name}`);
  }
  rename(id: string, name: string) {
    return this.record('rename', [id, name], () => undefined);
  }
  move(id: string, dir: string) {
    return this.record('move', [id, dir], () => undefined);
  }
  remove(id: string) {
    return this.record('remove', [id], () => undefined);
  }
  restore(id: string) {
    return this.record('restore', [id], () => undefined);
  }
  emptyTrash() {
    return this.record('emptyTrash', [], () => undefined);
  }
}
