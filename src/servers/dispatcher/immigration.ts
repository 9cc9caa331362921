// A process arriving at this peer: the checks an `immigrate` passes before anything runs, and the
// checkpoint record (what a spawner needs to restart a process on another peer). Part of the
// Scheduler actor like the rest of the Dispatcher (see emigration.ts).
//
// An image crosses peers compressed and authenticated with a key only cluster members can derive
// (transfer.ts). The receiver refuses, with the reason, a module that is not the one its hash
// names, an image from outside the cluster (bad MAC), and a truncated, corrupt, other-version,
// other-process or other-program image (decodeImage and the checks after it). Nothing starts
// until all of that passed, and then only when the sender says go (the hand-over's commit step:
// emigration.ts). A pre-copied move's image comes as a delta against a base this peer keeps
// (BaseStore below): rebuilt and checked against the checksum its seal carries (admitDelta).
import type { SpeculationMode } from '../../kernel/process/protocol.ts';
import { decodeImage, ImageError } from '../../kernel/process/image.ts';
import type { Pid } from '../../kernel/process/protocol.ts';
import { seal, unseal, type SealedFormat } from '../../kernel/wasm/sealed.ts';
import { toHex, type Address, type PeerId } from '../../kernel/types.ts';
import { applyDelta, DeltaError, imageCheck, MAX_IMAGE_BYTES, TransferError, unpackImage, verifyImage, type Hmac } from './transfer.ts';
import { FREEZE_TIMEOUT_MS, IMMIGRATE_TIMEOUT_MS } from './emigration.ts';

export interface Keys {
  /** The cluster's image key (imageKey in transfer.ts), or undefined on a peer that has none. */
  key: Uint8Array | undefined;
  hmac: Hmac;
  sha256(data: Uint8Array): Promise<Uint8Array>;
}

/**
 * What admitImage, admitBase and admitDelta answer: the raw (sealed) image, or why it is refused.
 * A decoded image (admitImage) also gives the last `seq` the process took from each sender (its
 * lshapes state): what a restart from a checkpoint asks the other peers to send again above
 * (scheduler/message-log.ts).
 */
export type Admission = { ok: true; image: Uint8Array; cpuMs: number; lastSeen?: [Pid, number][] } | { ok: false; reason: string };

/** The raw (sealed) process image when every check passed, or the reason it is refused. */
export async function admitImage(
  m: { pid: Pid; hash: string; module: Uint8Array; image: Uint8Array },
  keys: Keys,
): Promise<Admission> {
  if (!keys.key) return { ok: false, reason: 'this peer cannot authenticate process images' };
  const moduleOk = await checkModule(m, keys);
  if (moduleOk) return moduleOk;
  let raw: Uint8Array;
  try {
    raw = await unpackImage(m.image, keys.key, keys.hmac);
  } catch (e) {
    if (e instanceof TransferError) return { ok: false, reason: e.message };
    return { ok: false, reason: `cannot open the image: ${(e as Error).message}` };
  }
  // Its seal's checksum by WebCrypto (several times faster than decodeImage's own, in JavaScript);
  // one that does not match is left to decodeImage, which says why.
  let checked = false;
  try {
    checked = await verifyImage(keys.sha256)(raw, imageCheck(raw));
  } catch {
    // not an image at all: decodeImage says so
  }
  return checkImage(m, raw, checked);
}

/** undefined when `m.module` is the program `m.hash` names; otherwise the refusal. */
async function checkModule(m: { hash: string; module: Uint8Array }, keys: Keys): Promise<Admission | undefined> {
  let digest: Uint8Array;
  try {
    digest = await keys.sha256(m.module);
  } catch (e) {
    return { ok: false, reason: `cannot hash the module: ${(e as Error).message}` };
  }
  if (toHex(digest) !== m.hash) return { ok: false, reason: 'the module does not match its hash' };
  return undefined;
}

/** The checks every raw image passes, however it arrived: it decodes, and it is this process of this program. */
function checkImage(m: { pid: Pid; hash: string }, raw: Uint8Array, checked: boolean): Admission {
  try {
    const image = decodeImage(raw, checked);
    if (image.pid !== m.pid) return { ok: false, reason: `the process image is of process ${image.pid}, not ${m.pid}` };
    if (image.moduleHash !== m.hash) return { ok: false, reason: 'the process image belongs to another program' };
    return { ok: true, image: raw, cpuMs: image.cpuMs, lastSeen: lastSeenOf(image.thread.hostState['lshapes']) };
  } catch (e) {
    if (e instanceof ImageError) return { ok: false, reason: e.message };
    return { ok: false, reason: `cannot decode the image: ${(e as Error).message}` };
  }
}

// ───────────────────────────── pre-copy bases ─────────────────────────────
//
// A pre-copy (emigration.ts) sends the target a base first: a checkpoint image of the process,
// taken while it goes on running, with its program. The target checks it like any image
// (admitBase: decoded, this process, this program) and keeps it, never runs it; the final image
// then comes as a delta against it (admitDelta), which the target rebuilds and checks byte for
// byte (the SHA-256 of its payload against its seal's checksum, which the delta names) — and does
// not decode again while the process stands still: what a decode checks was checked on the base,
// the delta is authenticated, and the executor decodes the image (pid, program, checksum) when it
// thaws it; an image it refuses then is a failed thaw after go, and its sender thaws its own
// again (emigration.ts). A delta whose base is not here (dropped, expired, this peer restarted)
// or not the one it was made against is refused with `noBase`: its sender sends the full image.

/** A checked base, kept for the move `ref` of `pid` from `from`. */
export interface Base {
  from: PeerId;
  ref: number;
  pid: Pid;
  hash: string;
  module: Uint8Array;
  /** The raw (sealed) image. */
  image: Uint8Array;
  /** Its SHA-256 (a delta names the base it was made against by it). */
  sha: Uint8Array;
  /** The CPU time it reports (the final image's is known once it runs: its first state). */
  cpuMs: number;
}

/**
 * Bytes of bases (images and modules) a peer keeps at once: one image as large as a transfer may
 * be, so any single move can pre-copy, and bases never take more memory than one more image.
 * A base that does not fit is refused; its move goes stop-and-copy.
 */
export const MAX_BASE_BYTES = MAX_IMAGE_BYTES;

/**
 * A base is dropped when no delta came for it by then: after its ack the sender freezes
 * (FREEZE_TIMEOUT_MS) and ships the delta (IMMIGRATE_TIMEOUT_MS) within its own bounds.
 */
export const BASE_KEEP_MS = FREEZE_TIMEOUT_MS + IMMIGRATE_TIMEOUT_MS;

interface BaseEntry {
  from: PeerId;
  ref: number;
  bytes: number;
  base?: Base;
  cancelTimer: () => void;
}

/**
 * The bases a peer keeps: at most one per process (a newer one replaces it: a process moves from
 * one host at a time, so the older one belongs to a move that is over), at most MAX_BASE_BYTES in
 * all (a base being checked holds its room). Each goes when its delta takes it, when its sender
 * cancels the move or leaves the view, or after BASE_KEEP_MS.
 */
export class BaseStore {
  private readonly entries = new Map<Pid, BaseEntry>();
  private total = 0;

  constructor(
    private readonly setTimeout: (fn: () => void, ms: number) => () => void,
    private readonly maxBytes = MAX_BASE_BYTES,
    private readonly keepMs = BASE_KEEP_MS,
  ) {}

  /** Bytes held (kept or being checked). */
  get bytes(): number {
    return this.total;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Holds room for a base of `bytes` while it is checked; the reason when there is none. */
  reserve(pid: Pid, from: PeerId, ref: number, bytes: number): string | undefined {
    this.drop(pid);
    if (this.total + bytes > this.maxBytes) {
      return `no room for a pre-copy base (${mib(bytes)} MiB; ${mib(this.total)} of ${mib(this.maxBytes)} MiB held)`;
    }
    const entry: BaseEntry = {
      from,
      ref,
      bytes,
      cancelTimer: this.setTimeout(() => {
        if (this.entries.get(pid) === entry) this.remove(pid, entry);
      }, this.keepMs),
    };
    this.entries.set(pid, entry);
    this.total += bytes;
    return undefined;
  }

  /** The checked base for its reservation: undefined when kept, the reason otherwise (dropped meanwhile, or larger than reserved and no room). */
  keep(base: Base): string | undefined {
    const entry = this.entries.get(base.pid);
    if (!entry || entry.from !== base.from || entry.ref !== base.ref || entry.base) return 'its move was cancelled while the base was checked';
    const bytes = base.image.length + base.module.length;
    if (this.total - entry.bytes + bytes > this.maxBytes) {
      this.remove(base.pid, entry);
      return `no room for a pre-copy base (${mib(bytes)} MiB)`;
    }
    this.total += bytes - entry.bytes;
    entry.bytes = bytes;
    entry.base = base;
    return undefined;
  }

  /** Whether a reservation or base for move `ref` of `pid` from `from` is held. */
  holds(pid: Pid, from: PeerId, ref: number): boolean {
    const e = this.entries.get(pid);
    return !!e && e.from === from && e.ref === ref;
  }

  /** Takes (removes) the checked base of move `ref` of `pid` from `from`; undefined when there is none. */
  take(pid: Pid, from: PeerId, ref: number): Base | undefined {
    const e = this.entries.get(pid);
    if (!e || e.from !== from || e.ref !== ref) return undefined;
    this.remove(pid, e);
    return e.base;
  }

  /** Drops what is held for `pid` (only from `from`, or only for move `ref`, when given). */
  drop(pid: Pid, from?: PeerId, ref?: number): void {
    const e = this.entries.get(pid);
    if (!e || (from !== undefined && e.from !== from) || (ref !== undefined && e.ref !== ref)) return;
    this.remove(pid, e);
  }

  /** Drops everything `peer` sent (it left the view). */
  dropFrom(peer: PeerId): void {
    for (const [pid, e] of [...this.entries]) if (e.from === peer) this.remove(pid, e);
  }

  private remove(pid: Pid, e: BaseEntry): void {
    this.entries.delete(pid);
    this.total -= e.bytes;
    e.cancelTimer();
  }
}

const mib = (n: number) => (n / (1 << 20)).toFixed(1);

/** A base (a checkpoint image and its program): checked like any image, and its SHA-256 for the delta. */
export async function admitBase(
  m: { pid: Pid; hash: string; module: Uint8Array; image: Uint8Array },
  keys: Keys,
): Promise<{ ok: true; image: Uint8Array; sha: Uint8Array; cpuMs: number } | { ok: false; reason: string }> {
  const r = await admitImage(m, keys);
  if (!r.ok) return r;
  try {
    return { ok: true, image: r.image, sha: await keys.sha256(r.image), cpuMs: r.cpuMs };
  } catch (e) {
    return { ok: false, reason: `cannot hash the base: ${(e as Error).message}` };
  }
}

/**
 * The final image of a move, from its delta (packed, as it travels) against `base` (undefined:
 * this peer keeps none for it): rebuilt and checked byte for byte (transfer.ts verifyImage), not
 * decoded (see above). `noBase`: the base is missing or not the one the delta was made against
 * (or rebuilds other bytes): the sender should send the full image.
 */
export async function admitDelta(
  m: { pid: Pid; hash: string; delta: Uint8Array },
  base: Pick<Base, 'pid' | 'hash' | 'image' | 'sha' | 'cpuMs'> | undefined,
  keys: Keys,
): Promise<Admission | { ok: false; reason: string; noBase: true }> {
  if (!keys.key) return { ok: false, reason: 'this peer cannot authenticate process images' };
  if (!base) return { ok: false, noBase: true, reason: 'no base: this peer keeps no pre-copy image of it (dropped, expired, or restarted)' };
  if (base.hash !== m.hash) return { ok: false, noBase: true, reason: 'no base: the pre-copy image kept here is of another program' };
  if (base.pid !== m.pid) return { ok: false, noBase: true, reason: `no base: the pre-copy image kept here is of process ${base.pid}` };
  let delta: Uint8Array;
  try {
    delta = await unpackImage(m.delta, keys.key, keys.hmac);
  } catch (e) {
    if (e instanceof TransferError) return { ok: false, reason: `the delta: ${e.message}` };
    return { ok: false, reason: `cannot open the delta: ${(e as Error).message}` };
  }
  let raw: Uint8Array;
  try {
    raw = await applyDelta(base.image, base.sha, delta, verifyImage(keys.sha256));
  } catch (e) {
    if (e instanceof DeltaError) {
      if (e.reason === 'other-base' || e.reason === 'mismatch') return { ok: false, noBase: true, reason: `no base: ${e.message}` };
      return { ok: false, reason: e.message };
    }
    return { ok: false, reason: `cannot rebuild the image: ${(e as Error).message}` };
  }
  return { ok: true, image: raw, cpuMs: base.cpuMs };
}

/** At most this many senders' numbers (lshapes MAX_SEEN_SENDERS). */
export const MAX_LAST_SEEN = 4096;

/** The per-sender last `seq` of an lshapes snapshot (none for a process that never used lshapes; malformed entries are skipped). */
function lastSeenOf(state: unknown): [Pid, number][] {
  const seen = (state as { lastSeen?: unknown } | null | undefined)?.lastSeen;
  if (!Array.isArray(seen)) return [];
  const out: [Pid, number][] = [];
  for (const e of seen.slice(0, MAX_LAST_SEEN)) {
    if (Array.isArray(e) && typeof e[0] === 'string' && Number.isSafeInteger(e[1]) && (e[1] as number) >= 0) out.push([e[0], e[1] as number]);
  }
  return out;
}

// ───────────────────────────── checkpoint records ─────────────────────────────

/** What a process needs besides its image to run again elsewhere. */
export interface CheckpointMeta {
  pid: Pid;
  name: string;
  args: string[];
  env: Record<string, string>;
  hash: string;
  client: Address;
  parent?: Pid;
  interactive: boolean;
  window?: number;
  spawner: PeerId;
  startedAt: number;
  moves: number;
  /** Fork On Wait mode (absent: off). */
  speculation?: SpeculationMode;
  /**
   * A parent's spawner role at the checkpoint, as the go of a move carries it: its child records
   * (where each ran, how it ended if it did) and the timed `wait` it was blocked in. A restart
   * from it adopts them like a move does (absent: no children).
   */
  children?: CheckpointChild[];
  wait?: { child: Pid; timeoutMs: number; remainingMs: number };
}

export interface CheckpointChild {
  pid: Pid;
  host: PeerId;
  outcome?: { kind: 'exit'; code: number; message?: string } | { kind: 'lost'; message: string };
}

/** At most this many child records in a checkpoint (as in a move's go: protocol.ts MAX_CHILD_RECORDS). */
export const MAX_CHECKPOINT_CHILDREN = 4096;

export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

const FORMAT: SealedFormat = {
  magic: new Uint8Array([0x4c, 0x53, 0x48, 0x43, 0x4b, 0x50, 0x54, 0x00]), // "LSHCKPT\0"
  version: 1,
  noun: 'checkpoint',
  title: 'checkpoint',
  error: (message) => new CheckpointError(message),
};

/** The record stored for a checkpoint (then packed: compressed and authenticated, like a migration). */
export function encodeCheckpoint(meta: CheckpointMeta, image: Uint8Array): Uint8Array {
  return seal(FORMAT, { meta, image });
}

export function decodeCheckpoint(bytes: Uint8Array): { meta: CheckpointMeta; image: Uint8Array } {
  const raw = unseal(FORMAT, bytes) as { meta?: Partial<CheckpointMeta>; image?: unknown };
  const m = raw?.meta;
  if (
    !m ||
    !(raw.image instanceof Uint8Array) ||
    typeof m.pid !== 'string' ||
    typeof m.name !== 'string' ||
    !Array.isArray(m.args) ||
    typeof m.env !== 'object' ||
    typeof m.hash !== 'string' ||
    typeof m.client?.peer !== 'string' ||
    typeof m.client?.port !== 'string' ||
    typeof m.interactive !== 'boolean' ||
    typeof m.spawner !== 'string' ||
    typeof m.startedAt !== 'number' ||
    typeof m.moves !== 'number' ||
    (m.speculation !== undefined && m.speculation !== 'on' && m.speculation !== 'off' && m.speculation !== 'mispredict') ||
    (m.children !== undefined && (!Array.isArray(m.children) || m.children.length > MAX_CHECKPOINT_CHILDREN || !m.children.every(isChild))) ||
    (m.wait !== undefined &&
      (typeof m.wait !== 'object' || typeof m.wait.child !== 'string' || !isCount(m.wait.timeoutMs) || !isCount(m.wait.remainingMs)))
  ) {
    throw new CheckpointError('malformed checkpoint');
  }
  return { meta: m as CheckpointMeta, image: raw.image };
}

const isCount = (n: unknown) => typeof n === 'number' && Number.isInteger(n) && n >= 0;

function isChild(c: unknown): c is CheckpointChild {
  const r = c as Partial<CheckpointChild> | null;
  if (typeof r !== 'object' || r === null || typeof r.pid !== 'string' || typeof r.host !== 'string') return false;
  const o = r.outcome as { kind?: unknown; code?: unknown; message?: unknown } | undefined;
  if (o === undefined) return true;
  if (o.kind === 'exit') return Number.isInteger(o.code) && (o.message === undefined || typeof o.message === 'string');
  return o.kind === 'lost' && typeof o.message === 'string';
}
