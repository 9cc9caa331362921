// `npm run bench`: builds nothing itself (run `npm run build` first), measures, prints a
// table and writes bench/results/latest.json. Numbers, never assertions: see README.
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { runClusterBench } from './cluster.ts';

const f = (x: number, d = 2) => x.toFixed(d);

const cluster = await runClusterBench();
const rows: string[][] = [['figure', 'transfer (channel in worker)', 'bridge (via main thread)', 'target']];
const [t, b] = cluster.planes as [(typeof cluster.planes)[0], (typeof cluster.planes)[0]];
rows.push(['raw data channel RTT, 64 B (mean ms)', f(t.rawRttMs, 3), f(b.rawRttMs, 3), '']);
rows.push(['kernel port→port RTT, 64 B (mean ms)', f(t.kernelRttMs, 3), f(b.kernelRttMs, 3), '']);
rows.push(['kernel / raw RTT', `${f(t.rttRatio)}×`, `${f(b.rttRatio)}×`, '≤ 1.5×']);
rows.push(['kernel RTT p99 (ms)', f(t.kernelRttP99Ms, 3), f(b.kernelRttP99Ms, 3), '']);
rows.push(['raw msgs/s, 64 B', f(t.rawMsgsPerS, 0), f(b.rawMsgsPerS, 0), '']);
rows.push(['kernel msgs/s, 64 B', f(t.kernelMsgsPerS, 0), f(b.kernelMsgsPerS, 0), '']);
rows.push(['raw MiB/s, 256 KiB messages', f(t.rawMiBps, 1), f(b.rawMiBps, 1), '']);
rows.push(['kernel MiB/s, 256 KiB messages', f(t.kernelMiBps, 1), f(b.kernelMiBps, 1), '']);
rows.push(['closed tab gone from the others (ms)', String(cluster.detection.closedMs), '', '≤ 5000']);
rows.push(['crashed tab gone from the others (ms)', String(cluster.detection.crashedMs), '', '≤ 5000']);

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log(line(rows[0]!));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows.slice(1)) console.log(line(r));

await mkdir(new URL('./results/', import.meta.url), { recursive: true });
const result = { date: new Date().toISOString(), machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version }, cluster };
await writeFile(new URL('./results/latest.json', import.meta.url), JSON.stringify(result, null, 2));
console.log('\nwrote bench/results/latest.json');
