// Scheduler: process management for the whole cluster.
//
// Every peer's Scheduler plays three roles for a process:
//   spawner — it allocated the pid, chose the host, and keeps what the parent or terminal needs:
//             the exit status for `wait`, where stdin goes, and news of a host that vanished;
//   host    — the process runs in one of its executors; it routes the process's output to the
//             terminal (the `client` address), its messages to other processes, and its exit;
//   table   — it spreads its hosted processes to every other Scheduler, so each peer holds the
//             cluster-wide process table (each row owned by the peer that runs it).
// A process started from a terminal is a root process: the terminal gets its `exit`. Children
// inherit the terminal of their parent (their output goes there too); their parent gets their
// exit status through `wait`. When the terminal's peer goes away the processes it started are
// killed (hangup); when a host goes away its processes are restarted from their last checkpoint
// by their spawner, or reported lost when there is none.
//
// The Dispatcher (src/servers/dispatcher) is a part of this actor, not a second one: it moves
// the processes this table lists, so it runs inside these handlers on the same table.
//   migration — `migrate` (any peer; routed to the host): pre-copy, then freeze and ship what is
//     left. Pre-copy: a checkpoint of the running process goes first as the base (`precopy`; the
//     target checks it and keeps it unrun, one per process, bounded in bytes, and says
//     `precopy.ok`); then the process is frozen and its image goes as a delta against the base
//     (`immigrate.delta`: only the chunks that changed, authenticated like an image), which the
//     target rebuilds and checks byte for byte (immigration.ts admitDelta). No base there (`immigrate.failed`
//     with `noBase`): the full image follows from the same freeze. Without pre-copy (it failed,
//     or SchedulerOptions.precopy is false; restarts) the frozen image goes whole (compressed and
//     authenticated) in an `immigrate`. Either way the target checks it and keeps it, not running, and says
//     `immigrate.ready`; the old host says `immigrate.go` (committed from then on) and the target
//     thaws it and says `immigrated` after its first `state`; the old host then forwards what it
//     held and, for FORWARD_MS, what still arrives. Before go, refused, timed out or target gone:
//     `immigrate.cancel`, and the old host thaws its own copy again; a target drops, never run, an
//     image that got no go. After go, `immigrate.failed` or target gone: the old host thaws the
//     image it kept (a restart from the freshest checkpoint). So it never runs in two places
//     (emigration.ts has the states and why). A `migrate` follows the process: a host it moved on
//     from passes the request on (at most MAX_MIGRATE_HOPS times) and relays the answer; one that
//     meets it between two hosts waits for that move to end. Every move ends within MOVE_MAX_MS,
//     so a request is answered within MIGRATE_BUDGET_MS (a move in progress, then its own).
//     `migrate.ok` reports the downtime (freezeMs, from the freeze), the pre-copy before it
//     (precopyMs), the bytes shipped while the process stood still (frozenBytes) and where the
//     downtime went (phases: emigration.ts FreezePhases).
//   rebalancing — every REBALANCE_MS a peer busier per slot than the least loaded one by a margin
//     moves one long-running process there (balancer.ts); `drain` moves all it can before leaving.
//     Both pre-copy like a `migrate`.
//   checkpoints — every CHECKPOINT_MS each process running that long is checkpointed into the
//     cluster filesystem (CheckpointStore: /.lshapes/checkpoints/<pid>.ckpt-{a,b}, a dot-folder:
//     the filesystem has no hidden ones), replicated like any file, removed when it exits. When
//     its host vanishes, its spawner (if alive) restarts it from there on another peer (same pid,
//     through `immigrate`, ready and go, like a move). What a restart guarantees, exactly:
//       output    at most once per byte offset: each `out` carries `at` (its offset in the whole
//                 output) and the terminal drops what it already has, so what the process prints
//                 again after the checkpoint is not shown twice (if it prints other bytes the
//                 second time, the first ones stay);
//       messages  sent again after the checkpoint are dropped by their receivers (per-sender `seq`);
//                 those its dead copy took after the checkpoint are sent again by their senders'
//                 peers (below), within their logs' bounds;
//       /cluster  writes made between the checkpoint and the crash are made again: at least once;
//       the rest  memory, /tmp, open files and unread stdin are as at the checkpoint; stdin it read
//                 after the checkpoint is gone (the terminal does not send it again).
//   A parent moves with its spawner role: the go carries its child records (pid, host, how it
//   ended if it did) and the timed `wait` it is blocked in. The old host lends them to the target
//   at go (it keeps a passive copy, and takes it back if the move fails after go) and drops them
//   at `immigrated`; until then, and for FORWARD_MS after, it relays to the new host the
//   `exited` and `moved` of those children that still reach it (only ones it accepts itself; the
//   new host accepts a relay only from the peer it took the records from). Once the parent runs
//   there the new host is their spawner: it tells each living child's host (`spawner`), so their
//   exits, moves, restarts and hangups involve it, not the old host. The thawed parent asks again
//   the call it was blocked in (replies held for the frozen one are dropped): a `wait` finds the
//   child's outcome in the carried record, or waits for it there, a timed one to its first
//   deadline. A child that ends while its parent moves is settled once, wherever the record is.
//   A parent is checkpointed with its spawner role: the checkpoint holds the child records (and
//   timed wait) a go would carry, taken when the image comes in (dropped if it spawned meanwhile).
//   Its restart's go carries them, so the new host adopts them like a move's and tells each
//   living child's host (`spawner`). A child's host that loses the child's spawner therefore
//   hangs it up at once only when its parent has no checkpoint (the checkpoint's existence is the
//   one fact that decides whether a restart can come: no flag to keep in step with it); else it
//   waits PARENT_RESTART_GRACE_MS for a new spawner. A child that ended meanwhile (its `exited`
//   went to the dead host) is answered from its host's memory of recent exits when the new
//   spawner's `spawner` comes; a restored child no live peer knows is settled lost after
//   CHILD_ANSWER_MS (the go of a restart says `restart`), so the restarted parent's wait ends.
//   Messages are as for any restart (next).
//   Sender-based message logging (Johnson & Zwaenepoel 1987; message-log.ts): each peer logs the
//   `deliver`s it routes for its processes' sends, calls and replies, by receiver, for
//   messageLogMs(checkpointEveryMs) and at most MESSAGE_LOG_BYTES (oldest dropped first; a
//   message dropped so is lost to a receiver restarted from an older checkpoint; a receiver that
//   ended is forgotten). A restart's go says `restart`; the new host reads the restored copy's
//   per-sender last `seq` from the image (admitImage) and tells every peer `restarted`; each
//   sends again, marked `replay`, what it logged for that pid above those numbers, in order,
//   then `restarted.done`. Until all answered (or REPLAY_WAIT_MS, or they left) the new host
//   holds the pid's other deliveries: a sender's new message must not overtake its replays (its
//   higher `seq` would make them repeats). The receiver drops what it has; a reply that comes
//   before its call is made again waits for it in lshapes (call tokens are in the snapshot). A
//   peer heeds `restarted` only from where it routes the pid (or when it knows no live host).
import { PORTS, type Server, type ServerContext } from '../../kernel/server.ts';
import { toHex, type Address, type Clock, type Envelope, type PeerId } from '../../kernel/types.ts';
import {
  type ExecutionDriver,
  type FromExecutor,
  type KernelErrno,
  type KernelReply,
  type KernelRequest,
  type Pid,
  type ProcessSpec,
  type ProcessState,
  type SpeculationMode,
  type SpecId,
  type ToExecutor,
} from '../../kernel/process/protocol.ts';
import type { ViewMessage } from '../synchronizer/protocol.ts';
import type { ClientMessage, ProcessInfo, ProgramStore } from './client.ts';
import { choosePeer, resolvePeer, type Candidate } from './placement.ts';
import { ModuleCache } from './module-cache.ts';
import { originOf } from '../../kernel/speculation/speculation.ts';
import { MessageLog } from './message-log.ts';
import { NOREPLY_PORT } from '../../kernel/process/lshapes.ts';
import { Errno } from '../../kernel/wasi/errno.ts';
import { serveFileSystem, type FsReply, type FsRequest } from '../../kernel/wasi/remote-fs.ts';
import type { FileSystem } from '../../kernel/wasi/vfs.ts';
import { decodeImage } from '../../kernel/process/image.ts';
import { Emigration, IMMIGRATE_TIMEOUT_MS, MOVE_MAX_MS, THAW_TIMEOUT_MS, type MigrationResult, type PrecopyHost } from '../dispatcher/emigration.ts';
import { admitBase, admitDelta, admitImage, BaseStore, decodeCheckpoint, encodeCheckpoint, type Admission, type CheckpointMeta } from '../dispatcher/immigration.ts';
import { SpeculationRoutes } from '../dispatcher/spec-routes.ts';
import { deltaBase, imageCheck, imageKey, makeDelta, packImage, unpackImage, type DeltaBase, type Hmac } from '../dispatcher/transfer.ts';
import { CheckpointStore } from '../dispatcher/checkpoint-store.ts';
import { chooseMove, type BalanceOptions, type Movable, type PeerLoad } from '../dispatcher/balancer.ts';
import {
  ClientRequestSchema,
  MAX_ARG_CHARS,
  MAX_ARGS,
  MAX_CHILD_RECORDS,
  MAX_DEPS,
  MAX_DATA_BYTES,
  MAX_MIGRATE_BUDGET_MS,
  MAX_MIGRATE_HOPS,
  MAX_MODULE_BYTES,
  PeerMessageSchema,
  type PeerMessage,
  type RunRequest,
} from './protocol.ts';

/** A spawn not started by then has failed. First starts rewrite the module: seconds. */
export const START_TIMEOUT_MS = 45_000;
/** A kill not confirmed by then is reported as failed. */
export const KILL_TIMEOUT_MS = 10_000;
/** Exited processes stay in the table this long, so ps and the panel show how they ended. */
export const EXITED_RETENTION_MS = 30_000;
/** Table changes are sent to other peers at most this often. */
export const TABLE_COALESCE_MS = 250;
/** Bytes of modules (original and rewritten) kept; those of running processes are never dropped. */
const MODULE_CACHE_BYTES = 256 << 20;
/** Output a process may have in flight to a terminal that acknowledges it. */
export const OUTPUT_WINDOW_BYTES = 1 << 20;
/** Output is forwarded in pieces no larger than this. */
const OUT_PIECE_BYTES = 1 << 20;
/** Where recently heard-from processes run: routes replies before the table catches up. */
const RECENT_SENDERS = 1024;
/** A process that moved away: what still arrives for it here is forwarded this long. */
export const FORWARD_MS = 60_000;
/** A vanished host's process is restarted only if no `moved` or table row says it lives elsewhere by then. */
export const HOST_GONE_GRACE_MS = 2_000;
/** A child whose spawner vanished while its parent has a checkpoint: how long to wait for the restarted parent's `spawner` (a restart's bound). */
export const PARENT_RESTART_GRACE_MS = HOST_GONE_GRACE_MS + IMMIGRATE_TIMEOUT_MS + THAW_TIMEOUT_MS + 5_000;
/** Adopted child records no live peer knows of by then (its host forgot how it ended) are settled lost. */
export const CHILD_ANSWER_MS = 10_000;
/** Recently ended children's statuses a host keeps for a restarted parent's new spawner (count, age). */
const RECENT_EXITS = 1024;
const RECENT_EXIT_MS = FORWARD_MS;
/**
 * How long a peer keeps the messages it routed (sender-based message logging, message-log.ts):
 * a message must outlive the time from its receiver's last checkpoint to that receiver's restart.
 * The next checkpoint is taken within two intervals (the tick that finds it due may come just
 * short of one, and the one after it), and a restart's `restarted` goes out within
 * PARENT_RESTART_GRACE_MS of the crash being noticed (host-gone grace, immigrate, thaw, slack).
 */
export const messageLogMs = (checkpointEveryMs: number) => 2 * checkpointEveryMs + PARENT_RESTART_GRACE_MS;
/** A pre-copy's base is acknowledged after at most this long when its program is being rewritten here (else once it is ready). */
const PREPARE_WAIT_MS = 10_000;
/** A restarted process's new messages wait this long at most for every peer's `restarted.done` (its old ones go first). */
export const REPLAY_WAIT_MS = 10_000;
/** How often a peer considers moving a process to a less loaded one. */
export const REBALANCE_MS = 2_000;
/** Processes running this long are checkpointed this often. */
export const CHECKPOINT_MS = 10_000;
/**
 * A `migrate` is answered within this (145 s): its own move (within MOVE_MAX_MS: pre-copy, freeze,
 * shipping twice when a delta finds no base, thaw), after waiting up to 10 s for a move of the
 * process in progress to end (one takes a few seconds at most: 0.2 s for 1 MiB, 3–5 s for
 * 16 MiB between tabs, pre-copy included); one that would have to wait longer is refused. The
 * asker gives up RELAY_SLACK_MS after it (only a host that says nothing gets there).
 */
export const MIGRATE_BUDGET_MS = Math.min(MAX_MIGRATE_BUDGET_MS, MOVE_MAX_MS + 10_000);
/** What a `migrate` passed on to another host leaves for the way there and back. */
const RELAY_SLACK_MS = 2_000;

export interface SchedulerOptions {
  /** Move processes from busier to idler peers (default true; tests that place by hand turn it off). */
  rebalance?: boolean;
  rebalanceEveryMs?: number;
  balance?: BalanceOptions;
  /** Checkpoint processes running this long, this often; 0: never (default CHECKPOINT_MS). */
  checkpointEveryMs?: number;
  /** Fork On Wait for processes started from this peer that do not say (default 'on'). */
  speculation?: SpeculationMode;
  /** Moves pre-copy the image while the process runs (default true; false: stop-and-copy). */
  precopy?: boolean;
}

export interface SchedulerDevices {
  clock: Clock;
  sha256(data: Uint8Array): Promise<Uint8Array>;
  /** Where this peer runs processes; without it the peer runs none (capacity 0). */
  exec?: ExecutionDriver;
  /** Program modules by name. */
  programs?: ProgramStore;
  /** The cluster filesystem, served to this peer's executors' `fs` requests (their /cluster). */
  files?: FileSystem;
  /**
   * HMAC-SHA256 and the cluster token: process images that cross peers or go into checkpoints
   * are authenticated with a key derived from the token. Without them this peer moves nothing.
   */
  hmacSha256?: Hmac;
  token?: string;
}

/** A message for a process that is frozen or on its way elsewhere, kept until the move ends. */
type Held = { to: 'peer'; msg: PeerMessage } | { to: 'exec'; msg: ToExecutor };

/** A message for a process, as other peers send it (what forProcess routes). */
type ForProcess = Extract<PeerMessage, { pid: string }>;

/** An image on its way here: whole, or as a delta against a pre-copy base this peer keeps. */
type Immigrant = Extract<PeerMessage, { kind: 'immigrate' | 'immigrate.delta' }>;

/** What a process needs to run here besides its program and image (either kind of Immigrant has it). */
type Arrival = Omit<Extract<PeerMessage, { kind: 'immigrate' }>, 'kind' | 'image' | 'module'>;

/**
 * A process on its way here (an `immigrate`, from a move or a restart): its image being checked,
 * then kept, not running, until its sender says go (then it becomes Hosted and `arriving`).
 */
interface Incoming {
  from: PeerId;
  ref: number;
  phase: 'checking' | 'ready';
  /** The sender gave up while the image was checked: drop it once checked. */
  cancelled: boolean;
  /**
   * Set once ready: what it needs to run, its program, the checked (raw) image, and (a decoded
   * image: a restart's) the last seq it took from each sender.
   */
  admitted?: { msg: Arrival; module: Uint8Array; image: Uint8Array; cpuMs: number; lastSeen: [Pid, number][] };
  /** A `spawner` for it that came meanwhile (its parent moved): replaces the one its `immigrate` named. */
  spawner?: PeerId;
  /** Messages for it that reached this peer directly: delivered after it runs, or sent back to `from`. */
  held: ForProcess[];
  cancelTimer?: () => void;
}

/** A process thawed here after go, until its first state. */
interface Arriving {
  from: PeerId;
  ref: number;
  /** As Incoming.held (delivered after its first state). */
  held: ForProcess[];
  cancelTimer: () => void;
  /** Set when its thaw took too long: it is being stopped, and `immigrate.failed` follows its exit. */
  abandoned?: string;
}

/** A process running on this peer. */
interface Hosted {
  info: ProcessInfo;
  executor: number;
  client: Address;
  spawner: PeerId;
  hash: string;
  /** Calls of the process waiting for the spawn they asked for: it will run again soon. */
  spawning: number;
  /** Output flow-control window, when its terminal acknowledges output. */
  window?: number;
  env: Record<string, string>;
  interactive: boolean;
  speculation: SpeculationMode;
  /** clock.now() when it started or arrived here. */
  since: number;
  /** The state its executor last reported (the row says MIGRATING while it moves). */
  execState: ProcessState;
  /** Leaving this peer. */
  emigration?: Emigration<Held>;
  /**
   * Senders whose messages only wait while it is being frozen (the one that made the first wait
   * would start a dependency on another process's speculation; what they send after it waits too,
   * so each sender's messages stay in order). Reset when a move starts and when a freeze fails.
   */
  freezeHeldFrom?: Set<Pid>;
  /** Ref of the `immigrate` (or of the pre-copy base and its `immigrate.delta`) sent for it. */
  shipRef?: number;
  /** Arrived by `immigrate` and go; the executor has not reported its first state yet. */
  arriving?: Arriving;
  lastMovedAt?: number;
  /** Its executor did not answer a freeze: do not try again. */
  unfreezable?: boolean;
  /** `children`: its child records when the image was asked for (a spawn since makes that image unusable). */
  checkpoint: { busy: boolean; lastAt: number; saved: boolean; children?: number };
  /** Being stopped because the peer that sent it left before it ran here: its end is nobody's business. */
  silent?: boolean;
  /** Counts its thaws here: a reply to a call of an earlier instance is dropped (the thawed one asks again). */
  life: number;
  /** The timed `wait` it is blocked in: its deadline outlives a freeze. */
  blockedWait?: { call: number; child: Pid; timeoutMs: number; deadline: number };
  /** After a thaw: that wait, asked again by its first call, keeps its deadline. */
  resumeWait?: { child: Pid; timeoutMs: number; deadline: number };
  /** The peer it moved here from (what that peer forwards for it is trusted like its own word). */
  cameFrom?: PeerId;
  /** Bytes of its last image (a checkpoint, a freeze, or the one it arrived with): whether a pre-copy pays. */
  imageBytes?: number;
  /** Its executor reported a state: it was loaded and has run (before that its image is its program's first). */
  loaded?: boolean;
  /**
   * Restarted here from a checkpoint: peers send again from their logs what its dead copy took.
   * Until each (`waiting`) said `restarted.done`, other deliveries wait in `held`: one with a
   * higher `seq` first would make its sender's replays repeats.
   */
  replay?: { waiting: Set<PeerId>; held: ForProcess[]; cancelTimer: () => void };
}

type Outcome = { kind: 'exit'; code: number; message?: string } | { kind: 'lost'; message: string };

interface Waiter {
  reply(r: KernelReply): void;
  cancelTimer?: () => void;
}

/** A process this peer spawned (it may run anywhere). */
interface Spawned {
  pid: Pid;
  host: PeerId;
  client: Address;
  parent?: Pid;
  /** `run.ok` or the spawn reply is sent when it has started. */
  started: boolean;
  onStart?: (r: { ok: true } | { ok: false; errno: KernelErrno; message: string }) => void;
  cancelStartTimer?: () => void;
  outcome?: Outcome;
  waiters: Waiter[];
  /** Taken over with its moving parent from this peer, which relays what still reaches it about the child until `until`. */
  adoptedFrom?: { peer: PeerId; until: number };
  /** Adopted from a checkpoint (a restart): its host may have forgotten how it ended (unknownChild). */
  restored?: boolean;
}

interface PendingKill {
  host: PeerId;
  done(ok: boolean, message?: string): void;
  cancelTimer(): void;
}

/** A restart from a checkpoint sent out by this peer; a parent's carries its checkpointed spawner role to the go. */
interface Restart {
  pid: Pid;
  to: PeerId;
  committed: boolean;
  cancelTimer: () => void;
  carried?: Pick<CheckpointMeta, 'children' | 'wait'>;
}

const RUNNABLE: ReadonlySet<ProcessState> = new Set(['READY', 'RUNNING']);

export class SchedulerServer implements Server {
  readonly port = PORTS.scheduler;
  private ctx!: ServerContext;
  private nextPid = 0;
  /** Names this boot's pids: a reloaded tab keeps its peer id but must not reuse pids. */
  private pidPrefix = '';
  /** Peers that left the view (until they come back): a late `start` from one is refused. */
  private readonly gone = new Set<PeerId>();
  private readonly recentSenders = new Map<Pid, PeerId>();
  private nextRef = 0;
  private readonly hosted = new Map<Pid, Hosted>();
  private readonly spawned = new Map<Pid, Spawned>();
  /** Other peers' rows of the cluster table. */
  private readonly tables = new Map<PeerId, ProcessInfo[]>();
  private readonly kills = new Map<number, PendingKill>();
  private readonly watchers = new Map<string, Address>();
  private readonly modules = new ModuleCache(MODULE_CACHE_BYTES / 2, (h) => this.inUse(h));
  private readonly rewritten = new ModuleCache(MODULE_CACHE_BYTES / 2, (h) => this.inUse(h));
  /** Programs an executor was asked to rewrite ahead of a thaw (`prepare`), by hash: that executor, until its `rewritten` comes. */
  private readonly preparing = new Map<string, { executor: number; done: Promise<void>; resolve: () => void }>();
  /** Starts whose module is being checked against its hash. */
  private readonly checking = new Set<Pid>();
  private view: ViewMessage | undefined;
  private known = new Set<PeerId>();
  private tableTimer: (() => void) | undefined;
  private lastLoad = -1;
  /** Processes that moved away from here: where to, and until when what arrives for them is forwarded. */
  private readonly forwards = new Map<Pid, { to: PeerId; until: number; from?: PeerId }>();
  /** Child records of a parent on its way elsewhere, from go until `immigrated` (then relayed) or a failure (then taken back). */
  private readonly lent = new Map<Pid, { to: PeerId; parent: Pid; s: Spawned }>();
  /** Children whose parent moved away: their `exited` and `moved` that still come here go to its new host until `until`. */
  private readonly relays = new Map<Pid, { to: PeerId; host: PeerId; until: number; adoptedFrom?: { peer: PeerId; until: number } }>();
  /** `migrate`s this peer asked another host for, by ref. */
  private readonly remoteMigrations = new Map<number, { host: PeerId; done: (r: MigrationResult) => void; cancelTimer: () => void }>();
  /** Restarts from a checkpoint this peer (the spawner) sent out, by `immigrate` ref (committed: go sent). */
  private readonly restarts = new Map<number, Restart>();
  /** Children that ended here while their spawner was gone: their status, for a restarted parent's new spawner. */
  private readonly recentExits = new Map<Pid, { code: number; message?: string; at: number }>();
  /** Processes on their way here, not running yet. */
  private readonly incoming = new Map<Pid, Incoming>();
  /** Pre-copy bases other peers sent for moves to here (one per process, bounded in bytes). */
  private readonly bases: BaseStore;
  /** Moves from here pre-copy (SchedulerOptions.precopy). */
  private readonly precopy: boolean;
  /** The size of the last image seen of each program (by hash): a guess for its processes never imaged. */
  private readonly imageSizes = new Map<string, number>();
  /** `migrate`s waiting for a move of the process to end (then handled again). */
  private readonly moveWaiters = new Map<Pid, (() => void)[]>();
  private readonly specs = new SpeculationRoutes();
  /** The key images are authenticated with (undefined: this peer has none, and moves nothing). */
  private key: Promise<Uint8Array | undefined> = Promise.resolve(undefined);
  private readonly checkpoints: CheckpointStore | undefined;
  /** What this peer routed for its processes, for receivers restarted from a checkpoint (only when checkpoints are on). */
  private readonly messageLog: MessageLog<Extract<PeerMessage, { kind: 'deliver' }>> | undefined;
  /** Logged messages this peer sent again to restarted processes (a count for tests and diagnostics). */
  sentAgain = 0;
  /** A rebalancing move is in flight (one at a time). */
  private balancing = false;
  private readonly rebalance: boolean;
  private readonly rebalanceEveryMs: number;
  private readonly balance: BalanceOptions;
  private readonly checkpointEveryMs: number;
  /** Default Fork On Wait mode of processes started from here. */
  private readonly speculation: SpeculationMode;
  private stopped = false;

  constructor(
    private readonly devices: SchedulerDevices,
    options: SchedulerOptions = {},
  ) {
    this.rebalance = options.rebalance ?? true;
    this.rebalanceEveryMs = options.rebalanceEveryMs ?? REBALANCE_MS;
    this.balance = options.balance ?? {};
    this.checkpointEveryMs = options.checkpointEveryMs ?? CHECKPOINT_MS;
    this.speculation = options.speculation ?? 'on';
    this.precopy = options.precopy ?? true;
    this.bases = new BaseStore((fn, ms) => devices.clock.setTimeout(fn, ms));
    this.checkpoints = devices.files && this.checkpointEveryMs > 0 ? new CheckpointStore(devices.files) : undefined;
    this.messageLog = this.checkpoints ? new MessageLog(messageLogMs(this.checkpointEveryMs)) : undefined;
  }

  /** Execution slots this peer offers. */
  get capacity(): number {
    return this.devices.exec?.count ?? 0;
  }

  start(ctx: ServerContext): void {
    this.ctx = ctx;
    this.pidPrefix = bootPrefix(ctx.self, this.devices.clock.wallNow());
    this.devices.exec?.attach((executor, msg) => this.fromExecutor(executor, msg));
    // Executors reach the cluster filesystem through this Scheduler: tell each its root.
    const exec = this.devices.exec;
    if (exec && this.devices.files) for (let e = 0; e < exec.count; e++) exec.post(e, { t: 'files', root: this.devices.files.root });
    ctx.send({ peer: ctx.self, port: PORTS.synchronizer }, { kind: 'watch' });
    this.reportLoad();
    const { hmacSha256, token } = this.devices;
    if (hmacSha256 && token !== undefined) {
      this.key = imageKey(token, hmacSha256).catch((e: Error) => {
        ctx.log('warn', `no process image key: ${e.message}`);
        return undefined;
      });
    }
    if (this.devices.exec && this.devices.exec.count > 0) {
      if (this.rebalance) this.every(this.rebalanceEveryMs, () => this.rebalanceOnce());
      if (this.checkpoints) this.every(this.checkpointEveryMs, () => this.checkpointAll());
    }
  }

  /** Runs `fn` every `ms` until the Scheduler stops. */
  private every(ms: number, fn: () => void): void {
    const tick = () => {
      if (this.stopped) return;
      try {
        fn();
      } finally {
        this.devices.clock.setTimeout(tick, ms);
      }
    };
    this.devices.clock.setTimeout(tick, ms);
  }

  stop(): void {
    this.stopped = true;
    for (const h of this.hosted.values()) {
      if (h.info.state !== 'EXITED') this.devices.exec?.post(h.executor, { t: 'kill', pid: h.info.pid, reason: 'its peer shut down' });
    }
  }

  receive(env: Envelope): void {
    const { from } = env;
    if (from.port === PORTS.synchronizer && from.peer === this.ctx.self) return this.onView(env.body as ViewMessage);
    if (from.port === PORTS.scheduler) {
      const parsed = PeerMessageSchema.safeParse(env.body);
      if (!parsed.success) return this.ctx.log('warn', `bad scheduler message from ${from.peer.slice(0, 8)}: ${parsed.error.issues[0]?.message}`);
      return this.onPeerMessage(from.peer, parsed.data);
    }
    if (from.peer !== this.ctx.self) return this.ctx.log('warn', `request from remote port ${from.peer.slice(0, 8)}/${from.port} refused`);
    const parsed = ClientRequestSchema.safeParse(env.body);
    if (!parsed.success) return this.ctx.log('warn', `bad request from ${from.port}: ${parsed.error.issues[0]?.message}`);
    const req = parsed.data;
    switch (req.kind) {
      case 'run':
        void this.run(from, req);
        break;
      case 'stdin':
      case 'stdin.end':
        this.routeStdin(req.pid, req.kind === 'stdin' ? req.data : undefined);
        break;
      case 'ack': {
        const host = this.whereIs(req.pid);
        if (host) this.toPeer(host, { kind: 'out.ack', pid: req.pid, bytes: req.bytes });
        break;
      }
      case 'kill':
        this.killPid(req.pid, `killed from ${from.port}`, (ok, message) =>
          this.toClient(from, ok ? { kind: 'kill.ok', req: req.req } : { kind: 'kill.failed', req: req.req, message: message ?? 'kill failed' }),
        );
        break;
      case 'migrate':
        this.migrateFor(req.pid, req.to, (r) =>
          this.toClient(from, r.ok ? { kind: 'migrate.ok', req: req.req, pid: req.pid, ...moved(r) } : { kind: 'migrate.failed', req: req.req, message: r.message }),
        );
        break;
      case 'drain':
        void this.drain().then(({ moved, left }) => this.toClient(from, { kind: 'drain.ok', req: req.req, moved, left }));
        break;
      case 'ps':
        this.toClient(from, { kind: 'ps.ok', req: req.req, rows: this.table() });
        break;
      case 'programs':
        void (this.devices.programs?.list() ?? Promise.resolve([])).then(
          (names) => this.toClient(from, { kind: 'programs.ok', req: req.req, names }),
          () => this.toClient(from, { kind: 'programs.ok', req: req.req, names: [] }),
        );
        break;
      case 'watch':
        this.watchers.set(from.port, from);
        this.toClient(from, { kind: 'table', rows: this.table() });
        break;
      case 'unwatch':
        this.watchers.delete(from.port);
        break;
    }
  }

  // ---- the cluster table ----

  /** Every process this peer knows of, its own first. */
  table(): ProcessInfo[] {
    const rows = [...this.hosted.values()].map((h) => ({ ...h.info }));
    for (const [peer, theirs] of this.tables) if (peer !== this.ctx.self) rows.push(...theirs);
    return rows;
  }

  private tableChanged(): void {
    this.reportLoad();
    if (this.tableTimer) return;
    this.tableTimer = this.devices.clock.setTimeout(() => {
      this.tableTimer = undefined;
      const rows = [...this.hosted.values()].map((h) => h.info);
      for (const peer of this.known) if (peer !== this.ctx.self) this.toPeer(peer, { kind: 'table', rows });
      this.publish();
    }, TABLE_COALESCE_MS);
  }

  private publish(): void {
    if (this.watchers.size === 0) return;
    const rows = this.table();
    for (const w of this.watchers.values()) this.toClient(w, { kind: 'table', rows });
  }

  private localRunnable(): number {
    let n = 0;
    for (const h of this.hosted.values()) if (RUNNABLE.has(h.info.state) || h.spawning > 0) n++;
    return n;
  }

  private reportLoad(): void {
    const load = this.localRunnable();
    if (load === this.lastLoad) return;
    this.lastLoad = load;
    this.ctx.send({ peer: this.ctx.self, port: PORTS.driver }, { kind: 'load.report', load });
  }

  // ---- membership ----

  private onView(view: ViewMessage): void {
    if (view?.kind !== 'view' || !Array.isArray(view.peers)) return;
    this.view = view;
    const now = new Set(view.peers.map((p) => p.id));
    for (const peer of now) this.gone.delete(peer);
    for (const peer of this.known) if (!now.has(peer)) this.peerGone(peer);
    const mine = [...this.hosted.values()].map((h) => h.info);
    for (const peer of now) if (!this.known.has(peer) && peer !== this.ctx.self) this.toPeer(peer, { kind: 'table', rows: mine });
    this.known = now;
  }

  private peerGone(peer: PeerId): void {
    const short = peer.slice(0, 8);
    this.gone.add(peer);
    if (this.tables.delete(peer)) this.publish();
    // It will not send again what it logged for a process restarted here (it took its log along).
    for (const h of this.hosted.values()) if (h.replay?.waiting.delete(peer) && h.replay.waiting.size === 0) this.replayed(h);
    for (const s of this.spawned.values()) {
      if (s.host !== peer || s.outcome) continue;
      // Brought by a parent that does not run here yet: adoptChildren (or its old host, taking it back) sees to it.
      if (s.adoptedFrom && s.parent && this.hosted.get(s.parent)?.arriving) continue;
      const message = `lost: its peer ${short} went away`;
      if (!s.started) this.failStart(s, 'EHOSTUNREACH', `peer ${short} went away before the process started`);
      else this.hostGone(s, message);
    }
    for (const [ref, r] of this.restarts) {
      if (r.to !== peer) continue;
      this.restarts.delete(ref);
      r.cancelTimer();
      const s = this.spawned.get(r.pid);
      if (s && !s.outcome) void this.restartOrLose(s, `lost: its peer ${short} went away while it restarted there`);
    }
    for (const [ref, m] of this.remoteMigrations) {
      if (m.host !== peer) continue;
      this.remoteMigrations.delete(ref);
      m.cancelTimer();
      m.done({ ok: false, message: `its peer ${short} went away` });
    }
    for (const [pid, r] of this.relays) if (r.to === peer) this.relays.delete(pid);
    // Images it sent us and never said go for: it runs them itself, if it runs at all.
    for (const [pid, inc] of [...this.incoming]) if (inc.from === peer) this.dropIncoming(pid, inc, false);
    this.bases.dropFrom(peer);
    for (const h of [...this.hosted.values()]) {
      h.emigration?.peerGone(peer);
      if (h.info.state === 'EXITED') continue;
      // A process whose old host said go and then left goes on arriving here: a closing tab
      // drains exactly that way, and we may be its only copy. (Were the old host only cut off
      // from us, it would thaw its own copy too: two copies, as with any restart under a
      // partition — the same guarantee as a checkpoint restart, see the header.)
      if (h.client.peer === peer) this.hangup(h, peer);
      else if (h.spawner === peer) void this.spawnerGone(h, peer);
    }
  }

  private hangup(h: Hosted, peer: PeerId): void {
    this.devices.exec?.post(h.executor, { t: 'kill', pid: h.info.pid, reason: `hangup: the peer ${peer.slice(0, 8)} that started it went away` });
  }

  /**
   * The spawner of `h` (its parent's host) left. A parent with a checkpoint is restarted by its
   * own spawner, whose new host says `spawner`: wait for that a while; otherwise hang up now.
   */
  private async spawnerGone(h: Hosted, peer: PeerId): Promise<void> {
    const parent = h.info.parent;
    const still = () => this.hosted.get(h.info.pid) === h && h.info.state !== 'EXITED' && h.spawner === peer;
    // Bounded even if the filesystem does not answer the look-up.
    this.devices.clock.setTimeout(() => {
      if (still()) this.hangup(h, peer);
    }, PARENT_RESTART_GRACE_MS);
    let restartable = false;
    if (parent !== undefined && this.checkpoints) {
      try {
        restartable = await this.checkpoints.has(parent);
      } catch (e) {
        this.ctx.log('warn', `cannot tell whether ${parent} has a checkpoint: ${(e as Error).message}`);
      }
    }
    if (!restartable && still()) this.hangup(h, peer);
  }

  /**
   * The host of `s` left the view. Its process may have been on its way to another peer (a
   * closing tab drains that way, and leaves right after the go): if it arrives or runs here, or
   * a live peer's table lists it, that peer is its host now. Otherwise wait HOST_GONE_GRACE_MS
   * for a `moved` or a table row to say so before restarting it from its checkpoint.
   */
  private hostGone(s: Spawned, message: string, graced = false): void {
    if (s.outcome) return;
    const elsewhere = this.runningElsewhere(s.pid);
    if (elsewhere) {
      s.host = elsewhere;
      return;
    }
    if (!this.gone.has(s.host)) return; // a `moved` came meanwhile
    if (graced) return void this.restartOrLose(s, message);
    this.devices.clock.setTimeout(() => this.hostGone(s, message, true), HOST_GONE_GRACE_MS);
  }

  /** A live host of `pid` other than a gone one: this peer, or one whose table lists it running or arriving. */
  private runningElsewhere(pid: Pid): PeerId | undefined {
    const h = this.hosted.get(pid);
    if (h && h.info.state !== 'EXITED' && !h.silent) return this.ctx.self;
    for (const [peer, rows] of this.tables) if (!this.gone.has(peer) && rows.some((r) => r.pid === pid && r.state !== 'EXITED')) return peer;
    return undefined;
  }

  private alivePeers(): PeerId[] {
    return this.view?.peers.map((p) => p.id) ?? [this.ctx.self];
  }

  private candidates(): Candidate[] {
    const peers = this.view?.peers ?? [];
    const out: Candidate[] = [];
    for (const p of peers) {
      if (p.id === this.ctx.self) {
        out.push({ id: p.id, capacity: this.capacity, load: this.localRunnable() });
        continue;
      }
      if (p.state === 'gossip') continue; // no direct link to start it over
      const rows = this.tables.get(p.id) ?? [];
      const seen = new Set(rows.map((r) => r.pid));
      let load = rows.filter((r) => RUNNABLE.has(r.state)).length;
      // Our own placements there that its table does not show yet.
      for (const s of this.spawned.values()) if (s.host === p.id && !s.outcome && !seen.has(s.pid)) load++;
      // The peer's own table is fresher than its gossiped load (which lags a gossip round or
      // two and would keep a just-finished peer looking busy); gossip stands in until it came.
      out.push({ id: p.id, capacity: p.capacity, load: this.tables.has(p.id) ? load : Math.max(load, p.load) });
    }
    if (!peers.some((p) => p.id === this.ctx.self)) out.push({ id: this.ctx.self, capacity: this.capacity, load: this.localRunnable() });
    return out;
  }

  // ---- spawner role ----

  private async run(client: Address, req: RunRequest): Promise<void> {
    const fail = (message: string) => this.toClient(client, { kind: 'run.failed', req: req.req, message });
    try {
      const module = req.module ?? (await this.devices.programs?.load(req.name));
      if (!module) return fail(`no such program: ${req.name}`);
      let placed: { pid: Pid; host: PeerId } | undefined;
      const r = await this.spawn(
        {
          name: req.name,
          module,
          args: req.args,
          env: req.env ?? {},
          on: req.on,
          client,
          interactive: req.interactive ?? false,
          speculation: req.speculation ?? this.speculation,
          ...(req.acks ? { window: OUTPUT_WINDOW_BYTES } : {}),
        },
        (started) => {
          if (started.ok && placed) this.toClient(client, { kind: 'run.ok', req: req.req, pid: placed.pid, peer: placed.host });
          else if (!started.ok) fail(started.message);
        },
      );
      if ('error' in r) return fail(r.error);
      placed = r;
    } catch (err) {
      fail(`cannot start ${req.name}: ${(err as Error).message}`);
    }
  }

  /**
   * Chooses a host, allocates the pid and asks the host to start it; `onStart` hears whether it
   * started (never before this returns). Placement and registration happen in one turn, so
   * spawns that overlap see each other's placements.
   */
  private async spawn(
    p: {
      name: string;
      module: Uint8Array;
      args: string[];
      env: Record<string, string>;
      on: string | undefined;
      client: Address;
      parent?: Pid;
      interactive: boolean;
      speculation: SpeculationMode;
      window?: number;
    },
    onStart: NonNullable<Spawned['onStart']>,
  ): Promise<{ error: string; errno: KernelErrno } | { pid: Pid; host: PeerId }> {
    if (p.module.length > MAX_MODULE_BYTES) return { error: `${p.name} is larger than ${MAX_MODULE_BYTES >> 20} MiB`, errno: 'EINVAL' };
    if (!isWasm(p.module)) return { error: `${p.name} is not a WebAssembly module`, errno: 'ENOEXEC' };
    if (p.args.length > MAX_ARGS || p.args.some((a) => a.length > MAX_ARG_CHARS)) {
      return { error: `at most ${MAX_ARGS} arguments of ${MAX_ARG_CHARS} characters`, errno: 'EINVAL' };
    }
    const hash = toHex(await this.devices.sha256(p.module));
    let host: PeerId | undefined;
    if (p.on) {
      const r = resolvePeer(p.on, this.alivePeers());
      if ('error' in r) return { error: r.error, errno: 'EHOSTUNREACH' };
      host = r.peer;
    } else {
      host = choosePeer(this.candidates(), this.ctx.self);
      if (!host) return { error: 'no peer in the cluster runs processes', errno: 'EAGAIN' };
    }
    this.remember(hash, p.module);
    const pid = `${this.pidPrefix}.${++this.nextPid}`;
    const s: Spawned = { pid, host, client: p.client, started: false, waiters: [], ...(p.parent ? { parent: p.parent } : {}) };
    this.spawned.set(pid, s);
    s.cancelStartTimer = this.devices.clock.setTimeout(() => {
      if (s.started || s.outcome) return;
      // It may still be loading there: make sure it does not run on as an orphan.
      this.toPeer(host, { kind: 'kill', ref: 0, pid, reason: 'it did not start in time' });
      this.failStart(s, 'EHOSTUNREACH', `peer ${host.slice(0, 8)} did not start ${p.name} within ${START_TIMEOUT_MS / 1000} s`);
    }, START_TIMEOUT_MS);
    const sent = this.toPeer(host, {
      kind: 'start',
      pid,
      name: p.name,
      args: p.args,
      env: p.env,
      hash,
      module: p.module,
      client: p.client,
      ...(p.parent ? { parent: p.parent } : {}),
      interactive: p.interactive,
      ...(p.window ? { window: p.window } : {}),
      ...(p.speculation !== 'off' ? { speculation: p.speculation } : {}),
    });
    // Answered in a later turn, after the caller has the pid.
    s.onStart = (r) => queueMicrotask(() => onStart(r));
    if (!sent) this.failStart(s, 'EHOSTUNREACH', `peer ${host.slice(0, 8)} cannot be reached`);
    return { pid, host };
  }

  private failStart(s: Spawned, errno: KernelErrno, message: string): void {
    s.cancelStartTimer?.();
    s.outcome = { kind: 'lost', message };
    this.spawned.delete(s.pid);
    s.onStart?.({ ok: false, errno, message });
    this.tableChanged();
  }

  /** A spawned process ended or was lost: tell its terminal (root) or waiting parent. */
  private settle(s: Spawned, outcome: Outcome): void {
    if (s.outcome) return;
    s.outcome = outcome;
    if (!s.parent) {
      if (outcome.kind === 'lost') this.toClient(s.client, { kind: 'lost', pid: s.pid, message: outcome.message });
      // A root process's exit went to its terminal from its host, right after its output.
    } else if (outcome.kind === 'lost') {
      this.toClient(s.client, { kind: 'out', pid: s.pid, fd: 2, data: utf8(`[pid ${s.pid} ${outcome.message}]\n`) });
    }
    for (const w of s.waiters.splice(0)) {
      w.cancelTimer?.();
      w.reply(replyFor(outcome));
    }
    // A root's record is only needed until now; a child's until its parent is gone.
    if (!s.parent || !this.hosted.has(s.parent) || this.hosted.get(s.parent)!.info.state === 'EXITED') this.spawned.delete(s.pid);
    this.tableChanged();
  }

  private remember(hash: string, module: Uint8Array): void {
    this.modules.set(hash, module);
  }

  private inUse(hash: string): boolean {
    for (const h of this.hosted.values()) if (h.hash === hash && h.info.state !== 'EXITED') return true;
    return false;
  }

  /** Where a process runs now, as far as this peer knows. */
  private whereIs(pid: Pid): PeerId | undefined {
    const h = this.hosted.get(pid);
    if (h && h.info.state !== 'EXITED') return this.ctx.self;
    // The spawner's record follows every move (`moved`); a forward may be a hop behind.
    const s = this.spawned.get(pid);
    if (s && !s.outcome) return s.host;
    const moved = this.forwardOf(pid);
    if (moved) return moved;
    for (const [peer, rows] of this.tables) if (rows.some((r) => r.pid === pid && r.state !== 'EXITED')) return peer;
    // A parent of a process here runs on its spawner (which `spawner` keeps current when the parent
    // moves): a child may report to it before that host's table came.
    for (const h of this.hosted.values()) if (h.info.parent === pid && h.info.state !== 'EXITED' && !h.silent) return h.spawner;
    const recent = this.recentSenders.get(pid);
    return recent && this.known.has(recent) ? recent : undefined;
  }

  private routeStdin(pid: Pid, data: Uint8Array | undefined): void {
    const host = this.whereIs(pid);
    if (!host) return;
    this.toPeer(host, data ? { kind: 'stdin', pid, data } : { kind: 'stdin.end', pid });
  }

  private killPid(pid: string, reason: string, done: (ok: boolean, message?: string) => void): void {
    const host = this.whereIs(pid);
    if (!host) return done(false, `no such process: ${pid}`);
    const ref = ++this.nextRef;
    const cancelTimer = this.devices.clock.setTimeout(() => {
      this.kills.delete(ref);
      done(false, `peer ${host.slice(0, 8)} did not confirm the kill of ${pid}`);
    }, KILL_TIMEOUT_MS);
    this.kills.set(ref, { host, done, cancelTimer });
    this.toPeer(host, { kind: 'kill', ref, pid, reason });
  }

  // ---- messages from other Schedulers (and from this one to itself) ----

  private onPeerMessage(from: PeerId, msg: PeerMessage): void {
    switch (msg.kind) {
      case 'start':
        this.startHere(from, msg);
        break;
      case 'started': {
        const s = this.spawned.get(msg.pid);
        if (!s || s.host !== from || s.started) return;
        s.started = true;
        s.cancelStartTimer?.();
        s.onStart?.({ ok: true });
        break;
      }
      case 'start.failed': {
        const s = this.spawned.get(msg.pid);
        if (s && s.host === from && !s.started) this.failStart(s, msg.errno, msg.message);
        break;
      }
      case 'exited': {
        const s = this.spawned.get(msg.pid);
        if (!s) return this.relay(from, msg);
        if (!this.exitFrom(s, from)) return;
        if (!s.started) {
          s.started = true;
          s.cancelStartTimer?.();
          s.onStart?.({ ok: true });
        }
        this.settle(s, { kind: 'exit', code: msg.code, ...(msg.message !== undefined ? { message: msg.message } : {}) });
        break;
      }
      case 'stdin':
      case 'stdin.end':
      case 'out.ack':
        this.forProcess(msg.pid, msg);
        break;
      case 'kill': {
        const where = this.forProcess(msg.pid, msg.ref === 0 ? msg : { ...msg, ref: 0 });
        // Moved or moving: it will be killed where it runs (the answer comes from here).
        if (msg.ref !== 0) this.toPeer(from, { kind: 'kill.result', ref: msg.ref, ok: where !== 'none', ...(where !== 'none' ? {} : { message: `no such process: ${msg.pid}` }) });
        break;
      }
      case 'kill.result': {
        const k = this.kills.get(msg.ref);
        if (!k || k.host !== from) return;
        this.kills.delete(msg.ref);
        k.cancelTimer();
        k.done(msg.ok, msg.message);
        break;
      }
      case 'deliver': {
        const origin = msg.origin ?? from;
        this.recentSenders.delete(msg.from);
        this.recentSenders.set(msg.from, origin);
        if (this.recentSenders.size > RECENT_SENDERS) this.recentSenders.delete(this.recentSenders.keys().next().value!);
        // A message depending on a cancelled speculation was never sent, as far as anyone can tell.
        const known = this.withOutcomes(msg);
        if (!known) return;
        if (this.forProcess(msg.pid, { ...known, origin }) === 'none') {
          // A call to a process that is gone would wait forever: tell the caller.
          if (msg.token !== 0 && !msg.port.startsWith('#')) {
            this.toPeer(origin, { kind: 'deliver', pid: msg.from, port: NOREPLY_PORT + msg.token, from: msg.pid, token: 0, data: new Uint8Array(0) });
          }
        }
        break;
      }
      case 'spec.resolved':
        this.specResolved(msg.id, msg.ok);
        break;
      case 'restarted':
        this.replayTo(from, msg);
        break;
      case 'restarted.done': {
        const h = this.hosted.get(msg.pid);
        if (!h?.replay) return;
        h.replay.waiting.delete(from);
        if (h.replay.waiting.size === 0) this.replayed(h);
        break;
      }
      case 'migrate': {
        const done = (r: MigrationResult) =>
          this.toPeer(from, { kind: 'migrate.result', ref: msg.ref, ok: r.ok, ...(r.ok ? moved(r) : { message: r.message }) });
        this.migrateHere(msg.pid, msg.to, msg.hops, this.devices.clock.now() + msg.budgetMs, done);
        break;
      }
      case 'migrate.result': {
        const m = this.remoteMigrations.get(msg.ref);
        if (!m || m.host !== from) return;
        this.remoteMigrations.delete(msg.ref);
        m.cancelTimer();
        const { precopyMs, frozenBytes, phases } = msg;
        m.done(msg.ok ? { ok: true, ...moved({ ok: true, peer: msg.peer ?? from, freezeMs: msg.freezeMs ?? 0, precopyMs, frozenBytes, phases }) } : { ok: false, message: msg.message ?? 'the move failed' });
        break;
      }
      case 'immigrate':
      case 'immigrate.delta':
        void this.immigrate(from, msg);
        break;
      case 'precopy':
        void this.receiveBase(from, msg);
        break;
      case 'precopy.ok':
      case 'precopy.failed': {
        const h = this.hosted.get(msg.pid);
        if (h?.emigration && h.shipRef === msg.ref && h.emigration.to === from) {
          if (msg.kind === 'precopy.ok') h.emigration.baseAcked();
          else h.emigration.baseRefused(msg.reason);
          return;
        }
        // Nobody here waits for it (the move ended): the base must not wait for a delta.
        if (msg.kind === 'precopy.ok') this.toPeer(from, { kind: 'immigrate.cancel', ref: msg.ref, pid: msg.pid });
        break;
      }
      case 'immigrate.ready': {
        const r = this.restarts.get(msg.ref);
        if (r && r.to === from && r.pid === msg.pid) return this.restartReady(msg.ref, r);
        const h = this.hosted.get(msg.pid);
        if (h?.emigration && h.shipRef === msg.ref && h.emigration.to === from) {
          // A child's host left while it was on the way: its restart is this peer's, so it stays.
          const why = h.emigration.phase === 'shipping' ? this.childrenUnmovable(msg.pid) : undefined;
          if (why) return h.emigration.giveUp(`cannot move ${msg.pid}: ${why}`);
          return h.emigration.ready();
        }
        // Nobody here waits for it (given up, or never sent): it must never run there.
        this.toPeer(from, { kind: 'immigrate.cancel', ref: msg.ref, pid: msg.pid });
        break;
      }
      case 'immigrate.go':
        this.go(from, msg);
        break;
      case 'immigrated':
      case 'immigrate.failed': {
        const r = this.restarts.get(msg.ref);
        if (r && r.to === from && r.pid === msg.pid) {
          this.restarts.delete(msg.ref);
          r.cancelTimer();
          const s = this.spawned.get(msg.pid);
          if (msg.kind === 'immigrate.failed' && s && !s.outcome) this.settle(s, { kind: 'lost', message: `lost: its restart on ${from.slice(0, 8)} failed: ${msg.reason}` });
          return;
        }
        const h = this.hosted.get(msg.pid);
        if (!h?.emigration || h.shipRef !== msg.ref || h.emigration.to !== from) return;
        if (msg.kind === 'immigrated') h.emigration.immigrated();
        else h.emigration.refused(msg.reason, msg.noBase === true);
        break;
      }
      case 'immigrate.cancel': {
        this.bases.drop(msg.pid, from, msg.ref);
        const inc = this.incoming.get(msg.pid);
        // After go its sender is committed and never cancels: only a kept image is dropped.
        if (!inc || inc.from !== from || inc.ref !== msg.ref) return;
        if (inc.phase === 'checking') inc.cancelled = true;
        else this.dropIncoming(msg.pid, inc, true);
        break;
      }
      case 'moved': {
        const s = this.spawned.get(msg.pid);
        // A late word from a host that left: whoever has it now (a restart, or the old host that
        // thawed it again) says so after.
        if (this.gone.has(from)) return;
        if (!s) return this.relay(from, msg);
        if (s.outcome) return;
        s.host = msg.to;
        if (!s.started) {
          s.started = true;
          s.cancelStartTimer?.();
          s.onStart?.({ ok: true });
        }
        break;
      }
      case 'spawner':
        this.newSpawner(from, msg);
        break;
      case 'table': {
        if (from === this.ctx.self) return;
        const rows = msg.rows.filter((r) => r.peer === from);
        this.tables.set(from, rows);
        for (const r of rows) if (r.state === 'EXITED') this.messageLog?.drop(r.pid);
        // An `exited` lost with a flapping link: the host's table still says how it ended.
        for (const r of rows) {
          const s = this.spawned.get(r.pid);
          if (s && s.host === from && s.started && !s.outcome && r.state === 'EXITED' && r.exitCode !== undefined) {
            this.settle(s, { kind: 'exit', code: r.exitCode });
          }
        }
        this.publish();
        break;
      }
    }
  }

  /**
   * Whether an `exited` of child record `s` from `from` is its word: from its host, or relayed by
   * the spawner the record was taken over from (which checked the host), while that relays.
   */
  private exitFrom(s: { host: PeerId; adoptedFrom?: { peer: PeerId; until: number } }, from: PeerId): boolean {
    return s.host === from || (s.adoptedFrom?.peer === from && s.adoptedFrom.until > this.devices.clock.now());
  }

  /**
   * An `exited` or `moved` of a child whose parent moved away: to the parent's new host, which
   * is (or is about to be) its spawner. Only what this peer would have accepted itself is relayed
   * (an `exited` from the child's host, or relayed by the peer this one took the record from: a
   * parent that moved on again while its first spawner still relays), and only to the peer it
   * handed the record to: the new spawner accepts a relay from that peer alone (Spawned.adoptedFrom).
   */
  private relay(from: PeerId, msg: Extract<PeerMessage, { kind: 'exited' | 'moved' }>): void {
    const l = this.lent.get(msg.pid);
    if (l) {
      // The parent is on its way: its copy here follows too, in case the move fails and it comes back.
      if (msg.kind === 'exited') {
        if (!this.exitFrom(l.s, from) || l.s.outcome) return;
        l.s.outcome = { kind: 'exit', code: msg.code, ...(msg.message !== undefined ? { message: msg.message } : {}) };
      } else l.s.host = msg.to;
      this.toPeer(l.to, msg);
      return;
    }
    const r = this.relays.get(msg.pid);
    if (!r) return;
    if (r.until <= this.devices.clock.now() || this.gone.has(r.to)) return void this.relays.delete(msg.pid);
    if (msg.kind === 'exited') {
      if (!this.exitFrom(r, from)) return;
      this.relays.delete(msg.pid); // nothing more comes about it
    } else r.host = msg.to;
    this.toPeer(r.to, msg);
  }

  /**
   * `spawner`: the parent of child `pid` moved to `msg.spawner`. Taken from that peer itself,
   * from the current spawner, or forwarded by the peer the child came from (which checked it);
   * held for its next host while the child moves, forwarded when it moved on.
   */
  private newSpawner(from: PeerId, msg: Extract<PeerMessage, { kind: 'spawner' }>): void {
    const pid = msg.pid;
    const h = this.hosted.get(pid);
    const refuse = () => this.ctx.log('warn', `spawner of ${pid} from ${from.slice(0, 8)} refused: not its spawner's word`);
    if (h && h.info.state !== 'EXITED' && !h.silent) {
      if (from !== msg.spawner && from !== h.spawner && from !== h.cameFrom) return refuse();
      h.spawner = msg.spawner;
      // Leaving: its `immigrate` may have named the old spawner, so its next host hears this too.
      h.emigration?.hold({ to: 'peer', msg });
      return;
    }
    // Ended here after its spawner left (its `exited` went there): a restarted parent's new spawner asks.
    const ended = this.recentExits.get(pid);
    if (ended && ended.at + RECENT_EXIT_MS > this.devices.clock.now() && from === msg.spawner) {
      this.toPeer(from, { kind: 'exited', pid, code: ended.code, ...(ended.message !== undefined ? { message: ended.message } : {}) });
      return;
    }
    const inc = this.incoming.get(pid);
    if (inc) {
      if (from !== msg.spawner && from !== inc.from) return refuse();
      inc.spawner = msg.spawner;
      return;
    }
    const f = this.forwards.get(pid);
    const to = this.forwardOf(pid);
    if (!to) return;
    if (from !== msg.spawner && from !== f?.from) return refuse();
    this.toPeer(to, msg);
  }

  // ---- host role ----

  private startHere(from: PeerId, msg: Extract<PeerMessage, { kind: 'start' }>): void {
    const exec = this.devices.exec;
    if (!exec || exec.count === 0) {
      this.toPeer(from, { kind: 'start.failed', pid: msg.pid, errno: 'EAGAIN', message: `peer ${this.ctx.self.slice(0, 8)} runs no processes` });
      return;
    }
    if (this.hosted.has(msg.pid) || this.checking.has(msg.pid)) return; // a duplicate start
    if (this.gone.has(from) || this.gone.has(msg.client.peer)) {
      this.toPeer(from, { kind: 'start.failed', pid: msg.pid, errno: 'EAGAIN', message: 'the peer that asked for it has left' });
      return;
    }
    // The hash names the module in every cache: never take a peer's word for it.
    this.checking.add(msg.pid);
    void this.devices.sha256(msg.module).then(
      (digest) => {
        this.checking.delete(msg.pid);
        if (toHex(digest) !== msg.hash) {
          this.toPeer(from, { kind: 'start.failed', pid: msg.pid, errno: 'EINVAL', message: 'the module does not match its hash' });
          return;
        }
        this.startChecked(from, msg, exec);
      },
      (err: Error) => {
        this.checking.delete(msg.pid);
        this.toPeer(from, { kind: 'start.failed', pid: msg.pid, errno: 'EAGAIN', message: `cannot hash the module: ${err.message}` });
      },
    );
  }

  private startChecked(from: PeerId, msg: Extract<PeerMessage, { kind: 'start' }>, exec: ExecutionDriver): void {
    if (this.gone.has(from) || this.gone.has(msg.client.peer)) return; // left while we hashed: nobody to run it for
    this.remember(msg.hash, msg.module);
    const executor = this.leastBusyExecutor(exec.count);
    const info: ProcessInfo = {
      pid: msg.pid,
      name: msg.name,
      args: msg.args,
      peer: this.ctx.self,
      state: 'READY',
      cpuMs: 0,
      startedAt: this.devices.clock.wallNow(),
      ...(msg.parent ? { parent: msg.parent } : {}),
    };
    this.hosted.set(msg.pid, {
      info,
      executor,
      client: msg.client,
      spawner: from,
      hash: msg.hash,
      spawning: 0,
      ...(msg.window ? { window: msg.window } : {}),
      env: msg.env,
      interactive: msg.interactive,
      speculation: msg.speculation ?? 'off',
      since: this.devices.clock.now(),
      execState: 'READY',
      checkpoint: { busy: false, lastAt: this.devices.clock.now(), saved: false },
      life: 0,
    });
    this.forwards.delete(msg.pid);
    const rewritten = this.rewritten.get(msg.hash);
    exec.post(executor, {
      t: 'start',
      spec: {
        pid: msg.pid,
        peer: this.ctx.self,
        name: msg.name,
        hash: msg.hash,
        ...(rewritten ? { rewritten } : { module: msg.module }),
        args: [msg.name, ...msg.args],
        env: msg.env,
        hasParent: msg.parent !== undefined,
        ...(msg.parent ? { parent: msg.parent } : {}),
        interactiveStdin: msg.interactive,
        ...(msg.window ? { outputWindow: msg.window } : {}),
        ...(msg.speculation ? { speculation: msg.speculation } : {}),
      },
    });
    // Accepted: the spawner may go on (a parent fanning out children does not wait for each to
    // load: cold loads take a second). A module that then fails to load exits with 1 and says why.
    this.toPeer(from, { kind: 'started', pid: msg.pid });
    this.tableChanged();
  }

  /** The executor a `prepare` of `hash` went to, while its answer is awaited (its rewrite is under way there). */
  private preparedOn(hash: string): number | undefined {
    return this.preparing.get(hash)?.executor;
  }

  private leastBusyExecutor(count: number): number {
    const busy = new Array<number>(count).fill(0);
    for (const h of this.hosted.values()) if (h.info.state !== 'EXITED') busy[h.executor]!++;
    let best = 0;
    for (let i = 1; i < count; i++) if (busy[i]! < busy[best]!) best = i;
    return best;
  }

  private fromExecutor(executor: number, msg: FromExecutor): void {
    if (msg.t === 'rewritten') {
      this.rewritten.set(msg.hash, msg.bytes);
      this.preparing.get(msg.hash)?.resolve();
      this.preparing.delete(msg.hash);
      return;
    }
    if (msg.t === 'fs') {
      // Answered whatever became of the process: the executor waits for every reply (releases
      // of an exited process's files included).
      void this.serveFs(msg.req).then((reply) => this.devices.exec?.post(executor, { t: 'fs.reply', call: msg.call, reply }));
      return;
    }
    if (msg.t === 'spec.resolved') {
      // Whatever became of the process since: its dependents must hear how its guess ended.
      this.specResolved(msg.id, msg.ok);
      return;
    }
    if (msg.t === 'notice') {
      this.ctx.log('warn', `process ${msg.pid}: ${msg.text}`);
      return;
    }
    const h = this.hosted.get(msg.pid);
    if (!h || h.executor !== executor || h.info.state === 'EXITED') return;
    switch (msg.t) {
      case 'state':
        h.execState = msg.state;
        h.loaded = true;
        if (!h.emigration?.active && !h.arriving?.abandoned) h.info.state = msg.state;
        h.info.cpuMs = msg.cpuMs;
        if (msg.spec) h.info.speculation = msg.spec;
        if (h.arriving) this.arrived(h);
        this.tableChanged();
        break;
      case 'out':
        for (let i = 0; i < msg.data.length; i += OUT_PIECE_BYTES) {
          const data = msg.data.length <= OUT_PIECE_BYTES ? msg.data : msg.data.subarray(i, i + OUT_PIECE_BYTES);
          const at = typeof msg.at === 'number' ? { at: msg.at + i } : {};
          this.ctx.send(h.client, { kind: 'out', pid: msg.pid, fd: msg.fd, data, ...at } satisfies ClientMessage);
        }
        break;
      case 'exit':
        if (h.arriving || h.silent) return this.arrivalFailed(h, h.arriving?.abandoned ?? msg.message ?? `it exited with ${msg.code} at once`);
        // Exited before the freeze took: the move is off (its freeze.failed follows).
        h.emigration?.ended();
        this.onExit(h, msg.code, msg.message, msg.cpuMs);
        break;
      case 'call':
        this.onCall(h, msg.call, msg.req);
        break;
      case 'frozen':
        this.imaged(h, msg.image);
        if (h.emigration?.phase === 'freezing') h.emigration.frozen(msg.image);
        // A freeze answered after its move was given up: it simply goes on here.
        else this.thawHere(h, msg.image);
        break;
      case 'freeze.failed':
        h.emigration?.freezeFailed(msg.reason);
        break;
      case 'checkpointed':
        this.imaged(h, msg.image);
        // A pre-copy's base, a periodic checkpoint, or both (two requests get one answer).
        h.emigration?.checkpointed(msg.image);
        if (h.checkpoint.busy) void this.saveCheckpoint(h, msg.image);
        break;
      case 'checkpoint.failed':
        h.checkpoint.busy = false;
        h.emigration?.checkpointFailed(msg.reason);
        break;
    }
  }

  /** Remembers how large `h`'s image is (and its program's, for processes of it never imaged). */
  private imaged(h: Hosted, image: Uint8Array): void {
    h.imageBytes = image.length;
    this.imageSizes.delete(h.hash);
    this.imageSizes.set(h.hash, image.length);
    if (this.imageSizes.size > 256) this.imageSizes.delete(this.imageSizes.keys().next().value!);
  }

  private serveFs(req: FsRequest): Promise<FsReply> {
    const files = this.devices.files;
    if (!files) return Promise.resolve({ ok: false, errno: Errno.NOSYS, message: 'this peer has no cluster filesystem' });
    return serveFileSystem(files, req);
  }

  private onExit(h: Hosted, code: number, message: string | undefined, cpuMs: number): void {
    const pid = h.info.pid;
    h.info.state = 'EXITED';
    h.info.exitCode = code;
    h.info.cpuMs = cpuMs;
    if (h.info.parent === undefined) {
      this.ctx.send(h.client, { kind: 'exit', pid, code, ...(message !== undefined ? { message } : {}) } satisfies ClientMessage);
    } else if (message) {
      this.ctx.send(h.client, { kind: 'out', pid, fd: 2, data: utf8(`[pid ${pid} ${message}]\n`) } satisfies ClientMessage);
    }
    this.toPeer(h.spawner, { kind: 'exited', pid, code, ...(message !== undefined ? { message } : {}) });
    this.messageLog?.drop(pid);
    // Held behind replays: routed as to any ended process now (a call hears that no reply will come).
    const held = h.replay?.held ?? [];
    h.replay?.cancelTimer();
    h.replay = undefined;
    for (const m of held) this.onPeerMessage(this.ctx.self, m);
    // Kept a while for every child (its spawner may be gone, or go before the `exited` arrives): a restarted parent's new spawner asks.
    if (h.info.parent !== undefined) this.rememberExit(pid, code, message);
    // A checkpoint of it (here or on a host it came from) must not bring it back.
    if (this.checkpoints && (h.checkpoint.saved || h.checkpoint.busy || h.info.moves)) {
      void this.checkpoints.remove(pid).catch((e: Error) => this.ctx.log('warn', `cannot remove the checkpoint of ${pid}: ${e.message}`));
    }
    // Its children's exit records are only kept for its `wait`s.
    for (const s of [...this.spawned.values()]) if (s.parent === pid && s.outcome) this.spawned.delete(s.pid);
    this.devices.clock.setTimeout(() => {
      this.hosted.delete(pid);
      this.tableChanged();
    }, EXITED_RETENTION_MS);
    this.tableChanged();
  }

  private rememberExit(pid: Pid, code: number, message: string | undefined): void {
    const now = this.devices.clock.now();
    for (const [p, e] of this.recentExits) if (this.recentExits.size >= RECENT_EXITS || e.at + RECENT_EXIT_MS <= now) this.recentExits.delete(p);
    this.recentExits.set(pid, { code, ...(message !== undefined ? { message } : {}), at: now });
  }

  private onCall(h: Hosted, call: number, req: KernelRequest): void {
    const pid = h.info.pid;
    const life = h.life;
    // Only the first call after a thaw is the wait it was blocked in, asked again.
    const resumed = h.resumeWait;
    h.resumeWait = undefined;
    const reply = (r: KernelReply) => {
      // Ended, moved away, or thawed again since: the instance that asked is gone (the thawed one asks again).
      if (h.info.state === 'EXITED' || this.hosted.get(pid) !== h || h.life !== life) return;
      const m: ToExecutor = { t: 'reply', pid, call, reply: r };
      if (h.emigration?.hold({ to: 'exec', msg: m })) return;
      if (h.blockedWait?.call === call) h.blockedWait = undefined;
      this.devices.exec?.post(h.executor, m);
    };
    const err = (errno: KernelErrno, message: string) => reply({ ok: false, errno, message });
    switch (req.op) {
      case 'cluster_info': {
        const peers = this.view?.peers ?? [];
        const slots = peers.reduce((n, p) => n + (p.id === this.ctx.self ? this.capacity : p.capacity), 0);
        reply({ ok: true, op: 'cluster_info', peers: Math.max(1, peers.length), slots: Math.max(this.capacity, slots) });
        break;
      }
      case 'spawn': {
        h.spawning++;
        const done = (r: KernelReply) => {
          h.spawning--;
          this.reportLoad();
          reply(r);
          // A move that waits for this spawn (a pre-copy's end, a freeze to try again) asks the freeze now (its reply went first); `migrate`s that waited for it go on.
          if (h.spawning === 0) {
            h.emigration?.idle();
            this.moveEnded(pid);
          }
        };
        void (async () => {
          const module = req.name === '' ? this.modules.get(h.hash) : await this.devices.programs?.load(req.name);
          if (!module) return done({ ok: false, errno: 'ENOENT', message: `no such program: ${req.name}` });
          const name = req.name === '' ? h.info.name : req.name;
          let child: Pid | undefined;
          const r = await this.spawn({ name, module, args: req.args, env: {}, on: req.peer, client: h.client, parent: pid, interactive: false, speculation: h.speculation, ...(h.window ? { window: h.window } : {}) }, (st) =>
            done(st.ok ? { ok: true, op: 'spawn', child: child! } : { ok: false, errno: st.errno, message: st.message }),
          );
          if ('error' in r) return done({ ok: false, errno: r.errno, message: r.error });
          child = r.pid;
        })().catch((e: Error) => done({ ok: false, errno: 'EAGAIN', message: e.message }));
        break;
      }
      case 'wait': {
        const s = this.spawned.get(req.child);
        if (!s || s.parent !== pid) return err('ECHILD', `${req.child} is not a child of ${pid}`);
        if (s.outcome) return reply(replyFor(s.outcome));
        const w: Waiter = { reply };
        if (req.timeoutMs >= 0) {
          const now = this.devices.clock.now();
          // Asked again after a thaw (here, or on the host it moved to): the first deadline holds.
          const again = resumed && resumed.child === req.child && resumed.timeoutMs === req.timeoutMs;
          const deadline = again ? resumed.deadline : now + req.timeoutMs;
          h.blockedWait = { call, child: req.child, timeoutMs: req.timeoutMs, deadline };
          w.cancelTimer = this.devices.clock.setTimeout(() => {
            s.waiters.splice(s.waiters.indexOf(w), 1);
            err('ETIMEDOUT', `${req.child} still running after ${req.timeoutMs} ms`);
          }, Math.max(0, deadline - now));
        }
        s.waiters.push(w);
        break;
      }
      case 'kill':
        this.killPid(req.target, `killed by ${pid}`, (ok, message) => (ok ? reply({ ok: true, op: 'kill' }) : err('ESRCH', message ?? 'no such process')));
        break;
      case 'send': {
        if (req.data.length > MAX_DATA_BYTES) return err('EMSGSIZE', 'messages are at most 1 MiB');
        const host = this.whereIs(req.to);
        if (!host) return err('ESRCH', `no such process: ${req.to}`);
        const deps = req.deps?.length ? req.deps.slice(0, MAX_DEPS) : undefined;
        const out: Extract<PeerMessage, { kind: 'deliver' }> = {
          kind: 'deliver',
          pid: req.to,
          port: req.port,
          from: pid,
          token: req.token,
          data: req.data,
          ...(req.seq !== undefined ? { seq: req.seq } : {}),
          ...(deps ? { deps } : {}),
        };
        this.toPeer(host, out);
        // Logged even if the link is down: a restart of the receiver sends it again (message-log.ts).
        if (req.seq !== undefined) this.messageLog?.add(req.to, pid, req.seq, req.data.length, out, this.devices.clock.now());
        // Local deliveries are recorded when they arrive (deliveredTo); remote ones here.
        if (deps && host !== this.ctx.self) this.specs.sentTo(host, deps);
        reply({ ok: true, op: 'send' });
        break;
      }
    }
  }

  // ---- the Dispatcher: messages for processes that move ----

  /**
   * Routes a message for process `pid`: to its executor here, held while it moves, or forwarded
   * to the peer it moved to. 'none': no such process here (any more).
   */
  private forProcess(pid: Pid, msg: ForProcess): 'here' | 'held' | 'forwarded' | 'none' {
    const h = this.hosted.get(pid);
    if (h && h.info.state !== 'EXITED' && !h.silent) {
      if (h.emigration?.hold({ to: 'peer', msg })) {
        // Still running here while the executor quiesces it for the freeze (executor.ts): its
        // speculation settles only with these. The held copy goes where it runs next; one the
        // image took already is a repeat there, dropped by its seq.
        if (h.emigration.phase === 'freezing' && msg.kind === 'deliver' && msg.seq !== undefined && this.settlesWith(h, msg)) this.toExecutorOf(h, msg);
        return 'held';
      }
      // Not running yet: its executor's copy may still be stopped (a thaw that fails).
      if (h.arriving) return h.arriving.held.push(msg), 'held';
      if (h.replay && msg.kind === 'deliver' && !msg.replay) return h.replay.held.push(msg), 'held';
      this.toExecutorOf(h, msg);
      return 'here';
    }
    // On its way here (a kill during a restart must find it).
    const inc = this.incoming.get(pid);
    if (inc) return inc.held.push(msg), 'held';
    const to = this.forwardOf(pid);
    if (!to) return 'none';
    this.toPeer(to, msg);
    if (msg.kind === 'deliver' && msg.deps) this.specs.sentTo(to, msg.deps);
    return 'forwarded';
  }

  private toExecutorOf(h: Hosted, msg: PeerMessage): void {
    const exec = this.devices.exec;
    const pid = h.info.pid;
    if (!exec) return;
    switch (msg.kind) {
      case 'stdin':
        return exec.post(h.executor, { t: 'stdin', pid, data: msg.data });
      case 'stdin.end':
        return exec.post(h.executor, { t: 'stdin.end', pid });
      case 'out.ack':
        if (h.window) exec.post(h.executor, { t: 'out.ack', pid, bytes: msg.bytes });
        return;
      case 'kill':
        return exec.post(h.executor, { t: 'kill', pid, reason: msg.reason });
      case 'deliver': {
        // Held a while (a move, a replay) its speculations may have ended meanwhile: as on arrival.
        const m = this.withOutcomes(msg);
        if (!m) return;
        if (m.deps) this.specs.deliveredTo(pid, m.deps);
        return exec.post(h.executor, {
          t: 'deliver',
          pid,
          port: m.port,
          from: m.from,
          token: m.token,
          data: m.data,
          ...(m.seq !== undefined ? { seq: m.seq } : {}),
          ...(m.deps ? { deps: m.deps } : {}),
        });
      }
      case 'spec.resolved':
        return exec.post(h.executor, { t: 'spec.resolved', id: msg.id, ok: msg.ok });
      default:
        return;
    }
  }

  /**
   * `msg` with the speculation outcomes known here applied: committed deps dropped; undefined
   * when it depends on a cancelled one (the send never happened, as far as anyone can tell).
   */
  private withOutcomes<M extends { deps?: SpecId[] }>(msg: M): M | undefined {
    const f = this.specs.filter(msg.deps);
    if (f.drop) return undefined;
    if (f.deps?.length === msg.deps?.length) return msg;
    const { deps: _deps, ...rest } = msg;
    return (f.deps ? { ...rest, deps: f.deps } : rest) as M;
  }

  /** Where a process that moved away from here went, while what arrives for it is still forwarded. */
  private forwardOf(pid: Pid): PeerId | undefined {
    const f = this.forwards.get(pid);
    if (!f) return undefined;
    if (f.until > this.devices.clock.now() && !this.gone.has(f.to)) return f.to;
    this.forwards.delete(pid);
    return undefined;
  }

  /** Speculation `id` ended: tell the local processes that depend on it and the peers that have (or lead to) more. */
  private specResolved(id: SpecId, ok: boolean): void {
    const r = this.specs.resolve(id, ok);
    const peers = new Set(r.peers);
    const executors = new Set<number>();
    for (const pid of r.pids) {
      const h = this.hosted.get(pid);
      if (h && h.info.state !== 'EXITED') {
        const m: ToExecutor = { t: 'spec.resolved', id, ok };
        // Held while it moves; while it is being frozen it also hears it (forProcess says why).
        if (h.emigration?.hold({ to: 'peer', msg: { kind: 'spec.resolved', id, ok } }) && h.emigration.phase !== 'freezing') continue;
        if (!executors.has(h.executor)) this.devices.exec?.post(h.executor, m);
        executors.add(h.executor);
        continue;
      }
      const to = this.forwardOf(pid);
      if (to) peers.add(to);
    }
    peers.delete(this.ctx.self);
    for (const peer of peers) this.toPeer(peer, { kind: 'spec.resolved', id, ok });
  }

  // ---- the Dispatcher: migration ----

  /** A client's `migrate`: done here when this peer hosts `pid` (or it is on its way here), otherwise asked of its host. */
  private migrateFor(pid: Pid, toArg: string, done: (r: MigrationResult) => void): void {
    const t = resolvePeer(toArg, this.alivePeers());
    if ('error' in t) return done({ ok: false, message: t.error });
    const deadline = this.devices.clock.now() + MIGRATE_BUDGET_MS;
    if (this.incoming.has(pid)) return this.migrateHere(pid, t.peer, 0, deadline, done);
    const host = this.whereIs(pid);
    if (!host) return done({ ok: false, message: `no such process: ${pid}` });
    if (host === this.ctx.self) return this.migrateHere(pid, t.peer, 0, deadline, done);
    if (host === t.peer) return done({ ok: false, message: `${pid} already runs on ${host.slice(0, 8)}` });
    this.askHost(host, pid, t.peer, 0, MIGRATE_BUDGET_MS, done);
  }

  /**
   * Asks `host` to move `pid` to `to`, answering within `budgetMs` (it keeps to that: see
   * migrateHere); no answer by then and a little more: the move is reported as failed.
   */
  private askHost(host: PeerId, pid: Pid, to: PeerId, hops: number, budgetMs: number, done: (r: MigrationResult) => void): void {
    const ref = ++this.nextRef;
    const cancelTimer = this.devices.clock.setTimeout(() => {
      this.remoteMigrations.delete(ref);
      done({ ok: false, message: `peer ${host.slice(0, 8)} did not say how the move of ${pid} went` });
    }, budgetMs + RELAY_SLACK_MS);
    this.remoteMigrations.set(ref, { host, done, cancelTimer });
    if (!this.toPeer(host, { kind: 'migrate', ref, pid, to, hops, budgetMs: Math.round(budgetMs) })) {
      this.remoteMigrations.delete(ref);
      cancelTimer();
      done({ ok: false, message: `peer ${host.slice(0, 8)} cannot be reached` });
    }
  }

  /**
   * A `migrate` of `pid` that reached this peer, to be answered by `deadline`. The request
   * follows the process: a move of it in progress (here, or on its way here) is waited for, and
   * a process that moved on is asked of its new host (the answer comes back through here). It
   * waits only while a whole move still fits before the deadline, so the answer is never late.
   */
  private migrateHere(pid: Pid, to: PeerId, hops: number, deadline: number, done: (r: MigrationResult) => void): void {
    const now = this.devices.clock.now();
    const h = this.hosted.get(pid);
    const live = !!h && h.info.state !== 'EXITED' && !h.silent;
    // Moving, or starting a child (its record would travel half made): asked again once that is over.
    const busy = (live && (h.emigration?.active || h.arriving)) || this.incoming.has(pid) ? 'it is still moving' : live && h.spawning > 0 ? 'it is starting a child process' : undefined;
    if (busy) {
      const waitMs = deadline - MOVE_MAX_MS - now;
      if (waitMs <= 0) return done({ ok: false, message: `cannot move ${pid}: ${busy}` });
      return this.afterMove(pid, waitMs, () => this.migrateHere(pid, to, hops, deadline, done), () => done({ ok: false, message: `cannot move ${pid}: ${busy}` }));
    }
    if (!live) {
      const onward = this.forwardOf(pid);
      if (onward === to) return done({ ok: false, message: `${pid} already runs on ${to.slice(0, 8)}` });
      if (onward) {
        if (hops >= MAX_MIGRATE_HOPS) return done({ ok: false, message: `cannot move ${pid}: it moved on ${hops + 1} times while the request followed it` });
        const budgetMs = deadline - now - RELAY_SLACK_MS;
        if (budgetMs < MOVE_MAX_MS) return done({ ok: false, message: `cannot move ${pid}: it moved on and there is no time left to follow it` });
        return this.askHost(onward, pid, to, hops + 1, budgetMs, done);
      }
    }
    this.emigrate(pid, to, done);
  }

  /**
   * Whether a delivery that came while `h` is frozen also goes to its executor now. Not one that
   * depends on another process's speculation: taking it would open a level, and a receiver fed
   * such records without pause (journal's replica) never settles for its freeze. It waits with
   * the held ones (its seq not taken here, it is new where the process runs next), and so does
   * whatever its sender sends after it (in order).
   */
  private settlesWith(h: Hosted, msg: Extract<ForProcess, { kind: 'deliver' }>): boolean {
    const from = h.freezeHeldFrom;
    if (from?.has(msg.from)) return false;
    if (!msg.deps?.some((d) => originOf(d) !== h.info.pid)) return true;
    (h.freezeHeldFrom ??= new Set()).add(msg.from);
    return false;
  }

  /** Runs `then` when the move (or child start) of `pid` in progress ends, or `giveUp` after `ms`. */
  private afterMove(pid: Pid, ms: number, then: () => void, giveUp: () => void): void {
    const list = this.moveWaiters.get(pid) ?? [];
    this.moveWaiters.set(pid, list);
    let cancelTimer: (() => void) | undefined;
    const waiter = () => {
      cancelTimer?.();
      then();
    };
    list.push(waiter);
    cancelTimer = this.devices.clock.setTimeout(() => {
      const l = this.moveWaiters.get(pid);
      const i = l?.indexOf(waiter) ?? -1;
      if (i < 0) return;
      l!.splice(i, 1);
      if (l!.length === 0) this.moveWaiters.delete(pid);
      giveUp();
    }, ms);
  }

  /** A move of `pid` (from here or to here) or its child's start ended, whichever way: the `migrate`s that waited go on. */
  private moveEnded(pid: Pid): void {
    const list = this.moveWaiters.get(pid);
    if (!list) return;
    this.moveWaiters.delete(pid);
    for (const w of list) w();
  }

  /** Why `h` cannot move now, or undefined when it can. */
  private unmovable(h: Hosted | undefined): string | undefined {
    if (h?.info.state === 'EXITED') return 'it has ended';
    if (!h || h.silent) return 'it does not run here';
    if (h.emigration?.active) return 'it is already moving';
    if (h.arriving) return 'it is still arriving here';
    if (h.replay) return 'its messages are being sent again';
    if (h.unfreezable) return 'its executor cannot freeze it';
    if (h.spawning > 0) return 'it is starting a child process';
    // Its child records go with it (they must all be settled enough to travel).
    return this.childrenUnmovable(h.info.pid);
  }

  /** Why the child records of `pid` cannot travel now, or undefined when they can. */
  private childrenUnmovable(pid: Pid): string | undefined {
    let n = 0;
    for (const s of this.spawned.values()) {
      if (s.parent !== pid) continue;
      if (!s.started) return 'it is starting a child process';
      // Its host left: the restart (or the word that it is lost) is this peer's to finish.
      if (!s.outcome && (this.gone.has(s.host) || [...this.restarts.values()].some((r) => r.pid === s.pid))) return `its child ${s.pid} is being restarted`;
      if (++n > MAX_CHILD_RECORDS) return `it has more than ${MAX_CHILD_RECORDS} child processes`;
    }
    return undefined;
  }

  /** Its child records (they are kept while it runs: a new one means it spawned). */
  private childCount(pid: Pid): number {
    let n = 0;
    for (const s of this.spawned.values()) if (s.parent === pid) n++;
    return n;
  }

  /** What the go of a move of parent `h` carries: its child records, and the timed wait it is blocked in. */
  private carried(h: Hosted): Pick<Extract<PeerMessage, { kind: 'immigrate.go' }>, 'children' | 'wait'> {
    const pid = h.info.pid;
    const children: NonNullable<Extract<PeerMessage, { kind: 'immigrate.go' }>['children']> = [];
    for (const s of this.spawned.values()) {
      if (s.parent === pid) children.push({ pid: s.pid, host: s.host, ...(s.outcome ? { outcome: s.outcome } : {}) });
    }
    const w = h.blockedWait;
    const now = this.devices.clock.now();
    return {
      ...(children.length ? { children } : {}),
      ...(w ? { wait: { child: w.child, timeoutMs: w.timeoutMs, remainingMs: Math.max(0, Math.round(w.deadline - now)) } } : {}),
    };
  }

  /** Go was sent for parent `pid`: its child records are `to`'s now (kept here, passive, in case the move fails). */
  private lend(pid: Pid, to: PeerId): void {
    for (const s of [...this.spawned.values()]) {
      if (s.parent !== pid) continue;
      // Its waiters are calls of the frozen instance: the process asks again wherever it runs.
      for (const w of s.waiters.splice(0)) w.cancelTimer?.();
      this.spawned.delete(s.pid);
      this.lent.set(s.pid, { to, parent: pid, s });
    }
  }

  /** The move of parent `pid` after go failed: it runs here again, and so does its spawner role. */
  private takeBack(pid: Pid): void {
    for (const [child, l] of [...this.lent]) {
      if (l.parent !== pid) continue;
      this.lent.delete(child);
      this.spawned.set(child, l.s);
      if (!l.s.outcome && this.gone.has(l.s.host)) void this.restartOrLose(l.s, `lost: its peer ${l.s.host.slice(0, 8)} went away`);
    }
  }

  /** Parent `pid` runs on `to` now: what still comes here about its children is relayed there a while. */
  private relayChildren(pid: Pid, to: PeerId): void {
    const now = this.devices.clock.now();
    if (this.relays.size >= 1024) for (const [p, r] of this.relays) if (r.until <= now) this.relays.delete(p);
    for (const [child, l] of [...this.lent]) {
      if (l.parent !== pid) continue;
      this.lent.delete(child);
      if (!l.s.outcome) this.relays.set(child, { to, host: l.s.host, until: now + FORWARD_MS, ...(l.s.adoptedFrom ? { adoptedFrom: l.s.adoptedFrom } : {}) });
    }
  }

  /** Moves hosted process `pid` to `to` (emigration.ts has the states). */
  private emigrate(pid: Pid, to: PeerId, done: (r: MigrationResult) => void): void {
    const h = this.hosted.get(pid);
    const why = this.unmovable(h);
    if (why) return done({ ok: false, message: `cannot move ${pid}: ${why}` });
    if (to === this.ctx.self) return done({ ok: false, message: `${pid} already runs on ${to.slice(0, 8)}` });
    if (!this.known.has(to) || this.gone.has(to)) return done({ ok: false, message: `no peer ${to.slice(0, 8)} in the cluster` });
    if (!this.devices.exec) return done({ ok: false, message: 'this peer runs no processes' });
    const host = h!;
    const exec = this.devices.exec;
    const clock = this.devices.clock;
    const sha256 = (d: Uint8Array) => this.devices.sha256(d);
    const keyed = async () => {
      const key = await this.key;
      if (!key || !this.devices.hmacSha256) throw new Error('this peer has no process image key');
      return { key, hmac: this.devices.hmacSha256 };
    };
    // Pre-copy: a checkpoint of the running process goes first as the base; frozen, only what
    // changed since goes (emigration.ts). One round: the delta is what the process wrote while
    // the base was on its way (for memhog, a few words: one chunk). A process that writes its
    // memory faster than the link ships it would not converge in more rounds either (Xen stops
    // iterating then too); one whose writes fit a second round saves at most that round's delta.
    const precopy: PrecopyHost<DeltaBase> | undefined = this.precopy
      ? {
          checkpoint: () => exec.post(host.executor, { t: 'checkpoint', pid }),
          prepare: async (image) => {
            const { key, hmac } = await keyed();
            const [packed, base] = await Promise.all([packImage(image, key, hmac), deltaBase(image, sha256)]);
            return { packed, base };
          },
          shipBase: (packed) => {
            const module = this.modules.get(host.hash);
            if (!module || this.gone.has(to)) return false;
            host.shipRef = ++this.nextRef;
            return this.toPeer(to, { kind: 'precopy', ref: host.shipRef, pid, hash: host.hash, module, image: packed });
          },
          packDelta: async (base, image) => {
            const { key, hmac } = await keyed();
            // No hashing while it is frozen: the image's seal already carries its checksum (transfer.ts imageCheck).
            return packImage(makeDelta(base, image, imageCheck(image)).bytes, key, hmac);
          },
          // Not loaded yet: a fresh image, as small as its program's data (a freeze catches it before it runs at all).
          expectBytes: () => (host.loaded ? (host.imageBytes ?? this.imageSizes.get(host.hash)) : 0),
          speculating: () => (host.info.speculation?.depth ?? 0) > 0 || this.specs.depsOf(pid).length > 0,
        }
      : undefined;
    const e: Emigration<Held, DeltaBase> = new Emigration<Held, DeltaBase>(pid, to, {
      now: () => clock.now(),
      setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
      freeze: () => exec.post(host.executor, { t: 'freeze', pid }),
      busy: () => host.spawning > 0,
      release: (held) => {
        host.freezeHeldFrom = undefined;
        // A freeze that failed: it runs here, in the same executor, and gets what came meanwhile.
        for (const m of held) {
          if (m.to === 'peer') this.forProcess(pid, m.msg as ForProcess);
          else if (host.info.state !== 'EXITED') exec.post(host.executor, m.msg);
        }
      },
      pack: async (image) => {
        const { key, hmac } = await keyed();
        return packImage(image, key, hmac);
      },
      ship: (packed, as) => {
        if (this.gone.has(to)) return false;
        const deps = this.specs.depsOf(pid);
        const arrival: Arrival = {
          ref: 0,
          pid,
          name: host.info.name,
          args: host.info.args,
          env: host.env,
          hash: host.hash,
          client: host.client,
          ...(host.info.parent ? { parent: host.info.parent } : {}),
          interactive: host.interactive,
          ...(host.window ? { window: host.window } : {}),
          spawner: host.spawner,
          startedAt: host.info.startedAt,
          moves: (host.info.moves ?? 0) + 1,
          ...(host.speculation !== 'off' ? { speculation: host.speculation } : {}),
          ...(deps.length ? { deps: deps.slice(0, MAX_DEPS) } : {}),
        };
        // The delta belongs to the move of the base the target acknowledged (same ref, the program came with it).
        if (as === 'delta') return host.shipRef !== undefined && this.toPeer(to, { kind: 'immigrate.delta', ...arrival, ref: host.shipRef, delta: packed });
        const module = this.modules.get(host.hash);
        if (!module) return false;
        host.shipRef = ++this.nextRef;
        return this.toPeer(to, { kind: 'immigrate', ...arrival, ref: host.shipRef, module, image: packed });
      },
      go: () => {
        if (host.shipRef === undefined || !this.toPeer(to, { kind: 'immigrate.go', ref: host.shipRef, pid, ...this.carried(host) })) return false;
        this.lend(pid, to);
        return true;
      },
      cancel: () => {
        if (host.shipRef !== undefined) this.toPeer(to, { kind: 'immigrate.cancel', ref: host.shipRef, pid });
      },
      handOver: (held) => this.handOver(host, to, held),
      resumeHere: (image, held, committed) => {
        // After go its child records went with it: the target dropped its copy, this one comes back.
        if (committed) this.takeBack(pid);
        if (image) {
          this.thawHere(host, image);
          // After go the target may have run it for a while and told the spawner: it runs here.
          if (committed) this.toPeer(host.spawner, { kind: 'moved', pid, to: this.ctx.self });
        }
        host.info.state = host.execState;
        for (const m of held) {
          if (m.to === 'peer') this.forProcess(pid, m.msg as ForProcess);
          // Replies to calls it made before a freeze that took are dropped: it asks again after the thaw.
          else if (!image && host.info.state !== 'EXITED') exec.post(host.executor, m.msg);
        }
        this.tableChanged();
      },
      done: (r) => {
        if (!r.ok && /did not answer the freeze/.test(r.message)) host.unfreezable = true;
        if (!r.ok) this.ctx.log('info', `move of ${pid} to ${to.slice(0, 8)} failed: ${r.message}`);
        done(r);
        this.moveEnded(pid);
      },
      ...(precopy ? { precopy } : {}),
    });
    host.emigration = e;
    host.freezeHeldFrom = undefined;
    host.info.state = 'MIGRATING';
    this.tableChanged();
    e.start();
  }

  /** The move succeeded: the process runs on `to`; what was held goes there, and what still comes. */
  private handOver(h: Hosted, to: PeerId, held: Held[]): void {
    const pid = h.info.pid;
    this.hosted.delete(pid);
    const now = this.devices.clock.now();
    if (this.forwards.size >= 1024) for (const [p, f] of this.forwards) if (f.until <= now) this.forwards.delete(p);
    this.forwards.set(pid, { to, until: now + FORWARD_MS, ...(h.cameFrom ? { from: h.cameFrom } : {}) });
    this.specs.moved(pid, to);
    for (const m of held) {
      if (m.to !== 'peer') continue; // replies: it asks again there
      // Its speculations may have ended while it was held (their word came here, not there).
      const msg = m.msg.kind === 'deliver' ? this.withOutcomes(m.msg) : m.msg;
      if (!msg) continue;
      if (msg.kind === 'deliver' && msg.deps) this.specs.sentTo(to, msg.deps);
      this.toPeer(to, msg);
    }
    const s = this.spawned.get(pid);
    if (s && !s.outcome) s.host = to;
    this.relayChildren(pid, to);
    this.tableChanged();
  }

  /** Continues `h` here from `image` (a move given up after the freeze). */
  private thawHere(h: Hosted, image: Uint8Array): void {
    const exec = this.devices.exec;
    if (!exec || h.info.state === 'EXITED') return;
    // A new instance: replies to the frozen one's calls are dropped, and it asks again (a timed wait keeps its deadline).
    h.life++;
    h.resumeWait = h.blockedWait;
    h.blockedWait = undefined;
    for (const s of this.spawned.values()) if (s.parent === h.info.pid) for (const w of s.waiters.splice(0)) w.cancelTimer?.();
    h.executor = this.leastBusyExecutor(exec.count);
    exec.post(h.executor, { t: 'thaw', spec: this.specOf(h), image });
  }

  private specOf(h: Hosted): ProcessSpec {
    const rewritten = this.rewritten.get(h.hash);
    const module = this.modules.get(h.hash);
    return {
      pid: h.info.pid,
      peer: this.ctx.self,
      name: h.info.name,
      hash: h.hash,
      ...(rewritten ? { rewritten } : {}),
      ...(module ? { module } : {}),
      args: [h.info.name, ...h.info.args],
      env: h.env,
      hasParent: h.info.parent !== undefined,
      ...(h.info.parent ? { parent: h.info.parent } : {}),
      interactiveStdin: h.interactive,
      ...(h.window ? { outputWindow: h.window } : {}),
      speculation: h.speculation,
    };
  }

  /**
   * An `immigrate` (or `immigrate.delta`: rebuilt from the pre-copy base it takes): checked
   * (immigration.ts), then kept, not running, until its sender says go (`immigrate.ready`).
   * Dropped, never run, on a cancel, when no go came in IMMIGRATE_TIMEOUT_MS, or when its sender
   * leaves the view.
   */
  private async immigrate(from: PeerId, msg: Immigrant): Promise<void> {
    const pid = msg.pid;
    const fail = (reason: string, noBase?: true) => {
      this.ctx.log('info', `refused process ${pid} from ${from.slice(0, 8)}: ${reason}`);
      this.toPeer(from, { kind: 'immigrate.failed', ref: msg.ref, pid, reason, ...(noBase ? { noBase } : {}) });
    };
    // A delta takes its base, whatever becomes of it; a full image makes a base from its sender useless.
    const base = msg.kind === 'immigrate.delta' ? this.bases.take(pid, from, msg.ref) : (this.bases.drop(pid, from), undefined);
    const exec = this.devices.exec;
    if (!exec || exec.count === 0) return fail(`peer ${this.ctx.self.slice(0, 8)} runs no processes`);
    const h = this.hosted.get(pid);
    if ((h && h.info.state !== 'EXITED') || this.incoming.has(pid) || this.checking.has(pid)) return fail(`${pid} runs here already`);
    const inc: Incoming = { from, ref: msg.ref, phase: 'checking', cancelled: false, held: [] };
    this.incoming.set(pid, inc);
    let r: Admission | { ok: false; reason: string; noBase: true };
    const module = msg.kind === 'immigrate' ? msg.module : base?.module;
    try {
      const keys = { key: await this.key, hmac: this.devices.hmacSha256 ?? noHmac, sha256: (d: Uint8Array) => this.devices.sha256(d) };
      r = msg.kind === 'immigrate' ? await admitImage(msg, keys) : await admitDelta(msg, base, keys);
    } catch (e) {
      r = { ok: false, reason: `cannot check the image: ${(e as Error).message}` };
    }
    if (this.incoming.get(pid) !== inc) return; // its sender left meanwhile
    if (inc.cancelled) return this.dropIncoming(pid, inc, true);
    if (!r.ok || !module) {
      this.dropIncoming(pid, inc, true);
      return r.ok ? fail('its program is not here') : fail(r.reason, 'noBase' in r ? true : undefined);
    }
    if (this.gone.has(msg.client.peer)) {
      this.dropIncoming(pid, inc, true);
      return fail('the peer of its terminal has left');
    }
    inc.phase = 'ready';
    inc.admitted = { msg, module, image: r.image, cpuMs: r.cpuMs, lastSeen: r.lastSeen ?? [] };
    inc.cancelTimer = this.devices.clock.setTimeout(() => {
      if (this.incoming.get(pid) !== inc) return;
      this.dropIncoming(pid, inc, true);
      fail(`no go came within ${IMMIGRATE_TIMEOUT_MS / 1000} s: its image was dropped, never run`);
    }, IMMIGRATE_TIMEOUT_MS);
    this.toPeer(from, { kind: 'immigrate.ready', ref: msg.ref, pid });
  }

  /**
   * A pre-copy base (`precopy`): checked like an image (immigration.ts admitBase) and kept, never
   * run, for the `immigrate.delta` of the same move; `precopy.ok`, or `precopy.failed` and why.
   * BaseStore bounds what is kept and drops it on cancel, timeout or the sender leaving.
   */
  private async receiveBase(from: PeerId, msg: Extract<PeerMessage, { kind: 'precopy' }>): Promise<void> {
    const { pid, ref } = msg;
    const refuse = (reason: string) => {
      this.ctx.log('info', `refused a pre-copy of ${pid} from ${from.slice(0, 8)}: ${reason}`);
      this.toPeer(from, { kind: 'precopy.failed', ref, pid, reason });
    };
    const exec = this.devices.exec;
    if (!exec || exec.count === 0) return refuse(`peer ${this.ctx.self.slice(0, 8)} runs no processes`);
    const h = this.hosted.get(pid);
    if ((h && h.info.state !== 'EXITED') || this.incoming.has(pid) || this.checking.has(pid)) return refuse(`${pid} runs here already`);
    const full = this.bases.reserve(pid, from, ref, msg.image.length + msg.module.length);
    if (full) return refuse(full);
    let r: Awaited<ReturnType<typeof admitBase>>;
    try {
      r = await admitBase(msg, { key: await this.key, hmac: this.devices.hmacSha256 ?? noHmac, sha256: (d) => this.devices.sha256(d) });
    } catch (e) {
      r = { ok: false, reason: `cannot check the base: ${(e as Error).message}` };
    }
    // Cancelled, replaced or its sender left meanwhile: nobody waits for an answer.
    if (!this.bases.holds(pid, from, ref)) return;
    if (!r.ok) {
      this.bases.drop(pid, from, ref);
      return refuse(r.reason);
    }
    const why = this.bases.keep({ from, ref, pid, hash: msg.hash, module: msg.module, image: r.image, sha: r.sha, cpuMs: r.cpuMs });
    if (why) return refuse(why);
    // Its program never ran here: rewritten now, while it still runs there, and the base acknowledged
    // (so the freeze asked) only then: a rewrite (~1.5 s in a tab) would otherwise be downtime.
    await this.prepared(msg.hash, msg.module);
    if (this.bases.holds(pid, from, ref)) this.toPeer(from, { kind: 'precopy.ok', ref, pid });
  }

  /**
   * Resolves once an executor here has the program of `hash` ready (asked to `prepare` it when
   * this peer has not its rewritten bytes), or after PREPARE_WAIT_MS (a broken program is not
   * answered: its thaw reports it).
   */
  private prepared(hash: string, module: Uint8Array): Promise<void> {
    const exec = this.devices.exec;
    if (!exec || exec.count === 0 || this.rewritten.get(hash)) return Promise.resolve();
    let p = this.preparing.get(hash);
    if (!p) {
      const executor = this.leastBusyExecutor(exec.count);
      let resolve!: () => void;
      const done = new Promise<void>((r) => (resolve = r));
      this.devices.clock.setTimeout(resolve, PREPARE_WAIT_MS);
      p = { executor, done, resolve };
      this.preparing.set(hash, p);
      exec.post(executor, { t: 'prepare', hash, module });
    }
    return p.done;
  }

  /** Drops a process on its way here, never run; `bounce`: what was held for it goes back to its sender. */
  private dropIncoming(pid: Pid, inc: Incoming, bounce: boolean): void {
    if (this.incoming.get(pid) !== inc) return;
    this.incoming.delete(pid);
    inc.cancelTimer?.();
    // Its sender runs it (or, for a restart, knows where it went): it takes what came here meanwhile.
    if (bounce && !this.gone.has(inc.from)) for (const m of inc.held) this.toPeer(inc.from, m);
    this.moveEnded(pid);
  }

  /**
   * `immigrate.go`: run the kept image in the least busy executor. A parent's child records come
   * with it: this peer keeps them from now on, and becomes their spawner once it runs (arrived).
   */
  private go(from: PeerId, g: Extract<PeerMessage, { kind: 'immigrate.go' }>): void {
    const { ref, pid } = g;
    const inc = this.incoming.get(pid);
    if (!inc || inc.phase !== 'ready' || inc.from !== from || inc.ref !== ref || !inc.admitted) {
      const h = this.hosted.get(pid);
      if (h?.arriving?.from === from && h.arriving.ref === ref) return; // a repeat: it is thawing
      // Nothing kept for it (dropped after its timeout): its sender must not wait for it.
      this.toPeer(from, { kind: 'immigrate.failed', ref, pid, reason: 'its image is not kept here (any more)' });
      return;
    }
    inc.cancelTimer?.();
    this.incoming.delete(pid);
    const { msg, module, image, cpuMs } = inc.admitted;
    const exec = this.devices.exec;
    const failed = (reason: string) => {
      this.toPeer(from, { kind: 'immigrate.failed', ref, pid, reason });
      if (!this.gone.has(from)) for (const m of inc.held) this.toPeer(from, m);
      this.moveEnded(pid);
    };
    if (!exec || exec.count === 0) return failed(`peer ${this.ctx.self.slice(0, 8)} runs no processes`);
    if (this.gone.has(msg.client.peer)) return failed('the peer of its terminal has left');
    this.remember(msg.hash, module);
    this.forwards.delete(pid);
    const now = this.devices.clock.now();
    const h: Hosted = {
      info: {
        pid,
        name: msg.name,
        args: msg.args,
        peer: this.ctx.self,
        state: 'MIGRATING',
        cpuMs,
        startedAt: msg.startedAt,
        moves: msg.moves,
        ...(msg.parent ? { parent: msg.parent } : {}),
      },
      // The executor rewriting its program (a pre-copy asked), if that is not done yet.
      executor: this.preparedOn(msg.hash) ?? this.leastBusyExecutor(exec.count),
      client: msg.client,
      spawner: inc.spawner ?? msg.spawner,
      hash: msg.hash,
      spawning: 0,
      ...(msg.window ? { window: msg.window } : {}),
      env: msg.env,
      interactive: msg.interactive,
      speculation: msg.speculation ?? 'off',
      since: now,
      execState: 'READY',
      checkpoint: { busy: false, lastAt: now, saved: false },
      life: 0,
      cameFrom: from,
    };
    h.arriving = {
      from,
      ref,
      held: inc.held,
      // A thaw that hangs must not keep its sender (committed) waiting: stop it, and say so once it is gone.
      cancelTimer: this.devices.clock.setTimeout(() => {
        if (this.hosted.get(pid) !== h || !h.arriving || h.info.state === 'EXITED') return;
        h.arriving.abandoned = `it did not start within ${THAW_TIMEOUT_MS / 1000} s`;
        this.devices.exec?.post(h.executor, { t: 'kill', pid, reason: 'its thaw took too long' });
      }, THAW_TIMEOUT_MS),
    };
    this.hosted.set(pid, h);
    this.imaged(h, image);
    if (g.wait) h.resumeWait = { child: g.wait.child, timeoutMs: g.wait.timeoutMs, deadline: now + g.wait.remainingMs };
    for (const c of g.children ?? []) {
      if (this.spawned.has(c.pid)) continue; // only a forged record could name a pid this peer spawned
      this.relays.delete(c.pid);
      this.spawned.set(c.pid, {
        pid: c.pid,
        host: c.host,
        client: msg.client,
        parent: pid,
        started: true,
        waiters: [],
        ...(c.outcome ? { outcome: c.outcome as Outcome } : {}),
        adoptedFrom: { peer: from, until: now + FORWARD_MS },
        ...(g.restart ? { restored: true } : {}),
      });
    }
    if (msg.deps) this.specs.deliveredTo(pid, msg.deps);
    if (g.restart) this.askReplay(h, inc.admitted.lastSeen);
    // Admitted before ready: its checksum was verified (admitImage's decode, or admitDelta's check).
    exec.post(h.executor, { t: 'thaw', spec: this.specOf(h), image, checked: true });
    this.tableChanged();
  }

  // ---- sender-based message logging (Johnson & Zwaenepoel 1987; message-log.ts) ----

  /**
   * `h` is restarted here from its checkpoint: every peer (this one too) is asked to send again
   * what it logged for it above `lastSeen`. Its other deliveries wait until all answered (or
   * REPLAY_WAIT_MS), so a sender's new message cannot overtake its replays.
   */
  private askReplay(h: Hosted, lastSeen: [Pid, number][]): void {
    const pid = h.info.pid;
    const peers = [...this.known].filter((p) => !this.gone.has(p));
    if (!peers.includes(this.ctx.self)) peers.push(this.ctx.self);
    const replay = { waiting: new Set(peers), held: [] as ForProcess[], cancelTimer: () => {} };
    h.replay = replay;
    replay.cancelTimer = this.devices.clock.setTimeout(() => {
      if (h.replay !== replay) return;
      this.ctx.log('warn', `${pid}: no restarted.done from ${[...replay.waiting].map((p) => p.slice(0, 8)).join(', ')} within ${REPLAY_WAIT_MS / 1000} s`);
      this.replayed(h);
    }, REPLAY_WAIT_MS);
    const msg: PeerMessage = { kind: 'restarted', pid, lastSeen };
    for (const p of peers) {
      if (p === this.ctx.self) this.onPeerMessage(p, msg);
      else if (!this.toPeer(p, msg)) replay.waiting.delete(p);
    }
    if (h.replay === replay && replay.waiting.size === 0) this.replayed(h);
  }

  /** Every peer sent its replays for `h`: the deliveries held meanwhile go on, in order. */
  private replayed(h: Hosted): void {
    const r = h.replay;
    if (!r) return;
    r.cancelTimer();
    h.replay = undefined;
    for (const m of r.held) this.forProcess(h.info.pid, m);
  }

  /**
   * Peer `from` restarted `msg.pid` from a checkpoint: sends it again what this peer logged for
   * it that the restored copy has not seen, each sender's in order, then `restarted.done`. Only
   * the process's host is listened to (as far as this peer knows: where it routes the pid, or
   * nowhere yet, its old host being gone).
   */
  private replayTo(from: PeerId, msg: Extract<PeerMessage, { kind: 'restarted' }>): void {
    const pid = msg.pid;
    const done = () => (from === this.ctx.self ? this.onPeerMessage(from, { kind: 'restarted.done', pid }) : this.toPeer(from, { kind: 'restarted.done', pid }));
    const host = this.whereIs(pid);
    if (host !== undefined && host !== from && !this.gone.has(host)) {
      this.ctx.log('warn', `ignored restarted ${pid} from ${from.slice(0, 8)}: it runs on ${host.slice(0, 8)}`);
      return void done();
    }
    const lastSeen = new Map(msg.lastSeen);
    for (const e of this.messageLog?.since(pid, lastSeen, this.devices.clock.now()) ?? []) {
      const again = { ...e.msg, replay: true as const };
      this.sentAgain++;
      if (from === this.ctx.self) this.forProcess(pid, again);
      else if (this.toPeer(from, again) && again.deps) this.specs.sentTo(from, again.deps);
    }
    done();
  }

  /** The thawed process reported its first state: it runs here. */
  private arrived(h: Hosted): void {
    const a = h.arriving!;
    if (a.abandoned) return; // being stopped: `immigrate.failed` follows its exit
    a.cancelTimer();
    h.arriving = undefined;
    h.lastMovedAt = this.devices.clock.now();
    const pid = h.info.pid;
    this.toPeer(a.from, { kind: 'immigrated', ref: a.ref, pid });
    // Before anything else from here about it (its `exited` comes later on the same link).
    if (h.spawner === this.ctx.self) this.onPeerMessage(this.ctx.self, { kind: 'moved', pid, to: this.ctx.self });
    else this.toPeer(h.spawner, { kind: 'moved', pid, to: this.ctx.self });
    this.adoptChildren(pid);
    // What reached it here meanwhile, before anything that comes next.
    for (const m of a.held) this.forProcess(pid, m);
    this.moveEnded(pid);
  }

  /**
   * Parent `pid` runs here now: this peer is the spawner of the children it brought. Their hosts
   * hear it (`spawner`), so their `exited` and `moved` come here and a leaving old host does not
   * hang them up; one whose host left meanwhile is restarted or lost from here.
   */
  private adoptChildren(pid: Pid): void {
    for (const s of [...this.spawned.values()]) {
      if (s.parent !== pid || !s.adoptedFrom || s.outcome) continue;
      if (this.gone.has(s.host)) {
        void this.restartOrLose(s, `lost: its peer ${s.host.slice(0, 8)} went away`);
        continue;
      }
      const msg: PeerMessage = { kind: 'spawner', pid: s.pid, spawner: this.ctx.self };
      if (s.host === this.ctx.self) this.onPeerMessage(this.ctx.self, msg);
      else this.toPeer(s.host, msg);
      // Records from a checkpoint may name a child that ended long ago on a host that forgot it:
      // its parent's `wait` must not hang on it forever. (A move's records are current: its
      // children's news comes, if late, so a move waits for it however long it takes.)
      if (s.restored) this.devices.clock.setTimeout(() => this.unknownChild(s), CHILD_ANSWER_MS);
    }
  }

  /** Adopted child `s` has not been heard of since: settled from its host's table, or lost if no live peer knows it. */
  private unknownChild(s: Spawned): void {
    if (s.outcome || this.spawned.get(s.pid) !== s || this.runningElsewhere(s.pid) || this.incoming.has(s.pid)) return;
    if (this.gone.has(s.host) || [...this.restarts.values()].some((r) => r.pid === s.pid)) return; // being restarted or lost from here
    const row = this.tables.get(s.host)?.find((r) => r.pid === s.pid && r.state === 'EXITED');
    if (row?.exitCode !== undefined) return this.settle(s, { kind: 'exit', code: row.exitCode });
    this.settle(s, { kind: 'lost', message: `lost: its host ${s.host.slice(0, 8)} no longer knows how it ended` });
  }

  /** The child records a parent brought, when it does not run here after all (its old host takes its own back). */
  private dropAdopted(pid: Pid, from: PeerId): void {
    for (const s of [...this.spawned.values()]) {
      if (s.parent !== pid || s.adoptedFrom?.peer !== from) continue;
      for (const w of s.waiters.splice(0)) w.cancelTimer?.();
      this.spawned.delete(s.pid);
    }
  }

  /** The thaw ended before its first state (the executor refused the image or the program, it was stopped, or its sender left). */
  private arrivalFailed(h: Hosted, reason: string): void {
    const pid = h.info.pid;
    if (this.hosted.get(pid) === h) this.hosted.delete(pid);
    const a = h.arriving;
    a?.cancelTimer();
    if (a) this.dropAdopted(pid, a.from);
    // Its copy is gone now: its sender (committed) may thaw its own, and takes what came here meanwhile.
    if (a && !h.silent && !this.gone.has(a.from)) {
      this.toPeer(a.from, { kind: 'immigrate.failed', ref: a.ref, pid, reason });
      for (const m of a.held) this.toPeer(a.from, m);
    }
    this.tableChanged();
    this.moveEnded(pid);
  }

  /** Moves every process that can move to the least loaded other peers; resolves when each move ended. */
  private async drain(): Promise<{ moved: number; left: number }> {
    const targets = this.candidates().filter((c) => c.id !== this.ctx.self && c.capacity > 0 && !this.gone.has(c.id));
    const moves: Promise<boolean>[] = [];
    for (const h of [...this.hosted.values()]) {
      if (this.unmovable(h) || targets.length === 0) continue;
      const to = choosePeer(targets, this.ctx.self);
      if (!to) break;
      targets.find((c) => c.id === to)!.load++;
      moves.push(new Promise((resolve) => this.emigrate(h.info.pid, to, (r) => resolve(r.ok))));
    }
    const moved = (await Promise.all(moves)).filter(Boolean).length;
    let left = 0;
    for (const h of this.hosted.values()) if (h.info.state !== 'EXITED' && !h.silent) left++;
    return { moved, left };
  }

  /** One round of load balancing: at most one move, and only when none is in flight. */
  private rebalanceOnce(): void {
    if (this.balancing || !this.view) return;
    const now = this.devices.clock.now();
    const all = this.candidates();
    const self: PeerLoad = { id: this.ctx.self, capacity: this.capacity, runnable: this.localRunnable() };
    const others: PeerLoad[] = all
      .filter((c) => c.id !== this.ctx.self && c.capacity > 0 && !this.gone.has(c.id))
      .map((c) => ({ id: c.id, capacity: c.capacity, runnable: c.load }));
    if (others.length === 0) return;
    const mine: Movable[] = [];
    for (const h of this.hosted.values()) {
      if (h.info.state === 'EXITED' || h.silent) continue;
      mine.push({
        pid: h.info.pid,
        cpuMs: h.info.cpuMs,
        startedAt: h.since,
        ...(h.lastMovedAt !== undefined ? { lastMovedAt: h.lastMovedAt } : {}),
        // A process waiting for its terminal gains nothing from a faster peer.
        migratable: !this.unmovable(h) && RUNNABLE.has(h.execState),
      });
    }
    const move = chooseMove(self, others, mine, now, this.balance);
    if (!move) return;
    this.balancing = true;
    this.emigrate(move.pid, move.to, (r) => {
      this.balancing = false;
      if (r.ok) this.ctx.log('info', `moved ${move.pid} to ${move.to.slice(0, 8)} to balance the load`);
    });
  }

  // ---- the Dispatcher: checkpoints and restarts ----

  private checkpointAll(): void {
    const now = this.devices.clock.now();
    for (const h of this.hosted.values()) {
      // (unmovable: no spawn in flight, every child started and none being restarted: its records can travel.)
      if (h.checkpoint.busy || now - h.checkpoint.lastAt < this.checkpointEveryMs || this.unmovable(h)) continue;
      h.checkpoint.busy = true;
      h.checkpoint.lastAt = now;
      h.checkpoint.children = this.childCount(h.info.pid);
      this.devices.exec?.post(h.executor, { t: 'checkpoint', pid: h.info.pid });
    }
  }

  private async saveCheckpoint(h: Hosted, image: Uint8Array): Promise<void> {
    const store = this.checkpoints;
    const pid = h.info.pid;
    try {
      const key = await this.key;
      if (!store || !key || !this.devices.hmacSha256) return;
      // Its spawner role as of now, with the image: a spawn since the image was asked for may be in
      // the image or not, so the two would disagree (a restart would start that child twice).
      if (h.spawning > 0 || this.childCount(pid) !== h.checkpoint.children || this.childrenUnmovable(pid)) {
        throw new Error('it started a child process meanwhile');
      }
      const meta: CheckpointMeta = {
        pid,
        name: h.info.name,
        args: h.info.args,
        env: h.env,
        hash: h.hash,
        client: h.client,
        ...(h.info.parent ? { parent: h.info.parent } : {}),
        interactive: h.interactive,
        ...(h.window ? { window: h.window } : {}),
        spawner: h.spawner,
        startedAt: h.info.startedAt,
        moves: h.info.moves ?? 0,
        ...(h.speculation !== 'off' ? { speculation: h.speculation } : {}),
        ...this.carried(h),
      };
      const packed = await packImage(encodeCheckpoint(meta, image), key, this.devices.hmacSha256);
      if (h.info.state === 'EXITED') return;
      await store.save(pid, packed);
      h.checkpoint.saved = true;
      // It ended while the checkpoint was written: it must not be restarted from it.
      if ((h.info.state as ProcessState) === 'EXITED') await store.remove(pid);
    } catch (e) {
      this.ctx.log('warn', `checkpoint of ${pid} failed: ${(e as Error).message}`);
    } finally {
      h.checkpoint.busy = false;
    }
  }

  /**
   * The host of `s` vanished: restart it on another peer from its last checkpoint (same pid,
   * through the immigrate path), or report it lost when there is none or it cannot restart.
   */
  private async restartOrLose(s: Spawned, message: string): Promise<void> {
    const from = s.host;
    // A `moved` since (the old host of a move it was in thawed it again) means it runs after all.
    const reclaimed = () => !!s.outcome || s.host !== from;
    const lose = (why?: string) => {
      if (!reclaimed()) this.settle(s, { kind: 'lost', message: why ? `${message} (${why})` : message });
    };
    const store = this.checkpoints;
    const hmac = this.devices.hmacSha256;
    const key = await this.key;
    if (!store || !key || !hmac) return lose();
    let meta: CheckpointMeta;
    let image: Uint8Array;
    try {
      const packed = await store.load(s.pid);
      if (!packed) return lose();
      ({ meta, image } = decodeCheckpoint(await unpackImage(packed, key, hmac)));
      if (meta.pid !== s.pid || decodeImage(image).pid !== s.pid) return lose('its checkpoint is of another process');
    } catch (e) {
      return lose(`its checkpoint cannot be used: ${(e as Error).message}`);
    }
    if (reclaimed()) return;
    const module = this.modules.get(meta.hash) ?? (await this.devices.programs?.load(meta.name).catch(() => undefined));
    if (!module) return lose('its program is not at hand');
    const to = choosePeer(
      this.candidates().filter((c) => !this.gone.has(c.id)),
      this.ctx.self,
    );
    if (!to || reclaimed()) return lose('no peer can run it');
    const ref = ++this.nextRef;
    // Until go (restartReady) it may be given up: the target runs nothing without go.
    const cancelTimer = this.devices.clock.setTimeout(() => {
      const r = this.restarts.get(ref);
      if (!r || r.committed) return;
      this.restarts.delete(ref);
      this.toPeer(to, { kind: 'immigrate.cancel', ref, pid: s.pid });
      if (s.host === to && !s.outcome) this.settle(s, { kind: 'lost', message: `${message} (peer ${to.slice(0, 8)} did not restart it in time)` });
    }, IMMIGRATE_TIMEOUT_MS);
    const carried = { ...(meta.children ? { children: meta.children } : {}), ...(meta.wait ? { wait: meta.wait } : {}) };
    this.restarts.set(ref, { pid: s.pid, to, committed: false, cancelTimer, carried });
    s.host = to;
    this.remember(meta.hash, module);
    this.ctx.log('info', `restarting ${s.pid} on ${to.slice(0, 8)} from its checkpoint`);
    const sent = this.toPeer(to, {
      kind: 'immigrate',
      ref,
      pid: s.pid,
      name: meta.name,
      args: meta.args,
      env: meta.env,
      hash: meta.hash,
      module,
      image: await packImage(image, key, hmac),
      client: meta.client,
      ...(meta.parent ? { parent: meta.parent } : {}),
      interactive: meta.interactive,
      ...(meta.window ? { window: meta.window } : {}),
      spawner: this.ctx.self,
      startedAt: meta.startedAt,
      moves: meta.moves + 1,
      ...(meta.speculation ? { speculation: meta.speculation } : {}),
    });
    if (!sent) {
      this.restarts.delete(ref);
      cancelTimer();
      if (s.host === to && !s.outcome) this.settle(s, { kind: 'lost', message: `${message} (peer ${to.slice(0, 8)} cannot be reached)` });
    }
  }

  /**
   * The target of a restart keeps the checkpoint's image: go, unless the restart is off (it timed
   * out, or a `moved` says the process runs elsewhere after all: its old host thawed it again).
   * After go only the target ends it (`immigrated`, `immigrate.failed`) or the view (it left).
   */
  private restartReady(ref: number, r: Restart): void {
    if (r.committed) return;
    r.cancelTimer();
    const s = this.spawned.get(r.pid);
    if (!s || s.outcome || s.host !== r.to) {
      this.restarts.delete(ref);
      this.toPeer(r.to, { kind: 'immigrate.cancel', ref, pid: r.pid });
      return;
    }
    // A parent's checkpointed spawner role goes with the go, as a move's does (its target adopts it).
    // A restart: the new host asks the peers for the messages its dead copy took (`restarted`).
    if (!this.toPeer(r.to, { kind: 'immigrate.go', ref, pid: r.pid, ...r.carried, restart: true })) {
      this.restarts.delete(ref);
      this.toPeer(r.to, { kind: 'immigrate.cancel', ref, pid: r.pid });
      this.settle(s, { kind: 'lost', message: `lost: peer ${r.to.slice(0, 8)} cannot be reached to restart it` });
      return;
    }
    r.committed = true;
  }

  // ---- sending ----

  private toPeer(peer: PeerId, msg: PeerMessage): boolean {
    return this.ctx.send({ peer, port: PORTS.scheduler }, msg);
  }

  private toClient(client: Address, msg: ClientMessage): void {
    this.ctx.send(client, msg);
  }
}

const noHmac: Hmac = () => Promise.reject(new Error('this peer cannot compute an HMAC'));

/** A successful move's answer fields: where it runs, its downtime, and its pre-copy's figures when they are known. */
function moved(r: Extract<MigrationResult, { ok: true }>): Omit<Extract<MigrationResult, { ok: true }>, 'ok'> {
  return {
    peer: r.peer,
    freezeMs: r.freezeMs,
    ...(r.precopyMs !== undefined ? { precopyMs: r.precopyMs } : {}),
    ...(r.frozenBytes !== undefined ? { frozenBytes: r.frozenBytes } : {}),
    ...(r.phases !== undefined ? { phases: r.phases } : {}),
  };
}

function replyFor(o: Outcome): KernelReply {
  return o.kind === 'exit' ? { ok: true, op: 'wait', code: o.code } : { ok: false, errno: 'EHOSTUNREACH', message: o.message };
}

function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** Six hex chars naming this boot of this peer (FNV-1a of its id and start time). */
function bootPrefix(peer: PeerId, wallNow: number): string {
  let h = 0x811c9dc5;
  const s = `${peer}:${wallNow}`;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0').slice(0, 6);
}

/** The WebAssembly binary header: magic "\0asm" and version 1. */
function isWasm(b: Uint8Array): boolean {
  return b.length >= 8 && b[0] === 0 && b[1] === 0x61 && b[2] === 0x73 && b[3] === 0x6d && b[4] === 1 && b[5] === 0 && b[6] === 0 && b[7] === 0;
}
