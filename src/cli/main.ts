// The `lshapes` command (bin/lshapes.mjs), with the conventions of `wasmtime run`:
//
//   lshapes run [--env K=V]... [--dir HOST[::GUEST]]... [--no-cache] PROGRAM.wasm [ARGS]...
//
// Options come before the program; everything after it is the program's. `lshapes PROGRAM.wasm`
// is `lshapes run PROGRAM.wasm`, as with wasmtime. Exit code: the program's (mod 256); 1 when
// it could not run (message on stderr), 2 for a usage error, 130 after Ctrl-C (the program is
// killed), 143 after SIGTERM, 129 after SIGHUP, 141 when our stdout is a closed pipe.
import { pathToFileURL } from 'node:url';
import { VERSION } from '../host/common/version.ts';
import { EXIT_USAGE, defaultCacheDir, parseDir, parseEnv, runProgram, type DirMount } from './run.ts';

export const USAGE = 'usage: lshapes run [--env NAME=VALUE]... [--dir HOST[::GUEST]]... PROGRAM.wasm [ARGS]...';

export const HELP = `lshapes ${VERSION}: the LSHAPES kernel on the command line

${USAGE}
       lshapes run --help
       lshapes --help | --version

Commands:
  run    run one WebAssembly program (wasm32-wasi, WASI preview 1) on the kernel every
         peer runs, here, as a cluster of one; \`lshapes PROGRAM.wasm\` is the same
`;

export const RUN_HELP = `${USAGE}

Runs PROGRAM.wasm (a wasm32-wasi module, WASI preview 1, and the lshapes imports of docs/abi.md)
on the same kernel, Scheduler and runtime as every LSHAPES peer, as a cluster of one peer.
Its argv is [NAME, ARGS...], NAME being the file's name without .wasm. Its stdout and stderr
are passed through, our stdin is its stdin, and its exit code is ours.

Options (before PROGRAM.wasm; everything after it goes to the program):
  --env NAME=VALUE    set an environment variable (repeatable); --env NAME passes ours through
  --dir HOST::GUEST   let the program use the host directory HOST, read-write, at GUEST
  --dir DIR           the same at the same path; a relative DIR is seen from / , the program's
                      working directory, so --dir . lets it open our relative paths
                      Without --dir the program sees no host file at all.
  --no-cache          do not keep rewritten modules in $LSHAPES_CACHE_DIR, else
                      $XDG_CACHE_HOME/lshapes (~/.cache/lshapes)
  -h, --help          this help

Exit codes: the program's (mod 256); 1 when it could not start (not WebAssembly, an invalid
module, an import LSHAPES does not provide), 134 when it trapped, 139 for a bad pointer passed to
WASI (each with a one-line "lshapes: ..." on stderr); 2 for a usage error; 130 after Ctrl-C,
which kills the program (143 after SIGTERM, 129 after SIGHUP).
`;

export type Command =
  | { kind: 'help'; text: string }
  | { kind: 'version' }
  | { kind: 'usage'; message: string }
  | { kind: 'run'; file: string; args: string[]; env: Record<string, string>; dirs: DirMount[]; cache: boolean };

/** Parses the command line (without node and the script). */
export function parseCommandLine(argv: readonly string[], hostEnv: Record<string, string | undefined> = {}): Command {
  const first = argv[0];
  if (first === undefined) return { kind: 'usage', message: 'no command given' };
  if (first === '-h' || first === '--help' || first === 'help') return { kind: 'help', text: HELP };
  if (first === '-V' || first === '--version') return { kind: 'version' };
  return parseRun(first === 'run' ? argv.slice(1) : argv, hostEnv);
}

function parseRun(argv: readonly string[], hostEnv: Record<string, string | undefined>): Command {
  const env: Record<string, string> = {};
  const dirs: DirMount[] = [];
  let cache = true;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    if (a === '-h' || a === '--help') return { kind: 'help', text: RUN_HELP };
    if (a === '--no-cache') {
      cache = false;
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq < 0 ? a : a.slice(0, eq);
    if (name !== '--env' && name !== '--dir') return { kind: 'usage', message: `unknown option ${a}` };
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else {
      const next = argv[++i];
      if (next === undefined) return { kind: 'usage', message: `${name} wants a value` };
      value = next;
    }
    try {
      if (name === '--env') {
        const [k, v] = parseEnv(value, hostEnv);
        env[k] = v;
      } else {
        const d = parseDir(value);
        if (dirs.some((x) => x.guest === d.guest)) return { kind: 'usage', message: `--dir ${value}: ${d.guest} is mounted already` };
        dirs.push(d);
      }
    } catch (err) {
      return { kind: 'usage', message: (err as Error).message };
    }
  }
  const file = argv[i];
  if (file === undefined) return { kind: 'usage', message: 'no program given' };
  return { kind: 'run', file, args: argv.slice(i + 1), env, dirs, cache };
}

/** Everything the CLI touches of its process, so tests can give their own. */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream | null;
  env: Record<string, string | undefined>;
  /** Aborted (with an exit code as reason) to kill the program and return. */
  signal?: AbortSignal;
}

/** Runs the command; resolves with the exit code. */
export async function cli(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = parseCommandLine(argv, io.env);
  switch (cmd.kind) {
    case 'help':
      io.stdout.write(cmd.text);
      return 0;
    case 'version':
      io.stdout.write(`lshapes ${VERSION}\n`);
      return 0;
    case 'usage':
      io.stderr.write(`lshapes: ${cmd.message}\n${USAGE}\n(lshapes run --help for more)\n`);
      return EXIT_USAGE;
    case 'run':
      return runProgram({
        file: cmd.file,
        args: cmd.args,
        env: cmd.env,
        dirs: cmd.dirs,
        stdout: io.stdout,
        stderr: io.stderr,
        stdin: io.stdin,
        ...(io.signal ? { signal: io.signal } : {}),
        cacheDir: cmd.cache ? (io.env.LSHAPES_CACHE_DIR ?? defaultCacheDir(io.env)) : null,
      });
  }
}

/** Waits until what was written to `stream` is handed to the system. */
function drained(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    try {
      stream.write('', () => resolve());
    } catch {
      resolve();
    }
  });
}

/** The process's own entry: signals, broken pipes, and process.exit with the code. */
export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<never> {
  const ac = new AbortController();
  let code = 0;
  const stop = (exitCode: number) => {
    // A second signal (or one before the program started) does not wait for the kill.
    if (ac.signal.aborted) process.exit(exitCode);
    ac.abort(exitCode);
  };
  process.on('SIGINT', () => stop(130));
  process.on('SIGTERM', () => stop(143));
  process.on('SIGHUP', () => stop(129));
  // Our reader went away (`lshapes run prog.wasm | head -1`): end like a program killed by SIGPIPE.
  const onWriteError = (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') stop(141);
  };
  process.stdout.on('error', onWriteError);
  process.stderr.on('error', onWriteError);
  const needsStdin = parseCommandLine(argv, process.env).kind === 'run';
  try {
    code = await cli(argv, { stdout: process.stdout, stderr: process.stderr, stdin: needsStdin ? process.stdin : null, env: process.env, signal: ac.signal });
  } catch (err) {
    process.stderr.write(`lshapes: ${(err as Error).message}\n`);
    code = 1;
  }
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(code);
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) void main();
