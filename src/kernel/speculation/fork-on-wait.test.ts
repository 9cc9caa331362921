// Fork On Wait end to end: real programs (programs/c, programs/as) on two in-process executors
// behind a fake Scheduler that routes seq/deps/spec.resolved as the real one does
// (test-cluster.ts), with a MemFs standing in for /cluster whose fsync waits for "replicas".
// Every program gives the same output and files with speculation off, on and mispredict;
// journal really hits ('on') and really rolls back ('mispredict'); a receiver is rolled back
// with its sender; output of a speculative copy appears only after the commit.
import { beforeAll, describe, expect, it } from 'vitest';
import { MemFs } from '../wasi/memfs.ts';
import type { NodeId } from '../wasi/vfs.ts';
import { buildPrograms, program } from '../wasi/test-programs.ts';
import type { SpeculationMode } from '../process/protocol.ts';
import { SpecCluster, type ClusterOptions, type ClusterProc } from './test-cluster.ts';

beforeAll(() => buildPrograms(), 600_000);

const MAX_MEMORY = 16 << 20;
const MODES: SpeculationMode[] = ['off', 'on', 'mispredict'];
const enc = new TextEncoder();
const dec = new TextDecoder();

/** /cluster with a split sync whose replica wait takes a few milliseconds (counted). */
class ReplicatedFs extends MemFs {
  replicaWaits = 0;
  /** Replica waits finished: what held output may not run ahead of. */
  replicated = 0;
  localSyncs = 0;
  /** For each finished replica wait: how many cluster events had happened then. */
  replicatedAt: number[] = [];
  cluster: SpecCluster | null = null;
  syncLocal(): void {
    this.localSyncs++;
  }
  async syncReplicas(_node: NodeId): Promise<void> {
    this.replicaWaits++;
    await new Promise((r) => setTimeout(r, 3));
    this.replicated++;
    this.replicatedAt.push(this.cluster?.events.length ?? 0);
  }
  override sync(node: NodeId): Promise<void> {
    this.syncLocal();
    return this.syncReplicas(node);
  }
}

const programs = (): Record<string, Uint8Array> => ({
  hello: program('hello'),
  cat: program('cat'),
  wc: program('wc'),
  grep: program('grep'),
  sha256sum: program('sha256sum'),
  counter: program('counter'),
  tee: program('tee'),
  primes: program('primes'),
  ping: program('ping'),
  pong: program('pong'),
  journal: program('journal'),
});

interface Run {
  c: SpecCluster;
  p: ClusterProc;
  fs: ReplicatedFs;
  code: number;
  /** Output of every process of the run, by program name and pid order. */
  all: string;
}

async function run(name: string, args: string[], mode: SpeculationMode, options: ClusterOptions = {}, stdin?: string): Promise<Run> {
  const fs = new ReplicatedFs();
  const c = new SpecCluster(programs(), 2, { maxMemoryBytes: MAX_MEMORY, files: fs, ...options });
  fs.cluster = c;
  const p = c.start(name, args, { mode, interactiveStdin: stdin !== undefined });
  if (stdin !== undefined) {
    c.post(p.pid, { t: 'stdin', pid: p.pid, data: enc.encode(stdin) });
    c.post(p.pid, { t: 'stdin.end', pid: p.pid });
  }
  const { code } = await p.exited;
  await Promise.all([...c.procs.values()].map((q) => q.exited));
  const all = [...c.procs.values()].map((q) => `${q.name}: [${c.text(q.pid, 1)}] [${c.text(q.pid, 2)}] exit ${q.exit?.code}`).join('\n');
  expect(c.anomalies).toEqual([]);
  return { c, p, fs, code, all };
}

function file(fs: MemFs, name: string): Uint8Array {
  const node = fs.lookup(fs.root, name).node;
  return fs.read(node, 0, fs.stat(node).size) as Uint8Array;
}

describe('every sample program gives the same output with speculation off, on and mispredict', () => {
  const cases: [string, string[], string?][] = [
    ['hello', []],
    ['cat', ['/README.txt']],
    ['wc', ['/texts/ozymandias.txt']],
    ['grep', ['-n', 'sand', '/texts/ozymandias.txt']],
    ['sha256sum', ['/texts/ozymandias.txt']],
    ['counter', ['1']],
    ['tee', ['-s', '/cluster/teed.txt'], 'one\ntwo\n'],
    ['primes', ['3000', '3']],
    ['ping', ['6']],
    ['journal', ['12', '3']],
  ];
  for (const [name, args, stdin] of cases) {
    it(`${name} ${args.join(' ')}`, async () => {
      const seen: string[] = [];
      const files: string[] = [];
      for (const mode of MODES) {
        const r = await run(name, args, mode, { deliverDelayMs: 1 }, stdin);
        // ping prints its average round trip: the only thing that may differ
        seen.push(r.all.replace(/avg [0-9.]+ ms/g, "avg … ms"));
        files.push(name === 'tee' ? dec.decode(file(r.fs, 'teed.txt')) : '');
        expect(r.code).toBe(0);
      }
      expect(seen[1]).toBe(seen[0]);
      expect(seen[2]).toBe(seen[0]);
      expect(files[1]).toBe(files[0]);
      expect(files[2]).toBe(files[0]);
    }, 60_000);
  }
});

describe('journal with an acknowledging replica', () => {
  const N = 40;
  // Costs measured on a loaded machine (forks of over 1 ms) would make the predictor call these
  // 8 ms waits too short to speculate on: the cost rule has its own tests (predictor.test.ts).
  const anyCost = { predictor: { worth: 0 } };
  const opts: ClusterOptions = { deliverDelayMs: 8, delayRepliesOnly: true, speculation: anyCost };

  it('on: hits, mispredict: rolls back every speculation, and both print what off prints', async () => {
    const off = await run('journal', [String(N), '4'], 'off', opts);
    const on = await run('journal', [String(N), '4'], 'on', opts);
    const bad = await run('journal', [String(N), '4'], 'mispredict', opts);
    expect(off.all).toContain(`replica exited 0`);
    expect(on.all).toBe(off.all);
    expect(bad.all).toBe(off.all);
    expect(off.c.stats(off.p.pid)).toBeUndefined(); // 'off' reports no counters
    const s = on.c.stats(on.p.pid)!;
    expect(s.hits).toBeGreaterThan(N / 2);
    expect(s.savedMs).toBeGreaterThan(0);
    const m = bad.c.stats(bad.p.pid)!;
    expect(m.hits).toBe(0);
    expect(m.rollbacks).toBeGreaterThan(N / 2);
    expect(m.predictions).toBeGreaterThan(N);
  }, 120_000);

  it('mispredict: the replica that took speculative records is rolled back with the writer; none of their effects show', async () => {
    const r = await run('journal', [String(N), '4'], 'mispredict', opts);
    const replica = [...r.c.procs.values()].find((q) => q.name === 'journal' && q !== r.p)!;
    // it received records carrying the writer's speculations...
    const speculative = r.c.events.filter((e) => e.kind === 'deliver' && e.to === replica.pid && e.port === 'rec' && e.deps.length);
    expect(speculative.length).toBeGreaterThan(0);
    // ...was rolled back (its /tmp/journal too: the digest and size are of exactly N records)...
    expect(r.c.stats(replica.pid)!.rollbacks).toBeGreaterThan(0);
    const text = r.c.text(r.p.pid);
    const writer = /writer +([0-9a-f]{16}) (\d+)/.exec(text)!;
    expect(text).toContain(`replica ${writer[1]} ${N * 4096}`);
    // ...and the writer's mispredicted copies complained on stderr, which never appeared
    expect(r.c.text(r.p.pid, 2)).toBe('');
    expect(text).toContain(', 0 unexpected replies');
  }, 60_000);

  it('nesting respects the level bound', async () => {
    const bounded = await run('journal', [String(N), '1'], 'on', { ...opts, speculation: { ...anyCost, maxLevels: 2 } });
    const free = await run('journal', [String(N), '1'], 'on', opts);
    expect(bounded.p.maxDepth).toBe(2);
    expect(free.p.maxDepth).toBeGreaterThan(2);
    expect(bounded.all).toBe(free.all);
  }, 60_000);

  it('at the level bound a call blocked for room forks as soon as a level commits, not a round trip later', async () => {
    const r = await run('journal', [String(N), '1'], 'on', { ...opts, speculation: { ...anyCost, maxLevels: 2 } });
    const ref = await run('journal', [String(N), '1'], 'off', opts);
    expect(r.all).toBe(ref.all);
    expect(r.p.maxDepth).toBe(2);
    // the first 3 replies teach the predictor; after that every call forks (waiting for its
    // own reply instead would leave about every other call unpredicted)
    const s = r.c.stats(r.p.pid)!;
    expect(s.predictions).toBeGreaterThan(N - 6);
    expect(s.rollbacks).toBe(0);
  }, 60_000);

  it('every prediction wrong (journal -c 3: replies change just when the predictor starts to trust them): benched, output as with off', async () => {
    const args = ['-c', '3', String(N), '1'];
    const ref = await run('journal', args, 'off', opts);
    const r = await run('journal', args, 'on', opts);
    expect(ref.all).toContain(', 0 unexpected replies');
    expect(r.all).toBe(ref.all);
    const s = r.c.stats(r.p.pid)!;
    expect(s.predictions).toBeGreaterThan(0);
    expect(s.hits).toBe(0);
    // the site is never right: each prediction is a lone probe (the next call waits for its
    // verdict instead of forking on the same guess), and each miss benches the site, twice as
    // long each time — in 40 records: the probes at records 4 and 31
    expect(s.rollbacks).toBe(s.predictions);
    expect(s.predictions).toBeLessThanOrEqual(2);
    // never two levels on the unproven guess (depth is sampled from rate-limited state reports:
    // a lone probe may come and go between two of them, so 0 is possible on a loaded machine)
    expect(r.p.maxDepth).toBeLessThanOrEqual(1);
  }, 60_000);

  it('a twin memory bound of 0 stops forking: it just waits', async () => {
    const r = await run('journal', ['12', '1'], 'on', { ...opts, speculation: { ...anyCost, maxTwinBytes: 0 } });
    expect(r.c.stats(r.p.pid)?.predictions ?? 0).toBe(0);
    expect(r.c.text(r.p.pid)).toContain('replica exited 0');
  }, 60_000);

  it('confirmations out of order: an inner level confirmed first merges into its parent', async () => {
    const ref = await run('journal', [String(N), '1'], 'off', opts);
    // every 3rd reply carries another process's speculation: it is compared only once that
    // commits (30 ms later), while the next replies confirm the levels above it
    const r = await run('journal', [String(N), '1'], 'on', { ...opts, foreignDeps: { every: 3, commitAfterMs: 30 } });
    expect(r.c.tainted).toBeGreaterThan(3);
    expect(r.all).toBe(ref.all);
    const order = r.c.events.filter((e) => e.kind === 'resolved' && e.pid === r.p.pid).map((e) => Number((e as { id: string }).id.split('~')[1]));
    expect(order.some((n, i) => i > 0 && n < order[i - 1]!)).toBe(true);
    const s = r.c.stats(r.p.pid)!;
    expect(s.hits).toBeGreaterThan(0);
    expect(s.rollbacks).toBe(0);
  }, 60_000);

  it('output of a speculative copy is posted only after the real replies confirmed it', async () => {
    const r = await run('journal', ['200', '1'], 'on', opts);
    expect(r.c.stats(r.p.pid)!.hits).toBeGreaterThan(100);
    let replies = 0;
    const at: Record<string, number> = {};
    for (const e of r.c.events) {
      if (e.kind === 'deliver' && e.to === r.p.pid && e.port.startsWith('#reply:')) replies++;
      if (e.kind === 'out' && e.pid === r.p.pid) for (const m of e.text.matchAll(/record (\d+) acknowledged/g)) at[m[1]!] = replies;
    }
    // Printed right after record k's (predicted) acknowledgement; posted only once k real replies came.
    expect(at['100']).toBeGreaterThanOrEqual(100);
    expect(at['200']).toBeGreaterThanOrEqual(200);
  }, 60_000);
});

describe('journal -f: fsync on /cluster split into the local commit and the predicted replica wait', () => {
  const N = 100;
  it('same file and output off, on and mispredict; on hits, mispredict rolls back; output waits for the replicas', async () => {
    const results: Run[] = [];
    for (const mode of MODES) results.push(await run('journal', ['-f', '/cluster/j.bin', String(N), '2'], mode));
    const [off, on, bad] = results as [Run, Run, Run];
    expect(off.code).toBe(0);
    expect(on.all).toBe(off.all);
    expect(bad.all).toBe(off.all);
    expect(file(on.fs, 'j.bin')).toEqual(file(off.fs, 'j.bin'));
    expect(file(bad.fs, 'j.bin')).toEqual(file(off.fs, 'j.bin'));
    expect(file(off.fs, 'j.bin').length).toBe(N * 4096);
    // off: one whole sync per record; speculating: the commit and the replica wait apart
    expect(off.fs.localSyncs).toBe(N);
    expect(on.fs.replicaWaits).toBe(N);
    expect(on.c.stats(on.p.pid)!.hits).toBeGreaterThan(N / 2);
    const m = bad.c.stats(bad.p.pid)!;
    expect(m.rollbacks).toBeGreaterThan(N / 2);
    expect(m.hits).toBe(0);
    // "record 100 synced" is printed right after the 100th fsync returned (early, predicted) but
    // posted only after the 100th replica wait really ended
    const printed = on.c.events.findIndex((e) => e.kind === 'out' && e.text.includes(`record ${N} synced`));
    expect(printed).toBeGreaterThan(-1);
    expect(printed).toBeGreaterThanOrEqual(on.fs.replicatedAt[N - 1]!);
  }, 60_000);
});

describe('resolutions and deliveries', () => {
  const N = '2';

  /** A replica alone, fed by the test (playing a writer "ffffff.1" that is not a process here). */
  async function replica() {
    const c = new SpecCluster(programs(), 1, { maxMemoryBytes: MAX_MEMORY });
    const p = c.start('journal', ['--replica', N]);
    await p.started;
    const send = (port: string, data: Uint8Array, opts: { seq?: number; deps?: string[]; token?: number } = {}) =>
      c.post(p.pid, { t: 'deliver', pid: p.pid, port, from: 'ffffff.1', token: opts.token ?? 0, data, ...opts });
    return { c, p, send };
  }
  const record = (b: number): Uint8Array => new Uint8Array(4096).fill(b);
  const fnv = (...records: Uint8Array[]): string => {
    let h = 0xcbf29ce484222325n;
    for (const r of records) for (const b of r) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
    return h.toString(16).padStart(16, '0');
  };
  const until = async (f: () => boolean) => {
    for (let i = 0; i < 500 && !f(); i++) await new Promise((r) => setTimeout(r, 5));
    expect(f()).toBe(true);
  };

  it('a cancelled speculation rolls the receiver back; a late delivery carrying it and a repeated seq are dropped', async () => {
    const { c, p, send } = await replica();
    send('rec', record(1), { seq: 1 });
    send('rec', record(1), { seq: 1 }); // a repeat (a sender restarted from a checkpoint)
    send('rec', record(9), { seq: 2, deps: ['ffffff.1~1'] });
    await until(() => c.stats(p.pid)!.depth === 0 && (c.driver.executors[0] as unknown as { twinBytes: number }).twinBytes > 0);
    c.post(p.pid, { t: 'spec.resolved', id: 'ffffff.1~1', ok: false });
    await until(() => c.stats(p.pid)!.rollbacks === 1);
    send('rec', record(9), { seq: 2, deps: ['ffffff.1~1'] }); // late: dropped
    send('rec', record(2), { seq: 2 }); // the re-sent one, same seq, no longer speculative
    send('digest', enc.encode('?'), { seq: 3, token: 77 });
    await until(() => c.external.length > 0);
    expect(dec.decode(c.external[0]!.data)).toBe(`${fnv(record(1), record(2))} 8192`);
    expect(c.external[0]!.deps).toBeUndefined(); // nothing speculative left
    send('quit', new Uint8Array(0), { seq: 4 });
    expect((await p.exited).code).toBe(0);
    expect(c.notices).toEqual([]);
  }, 30_000);

  it('a committed speculation releases the receiver: its reply then carries no deps', async () => {
    const { c, p, send } = await replica();
    send('rec', record(1), { seq: 1, deps: ['ffffff.1~1'] });
    send('rec', record(2), { seq: 2, deps: ['ffffff.1~1', 'ffffff.1~2'] });
    send('digest', enc.encode('?'), { seq: 3, token: 5, deps: ['ffffff.1~2'] });
    await until(() => c.external.length > 0);
    // the reply went out at once, carrying what the replica depends on
    expect(c.external[0]!.deps?.sort()).toEqual(['ffffff.1~1', 'ffffff.1~2']);
    send('quit', new Uint8Array(0), { seq: 4 });
    await new Promise((r) => setTimeout(r, 50));
    expect(p.exit).toBeUndefined(); // its exit is held: it depends on open speculations
    c.post(p.pid, { t: 'spec.resolved', id: 'ffffff.1~1', ok: true });
    c.post(p.pid, { t: 'spec.resolved', id: 'ffffff.1~2', ok: true });
    expect((await p.exited).code).toBe(0);
    expect(c.stats(p.pid)?.rollbacks ?? 0).toBe(0);
  }, 30_000);

  it('spec.resolved for an unknown id: a notice, and nothing changes', async () => {
    const { c, p, send } = await replica();
    c.post(p.pid, { t: 'spec.resolved', id: 'eeeeee.7~3', ok: false });
    await until(() => c.notices.length > 0);
    expect(c.notices).toEqual([{ pid: 'eeeeee.7', text: 'refused: no speculation eeeeee.7~3 here' }]);
    send('rec', record(1), { seq: 1, deps: ['eeeeee.7~3'] }); // not known as cancelled: it counts
    send('rec', record(2), { seq: 2 });
    send('digest', enc.encode('?'), { seq: 3, token: 1 });
    await until(() => c.external.length > 0);
    expect(dec.decode(c.external[0]!.data)).toBe(`${fnv(record(1), record(2))} 8192`);
    c.post(p.pid, { t: 'kill', pid: p.pid, reason: 'done' });
    await p.exited;
  }, 30_000);
});
