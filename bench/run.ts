// `npm run bench`: measures, prints the tables, writes bench/results/latest.json and puts the
// tables into README.md between the bench markers. Numbers, never assertions.
//
// `BENCH_ONLY=files` (or a comma-separated list of cluster, sim, processes, files, dispatcher)
// runs only those sections and prints their tables, writing nothing: for working on one
// benchmark (build first: `npx vite build && BENCH_ONLY=files npx tsx bench/run.ts`). With
// `BENCH_MERGE=1` as well, their results replace those sections' in latest.json and their tables
// replace theirs in the README, the other sections' kept from the last run.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { runClusterBench } from './cluster.ts';
import { runFilesBench, type FilesResult } from './files.ts';
import { runProcessesBench } from './processes.ts';
import { runSimBench } from './sim.ts';
import { forkCost, journalBench, type JournalRow } from './speculation.ts';
import { migrationBench } from './migration.ts';

const f = (x: number, d = 2) => x.toFixed(d);

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

const only = process.env.BENCH_ONLY?.split(',').map((x) => x.trim()).filter(Boolean);
const SECTIONS = ['cluster', 'sim', 'processes', 'files', 'dispatcher'] as const;
for (const name of only ?? []) if (!(SECTIONS as readonly string[]).includes(name)) throw new Error(`BENCH_ONLY: no section ${name} (${SECTIONS.join(', ')})`);
const wanted = (name: (typeof SECTIONS)[number]) => only === undefined || only.includes(name);
const results: Record<string, unknown> = {};
const tables: string[] = [];

if (wanted('cluster')) {
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
  results.cluster = cluster;
  tables.push(clusterTable, membershipTable);
}

if (wanted('sim')) {
  const sim = await runSimBench(200);
  const simTable = table([
    ['simulator, 200 peers (sparse mesh, 8 dials each, 20±15 ms links)', 'value'],
    ['joins → every view exact (virtual ms)', String(sim.joinConvergeVirtualMs)],
    ['20 crashes → every view exact (virtual ms)', String(sim.crashDetectVirtualMs)],
    ['wall ms per simulated second', f(sim.wallMsPerVirtualS, 0)],
    ['trace lines; replay from the same seed identical', `${sim.traceLines}; ${sim.replayIdentical ? 'yes' : 'NO'}`],
  ]);
  results.sim = sim;
  tables.push(simTable);
}

if (wanted('processes')) {
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
  results.processes = proc;
  tables.push(runtimeTable, callsTable, spawnTable, primesTable);
}

if (wanted('files')) {
  const files = await runFilesBench();
  results.files = files;
  tables.push(filesTable(files));
}

if (wanted('dispatcher')) {
  // The journal first: forkCost leaves hundreds of MiB of garbage in this process, and a GC pause
  // on the thread running the kernels can stall their membership heartbeats.
  const journal = await journalBench();
  const fork = await forkCost();
  const migration = await migrationBench();
  results.dispatcher = { fork, journal, migration };
  const kib = (b: number) => (b >= 1 << 20 ? `${f(b / (1 << 20), 0)} MiB` : `${f(b / 1024, 0)} KiB`);
  const forkTable = table([
    ['Fork On Wait: a fork by thread size (ms, median)', ...fork.map((r) => kib(r.memoryBytes))],
    ['take the twin (WasmThread.snapshot)', ...fork.map((r) => f(r.snapshotMs, 2))],
    ['resume a twin (WasmThread.restore: a rollback)', ...fork.map((r) => f(r.restoreMs, 2))],
    ['  encoded, for scale (bytes)', ...fork.map((r) => String(r.encodedBytes))],
  ]);
  const byRtt = new Map<number, Map<string, JournalRow>>();
  for (const r of journal) byRtt.set(r.rttMs, (byRtt.get(r.rttMs) ?? new Map()).set(r.mode, r));
  const cell = (m: Map<string, JournalRow>, mode: string, base: string) => {
    const r = m.get(mode);
    const b = m.get(base);
    return r && b ? `${f(r.ms, 0)} (${f(b.ms / r.ms)}×)` : '';
  };
  const journalTable = table([
    [`Fork On Wait: \`journal ${journal[0]?.records ?? ''} …\`, its replica on another peer (ms; speedup vs off)`, 'off', 'on', 'target', 'every prediction wrong', 'target', 'always-mispredict test mode'],
    ...[...byRtt].map(([rtt, m]) => [
      `link round trip ${rtt} ms`,
      f(m.get('off')?.ms ?? 0, 0),
      cell(m, 'on', 'off'),
      rtt === 1 ? '> 2×' : rtt === 30 ? '> 14×' : '',
      cell(m, 'wrong', 'wrong-off'),
      '≥ 0.95×',
      cell(m, 'mispredict', 'off'),
    ]),
  ]);
  const migrationTable = table([
    ['Dispatcher: `migrate` of `memhog` between two tabs (ms, median)', ...migration.map((r) => kib(r.heapKiB * 1024))],
    ['frozen (downtime): freeze request → thawed on the other tab (median of the hops there and back)', ...migration.map((r) => (r.hops ? `${f(r.freezeMs, 0)} (${r.hops} hops)` : '—'))],
    ['  of it: snapshot / delta packed / shipped and checked / go → running', ...migration.map((r) => (r.hops ? [r.phases.freeze, r.phases.pack, r.phases.check, r.phases.thaw].map((x) => f(x, 0)).join(' / ') : '—'))],
    ['shipped while frozen (KiB; the delta against the pre-copied base)', ...migration.map((r) => (r.hops ? String(r.frozenKiB) : '—'))],
    ['first hop, downtime (for 900 KiB, the first run of memhog on that tab)', ...migration.map((r) => (r.hops ? f(r.firstMs, 0) : '—'))],
    ['pre-copy before the freeze (the process runs on)', ...migration.map((r) => (r.hops ? f(r.precopyMs, 0) : '—'))],
    ['the whole `migrate` call (pre-copy included)', ...migration.map((r) => (r.hops ? f(r.callMs, 0) : '—'))],
    ['failed', ...migration.map((r) => r.error ?? 'no')],
    ['anchor: Xen live migration downtime', '60', ''],
  ]);
  tables.push(forkTable, journalTable, migrationTable);
}

const all = tables.join('\n\n');
console.log(all);

if (only !== undefined && process.env.BENCH_MERGE) {
  const latestUrl = new URL('./results/latest.json', import.meta.url);
  const old = JSON.parse(await readFile(latestUrl, 'utf8')) as Record<string, unknown>;
  await writeFile(latestUrl, JSON.stringify({ ...old, ...results, [`${only.join('+')}Date`]: new Date().toISOString() }, null, 2));
  const readmeUrl = new URL('../README.md', import.meta.url);
  const readme = await readFile(readmeUrl, 'utf8');
  // The block's tables, those of the sections re-run replaced (a table is known by its first cell).
  const block = /<!-- bench:start -->\n([\s\S]*?)\n<!-- bench:end -->/.exec(readme)?.[1] ?? '';
  const firstCell = (t: string) => t.split('|')[1]?.trim().split(':')[0] ?? '';
  const fresh = new Set(tables.map(firstCell));
  const kept = block.split('\n\n').filter((t) => t.trim() && !fresh.has(firstCell(t)));
  await writeFile(readmeUrl, readme.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, `<!-- bench:start -->\n${[...kept, ...tables].join('\n\n')}\n<!-- bench:end -->`));
  console.log(`\nmerged ${only.join(', ')} into bench/results/latest.json and the README tables`);
} else if (only !== undefined) {
  console.log(`\nBENCH_ONLY=${only.join(',')}: printed only; latest.json and README untouched`);
} else {
  await mkdir(new URL('./results/', import.meta.url), { recursive: true });
  const machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version };
  await writeFile(new URL('./results/latest.json', import.meta.url), JSON.stringify({ date: new Date().toISOString(), machine, ...results }, null, 2));
  const readmeUrl = new URL('../README.md', import.meta.url);
  const readme = await readFile(readmeUrl, 'utf8');
  const marked = readme.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, `<!-- bench:start -->\n${all}\n<!-- bench:end -->`);
  if (marked !== readme) await writeFile(readmeUrl, marked);
  console.log('\nwrote bench/results/latest.json and the README tables');
}

function filesTable(r: FilesResult): string {
  const { ingest: i, heap: h, namespace: n, replication: p, ops: o } = r;
  const rate = (mib: number, ms: number) => f(mib / (ms / 1000), 0);
  return table([
    ['cluster filesystem', 'LSHAPES', 'baseline', 'LSHAPES / baseline', 'target'],
    [`drop ${i.mib / 1024} GiB of distinct blocks into a tab, vs a bare \`idb\` write of the same bytes (MiB/s)`, f(i.ingestMiBps, 0), f(i.bareIdbMiBps, 0), `${f(i.ratio)}×`, '≥ 0.8×'],
    ['  its parts: reading the File in 1 MiB slices / reading + SHA-256 (MiB/s)', `${rate(i.mib, i.readMs)} / ${rate(i.mib, i.readHashMs)}`, '', '', ''],
    [`kernel worker JS heap during that drop, vs before it (peak MiB, ${h.samples} samples)`, f(h.workerPeakMiB, 1), f(h.workerBeforeMiB, 1), '', '< 200'],
    ['  with ArrayBuffers, vs during the bare write (peak MiB)', f(h.workerBuffersPeakMiB, 0), f(h.bareWorkerBuffersPeakMiB, 0), '', ''],
    ['  main thread JS heap, vs before (peak MiB)', f(h.mainPeakMiB, 1), f(h.mainBeforeMiB, 1), '', ''],
    [`replicate ${p.mib} MiB tab → tab, vs a raw data channel (MiB/s; ${p.duplicates.b} blocks fetched twice)`, f(p.oneHolderMiBps, 1), f(p.rawMiBps, 1), `${f(p.ratio)}×`, '≥ 0.8×'],
    ['  the kernel\'s port→port blast of the same bytes (MiB/s)', f(p.kernelMiBps, 1), f(p.rawMiBps, 1), `${f(p.kernelMiBps / p.rawMiBps)}×`, ''],
    [`  to a third tab from both, vs from one (MiB/s; from A/B: ${p.servedToC.a}/${p.servedToC.b} blocks, ${p.duplicates.c} twice)`, f(p.twoHoldersMiBps, 1), f(p.oneHolderMiBps, 1), `${f(p.twoVsOne)}×`, ''],
    [`load a ${n.entries.toLocaleString('en')}-entry namespace (${n.loadedOps.toLocaleString('en')} ops) after a reload (ms, median of ${n.loadsMs.length})`, f(n.loadMs, 0), '', '', '< 500'],
    ['  making them: one apply, of which the model / the rest (its one strict commit) (ms)', `${f(n.makeMs, 0)}: ${f(n.makeModelMs, 0)} / ${f(n.makeMs - n.makeModelMs, 0)}`, '', '', ''],
    ['  its parts, redone in the settled tab: IndexedDB getAll / FsModel.load / first view (ms, best of 3)', `${f(n.parts.readMs, 0)} / ${f(n.parts.applyMs, 0)} / ${f(n.parts.viewMs, 0)}`, '', '', ''],
    [`a folder made on one tab until another tab's stat sees it (ms, median / p90 of ${o.runs}; the mkdir itself: ${f(o.localMkdirMedianMs, 0)})`, `${f(o.medianMs, 0)} / ${f(o.p90Ms, 0)}`, '', '', ''],
  ]);
}
