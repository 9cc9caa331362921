// Processes benchmark (issue "Processes"), each measurement next to its baseline in one run:
//   runtime   the same CPU-bound C program (programs/c/cpubench.c) under Node's own node:wasi and
//             under our runtime (InProcessExecution: the Executor, Asyncify-rewritten module,
//             10 ms slices, our WASI) in this Node process; the one-time rewrite timed apart;
//   syscalls  a cheap WASI call (clock_time_get) per call under node:wasi, our runtime in Node and
//             a tab's execution worker; an `lshapes` cluster_info (execution worker → kernel
//             worker's Scheduler → back) per call in a tab, as measured inside the process
//             (programs/c/bench_calls.c);
//   spawn     `hello` from run() to its exit on the tab's own peer and on another tab, cold
//             (first start in that tab: fetch, Binaryen rewrite, compile) and warm (median);
//   primes    `primes LIMIT 2` (programs/as/primes.ts, which cuts [2, LIMIT) into parts of about
//             equal work) with one execution worker in the whole cluster (both parts time-sliced
//             on it) vs two tabs of one worker each vs one tab with two workers; and how even
//             its split was, from the parts' CPU times.
// Numbers only: nothing here asserts a timing. Wrong program output is an error.
import type { Page } from '@playwright/test';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WASI } from 'node:wasi';
import { InProcessExecution } from '../src/kernel/process/in-process.ts';
import type { FromExecutor } from '../src/kernel/process/protocol.ts';
import { loadBinaryen, rewriteModule } from '../src/kernel/wasm/rewrite.ts';
import { lab, median, type Lab } from './browser.ts';

const BUILD = fileURLToPath(new URL('../programs/build/', import.meta.url));
/** What the executor caps a process's memory at; the rewrite bakes it in. */
const MAX_MEMORY = 512 << 20;

/** cpubench rounds: ~1.3 s natively-in-wasm on this machine. */
const CPU_ROUNDS = 40;
const CPU_RUNS = 5;
const CLOCK_CALLS = 2_000_000;
const INFO_CALLS = 2_000;
const SPAWN_WARM = 20;
/** `primes LIMIT 2` with both parts on one worker takes ~5 s here. */
const PRIMES_LIMIT = 20_000_000;
const PRIMES_RUNS = 3;

function wasmOf(name: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(readFileSync(path.join(BUILD, `${name}.wasm`)));
}

// ───────────────────────────── Node: node:wasi vs our runtime ─────────────────────────────

/** `lshapes` imports for node:wasi, which has none: every call fails with ENOSYS (52). */
function lshapesStubs(module: WebAssembly.Module): WebAssembly.Imports {
  const fns: Record<string, () => number> = {};
  for (const i of WebAssembly.Module.imports(module)) if (i.module === 'lshapes') fns[i.name] = () => 52;
  return Object.keys(fns).length ? { lshapes: fns } : {};
}

/**
 * node:wasi instances, and the descriptors their stdout went to, kept until the process ends.
 * Closing such a descriptor (or letting the instance be collected) crashed Node 20 with a
 * segfault in about half the runs, a few runs later; kept alive, never.
 */
const keptAlive: unknown[] = [];

/** Runs a command under node:wasi: instantiate + _start timed, stdout captured through a file. */
async function nodeWasi(module: WebAssembly.Module, args: string[]): Promise<{ ms: number; code: number; stdout: string }> {
  const file = path.join(scratchDir(), `stdout-${keptAlive.length}`);
  const fd = openSync(file, 'w');
  const t0 = performance.now();
  const wasi = new WASI({ version: 'preview1', args, env: {}, stdout: fd, returnOnExit: true });
  const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: wasi.wasiImport, ...lshapesStubs(module) });
  const code = wasi.start(instance);
  const ms = performance.now() - t0;
  keptAlive.push(wasi, instance, fd);
  return { ms, code, stdout: readFileSync(file, 'utf8') };
}

let scratch: string | undefined;
function scratchDir(): string {
  scratch ??= mkdtempSync(path.join(tmpdir(), 'lshapes-bench-'));
  return scratch;
}

/**
 * Runs a command in our runtime as a peer does: one Executor (InProcessExecution), given the
 * already rewritten bytes as the Scheduler does after a program's first start. Timed from the
 * `start` message to the `exit` message.
 */
function ourRuntime(exec: InProcessExecution, rewritten: { hash: string; bytes: Uint8Array }, name: string, args: string[]) {
  return new Promise<{ ms: number; code: number; stdout: string; cpuMs: number }>((resolve, reject) => {
    const pid = `b0b0b0.${++nextPid}`;
    let stdout = '';
    let stderr = '';
    const dec = new TextDecoder();
    listeners.set(pid, (msg) => {
      if (msg.t === 'out') {
        if (msg.fd === 1) stdout += dec.decode(msg.data, { stream: true });
        else stderr += dec.decode(msg.data);
      } else if (msg.t === 'call') {
        reject(new Error(`${name} made an lshapes call (${msg.req.op}); the Node runtime bench has no Scheduler`));
      } else if (msg.t === 'exit') {
        listeners.delete(pid);
        const ms = performance.now() - t0;
        if (msg.message !== undefined) reject(new Error(`${name} ended with ${msg.code}: ${msg.message}\n${stderr}`));
        else resolve({ ms, code: msg.code, stdout, cpuMs: msg.cpuMs });
      }
    });
    const t0 = performance.now();
    exec.post(0, {
      t: 'start',
      spec: { pid, peer: '0'.repeat(32), name, hash: rewritten.hash, rewritten: rewritten.bytes, args: [name, ...args], env: {}, hasParent: false, interactiveStdin: false },
    });
  });
}

let nextPid = 0;
const listeners = new Map<string, (msg: FromExecutor) => void>();

function newExecution(): InProcessExecution {
  // The executor's defaults, as in a peer: 10 ms slices, a setImmediate between two slices.
  const exec = new InProcessExecution(1, { sliceMs: 10, maxMemoryBytes: MAX_MEMORY });
  exec.attach((_i, msg) => {
    if ('pid' in msg) listeners.get(msg.pid)?.(msg);
  });
  return exec;
}

export interface RuntimeResult {
  program: string;
  nodeWasiMs: number;
  runtimeMs: number;
  ratio: number;
  /** The Binaryen rewrite of this program (once per peer; Binaryen already loaded). */
  rewriteMs: number;
  runs: number;
  /** Every run, in order (node:wasi and ours alternate). */
  nodeWasiRunsMs: number[];
  runtimeRunsMs: number[];
  outputsEqual: boolean;
  output: string;
  clockNodeWasiNs: number;
  clockRuntimeNs: number;
  clockRatio: number;
}

/** "… N ns, X ns/call …" printed by bench_calls. */
function perCallNs(stdout: string): number {
  const m = /([\d.]+) ns\/call/.exec(stdout);
  if (!m) throw new Error(`bench_calls printed no per-call time: ${JSON.stringify(stdout)}`);
  return Number(m[1]);
}

export async function runRuntimeBench(): Promise<RuntimeResult> {
  const cpu = wasmOf('cpubench');
  const calls = wasmOf('bench_calls');
  const cpuModule = await WebAssembly.compile(cpu);
  const callsModule = await WebAssembly.compile(calls);

  await loadBinaryen(); // not timed: under tsx (which transforms node_modules) it takes seconds
  const t = performance.now();
  const rewritten = await rewriteModule(cpu, { maxMemoryBytes: MAX_MEMORY, cache: false });
  const rewriteMs = performance.now() - t;
  const callsRewritten = await rewriteModule(calls, { maxMemoryBytes: MAX_MEMORY, cache: false });

  const exec = newExecution();
  const cpuArgs = [String(CPU_ROUNDS)];
  const nodeMs: number[] = [];
  const ourMs: number[] = [];
  const outputs = new Set<string>();
  // Alternate so that neither gets the machine's quieter moments; the first of each warms V8's
  // tiers (Liftoff, then TurboFan), the median drops it.
  for (let i = 0; i < CPU_RUNS; i++) {
    const a = await nodeWasi(cpuModule, ['cpubench', ...cpuArgs]);
    const b = await ourRuntime(exec, rewritten, 'cpubench', cpuArgs);
    if (a.code !== 0 || b.code !== 0) throw new Error(`cpubench exited with ${a.code} (node:wasi) / ${b.code} (runtime)`);
    nodeMs.push(a.ms);
    ourMs.push(b.ms);
    outputs.add(a.stdout).add(b.stdout);
  }
  const clockNode: number[] = [];
  const clockOurs: number[] = [];
  for (let i = 0; i < 3; i++) {
    clockNode.push(perCallNs((await nodeWasi(callsModule, ['bench_calls', 'clock', String(CLOCK_CALLS)])).stdout));
    clockOurs.push(perCallNs((await ourRuntime(exec, callsRewritten, 'bench_calls', ['clock', String(CLOCK_CALLS)])).stdout));
  }
  rmSync(scratchDir(), { recursive: true, force: true }); // the open descriptors stay valid
  const n = median(nodeMs);
  const r = median(ourMs);
  const cn = median(clockNode);
  const cr = median(clockOurs);
  return {
    program: `cpubench ${CPU_ROUNDS}`,
    nodeWasiMs: n,
    runtimeMs: r,
    ratio: r / n,
    rewriteMs,
    runs: CPU_RUNS,
    nodeWasiRunsMs: nodeMs.map(Math.round),
    runtimeRunsMs: ourMs.map(Math.round),
    outputsEqual: outputs.size === 1,
    output: [...outputs].join(' | ').trim(),
    clockNodeWasiNs: cn,
    clockRuntimeNs: cr,
    clockRatio: cr / cn,
  };
}

// ───────────────────────────── tabs ─────────────────────────────

interface RunResult {
  ms: number;
  pid: string;
  code?: number;
  message?: string;
  lost?: string;
  stdout: string;
  stderr: string;
}

type ShellGlobal = { lshapes: { peerId: string; shell: { run(n: string, a: string[], o: { on?: string }): Promise<Omit<RunResult, 'ms'>> } } };

/** Runs a program from the tab's shell API; ms from run() to its exit (all output in). */
async function run(page: Page, name: string, args: string[], on?: string): Promise<RunResult> {
  const r = await page.evaluate(
    async ({ name, args, on }) => {
      const t0 = performance.now();
      const res = await (globalThis as unknown as ShellGlobal).lshapes.shell.run(name, args, on ? { on } : {});
      return { ms: performance.now() - t0, ...res };
    },
    { name, args, on },
  );
  if (r.code !== 0) throw new Error(`${name} ${args.join(' ')} ended with ${r.code ?? `lost: ${r.lost}`}${r.message ? `: ${r.message}` : ''}\n${r.stderr}`);
  return r;
}

/** Opens `n` tabs of one new cluster with `?workers=W` and waits until each sees them all. */
async function cluster(l: Lab, n: number, workers?: number): Promise<{ pages: Page[]; ids: string[] }> {
  const q = workers === undefined ? '/' : `/?workers=${workers}`;
  const first = await l.tab(q);
  const hash = new URL(first.page.url()).hash;
  const tabs = [first];
  for (let i = 1; i < n; i++) tabs.push(await l.tab(q + hash));
  const pages = tabs.map((t) => t.page);
  // Every Scheduler knows every peer and its capacity: cluster_info says so from inside a process.
  const slots = tabs.length * (workers ?? 0);
  for (const p of pages) {
    for (let tries = 0; ; tries++) {
      const out = (await run(p, 'bench_calls', ['info', '1'])).stdout;
      const m = /peers (\d+), slots (\d+)/.exec(out);
      if (m && Number(m[1]) === n && (workers === undefined || Number(m[2]) === slots)) break;
      if (tries > 150) throw new Error(`the tabs did not see each other: ${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { pages, ids: tabs.map((t) => t.id) };
}

async function closeAll(pages: Page[]): Promise<void> {
  for (const p of pages) await p.context().close();
}

export interface SyscallTabResult {
  clockTabNs: number;
  infoTabUs: number;
  infoCalls: number;
}

export interface SpawnResult {
  localColdMs: number;
  localWarmMs: number;
  remoteColdMs: number;
  remoteWarmMs: number;
  warmRuns: number;
}

async function measureSpawn(l: Lab): Promise<{ spawn: SpawnResult; syscalls: SyscallTabResult }> {
  // No `bench_calls` before the cold starts: it would load Binaryen in the executors. The
  // peers panel tells when the two tabs see each other.
  const a = await l.tab('/');
  const hash = new URL(a.page.url()).hash;
  const b = await l.tab(`/${hash}`);
  for (const t of [a, b]) {
    await t.page.waitForFunction(() => document.querySelectorAll('table[aria-label="Peers"] tbody tr').length === 2, undefined, { timeout: 30_000 });
  }
  const hello = async (on: string) => {
    const r = await run(a.page, 'hello', [], on);
    if (!r.stdout.startsWith('hello, world')) throw new Error(`hello printed ${JSON.stringify(r.stdout)}`);
    return r.ms;
  };
  const localColdMs = await hello(a.id);
  const remoteColdMs = await hello(b.id);
  const local: number[] = [];
  const remote: number[] = [];
  for (let i = 0; i < SPAWN_WARM; i++) {
    local.push(await hello(a.id));
    remote.push(await hello(b.id));
  }
  const spawn = { localColdMs, localWarmMs: median(local), remoteColdMs, remoteWarmMs: median(remote), warmRuns: SPAWN_WARM };

  // Calls from inside a process in tab A (its execution worker; cluster_info → A's Scheduler in
  // the kernel worker and back). A short run first: rewrite and JIT out of the way.
  await run(a.page, 'bench_calls', ['info', '50'], a.id);
  await run(a.page, 'bench_calls', ['clock', '1000'], a.id);
  const info: number[] = [];
  const clock: number[] = [];
  for (let i = 0; i < 3; i++) {
    info.push(perCallNs((await run(a.page, 'bench_calls', ['info', String(INFO_CALLS)], a.id)).stdout));
    clock.push(perCallNs((await run(a.page, 'bench_calls', ['clock', String(CLOCK_CALLS)], a.id)).stdout));
  }
  await closeAll([a.page, b.page]);
  return { spawn, syscalls: { clockTabNs: median(clock), infoTabUs: median(info) / 1000, infoCalls: INFO_CALLS } };
}

/** The prime counter in the three set-ups (times: median of PRIMES_RUNS, ms from run() to exit). */
export interface PrimesProgramResult {
  program: string;
  baselineMs: number;
  twoTabsMs: number;
  twoWorkersMs: number;
  twoTabsSpeedup: number;
  twoWorkersSpeedup: number;
  /** In every two-tab run the two parts ran on different tabs (their `part … on PEER` lines). */
  twoTabsSpread: boolean;
  /**
   * The best speedup two workers can give this split: (both parts' CPU) / (the bigger part's
   * CPU), from the processes' CPU times in the baseline runs (process table).
   */
  splitBound: number;
  /** Every timed run, for the record. */
  runsMs: Record<string, number[]>;
}

export interface PrimesResult {
  limit: number;
  /** Primes below LIMIT (a sieve in Node); every run printed it. */
  expected: number;
  runs: number;
  /** `primes LIMIT 2`: two ranges of about equal work (trial division costs more higher up). */
  primes: PrimesProgramResult;
}

/** π(n-1): the primes below n, by a sieve. */
function primesBelow(n: number): number {
  const composite = new Uint8Array(n);
  let count = 0;
  for (let i = 2; i < n; i++) {
    if (composite[i]) continue;
    count++;
    for (let j = i * i; j < n; j += i) composite[j] = 1;
  }
  return count;
}

type PsRow = { pid: string; name: string; args: string[]; peer: string; cpuMs: number; parent?: string };

/** Runs `program LIMIT 2`, checks the total; where its parts ran (8-hex peer prefixes). */
async function countPrimes(page: Page, program: string, limit: number, expected: number): Promise<{ ms: number; peers: string[]; pid: string }> {
  const r = await run(page, program, [String(limit), '2']);
  const total = /primes below (\d+): (\d+)/.exec(r.stdout);
  if (!total || Number(total[1]) !== limit || Number(total[2]) !== expected) {
    throw new Error(`${program} ${limit} 2 printed ${JSON.stringify(r.stdout)}, not the total ${expected}`);
  }
  const peers = [...r.stdout.matchAll(/part \S+ on ([0-9a-f]{8})/g)].map((m) => m[1]!);
  if (peers.length !== 2) throw new Error(`${program} printed ${peers.length} part lines, not 2: ${JSON.stringify(r.stdout)}`);
  return { ms: r.ms, peers, pid: r.pid };
}

/**
 * Waits until the cluster has looked idle from the tab for 1.5 s (three gossip rounds): no live
 * process in the process table it knows and no load in its view. Loads and tables travel by
 * gossip, so right after a run the peer that ran a part may still look busy (or its news that it
 * was busy may still be on the way), and the Scheduler would keep the next run's child at home.
 */
async function settle(page: Page): Promise<void> {
  const idle = () =>
    page.evaluate(async () => {
      const rows = await (globalThis as unknown as { lshapes: { shell: { ps(): Promise<{ state: string }[]> } } }).lshapes.shell.ps();
      if (rows.some((r) => r.state !== 'EXITED')) return false;
      return [...document.querySelectorAll('table[aria-label="Peers"] tbody tr td:nth-child(3)')].every((td) => td.textContent === '0');
    });
  const t0 = Date.now();
  let since = Date.now();
  while (Date.now() - since < 1500) {
    if (Date.now() - t0 > 20_000) throw new Error('the cluster did not become idle in 20 s');
    await new Promise((r) => setTimeout(r, 100));
    if (!(await idle())) since = Date.now();
  }
}

/** CPU milliseconds of the parent `pid` and of its child, from the process table. */
async function partsCpu(page: Page, pid: string): Promise<number[]> {
  const rows = (await page.evaluate(() => (globalThis as unknown as { lshapes: { shell: { ps(): Promise<PsRow[]> } } }).lshapes.shell.ps())) as PsRow[];
  return rows.filter((r) => r.pid === pid || r.parent === pid).map((r) => r.cpuMs);
}

export async function measurePrimes(l: Lab): Promise<PrimesResult> {
  const limit = PRIMES_LIMIT;
  const expected = primesBelow(limit);
  const warm = primesBelow(20_000);
  // The three set-ups, each its own cluster, all open at once: their runs alternate, so that
  // none gets the machine's quieter moments. Each runs from its first tab.
  const setups = {
    baseline: (await cluster(l, 1, 1)).pages,
    twoTabs: (await cluster(l, 2, 1)).pages,
    twoWorkers: (await cluster(l, 1, 2)).pages,
  };
  type Name = keyof typeof setups;
  const names = Object.keys(setups) as Name[];
  const program = 'primes';
  const ms = new Map<Name, number[]>(names.map((n) => [n, []]));
  const bounds: number[] = [];
  let spread = true;
  // A small run first: the rewrite, wherever the parts go, stays out of the timings.
  for (const setup of names) {
    await settle(setups[setup][0]!);
    await countPrimes(setups[setup][0]!, program, 20_000, warm);
  }
  for (let i = 0; i < PRIMES_RUNS; i++) {
    for (const setup of names) {
      const page = setups[setup][0]!;
      await settle(page);
      const r = await countPrimes(page, program, limit, expected);
      ms.get(setup)!.push(r.ms);
      if (setup === 'twoTabs' && new Set(r.peers).size !== 2) spread = false;
      if (setup === 'baseline') {
        const cpu = await partsCpu(page, r.pid);
        if (cpu.length === 2) bounds.push((cpu[0]! + cpu[1]!) / Math.max(cpu[0]!, cpu[1]!));
      }
    }
  }
  for (const pages of Object.values(setups)) await closeAll(pages);
  const t = (setup: Name) => median(ms.get(setup)!);
  const primes: PrimesProgramResult = {
    program: `${program} ${limit} 2`,
    baselineMs: t('baseline'),
    twoTabsMs: t('twoTabs'),
    twoWorkersMs: t('twoWorkers'),
    twoTabsSpeedup: t('baseline') / t('twoTabs'),
    twoWorkersSpeedup: t('baseline') / t('twoWorkers'),
    twoTabsSpread: spread,
    splitBound: bounds.length ? median(bounds) : NaN,
    runsMs: Object.fromEntries(names.map((n) => [n, ms.get(n)!.map((x) => Math.round(x))])),
  };
  return { limit, expected, runs: PRIMES_RUNS, primes };
}

export interface ProcessesResult {
  runtime: RuntimeResult;
  syscalls: SyscallTabResult;
  spawn: SpawnResult;
  primes: PrimesResult;
}

/**
 * runRuntimeBench in a fresh Node process (`tsx bench/processes.ts runtime`): both runtimes start
 * from the same clean V8 heap, undisturbed by the browser benchmarks' heap and sockets; and
 * should node:wasi still segfault (see keptAlive), it costs a retry, not the whole bench.
 */
function runtimeBenchInChild(): RuntimeResult {
  const tsx = fileURLToPath(new URL('../node_modules/tsx/dist/cli.mjs', import.meta.url));
  const problems: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const res = spawnSync(process.execPath, [tsx, fileURLToPath(import.meta.url), 'runtime'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (res.status === 0) return JSON.parse(res.stdout) as RuntimeResult;
    problems.push(`exit ${res.status ?? res.signal}: ${res.stderr.split('\n').filter((l) => l && !/ExperimentalWarning|trace-warnings/.test(l)).slice(-3).join(' / ')}`);
  }
  throw new Error(`the runtime benchmark failed three times:\n${problems.join('\n')}`);
}

export async function runProcessesBench(): Promise<ProcessesResult> {
  const runtime = runtimeBenchInChild();
  const l = await lab();
  try {
    const { spawn, syscalls } = await measureSpawn(l);
    const primes = await measurePrimes(l);
    return { runtime, syscalls, spawn, primes };
  } finally {
    await l.close();
  }
}

// `tsx bench/processes.ts` runs this part alone and prints the JSON.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const what = process.argv[2];
  const out =
    what === 'runtime' ? await runRuntimeBench() : what === 'primes' ? await (async () => { const l = await lab(); try { return await measurePrimes(l); } finally { await l.close(); } })() : await runProcessesBench();
  console.log(JSON.stringify(out, null, 2));
}
