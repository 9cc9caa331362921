// The terminal's command language: a tokenizer with quotes and escapes, and an interpreter for
// run (in the foreground, or with a trailing & in the background), ps, kill, migrate, peers, the file commands (ls, cat, cp, mv, rm, mkdir, cd, pwd), help and clear.
// Paths are resolved against the shell's working directory (at first /cluster, the cluster
// filesystem) and handed to the backend absolute. Pure: no xterm, no DOM. It runs against a
// ShellBackend (the kernel, through the tab's adapter) and writes to a ShellConsole (the screen).
import type { PeerId, PeerKind } from '../../kernel/types.ts';
import type { Pid, SpeculationStats } from '../../kernel/process/protocol.ts';
import type { PeerState } from '../../servers/synchronizer/protocol.ts';
import { formatLoad, formatRtt, formatUptime, shortId } from '../format.ts';
import { SGR, paint, visibleWidth } from './ansi.ts';

// ---- what the interpreter runs against ----

export type { Pid, SpeculationStats };

/** Thread states, as DESIGN.md names them. */
export type ProcessState = 'READY' | 'RUNNING' | 'WAITING' | 'WAIT_CONFIRM' | 'STOPPED' | 'MIGRATING' | 'EXITED';

export interface ProcessRow {
  /** Cluster-unique, e.g. "4f2a1c.3". */
  pid: Pid;
  /** The program's name, as given to run. */
  prog: string;
  args: string[];
  /** The peer the process runs on now (it changes when the process migrates). */
  peer: PeerId;
  state: ProcessState;
  /** Milliseconds of CPU used so far. */
  cpuMs: number;
  /** Set once state is EXITED. */
  exitCode?: number;
  /** Wall-clock ms at start; ps lists by it (rows without it stay in the order given). */
  startedAt?: number;
  /** Fork On Wait counters; depth > 0: it runs ahead in WAIT_CONFIRM with that many STOPPED twins. */
  speculation?: SpeculationStats;
}

/** Where a process runs after a migrate, and how long it was stopped for the move. */
export interface MoveResult {
  peer: PeerId;
  freezeMs: number;
}

/** One peer as `peers` lists it. A Synchronizer PeerView is one. */
export interface PeerRow {
  id: PeerId;
  kind: PeerKind;
  state: PeerState;
  load: number;
  capacity: number;
  uptimeMs: number;
  rttMs?: number | undefined;
}

export interface DirEntry {
  name: string;
  kind: 'file' | 'dir';
  /** Bytes; files only. */
  size?: number;
  /** On how many peers the content is stored ("on N peers"). */
  replicas?: number;
}

/** Where a process's output goes. The backend calls these while the process runs. */
export interface ProcessIO {
  onStdout(bytes: Uint8Array): void;
  onStderr(bytes: Uint8Array): void;
}

/** How a process ended. */
export interface ProcessExit {
  code: number;
  /** Why, when it did not simply exit: "trap: unreachable", "killed by …". */
  message?: string;
}

/** A started process, as the shell holds it while it runs in the foreground. */
export interface ProcessHandle {
  pid: Pid;
  /** Resolves once the process has exited (killed included) and every byte of its output has
   *  been delivered through `io`; rejects with the reason if the process was lost. */
  exit: Promise<ProcessExit>;
  /** Bytes for the process's stdin (fd 0). */
  writeStdin(bytes: Uint8Array): void | Promise<void>;
  /** End of file on stdin: the next read after what was written returns 0 bytes. */
  closeStdin(): void | Promise<void>;
}

/** What the terminal needs from the system. Every method rejects with an Error whose message is
 *  shown to the user as is (one line), so say what went wrong: "no such program: foo". */
export interface ShellBackend {
  /** Starts `prog` with `args` (argv[0] excluded). `on` is a full peer id; without it the
   *  Scheduler decides where it runs. */
  run(prog: string, args: string[], opts: { on?: PeerId; io: ProcessIO }): Promise<ProcessHandle>;
  ps(): Promise<ProcessRow[]>;
  kill(pid: Pid): Promise<void>;
  /** Moves a running process to peer `to` (a full id). Rejects with the reason it cannot. */
  migrate(pid: Pid, to: PeerId): Promise<MoveResult>;
  peers(): Promise<PeerRow[]>;
  /** Paths given to the file methods are absolute and normalized: "/", "/cluster/docs". */
  ls(path: string): Promise<DirEntry[]>;
  /** What is at a path (symlinks followed); rejects when there is nothing. */
  stat(path: string): Promise<DirEntry>;
  cat(path: string): Promise<Uint8Array>;
  /** Copies a file (streamed, never whole in memory); `dst` may be a directory to copy into. */
  cp(src: string, dst: string): Promise<void>;
  /** Moves or renames; `dst` may be a directory to move into. */
  mv(src: string, dst: string): Promise<void>;
  /** Removes a file, or with `recursive` a directory and all it holds. */
  rm(path: string, opts: { recursive: boolean }): Promise<void>;
  /** Creates a directory; with `parents` the missing ones above it too, and no error if it exists. */
  mkdir(path: string, opts: { parents: boolean }): Promise<void>;
  /** The names run accepts. */
  programs(): Promise<string[]>;
}

/** The foreground process as the terminal sees it: keystrokes go to stdin, Ctrl-C interrupts. */
export interface ForegroundJob {
  pid: Pid;
  stdin(bytes: Uint8Array): void;
  eof(): void;
  /** Ctrl-C. The first one kills the process; a second one, if it still has not exited, detaches
   *  the terminal from it (it may still be running: the peer may be unreachable). */
  interrupt(): void;
}

/** Where the interpreter writes. Text uses '\n' line ends; the screen converts. */
export interface ShellConsole {
  /** The shell's own output. May hold SGR colour sequences. */
  print(text: string): void;
  /** A one-line error message; the console shows it in red on its own line. */
  error(message: string): void;
  /** Clears the screen and its scrollback. */
  clear(): void;
  stdout(bytes: Uint8Array): void;
  stderr(bytes: Uint8Array): void;
  /** The job that now owns the keyboard, or undefined when the shell has it back. */
  foreground(job: ForegroundJob | undefined): void;
}

// ---- tokens ----

export class ShellSyntaxError extends Error {
  override name = 'ShellSyntaxError';
}

/** Splits a command line into words, like a POSIX shell without expansions: whitespace separates
 *  words; '…' is literal; in "…" a backslash escapes " \ $ ` only; elsewhere a backslash makes the
 *  next character literal. '' and "" are empty words. Throws ShellSyntaxError on an unterminated
 *  quote or a trailing backslash. */
export function tokenize(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new ShellSyntaxError('trailing backslash');
      word += line[i + 1];
      inWord = true;
      i += 2;
    } else if (c === "'") {
      const close = line.indexOf("'", i + 1);
      if (close < 0) throw new ShellSyntaxError('unterminated single quote');
      word += line.slice(i + 1, close);
      inWord = true;
      i = close + 1;
    } else if (c === '"') {
      inWord = true;
      i++;
      for (;;) {
        if (i >= line.length) throw new ShellSyntaxError('unterminated double quote');
        const d = line[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) {
          word += line[i + 1];
          i += 2;
        } else {
          word += d;
          i++;
        }
      }
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}

// ---- run's arguments and peer prefixes ----

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface RunArgs {
  prog: string;
  args: string[];
  /** The peer as the user typed it (an id or an id prefix). */
  on: string | undefined;
  /** A trailing `&`: run it in the background (the prompt comes back at once). Set only when true. */
  background?: true;
}

/** run's words after "run": `[--on <peer>] <prog> [args…] [--on <peer>]`, also `--on=<peer>`.
 *  A `--` right after the program passes everything after it to the program untouched. */
export function parseRunArgs(all: readonly string[]): RunArgs {
  // A trailing & (its own word, as in a POSIX shell) sends it to the background.
  const background = all.at(-1) === '&';
  const words = background ? all.slice(0, -1) : all;
  const result = (r: RunArgs): RunArgs => (background ? { ...r, background: true } : r);
  let on: string | undefined;
  const setOn = (v: string | undefined) => {
    if (v === undefined || v === '') throw new UsageError('--on needs a peer id (or a prefix of one)');
    if (on !== undefined) throw new UsageError('--on given twice');
    on = v;
  };
  let i = 0;
  // Options before the program.
  while (i < words.length && words[i]!.startsWith('--on')) {
    const w = words[i]!;
    if (w === '--on') {
      setOn(words[i + 1]);
      i += 2;
    } else if (w.startsWith('--on=')) {
      setOn(w.slice(5));
      i++;
    } else break;
  }
  const prog = words[i];
  if (prog === undefined || prog === '') throw new UsageError('usage: run <prog> [args…] [--on <peer>] [&]');
  let args = words.slice(i + 1);
  if (args[0] === '--') return result({ prog, args: args.slice(1), on });
  // A trailing --on belongs to run.
  const n = args.length;
  if (n >= 2 && args[n - 2] === '--on') {
    setOn(args[n - 1]);
    args = args.slice(0, n - 2);
  } else if (n >= 1 && args[n - 1]!.startsWith('--on=')) {
    setOn(args[n - 1]!.slice(5));
    args = args.slice(0, n - 1);
  } else if (n >= 1 && args[n - 1] === '--on') {
    setOn(undefined);
  }
  return result({ prog, args, on });
}

/** The one peer whose id starts with `prefix` (case-insensitive; an exact id always wins).
 *  Throws a UsageError naming the candidates when there is none or more than one. */
export function resolvePeer(prefix: string, peers: readonly PeerRow[]): PeerId {
  const p = prefix.toLowerCase();
  if (p === '') throw new UsageError('empty peer id');
  const ids = [...new Set(peers.map((x) => x.id))];
  const exact = ids.find((id) => id.toLowerCase() === p);
  if (exact !== undefined) return exact;
  const matches = ids.filter((id) => id.toLowerCase().startsWith(p)).sort();
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new UsageError(`no peer matches "${prefix}" (see peers)`);
  // Show each candidate long enough to tell it from the others.
  const len = Math.max(8, p.length + 4);
  const shown = matches.slice(0, 5).map((id) => id.slice(0, len));
  const more = matches.length > 5 ? `, and ${matches.length - 5} more` : '';
  throw new UsageError(`ambiguous peer "${prefix}": matches ${shown.join(', ')}${more}`);
}

// ---- paths ----

/** The working directory a new shell starts in, and where a bare `cd` goes. */
export const HOME = '/cluster';

/** An absolute path without ".", "..", empty or trailing parts. Relative paths start at "/". */
export function normalizePath(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return '/' + out.join('/');
}

// ---- text layout ----

export type Align = 'left' | 'right';

/** Rows as aligned columns, two spaces apart, no trailing blanks, each line ending in '\n'. */
export function formatColumns(rows: readonly (readonly string[])[], align: readonly Align[] = []): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visibleWidth(cell))));
  return rows
    .map((row) =>
      row
        .map((cell, i) => {
          const pad = ' '.repeat((widths[i] ?? 0) - visibleWidth(cell));
          if (align[i] === 'right') return pad + cell;
          return i === row.length - 1 ? cell : cell + pad;
        })
        .join('  ')
        .replace(/ +$/, '') + '\n',
    )
    .join('');
}

/** "0 B", "512 B", "1.5 KiB", "12.0 MiB". */
export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

const STATE_STYLE: Record<ProcessState, keyof typeof SGR | undefined> = {
  READY: undefined,
  RUNNING: 'green',
  WAITING: 'cyan',
  WAIT_CONFIRM: 'yellow',
  STOPPED: 'magenta',
  MIGRATING: 'blue',
  EXITED: 'dim',
};

/** CPU time: "0.4s", "12.3s", "2m05s", "1h02m". */
export function formatCpu(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const tenths = Math.floor(ms / 100);
  if (tenths < 600) return `${Math.floor(tenths / 10)}.${tenths % 10}s`;
  const s = Math.floor(ms / 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
}

/** Rows by start time when every row has one; otherwise as given. Stable. */
export function sortByStart<T extends { startedAt?: number | undefined }>(rows: readonly T[]): T[] {
  if (!rows.every((r) => typeof r.startedAt === 'number')) return [...rows];
  return [...rows].sort((a, b) => a.startedAt! - b.startedAt!);
}

/** Fork On Wait counters as ps shows them: "depth/hits/rollbacks", e.g. "2/5/1". */
export function formatSpec(s: SpeculationStats | undefined): string {
  return s ? `${s.depth}/${s.hits}/${s.rollbacks}` : '-';
}

/** The state a row shows: a process with outstanding speculations runs ahead in WAIT_CONFIRM. */
export function shownState(p: { state: ProcessState; speculation?: SpeculationStats | undefined }): ProcessState {
  return p.speculation && p.speculation.depth > 0 && p.state !== 'EXITED' ? 'WAIT_CONFIRM' : p.state;
}

/** The process table. A SPEC column (depth/hits/rollbacks) appears once some process speculated;
 *  a process running ahead in WAIT_CONFIRM has a "↳ twin" line for its STOPPED twins below it. */
export function formatPs(rows: readonly ProcessRow[]): string {
  const spec = rows.some((p) => p.speculation !== undefined);
  const cell = (state: ProcessState, text: string) => {
    const style = STATE_STYLE[state];
    return style ? paint(style, text) : text;
  };
  const table: string[][] = [['PID', 'PROGRAM', 'PEER', 'STATE', 'CPU', ...(spec ? ['SPEC'] : [])].map((h) => paint('bold', h))];
  for (const p of sortByStart(rows)) {
    const state = shownState(p);
    const text = state === 'EXITED' && p.exitCode !== undefined ? `EXITED (${p.exitCode})` : state;
    table.push([
      p.pid,
      [p.prog, ...p.args].map(quoteWord).join(' '),
      shortId(p.peer),
      cell(state, text),
      formatCpu(p.cpuMs),
      ...(spec ? [formatSpec(p.speculation)] : []),
    ]);
    const depth = state === 'WAIT_CONFIRM' ? (p.speculation?.depth ?? 0) : 0;
    if (depth > 0) table.push([paint('dim', '  ↳'), paint('dim', 'twin'), shortId(p.peer), cell('STOPPED', `STOPPED ×${depth}`), '', ...(spec ? [''] : [])]);
  }
  return formatColumns(table, ['left', 'left', 'left', 'left', 'right', 'right']);
}

/** What migrate prints: "4f2a1c.3 moved to ab12cd34 (stopped 12 ms)". */
export function formatMoved(pid: Pid, m: MoveResult): string {
  return `${pid} moved to ${shortId(m.peer)} (stopped ${Math.round(m.freezeMs)} ms)`;
}

const PEER_ORDER: Record<PeerState, number> = { self: 0, connected: 1, gossip: 2 };

export function formatPeers(rows: readonly PeerRow[]): string {
  const sorted = [...rows].sort((a, b) => PEER_ORDER[a.state] - PEER_ORDER[b.state] || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const table = [
    ['ID', 'KIND', 'STATE', 'LOAD', 'CAP', 'RTT', 'UPTIME'].map((h) => paint('bold', h)),
    ...sorted.map((p) => [
      shortId(p.id),
      p.kind,
      p.state === 'self' ? paint('cyan', 'self') : p.state === 'gossip' ? paint('dim', 'gossip') : p.state,
      formatLoad(p.load),
      String(p.capacity),
      formatRtt(p.rttMs, p.state),
      formatUptime(p.uptimeMs),
    ]),
  ];
  return formatColumns(table, ['left', 'left', 'left', 'right', 'right', 'right', 'right']);
}

export function formatLs(entries: readonly DirEntry[]): string {
  if (entries.length === 0) return '';
  const sorted = [...entries].sort((a, b) => (a.kind === b.kind ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.kind === 'dir' ? -1 : 1));
  const rows = sorted.map((e) => [
    e.kind === 'dir' ? paint('dim', 'dir') : e.size !== undefined ? formatSize(e.size) : '—',
    e.replicas !== undefined ? `on ${e.replicas} peer${e.replicas === 1 ? '' : 's'}` : '',
    e.kind === 'dir' ? paint('blue', e.name + '/') : e.name,
  ]);
  return formatColumns(rows, ['right', 'left', 'left']);
}

/** A word as the user would type it back: quoted when it holds blanks, quotes or backslashes. */
export function quoteWord(word: string): string {
  if (word !== '' && !/[\s'"\\]/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

// ---- the commands ----

export interface CommandHelp {
  usage: string;
  summary: string;
  details?: string;
}

export const COMMANDS: Record<string, CommandHelp> = {
  run: {
    usage: 'run <prog> [args…] [--on <peer>] [&]',
    summary: 'run a program (with a final &: in the background)',
    details:
      'Its output appears here and what you type goes to its stdin, a line at a time.\n' +
      'Ctrl-C kills it (press again to detach if it does not exit); Ctrl-D ends its input.\n' +
      '--on runs it on a given peer: any unambiguous prefix of the peer id will do.\n' +
      'A final & runs it in the background: its output still appears here, its stdin is empty,\n' +
      'and the prompt comes back at once (stop it with kill).\n' +
      'Use -- after the program to pass a literal --on to it.',
  },
  ps: {
    usage: 'ps',
    summary: 'list the processes of the cluster',
    details:
      'Exited processes stay listed for a short while, with their exit code.\n' +
      'SPEC (once a process speculated, Fork On Wait): outstanding speculations/hits/rollbacks;\n' +
      'a process running ahead is WAIT_CONFIRM, with its STOPPED twins on the line below it.',
  },
  kill: { usage: 'kill <pid>', summary: 'stop a process', details: 'The pid as ps shows it, e.g. 4f2a1c.3: it works for a process on any peer.' },
  migrate: {
    usage: 'migrate <pid> <peer>',
    summary: 'move a running process to another peer',
    details:
      'It is stopped, its memory and state cross to the peer, and it goes on there; its output\n' +
      'still comes here. <peer>: any unambiguous prefix of the peer id, as for run --on.',
  },
  peers: { usage: 'peers', summary: 'list the peers of the cluster' },
  ls: { usage: 'ls [path]', summary: 'list a directory (default: the current one)' },
  cat: { usage: 'cat <path>', summary: 'print a file' },
  cp: { usage: 'cp <src> <dst>', summary: 'copy a file', details: 'When <dst> is a directory the copy goes into it, under the same name.' },
  mv: { usage: 'mv <src> <dst>', summary: 'move or rename a file or directory', details: 'When <dst> is a directory <src> goes into it.' },
  rm: { usage: 'rm [-r] <path>', summary: 'remove a file (-r: a directory and all it holds)' },
  mkdir: { usage: 'mkdir [-p] <path>', summary: 'make a directory (-p: and the missing ones above it)' },
  cd: { usage: 'cd [path]', summary: `change the working directory (default ${HOME})` },
  pwd: { usage: 'pwd', summary: 'print the working directory' },
  help: { usage: 'help [cmd]', summary: 'list the commands, or explain one' },
  clear: { usage: 'clear', summary: 'clear the screen' },
};

export const COMMAND_NAMES = Object.keys(COMMANDS);

/** "<hex of the birth peer>.<n>", as ps shows them. */
const PID_RE = /^[0-9a-f]{1,32}\.\d{1,15}$/i;

function message(err: unknown): string {
  return oneLine(err instanceof Error ? err.message : String(err));
}

/** One line, whatever the backend sent. */
function oneLine(text: string): string {
  return text.split('\n')[0]!.trim() || 'failed';
}

/** The interpreter. One per terminal; runs one command line at a time. */
export class Shell {
  private programNames: string[] = [];
  private peerIds: string[] = [];
  private dir = HOME;

  constructor(private readonly backend: ShellBackend) {}

  /** Fetches the program names and peer ids Tab offers. Never rejects. */
  async refreshCompletions(): Promise<void> {
    const [progs, peers] = await Promise.allSettled([this.backend.programs(), this.backend.peers()]);
    if (progs.status === 'fulfilled') this.programNames = [...new Set(progs.value)].sort();
    if (peers.status === 'fulfilled') this.peerIds = [...new Set(peers.value.map((p) => shortId(p.id)))].sort();
  }

  /** Words that may complete the word at the end of `before` (the line up to the cursor): command
   *  names first, program names after run, peer ids after --on and after migrate's pid, command
   *  names after help.
   *  Unfiltered by the partial word; the line editor filters. */
  complete(before: string): string[] {
    const cut = Math.max(before.lastIndexOf(' '), before.lastIndexOf('\t'));
    let prev: string[];
    try {
      prev = tokenize(before.slice(0, cut + 1));
    } catch {
      return [];
    }
    if (prev.length === 0) return COMMAND_NAMES;
    const [cmd, ...rest] = prev;
    if (cmd === 'help') return rest.length === 0 ? COMMAND_NAMES : [];
    if (cmd === 'migrate') return rest.length === 1 ? this.peerIds : [];
    if (cmd !== 'run') return [];
    if (rest.at(-1) === '--on') return this.peerIds;
    // The program name comes after any leading --on options.
    let i = 0;
    while (i < rest.length) {
      if (rest[i] === '--on') i += 2;
      else if (rest[i]!.startsWith('--on=')) i++;
      else break;
    }
    return i >= rest.length ? this.programNames : [];
  }

  /** Runs one command line to completion (for run: until the process exits or is detached). Never rejects. */
  async execute(line: string, con: ShellConsole): Promise<void> {
    let words: string[];
    try {
      words = tokenize(line);
    } catch (err) {
      con.error(`syntax error: ${message(err)}`);
      return;
    }
    const [cmd, ...args] = words;
    if (cmd === undefined) return;
    try {
      switch (cmd) {
        case 'run':
          await this.run(args, con);
          break;
        case 'ps':
          this.noArgs(cmd, args);
          con.print(formatPs(await this.backend.ps()));
          break;
        case 'kill':
          await this.backend.kill(this.pidArg(cmd, args.length === 1 ? args : []));
          break;
        case 'migrate': {
          if (args.length !== 2) throw new UsageError(`usage: ${COMMANDS.migrate!.usage}`);
          const pid = this.pidArg(cmd, [args[0]!]);
          const to = resolvePeer(args[1]!, await this.backend.peers());
          con.print(formatMoved(pid, await this.backend.migrate(pid, to)) + '\n');
          break;
        }
        case 'peers':
          this.noArgs(cmd, args);
          con.print(formatPeers(await this.backend.peers()));
          break;
        case 'ls':
          if (args.length > 1) throw new UsageError(`usage: ${COMMANDS.ls!.usage}`);
          con.print(formatLs(await this.backend.ls(this.resolve(args[0] ?? '.'))));
          break;
        case 'cat':
          await this.cat(args, con);
          break;
        case 'cp':
        case 'mv': {
          const [src, dst] = this.operands(cmd, args, [], 2).paths;
          await (cmd === 'cp' ? this.backend.cp(src!, dst!) : this.backend.mv(src!, dst!));
          break;
        }
        case 'rm': {
          const { flags, paths } = this.operands(cmd, args, ['r'], 1);
          await this.backend.rm(paths[0]!, { recursive: flags.has('r') });
          break;
        }
        case 'mkdir': {
          const { flags, paths } = this.operands(cmd, args, ['p'], 1);
          await this.backend.mkdir(paths[0]!, { parents: flags.has('p') });
          break;
        }
        case 'cd':
          await this.cd(args);
          break;
        case 'pwd':
          this.noArgs(cmd, args);
          con.print(this.cwd + '\n');
          break;
        case 'help':
          await this.help(args, con);
          break;
        case 'clear':
          this.noArgs(cmd, args);
          con.clear();
          break;
        default:
          con.error(`unknown command: ${cmd} (try help)`);
          return;
      }
    } catch (err) {
      const text = message(err);
      con.error(text.startsWith('usage:') ? text : `${cmd}: ${text}`);
    } finally {
      void this.refreshCompletions();
    }
  }

  /** The working directory: absolute, normalized. */
  get cwd(): string {
    return this.dir;
  }

  /** A path as typed, made absolute against the working directory. */
  resolve(path: string): string {
    return normalizePath(path.startsWith('/') ? path : `${this.dir}/${path}`);
  }

  private async cd(args: string[]): Promise<void> {
    if (args.length > 1) throw new UsageError(`usage: ${COMMANDS.cd!.usage}`);
    const path = this.resolve(args[0] ?? HOME);
    const st = await this.backend.stat(path);
    if (st.kind !== 'dir') throw new Error(`${path}: not a directory`);
    this.dir = path;
  }

  /** Single-letter options (from `allowed`, possibly grouped: -rp) then exactly `count` paths, resolved. */
  private operands(cmd: string, args: string[], allowed: string[], count: number): { flags: Set<string>; paths: string[] } {
    const usage = () => new UsageError(`usage: ${COMMANDS[cmd]!.usage}`);
    const flags = new Set<string>();
    let i = 0;
    for (; i < args.length && args[i]!.startsWith('-') && args[i] !== '-'; i++) {
      if (args[i] === '--') {
        i++;
        break;
      }
      for (const f of args[i]!.slice(1)) {
        if (!allowed.includes(f)) throw usage();
        flags.add(f);
      }
    }
    const paths = args.slice(i);
    if (paths.length !== count || paths.some((p) => p === '')) throw usage();
    return { flags, paths: paths.map((p) => this.resolve(p)) };
  }

  private noArgs(cmd: string, args: string[]): void {
    if (args.length > 0) throw new UsageError(`usage: ${COMMANDS[cmd]!.usage}`);
  }

  private pidArg(cmd: string, args: string[]): Pid {
    if (args.length !== 1) throw new UsageError(`usage: ${COMMANDS[cmd]!.usage}`);
    const s = args[0]!;
    if (!PID_RE.test(s)) throw new UsageError(`not a pid: ${s} (pids look like 4f2a1c.3, see ps)`);
    return s.toLowerCase();
  }

  private async cat(args: string[], con: ShellConsole): Promise<void> {
    if (args.length !== 1) throw new UsageError(`usage: ${COMMANDS.cat!.usage}`);
    const path = this.resolve(args[0]!);
    const bytes = await this.backend.cat(path);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      text = '\0';
    }
    if (text.includes('\0')) throw new Error(`${path}: binary file (${formatSize(bytes.length)}), not shown`);
    con.print(text);
  }

  private async help(args: string[], con: ShellConsole): Promise<void> {
    if (args.length > 1) throw new UsageError(`usage: ${COMMANDS.help!.usage}`);
    const name = args[0];
    if (name === undefined) {
      const rows = Object.values(COMMANDS).map((c) => [c.usage, paint('dim', c.summary)]);
      con.print(
        formatColumns(rows) +
          paint('dim', 'Keys: ↑/↓ history, Tab completes, Ctrl-C cancels or kills, Ctrl-D ends input, Ctrl-L clears.') +
          '\n',
      );
      return;
    }
    const c = COMMANDS[name];
    if (!Object.hasOwn(COMMANDS, name) || c === undefined) throw new UsageError(`no such command: ${name}`);
    let text = `usage: ${c.usage}\n${c.summary}\n`;
    if (c.details) text += c.details + '\n';
    if (name === 'run') {
      try {
        const progs = [...new Set(await this.backend.programs())].sort();
        text += progs.length ? `programs: ${progs.join(' ')}\n` : 'no programs installed\n';
      } catch (err) {
        text += paint('dim', `(could not list the programs: ${message(err)})`) + '\n';
      }
    }
    con.print(text);
  }

  private async run(words: string[], con: ShellConsole): Promise<void> {
    const { prog, args, on, background } = parseRunArgs(words);
    const peer = on === undefined ? undefined : resolvePeer(on, await this.backend.peers());
    if (background) return this.runInBackground(prog, args, peer, con);
    // Whether the process's output left the cursor mid-line (the status line then starts a new one).
    let midLine = false;
    const track = (b: Uint8Array) => {
      if (b.length > 0) midLine = b[b.length - 1] !== 0x0a;
    };
    const proc = await this.backend.run(prog, args, {
      ...(peer !== undefined ? { on: peer } : {}),
      io: {
        onStdout: (b) => {
          track(b);
          con.stdout(b);
        },
        onStderr: (b) => {
          track(b);
          con.stderr(b);
        },
      },
    });
    const pid = proc.pid;
    let interrupts = 0;
    let detach!: () => void;
    const detached = new Promise<'detached'>((resolve) => (detach = () => resolve('detached')));
    const guard = (what: string, f: () => void | Promise<void>) => {
      try {
        Promise.resolve(f()).catch((err: unknown) => con.error(`${what}: ${message(err)}`));
      } catch (err) {
        con.error(`${what}: ${message(err)}`);
      }
    };
    con.foreground({
      pid,
      stdin: (bytes) => guard('stdin', () => proc.writeStdin(bytes)),
      eof: () => guard('stdin', () => proc.closeStdin()),
      interrupt: () => {
        interrupts++;
        if (interrupts === 1) guard('kill', () => this.backend.kill(pid));
        else detach();
      },
    });
    try {
      let outcome: ProcessExit | 'detached';
      try {
        outcome = await Promise.race([proc.exit, detached]);
      } catch (err) {
        con.error(`[pid ${pid} lost: ${message(err)}]`);
        return;
      }
      const status = (text: string) => con.print((midLine ? '\n' : '') + text + '\n');
      if (outcome === 'detached') {
        status(paint('yellow', `[pid ${pid} detached: it may still be running, see ps]`));
      } else {
        // Why it ended, in red (after a Ctrl-C the user knows why), then how.
        if (interrupts === 0 && outcome.message !== undefined && outcome.message !== '') {
          con.error(oneLine(outcome.message));
          midLine = false;
        }
        status(paint('dim', `[pid ${pid} exited with code ${outcome.code}]`));
      }
    } finally {
      con.foreground(undefined);
    }
  }

  /** Starts a process that does not take the keyboard: its stdin is closed at once, its output
   *  and its end are printed as they come (the console keeps the prompt intact around them). */
  private async runInBackground(prog: string, args: string[], peer: PeerId | undefined, con: ShellConsole): Promise<void> {
    const proc = await this.backend.run(prog, args, {
      ...(peer !== undefined ? { on: peer } : {}),
      io: { onStdout: (b) => con.stdout(b), onStderr: (b) => con.stderr(b) },
    });
    const pid = proc.pid;
    con.print(paint('dim', `[pid ${pid} running in the background]`) + '\n');
    Promise.resolve()
      .then(() => proc.closeStdin())
      .catch(() => {}); // it may have ended already
    proc.exit.then(
      (e) => {
        if (e.message !== undefined && e.message !== '') con.error(`[pid ${pid}: ${oneLine(e.message)}]`);
        con.print(paint('dim', `[pid ${pid} exited with code ${e.code}]`) + '\n');
      },
      (err: unknown) => con.error(`[pid ${pid} lost: ${message(err)}]`),
    );
  }
}
