// One process leaving this peer: the emigration state machine of the Dispatcher.
//
// The Dispatcher is not an actor of its own: it moves processes the Scheduler hosts, and the
// Scheduler's process table is the only record of where a process runs, so the Dispatcher is a
// part of the Scheduler actor (these modules run inside its message handlers, never beside them).
// This file is the emigration side, kept apart from the Scheduler's wiring so each step and each
// failure is tested on its own:
//
//   freezing ──frozen──▶ shipping ──immigrated──▶ over (handed over: the held messages go to the new host)
//      │  ▲                  │
//      │  └─retry (spawn)    └─refused / target gone / timeout──▶ over (thawed here again, held messages redelivered)
//      └─freeze.failed (retries used up) / no answer──▶ over (it never stopped: held messages delivered here)
//
// While it is frozen or on the way, every message for the process (stdin, acknowledgements,
// deliveries, kills, speculation outcomes, replies to its calls) is held, in order; which way it
// ends decides where they go, so nothing is lost and nothing is delivered twice.
import type { PeerId } from '../../kernel/types.ts';
import type { Pid } from '../../kernel/process/protocol.ts';

/** A freeze that fails (blocked in spawn, mid-speculation) is tried again this many times… */
export const FREEZE_RETRIES = 4;
/** …this long apart. */
export const FREEZE_RETRY_MS = 250;
/** An executor that does not answer a freeze in this long is taken to go on running the process. */
export const FREEZE_TIMEOUT_MS = 10_000;
/** A target that has not said `immigrated` by then has failed (a cold thaw rewrites the module: seconds). */
export const IMMIGRATE_TIMEOUT_MS = 45_000;

export type MigrationResult = { ok: true; peer: PeerId; freezeMs: number } | { ok: false; message: string };

export type EmigrationPhase = 'freezing' | 'packing' | 'shipping' | 'over';

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
  /** Tells the target to drop the process if it started it after all (we gave up on it). */
  cancel(): void;
  /** Success: the process runs on the target; forward `held` there and forget the process here. */
  handOver(held: H[]): void;
  /**
   * Failure: the process goes on here. `image` is set when it had been frozen (thaw it again in
   * an executor of this peer); `held` are the messages that arrived meanwhile, to deliver after.
   */
  resumeHere(image: Uint8Array | undefined, held: H[]): void;
  /** The outcome, once. */
  done(result: MigrationResult): void;
}

export class Emigration<H> {
  phase: EmigrationPhase = 'freezing';
  private held: H[] = [];
  private attempts = 0;
  private startedAt = 0;
  private image: Uint8Array | undefined;
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
        if (!this.host.ship(packed)) return this.fail(`peer ${this.to.slice(0, 8)} cannot be reached`);
        this.cancelTimer = this.host.setTimeout(() => {
          this.host.cancel();
          this.fail(`peer ${this.to.slice(0, 8)} did not take it within ${IMMIGRATE_TIMEOUT_MS / 1000} s`);
        }, IMMIGRATE_TIMEOUT_MS);
      },
      (e: Error) => this.fail(`cannot pack its image: ${e.message}`),
    );
  }

  freezeFailed(reason: string, final = false): void {
    if (this.phase !== 'freezing') return;
    this.clearTimer();
    if (!final && ++this.attempts <= FREEZE_RETRIES) {
      this.cancelTimer = this.host.setTimeout(() => {
        this.cancelTimer = undefined;
        if (this.phase === 'freezing') this.askFreeze();
      }, FREEZE_RETRY_MS);
      return;
    }
    this.fail(`it cannot be frozen: ${reason}`);
  }

  /** The target runs it. */
  immigrated(): void {
    if (this.phase !== 'shipping') return;
    this.clearTimer();
    this.phase = 'over';
    const held = this.held;
    this.held = [];
    this.host.handOver(held);
    this.host.done({ ok: true, peer: this.to, freezeMs: Math.max(0, this.host.now() - this.startedAt) });
  }

  /** The target refused it (`reason` from the target). */
  refused(reason: string): void {
    if (this.phase !== 'shipping') return;
    this.fail(`peer ${this.to.slice(0, 8)} refused it: ${reason}`);
  }

  /** A peer left the view. */
  peerGone(peer: PeerId): void {
    if (peer !== this.to || this.phase === 'over') return;
    if (this.phase === 'freezing') return; // it still runs here; the freeze's answer ends it
    this.fail(`peer ${peer.slice(0, 8)} went away during the move`);
  }

  private askFreeze(): void {
    this.host.freeze();
    this.cancelTimer = this.host.setTimeout(() => {
      this.cancelTimer = undefined;
      this.freezeFailed('its executor did not answer the freeze', true);
    }, FREEZE_TIMEOUT_MS);
  }

  private fail(message: string): void {
    if (this.phase === 'over') return;
    this.clearTimer();
    this.phase = 'over';
    const held = this.held;
    this.held = [];
    this.host.resumeHere(this.image, held);
    this.host.done({ ok: false, message });
  }

  private clearTimer(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }
}
