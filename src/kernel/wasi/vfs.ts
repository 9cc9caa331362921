// The virtual filesystem: a namespace of mounts, each a FileSystem behind one small,
// stateless, async-capable interface (every method may answer now or return a Promise).
//
// A FileSystem knows nothing about paths, symlinks or `..`: it looks names up in directories and
// acts on nodes. The Namespace walks paths itself — component by component, following symlinks,
// crossing mounts, and never letting `..` or a symlink climb above the directory the walk started
// from (WASI's capability rule). So a filesystem cannot be escaped through this layer, and a new
// one (the cluster filesystem, a host directory) only implements the node operations below.
//
// Node ids are plain numbers or strings so an fd table that names them can be serialized, and
// the interface holds no open-file state: reading and writing name a node and a position. The
// optional retain/release let a filesystem keep an unlinked node alive while an fd holds it.

import { Errno, FsError, fsError } from './errno.ts';
import { type Co, type MaybePromise, wait, runAsync } from './co.ts';

export type { MaybePromise } from './co.ts';

/** A filesystem's name for one of its nodes (inode number, relative path, ...). */
export type NodeId = number | string;

export type FileType = 'file' | 'directory' | 'symlink' | 'chardev' | 'blockdev' | 'socket' | 'unknown';

export interface Stat {
  type: FileType;
  ino: bigint;
  nlink: number;
  size: number;
  /** Nanoseconds since the Unix epoch. */
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
}

export interface DirEntry {
  name: string;
  type: FileType;
  ino: bigint;
  /** Cookie that continues the listing right after this entry. */
  next: bigint;
}

export interface Lookup {
  node: NodeId;
  type: FileType;
}

/**
 * One mounted filesystem. Errors are thrown (or rejected) as FsError with a WASI errno.
 * Names passed in are single components: never empty, `.`, `..`, or containing `/` or NUL.
 */
export interface FileSystem {
  /** The root directory. */
  readonly root: NodeId;
  /** The entry `name` in directory `dir` (ENOENT, ENOTDIR). Does not follow a symlink. */
  lookup(dir: NodeId, name: string): MaybePromise<Lookup>;
  stat(node: NodeId): MaybePromise<Stat>;
  /** Up to `length` bytes at `position` (fewer at end of file; none past it). */
  read(node: NodeId, position: number, length: number): MaybePromise<Uint8Array>;
  /** Writes all of `data` at `position`, growing the file; returns the count written. */
  write(node: NodeId, position: number, data: Uint8Array): MaybePromise<number>;
  truncate(node: NodeId, size: number): MaybePromise<void>;
  /** Sets the times given (ns since the epoch); `undefined` leaves one as it is. */
  setTimes(node: NodeId, atim: bigint | undefined, mtim: bigint | undefined): MaybePromise<void>;
  sync?(node: NodeId, dataOnly: boolean): MaybePromise<void>;
  /**
   * A sync in two parts, for filesystems whose sync also waits for copies elsewhere (the cluster
   * filesystem): syncLocal makes the data durable here (its errors are the real ones: quota...),
   * syncReplicas then waits until enough other places hold it. sync = both. Fork On Wait
   * speculates on the second part only.
   */
  syncLocal?(node: NodeId, dataOnly: boolean): MaybePromise<void>;
  syncReplicas?(node: NodeId): MaybePromise<void>;
  /**
   * The entries of a directory from `cookie` on (0 = from the start), `.` and `..` included.
   * Each entry's `next` continues after it; a cookie stays valid while entries come and go.
   */
  readdir(dir: NodeId, cookie: bigint): MaybePromise<DirEntry[]>;
  /** Creates an empty regular file (EEXIST if the name is taken). */
  createFile(dir: NodeId, name: string): MaybePromise<NodeId>;
  mkdir(dir: NodeId, name: string): MaybePromise<NodeId>;
  symlink(dir: NodeId, name: string, target: string): MaybePromise<NodeId>;
  readlink(node: NodeId): MaybePromise<string>;
  /** A new hard link to a non-directory (EPERM for a directory, EEXIST if taken). */
  link(node: NodeId, dir: NodeId, name: string): MaybePromise<void>;
  /** Removes a non-directory entry (EISDIR for a directory). */
  unlink(dir: NodeId, name: string): MaybePromise<void>;
  /** Removes an empty directory (ENOTDIR, ENOTEMPTY). */
  rmdir(dir: NodeId, name: string): MaybePromise<void>;
  /** POSIX rename: replaces a compatible target atomically (EISDIR, ENOTDIR, ENOTEMPTY, EINVAL). */
  rename(fromDir: NodeId, fromName: string, toDir: NodeId, toName: string): MaybePromise<void>;
  /** An fd now refers to the node (keep it alive even once unlinked). */
  retain?(node: NodeId): void;
  /** An fd that referred to the node is gone. */
  release?(node: NodeId): void;
}

export interface Mount {
  /** Absolute, normalized: `/`, `/tmp`, `/host/src`. */
  readonly path: string;
  readonly fs: FileSystem;
  /** Device number reported in stat. */
  readonly dev: bigint;
  readonly readonly: boolean;
}

/** A node reached through the namespace: which mount, which node, and the path walked to it. */
export interface Location {
  mount: Mount;
  node: NodeId;
  /** Absolute namespace path it was reached by (used to find mounts below it). */
  path: string;
  type: FileType;
}

export interface MountOptions {
  readonly?: boolean;
}

const MAX_SYMLINKS = 40;
const MAX_NAME = 255;
const MAX_PATH = 4096;
const encoder = new TextEncoder();

/** Normalizes an absolute path lexically (`//a/./b/` → `/a/b`); `..` is refused. */
export function normalizeMountPath(path: string): string {
  if (!path.startsWith('/')) throw new TypeError(`mount path must be absolute: ${path}`);
  const parts = path.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw new TypeError(`mount path must not contain '..': ${path}`);
  return '/' + parts.join('/');
}

function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

function checkName(name: string): void {
  if (name.includes('\0')) throw fsError('INVAL', 'NUL in path');
  if (name.length > MAX_NAME / 3 && encoder.encode(name).length > MAX_NAME) throw fsError('NAMETOOLONG');
}

interface ParsedPath {
  comps: string[];
  absolute: boolean;
  trailingSlash: boolean;
}

function parsePath(path: string): ParsedPath {
  if (path === '') throw fsError('NOENT', 'empty path');
  if (path.length > MAX_PATH / 3 && encoder.encode(path).length > MAX_PATH) throw fsError('NAMETOOLONG');
  const comps = path.split('/').filter((c) => c !== '');
  for (const c of comps) checkName(c);
  return { comps, absolute: path.startsWith('/'), trailingSlash: path.endsWith('/') && comps.length > 0 };
}

/** The parent directory of the last component of a path, and that component. */
export interface ParentLookup {
  dir: Location;
  name: string;
  /** The path ended with `/`: the last component must be a directory. */
  trailingSlash: boolean;
}

export interface OpenOptions {
  /** Follow a symlink in the last component. */
  follow?: boolean;
  create?: boolean;
  exclusive?: boolean;
  truncate?: boolean;
  /** Must be a directory (ENOTDIR). */
  directory?: boolean;
  /** The caller will write: EISDIR on a directory, EROFS on a read-only mount. */
  write?: boolean;
}

/**
 * The mounts and every path operation. Operations are generators (see co.ts) taking the
 * Location the path is relative to; the Wasi layer passes an fd's directory, the async `Vfs`
 * facade passes the root.
 */
export class Namespace {
  private readonly table = new Map<string, Mount>();
  private nextDev = 1n;

  constructor(mounts?: Record<string, FileSystem>) {
    if (mounts) for (const [path, fs] of Object.entries(mounts)) this.mount(path, fs);
  }

  mount(path: string, fs: FileSystem, options: MountOptions = {}): Mount {
    const p = normalizeMountPath(path);
    if (this.table.has(p)) throw new Error(`already mounted: ${p}`);
    const m: Mount = { path: p, fs, dev: this.nextDev++, readonly: options.readonly ?? false };
    this.table.set(p, m);
    return m;
  }

  unmount(path: string): void {
    const p = normalizeMountPath(path);
    if (!this.table.delete(p)) throw new Error(`not mounted: ${p}`);
  }

  /** Every mount, sorted by path. */
  mounts(): Mount[] {
    return [...this.table.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  get(path: string): Mount | undefined {
    return this.table.get(path);
  }

  /** The root of a mount as a Location. */
  rootOf(mount: Mount): Location {
    return { mount, node: mount.fs.root, path: mount.path, type: 'directory' };
  }

  /** The namespace root `/` (ENOENT when nothing is mounted there). */
  root(): Location {
    const m = this.table.get('/');
    if (!m) throw fsError('NOENT', 'nothing mounted at /');
    return this.rootOf(m);
  }

  // ───────────────────────────── walking ─────────────────────────────

  /** Look a name up in a directory Location, crossing into a mount found there. */
  *lookupIn(dir: Location, name: string): Co<Location> {
    if (dir.type !== 'directory') throw fsError('NOTDIR');
    const path = joinPath(dir.path, name);
    const m = this.table.get(path);
    if (m) return this.rootOf(m);
    const found = yield* wait(dir.mount.fs.lookup(dir.node, name));
    return { mount: dir.mount, node: found.node, path, type: found.type };
  }

  /**
   * Walk `comps` from the top of `stack`; the walk may not pop below `floor` entries (`..` or a
   * symlink leaving the start directory → ENOTCAPABLE). `followLast`: expand a symlink in the
   * last component too. Leaves the final Location on top of the stack.
   */
  private *walkComps(stack: Location[], comps: string[], followLast: boolean, budget: { links: number }): Co<void> {
    const start = stack[0]!;
    const queue = comps.slice().reverse();
    while (queue.length > 0) {
      const c = queue.pop()!;
      const top = stack[stack.length - 1]!;
      if (c === '.') {
        if (top.type !== 'directory') throw fsError('NOTDIR');
        continue;
      }
      if (c === '..') {
        if (top.type !== 'directory') throw fsError('NOTDIR');
        if (stack.length <= 1) throw fsError('NOTCAPABLE', 'path escapes its directory');
        stack.pop();
        continue;
      }
      const next = yield* this.lookupIn(top, c);
      const last = queue.length === 0;
      if (next.type === 'symlink' && (!last || followLast)) {
        if (++budget.links > MAX_SYMLINKS) throw fsError('LOOP');
        const target = yield* wait(next.mount.fs.readlink(next.node));
        const parsed = parsePath(target);
        if (parsed.absolute) {
          // An absolute target stays inside the start directory or is refused.
          const base = start.path === '/' ? [] : start.path.slice(1).split('/');
          const prefix = parsed.comps.slice(0, base.length);
          if (prefix.length !== base.length || prefix.some((p, i) => p !== base[i])) {
            throw fsError('NOTCAPABLE', 'symlink leaves its directory');
          }
          stack.length = 1;
          parsed.comps.splice(0, base.length);
        }
        if (parsed.trailingSlash) parsed.comps.push('.');
        for (let i = parsed.comps.length - 1; i >= 0; i--) queue.push(parsed.comps[i]!);
        continue;
      }
      stack.push(next);
    }
  }

  /** Resolve a path relative to `start` to a Location. */
  *resolve(start: Location, path: string, follow: boolean): Co<Location> {
    const parsed = this.relativize(start, parsePath(path));
    if (parsed.trailingSlash) parsed.comps.push('.');
    const stack = [start];
    yield* this.walkComps(stack, parsed.comps, follow, { links: 0 });
    return stack[stack.length - 1]!;
  }

  /** Resolve all but the last component (which may be `.` or `..`; callers decide). */
  *resolveParent(start: Location, path: string): Co<ParentLookup> {
    const parsed = this.relativize(start, parsePath(path));
    const name = parsed.comps.pop();
    if (name === undefined) return { dir: start, name: '.', trailingSlash: false };
    const stack = [start];
    yield* this.walkComps(stack, parsed.comps, true, { links: 0 });
    const dir = stack[stack.length - 1]!;
    if (dir.type !== 'directory') throw fsError('NOTDIR');
    return { dir, name, trailingSlash: parsed.trailingSlash };
  }

  /** An absolute path is accepted when it lies inside `start`; it becomes relative to it. */
  private relativize(start: Location, parsed: ParsedPath): ParsedPath {
    if (!parsed.absolute) return parsed;
    const base = start.path === '/' ? [] : start.path.slice(1).split('/');
    const prefix = parsed.comps.slice(0, base.length);
    if (prefix.length !== base.length || prefix.some((p, i) => p !== base[i])) {
      throw fsError('NOTCAPABLE', 'absolute path outside the directory');
    }
    return { ...parsed, comps: parsed.comps.slice(base.length) };
  }

  private isMountPoint(dir: Location, name: string): boolean {
    return this.table.has(joinPath(dir.path, name));
  }

  private static writable(loc: Location): void {
    if (loc.mount.readonly) throw fsError('ROFS');
  }

  // ───────────────────────────── operations ─────────────────────────────

  *stat(start: Location, path: string, follow: boolean): Co<{ loc: Location; stat: Stat }> {
    const loc = yield* this.resolve(start, path, follow);
    const stat = yield* wait(loc.mount.fs.stat(loc.node));
    return { loc, stat };
  }

  /** Open (and maybe create or truncate) a path; the Location of what was opened. */
  *open(start: Location, path: string, o: OpenOptions): Co<Location> {
    const follow = o.follow ?? true;
    let loc: Location | undefined;
    if (o.create) {
      if (o.directory) throw fsError('INVAL', 'create and directory together');
      const p = yield* this.resolveParent(start, path);
      if (p.name === '.' || p.name === '..' || p.trailingSlash) throw fsError('ISDIR');
      let existing: Location | undefined;
      try {
        existing = yield* this.lookupIn(p.dir, p.name);
      } catch (err) {
        if (!(err instanceof FsError && err.errno === Errno.NOENT)) throw err;
      }
      if (existing && o.exclusive) throw fsError('EXIST');
      if (!existing) {
        Namespace.writable(p.dir);
        try {
          const node = yield* wait(p.dir.mount.fs.createFile(p.dir.node, p.name));
          loc = { mount: p.dir.mount, node, path: joinPath(p.dir.path, p.name), type: 'file' };
        } catch (err) {
          if (!(err instanceof FsError && err.errno === Errno.EXIST) || o.exclusive) throw err;
        }
      }
    }
    loc ??= yield* this.resolve(start, path, follow);
    if (loc.type === 'symlink') throw fsError('LOOP', 'symlink with no-follow');
    if (o.directory && loc.type !== 'directory') throw fsError('NOTDIR');
    if (loc.type === 'directory' && (o.write || o.truncate)) throw fsError('ISDIR');
    if (o.write || o.truncate) Namespace.writable(loc);
    if (o.truncate && loc.type === 'file') yield* wait(loc.mount.fs.truncate(loc.node, 0));
    return loc;
  }

  *mkdir(start: Location, path: string): Co<Location> {
    const p = yield* this.resolveParent(start, path);
    if (p.name === '.' || p.name === '..' || this.isMountPoint(p.dir, p.name)) throw fsError('EXIST');
    Namespace.writable(p.dir);
    const node = yield* wait(p.dir.mount.fs.mkdir(p.dir.node, p.name));
    return { mount: p.dir.mount, node, path: joinPath(p.dir.path, p.name), type: 'directory' };
  }

  *unlink(start: Location, path: string): Co<void> {
    const p = yield* this.resolveParent(start, path);
    if (p.name === '.' || p.name === '..' || this.isMountPoint(p.dir, p.name)) throw fsError('ISDIR');
    if (p.trailingSlash) {
      const target = yield* this.lookupIn(p.dir, p.name);
      throw fsError(target.type === 'directory' ? 'ISDIR' : 'NOTDIR');
    }
    Namespace.writable(p.dir);
    yield* wait(p.dir.mount.fs.unlink(p.dir.node, p.name));
  }

  *rmdir(start: Location, path: string): Co<void> {
    const p = yield* this.resolveParent(start, path);
    if (p.name === '.') throw fsError('INVAL');
    if (p.name === '..') throw fsError('NOTEMPTY');
    if (this.isMountPoint(p.dir, p.name)) throw fsError('BUSY');
    Namespace.writable(p.dir);
    yield* wait(p.dir.mount.fs.rmdir(p.dir.node, p.name));
  }

  *rename(fromStart: Location, fromPath: string, toStart: Location, toPath: string): Co<void> {
    const from = yield* this.resolveParent(fromStart, fromPath);
    const to = yield* this.resolveParent(toStart, toPath);
    for (const n of [from.name, to.name]) if (n === '.' || n === '..') throw fsError('BUSY');
    if (this.isMountPoint(from.dir, from.name) || this.isMountPoint(to.dir, to.name)) throw fsError('BUSY');
    if (from.dir.mount !== to.dir.mount) throw fsError('XDEV');
    Namespace.writable(from.dir);
    if (from.trailingSlash || to.trailingSlash) {
      const src = yield* this.lookupIn(from.dir, from.name);
      if (src.type !== 'directory') throw fsError('NOTDIR');
    }
    yield* wait(from.dir.mount.fs.rename(from.dir.node, from.name, to.dir.node, to.name));
  }

  *link(fromStart: Location, fromPath: string, follow: boolean, toStart: Location, toPath: string): Co<void> {
    const src = yield* this.resolve(fromStart, fromPath, follow);
    const to = yield* this.resolveParent(toStart, toPath);
    if (src.type === 'directory') throw fsError('PERM');
    if (to.name === '.' || to.name === '..' || this.isMountPoint(to.dir, to.name)) throw fsError('EXIST');
    if (src.mount !== to.dir.mount) throw fsError('XDEV');
    if (to.trailingSlash) throw fsError('NOENT');
    Namespace.writable(to.dir);
    yield* wait(to.dir.mount.fs.link(src.node, to.dir.node, to.name));
  }

  *symlink(target: string, start: Location, path: string): Co<void> {
    if (target === '') throw fsError('NOENT', 'empty symlink target');
    if (target.includes('\0')) throw fsError('INVAL');
    const p = yield* this.resolveParent(start, path);
    if (p.name === '.' || p.name === '..' || this.isMountPoint(p.dir, p.name)) throw fsError('EXIST');
    if (p.trailingSlash) throw fsError('NOENT');
    Namespace.writable(p.dir);
    yield* wait(p.dir.mount.fs.symlink(p.dir.node, p.name, target));
  }

  *readlink(start: Location, path: string): Co<string> {
    const loc = yield* this.resolve(start, path, false);
    if (loc.type !== 'symlink') throw fsError('INVAL', 'not a symlink');
    return yield* wait(loc.mount.fs.readlink(loc.node));
  }

  *setTimes(start: Location, path: string, follow: boolean, atim: bigint | undefined, mtim: bigint | undefined): Co<void> {
    const loc = yield* this.resolve(start, path, follow);
    Namespace.writable(loc);
    yield* wait(loc.mount.fs.setTimes(loc.node, atim, mtim));
  }
}

// ───────────────────────────── async facade ─────────────────────────────

export type Whence = 'set' | 'cur' | 'end';

export interface VfsOpenFlags {
  read?: boolean;
  write?: boolean;
  create?: boolean;
  exclusive?: boolean;
  truncate?: boolean;
  append?: boolean;
  directory?: boolean;
  /** Follow a symlink in the last component (default true). */
  follow?: boolean;
}

/** An open file of the async facade: a node plus a position. */
export class OpenFile {
  position = 0;
  private closed = false;

  constructor(
    readonly loc: Location,
    private readonly flags: VfsOpenFlags,
  ) {
    loc.mount.fs.retain?.(loc.node);
  }

  private get fs(): FileSystem {
    if (this.closed) throw fsError('BADF');
    return this.loc.mount.fs;
  }

  private need(what: 'read' | 'write'): void {
    if (!this.flags[what]) throw fsError('BADF', `not open for ${what}`);
    if (this.loc.type === 'directory') throw fsError('ISDIR');
  }

  async read(length: number): Promise<Uint8Array> {
    const data = await this.pread(this.position, length);
    this.position += data.length;
    return data;
  }

  async pread(position: number, length: number): Promise<Uint8Array> {
    this.need('read');
    return this.fs.read(this.loc.node, position, length);
  }

  async write(data: Uint8Array): Promise<number> {
    this.need('write');
    if (this.flags.append) this.position = (await this.fs.stat(this.loc.node)).size;
    const n = await this.fs.write(this.loc.node, this.position, data);
    this.position += n;
    return n;
  }

  async pwrite(position: number, data: Uint8Array): Promise<number> {
    this.need('write');
    return this.fs.write(this.loc.node, position, data);
  }

  async seek(offset: number, whence: Whence = 'set'): Promise<number> {
    const base = whence === 'set' ? 0 : whence === 'cur' ? this.position : (await this.stat()).size;
    const p = base + offset;
    if (p < 0 || !Number.isSafeInteger(p)) throw fsError('INVAL');
    this.position = p;
    return p;
  }

  async stat(): Promise<Stat> {
    return this.fs.stat(this.loc.node);
  }

  async truncate(size = 0): Promise<void> {
    this.need('write');
    await this.fs.truncate(this.loc.node, size);
  }

  async readdir(): Promise<DirEntry[]> {
    if (this.loc.type !== 'directory') throw fsError('NOTDIR');
    return (await this.fs.readdir(this.loc.node, 0n)).filter((e) => e.name !== '.' && e.name !== '..');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.loc.mount.fs.release?.(this.loc.node);
    this.closed = true;
  }
}

/**
 * Promise-returning path API over a Namespace, for the kernel, the shell and tests. Paths are
 * absolute (from `/`); relative paths are taken from `/` too.
 */
export class Vfs {
  constructor(readonly ns: Namespace) {}

  private get root(): Location {
    return this.ns.root();
  }

  async open(path: string, flags: VfsOpenFlags = { read: true }): Promise<OpenFile> {
    const loc = await runAsync(
      this.ns.open(this.root, path, {
        follow: flags.follow ?? true,
        create: flags.create,
        exclusive: flags.exclusive,
        truncate: flags.truncate,
        directory: flags.directory,
        write: flags.write,
      }),
    );
    return new OpenFile(loc, flags);
  }

  async stat(path: string): Promise<Stat> {
    return (await runAsync(this.ns.stat(this.root, path, true))).stat;
  }

  async lstat(path: string): Promise<Stat> {
    return (await runAsync(this.ns.stat(this.root, path, false))).stat;
  }

  async exists(path: string): Promise<boolean> {
    try {
      await this.lstat(path);
      return true;
    } catch (err) {
      if (err instanceof FsError && err.errno === Errno.NOENT) return false;
      throw err;
    }
  }

  /** Entry names and types, without `.` and `..`. */
  async readdir(path: string): Promise<DirEntry[]> {
    const f = await this.open(path, { directory: true });
    try {
      return await f.readdir();
    } finally {
      await f.close();
    }
  }

  async mkdir(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    if (!options.recursive) {
      await runAsync(this.ns.mkdir(this.root, path));
      return;
    }
    const comps = path.split('/').filter((c) => c !== '');
    let prefix = '';
    for (const c of comps) {
      prefix += '/' + c;
      try {
        await runAsync(this.ns.mkdir(this.root, prefix));
      } catch (err) {
        if (!(err instanceof FsError && err.errno === Errno.EXIST)) throw err;
        if ((await this.stat(prefix)).type !== 'directory') throw fsError('NOTDIR');
      }
    }
  }

  async readFile(path: string): Promise<Uint8Array> {
    const f = await this.open(path, { read: true });
    try {
      const { size } = await f.stat();
      const chunks: Uint8Array[] = [];
      let total = 0;
      for (;;) {
        const chunk = await f.read(Math.max(size - total, 1 << 16));
        if (chunk.length === 0) break;
        chunks.push(chunk);
        total += chunk.length;
      }
      return concat(chunks, total);
    } finally {
      await f.close();
    }
  }

  async readText(path: string): Promise<string> {
    return new TextDecoder().decode(await this.readFile(path));
  }

  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    const f = await this.open(path, { write: true, create: true, truncate: true });
    try {
      await f.write(typeof data === 'string' ? encoder.encode(data) : data);
    } finally {
      await f.close();
    }
  }

  async unlink(path: string): Promise<void> {
    await runAsync(this.ns.unlink(this.root, path));
  }

  async rmdir(path: string): Promise<void> {
    await runAsync(this.ns.rmdir(this.root, path));
  }

  async rename(from: string, to: string): Promise<void> {
    await runAsync(this.ns.rename(this.root, from, this.root, to));
  }

  async symlink(target: string, path: string): Promise<void> {
    await runAsync(this.ns.symlink(target, this.root, path));
  }

  async readlink(path: string): Promise<string> {
    return runAsync(this.ns.readlink(this.root, path));
  }

  async link(existing: string, path: string): Promise<void> {
    await runAsync(this.ns.link(this.root, existing, false, this.root, path));
  }

  async truncate(path: string, size = 0): Promise<void> {
    const f = await this.open(path, { write: true });
    try {
      await f.truncate(size);
    } finally {
      await f.close();
    }
  }

  async utimes(path: string, atim: bigint | undefined, mtim: bigint | undefined): Promise<void> {
    await runAsync(this.ns.setTimes(this.root, path, true, atim, mtim));
  }
}

export function concat(chunks: Uint8Array[], total = chunks.reduce((n, c) => n + c.length, 0)): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
