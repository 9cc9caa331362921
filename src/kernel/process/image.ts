// A process image: everything a frozen process needs to continue in another executor, possibly
// on another peer (the Dispatcher migrates processes with it; DESIGN.md "One snapshot, three
// uses"). The thread snapshot (memory, globals, Asyncify stack, WASI fd table, lshapes state,
// pending host call) plus what lives outside the thread: the process's private `/tmp`, its
// unread stdin, its output flow-control state, its output offset and its CPU time. `/` (the samples, the same on
// every executor) and `/cluster` (the same filesystem everywhere) are not carried: the fd table
// names their nodes, which stay valid.
//
// On the wire it is `encodeImage(image)`:
//
//   "LSHPROC\0" (8 bytes) | format version (u32 LE) | SHA-256 of the payload (32 bytes) | payload
//
// the payload being MessagePack (msgpackr) with the thread inside as snapshotToWire's value (not
// a sealed snapshot: its memory would be checksummed and copied twice).
// decodeImage refuses, with an ImageError, anything truncated, corrupt, of another version or
// malformed.
//
// /tmp travels as its inodes and directory entries. Node ids are rebuilt, not kept (a new MemFs
// numbers its own inodes): rebuildTmp returns the old → new id map and remapTmpFds rewrites the
// WASI fd table with it. Files that are open but unlinked travel too and are unlinked again
// once the fds hold them (dropOrphans).

import { MemFs } from '../wasi/memfs.ts';
import type { WasiSnapshot } from '../wasi/preview1.ts';
import type { NodeId } from '../wasi/vfs.ts';
import { SnapshotError } from '../wasm/errors.ts';
import { snapshotFromWire, snapshotToWire, type ThreadSnapshot } from '../wasm/snapshot.ts';
import { seal, sealParts, sealUnsummed, unseal, type SealedFormat } from '../wasm/sealed.ts';
import type { QueueInputState as StdinState } from '../wasi/streams.ts';
import type { Pid } from './protocol.ts';

/** 2: the thread unsealed inside (1 had a sealed snapshot). */
export const IMAGE_FORMAT_VERSION = 2;
const FORMAT: SealedFormat = {
  magic: new Uint8Array([0x4c, 0x53, 0x48, 0x50, 0x52, 0x4f, 0x43, 0x00]), // "LSHPROC\0"
  version: IMAGE_FORMAT_VERSION,
  noun: 'process image',
  title: 'process image',
  error: (message) => new ImageError(message),
};
/** Where /tmp is mounted in the standard layout (executor.ts). */
export const TMP_MOUNT = '/tmp';
const WASI = 'wasi_snapshot_preview1';

/** A process image was refused: truncated, corrupt, another version, malformed, or not this process's. */
export class ImageError extends Error {
  override readonly name = 'ImageError';
}

/** One inode of /tmp. Times are ns since the epoch. */
export type TmpNode =
  | { id: number; kind: 'dir'; atim: bigint; mtim: bigint }
  | { id: number; kind: 'file'; data: Uint8Array; atim: bigint; mtim: bigint }
  | { id: number; kind: 'symlink'; target: string };

/** /tmp as inodes and entries. Entries are in walk order: a directory's entry precedes its own entries. */
export interface TmpImage {
  root: number;
  nodes: TmpNode[];
  entries: { dir: number; name: string; node: number }[];
}

export interface ProcessImage {
  pid: Pid;
  /** SHA-256 hex of the original program (the ProcessSpec hash). */
  moduleHash: string;
  thread: ThreadSnapshot;
  /** The private /tmp (null: the process had none, e.g. a custom namespace). */
  tmp: TmpImage | null;
  /** Interactive stdin (null: the process has none). */
  stdin: StdinState | null;
  /** Output posted and not acknowledged by `out.ack` yet (0 without flow control). */
  unacked: number;
  cpuMs: number;
  /** Offset of the next output byte (stdout and stderr together): `out.at` goes on from here. */
  outAt: number;
  /** The number of the process's next speculation (`<pid>~<n>`), so ids stay unique after a move. */
  specNext: number;
}

// ───────────────────────────── /tmp ─────────────────────────────

/** The node ids of /tmp the WASI fd table of `thread` holds. */
export function openTmpNodes(thread: ThreadSnapshot): NodeId[] {
  const wasi = thread.hostState[WASI] as WasiSnapshot | undefined;
  if (!wasi || !Array.isArray(wasi.fds)) return [];
  return wasi.fds.filter((f) => f.mount === TMP_MOUNT && f.node !== undefined).map((f) => f.node!);
}

/**
 * /tmp as data: every inode reachable from the root, plus the open ones (`open`) that are not.
 * File contents are views that later changes to `fs` leave as they are (MemFs.readShared).
 */
export function captureTmp(fs: MemFs, open: readonly NodeId[] = []): TmpImage {
  const nodes: TmpNode[] = [];
  const entries: TmpImage['entries'] = [];
  const seen = new Set<number>();
  const capture = (id: number): void => {
    if (seen.has(id)) return;
    seen.add(id);
    const st = fs.stat(id);
    if (st.type === 'directory') nodes.push({ id, kind: 'dir', atim: st.atim, mtim: st.mtim });
    else if (st.type === 'symlink') nodes.push({ id, kind: 'symlink', target: fs.readlink(id) });
    // shared, not copied (copy on write in MemFs): Fork On Wait captures /tmp at every fork
    else nodes.push({ id, kind: 'file', data: fs.readShared(id), atim: st.atim, mtim: st.mtim });
  };
  const root = fs.root as number;
  seen.add(root);
  const dirs = [root];
  while (dirs.length) {
    const dir = dirs.shift()!;
    for (const e of fs.readdir(dir, 0n)) {
      if (e.name === '.' || e.name === '..') continue;
      const node = fs.lookup(dir, e.name).node as number;
      const isNew = !seen.has(node);
      capture(node);
      entries.push({ dir, name: e.name, node });
      if (isNew && e.type === 'directory') dirs.push(node);
    }
  }
  for (const id of open) if (typeof id === 'number' && id !== root) capture(id);
  return { root, nodes, entries };
}

export interface RebuiltTmp {
  fs: MemFs;
  /** Old node id → new node id. */
  nodeMap: Map<number, number>;
  /** Unlinks the open-but-unlinked nodes again; call once the restored fds hold them. */
  dropOrphans(): void;
}

/** A new MemFs with the image's contents. */
export function rebuildTmp(image: TmpImage): RebuiltTmp {
  const fs = new MemFs();
  const nodeMap = new Map<number, number>([[image.root, fs.root as number]]);
  const byId = new Map(image.nodes.map((n) => [n.id, n]));
  const times: [number, bigint, bigint][] = [];
  const make = (dir: number, name: string, n: TmpNode): number => {
    let id: number;
    if (n.kind === 'dir') id = fs.mkdir(dir, name) as number;
    else if (n.kind === 'symlink') id = fs.symlink(dir, name, n.target) as number;
    else {
      id = fs.createFile(dir, name) as number;
      fs.write(id, 0, n.data);
    }
    if (n.kind !== 'symlink') times.push([id, n.atim, n.mtim]);
    nodeMap.set(n.id, id);
    return id;
  };
  for (const e of image.entries) {
    const dir = nodeMap.get(e.dir);
    const n = byId.get(e.node);
    if (dir === undefined || !n) throw new ImageError(`malformed process image: /tmp entry ${JSON.stringify(e.name)} names an unknown node`);
    const known = nodeMap.get(e.node);
    if (known !== undefined) fs.link(known, dir, e.name);
    else make(dir, e.name, n);
  }
  // Open but unlinked: created under a private name, unlinked again by dropOrphans.
  const orphans: { name: string; kind: TmpNode['kind'] }[] = [];
  for (const n of image.nodes) {
    if (nodeMap.has(n.id)) continue;
    const name = `.lshapes-orphan-${n.id}`;
    make(fs.root as number, name, n);
    orphans.push({ name, kind: n.kind });
  }
  for (const [id, atim, mtim] of times) fs.setTimes(id, atim, mtim);
  return {
    fs,
    nodeMap,
    dropOrphans() {
      for (const o of orphans.splice(0)) {
        if (o.kind === 'dir') fs.rmdir(fs.root, o.name);
        else fs.unlink(fs.root, o.name);
      }
    },
  };
}

/** The thread snapshot with its /tmp fds pointing at the rebuilt nodes. */
export function remapTmpFds(thread: ThreadSnapshot, nodeMap: ReadonlyMap<number, number>): ThreadSnapshot {
  const wasi = thread.hostState[WASI] as WasiSnapshot | undefined;
  if (!wasi || !Array.isArray(wasi.fds)) return thread;
  const fds = wasi.fds.map((f) => {
    if (f.mount !== TMP_MOUNT || typeof f.node !== 'number') return f;
    const node = nodeMap.get(f.node);
    if (node === undefined) throw new ImageError(`malformed process image: fd ${f.fd} is open on a /tmp node the image lacks`);
    return { ...f, node };
  });
  return { ...thread, hostState: { ...thread.hostState, [WASI]: { ...wasi, fds } } };
}

// ───────────────────────────── encoding ─────────────────────────────

/**
 * `summed` false: the checksum is left zero, for the caller to fill in (imageSum) before the image
 * leaves it — a frozen process's executor hashes it with WebCrypto instead of here, in JavaScript.
 */
export function encodeImage(image: ProcessImage, summed = true): Uint8Array {
  return (summed ? seal : sealUnsummed)(FORMAT, {
    v: IMAGE_FORMAT_VERSION,
    pid: image.pid,
    moduleHash: image.moduleHash,
    thread: snapshotToWire(image.thread),
    tmp: image.tmp && {
      root: image.tmp.root,
      // bigints as decimal strings: exact whatever msgpackr does with large ones
      nodes: image.tmp.nodes.map((n) =>
        n.kind === 'symlink'
          ? { id: n.id, kind: n.kind, target: n.target }
          : { ...n, atim: n.atim.toString(), mtim: n.mtim.toString() },
      ),
      entries: image.tmp.entries.map((e) => [e.dir, e.name, e.node]),
    },
    stdin: image.stdin,
    unacked: image.unacked,
    cpuMs: image.cpuMs,
    outAt: image.outAt,
    specNext: image.specNext,
  });
}

/** An image's checksum field and the payload it sums (encodeImage with `summed` false leaves the field to fill in). */
export function imageSum(bytes: Uint8Array): { sum: Uint8Array; payload: Uint8Array } {
  return sealParts(FORMAT, bytes);
}

/** `checked`: the seal's checksum was verified already (a migration's target did, before it said ready). */
export function decodeImage(bytes: Uint8Array, checked = false): ProcessImage {
  const raw = unseal(FORMAT, bytes, checked);
  return fromRaw(raw);
}

function fail(what: string): never {
  throw new ImageError(`malformed process image: ${what}`);
}

function obj(x: unknown, what: string): Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) fail(`${what} is not an object`);
  return x as Record<string, unknown>;
}

function count(x: unknown, what: string): number {
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) fail(`${what} is not a non-negative number`);
  return x;
}

function id(x: unknown, what: string): number {
  if (!Number.isSafeInteger(x) || (x as number) < 0) fail(`${what} is not a node id`);
  return x as number;
}

function time(x: unknown, what: string): bigint {
  if (typeof x !== 'string' || !/^-?\d+$/.test(x)) fail(`${what} is not a time`);
  return BigInt(x);
}

function fromRaw(raw: unknown): ProcessImage {
  const r = obj(raw, 'image');
  if (r.v !== IMAGE_FORMAT_VERSION) fail('inner version tag');
  if (typeof r.pid !== 'string' || r.pid === '') fail('pid');
  if (typeof r.moduleHash !== 'string' || !/^[0-9a-f]{64}$/.test(r.moduleHash)) fail('moduleHash is not a SHA-256 hex string');
  let thread: ThreadSnapshot;
  try {
    thread = snapshotFromWire(r.thread);
  } catch (e) {
    if (e instanceof SnapshotError) throw new ImageError(`process image: its thread ${e.message}`);
    throw e;
  }
  if (thread.moduleHash !== r.moduleHash) fail('the thread belongs to another module than the image says');
  let tmp: TmpImage | null = null;
  if (r.tmp !== null && r.tmp !== undefined) {
    const t = obj(r.tmp, 'tmp');
    if (!Array.isArray(t.nodes) || !Array.isArray(t.entries)) fail('tmp');
    const nodes = (t.nodes as unknown[]).map((x, i): TmpNode => {
      const n = obj(x, `tmp node ${i}`);
      const nid = id(n.id, `tmp node ${i} id`);
      if (n.kind === 'symlink') {
        if (typeof n.target !== 'string') fail(`tmp symlink ${i}`);
        return { id: nid, kind: 'symlink', target: n.target };
      }
      const atim = time(n.atim, `tmp node ${i} atim`);
      const mtim = time(n.mtim, `tmp node ${i} mtim`);
      if (n.kind === 'dir') return { id: nid, kind: 'dir', atim, mtim };
      if (n.kind === 'file' && n.data instanceof Uint8Array) return { id: nid, kind: 'file', data: n.data, atim, mtim };
      return fail(`tmp node ${i}`);
    });
    const entries = (t.entries as unknown[]).map((x, i) => {
      if (!Array.isArray(x) || x.length !== 3 || typeof x[1] !== 'string') fail(`tmp entry ${i}`);
      return { dir: id(x[0], `tmp entry ${i} dir`), name: x[1] as string, node: id(x[2], `tmp entry ${i} node`) };
    });
    tmp = { root: id(t.root, 'tmp root'), nodes, entries };
  }
  let stdin: StdinState | null = null;
  if (r.stdin !== null && r.stdin !== undefined) {
    const s = obj(r.stdin, 'stdin');
    if (!(s.data instanceof Uint8Array) || typeof s.ended !== 'boolean') fail('stdin');
    stdin = { data: s.data, ended: s.ended };
  }
  return {
    pid: r.pid,
    moduleHash: r.moduleHash,
    thread,
    tmp,
    stdin,
    unacked: count(r.unacked, 'unacked'),
    cpuMs: count(r.cpuMs, 'cpuMs'),
    // absent in images of older executors of this version: start from 0 / 1
    outAt: r.outAt === undefined ? 0 : count(r.outAt, 'outAt'),
    specNext: r.specNext === undefined ? 1 : count(r.specNext, 'specNext'),
  };
}
