// What a host's kernel side offers its shell for processes and files: the methods the tab's
// kernel worker exposes over comlink (and a CLI may call directly). Host-agnostic.
//
// Output and exit ordering: `output` may be a comlink proxy, whose calls travel on their own
// MessagePort while the answer to `waitExit` travels on the api's port, so the two are not
// ordered with each other. `waitExit` therefore answers only once every `output` call made before
// the exit has returned (a comlink call returns after the callee ran on the other side). The
// SchedulerClient calls `onOutput` for every chunk before it settles the exit.
import { releaseProxy } from 'comlink';
import type { PeerId } from '../../kernel/types.ts';
import type { Pid, ProcessInfo } from '../../servers/scheduler/client.ts';
import type { Drained, Moved, ProcessExit, SchedulerClient } from './scheduler-client.ts';
import type { ShellDirEntry, ShellFiles } from './shell-files.ts';

export type { Drained, Moved, ProcessExit, ShellDirEntry };

/** Output of a process (and its children): may return a promise (a comlink proxy does). */
export type OutputCallback = (fd: 1 | 2, data: Uint8Array) => unknown;

/** Exits kept for waitExit; beyond this the oldest unclaimed ones are dropped. */
const MAX_UNCLAIMED_EXITS = 256;

export interface ShellService {
  /** Starts a process; its output goes to `output` until it exits. Rejects with the Scheduler's message. */
  run(name: string, args: string[], on: string | undefined, interactive: boolean, output: OutputCallback): Promise<{ pid: Pid; peer: PeerId }>;
  /** How the process started by run() ended, once all its output went through `output`. Rejects
   *  with Error(message) when it was lost. Once per pid. */
  waitExit(pid: Pid): Promise<ProcessExit>;
  stdin(pid: Pid, data: Uint8Array): Promise<void>;
  stdinEnd(pid: Pid): Promise<void>;
  kill(pid: Pid): Promise<void>;
  /** Moves a running process to `to` (a peer id or unique prefix). Rejects with the Scheduler's reason. */
  migrate(pid: Pid, to: string): Promise<Moved>;
  /** Moves every process running on this peer elsewhere (the tab is closing). */
  drain(): Promise<Drained>;
  ps(): Promise<ProcessInfo[]>;
  programs(): Promise<string[]>;
  /** Calls `listener` with the whole process table on every change. Returns an id for unwatchProcesses. */
  watchProcesses(listener: (rows: ProcessInfo[]) => unknown): Promise<number>;
  unwatchProcesses(id: number): Promise<void>;
  /** Files (src/host/common/shell-files.ts): absolute paths; reject with "<path>: <reason>". */
  ls(path: string): Promise<ShellDirEntry[]>;
  stat(path: string): Promise<ShellDirEntry>;
  cat(path: string): Promise<Uint8Array>;
  cp(src: string, dst: string): Promise<void>;
  mv(src: string, dst: string): Promise<void>;
  rm(path: string, recursive: boolean): Promise<void>;
  mkdir(path: string, parents: boolean): Promise<void>;
}

/** `client()` gives the SchedulerClient once the kernel is up (throws before). */
export function createShellService(client: () => SchedulerClient, files: ShellFiles): ShellService {
  const exits = new Map<Pid, Promise<ProcessExit>>();
  const watches = new Map<number, () => void>();
  let nextWatch = 1;
  const release = (cb: unknown) => {
    // A comlink proxy holds a MessagePort until released; a plain function has no such thing.
    const r = (cb as { [releaseProxy]?: unknown })[releaseProxy];
    if (typeof r === 'function') {
      try {
        (r as () => void).call(cb);
      } catch {
        // already released
      }
    }
  };

  return {
    async run(name, args, on, interactive, output) {
      let flushed: Promise<unknown> = Promise.resolve();
      const handle = await client().run(name, args, {
        ...(on !== undefined ? { on } : {}),
        interactive,
        onOutput: (fd, data) => {
          let sent: Promise<unknown>;
          try {
            sent = Promise.resolve(output(fd, data)).catch(() => {});
          } catch {
            sent = Promise.resolve();
          }
          // Calls through one comlink proxy are answered in order: the last answer comes last.
          flushed = sent;
          return sent; // acknowledged once the tab's terminal has it
        },
      });
      const exit = handle.exit.then(
        async (e) => {
          await flushed;
          release(output);
          return e;
        },
        async (err: unknown) => {
          await flushed;
          release(output);
          throw err;
        },
      );
      exit.catch(() => {});
      exits.set(handle.pid, exit);
      if (exits.size > MAX_UNCLAIMED_EXITS) exits.delete(exits.keys().next().value as Pid);
      return { pid: handle.pid, peer: handle.peer };
    },
    async waitExit(pid) {
      const exit = exits.get(pid);
      if (!exit) throw new Error(`no process ${pid} started here, or its exit was already collected`);
      exits.delete(pid);
      return exit;
    },
    async stdin(pid, data) {
      client().stdin(pid, data);
    },
    async stdinEnd(pid) {
      client().stdinEnd(pid);
    },
    async kill(pid) {
      await client().kill(pid);
    },
    async migrate(pid, to) {
      return client().migrate(pid, to);
    },
    async drain() {
      return client().drain();
    },
    async ps() {
      return client().ps();
    },
    async programs() {
      return client().programs();
    },
    async watchProcesses(listener) {
      const id = nextWatch++;
      const stop = client().watch((rows) => {
        try {
          void Promise.resolve(listener(rows)).catch(() => {});
        } catch {
          // the listener's problem
        }
      });
      watches.set(id, () => {
        stop();
        release(listener);
      });
      return id;
    },
    async unwatchProcesses(id) {
      watches.get(id)?.();
      watches.delete(id);
    },
    ls: (path) => files.ls(path),
    stat: (path) => files.stat(path),
    cat: (path) => files.cat(path),
    cp: (src, dst) => files.cp(src, dst),
    mv: (src, dst) => files.mv(src, dst),
    rm: (path, recursive) => files.rm(path, recursive),
    mkdir: (path, parents) => files.mkdir(path, parents),
  };
}
