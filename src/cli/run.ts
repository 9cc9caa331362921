// `lshapes run`: one program on the same kernel, Scheduler and runtime as every peer — a cluster of
// one peer with no links and one executor on this thread. The program gets the `--dir` mounts
// (host directories, read-write) and nothing else of the host; its stdout and stderr are passed
// through as they come, our stdin is forwarded to it, and its exit code becomes ours.
//
// Rewritten modules (Binaryen's Asyncify pass, several seconds with Binaryen's start-up) are kept
// in a cache directory by the SHA-256 of the original module, like wasmtime's compilation cache:
// the next run of the same module loads them without Binaryen. Entries are checked on load (ABI,
// program hash) and the original is rewritten again when one does not fit.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { identityFrom, newClusterToken } from '../kernel/identity.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { InProcessExecution } from '../kernel/process/in-process.ts';
import type { ExecutionDriver, FromExecutor, ToExecutor } from '../kernel/process/protocol.ts';
import type { NetworkInterface } from '../kernel/types.ts';
import { Namespace, normalizeMountPath } from '../kernel/wasi/vfs.ts';
import { RUNTIME_ABI } from '../kernel/wasm/types.ts';
import { bootKernel } from '../host/common/boot.ts';
import { realDrivers } from '../host/common/drivers.ts';
import { SchedulerClient } from '../host/common/scheduler-client.ts';
import { generateKeyPair, webCryptoDriver } from '../host/common/webcrypto.ts';
import { HostFs } from '../host/node/hostfs.ts';
import { filePrograms } from '../host/node/programs.ts';

/** A host directory and where the program sees it. */
export interface DirMount {
  host: string;
  /** Absolute, normalized guest path. */
  guest: string;
}

export interface RunProgramOptions {
  /** The .wasm file. */
  file: string;
  /** argv[1..]; argv[0] is the file's name without `.wasm`. */
  args: string[];
  env?: Record<string, string>;
  /** Host directories to mount (read-write); the program sees no other host file. */
  dirs?: DirMount[];
  /** Raw bytes, written as they come. */
  stdout: { write(data: Uint8Array): unknown };
  stderr: { write(data: Uint8Array | string): unknown };
  /** Forwarded to the program; without it (null) the program's stdin is empty. */
  stdin?: NodeJS.ReadableStream | null;
  /**
   * Aborting kills the program and runProgram returns at once: `signal.reason` when it is a
   * number, else 130 (a shell's code for Ctrl-C).
   */
  signal?: AbortSignal;
  /** Where rewritten modules are kept between runs; null (default) for no cache. */
  cacheDir?: string | null;
}

/** Exit codes of the CLI itself. */
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

/**
 * The mount for a `--dir` argument: `HOST::GUEST`, or `DIR` at the same path. A relative guest
 * path is taken from `/` (the program's working directory: wasi-libc resolves relative paths
 * against "/"), so `--dir .` lets the program open `file` and `./file` as we would, and
 * `--dir data` is `/data` for it.
 */
export function parseDir(spec: string): DirMount {
  const sep = spec.indexOf('::');
  const host = sep < 0 ? spec : spec.slice(0, sep);
  const guest = sep < 0 ? spec : spec.slice(sep + 2);
  if (host === '') throw new Error(`--dir ${spec}: no host directory`);
  if (guest === '') throw new Error(`--dir ${spec}: no guest path after '::'`);
  try {
    return { host, guest: normalizeMountPath(guest.startsWith('/') ? guest : `/${guest}`) };
  } catch {
    throw new Error(`--dir ${spec}: the guest path may not contain '..'${sep < 0 ? ` (say where the program sees it: --dir ${spec}::/GUEST)` : ''}`);
  }
}

/** "K=V", or "K" to pass K through from `hostEnv` (as wasmtime does). */
export function parseEnv(spec: string, hostEnv: Record<string, string | undefined> = {}): [string, string] {
  const eq = spec.indexOf('=');
  const key = eq < 0 ? spec : spec.slice(0, eq);
  if (key === '' || key.includes('\0')) throw new Error(`--env ${spec}: wants NAME=VALUE`);
  if (eq >= 0) return [key, spec.slice(eq + 1)];
  const v = hostEnv[key];
  if (v === undefined) throw new Error(`--env ${spec}: wants NAME=VALUE (${key} is not set here, so it cannot be passed through)`);
  return [key, v];
}

/** The program's name (its argv[0]): the file's base name without `.wasm`. */
export function programName(file: string): string {
  const base = path.basename(file);
  return base.toLowerCase().endsWith('.wasm') && base.length > 5 ? base.slice(0, -5) : base;
}

/** An exit status as a shell sees it: mod 256. */
export function shellCode(code: number): number {
  return ((Math.trunc(code) % 256) + 256) % 256;
}

/** The default cache: $XDG_CACHE_HOME/lshapes or ~/.cache/lshapes. */
export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'lshapes');
}

/** A network interface with no links: the CLI is a cluster of one. */
const noNetwork: NetworkInterface = {
  attach: () => {},
  send: () => {},
  bufferedAmount: () => 0,
  close: () => {},
};

function errorText(err: unknown): string {
  switch ((err as NodeJS.ErrnoException | null)?.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'not a directory';
  }
  return err instanceof Error ? err.message : String(err);
}

/** `lshapes: text` on one line. */
function line(text: string): string {
  return `lshapes: ${text.replace(/\s*\n\s*/g, ' ').trim()}\n`;
}

// ───────────────────────────── the rewrite cache ─────────────────────────────

const CACHE_ENTRIES = 64;

/** A directory of rewritten modules, named by the hash of the original. */
class RewriteCache {
  private readonly writes: Promise<void>[] = [];

  private constructor(private readonly dir: string) {}

  /** The cache for this runtime: its subdirectory is named after the rewriter's own source, the
   *  runtime ABI and Binaryen's version, so a changed rewriter never sees old entries. */
  static async open(base: string): Promise<RewriteCache | undefined> {
    try {
      const h = createHash('sha256').update(`abi ${RUNTIME_ABI}\n`);
      for (const f of ['../kernel/wasm/rewrite.ts', '../kernel/wasm/types.ts', '../kernel/process/executor.ts']) {
        h.update(await readFile(new URL(f, import.meta.url)));
      }
      try {
        h.update(await readFile(createRequire(import.meta.url).resolve('binaryen/package.json')));
      } catch {
        // no version to add
      }
      const dir = path.join(base, 'rewritten', h.digest('hex').slice(0, 16));
      await mkdir(dir, { recursive: true });
      return new RewriteCache(dir);
    } catch {
      return undefined; // no cache then
    }
  }

  private file(hash: string): string | undefined {
    return /^[0-9a-f]{64}$/.test(hash) ? path.join(this.dir, `${hash}.wasm`) : undefined;
  }

  /** Synchronous: a `start` must be posted before the messages behind it. */
  get(hash: string): Uint8Array | undefined {
    const f = this.file(hash);
    if (!f) return undefined;
    try {
      return new Uint8Array(readFileSync(f));
    } catch {
      return undefined;
    }
  }

  put(hash: string, bytes: Uint8Array): void {
    const f = this.file(hash);
    if (!f) return;
    const tmp = `${f}.${process.pid}-${Math.random().toString(36).slice(2)}.tmp`;
    this.writes.push(
      (async () => {
        try {
          await writeFile(tmp, bytes);
          await rename(tmp, f);
          await this.prune();
        } catch {
          await unlink(tmp).catch(() => {});
        }
      })(),
    );
  }

  /** Keeps the newest CACHE_ENTRIES entries. */
  private async prune(): Promise<void> {
    const names = (await readdir(this.dir)).filter((n) => n.endsWith('.wasm'));
    if (names.length <= CACHE_ENTRIES) return;
    const dated = await Promise.all(names.map(async (n) => ({ n, t: (await stat(path.join(this.dir, n)).catch(() => null))?.mtimeMs ?? 0 })));
    dated.sort((a, b) => b.t - a.t);
    await Promise.all(dated.slice(CACHE_ENTRIES).map((d) => unlink(path.join(this.dir, d.n)).catch(() => {})));
  }

  /** Waits for the entries being written. */
  async flush(): Promise<void> {
    await Promise.allSettled(this.writes);
  }
}

/** Gives starts the cached rewritten module (the original stays, should it not load) and keeps
 *  the modules the executor rewrites. */
function withCache(inner: ExecutionDriver, cache: RewriteCache): ExecutionDriver {
  return {
    count: inner.count,
    attach(onMessage: (executor: number, msg: FromExecutor) => void) {
      inner.attach((i, msg) => {
        if (msg.t === 'rewritten') cache.put(msg.hash, msg.bytes);
        onMessage(i, msg);
      });
    },
    post(executor: number, msg: ToExecutor) {
      if (msg.t === 'start' && !msg.spec.rewritten && msg.spec.module) {
        const rewritten = cache.get(msg.spec.hash);
        if (rewritten) msg = { ...msg, spec: { ...msg.spec, rewritten } };
      }
      inner.post(executor, msg);
    },
  };
}

// ───────────────────────────── running ─────────────────────────────

/** Runs the program to its end; resolves with the exit code for the CLI. Never rejects. */
export async function runProgram(opts: RunProgramOptions): Promise<number> {
  const fail = (text: string, code = EXIT_ERROR): number => {
    opts.stderr.write(line(text));
    return code;
  };
  const interruptCode = (): number => (typeof opts.signal?.reason === 'number' ? opts.signal.reason : EXIT_INTERRUPTED);
  if (opts.signal?.aborted) return interruptCode();

  let module: Uint8Array;
  try {
    module = new Uint8Array(await readFile(opts.file));
  } catch (err) {
    return fail(`${opts.file}: ${errorText(err)}`);
  }

  const mounts: { guest: string; fs: HostFs }[] = [];
  for (const d of opts.dirs ?? []) {
    if (mounts.some((m) => m.guest === d.guest)) return fail(`--dir: two directories mounted at ${d.guest}`, EXIT_USAGE);
    try {
      mounts.push({ guest: d.guest, fs: await HostFs.open(d.host) });
    } catch (err) {
      return fail(`--dir ${d.host}: ${errorText(err)}`);
    }
  }

  const cache = opts.cacheDir ? await RewriteCache.open(opts.cacheDir) : undefined;
  let kernel: Kernel | undefined;
  let client: SchedulerClient | undefined;
  const cleanups: (() => void)[] = [];
  try {
    const identity = await identityFrom(webCryptoDriver(), await generateKeyPair(false));
    const drivers = realDrivers({ nic: noNetwork, kind: 'node', capacity: 1, console: { write: () => {} } });
    const inProcess = new InProcessExecution(1, {
      // Every process (its children too) sees the same host directories, and nothing else.
      namespace: () => {
        const ns = new Namespace();
        for (const m of mounts) ns.mount(m.guest, m.fs);
        return ns;
      },
    });
    kernel = await bootKernel({
      identity,
      token: newClusterToken(drivers.random.bytes),
      drivers,
      exec: cache ? withCache(inProcess, cache) : inProcess,
      // Programs it spawns by name: the repo's programs/build, as on a Node peer.
      programs: filePrograms(),
    });
    kernel.start();
    client = new SchedulerClient(kernel, 'cli');

    const interrupted = new Promise<'interrupted'>((resolve) => {
      const signal = opts.signal;
      if (!signal) return;
      const onAbort = () => resolve('interrupted');
      signal.addEventListener('abort', onAbort, { once: true });
      cleanups.push(() => signal.removeEventListener('abort', onAbort));
    });
    const started = client.run(programName(opts.file), opts.args, {
      module,
      env: opts.env ?? {},
      interactive: !!opts.stdin,
      onOutput: (fd, data) => {
        // Backpressure: a full stream (write() === false) is taken once it drains.
        const stream = fd === 1 ? opts.stdout : opts.stderr;
        const full = stream.write(data) === false;
        const events = stream as { once?: (event: 'drain', fn: () => void) => unknown };
        return full && typeof events.once === 'function' ? new Promise<void>((resolve) => events.once!('drain', resolve)) : undefined;
      },
    });
    const first = await Promise.race([started, interrupted]);
    if (first === 'interrupted') {
      // Not started yet: stopping the kernel (below) kills whatever it started.
      started.catch(() => {});
      return interruptCode();
    }
    const handle = first;

    if (opts.stdin) {
      const stdin = opts.stdin;
      const c = client;
      const encoder = new TextEncoder();
      const onData = (chunk: Uint8Array | string) => c.stdin(handle.pid, typeof chunk === 'string' ? encoder.encode(chunk) : new Uint8Array(chunk));
      const onEnd = () => c.stdinEnd(handle.pid);
      stdin.on('data', onData);
      stdin.on('end', onEnd);
      stdin.on('error', onEnd);
      cleanups.push(() => {
        stdin.off('data', onData);
        stdin.off('end', onEnd);
        stdin.off('error', onEnd);
        stdin.pause();
      });
    }

    const ended = await Promise.race([handle.exit, interrupted]);
    if (ended === 'interrupted') {
      await client.kill(handle.pid).catch(() => {});
      return interruptCode();
    }
    // Why it ended, when it did not simply exit: cannot start (1), trapped (134), killed (137),
    // bad pointer (139).
    if (ended.code !== 0 && ended.message !== undefined) opts.stderr.write(line(`${opts.file}: ${ended.message}`));
    return shellCode(ended.code);
  } catch (err) {
    return fail(`${opts.file}: ${errorText(err)}`);
  } finally {
    for (const c of cleanups) c();
    client?.close();
    kernel?.stop('the program ended');
    await cache?.flush();
  }
}
