// An in-memory filesystem: inodes with hard links, symlinks and directories. Every operation
// answers synchronously, so a program on it never blocks. Node ids are inode numbers.

import { fsError } from './errno.ts';
import type { DirEntry, FileSystem, Lookup, NodeId, Stat } from './vfs.ts';

interface Entry {
  ino: number;
  /** Position of the entry in its directory; readdir cookies are built from it. */
  seq: number;
}

interface Inode {
  ino: number;
  type: 'file' | 'directory' | 'symlink';
  nlink: number;
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
  /** file: contents (capacity may exceed size) */
  data: Uint8Array;
  size: number;
  /**
   * file: leading bytes of `data` that views from readShared() see (0: none). Writes below it
   * copy `data` first (copy on write); appends past it need no copy.
   */
  shared: number;
  /** symlink */
  target: string;
  /** directory */
  entries: Map<string, Entry>;
  parent: number;
  nextSeq: number;
  /** fds holding the node */
  open: number;
}

export interface MemFsOptions {
  /** Clock for timestamps, ns since the epoch (default: Date.now()). */
  now?: () => bigint;
  /** Largest file size (EFBIG beyond; default 1 GiB). */
  maxFileSize?: number;
}

const ROOT = 1;
const empty = new Uint8Array(0);
const encoder = new TextEncoder();

/** readdir cookies: 0 → `.`, 1 → `..`, an entry with sequence number s (s ≥ 1) → s + 1. */
const FIRST_ENTRY_COOKIE = 2;

export class MemFs implements FileSystem {
  readonly root: NodeId = ROOT;
  private readonly inodes = new Map<number, Inode>();
  private nextIno = ROOT;
  private readonly now: () => bigint;
  private readonly maxFileSize: number;

  constructor(options: MemFsOptions = {}) {
    this.now = options.now ?? (() => BigInt(Date.now()) * 1_000_000n);
    this.maxFileSize = options.maxFileSize ?? 1 << 30;
    const root = this.alloc('directory');
    root.parent = root.ino;
    root.nlink = 2;
  }

  /** Number of live inodes (for tests: unlinked, closed files are freed). */
  get inodeCount(): number {
    return this.inodes.size;
  }

  private alloc(type: Inode['type']): Inode {
    const t = this.now();
    const node: Inode = {
      ino: this.nextIno++,
      type,
      nlink: type === 'directory' ? 2 : 1,
      atim: t,
      mtim: t,
      ctim: t,
      data: empty,
      size: 0,
      shared: 0,
      target: '',
      entries: new Map(),
      parent: 0,
      nextSeq: 1,
      open: 0,
    };
    this.inodes.set(node.ino, node);
    return node;
  }

  private get(node: NodeId): Inode {
    const n = typeof node === 'number' ? this.inodes.get(node) : undefined;
    if (!n) throw fsError('STALE', `no inode ${String(node)}`);
    return n;
  }

  private dir(node: NodeId): Inode {
    const d = this.get(node);
    if (d.type !== 'directory') throw fsError('NOTDIR');
    return d;
  }

  /** A directory that can still get entries (not removed). */
  private liveDir(node: NodeId): Inode {
    const d = this.dir(node);
    if (d.nlink === 0) throw fsError('NOENT', 'directory was removed');
    return d;
  }

  private static checkName(name: string): void {
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
      throw fsError('INVAL', `bad name ${JSON.stringify(name)}`);
    }
  }

  private touch(n: Inode, content = true): void {
    const t = this.now();
    if (content) n.mtim = t;
    n.ctim = t;
  }

  private addEntry(d: Inode, name: string, child: Inode): void {
    d.entries.set(name, { ino: child.ino, seq: d.nextSeq++ });
    this.touch(d);
  }

  private maybeFree(n: Inode): void {
    if (n.nlink === 0 && n.open === 0) this.inodes.delete(n.ino);
  }

  lookup(dir: NodeId, name: string): Lookup {
    const d = this.dir(dir);
    const e = d.entries.get(name);
    if (!e) throw fsError('NOENT');
    const n = this.get(e.ino);
    return { node: n.ino, type: n.type };
  }

  stat(node: NodeId): Stat {
    const n = this.get(node);
    const size = n.type === 'file' ? n.size : n.type === 'symlink' ? encoder.encode(n.target).length : n.entries.size;
    return { type: n.type, ino: BigInt(n.ino), nlink: n.nlink, size, atim: n.atim, mtim: n.mtim, ctim: n.ctim };
  }

  read(node: NodeId, position: number, length: number): Uint8Array {
    const n = this.get(node);
    if (n.type === 'directory') throw fsError('ISDIR');
    if (n.type !== 'file') throw fsError('INVAL');
    if (position >= n.size || length <= 0) return new Uint8Array(0);
    return n.data.slice(position, Math.min(n.size, position + length));
  }

  /**
   * The whole contents of a file without copying them: the view stays as it is whatever is done
   * to the file later (a write below its end copies the file's buffer first). Snapshots of /tmp
   * take files this way: a growing log costs nothing per snapshot.
   */
  readShared(node: NodeId): Uint8Array {
    const n = this.get(node);
    if (n.type === 'directory') throw fsError('ISDIR');
    if (n.type !== 'file') throw fsError('INVAL');
    if (n.size === 0) return new Uint8Array(0);
    n.shared = Math.max(n.shared, n.size);
    return n.data.subarray(0, n.size);
  }

  /** The file gets a buffer of its own: views handed out by readShared() keep the old one. */
  private unshare(n: Inode): void {
    if (n.shared === 0) return;
    const own = new Uint8Array(n.data.length);
    own.set(n.data.subarray(0, n.size));
    n.data = own;
    n.shared = 0;
  }

  write(node: NodeId, position: number, data: Uint8Array): number {
    const n = this.get(node);
    if (n.type === 'directory') throw fsError('ISDIR');
    if (n.type !== 'file') throw fsError('INVAL');
    const end = position + data.length;
    if (end > this.maxFileSize) throw fsError('FBIG');
    if (position < n.shared && data.length > 0) this.unshare(n);
    this.reserve(n, end);
    n.data.set(data, position);
    if (end > n.size) n.size = end;
    this.touch(n);
    return data.length;
  }

  private reserve(n: Inode, size: number): void {
    if (size <= n.data.length) return;
    const cap = Math.min(this.maxFileSize, Math.max(size, n.data.length * 2, 64));
    const bigger = new Uint8Array(cap);
    bigger.set(n.data.subarray(0, n.size));
    n.data = bigger;
    n.shared = 0;
  }

  truncate(node: NodeId, size: number): void {
    const n = this.get(node);
    if (n.type === 'directory') throw fsError('ISDIR');
    if (n.type !== 'file') throw fsError('INVAL');
    if (size < 0) throw fsError('INVAL');
    if (size > this.maxFileSize) throw fsError('FBIG');
    if (size > n.size) {
      this.reserve(n, size);
      n.data.fill(0, n.size, size);
    } else {
      if (size < n.shared) this.unshare(n);
      // Zero the cut-off part so growing again later reads zeros.
      n.data.fill(0, size, n.size);
      if (size === 0) n.data = empty;
    }
    n.size = size;
    this.touch(n);
  }

  setTimes(node: NodeId, atim: bigint | undefined, mtim: bigint | undefined): void {
    const n = this.get(node);
    if (atim !== undefined) n.atim = atim;
    if (mtim !== undefined) n.mtim = mtim;
    n.ctim = this.now();
  }

  sync(node: NodeId): void {
    this.get(node);
  }

  readdir(dir: NodeId, cookie: bigint): DirEntry[] {
    const d = this.dir(dir);
    const from = cookie > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(cookie);
    const out: DirEntry[] = [];
    if (from <= 0) out.push({ name: '.', type: 'directory', ino: BigInt(d.ino), next: 1n });
    if (from <= 1) {
      const parent = this.inodes.get(d.parent) ?? d;
      out.push({ name: '..', type: 'directory', ino: BigInt(parent.ino), next: 2n });
    }
    // A removed directory lists only `.` and `..`.
    for (const [name, e] of d.entries) {
      const c = e.seq + FIRST_ENTRY_COOKIE - 1;
      if (c < from) continue;
      const n = this.get(e.ino);
      out.push({ name, type: n.type, ino: BigInt(n.ino), next: BigInt(c + 1) });
    }
    return out;
  }

  private checkFree(d: Inode, name: string): void {
    MemFs.checkName(name);
    if (d.entries.has(name)) throw fsError('EXIST');
  }

  createFile(dir: NodeId, name: string): NodeId {
    const d = this.liveDir(dir);
    this.checkFree(d, name);
    const f = this.alloc('file');
    this.addEntry(d, name, f);
    return f.ino;
  }

  mkdir(dir: NodeId, name: string): NodeId {
    const d = this.liveDir(dir);
    this.checkFree(d, name);
    const sub = this.alloc('directory');
    sub.parent = d.ino;
    this.addEntry(d, name, sub);
    d.nlink++;
    return sub.ino;
  }

  symlink(dir: NodeId, name: string, target: string): NodeId {
    const d = this.liveDir(dir);
    this.checkFree(d, name);
    const s = this.alloc('symlink');
    s.target = target;
    this.addEntry(d, name, s);
    return s.ino;
  }

  readlink(node: NodeId): string {
    const n = this.get(node);
    if (n.type !== 'symlink') throw fsError('INVAL');
    return n.target;
  }

  link(node: NodeId, dir: NodeId, name: string): void {
    const n = this.get(node);
    if (n.type === 'directory') throw fsError('PERM');
    const d = this.liveDir(dir);
    this.checkFree(d, name);
    if (n.nlink === 0) throw fsError('NOENT', 'file was removed');
    n.nlink++;
    this.touch(n, false);
    this.addEntry(d, name, n);
  }

  unlink(dir: NodeId, name: string): void {
    const d = this.dir(dir);
    const e = d.entries.get(name);
    if (!e) throw fsError('NOENT');
    const n = this.get(e.ino);
    if (n.type === 'directory') throw fsError('ISDIR');
    d.entries.delete(name);
    this.touch(d);
    n.nlink--;
    this.touch(n, false);
    this.maybeFree(n);
  }

  rmdir(dir: NodeId, name: string): void {
    const d = this.dir(dir);
    const e = d.entries.get(name);
    if (!e) throw fsError('NOENT');
    const n = this.get(e.ino);
    if (n.type !== 'directory') throw fsError('NOTDIR');
    if (n.entries.size > 0) throw fsError('NOTEMPTY');
    d.entries.delete(name);
    d.nlink--;
    this.touch(d);
    this.removeDir(n);
  }

  private removeDir(n: Inode): void {
    n.nlink = 0;
    this.touch(n, false);
    this.maybeFree(n);
  }

  rename(fromDir: NodeId, fromName: string, toDir: NodeId, toName: string): void {
    const src = this.dir(fromDir);
    const e = src.entries.get(fromName);
    if (!e) throw fsError('NOENT');
    const dst = this.liveDir(toDir);
    MemFs.checkName(toName);
    const n = this.get(e.ino);
    const existing = dst.entries.get(toName);
    if (existing?.ino === n.ino) return; // both names are links to the same file: nothing to do
    if (n.type === 'directory') {
      // A directory cannot move into itself or below itself.
      for (let at = dst; ; at = this.get(at.parent)) {
        if (at.ino === n.ino) throw fsError('INVAL', 'directory into its own subtree');
        if (at.parent === at.ino) break;
      }
    }
    if (existing) {
      const old = this.get(existing.ino);
      if (n.type === 'directory') {
        if (old.type !== 'directory') throw fsError('NOTDIR');
        if (old.entries.size > 0) throw fsError('NOTEMPTY');
        dst.entries.delete(toName);
        dst.nlink--;
        this.removeDir(old);
      } else {
        if (old.type === 'directory') throw fsError('ISDIR');
        dst.entries.delete(toName);
        old.nlink--;
        this.touch(old, false);
        this.maybeFree(old);
      }
    }
    src.entries.delete(fromName);
    this.touch(src);
    dst.entries.set(toName, { ino: n.ino, seq: dst.nextSeq++ });
    this.touch(dst);
    if (n.type === 'directory') {
      src.nlink--;
      dst.nlink++;
      n.parent = dst.ino;
    }
    this.touch(n, false);
  }

  retain(node: NodeId): void {
    const n = typeof node === 'number' ? this.inodes.get(node) : undefined;
    if (n) n.open++;
  }

  release(node: NodeId): void {
    const n = typeof node === 'number' ? this.inodes.get(node) : undefined;
    if (!n || n.open === 0) return;
    n.open--;
    this.maybeFree(n);
  }
}

/** Fill a MemFs from a description: `{ 'etc/motd': 'hi', 'bin': {}, 'lnk': { symlink: 'etc' } }`. */
export type MemFsTree = { [name: string]: string | Uint8Array | MemFsTree | { symlink: string } };

export function memfsFrom(tree: MemFsTree, options?: MemFsOptions): MemFs {
  const fs = new MemFs(options);
  fill(fs, fs.root, tree);
  return fs;
}

function fill(fs: MemFs, dir: NodeId, tree: MemFsTree): void {
  for (const [path, value] of Object.entries(tree)) {
    const comps = path.split('/').filter((c) => c !== '');
    let at = dir;
    for (const c of comps.slice(0, -1)) {
      try {
        at = fs.lookup(at, c).node;
      } catch {
        at = fs.mkdir(at, c);
      }
    }
    const name = comps[comps.length - 1]!;
    if (typeof value === 'string' || value instanceof Uint8Array) {
      const f = fs.createFile(at, name);
      fs.write(f, 0, typeof value === 'string' ? encoder.encode(value) : value);
    } else if (typeof (value as { symlink?: unknown }).symlink === 'string' && Object.keys(value).length === 1) {
      fs.symlink(at, name, (value as { symlink: string }).symlink);
    } else {
      let sub: NodeId;
      try {
        sub = fs.lookup(at, name).node;
      } catch {
        sub = fs.mkdir(at, name);
      }
      fill(fs, sub, value as MemFsTree);
    }
  }
}
