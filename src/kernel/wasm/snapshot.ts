// One snapshot, three uses (DESIGN.md): a paused or blocked thread as one serializable value.
// Fork On Wait forks it, the Dispatcher migrates it, fault tolerance checkpoints it.
//
// In memory a ThreadSnapshot is plain data (Uint8Arrays, numbers, bigints, strings). On the wire
// it is `encodeSnapshot(s)`:
//
//   "LSHSNAP\0" (8 bytes) | format version (u32 LE) | SHA-256 of the payload (32 bytes) | payload
//
// where the payload is MessagePack (msgpackr). Decoding refuses, with a SnapshotError, anything
// that is truncated, corrupt (checksum), of another format version or malformed; restoring
// refuses a snapshot of another module (WasmThread.restore checks the module hash).

import { SnapshotError } from './errors.ts';
import { seal, unseal, type SealedFormat } from './sealed.ts';

export const SNAPSHOT_FORMAT_VERSION = 1;
const FORMAT: SealedFormat = {
  magic: new Uint8Array([0x4c, 0x53, 0x48, 0x53, 0x4e, 0x41, 0x50, 0x00]), // "LSHSNAP\0"
  version: SNAPSHOT_FORMAT_VERSION,
  noun: 'snapshot',
  title: 'thread snapshot',
  error: (message) => new SnapshotError(message),
};

/** Linear memory with runs of all-zero chunks left out. */
export interface MemoryImage {
  /** Size in 64 KiB pages. */
  pages: number;
  /** Non-zero runs, ascending, non-overlapping; everything else is zero. */
  runs: { offset: number; bytes: Uint8Array }[];
}

/** The result a blocked host call settled with (kept when the snapshot is taken after it settled). */
export type SettledCall =
  | { ok: true; value: number | bigint | undefined }
  | { ok: false; exitCode: number }
  | { ok: false; message: string };

export interface PendingCall {
  module: string;
  name: string;
  args: (number | bigint)[];
  /** Present when the call had already settled but the thread had not resumed yet. */
  settled?: SettledCall;
}

export interface ThreadSnapshot {
  /** SHA-256 hex of the original program bytes. */
  moduleHash: string;
  /** RuntimeLayout.abi of the rewrite that produced the running module. */
  abi: number;
  /** 'fresh': never run; 'yielded': paused at a preemption point; 'blocked': in a host call. */
  status: 'fresh' | 'yielded' | 'blocked';
  /** The export sequence the thread runs (wasm start function, then the entry) and where it is. */
  entries: string[];
  entryIndex: number;
  memory: MemoryImage;
  /** Mutable globals by name (i64 as bigint), __stack_pointer included. */
  globals: Record<string, number | bigint>;
  /** The Asyncify data: the unwound stack, position-independent (null when fresh). */
  asyncify: Uint8Array | null;
  /** HostModule.snapshot() per host module name. */
  hostState: Record<string, unknown>;
  /** The host call the thread is blocked in (status 'blocked'). */
  pending: PendingCall | null;
  /** Preemption points passed so far (accounting; not needed to resume). */
  fuelUsed: number;
}

// ---------------------------------------------------------------------------------------------
// Memory images

const CHUNK = 4096;

export function captureMemory(memory: WebAssembly.Memory): MemoryImage {
  const buf = memory.buffer;
  const words = new Uint32Array(buf);
  const bytes = new Uint8Array(buf);
  const runs: MemoryImage['runs'] = [];
  const chunkWords = CHUNK / 4;
  let runStart = -1;
  const nChunks = buf.byteLength / CHUNK;
  for (let c = 0; c < nChunks; c++) {
    let zero = true;
    for (let w = c * chunkWords, end = w + chunkWords; w < end; w++) {
      if (words[w] !== 0) {
        zero = false;
        break;
      }
    }
    if (!zero && runStart < 0) runStart = c;
    if (zero && runStart >= 0) {
      runs.push({ offset: runStart * CHUNK, bytes: bytes.slice(runStart * CHUNK, c * CHUNK) });
      runStart = -1;
    }
  }
  if (runStart >= 0) runs.push({ offset: runStart * CHUNK, bytes: bytes.slice(runStart * CHUNK) });
  return { pages: buf.byteLength / 65536, runs };
}

/** Makes `memory` equal to the image (grows it; the image must not be smaller). */
export function applyMemory(memory: WebAssembly.Memory, image: MemoryImage): void {
  const current = memory.buffer.byteLength / 65536;
  if (image.pages < current) {
    throw new SnapshotError(`snapshot memory (${image.pages} pages) is smaller than the module's initial memory (${current} pages)`);
  }
  if (image.pages > current) {
    try {
      memory.grow(image.pages - current);
    } catch (e) {
      throw new SnapshotError(`cannot grow memory to the snapshot's ${image.pages} pages: ${(e as Error).message}`);
    }
  }
  const bytes = new Uint8Array(memory.buffer);
  bytes.fill(0);
  for (const run of image.runs) {
    if (run.offset + run.bytes.length > bytes.length) throw new SnapshotError('snapshot memory run lies outside the memory');
    bytes.set(run.bytes, run.offset);
  }
}

export function memoryImageBytes(image: MemoryImage): number {
  return image.runs.reduce((n, r) => n + r.bytes.length, 0);
}

// ---------------------------------------------------------------------------------------------
// Encoding

export function encodeSnapshot(s: ThreadSnapshot): Uint8Array {
  return seal(FORMAT, snapshotToWire(s));
}

/**
 * The snapshot as a MessagePack-ready value, unsealed: for containers that seal it themselves
 * (a process image), so the memory is not checksummed and copied twice.
 */
export function snapshotToWire(s: ThreadSnapshot): unknown {
  validateSnapshot(s);
  return {
    v: SNAPSHOT_FORMAT_VERSION,
    moduleHash: s.moduleHash,
    abi: s.abi,
    status: s.status,
    entries: s.entries,
    entryIndex: s.entryIndex,
    memory: { pages: s.memory.pages, runs: s.memory.runs.map((r) => [r.offset, r.bytes]) },
    // bigint survives msgpackr (useBigInt64), but only as int64: tag the kind to be exact.
    globals: Object.entries(s.globals).map(([k, v]) => (typeof v === 'bigint' ? [k, 'b', v.toString()] : [k, 'n', v])),
    asyncify: s.asyncify,
    hostState: s.hostState,
    pending: s.pending && {
      module: s.pending.module,
      name: s.pending.name,
      args: s.pending.args.map((a) => (typeof a === 'bigint' ? ['b', a.toString()] : ['n', a])),
      settled: s.pending.settled ? encodeSettled(s.pending.settled) : null,
    },
    fuelUsed: s.fuelUsed,
  };
}

function encodeSettled(x: SettledCall): unknown {
  if (x.ok) return { ok: true, value: x.value === undefined ? null : typeof x.value === 'bigint' ? ['b', x.value.toString()] : ['n', x.value] };
  return 'exitCode' in x ? { ok: false, exitCode: x.exitCode } : { ok: false, message: x.message };
}

export function decodeSnapshot(bytes: Uint8Array): ThreadSnapshot {
  return snapshotFromWire(unseal(FORMAT, bytes));
}

/** The inverse of snapshotToWire; throws SnapshotError for anything malformed. */
export function snapshotFromWire(raw: unknown): ThreadSnapshot {
  const s = fromRaw(raw);
  validateSnapshot(s);
  return s;
}

function fail(what: string): never {
  throw new SnapshotError(`malformed snapshot: ${what}`);
}

function obj(x: unknown, what: string): Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) fail(`${what} is not an object`);
  return x as Record<string, unknown>;
}

function num(x: unknown, what: string): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) fail(`${what} is not a number`);
  return x;
}

function taggedNumber(x: unknown, what: string): number | bigint {
  if (!Array.isArray(x) || x.length !== 2) fail(`${what} is not a tagged number`);
  const [tag, v] = x as [unknown, unknown];
  if (tag === 'b' && typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  if (tag === 'n' && typeof v === 'number') return v;
  fail(`${what} is not a tagged number`);
}

function fromRaw(raw: unknown): ThreadSnapshot {
  const r = obj(raw, 'snapshot');
  if (r.v !== SNAPSHOT_FORMAT_VERSION) fail('inner version tag');
  const mem = obj(r.memory, 'memory');
  if (!Array.isArray(mem.runs)) fail('memory.runs is not an array');
  if (!Array.isArray(r.globals)) fail('globals is not an array');
  const globals: Record<string, number | bigint> = {};
  for (const g of r.globals as unknown[]) {
    if (!Array.isArray(g) || g.length !== 3 || typeof g[0] !== 'string') fail('a global entry');
    globals[g[0]] = taggedNumber([g[1], g[2]], `global ${g[0]}`);
  }
  let pending: PendingCall | null = null;
  if (r.pending !== null && r.pending !== undefined) {
    const p = obj(r.pending, 'pending');
    if (typeof p.module !== 'string' || typeof p.name !== 'string' || !Array.isArray(p.args)) fail('pending call');
    pending = {
      module: p.module,
      name: p.name,
      args: (p.args as unknown[]).map((a, i) => taggedNumber(a, `pending argument ${i}`)),
    };
    if (p.settled !== null && p.settled !== undefined) {
      const st = obj(p.settled, 'pending.settled');
      if (st.ok === true) pending.settled = { ok: true, value: st.value === null ? undefined : taggedNumber(st.value, 'settled value') };
      else if (typeof st.exitCode === 'number') pending.settled = { ok: false, exitCode: st.exitCode };
      else if (typeof st.message === 'string') pending.settled = { ok: false, message: st.message };
      else fail('pending.settled');
    }
  }
  const hostState = r.hostState === undefined ? {} : obj(r.hostState, 'hostState');
  return {
    moduleHash: r.moduleHash as string,
    abi: num(r.abi, 'abi'),
    status: r.status as ThreadSnapshot['status'],
    entries: r.entries as string[],
    entryIndex: num(r.entryIndex, 'entryIndex'),
    memory: {
      pages: num(mem.pages, 'memory.pages'),
      runs: (mem.runs as unknown[]).map((run, i) => {
        if (!Array.isArray(run) || run.length !== 2 || !(run[1] instanceof Uint8Array)) fail(`memory run ${i}`);
        return { offset: num(run[0], `memory run ${i} offset`), bytes: run[1] as Uint8Array };
      }),
    },
    globals,
    asyncify: r.asyncify === null || r.asyncify === undefined ? null : (r.asyncify as Uint8Array),
    hostState,
    pending,
    fuelUsed: num(r.fuelUsed ?? 0, 'fuelUsed'),
  };
}

/** Structural checks shared by encode (catch bugs early) and decode (refuse bad input). */
export function validateSnapshot(s: ThreadSnapshot): void {
  if (typeof s.moduleHash !== 'string' || !/^[0-9a-f]{64}$/.test(s.moduleHash)) fail('moduleHash is not a SHA-256 hex string');
  if (!Number.isInteger(s.abi)) fail('abi');
  if (s.status !== 'fresh' && s.status !== 'yielded' && s.status !== 'blocked') fail(`unknown status ${String(s.status)}`);
  if (!Array.isArray(s.entries) || s.entries.length === 0 || !s.entries.every((e) => typeof e === 'string')) fail('entries');
  if (!Number.isInteger(s.entryIndex) || s.entryIndex < 0 || s.entryIndex >= s.entries.length) fail('entryIndex');
  const { pages, runs } = s.memory;
  if (!Number.isInteger(pages) || pages < 0 || pages > 65536) fail('memory.pages');
  let end = 0;
  for (const run of runs) {
    if (!(run.bytes instanceof Uint8Array) || !Number.isInteger(run.offset) || run.offset < end) fail('memory runs overlap or are unordered');
    end = run.offset + run.bytes.length;
    if (end > pages * 65536) fail('a memory run lies outside the memory');
  }
  for (const [k, v] of Object.entries(s.globals)) {
    if (typeof v !== 'number' && typeof v !== 'bigint') fail(`global ${k}`);
  }
  if (s.status === 'fresh') {
    if (s.asyncify !== null || s.pending !== null) fail('a fresh snapshot has stack data or a pending call');
  } else if (!(s.asyncify instanceof Uint8Array)) {
    fail('a paused snapshot has no Asyncify stack data');
  }
  if (s.status === 'blocked' && !s.pending) fail('a blocked snapshot has no pending call');
  if (s.status !== 'blocked' && s.pending) fail('only a blocked snapshot has a pending call');
  if (typeof s.hostState !== 'object' || s.hostState === null) fail('hostState');
}
