// The files the shell works on: the same layout a process sees — `/` the sample files
// (read-only), `/cluster` the cluster filesystem — behind ls, cat, cp, mv, rm and mkdir.
// Paths are absolute (the terminal resolves them against its working directory). Errors are
// one-line messages naming the path: "/cluster/x: no such file". Host-agnostic.
import { SAMPLE_FILES } from '../../kernel/process/sample-files.ts';
import { Errno, FsError } from '../../kernel/wasi/errno.ts';
import { memfsFrom, type MemFsTree } from '../../kernel/wasi/memfs.ts';
import { Namespace, Vfs, type FileSystem, type Stat } from '../../kernel/wasi/vfs.ts';
import { normalizePath } from '../../ui/terminal/commands.ts';

/** One entry as the terminal's ls shows it. */
export interface ShellDirEntry {
  name: string;
  kind: 'file' | 'dir';
  /** Bytes; files only. */
  size?: number;
}

/** cp moves data in pieces of this size: a file is never held whole in memory. */
export const COPY_PIECE_BYTES = 1 << 20;

/** What an errno means to someone at the terminal. */
const REASONS: Partial<Record<number, string>> = {
  [Errno.NOENT]: 'no such file',
  [Errno.NOTDIR]: 'not a directory',
  [Errno.ISDIR]: 'is a directory',
  [Errno.EXIST]: 'already exists',
  [Errno.NOTEMPTY]: 'directory not empty',
  [Errno.ROFS]: 'read-only',
  [Errno.BUSY]: 'is a mount point',
  [Errno.XDEV]: 'cannot move between filesystems (use cp)',
  [Errno.NOSPC]: 'no space left',
  [Errno.FBIG]: 'file too large',
  [Errno.NAMETOOLONG]: 'name too long',
  [Errno.LOOP]: 'too many symbolic links',
};

/** An Error whose message is `<path>: <reason>`. */
function failure(path: string, err: unknown): Error {
  if (err instanceof FsError) {
    const reason = REASONS[err.errno];
    if (reason !== undefined) return new Error(`${path}: ${reason}`);
  }
  return new Error(`${path}: ${err instanceof Error ? err.message : String(err)}`);
}

/** Runs `f`, turning a filesystem error into one about `path`. */
async function about<T>(path: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw failure(path, err);
  }
}

function isErrno(err: unknown, errno: number): boolean {
  return err instanceof FsError && err.errno === errno;
}

function join(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function entry(name: string, st: Stat): ShellDirEntry {
  return st.type === 'directory' ? { name, kind: 'dir' } : { name, kind: 'file', size: st.size };
}

export class ShellFiles {
  private readonly vfs: Vfs;

  /** `cluster`: the cluster filesystem, mounted at /cluster (without it /cluster is empty and read-only). */
  constructor(cluster?: FileSystem, tree: MemFsTree = SAMPLE_FILES) {
    const ns = new Namespace();
    ns.mount('/', memfsFrom(tree), { readonly: true });
    if (cluster) ns.mount('/cluster', cluster);
    this.vfs = new Vfs(ns);
  }

  /** What is at `path` (symlinks followed). */
  async stat(path: string): Promise<ShellDirEntry> {
    const p = normalizePath(path);
    return entry(baseName(p) || '/', await about(p, () => this.vfs.stat(p)));
  }

  /** A directory's entries, or the file itself when `path` is a file. */
  async ls(path: string): Promise<ShellDirEntry[]> {
    const p = normalizePath(path);
    const st = await about(p, () => this.vfs.stat(p));
    if (st.type !== 'directory') return [entry(baseName(p), st)];
    const entries = await about(p, () => this.vfs.readdir(p));
    const out: ShellDirEntry[] = [];
    for (const e of entries) {
      // stat each entry: symlinks show what they point to, and files their size
      const child = await this.vfs.stat(join(p, e.name)).catch(() => undefined);
      out.push(child ? entry(e.name, child) : { name: e.name, kind: e.type === 'directory' ? 'dir' : 'file' });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** A file's bytes. */
  async cat(path: string): Promise<Uint8Array> {
    const p = normalizePath(path);
    const st = await about(p, () => this.vfs.stat(p));
    if (st.type === 'directory') throw failure(p, new FsError(Errno.ISDIR));
    return about(p, () => this.vfs.readFile(p));
  }

  /** Where `src` goes when given `dst`: into `dst` when it is a directory. */
  private async target(src: string, dst: string): Promise<string> {
    let st: Stat | undefined;
    try {
      st = await this.vfs.stat(dst);
    } catch (err) {
      if (!isErrno(err, Errno.NOENT)) throw failure(dst, err);
    }
    return st?.type === 'directory' ? join(dst, baseName(src)) : dst;
  }

  /** Copies a file, in pieces of COPY_PIECE_BYTES. `dst` may be a directory to copy into. */
  async cp(src: string, dst: string): Promise<void> {
    const from = normalizePath(src);
    const st = await about(from, () => this.vfs.stat(from));
    if (st.type === 'directory') throw new Error(`${from}: is a directory (cp copies files)`);
    const to = await this.target(from, normalizePath(dst));
    const dstStat = await this.vfs.stat(to).catch(() => undefined);
    if (dstStat && dstStat.ino === st.ino && (await this.sameMount(from, to))) throw new Error(`${to}: is the same file as ${from}`);
    const input = await about(from, () => this.vfs.open(from, { read: true }));
    try {
      const output = await about(to, () => this.vfs.open(to, { write: true, create: true, truncate: true }));
      try {
        for (;;) {
          const piece = await about(from, () => input.read(COPY_PIECE_BYTES));
          if (piece.length === 0) break;
          await about(to, () => output.write(piece));
        }
      } finally {
        await output.close();
      }
    } finally {
      await input.close();
    }
  }

  private async sameMount(a: string, b: string): Promise<boolean> {
    const mountOf = (p: string) =>
      this.vfs.ns
        .mounts()
        .map((m) => m.path)
        .filter((m) => m === '/' || p === m || p.startsWith(m + '/'))
        .sort((x, y) => y.length - x.length)[0];
    return mountOf(a) === mountOf(b);
  }

  /** Moves or renames; `dst` may be a directory to move into. */
  async mv(src: string, dst: string): Promise<void> {
    const from = normalizePath(src);
    await about(from, () => this.vfs.lstat(from));
    const to = await this.target(from, normalizePath(dst));
    if (to === from) return;
    if (to.startsWith(from + '/')) throw new Error(`${from}: cannot move a directory into itself`);
    try {
      await this.vfs.rename(from, to);
    } catch (err) {
      // the source was there a moment ago: what went wrong is about the destination, unless it is
      // the source's own filesystem that refuses (read-only, a mount point)
      if (isErrno(err, Errno.ROFS) || isErrno(err, Errno.BUSY) || isErrno(err, Errno.XDEV)) {
        throw failure(isErrno(err, Errno.XDEV) ? to : from, err);
      }
      throw failure(to, err);
    }
  }

  /** Removes a file, or with `recursive` a directory and everything in it. */
  async rm(path: string, recursive = false): Promise<void> {
    const p = normalizePath(path);
    if (p === '/') throw new Error('/: cannot remove the root');
    const st = await about(p, () => this.vfs.lstat(p));
    if (st.type !== 'directory') {
      await about(p, () => this.vfs.unlink(p));
      return;
    }
    if (this.vfs.ns.get(p)) throw new Error(`${p}: is a mount point`);
    if (!recursive) throw new Error(`${p}: is a directory (use rm -r)`);
    await this.removeTree(p);
  }

  private async removeTree(dir: string): Promise<void> {
    for (const e of await about(dir, () => this.vfs.readdir(dir))) {
      const p = join(dir, e.name);
      if (e.type === 'directory') await this.removeTree(p);
      else await about(p, () => this.vfs.unlink(p));
    }
    await about(dir, () => this.vfs.rmdir(dir));
  }

  /** Creates a directory; with `parents`, the missing ones above it too, and no error if it exists. */
  async mkdir(path: string, parents = false): Promise<void> {
    const p = normalizePath(path);
    if (!parents) {
      await about(p, () => this.vfs.mkdir(p));
      return;
    }
    // Walked here rather than by Vfs.mkdir: to name the component that failed, and to pass
    // directories that exist on a read-only mount (mkdir there says EROFS, not EEXIST).
    let prefix = '';
    for (const c of p.split('/').filter((x) => x !== '')) {
      prefix += '/' + c;
      const at = prefix;
      let st: Stat | undefined;
      try {
        st = await this.vfs.stat(at);
      } catch (err) {
        if (!isErrno(err, Errno.NOENT)) throw failure(at, err);
      }
      if (st === undefined) {
        try {
          await this.vfs.mkdir(at);
          continue;
        } catch (err) {
          // made by someone else meanwhile (the cluster filesystem is shared): fine if a directory
          if (!isErrno(err, Errno.EXIST)) throw failure(at, err);
          st = await about(at, () => this.vfs.stat(at));
        }
      }
      if (st.type !== 'directory') throw failure(at, new FsError(Errno.NOTDIR));
    }
  }
}
