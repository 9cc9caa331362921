// One process leaving this peer: the emigration state machine of the Dispatcher.
//
// The Dispatcher is not an actor of its own: it moves processes the Scheduler hosts, and the
// Scheduler's process table is the only record of where a process runs, so the Dispatcher is a
// part of the Scheduler actor (these modules run inside its message handlers, never beside them).
// This file is the emigration side, kept apart from the Scheduler's wiring so each step and each
// failure is tested on its own:
//
//   freezing ──frozen──▶ packing ──▶ shipping ──ready: go──▶ committed ──immigrated──▶ over (handed over: the held messages go to the new host)
//      │  ▲                             │                       │
//      │  └─retry (spawn)               │                       └─immigrate.failed / target gone──▶ over (thawed here again from the kept image)
//      │                                └─refused / target gone / unreachable / timeout (cancel sent)──▶ over (thawed here again)
//      └─freeze.failed (retries used up) / no answer──▶ over (it never stopped: held messages delivered here)
//   (packing and shipping also end in `over`, thawed here again, when the Scheduler gives up: giveUp)
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
 * The target's bound from go to the process's first state (a cold thaw rewrites the module:
 * seconds). Past it the target stops its copy and says `immigrate.failed` once it is gone.
 */
export const THAW_TIMEOUT_MS = 30_000;
/** Every move has ended by then (the phases' bounds, and a little for packing and the last kill). */
export const MOVE_MAX_MS = FREEZE_TIMEOUT_MS + IMMIGRATE_TIMEOUT_MS + THAW_TIMEOUT_MS + 5_000;

export type MigrationResult = { ok: true; peer: PeerId; freezeMs: number } | { ok: false; message: string };

export type EmigrationPhase = 'freezing' | 'packing' | 'shipping' | 'committed' | 'over';

/** What an emigration needs from the Scheduler that hosts the process. `H` is a held message. */
export interface EmigrationHost<H> {
  now(): number;
  setTimeout(fn: () => void, ms: number): () => void;
  /** Asks the executor to freeze the process (answered through frozen / freezeFailed). */
  freeze(): void;
  /** Compresses and authenticates the image for the wire. */
  pack(image: Uint8Array): Promise<Uint8Array>;
  /** Sends the `immigrate`; false when the target cannot be reached. */
  ship(packed: Uint8Array): boolean;
  /** Sends `immigrate.go` (the target may run it now); false when the target cannot be reached. */
  go(): boolean;
  /** Sends `immigrate.cancel`: the target must drop the image it keeps, never run (we gave up on it). */
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
}

export class Emigration<H> {
  phase: EmigrationPhase = 'freezing';
  private held: H[] = [];
  private attempts = 0;
  private startedAt = 0;
  private image: Uint8Array | undefined;
  /** The `immigrate` went out: the target may keep the image until it hears from us. */
  private shipped = false;
  private cancelTimer: (() => void) | undefined;

  constructor(
    readonly pid: Pid,
    readonly to: PeerId,
    private readonly host: EmigrationHost<H>,
  ) {}

  get active(): boolean {
    return this.phase !== 'over';
  }

  start(): void {
    this.startedAt = this.host.now();
    this.askFreeze();
  }

  /** Keeps a message for the process while it is frozen or on the way; false once over. */
  hold(msg: H): boolean {
    if (this.phase === 'over') return false;
    this.held.push(msg);
    return true;
  }

  frozen(image: Uint8Array): void {
    if (this.phase !== 'freezing') return;
    this.clearTimer();
    this.image = image;
    this.phase = 'packing';
    this.host.pack(image).then(
      (packed) => {
        if (this.phase !== 'packing') return;
        this.phase = 'shipping';
        if (!this.host.ship(packed)) return this.fail(`peer ${this.short} cannot be reached`);
        this.shipped = true;
        this.cancelTimer = this.host.setTimeout(() => {
          this.cancelTimer = undefined;
          this.host.cancel();
          this.fail(`peer ${this.short} did not take it within ${IMMIGRATE_TIMEOUT_MS / 1000} s`);
        }, IMMIGRATE_TIMEOUT_MS);
      },
      (e: Error) => this.fail(`cannot pack its image: ${e.message}`),
    );
  }

  freezeFailed(reason: string, final = false): void {
    if (this.phase !== 'freezing') return;
    this.clearTimer();
    const left = this.startedAt + FREEZE_TIMEOUT_MS - this.host.now();
    if (!final && ++this.attempts <= FREEZE_RETRIES && left > FREEZE_RETRY_MS) {
      this.cancelTimer = this.host.setTimeout(() => {
        this.cancelTimer = undefined;
        if (this.phase === 'freezing') this.askFreeze();
      }, FREEZE_RETRY_MS);
      return;
    }
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
  }

  /**
   * The Scheduler gives up before go (something the move depends on changed: a child of the
   * process is being restarted, and its record cannot travel). The target, if the image went out,
   * gets a cancel. No effect from go on: then only the target or the view ends the move.
   */
  giveUp(reason: string): void {
    if (this.phase !== 'packing' && this.phase !== 'shipping') return;
    if (this.shipped) this.host.cancel();
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
    this.host.done({ ok: true, peer: this.to, freezeMs: Math.max(0, this.host.now() - this.startedAt) });
  }

  /** The target refused the image (before go) or could not run it (after go; its copy is gone). */
  refused(reason: string): void {
    if (this.phase === 'shipping') return this.fail(`peer ${this.short} refused it: ${reason}`);
    if (this.phase === 'committed') this.fail(`peer ${this.short} could not start it (${reason}); it goes on here`);
  }

  /** A peer left the view. */
  peerGone(peer: PeerId): void {
    if (peer !== this.to || this.phase === 'over') return;
    if (this.phase === 'freezing') return; // it still runs here; the freeze's answer ends it
    this.fail(`peer ${this.short} went away during the move`);
  }

  private get short(): string {
    return this.to.slice(0, 8);
  }

  private askFreeze(): void {
    this.host.freeze();
    // One deadline for the whole freeze, retries included (it bounds the move: MOVE_MAX_MS).
    this.cancelTimer = this.host.setTimeout(
      () => {
        this.cancelTimer = undefined;
        this.freezeFailed('its executor did not answer the freeze', true);
      },
      Math.max(0, this.startedAt + FREEZE_TIMEOUT_MS - this.host.now()),
    );
  }

  private fail(message: string): void {
    if (this.phase === 'over') return;
    const committed = this.phase === 'committed';
    this.clearTimer();
    this.phase = 'over';
    const held = this.held;
    this.held = [];
    this.host.resumeHere(this.image, held, committed);
    this.image = undefined;
    this.host.done({ ok: false, message });
  }

  private clearTimer(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }
}
