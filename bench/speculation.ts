// Fork On Wait benchmark (issue "Dispatcher and Fork On Wait"), each figure next to its baseline:
//   fork      what a fork costs for threads of 128 KiB, 1 MiB and 16 MiB of linear memory
//             (programs/c/memhog.c): taking the twin (WasmThread.snapshot(): memory, globals,
//             Asyncify stack, host state) and resuming a twin (WasmThread.restore()), median of
//             several; the encoded size for scale;
//   journal   programs/c/journal.c — a writer that computes between records and waits for a
//             replica process on another peer to acknowledge each one (lshapes call, reply "ok")
//             — on a two-kernel real-time cluster (bench/realtime.ts: real kernels, executors in
//             worker threads, a link with an injected round trip of 1, 10 and 30 ms), with
//             speculation off and on; 'wrong': on, with replies that change so that every
//             prediction the predictor makes is wrong (`journal -c RUN`, next to its own 'off'
//             baseline 'wrong-off': the predictor must probe and bench the site; the issue asks ≥ 0.95×
//             of off); and 'mispredict', the always-fork test mode (every wait forks on a wrong value,
//             the predictor bypassed: the cost of rollbacks, not a use case); output checked
//             identical; each time is the median of 3 rounds (7 at 1 ms) that run every mode
//             in turn (every other one backwards).
// Numbers only: nothing here asserts a timing. Wrong program output is an error.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Wasi } from '../src/kernel/wasi/preview1.ts';
import { CollectOutput } from '../src/kernel/wasi/streams.ts';
import { rewriteModule } from '../src/kernel/wasm/rewrite.ts';
import { encodeSnapshot } from '../src/kernel/wasm/snapshot.ts';
import { WasmThread } from '../src/kernel/wasm/thread.ts';
import { median } from './browser.ts';
import { realtimeCluster, type RealtimeCluster } from './realtime.ts';
import { SchedulerClient } from '../src/host/common/scheduler-client.ts';
import type { SpeculationMode, SpeculationStats } from '../src/kernel/process/protocol.ts';
import { DEFAULT_THRESHOLD } from '../src/kernel/speculation/predictor.ts';

const BUILD = fileURLToPath(new URL('../programs/build/', import.meta.url));
const FORKS = 15;

export interface ForkRow {
  /** What was asked for (KiB of heap memhog fills). */
  heapKiB: number;
  /** The thread's linear memory when forked. */
  memoryBytes: number;
  snapshotMs: number;
  restoreMs: number;
  encodedBytes: number;
}

/** Fork cost by thread size: memhog run until its heap is filled, then snapshot/restore timed. */
export async function forkCost(): Promise<ForkRow[]> {
  const rewritten = await rewriteModule(readFileSync(BUILD + 'memhog.wasm'), { maxMemoryBytes: 512 << 20 });
  const rows: ForkRow[] = [];
  // 0 KiB of heap: the smallest C thread (wasi-libc's stack and data: 128 KiB of memory).
  for (const heapKiB of [0, 900, 16 * 1024 - 200]) {
    const hosts = () => [new Wasi({ args: ['memhog', String(heapKiB)], env: {}, stdout: new CollectOutput(), stderr: new CollectOutput() })];
    const t = await WasmThread.create(rewritten, hosts());
    // Until the first round was printed: the heap is allocated and filled.
    for (let i = 0; i < 2000; i++) {
      const r = t.run({ ms: 20 });
      if (r.state !== 'yielded') throw new Error(`memhog ${heapKiB} stopped: ${r.state}`);
      if (t.memory.buffer.byteLength >= heapKiB * 1024 && i > 3) break;
    }
    const snaps: number[] = [];
    const restores: number[] = [];
    let encodedBytes = 0;
    for (let i = 0; i < FORKS; i++) {
      const t0 = performance.now();
      const snap = t.snapshot();
      snaps.push(performance.now() - t0);
      const t1 = performance.now();
      await WasmThread.restore(rewritten, snap, hosts());
      restores.push(performance.now() - t1);
      if (i === 0) encodedBytes = encodeSnapshot(snap).length;
    }
    rows.push({ heapKiB, memoryBytes: t.memory.buffer.byteLength, snapshotMs: median(snaps), restoreMs: median(restores), encodedBytes });
  }
  return rows;
}

/**
 * A journal run: speculation off / on / 'mispredict' (the always-fork test mode) on plain "ok"
 * replies; 'wrong-off' / 'wrong': off / on with replies the predictor always gets wrong.
 */
export type JournalMode = 'off' | 'on' | 'mispredict' | 'wrong-off' | 'wrong';

const RUNS: readonly { mode: JournalMode; speculation: SpeculationMode; changing: boolean; base: JournalMode }[] = [
  { mode: 'off', speculation: 'off', changing: false, base: 'off' },
  { mode: 'on', speculation: 'on', changing: false, base: 'off' },
  { mode: 'mispredict', speculation: 'mispredict', changing: false, base: 'off' },
  { mode: 'wrong-off', speculation: 'off', changing: true, base: 'wrong-off' },
  { mode: 'wrong', speculation: 'on', changing: true, base: 'wrong-off' },
];

/**
 * Replies change every this many records: one more than the repeats the predictor needs, so it
 * predicts exactly when the run ends and is wrong every time.
 */
const WRONG_RUN = DEFAULT_THRESHOLD + 1;

export interface JournalRow {
  rttMs: number;
  mode: JournalMode;
  records: number;
  /** Median of its runs. */
  ms: number;
  /** Every run's time, in order (the rounds interleave the modes). */
  runs: number[];
  /** Its baseline's time / this mode's ('off' for off/on/mispredict, 'wrong-off' for wrong), medians. */
  speedup: number;
  /** The last run's counters. */
  spec: SpeculationStats | undefined;
}

/**
 * Rounds of all modes per round trip: a 2-core machine shared with other work swings a single
 * run by ±15 %, more than the few per cent the 'wrong' row is about.
 */
const ROUNDS = 3;
/**
 * At a 1 ms link a run takes about a second and one run swings by ±10 %, while 'wrong' costs
 * its five rollbacks, ~2 %: more rounds there (cheap, the runs are short) so the median says
 * which. (Three rounds gave 0.94×, 0.96×, 0.96× and 0.96× for the same code.)
 */
const roundsAt = (rttMs: number) => (rttMs <= 1 ? 7 : ROUNDS);

/** Records per run and compute rounds per record (WORK: ~0.25 ms of hashing per record, traced; its wait is ~3.5 ms at a 1 ms link). */
const RECORDS = 400;
const WORK = 6;

/** One journal run on a real-time cluster: its wall time (run → exit), output and last counters. */
export interface JournalRun {
  ms: number;
  out: string;
  spec: SpeculationStats | undefined;
}

/**
 * `journal [-c RUN] records WORK <B>` started from A's terminal on A, its replica on B, with
 * `mode`'s speculation and replies; a non-zero exit or anything on stderr is an error.
 */
export async function journalOnce(c: RealtimeCluster, client: SchedulerClient, mode: JournalMode | 'warm', records = RECORDS): Promise<JournalRun> {
  const run = RUNS.find((r) => r.mode === mode) ?? { mode, speculation: 'off', changing: false, base: 'off' };
  let out = '';
  let err = '';
  const t0 = performance.now();
  const args = [...(run.changing ? ['-c', String(WRONG_RUN)] : []), String(records), String(WORK), c.ids[1]!];
  const h = await client.run('journal', args, {
    on: c.ids[0]!,
    speculation: run.speculation,
    onOutput: (fd, d) => {
      if (fd === 1) out += new TextDecoder().decode(d);
      else err += new TextDecoder().decode(d);
    },
  });
  let spec: SpeculationStats | undefined;
  const poll = setInterval(() => {
    void client.ps().then((rows) => {
      const r = rows.find((x) => x.pid === h.pid);
      if (r?.speculation) spec = r.speculation;
    });
  }, 50);
  const e = await h.exit;
  const ms = performance.now() - t0;
  clearInterval(poll);
  if (e.code !== 0 || err) throw new Error(`journal (${mode}, ${args.join(' ')}) ended with ${e.code}: ${err}`);
  return { ms, out, spec };
}

/**
 * `journal RECORDS WORK <B>` started from A's terminal on A, its replica on B, the link between
 * them at `rttMs`: each mode's median wall time from run to exit over its rounds (roundsAt; each
 * round runs every mode once, every other round in reverse); the output must be the same in all.
 */
export async function journalBench(rtts: readonly number[] = [1, 10, 30], fixedRounds?: number): Promise<JournalRow[]> {
  const rows: JournalRow[] = [];
  for (const rttMs of rtts) {
    const rounds = fixedRounds ?? roundsAt(rttMs);
    const c = await realtimeCluster(2, { rttMs });
    try {
      const client = new SchedulerClient(c.kernels[0]!, 'bench-journal');
      let expected: string | undefined;
      const runs = new Map<JournalMode, number[]>();
      const last = new Map<JournalMode, SpeculationStats | undefined>();
      // A warm-up run per peer: the module's rewrite is paid once, not by the first mode.
      await journalOnce(c, client, 'warm', 10);
      for (let round = 0; round < rounds; round++) {
        // Every other round backwards: no mode always runs late in the cluster's life. (Later runs
        // were once 15–40 % slower, 'on' 3.5×: the emulated wire handed on views into the encoder's
        // buffer, ~6 MiB once a file block had been replicated, which every delivery then cloned.)
        for (const run of round % 2 ? [...RUNS].reverse() : RUNS) {
          const { ms, out, spec } = await journalOnce(c, client, run.mode);
          if (expected === undefined) expected = out;
          else if (out !== expected) throw new Error(`journal's output differs with speculation ${run.mode} at ${rttMs} ms`);
          runs.set(run.mode, [...(runs.get(run.mode) ?? []), ms]);
          last.set(run.mode, spec);
        }
      }
      for (const run of RUNS) {
        const ms = median(runs.get(run.mode)!);
        const base = median(runs.get(run.base)!);
        rows.push({ rttMs, mode: run.mode, records: RECORDS, ms, runs: runs.get(run.mode)!, speedup: base / ms, spec: last.get(run.mode) });
      }
    } finally {
      c.close();
    }
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv.includes('fork')) console.table(await forkCost());
  else console.table((await journalBench()).map((r) => ({ ...r, spec: JSON.stringify(r.spec) })));
  process.exit(0);
}
