// The files panel's API (FilesApi) over this peer's Stockholder. Host-agnostic: the browser's
// kernel worker exposes it over comlink; tests call it directly.
import type { DroppedFile, FilesApi, FilesSnapshot } from '../../servers/stockholder/files-api.ts';
import { readManifest, type ByteSource, type StockholderServer } from '../../servers/stockholder/stockholder.ts';
import { BLOCK_SIZE } from '../../servers/stockholder/types.ts';

/** A dropped Blob read piece by piece: only one block of it is ever in memory. */
export function blobSource(blob: Blob): ByteSource {
  return {
    size: blob.size,
    read: async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer()),
  };
}

export function createFilesService(sh: StockholderServer): FilesApi {
  const entry = (id: string) => {
    const e = sh.model.get(id);
    if (e === undefined) throw new Error(`no such file or folder (${id})`);
    return e;
  };
  return {
    async watchFiles(listener: (s: FilesSnapshot) => void) {
      return sh.watch(listener);
    },
    async unwatchFiles(id: number) {
      sh.unwatch(id);
    },
    async ingest(dir: string, files: DroppedFile[]) {
      return sh.ingest(
        dir,
        files.map((f) => ('file' in f ? { path: f.path, source: blobSource(f.file) } : { path: f.path })),
      );
    },
    async download(id: string) {
      await sh.ready;
      const e = entry(id);
      if (e.kind !== 'file' || e.manifest === undefined) throw new Error(`${e.name} is not a file`);
      // Folded into a Blob every 16 blocks: the browser keeps Blob bytes outside the JS heap
      // (on disk when large), so a big download never sits in this worker's memory.
      let blob = new Blob([]);
      let parts: BlobPart[] = [];
      for (let at = 0; at < e.manifest.size; at += BLOCK_SIZE) {
        parts.push((await readManifest(sh, e.manifest, at, BLOCK_SIZE)) as Uint8Array<ArrayBuffer>);
        if (parts.length === 16) {
          blob = new Blob([blob, ...parts]);
          parts = [];
        }
      }
      return new Blob([blob, ...parts]);
    },
    async mkdir(dir: string, name: string) {
      const [op] = await sh.apply((m, wall) => {
        if (m.lookup(dir, name)) throw new Error(`${name} already exists`);
        return m.mkdir(dir, name, wall);
      });
      return (op!.body as { child: string }).child;
    },
    async rename(id: string, name: string) {
      await sh.apply((m, wall) => {
        const e = entry(id);
        if (m.lookup(e.parent, name)) throw new Error(`${name} already exists`);
        return m.move(id, e.parent, name, wall);
      });
    },
    async move(id: string, dir: string) {
      await sh.apply((m, wall) => {
        const e = entry(id);
        if (m.lookup(dir, e.name)) throw new Error(`${e.name} already exists there`);
        return m.move(id, dir, e.name, wall);
      });
    },
    async remove(id: string) {
      await sh.apply((m, wall) => (entry(id).conflictOf !== undefined ? m.dismiss(id, wall) : m.remove(id, wall)));
    },
    async restore(id: string) {
      await sh.apply((m, wall) => m.restore(id, wall));
    },
    async emptyTrash() {
      await sh.apply((m, wall) => m.emptyTrash(wall));
    },
  };
}
