// `npm run bench`: measures, prints the tables, writes bench/results/latest.json and puts the
// tables into README.md between the bench markers. Numbers, never assertions.
//
// `BENCH_ONLY=files` (or a comma-separated list of cluster, sim, processes, files) runs only
// those sections and prints their tables, writing nothing: for working on one benchmark
// (build first: `npx vite build && BENCH_ONLY=files npx tsx bench/run.ts`).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { runClusterBench } from './cluster.ts';
import { runFilesBench, type FilesResult } from './files.ts';
import { runProcessesBench } from './processes.ts';
import { runSimBench } from './sim.ts';

const f = (x: number, d = 2) => x.toFixed(d);

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

const cluster = await runClusterBench();
const [t, b] = cluster.planes as [(typeof cluster.planes)[0], (typeof cluster.planes)[0]];
const clusterTable = table([
  ['between two tabs', 'transfer (channel in worker)', 'bridge (via main thread)', 'target'],
  ['raw data channel RTT, 64 B (mean ms)', f(t.rawRttMs, 3), f(b.rawRttMs, 3), ''],
  ['kernel port→port RTT, 64 B (mean ms)', f(t.kernelRttMs, 3), f(b.kernelRttMs, 3), ''],
  ['kernel / raw RTT', `${f(t.rttRatio)}×`, `${f(b.rttRatio)}×`, '≤ 1.5×'],
  ['kernel RTT p99 (ms)', f(t.kernelRttP99Ms, 1), f(b.kernelRttP99Ms, 1), ''],
  ['raw msgs/s, 64 B', f(t.rawMsgsPerS, 0), f(b.rawMsgsPerS, 0), ''],
  ['kernel msgs/s, 64 B', f(t.kernelMsgsPerS, 0), f(b.kernelMsgsPerS, 0), ''],
  ['raw MiB/s, 256 KiB messages', f(t.rawMiBps, 1), f(b.rawMiBps, 1), ''],
  ['kernel MiB/s, 256 KiB messages', f(t.kernelMiBps, 1), f(b.kernelMiBps, 1), ''],
]);
const membershipTable = table([
  ['membership', 'value', 'target'],
  ['4 tabs: closed tab gone from the others (ms)', String(cluster.detection.closedMs), '≤ 5000'],
  ['4 tabs: crashed tab gone from the others (ms)', String(cluster.detection.crashedMs), '≤ 5000'],
]);
const sim = await runSimBench(200);
const simTable = table([
  ['simulator, 200 peers (sparse mesh, 8 dials each, 20±15 ms links)', 'value'],
  ['joins → every view exact (virtual ms)', String(sim.joinConvergeVirtualMs)],
  ['20 crashes → every view exact (virtual ms)', String(sim.crashDetectVirtualMs)],
  ['wall ms per simulated second', f(sim.wallMsPerVirtualS, 0)],
  ['trace lines; replay from the same seed identical', `${sim.traceLines}; ${sim.replayIdentical ? 'yes' : 'NO'}`],
]);

const proc = await runProcessesBench();
const { runtime: rt, syscalls: sc, spawn: sp, primes: pr } = proc;
const runtimeTable = table([
  ['processes: the same program, in Node', 'node:wasi', 'LSHAPES runtime', 'runtime / node:wasi', 'target'],
  [`\`${rt.program}\` (ms, median of ${rt.runs}; outputs equal: ${rt.outputsEqual ? 'yes' : 'NO'})`, f(rt.nodeWasiMs, 0), f(rt.runtimeMs, 0), `${f(rt.ratio)}×`, '≤ 1.2×'],
  ['its Binaryen rewrite, once per peer (ms)', '', f(rt.rewriteMs, 0), '', ''],
  ['WASI clock_time_get, per call (ns)', f(rt.clockNodeWasiNs, 1), f(rt.clockRuntimeNs, 1), `${f(rt.clockRatio, 1)}×`, ''],
]);
const callsTable = table([
  ['processes: calls from a process in a tab (timed inside it)', 'per call'],
  ['WASI clock_time_get (ns)', f(sc.clockTabNs, 0)],
  [`lshapes cluster_info: execution worker → Scheduler → back (µs, ${sc.infoCalls} calls)`, f(sc.infoTabUs, 1)],
]);
const spawnTable = table([
  ['processes: `hello` from run() to its exit (ms)', 'on its own tab', 'on the other tab'],
  ['cold: the first in that tab (fetch, Binaryen, rewrite)', f(sp.localColdMs, 0), f(sp.remoteColdMs, 0)],
  [`warm: median of ${sp.warmRuns}`, f(sp.localWarmMs, 1), f(sp.remoteWarmMs, 1)],
]);
const primesRow = (p: typeof pr.primes, what: string) => [
  `\`${p.program.replace(String(pr.limit), 'N')}\` ${what}`,
  f(p.baselineMs, 0),
  `${f(p.twoTabsMs, 0)} (${f(p.twoTabsSpeedup)}×)${p.twoTabsSpread ? '' : ' NOT SPREAD'}`,
  `${f(p.twoWorkersMs, 0)} (${f(p.twoWorkersSpeedup)}×)`,
  `${f(p.splitBound)}×`,
  '≥ 1.8×',
];
const primesTable = table([
  [`processes: primes below N = ${pr.limit / 1e6}M, 2 parts (ms, median of ${pr.runs})`, '1 worker in the cluster', '2 tabs × 1 worker', '1 tab × 2 workers', 'best for the split', 'target'],
  primesRow(pr.primes, '(ranges of equal work)'),
]);

const all = [clusterTable, membershipTable, simTable, runtimeTable, callsTable, spawnTable, primesTable].join('\n\n');
console.log(all);

await mkdir(new URL('./results/', import.meta.url), { recursive: true });
const machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version };
await writeFile(new URL('./results/latest.json', import.meta.url), JSON.stringify({ date: new Date().toISOString(), machine, cluster, sim, processes: proc }, null, 2));
const readmeUrl = new URL('../README.md', import.meta.url);
const readme = await readFile(readmeUrl, 'utf8');
const marked = readme.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, `<!-- bench:start -->\n${all}\n<!-- bench:end -->`);
if (marked !== readme) await writeFile(readmeUrl, marked);
console.log('\nwrote bench/results/latest.json and the README tables');
