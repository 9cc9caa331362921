// The files the shell's ls and cat show: the sample files every process sees at `/`, until the
// Stockholder mounts the cluster filesystem. Read-only here; host-agnostic.
import { SAMPLE_FILES } from '../../kernel/process/sample-files.ts';
import { Errno, FsError } from '../../kernel/wasi/errno.ts';
import { memfsFrom, type MemFsTree } from '../../kernel/wasi/memfs.ts';
import { Namespace, Vfs } from '../../kernel/wasi/vfs.ts';
import { normalizePath } from '../../ui/terminal/commands.ts';

/** One entry as the terminal's ls shows it. */
export interface ShellDirEntry {
  name: string;
  kind: 'file' | 'dir';
  /** Bytes; files only. */
  size?: number;
}

export class ShellFiles {
  private readonly vfs: Vfs;

  constructor(tree: MemFsTree = SAMPLE_FILES) {
    const ns = new Namespace();
    ns.mount('/', memfsFrom(tree), { readonly: true });
    this.vfs = new Vfs(ns);
  }

  /** A directory's entries, or the file itself when `path` is a file. */
  async ls(path: string): Promise<ShellDirEntry[]> {
    const p = normalizePath(path);
    const st = await this.stat(p);
    if (st.type !== 'directory') return [{ name: p.slice(p.lastIndexOf('/') + 1), kind: 'file', size: st.size }];
    const entries = await this.vfs.readdir(p);
    const out: ShellDirEntry[] = [];
    for (const e of entries) {
      if (e.type === 'directory') {
        out.push({ name: e.name, kind: 'dir' });
      } else {
        const child = await this.vfs.stat(`${p === '/' ? '' : p}/${e.name}`).catch(() => undefined);
        out.push(child && child.type === 'directory' ? { name: e.name, kind: 'dir' } : { name: e.name, kind: 'file', ...(child ? { size: child.size } : {}) });
      }
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** A file's bytes. */
  async cat(path: string): Promise<Uint8Array> {
    const p = normalizePath(path);
    const st = await this.stat(p);
    if (st.type === 'directory') throw new Error(`${p}: is a directory`);
    return this.vfs.readFile(p);
  }

  private async stat(p: string) {
    try {
      return await this.vfs.stat(p);
    } catch (err) {
      if (err instanceof FsError && (err.errno === Errno.NOENT || err.errno === Errno.NOTDIR)) throw new Error(`no such file: ${p}`);
      throw new Error(`${p}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
