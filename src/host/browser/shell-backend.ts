// The terminal's ShellBackend on a tab's main thread, over the kernel worker's shell methods
// (a comlink Remote; a plain ShellService in tests). Callbacks cross as comlink proxies.
import * as Comlink from 'comlink';
import type { ShellService } from '../common/shell-service.ts';
import type { Pid, ProcessInfo } from '../../servers/scheduler/client.ts';
import type { PeerRow, ProcessExit, ProcessRow, ShellBackend } from '../../ui/terminal/commands.ts';

/** The worker methods the shell uses (a comlink Remote of the kernel worker's api has them). */
export type ShellRemote = Pick<
  ShellService,
  'run' | 'waitExit' | 'stdin' | 'stdinEnd' | 'kill' | 'migrate' | 'ps' | 'programs' | 'ls' | 'stat' | 'cat' | 'cp' | 'mv' | 'rm' | 'mkdir'
>;

export function toProcessRow(p: ProcessInfo): ProcessRow {
  const row: ProcessRow = { pid: p.pid, prog: p.name, args: p.args, peer: p.peer, state: p.state, cpuMs: p.cpuMs, startedAt: p.startedAt };
  if (p.exitCode !== undefined) row.exitCode = p.exitCode;
  if (p.speculation !== undefined) row.speculation = p.speculation;
  return row;
}

/** `peers()` answers from the latest Synchronizer view the shell has (undefined before the first). */
export function createShellBackend(remote: ShellRemote, peers: () => readonly PeerRow[] | undefined): ShellBackend {
  return {
    async run(prog, args, { on, io }) {
      const output = Comlink.proxy((fd: 1 | 2, data: Uint8Array) => (fd === 2 ? io.onStderr(data) : io.onStdout(data)));
      // The terminal feeds stdin: interactive.
      const { pid } = await remote.run(prog, args, on, true, output);
      return {
        pid,
        exit: remote.waitExit(pid),
        writeStdin: (bytes) => remote.stdin(pid, bytes),
        closeStdin: () => remote.stdinEnd(pid),
      };
    },
    async ps() {
      return (await remote.ps()).map(toProcessRow);
    },
    kill: (pid) => remote.kill(pid),
    migrate: (pid, to) => remote.migrate(pid, to),
    async peers() {
      const rows = peers();
      if (!rows) throw new Error('no view of the cluster yet, try again in a moment');
      return [...rows];
    },
    ls: (path) => remote.ls(path),
    stat: (path) => remote.stat(path),
    cat: (path) => remote.cat(path),
    cp: (src, dst) => remote.cp(src, dst),
    mv: (src, dst) => remote.mv(src, dst),
    rm: (path, { recursive }) => remote.rm(path, recursive),
    mkdir: (path, { parents }) => remote.mkdir(path, parents),
    programs: () => remote.programs(),
  };
}

/** How a process ended, with its output, as the test helpers report it. */
export interface TestShellResult {
  pid: Pid;
  code?: number;
  message?: string;
  /** Set instead of code when the process was lost. */
  lost?: string;
  stdout: string;
  stderr: string;
}

/** Helpers for Playwright tests and the developer console (`lshapes.shell`): text in, text out. */
export interface TestShell {
  /** Runs a program to its end; `stdin` is fed then closed. */
  run(name: string, args?: string[], opts?: { on?: string; stdin?: string }): Promise<TestShellResult>;
  /** Starts a program without waiting (interactive: feed it with stdin/stdinEnd). */
  start(name: string, args?: string[], opts?: { on?: string }): Promise<{ pid: Pid; peer: string }>;
  /** Waits for a process started by start(). */
  wait(pid: Pid): Promise<TestShellResult>;
  /** Output so far of a process started here. */
  output(pid: Pid): { stdout: string; stderr: string } | undefined;
  stdin(pid: Pid, text: string): Promise<void>;
  stdinEnd(pid: Pid): Promise<void>;
  ps(): Promise<ProcessInfo[]>;
  kill(pid: Pid): Promise<void>;
  /** Moves a running process to peer `to` (an id or unique prefix); its output keeps coming here. */
  migrate(pid: Pid, to: string): Promise<{ peer: string; freezeMs: number }>;
  programs(): Promise<string[]>;
}

export function createTestShell(remote: ShellRemote): TestShell {
  const outputs = new Map<Pid, { stdout: string; stderr: string }>();
  const exits = new Map<Pid, Promise<ProcessExit>>();
  const enc = new TextEncoder();

  const start = async (name: string, args: string[] = [], opts: { on?: string } = {}) => {
    const out = { stdout: '', stderr: '' };
    const dec = [new TextDecoder(), new TextDecoder()] as const;
    const output = Comlink.proxy((fd: 1 | 2, data: Uint8Array) => {
      if (fd === 2) out.stderr += dec[1].decode(data, { stream: true });
      else out.stdout += dec[0].decode(data, { stream: true });
    });
    const started = await remote.run(name, args, opts.on, true, output);
    outputs.set(started.pid, out);
    const exit = remote.waitExit(started.pid);
    exit.catch(() => {});
    exits.set(started.pid, exit);
    return started;
  };

  const wait = async (pid: Pid): Promise<TestShellResult> => {
    const exit = exits.get(pid);
    const out = outputs.get(pid);
    if (!exit || !out) throw new Error(`no process ${pid} was started by lshapes.shell`);
    try {
      const e = await exit;
      return { pid, code: e.code, ...(e.message !== undefined ? { message: e.message } : {}), ...out };
    } catch (err) {
      return { pid, lost: err instanceof Error ? err.message : String(err), ...out };
    }
  };

  return {
    async run(name, args = [], opts = {}) {
      const { pid } = await start(name, args, opts.on !== undefined ? { on: opts.on } : {});
      if (opts.stdin) await remote.stdin(pid, enc.encode(opts.stdin));
      await remote.stdinEnd(pid);
      return wait(pid);
    },
    start,
    wait,
    output: (pid) => {
      const o = outputs.get(pid);
      return o ? { ...o } : undefined;
    },
    stdin: (pid, text) => remote.stdin(pid, enc.encode(text)),
    stdinEnd: (pid) => remote.stdinEnd(pid),
    ps: () => remote.ps(),
    kill: (pid) => remote.kill(pid),
    migrate: (pid, to) => remote.migrate(pid, to),
    programs: () => remote.programs(),
  };
}
