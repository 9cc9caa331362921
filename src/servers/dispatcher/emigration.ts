// One process leaving this peer: the emigration state machine of the Dispatcher.
//
// The Dispatcher is not an actor of its own: it moves processes the Scheduler hosts, and the
// Scheduler's process table is the only record of where a process runs, so the Dispatcher is a
// part of the Scheduler actor (these modules run inside its message handlers, never beside them).
// This file is the emigration side, kept apart from the Scheduler's wiring so each step and each
// failure is tested on its own:
//
//   precopying ──base acked / refused, no checkpoint, PRECOPY_TIMEOUT_MS──▶ freezing
//      │ checkpoint → packing → sent (→ settling while it starts a child)
//      └─target gone / unreachable / it ended / giveUp (base cancelled)──▶ over (it never stopped)
//
//   freezing ──frozen──▶ packing ──▶ shipping ──ready: go──▶ committed ──immigrated──▶ over (handed over: the held messages go to the new host)
//      │  ▲                             │  ▲                    │
//      │  └─waiting (freeze.failed: it runs on and gets what was held; again after a pause or its spawn)
//      │                                │  └─no base (a delta): the full image, same freeze
//      │                                │                       └─immigrate.failed / target gone──▶ over (thawed here again from the kept image)
//      │                                └─refused / target gone / unreachable / timeout (cancel sent)──▶ over (thawed here again)
//      └─freeze.failed (retries used up) / no answer / it ended──▶ over (it never stopped: held messages delivered here)
//   (packing and shipping also end in `over`, thawed here again, when the Scheduler gives up: giveUp)
//
// Pre-copy (when the host gives a PrecopyHost; a restart has no running source and goes
// stop-and-copy): while the process runs on, a checkpoint of it is shipped as the base
// (`precopy`); the target checks it like an image and keeps it, unrun (immigration.ts BaseStore).
// Once it says `precopy.ok` the process is frozen, and the final image goes as a delta against
// the base (transfer.ts makeDelta: the chunks that changed since, and the image's size and the
// checksum its seal carries) in `immigrate.delta`; the target rebuilds it, checks it byte for
// byte and keeps it like a full image (immigration.ts admitDelta), then
// ready / go / immigrated as below. A delta the target has no base for is refused with `noBase`,
// and the full image follows at once, from the same freeze. A base refused, a checkpoint that
// fails (blocked in spawn, speculating), one smaller than PRECOPY_MIN_BYTES (or a process known
// to be that small: no checkpoint is asked for) or no ack within PRECOPY_TIMEOUT_MS: stop-and-copy.
// Nothing is held during the pre-copy (the process runs: messages go to it), and nothing that
// ends the move then needs a thaw. The downtime (freezeMs) counts from the freeze request;
// precopyMs and frozenBytes (what travelled while it stood still) are reported beside it.
//
// The hand-over is a commit, so that the process never runs in two places:
//   - the target checks the image (immigration.ts admitImage), keeps it without running it and
//     says `immigrate.ready`; it thaws it only on `immigrate.go` from the same peer, and drops it,
//     never run, on `immigrate.cancel`, when no go came within IMMIGRATE_TIMEOUT_MS, or when the
//     sender leaves its view;
//   - this side sends go only while it has not given up (shipping); a `ready` that comes after
//     it gave up gets a cancel instead. Before go it may give up at any time (the target runs
//     nothing without go); from go on it is committed and never gives up on its own: it waits for
//     `immigrated` (the target runs it: hand over), `immigrate.failed` (the target's thaw failed
//     or timed out, and its copy is gone) or the target leaving the view. In the last two cases it
//     thaws the kept image here again. That is a restart from the freshest possible checkpoint,
//     with the guarantees of a checkpoint restart (scheduler.ts): output at most once per byte
//     offset (the terminal drops what it has by `at`), messages sent again dropped by their
//     receivers (per-sender `seq`), /cluster writes the target's copy made may be made again.
//     The target bounds its thaw (THAW_TIMEOUT_MS), so a committed move always ends. A target
//     whose sender leaves its view after go, before the first state (before it said `immigrated`),
//     stops its copy: the sender thaws its own if it is alive, and the spawner restarts it if not.
//     What no protocol can settle is a partition while `immigrated` is on its way: then, as with
//     a checkpoint restart after a partition, both sides may run it.
//
// While it is frozen or on the way, every message for the process (stdin, acknowledgements,
// deliveries, kills, speculation outcomes, replies to its calls) is held, in order, until the
// move is over, `committed` included: only `immigrated` says where it runs, so the held messages
// go to the new host then (one round trip later than at go), or to the copy thawed here. Nothing
// is lost and nothing is delivered twice. (The target holds what reaches it directly before the
// process runs there, and sends that back here when it does not run it.)
//
// A parent's child records (its spawner role) go with the go step; the Scheduler lends them to
// the target until `immigrated` and takes them back when the move fails after go (scheduler.ts).
import type { PeerId } from '../../kernel/types.ts';
import type { Pid } from '../../kernel/process/protocol.ts';

/** A freeze that fails (blocked in spawn, mid-speculation) is tried again this many times… */
export const FREEZE_RETRIES = 4;
/** …this long apart. */
export const FREEZE_RETRY_MS = 250;
/**
 * The freeze, retries included, must have taken by then; an executor that has not answered is
 * taken to go on running the process.
 */
export const FREEZE_TIMEOUT_MS = 10_000;
/**
 * A target that has not said `immigrate.ready` this long after the image was sent has failed
 * (it is a transfer and a check: a 16 MiB image takes about 1.5 s between tabs). The target drops
 * a ready image that got no go in as long.
 */
export const IMMIGRATE_TIMEOUT_MS = 30_000;
/**
 * The pre-copy (checkpoint, base shipped and checked) has this long; past it the move goes on
 * stop-and-copy. The base is a whole image on its way, like a stop-and-copy one.
 */
export const PRECOPY_TIMEOUT_MS = IMMIGRATE_TIMEOUT_MS;
/**
 * A checkpoint smaller than this is not worth a pre-copy: the base's round trip (ship, check,
 * ack) costs more than shipping the whole image frozen, so the move goes stop-and-copy. Measured
 * with memhog 128 between two tabs: the same downtime either way (a median of ~28 ms), and the
 * pre-copy adds 30–60 ms to the move. Most sample programs are far below it; a heap of a few MiB above.
 */
export const PRECOPY_MIN_BYTES = 256 << 10;
/**
 * The target's bound from go to the process's first state (a cold thaw rewrites the module:
 * seconds). Past it the target stops its copy and says `immigrate.failed` once it is gone.
 */
export const THAW_TIMEOUT_MS = 30_000;
/**
 * Every move has ended by then (the phases' bounds — shipping twice when a delta finds no base —
 * and a little for packing and the last kill).
 */
export const MOVE_MAX_MS = PRECOPY_TIMEOUT_MS + FREEZE_TIMEOUT_MS + 2 * IMMIGRATE_TIMEOUT_MS + THAW_TIMEOUT_MS + 5_000;

/**
 * How a move ended. `freezeMs`: the downtime, from the freeze request to the target's word that
 * it runs; `precopyMs`: the pre-copy before it (the process ran on meanwhile; 0 without one);
 * `frozenBytes`: what was shipped while it stood still (the delta, or the full image).
 */
export type MigrationResult =
  | { ok: true; peer: PeerId; freezeMs: number; precopyMs?: number; frozenBytes?: number; phases?: FreezePhases }
  | { ok: false; message: string };

/**
 * Where the downtime went (ms, they add up to freezeMs), as this side sees it: `freeze` from the
 * freeze request to the image (the executor's snapshot and encoding, the post to the Scheduler),
 * `pack` the delta or image made and authenticated, `check` from sending it to the target's
 * ready (the link, and the target's rebuild and checks), `thaw` from go to `immigrated` (the
 * link twice, and the target's restore up to its first state). After a `noBase` refusal the
 * delta's round trip and the full image's packing count in `pack`.
 */
export interface FreezePhases {
  freeze: number;
  pack: number;
  check: number;
  thaw: number;
}

/**
 * `waiting`: a freeze failed (the process runs on here and gets its messages); it is asked again
 * after FREEZE_RETRY_MS, or once the spawn the process is in is answered.
 */
export type EmigrationPhase = 'precopying' | 'freezing' | 'waiting' | 'packing' | 'shipping' | 'committed' | 'over';

/**
 * Where a pre-copy is: its checkpoint asked for, the base being packed, the base on its way
 * (waiting for its ack), over but the process is starting a child (a freeze now would fail:
 * its spawn cannot be asked twice), so the freeze waits for `idle`.
 */
export type PrecopyStep = 'checkpoint' | 'packing' | 'sent' | 'settling';

/** What the final image travels as: whole, or as a delta against the base the target acknowledged. */
export type Shipment = 'image' | 'delta';

/**
 * What a pre-copy needs from the Scheduler (`B`: a base as the host diffs against it). A host
 * without it moves stop-and-copy (and so does a restart: it has no running source).
 */
export interface PrecopyHost<B> {
  /** Asks the executor for a checkpoint of the running process (answered through checkpointed / checkpointFailed). */
  checkpoint(): void;
  /** A checkpoint image as a base: packed for the wire, and ready to diff against. */
  prepare(image: Uint8Array): Promise<{ packed: Uint8Array; base: B }>;
  /** Sends the base (`precopy`); false when the target cannot be reached. */
  shipBase(packed: Uint8Array): boolean;
  /** The final image as a delta against `base`, packed for the wire. */
  packDelta(base: B, image: Uint8Array): Promise<Uint8Array>;
  /** Smallest checkpoint worth a pre-copy (default PRECOPY_MIN_BYTES). */
  minBytes?: number;
  /**
   * How large its image is likely to be (its last image, or its program's), when known: a small
   * one skips the pre-copy without asking for a checkpoint (that round trip alone lets a short
   * program run to its end before the freeze).
   */
  expectBytes?(): number | undefined;
  /**
   * In a speculation (its own, or one whose messages it took): a checkpoint waits for that to
   * settle (executor.ts quiesces, up to 2 s), and a process fed speculative messages without
   * pause never settles while they reach it; the freeze holds them back. Skip to the freeze.
   */
  speculating?(): boolean;
}

/** What an emigration needs from the Scheduler that hosts the process. `H` is a held message. */
export interface EmigrationHost<H, B = unknown> {
  now(): number;
  setTimeout(fn: () => void, ms: number): () => void;
  /** Asks the executor to freeze the process (answered through frozen / freezeFailed). */
  freeze(): void;
  /** Whether the process is starting a child now: a freeze would fail (its spawn cannot be asked twice), so it waits for `idle`. */
  busy(): boolean;
  /** A freeze failed: the process runs on here; deliver `held` to it (what came while the freeze was asked). */
  release(held: H[]): void;
  /** Compresses and authenticates the image for the wire. */
  pack(image: Uint8Array): Promise<Uint8Array>;
  /** Sends the `immigrate` (or, `as` a delta, the `immigrate.delta`); false when the target cannot be reached. */
  ship(packed: Uint8Array, as: Shipment): boolean;
  /** Sends `immigrate.go` (the target may run it now); false when the target cannot be reached. */
  go(): boolean;
  /** Sends `immigrate.cancel`: the target must drop what it keeps of the move (the base, the image), never run (we gave up on it). */
  cancel(): void;
  /** Success: the process runs on the target; forward `held` there and forget the process here. */
  handOver(held: H[]): void;
  /**
   * Failure: the process goes on here. `image` is set when it had been frozen (thaw it again in
   * an executor of this peer); `held` are the messages that arrived meanwhile, to deliver after.
   * `committed`: go had been sent (the target may have run it for a while and told the spawner).
   */
  resumeHere(image: Uint8Array | undefined, held: H[], committed: boolean): void;
  /** The outcome, once. */
  done(result: MigrationResult): void;
  /** Pre-copy: without it, the move is stop-and-copy. */
  precopy?: PrecopyHost<B>;
}

export class Emigration<H, B = unknown> {
  phase: EmigrationPhase;
  /** Where the pre-copy is (phase 'precopying'). */
  step: PrecopyStep | undefined;
  /** What the final image went as (phase 'shipping' on). */
  shipped: Shipment | undefined;
  private held: H[] = [];
  private attempts = 0;
  private startedAt = 0;
  /** When the first freeze was asked for: its deadline (retries included) counts from here. */
  private freezeStartedAt = 0;
  /** When the freeze that took was asked for: the downtime counts from here. */
  private frozenAt = 0;
  private precopyMs = 0;
  private frozenBytes = 0;
  /** When the image came, the packed one went out, and the target said ready (phase timings). */
  private imagedAt = 0;
  private shippedAt = 0;
  private readyAt = 0;
  private image: Uint8Array | undefined;
  /** The base being shipped, and once the target acknowledged it, the one the delta is made against. */
  private pending: B | undefined;
  private base: B | undefined;
  /** A base went out: the target may keep it until it hears from us. */
  private baseSent = false;
  private cancelTimer: (() => void) | undefined;

  constructor(
    readonly pid: Pid,
    readonly to: PeerId,
    private readonly host: EmigrationHost<H, B>,
  ) {
    this.phase = host.precopy ? 'precopying' : 'freezing';
  }

  get active(): boolean {
    return this.phase !== 'over';
  }

  start(): void {
    this.startedAt = this.host.now();
    const pc = this.host.precopy;
    const expected = pc?.expectBytes?.();
    if (!pc || pc.speculating?.() || (expected !== undefined && expected < (pc.minBytes ?? PRECOPY_MIN_BYTES))) return this.freezeNow();
    this.step = 'checkpoint';
    pc.checkpoint();
    this.cancelTimer = this.host.setTimeout(() => {
      this.cancelTimer = undefined;
      if (this.step === 'settling') return this.freezeNow(); // still starting a child: the freeze's retries see to it
      // No answer from the executor or the target in time: stop-and-copy (a base it may still keep is dropped).
      if (this.baseSent) this.host.cancel();
      this.freezeNow();
    }, PRECOPY_TIMEOUT_MS);
  }

  /**
   * Keeps a message for the process while it is frozen or on the way; false once over, and
   * before the freeze (pre-copy, a retry's wait: it still runs here, the message goes to it).
   */
  hold(msg: H): boolean {
    if (this.phase === 'over' || this.phase === 'precopying' || this.phase === 'waiting') return false;
    this.held.push(msg);
    return true;
  }

  /** The pre-copy's checkpoint: pack it and ship it as the base (the process runs on); a small one: stop-and-copy. */
  checkpointed(image: Uint8Array): void {
    const pc = this.host.precopy;
    if (this.phase !== 'precopying' || this.step !== 'checkpoint' || !pc) return;
    if (image.length < (pc.minBytes ?? PRECOPY_MIN_BYTES)) return this.endPrecopy();
    this.step = 'packing';
    pc.prepare(image).then(
      ({ packed, base }) => {
        if (this.phase !== 'precopying' || this.step !== 'packing') return;
        if (!pc.shipBase(packed)) return this.fail(`peer ${this.short} cannot be reached`);
        this.step = 'sent';
        this.baseSent = true;
        this.pending = base;
      },
      () => {
        if (this.phase === 'precopying' && this.step === 'packing') this.endPrecopy();
      },
    );
  }

  /** No checkpoint (blocked in spawn, speculating): stop-and-copy. */
  checkpointFailed(_reason: string): void {
    if (this.phase === 'precopying' && this.step === 'checkpoint') this.endPrecopy();
  }

  /** The target checked the base and keeps it: freeze; the final image goes as a delta against it. */
  baseAcked(): void {
    if (this.phase !== 'precopying' || this.step !== 'sent') return;
    this.base = this.pending;
    this.endPrecopy();
  }

  /** The target would not keep the base (it dropped it): stop-and-copy. */
  baseRefused(_reason: string): void {
    if (this.phase !== 'precopying' || this.step !== 'sent') return;
    this.baseSent = false;
    this.endPrecopy();
  }

  /** The process is no longer starting a child: a freeze that waited for that is asked now. */
  idle(): void {
    if (this.phase === 'precopying' && this.step === 'settling') this.freezeNow();
    else if (this.phase === 'waiting') {
      this.clearTimer();
      this.askFreeze();
    }
  }

  /**
   * The process ended here before it was frozen: the move is off (a base the target keeps is
   * dropped). Its exit is on its way to whoever waits for it.
   */
  ended(): void {
    if (this.phase !== 'precopying' && this.phase !== 'freezing' && this.phase !== 'waiting') return;
    this.dropBase();
    this.fail(`cannot move ${this.pid}: it has ended`);
  }

  frozen(image: Uint8Array): void {
    if (this.phase !== 'freezing') return;
    this.clearTimer();
    this.imagedAt = this.host.now();
    this.image = image;
    this.phase = 'packing';
    const pc = this.host.precopy;
    const base = this.base;
    if (!pc || base === undefined) return this.packAndShip(image, 'image');
    pc.packDelta(base, image).then(
      (packed) => this.shipPacked(packed, 'delta'),
      // No delta: the full image, while still frozen.
      () => this.packAndShip(image, 'image'),
    );
  }

  freezeFailed(reason: string, final = false): void {
    if (this.phase !== 'freezing') return; // none was asked for (the pre-copy's end asks)
    this.clearTimer();
    const left = this.freezeStartedAt + FREEZE_TIMEOUT_MS - this.host.now();
    if (!final && ++this.attempts <= FREEZE_RETRIES && left > FREEZE_RETRY_MS) {
      // Not frozen: it runs on here and gets what was held meanwhile (the reply it blocks in, say).
      this.phase = 'waiting';
      const held = this.held;
      this.held = [];
      this.host.release(held);
      // Starting a child: again once the spawn is answered (idle), else after a pause; within the deadline either way.
      this.cancelTimer = this.host.setTimeout(
        () => {
          this.cancelTimer = undefined;
          if (this.phase === 'waiting') this.askFreeze();
        },
        this.host.busy() ? left - FREEZE_RETRY_MS : FREEZE_RETRY_MS,
      );
      return;
    }
    this.dropBase();
    this.fail(`it cannot be frozen: ${reason}`);
  }

  /**
   * The target checked the image and keeps it, not running: go, unless we gave up on this move
   * (then it gets a cancel, so it drops the image).
   */
  ready(): void {
    if (this.phase === 'committed') return; // a repeat: go went already
    if (this.phase !== 'shipping') {
      if (this.shipped) this.host.cancel();
      return;
    }
    this.clearTimer();
    if (!this.host.go()) {
      this.host.cancel();
      return this.fail(`peer ${this.short} cannot be reached`);
    }
    // From here on only the target says how it ended (or the view, that it is gone).
    this.phase = 'committed';
    this.readyAt = this.host.now();
  }

  /**
   * The Scheduler gives up before go (something the move depends on changed: a child of the
   * process is being restarted, and its record cannot travel). The target, if a base or the image
   * went out, gets a cancel. No effect from go on: then only the target or the view ends the move.
   */
  giveUp(reason: string): void {
    if (this.phase !== 'precopying' && this.phase !== 'waiting' && this.phase !== 'packing' && this.phase !== 'shipping') return;
    if (this.shipped || this.baseSent) this.host.cancel();
    this.fail(reason);
  }

  /** The target runs it (it says so only after a go). */
  immigrated(): void {
    if (this.phase !== 'committed') return;
    this.phase = 'over';
    const held = this.held;
    this.held = [];
    this.image = undefined;
    this.host.handOver(held);
    const now = this.host.now();
    this.host.done({
      ok: true,
      peer: this.to,
      freezeMs: Math.max(0, now - this.frozenAt),
      precopyMs: this.precopyMs,
      frozenBytes: this.frozenBytes,
      phases: {
        freeze: this.imagedAt - this.frozenAt,
        pack: this.shippedAt - this.imagedAt,
        check: this.readyAt - this.shippedAt,
        thaw: now - this.readyAt,
      },
    });
  }

  /**
   * The target refused the image (before go) or could not run it (after go; its copy is gone).
   * `noBase`: it refused a delta for want of its base: the full image goes, still frozen.
   */
  refused(reason: string, noBase = false): void {
    if (this.phase === 'shipping' && this.shipped === 'delta' && noBase && this.image) {
      this.clearTimer();
      this.phase = 'packing';
      this.base = undefined;
      return this.packAndShip(this.image, 'image');
    }
    if (this.phase === 'shipping') return this.fail(`peer ${this.short} refused it: ${reason}`);
    if (this.phase === 'committed') this.fail(`peer ${this.short} could not start it (${reason}); it goes on here`);
  }

  /** A peer left the view. */
  peerGone(peer: PeerId): void {
    if (peer !== this.to || this.phase === 'over') return;
    if (this.phase === 'freezing') return; // it still runs here; the freeze's answer ends it
    // In the pre-copy nothing stopped: it just goes on here.
    this.fail(`peer ${this.short} went away during the move`);
  }

  private get short(): string {
    return this.to.slice(0, 8);
  }

  /** The pre-copy is over: freeze, once the process is not starting a child. */
  private endPrecopy(): void {
    if (this.host.busy()) {
      this.step = 'settling';
      return;
    }
    this.freezeNow();
  }

  /** The pre-copy is over (or there is none): stop the process. The downtime starts here. */
  private freezeNow(): void {
    this.clearTimer();
    this.freezeStartedAt = this.host.now();
    this.precopyMs = this.freezeStartedAt - this.startedAt;
    this.step = undefined;
    this.pending = undefined;
    this.askFreeze();
  }

  private packAndShip(image: Uint8Array, as: Shipment): void {
    this.host.pack(image).then(
      (packed) => this.shipPacked(packed, as),
      (e: Error) => {
        if (this.phase !== 'packing') return;
        if (!this.shipped) this.dropBase();
        this.fail(`cannot pack its image: ${e.message}`);
      },
    );
  }

  /** The move ends before anything but the base went: the target must not keep that base waiting for a delta. */
  private dropBase(): void {
    if (this.baseSent) this.host.cancel();
    this.baseSent = false;
  }

  private shipPacked(packed: Uint8Array, as: Shipment): void {
    if (this.phase !== 'packing') return;
    this.phase = 'shipping';
    if (!this.host.ship(packed, as)) return this.fail(`peer ${this.short} cannot be reached`);
    this.shipped = as;
    this.frozenBytes += packed.length;
    this.shippedAt = this.host.now();
    this.cancelTimer = this.host.setTimeout(() => {
      this.cancelTimer = undefined;
      this.host.cancel();
      this.fail(`peer ${this.short} did not take it within ${IMMIGRATE_TIMEOUT_MS / 1000} s`);
    }, IMMIGRATE_TIMEOUT_MS);
  }

  private askFreeze(): void {
    this.phase = 'freezing';
    this.frozenAt = this.host.now();
    this.host.freeze();
    // One deadline for the whole freeze, retries included (it bounds the move: MOVE_MAX_MS).
    this.cancelTimer = this.host.setTimeout(
      () => {
        this.cancelTimer = undefined;
        this.freezeFailed('its executor did not answer the freeze', true);
      },
      Math.max(0, this.freezeStartedAt + FREEZE_TIMEOUT_MS - this.host.now()),
    );
  }

  private fail(message: string): void {
    if (this.phase === 'over') return;
    const committed = this.phase === 'committed';
    this.clearTimer();
    this.phase = 'over';
    this.step = undefined;
    const held = this.held;
    this.held = [];
    this.host.resumeHere(this.image, held, committed);
    this.image = undefined;
    this.pending = undefined;
    this.base = undefined;
    this.host.done({ ok: false, message });
  }

  private clearTimer(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }
}
