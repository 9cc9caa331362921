// Periodic checkpoints of processes (packed process images, transfer.ts), kept in the cluster
// filesystem so they are replicated like any file and outlive the peer that wrote them.
//
// Each pid has two slot files in `dir`, `<pid>.ckpt-a` and `<pid>.ckpt-b`; each slot is
//
//   "LSHCKPT\0" (8) | format version (u32 LE) | sequence (u32 LE) | length (u32 LE) | SHA-256 of the data (32) | data
//
// A save overwrites the slot that does not hold the newest valid checkpoint, then syncs it (the
// cluster filesystem answers once two peers hold it), so the previous checkpoint stays intact
// until the new one is complete. A load takes the valid slot with the higher sequence; a slot a
// crash or a concurrent writer left half-written fails its checksum and is passed over (load
// throws only when there are slot files and none is usable). A slot whose data cannot be read (its
// writer's peer died before the sync, holding the only copy of its blocks) is passed over too.
// So a save replaces the checkpoint
// atomically, as writing a temp file and renaming it over the old one would, without rename's
// cost here: in the cluster filesystem a rename over a file sends the old file to the trash,
// which every checkpoint (every few seconds, per process) would fill until a person empties it.
//
// Removal truncates the slots to nothing before unlinking them, so the entries left in the trash
// hold no data. Pids are [0-9a-f.]; `-` is not among them, so names parse back unambiguously.
import { sha256 } from '@noble/hashes/sha2.js';
import { Errno, FsError, fsError } from '../../kernel/wasi/errno.ts';
import type { FileSystem, NodeId } from '../../kernel/wasi/vfs.ts';

export const CHECKPOINT_DIR = '/.lshapes/checkpoints';
export const CHECKPOINT_FORMAT_VERSION = 1;
const MAGIC = new Uint8Array([0x4c, 0x53, 0x48, 0x43, 0x4b, 0x50, 0x54, 0x00]); // "LSHCKPT\0"
const HEADER = MAGIC.length + 12 + 32;
const SLOTS = ['a', 'b'] as const;
type Slot = (typeof SLOTS)[number];
const SLOT_NAME = /^([0-9a-f.]+)\.ckpt-[ab]$/;
/** Read in pieces no larger than this (a filesystem may cap single reads). */
const READ_CHUNK = 4 << 20;

/** A slot as found: valid (with its sequence), absent, or present but unusable (torn, foreign). */
type SlotState = { kind: 'valid'; seq: number; data: Uint8Array } | { kind: 'absent' } | { kind: 'invalid'; why: string };

export class CheckpointStore {
  /** Saves of one pid run one after another, so two never pick the same slot. */
  private readonly saving = new Map<string, Promise<void>>();
  private readonly parts: string[];

  constructor(
    private readonly fs: FileSystem,
    readonly dir: string = CHECKPOINT_DIR,
  ) {
    this.parts = dir.split('/').filter((c) => c !== '');
    if (!dir.startsWith('/') || this.parts.some((c) => c === '.' || c === '..')) {
      throw new TypeError(`checkpoint folder must be an absolute path without . or ..: ${dir}`);
    }
  }

  /** Replaces the checkpoint of `pid` with `packed`, atomically; resolves once it is synced. */
  save(pid: string, packed: Uint8Array): Promise<void> {
    try {
      checkPid(pid);
      if (!(packed instanceof Uint8Array)) throw new TypeError(`checkpoint of ${pid} must be bytes`);
      if (packed.length > 0xffff_ffff - HEADER) throw new RangeError(`checkpoint of ${pid} is too large (${packed.length} bytes)`);
    } catch (e) {
      return Promise.reject(e);
    }
    const prev = this.saving.get(pid) ?? Promise.resolve();
    const run = prev.catch(() => {}).then(() => this.write(pid, packed));
    this.saving.set(pid, run);
    const done = () => {
      if (this.saving.get(pid) === run) this.saving.delete(pid);
    };
    run.then(done, done);
    return run;
  }

  /** The newest complete checkpoint of `pid`; undefined when there is none; throws when its files are all unusable. */
  async load(pid: string): Promise<Uint8Array | undefined> {
    checkPid(pid);
    return this.withPid(pid, 'load', async () => {
      const dir = await this.folder(false);
      if (dir === undefined) return undefined;
      const states = await Promise.all(SLOTS.map((s) => this.readSlot(dir, pid, s)));
      const latest = newest(states);
      if (latest) return latest.data;
      const bad = states.flatMap((s, i) => (s.kind === 'invalid' ? [`${slotName(pid, SLOTS[i]!)}: ${s.why}`] : []));
      // Files there but none usable: say so rather than pretend there never was a checkpoint.
      if (bad.length) throw new Error(`it is unusable (${bad.join('; ')})`);
      return undefined;
    });
  }

  /** Whether `pid` has a checkpoint slot with data (not read nor checked: a cheap look, for deciding whether to wait for a restart). */
  async has(pid: string): Promise<boolean> {
    checkPid(pid);
    return this.withPid(pid, 'look up', async () => {
      const dir = await this.folder(false);
      if (dir === undefined) return false;
      for (const s of SLOTS) {
        const node = await this.slotNode(dir, pid, s);
        if (node !== undefined && (await this.fs.stat(node)).size > 0) return true;
      }
      return false;
    });
  }

  /** Drops the checkpoint of `pid` (nothing to do when there is none). */
  async remove(pid: string): Promise<void> {
    checkPid(pid);
    await this.saving.get(pid)?.catch(() => {});
    return this.withPid(pid, 'remove', async () => {
      const dir = await this.folder(false);
      if (dir === undefined) return;
      for (const s of SLOTS) {
        const node = await this.slotNode(dir, pid, s);
        if (node === undefined) continue;
        // Emptied first, so the entry the cluster filesystem keeps in its trash holds no data.
        await this.fs.truncate(node, 0);
        await this.fs.sync?.(node, false);
        await this.fs.unlink(dir, slotName(pid, s));
      }
    });
  }

  /** The pids that have a checkpoint file, sorted. */
  async list(): Promise<string[]> {
    return this.withPid(undefined, 'list', async () => {
      const dir = await this.folder(false);
      if (dir === undefined) return [];
      const pids = new Set<string>();
      for (const e of await this.fs.readdir(dir, 0n)) {
        const m = SLOT_NAME.exec(e.name);
        if (m && e.type === 'file') pids.add(m[1]!);
      }
      return [...pids].sort();
    });
  }

  private write(pid: string, packed: Uint8Array): Promise<void> {
    return this.withPid(pid, 'save', async () => {
      const dir = (await this.folder(true))!;
      const states = await Promise.all(SLOTS.map((s) => this.readSlot(dir, pid, s)));
      const latest = newest(states);
      // The slot not holding the newest checkpoint: overwriting it leaves that one intact.
      const slot: Slot = latest === undefined ? 'a' : SLOTS[1 - latest.index]!;
      const seq = ((latest?.seq ?? 0) + 1) >>> 0;
      const bytes = encodeSlot(seq, packed);
      const node = (await this.slotNode(dir, pid, slot)) ?? (await this.fs.createFile(dir, slotName(pid, slot)));
      await this.fs.write(node, 0, bytes);
      await this.fs.truncate(node, bytes.length);
      await this.fs.sync?.(node, false);
    });
  }

  private async readSlot(dir: NodeId, pid: string, slot: Slot): Promise<SlotState> {
    const node = await this.slotNode(dir, pid, slot);
    if (node === undefined) return { kind: 'absent' };
    const size = (await this.fs.stat(node)).size;
    // created, never written (a first save cut short): as good as absent
    if (size === 0) return { kind: 'absent' };
    const bytes = new Uint8Array(size);
    try {
      for (let at = 0; at < size; ) {
        const chunk = await this.fs.read(node, at, Math.min(READ_CHUNK, size - at));
        if (chunk.length === 0) break; // shrank while read: the checksum decides
        bytes.set(chunk.subarray(0, size - at), at);
        at += chunk.length;
      }
    } catch (e) {
      // A save its writer's peer did not live to sync: the cluster filesystem already lists the
      // new size, but its blocks were only there. Unusable, like a torn write; the other slot was synced.
      return { kind: 'invalid', why: `unreadable: ${(e as Error)?.message ?? String(e)}` };
    }
    return decodeSlot(bytes);
  }

  private async slotNode(dir: NodeId, pid: string, slot: Slot): Promise<NodeId | undefined> {
    try {
      const l = await this.fs.lookup(dir, slotName(pid, slot));
      if (l.type !== 'file') throw fsError('ISDIR', `${this.dir}/${slotName(pid, slot)} is not a file`);
      return l.node;
    } catch (e) {
      if (isNoent(e)) return undefined;
      throw e;
    }
  }

  /** The checkpoint folder, created on first use when `create`; undefined if it is missing and not to be created. */
  private async folder(create: boolean): Promise<NodeId | undefined> {
    let node = this.fs.root;
    for (const name of this.parts) {
      try {
        node = (await this.fs.lookup(node, name)).node;
      } catch (e) {
        if (!isNoent(e)) throw e;
        if (!create) return undefined;
        try {
          node = await this.fs.mkdir(node, name);
        } catch (e2) {
          // made meanwhile by another save: use that one
          if (!(e2 instanceof FsError && e2.errno === Errno.EXIST)) throw e2;
          node = (await this.fs.lookup(node, name)).node;
        }
      }
    }
    return node;
  }

  /** Runs `f`, naming the pid (and what was being done) in any error, keeping an FsError's errno. */
  private async withPid<T>(pid: string | undefined, what: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      const message = `cannot ${what} ${pid === undefined ? 'checkpoints' : `the checkpoint of ${pid}`} in ${this.dir}: ${(e as Error)?.message ?? String(e)}`;
      if (e instanceof FsError) throw new FsError(e.errno, message);
      throw new Error(message, { cause: e });
    }
  }
}

function checkPid(pid: string): void {
  if (typeof pid !== 'string' || !/^[0-9a-f.]{1,200}$/.test(pid) || pid === '.' || pid === '..') {
    throw new TypeError(`not a process id: ${JSON.stringify(pid)} (expected hex digits and dots)`);
  }
}

const slotName = (pid: string, slot: Slot) => `${pid}.ckpt-${slot}`;

function isNoent(e: unknown): boolean {
  return e instanceof FsError && e.errno === Errno.NOENT;
}

/** The valid slot with the higher sequence (wrapping: the one just after the other), and its index. */
function newest(states: SlotState[]): { index: number; seq: number; data: Uint8Array } | undefined {
  let best: { index: number; seq: number; data: Uint8Array } | undefined;
  states.forEach((s, index) => {
    if (s.kind !== 'valid') return;
    // sequences are u32: b is newer than a when it is less than 2^31 ahead of it
    if (!best || ((s.seq - best.seq) >>> 0) < 0x8000_0000) best = { index, seq: s.seq, data: s.data };
  });
  return best;
}

function encodeSlot(seq: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER + data.length);
  out.set(MAGIC, 0);
  const view = new DataView(out.buffer);
  view.setUint32(MAGIC.length, CHECKPOINT_FORMAT_VERSION, true);
  view.setUint32(MAGIC.length + 4, seq, true);
  view.setUint32(MAGIC.length + 8, data.length, true);
  out.set(sha256(data), MAGIC.length + 12);
  out.set(data, HEADER);
  return out;
}

function decodeSlot(bytes: Uint8Array): SlotState {
  if (bytes.length < HEADER) return { kind: 'invalid', why: 'truncated' };
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) return { kind: 'invalid', why: 'not a checkpoint' };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(MAGIC.length, true) !== CHECKPOINT_FORMAT_VERSION) return { kind: 'invalid', why: 'another format version' };
  const seq = view.getUint32(MAGIC.length + 4, true);
  const length = view.getUint32(MAGIC.length + 8, true);
  if (bytes.length !== HEADER + length) return { kind: 'invalid', why: 'truncated' };
  const data = bytes.subarray(HEADER);
  const sum = sha256(data);
  for (let i = 0; i < 32; i++) if (sum[i] !== bytes[MAGIC.length + 12 + i]) return { kind: 'invalid', why: 'checksum mismatch' };
  return { kind: 'valid', seq, data };
}
