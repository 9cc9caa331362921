// A FileSystem backed by a directory of the host (node:fs/promises), for mounting into a
// process's namespace on a Node peer.
//
// Confinement: node ids name paths relative to the root, built only from single names the VFS
// looked up (never `.`, `..`, or containing `/`). Symlinks are never followed by the host: the
// VFS reads them (readlink) and resolves them itself, inside the namespace, so a link to
// `/etc/passwd` or `../../x` cannot reach outside. Every operation also checks, with realpath,
// that the directory it acts in still lies inside the root (a directory swapped for a symlink
// on the host afterwards is refused), and files are opened with O_NOFOLLOW.
//
// Node ids are strings, so an fd table naming them stays serializable: a directory or symlink is
// its relative path, a regular file is `path NUL inode:birthtime` — its identity, so a file
// replaced at the same path is a different node (ESTALE for the old one), even when the host
// reuses the inode number. While an fd holds a regular file
// (retain) the mount keeps a host descriptor open and reads, writes and stats through it: the
// file stays usable after it is unlinked or renamed, as on POSIX. Without one, each operation
// opens the path, acts and closes. Times are set with microsecond precision (node:fs's limit).

import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Errno, FsError, fsError } from '../../kernel/wasi/errno.ts';
import type { DirEntry, FileSystem, FileType, Lookup, NodeId, Stat } from '../../kernel/wasi/vfs.ts';

export interface HostFsOptions {
  /** Largest single read buffer (default 16 MiB; a short read is always allowed). */
  maxRead?: number;
}

interface StatLike {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
}

function fileType(st: StatLike): FileType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  if (st.isSocket()) return 'socket';
  return 'unknown';
}

/** A Node error as an FsError (errno by code; EIO for what WASI cannot say). */
function toFsError(err: unknown): unknown {
  if (err instanceof FsError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('E')) return err;
  const name = code === 'EOPNOTSUPP' ? 'NOTSUP' : code === 'EWOULDBLOCK' ? 'AGAIN' : code.slice(1);
  const errno = (Errno as Record<string, number>)[name];
  return new FsError(errno ?? Errno.IO, (err as Error).message);
}

async function mapErrors<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw toFsError(err);
  }
}

/**
 * fs.utimes takes seconds as a double and the host truncates it to microseconds: pass the middle
 * of the microsecond so rounding error cannot land in the one before.
 */
function seconds(ns: bigint): number {
  return (Number(ns / 1000n) + 0.5) / 1e6;
}

interface Node {
  rel: string;
  /** Regular files: the identity the id was made for, `inode:birthtimeNs`. */
  ident?: string;
}

interface IdentStat {
  ino: bigint;
  birthtimeNs: bigint;
}

const ident = (st: IdentStat): string => `${st.ino}:${st.birthtimeNs}`;

interface Held {
  refs: number;
  /** A descriptor for the file; undefined when it could not be opened. */
  handle: Promise<{ fh: fs.FileHandle; writable: boolean } | undefined>;
}

export class HostFs implements FileSystem {
  readonly root: NodeId = '';
  private readonly maxRead: number;
  private readonly held = new Map<string, Held>();

  private constructor(
    /** The real path of the host directory (symlinks resolved). */
    readonly hostRoot: string,
    options: HostFsOptions,
  ) {
    this.maxRead = options.maxRead ?? 16 << 20;
  }

  /** Mount the host directory `dir` (which must exist). */
  static async open(dir: string, options: HostFsOptions = {}): Promise<HostFs> {
    const real = await fs.realpath(dir);
    const st = await fs.stat(real);
    if (!st.isDirectory()) throw new Error(`not a directory: ${dir}`);
    return new HostFs(real, options);
  }

  /** Host descriptors held for open fds. */
  get heldCount(): number {
    return this.held.size;
  }

  // ───────────────────────────── ids and confinement ─────────────────────────────

  private static checkName(name: string): void {
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
      throw fsError('INVAL', `bad name ${JSON.stringify(name)}`);
    }
  }

  private static id(rel: string, type: FileType, st: IdentStat): string {
    return type === 'file' ? `${rel}\0${ident(st)}` : rel;
  }

  /** Parse a node id (ESTALE for anything this mount could not have made). */
  private node(id: NodeId): Node {
    if (typeof id !== 'string') throw fsError('STALE');
    const nul = id.indexOf('\0');
    const rel = nul < 0 ? id : id.slice(0, nul);
    let identity: string | undefined;
    if (nul >= 0) {
      identity = id.slice(nul + 1);
      if (!/^\d+:\d+$/.test(identity)) throw fsError('STALE');
    }
    if (rel !== '') {
      for (const c of rel.split('/')) {
        if (c === '' || c === '.' || c === '..') throw fsError('STALE');
      }
    }
    return identity === undefined ? { rel } : { rel, ident: identity };
  }

  private child(dir: NodeId, name: string): string {
    HostFs.checkName(name);
    const d = this.node(dir).rel;
    return d === '' ? name : `${d}/${name}`;
  }

  private inside(real: string): boolean {
    return real === this.hostRoot || real.startsWith(this.hostRoot + path.sep);
  }

  /**
   * The host path of a relative path, after checking that the directory holding it resolves
   * inside the root (`self`: the path itself too, for directories we list or look into).
   */
  private async host(rel: string, self = false): Promise<string> {
    const abs = rel === '' ? this.hostRoot : path.join(this.hostRoot, rel);
    const check = self || rel === '' ? abs : path.dirname(abs);
    let real: string;
    try {
      real = await fs.realpath(check);
    } catch (err) {
      throw toFsError(err);
    }
    if (!this.inside(real)) throw fsError('NOTCAPABLE', 'host path leaves the mount');
    return abs;
  }

  /** lstat of a node's path, checking it is still the same file. */
  private async lstatNode(n: Node): Promise<import('node:fs').BigIntStats> {
    const abs = await this.host(n.rel);
    const st = await mapErrors(() => fs.lstat(abs, { bigint: true }));
    if (n.ident !== undefined && ident(st) !== n.ident) throw fsError('STALE', 'file was replaced');
    return st;
  }

  private async heldHandle(id: NodeId): Promise<{ fh: fs.FileHandle; writable: boolean } | undefined> {
    return typeof id === 'string' ? this.held.get(id)?.handle : undefined;
  }

  // ───────────────────────────── open-fd bookkeeping ─────────────────────────────

  private async openHeld(n: Node): Promise<{ fh: fs.FileHandle; writable: boolean } | undefined> {
    try {
      const abs = await this.host(n.rel);
      let held: { fh: fs.FileHandle; writable: boolean };
      try {
        held = { fh: await fs.open(abs, constants.O_RDWR | constants.O_NOFOLLOW), writable: true };
      } catch {
        held = { fh: await fs.open(abs, constants.O_RDONLY | constants.O_NOFOLLOW), writable: false };
      }
      if (ident(await held.fh.stat({ bigint: true })) !== n.ident) {
        await held.fh.close();
        return undefined;
      }
      return held;
    } catch {
      return undefined;
    }
  }

  retain(id: NodeId): void {
    if (typeof id !== 'string') return;
    const h = this.held.get(id);
    if (h) {
      h.refs++;
      return;
    }
    const n = this.node(id);
    if (n.ident === undefined) return; // directories and symlinks work by path
    this.held.set(id, { refs: 1, handle: this.openHeld(n) });
  }

  release(id: NodeId): void {
    if (typeof id !== 'string') return;
    const h = this.held.get(id);
    if (!h || --h.refs > 0) return;
    this.held.delete(id);
    void h.handle.then((held) => held?.fh.close()).catch(() => {});
  }

  /** Run `f` on a descriptor of a regular file: the held one, or one opened for the call. */
  private async withFile<T>(id: NodeId, write: boolean, f: (fh: fs.FileHandle) => Promise<T>): Promise<T> {
    const held = await this.heldHandle(id);
    if (held && (!write || held.writable)) return mapErrors(() => f(held.fh));
    const n = this.node(id);
    const st = await this.lstatNode(n);
    if (st.isDirectory()) throw fsError('ISDIR');
    if (!st.isFile()) throw fsError('INVAL');
    const abs = await this.host(n.rel);
    return mapErrors(async () => {
      const fh = await fs.open(abs, (write ? constants.O_WRONLY : constants.O_RDONLY) | constants.O_NOFOLLOW);
      try {
        return await f(fh);
      } finally {
        await fh.close();
      }
    });
  }

  // ───────────────────────────── FileSystem ─────────────────────────────

  async lookup(dir: NodeId, name: string): Promise<Lookup> {
    const rel = this.child(dir, name);
    const parent = await this.host(this.node(dir).rel, true);
    return mapErrors(async () => {
      const pst = await fs.lstat(parent);
      if (!pst.isDirectory()) throw fsError('NOTDIR');
      const st = await fs.lstat(path.join(parent, name), { bigint: true });
      const type = fileType(st);
      return { node: HostFs.id(rel, type, st), type };
    });
  }

  async stat(id: NodeId): Promise<Stat> {
    const held = await this.heldHandle(id);
    const st = held ? await mapErrors(() => held.fh.stat({ bigint: true })) : await this.lstatNode(this.node(id));
    return {
      type: fileType(st),
      ino: st.ino,
      nlink: Number(st.nlink),
      size: Number(st.size),
      atim: st.atimeNs,
      mtim: st.mtimeNs,
      ctim: st.ctimeNs,
    };
  }

  read(id: NodeId, position: number, length: number): Promise<Uint8Array> {
    return this.withFile(id, false, async (fh) => {
      const { size } = await fh.stat();
      const n = Math.max(0, Math.min(length, this.maxRead, size - position));
      if (n === 0) return new Uint8Array(0);
      const buf = new Uint8Array(n);
      const { bytesRead } = await fh.read(buf, 0, n, position);
      return bytesRead === n ? buf : buf.subarray(0, bytesRead);
    });
  }

  write(id: NodeId, position: number, data: Uint8Array): Promise<number> {
    return this.withFile(id, true, async (fh) => {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
        done += bytesWritten;
      }
      return done;
    });
  }

  truncate(id: NodeId, size: number): Promise<void> {
    return this.withFile(id, true, (fh) => fh.truncate(size));
  }

  async setTimes(id: NodeId, atim: bigint | undefined, mtim: bigint | undefined): Promise<void> {
    const held = await this.heldHandle(id);
    if (held) {
      await mapErrors(async () => {
        const st = await held.fh.stat({ bigint: true });
        await held.fh.utimes(seconds(atim ?? st.atimeNs), seconds(mtim ?? st.mtimeNs));
      });
      return;
    }
    const n = this.node(id);
    const st = await this.lstatNode(n);
    const abs = await this.host(n.rel);
    // lutimes: never follows a symlink (the VFS already did, when it was asked to).
    await mapErrors(() => fs.lutimes(abs, seconds(atim ?? st.atimeNs), seconds(mtim ?? st.mtimeNs)));
  }

  sync(id: NodeId, dataOnly: boolean): Promise<void> {
    return this.withFile(id, false, (fh) => (dataOnly ? fh.datasync() : fh.sync()));
  }

  async readdir(dir: NodeId, cookie: bigint): Promise<DirEntry[]> {
    const rel = this.node(dir).rel;
    const abs = await this.host(rel, true);
    return mapErrors(async () => {
      const self = await fs.lstat(abs, { bigint: true });
      if (!self.isDirectory()) throw fsError('NOTDIR');
      const parent = rel === '' ? self : await fs.lstat(path.dirname(abs), { bigint: true });
      // Cookies are positions in the sorted listing: stable while nothing changes.
      const names = (await fs.readdir(abs)).sort();
      const from = cookie > BigInt(names.length + 2) ? names.length + 2 : Number(cookie);
      const out: DirEntry[] = [];
      if (from <= 0) out.push({ name: '.', type: 'directory', ino: self.ino, next: 1n });
      if (from <= 1) out.push({ name: '..', type: 'directory', ino: parent.ino, next: 2n });
      const first = Math.max(0, from - 2);
      const stats = await Promise.all(
        names.slice(first).map(async (name) => {
          try {
            return { name, st: await fs.lstat(path.join(abs, name), { bigint: true }) };
          } catch {
            return undefined; // removed meanwhile
          }
        }),
      );
      stats.forEach((s, i) => {
        if (s) out.push({ name: s.name, type: fileType(s.st), ino: s.st.ino, next: BigInt(first + i + 3) });
      });
      return out;
    });
  }

  async createFile(dir: NodeId, name: string): Promise<NodeId> {
    const rel = this.child(dir, name);
    const abs = await this.host(rel);
    return mapErrors(async () => {
      const fh = await fs.open(abs, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW, 0o666);
      try {
        return HostFs.id(rel, 'file', await fh.stat({ bigint: true }));
      } finally {
        await fh.close();
      }
    });
  }

  async mkdir(dir: NodeId, name: string): Promise<NodeId> {
    const rel = this.child(dir, name);
    const abs = await this.host(rel);
    await mapErrors(() => fs.mkdir(abs, 0o777));
    return rel;
  }

  async symlink(dir: NodeId, name: string, target: string): Promise<NodeId> {
    const rel = this.child(dir, name);
    const abs = await this.host(rel);
    await mapErrors(() => fs.symlink(target, abs));
    return rel;
  }

  async readlink(id: NodeId): Promise<string> {
    const abs = await this.host(this.node(id).rel);
    return mapErrors(() => fs.readlink(abs));
  }

  async link(id: NodeId, dir: NodeId, name: string): Promise<void> {
    const n = this.node(id);
    const st = await this.lstatNode(n);
    if (st.isDirectory()) throw fsError('PERM');
    const from = await this.host(n.rel);
    const to = await this.host(this.child(dir, name));
    // link(2) on Linux does not follow a symlink: the new name links the symlink itself.
    await mapErrors(() => fs.link(from, to));
  }

  async unlink(dir: NodeId, name: string): Promise<void> {
    const abs = await this.host(this.child(dir, name));
    await mapErrors(async () => {
      if ((await fs.lstat(abs)).isDirectory()) throw fsError('ISDIR');
      await fs.unlink(abs);
    });
  }

  async rmdir(dir: NodeId, name: string): Promise<void> {
    const abs = await this.host(this.child(dir, name));
    await mapErrors(async () => {
      if (!(await fs.lstat(abs)).isDirectory()) throw fsError('NOTDIR');
      await fs.rmdir(abs);
    });
  }

  async rename(fromDir: NodeId, fromName: string, toDir: NodeId, toName: string): Promise<void> {
    const from = await this.host(this.child(fromDir, fromName));
    const to = await this.host(this.child(toDir, toName));
    await mapErrors(() => fs.rename(from, to));
  }
}
