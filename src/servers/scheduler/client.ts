// What a client of the Scheduler (the shell's terminal, the processes panel, the CLI) sends to
// the Scheduler port of its own peer, and what it gets back. The Scheduler does the rest across
// the cluster: placement, remote start, routing stdio, kill, lost processes.
import type { PeerId } from '../../kernel/types.ts';
import type { Pid, ProcessState, SpeculationMode, SpeculationStats } from '../../kernel/process/protocol.ts';
import type { FreezePhases } from '../dispatcher/emigration.ts';

export type { Pid, ProcessState, SpeculationMode, SpeculationStats };

/** One row of the cluster-wide process table. */
export interface ProcessInfo {
  pid: Pid;
  /** Program name as given to run. */
  name: string;
  /** argv[1..] */
  args: string[];
  /** The peer it runs on now. */
  peer: PeerId;
  state: ProcessState;
  /** Milliseconds of CPU (time slices) used so far. */
  cpuMs: number;
  /** Set once EXITED. */
  exitCode?: number;
  /** The parent process, when a process started it. */
  parent?: Pid;
  /** Wall-clock ms since the epoch at start (for ordering in ps). */
  startedAt: number;
  /** Fork On Wait counters (absent: it never speculated). depth > 0: WAIT_CONFIRM with that many STOPPED twins. */
  speculation?: SpeculationStats;
  /** Times it moved between peers (migrations and restarts from a checkpoint). */
  moves?: number;
}

/** Client → Scheduler (of the client's own peer). `req` numbers pair requests with replies. */
export type ClientRequest =
  | {
      kind: 'run';
      req: number;
      /** A program name the peer's program store knows ("primes"), unless `module` is given. */
      name: string;
      /** argv[1..] */
      args: string[];
      env?: Record<string, string>;
      /** Run on this peer (a full id or a unique prefix); otherwise the Scheduler places it. */
      on?: string;
      /** The module itself (a program that is not in the store, e.g. the CLI's file). */
      module?: Uint8Array;
      /** Feed stdin with `stdin` messages; otherwise stdin is empty. */
      interactive?: boolean;
      /**
       * The client acknowledges output it has taken (`ack`), so a process that prints faster
       * than the terminal shows waits instead of filling memory. Its children inherit this.
       */
      acks?: boolean;
      /** Fork On Wait for it and its children (default: the peer's setting, normally 'on'). */
      speculation?: SpeculationMode;
    }
  /** `bytes` more of `pid`'s output (stdout and stderr) have been taken. */
  | { kind: 'ack'; pid: Pid; bytes: number }
  | { kind: 'stdin'; pid: Pid; data: Uint8Array }
  | { kind: 'stdin.end'; pid: Pid }
  | { kind: 'kill'; req: number; pid: Pid }
  /** Move a running process to peer `to` (a full id or a unique prefix). */
  | { kind: 'migrate'; req: number; pid: Pid; to: string }
  /** Move every process running on this peer elsewhere (the peer is about to leave). */
  | { kind: 'drain'; req: number }
  | { kind: 'ps'; req: number }
  | { kind: 'programs'; req: number }
  /** Get `table` messages with the whole cluster table on every change (one at once). */
  | { kind: 'watch' }
  | { kind: 'unwatch' };

/** Scheduler → client. */
export type ClientMessage =
  | { kind: 'run.ok'; req: number; pid: Pid; peer: PeerId }
  | { kind: 'run.failed'; req: number; message: string }
  /**
   * Output of a process this client started (or of its children). `at`: offset of the first
   * byte in the process's whole output; a client drops bytes it already has (a process restarted
   * from a checkpoint repeats what it printed after it).
   */
  | { kind: 'out'; pid: Pid; fd: 1 | 2; data: Uint8Array; at?: number }
  /** A process this client started ended; after all its output. `message` when not a plain exit. */
  | { kind: 'exit'; pid: Pid; code: number; message?: string }
  /** A process this client started vanished with its peer. */
  | { kind: 'lost'; pid: Pid; message: string }
  | { kind: 'kill.ok'; req: number }
  | { kind: 'kill.failed'; req: number; message: string }
  /**
   * The process runs on `peer` now; it was stopped for `freezeMs` (after a pre-copy of
   * `precopyMs`; `frozenBytes` shipped while stopped; `phases`: where the downtime went).
   */
  | { kind: 'migrate.ok'; req: number; pid: Pid; peer: PeerId; freezeMs: number; precopyMs?: number; frozenBytes?: number; phases?: FreezePhases }
  | { kind: 'migrate.failed'; req: number; message: string }
  /** How many processes moved away, and how many are still here (could not move). */
  | { kind: 'drain.ok'; req: number; moved: number; left: number }
  | { kind: 'ps.ok'; req: number; rows: ProcessInfo[] }
  | { kind: 'programs.ok'; req: number; names: string[] }
  | { kind: 'table'; rows: ProcessInfo[] };

/** Where a peer's Scheduler gets program modules by name (browser: the app's /programs/; Node: programs/build). */
export interface ProgramStore {
  list(): Promise<string[]>;
  /** The module bytes, or undefined when there is no such program. */
  load(name: string): Promise<Uint8Array | undefined>;
}
