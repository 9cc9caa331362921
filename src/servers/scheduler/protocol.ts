// What Schedulers say to each other, and the schemas every incoming message is checked against
// (client requests from local ports, peer messages from other peers' Schedulers).
import { z } from 'zod';
import type { Address, PeerId } from '../../kernel/types.ts';
import type { ProcessInfo } from './client.ts';

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected bytes');
const pid = z.string().regex(/^[0-9a-f]{6}\.\d{1,15}$/, 'not a pid');
const peerId = z.string().regex(/^[0-9a-f]{32}$/, 'not a peer id');
const address = z.object({ peer: peerId, port: z.string().min(1).max(128) });
/** Most arguments a process may get, and longest argument. */
export const MAX_ARGS = 256;
export const MAX_ARG_CHARS = 4096;
const args = z.array(z.string().max(MAX_ARG_CHARS)).max(MAX_ARGS);
const env = z.record(z.string().max(256), z.string().max(4096));
/** One speculation of a process: `<pid>~<n>`. */
const specId = z.string().regex(/^[0-9a-f]{6}\.\d{1,15}~\d{1,15}$/, 'not a speculation id');
/** Most speculations a message may depend on. */
export const MAX_DEPS = 256;
/** Most senders a `restarted` names (lshapes remembers at most this many). */
export const MAX_LAST_SEEN = 4096;
const deps = z.array(specId).max(MAX_DEPS);
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const states = z.enum(['READY', 'RUNNING', 'WAITING', 'WAIT_CONFIRM', 'STOPPED', 'MIGRATING', 'EXITED']);

/** Largest module a Scheduler accepts (the wire carries up to 64 MiB per message). */
export const MAX_MODULE_BYTES = 32 << 20;
/** Largest message between processes, and largest stdin chunk. */
export const MAX_DATA_BYTES = 1 << 20;
/** Hosts a `migrate` may be passed on to while it follows a process that moves on. */
export const MAX_MIGRATE_HOPS = 4;
/** Longest answer time a `migrate` may ask for (its `budgetMs`). */
export const MAX_MIGRATE_BUDGET_MS = 600_000;
/** Most child records a moving parent carries (one with more does not move). */
export const MAX_CHILD_RECORDS = 4096;

/** Fork On Wait mode of a process (kernel/process/protocol.ts SpeculationMode). */
const speculationMode = z.enum(['off', 'on', 'mispredict']);

export const ClientRequestSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('run'),
    req: z.number().int(),
    name: z.string().min(1).max(256),
    // Looser than a start's: the Scheduler answers a run with too many arguments with a reason.
    args: z.array(z.string().max(1 << 16)).max(1 << 16),
    env: env.optional(),
    on: z.string().min(1).max(64).optional(),
    module: bytes.optional(),
    interactive: z.boolean().optional(),
    acks: z.boolean().optional(),
    speculation: speculationMode.optional(),
  }),
  z.object({ kind: z.literal('ack'), pid, bytes: z.number().int().min(0).max(1 << 30) }),
  z.object({ kind: z.literal('stdin'), pid, data: bytes }),
  z.object({ kind: z.literal('stdin.end'), pid }),
  z.object({ kind: z.literal('kill'), req: z.number().int(), pid: z.string().max(64) }),
  z.object({ kind: z.literal('migrate'), req: z.number().int(), pid: z.string().max(64), to: z.string().max(64) }),
  z.object({ kind: z.literal('drain'), req: z.number().int() }),
  z.object({ kind: z.literal('ps'), req: z.number().int() }),
  z.object({ kind: z.literal('programs'), req: z.number().int() }),
  z.object({ kind: z.literal('watch') }),
  z.object({ kind: z.literal('unwatch') }),
]);

export type RunRequest = Extract<z.infer<typeof ClientRequestSchema>, { kind: 'run' }>;

const row = z.object({
  pid,
  name: z.string().max(256),
  args,
  peer: peerId,
  state: states,
  cpuMs: z.number().min(0),
  exitCode: z.number().int().optional(),
  parent: pid.optional(),
  startedAt: z.number(),
  speculation: z
    .object({ depth: count, predictions: count, hits: count, rollbacks: count, savedMs: z.number().min(0) })
    .optional(),
  moves: count.optional(),
});

/** What a host needs to run a process: in a `start`, and (with its image) in an `immigrate`. */
const processFields = {
  pid,
  name: z.string().max(256),
  args,
  env,
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  /** The original module (the receiver checks it against `hash`). */
  module: bytes,
  /** Where stdout/stderr (and the `exit` of a root process) go: the terminal's port. */
  client: address,
  parent: pid.optional(),
  interactive: z.boolean(),
  /** Output flow-control window in bytes (the client acknowledges output); absent: none. */
  window: z.number().int().min(1).max(1 << 30).optional(),
  /** Fork On Wait (absent: off). */
  speculation: speculationMode.optional(),
};

/** How a child ended, as its spawner keeps it for its parent's `wait`. */
const outcome = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('exit'), code: z.number().int(), message: z.string().max(4096).optional() }),
  z.object({ kind: z.literal('lost'), message: z.string().max(4096) }),
]);

/** A started child of a moving parent: where it runs, and how it ended if it did (its spawner's record). */
const childRecord = z.object({ pid, host: peerId, outcome: outcome.optional() });

const { module: _module, ...processFieldsButModule } = processFields;

/** What a host needs, besides the program and the image, to run a process it did not start. */
const arrival = {
  ...processFieldsButModule,
  /** The peer that keeps its exit status (it hears `moved`). */
  spawner: peerId,
  startedAt: z.number(),
  /** Moves so far, this one included. */
  moves: count,
  /** Unresolved speculations it depends on: their outcomes must follow it. */
  deps: deps.optional(),
};

/** Everything a host needs to run a process it did not start (a migration, or a restart from a checkpoint). */
const immigrant = {
  ...arrival,
  module: processFields.module,
  /** The process image, compressed and authenticated (dispatcher/transfer.ts). */
  image: bytes,
};

export const PeerMessageSchema = z.discriminatedUnion('kind', [
  /** Start a process here. The spawner chose this peer and allocated the pid. */
  z.object({ kind: z.literal('start'), ...processFields }),
  z.object({ kind: z.literal('started'), pid }),
  z.object({ kind: z.literal('start.failed'), pid, errno: z.enum(['ENOEXEC', 'EAGAIN', 'EINVAL']), message: z.string().max(4096) }),
  /** A process ended; sent by its host to its spawner. */
  z.object({ kind: z.literal('exited'), pid, code: z.number().int(), message: z.string().max(4096).optional() }),
  z.object({ kind: z.literal('stdin'), pid, data: bytes }),
  z.object({ kind: z.literal('stdin.end'), pid }),
  z.object({ kind: z.literal('out.ack'), pid, bytes: z.number().int().min(0).max(1 << 30) }),
  z.object({ kind: z.literal('kill'), ref: z.number().int(), pid, reason: z.string().max(256) }),
  z.object({ kind: z.literal('kill.result'), ref: z.number().int(), ok: z.boolean(), message: z.string().max(256).optional() }),
  /** A message for a port of process `pid`, from process `from`. */
  z.object({
    kind: z.literal('deliver'),
    pid,
    port: z.string().min(1).max(80),
    from: pid,
    token: z.number().int(),
    data: bytes,
    /** The sender's sequence number (receivers drop repeats of a sender restarted from a checkpoint). */
    seq: count.optional(),
    /** Speculations the message depends on (Fork On Wait): the receiver becomes dependent on them. */
    deps: deps.optional(),
    /** The peer the sender runs on, when a peer forwards the message for a process that moved. */
    origin: peerId.optional(),
    /** Sent again from the sender's peer's message log for a restarted receiver (`restarted`): not held back. */
    replay: z.literal(true).optional(),
  }),
  /** A speculation ended (`ok`: committed); sent to every peer that has or forwarded dependents of it. */
  z.object({ kind: z.literal('spec.resolved'), id: specId, ok: z.boolean() }),
  /**
   * Move `pid` (which the receiver hosts, or did) to peer `to`; answered by `migrate.result`
   * within `budgetMs` (the asker waits that long, and a little for the way). A receiver the
   * process moved on from passes it on (`hops`: how many times it was passed on so far).
   */
  z.object({
    kind: z.literal('migrate'),
    ref: z.number().int(),
    pid,
    to: peerId,
    hops: z.number().int().min(0).max(MAX_MIGRATE_HOPS),
    budgetMs: z.number().int().min(0).max(MAX_MIGRATE_BUDGET_MS),
  }),
  /**
   * `ok`: it runs on `peer` now, stopped for `freezeMs` after a pre-copy of `precopyMs`, with
   * `frozenBytes` shipped while it stood still; otherwise `message` says why not.
   */
  z.object({
    kind: z.literal('migrate.result'),
    ref: z.number().int(),
    ok: z.boolean(),
    peer: peerId.optional(),
    freezeMs: z.number().min(0).optional(),
    precopyMs: z.number().min(0).optional(),
    frozenBytes: count.optional(),
    /** Where the downtime went (dispatcher/emigration.ts FreezePhases). */
    phases: z.object({ freeze: z.number(), pack: z.number(), check: z.number(), thaw: z.number() }).optional(),
    message: z.string().max(4096).optional(),
  }),
  /**
   * Pre-copy (dispatcher/emigration.ts): a checkpoint image of `pid`, taken while it runs on its
   * host, and its program. The receiver checks it like an image and keeps it, never run, as the
   * base the final image of move `ref` will come as a delta against (`immigrate.delta`);
   * answered `precopy.ok` or `precopy.failed`. Dropped on `immigrate.cancel` of `ref`.
   */
  z.object({ kind: z.literal('precopy'), ref: z.number().int(), pid, hash: processFields.hash, module: bytes, image: bytes }),
  z.object({ kind: z.literal('precopy.ok'), ref: z.number().int(), pid }),
  z.object({ kind: z.literal('precopy.failed'), ref: z.number().int(), pid, reason: z.string().max(4096) }),
  /**
   * Take this frozen process (a move, or a restart from a checkpoint): the receiver checks the
   * image and keeps it without running it, answering `immigrate.ready`, or `immigrate.failed`
   * with the reason it refuses it (dispatcher/emigration.ts has the whole hand-over).
   */
  z.object({ kind: z.literal('immigrate'), ref: z.number().int(), ...immigrant }),
  /**
   * The same for the move whose base (`precopy` `ref`) the receiver acknowledged: the image as a
   * delta against that base (compressed and authenticated like an image; the program came with
   * the base). Answered like an `immigrate`; `immigrate.failed` with `noBase` when the receiver
   * does not keep that base (then the full image follows).
   */
  z.object({ kind: z.literal('immigrate.delta'), ref: z.number().int(), ...arrival, delta: bytes }),
  /** The image of `immigrate` `ref` is checked and kept, not running: waiting for go or cancel. */
  z.object({ kind: z.literal('immigrate.ready'), ref: z.number().int(), pid }),
  /**
   * Run the kept image (the sender is committed to it); answered by `immigrated` or `immigrate.failed`.
   * A moving parent's child records come with it (the receiver becomes their spawner once it
   * runs there), and the timed `wait` it was blocked in: the thawed process asks again, and that
   * call keeps the deadline (`remainingMs` left of `timeoutMs`).
   */
  z.object({
    kind: z.literal('immigrate.go'),
    ref: z.number().int(),
    pid,
    children: z.array(childRecord).max(MAX_CHILD_RECORDS).optional(),
    wait: z.object({ child: pid, timeoutMs: z.number().int().min(0), remainingMs: z.number().int().min(0) }).optional(),
    /**
     * A restart from a checkpoint: its child records may be stale (a child that ended may be
     * forgotten by its host), and the messages its dead copy took are asked for again (`restarted`).
     */
    restart: z.literal(true).optional(),
  }),
  /** It runs here now (after its first state). */
  z.object({ kind: z.literal('immigrated'), ref: z.number().int(), pid }),
  /** Refused, dropped, or (after go) it could not run and no copy of it runs here. */
  z.object({ kind: z.literal('immigrate.failed'), ref: z.number().int(), pid, reason: z.string().max(4096), noBase: z.literal(true).optional() }),
  /** The sender gave up before go: drop the kept image (and base), never run. */
  z.object({ kind: z.literal('immigrate.cancel'), ref: z.number().int(), pid }),
  /** `pid` runs on `to` now: sent by the new host to the spawner, before anything else about it. */
  z.object({ kind: z.literal('moved'), pid, to: peerId }),
  /**
   * Child `pid`'s spawner is `spawner` now (its parent moved there): its `exited` and `moved` go
   * there, and it is hung up when that peer leaves. Sent by the new spawner to the child's host
   * (forwarded, like any message for a process, when it moved on).
   */
  z.object({ kind: z.literal('spawner'), pid, spawner: peerId }),
  /**
   * `pid` was restarted here from its checkpoint: its dead copy took messages after that, so
   * every peer sends again from its message log (message-log.ts) those for `pid` numbered above
   * `lastSeen` (the restored copy's last `seq` per sender; all of a sender not in it), marked
   * `replay`, then answers `restarted.done`. Sent by the new host (only it is listened to).
   */
  z.object({ kind: z.literal('restarted'), pid, lastSeen: z.array(z.tuple([pid, count])).max(MAX_LAST_SEEN) }),
  /** The sender sent again all it had for restarted `pid` (before this, on the same link). */
  z.object({ kind: z.literal('restarted.done'), pid }),
  /** The sender's own processes: its part of the cluster-wide table (replaces the previous one). */
  z.object({ kind: z.literal('table'), rows: z.array(row).max(10_000) }),
]);
export type PeerMessage = z.infer<typeof PeerMessageSchema>;

export type { Address, PeerId, ProcessInfo };
