// Quiesce: a freeze or checkpoint of a process in the middle of its speculation waits for the
// open levels to settle (no new forks meanwhile) and then takes the image, instead of refusing;
// bounded by QUIESCE_TIMEOUT_MS, after which it fails and the process speculates again. Real
// programs (journal: its calls to its replica, and its fsyncs on /cluster) on two in-process
// executors behind the Fork On Wait test cluster; the real results (replies, replica waits) are
// held back by the test so that speculation is open when the freeze comes, and the quiesce bound
// is a timer the test fires (no test waits QUIESCE_TIMEOUT_MS).
import { beforeAll, describe, expect, it } from 'vitest';
import { MemFs } from '../wasi/memfs.ts';
import type { NodeId } from '../wasi/vfs.ts';
import { buildPrograms, program } from '../wasi/test-programs.ts';
import { SpecCluster, type ClusterProc } from '../speculation/test-cluster.ts';
import { QUIESCE_TIMEOUT_MS } from './executor.ts';
import { decodeImage } from './image.ts';
import { InProcessExecution } from './in-process.ts';
import type { FromExecutor, Pid, ProcessSpec, SpeculationMode, ToExecutor } from './protocol.ts';
import { PEER, sha256hex } from './test-scheduler.ts';

beforeAll(() => buildPrograms(), 600_000);

const MAX_MEMORY = 16 << 20;
const A = 0;
const B = 1;
const dec = new TextDecoder();

/** /cluster whose fsync is split (a speculating process's replica wait is predicted); the test can hold the replica waits back. */
class GatedFs extends MemFs {
  private held: (() => void)[] = [];
  private closed = false;
  syncLocal(): void {}
  async syncReplicas(_node: NodeId): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 3));
    // checked at the end: a wait under way when the test closes is held back too
    if (this.closed) await new Promise<void>((resolve) => this.held.push(resolve));
  }
  override sync(node: NodeId): Promise<void> {
    this.syncLocal();
    return this.syncReplicas(node);
  }
  close(): void {
    this.closed = true;
  }
  open(): void {
    this.closed = false;
    for (const resolve of this.held.splice(0)) resolve();
  }
  file(name: string): Uint8Array {
    const node = this.lookup(this.root, name).node;
    return this.read(node, 0, this.stat(node).size) as Uint8Array;
  }
}

/** The executors' timers; those of the quiesce bound are kept for the test to fire. */
class Timers {
  readonly quiesce: { fire: () => void; cancelled: boolean }[] = [];
  readonly setTimer = (ms: number, fn: () => void): (() => void) => {
    if (ms === QUIESCE_TIMEOUT_MS) {
      const t = { fire: fn, cancelled: false };
      this.quiesce.push(t);
      return () => void (t.cancelled = true);
    }
    const h = setTimeout(fn, ms);
    return () => clearTimeout(h);
  };
}

/** The executors' answers to freeze (the test cluster keeps only those to checkpoint). */
type FreezeAnswer = Extract<FromExecutor, { t: 'frozen' | 'freeze.failed' }>;

/**
 * The Fork On Wait test cluster, plus: the replies to one process held back from closeReplies()
 * to openReplies() (a slow peer), and, once it is asked to freeze, the messages for it kept as the Scheduler keeps
 * them — numbered deliveries still go through while it quiesces, everything is held from `frozen`
 * on — and sent, all of them, to the executor that thaws it (the image took some already: they
 * are repeats there, dropped by their seq).
 */
class Harness {
  readonly timers = new Timers();
  readonly fs = new GatedFs();
  readonly c: SpecCluster;
  readonly answers: FreezeAnswer[] = [];
  private readonly post: (executor: number, msg: ToExecutor) => void;
  private watched: Pid | null = null;
  private args: string[] = [];
  private repliesClosed = false;
  /** Replies posted to the watched process's executor (repeats sent at a thaw not counted). */
  private repliesPosted = 0;
  private gated: { executor: number; msg: ToExecutor }[] = [];
  private phase: 'running' | 'freezing' | 'frozen' = 'running';
  private kept: ToExecutor[] = [];
  private barriers = 0;

  constructor() {
    this.c = new SpecCluster(programs(), 2, {
      maxMemoryBytes: MAX_MEMORY,
      files: this.fs,
      setTimer: this.timers.setTimer,
      deliverDelayMs: 8,
      delayRepliesOnly: true,
    });
    // The cluster's own handler, plus the freeze answers. (Its handler is private: reached by name.)
    const handler = this.c['onMessage'].bind(this.c);
    this.c.driver.attach((i, msg) => {
      if (msg.t === 'frozen' || msg.t === 'freeze.failed') {
        this.answers.push(msg);
        if (msg.pid === this.watched) this.answered(msg);
      }
      handler(i, msg);
    });
    this.post = this.c.driver.post.bind(this.c.driver);
    this.c.driver.post = (executor, msg) => this.route(executor, msg);
  }

  /** Starts the process the harness watches (one per harness), on executor A. */
  start(args: string[], mode: SpeculationMode): ClusterProc {
    const p = this.c.start('journal', args, { mode, executor: A });
    this.watched = p.pid;
    this.args = args;
    return p;
  }

  /** Calls of the watched journal writer not answered (the replica has the record, no reply was posted). */
  outstanding(): number {
    const records = this.c.events.filter((e) => e.kind === 'deliver' && e.to !== this.watched && e.port === 'rec').length;
    return records - this.repliesPosted;
  }

  closeReplies(): void {
    this.repliesClosed = true;
  }

  openReplies(): void {
    this.repliesClosed = false;
    for (const { executor, msg } of this.gated.splice(0)) this.route(executor, msg);
  }

  freeze(p: ClusterProc): void {
    this.phase = 'freezing';
    this.post(p.executor, { t: 'freeze', pid: p.pid });
  }

  checkpoint(p: ClusterProc): void {
    this.post(p.executor, { t: 'checkpoint', pid: p.pid });
  }

  /** Continues a frozen process from `image` on `executor`, then hands it what was kept for it. */
  thaw(p: ClusterProc, image: Uint8Array, executor: number, mode: SpeculationMode): void {
    p.executor = executor;
    this.phase = 'running';
    this.post(executor, { t: 'thaw', spec: spec(p.pid, mode, this.args), image });
    for (const msg of this.kept.splice(0)) if (msg.t !== 'reply') this.post(executor, msg); // a call it was blocked in is asked again
  }

  /** The freeze was answered: from `frozen` on everything is kept; after a failure what was kept goes to it (repeats are dropped there). */
  private answered(msg: FreezeAnswer): void {
    if (msg.t === 'frozen') {
      this.phase = 'frozen';
      return;
    }
    this.phase = 'running';
    const p = this.c.procs.get(msg.pid)!;
    for (const m of this.kept.splice(0)) this.post(p.executor, m);
  }

  /**
   * Resolves once `executor` has handled everything posted to it before: a resolution of an
   * unknown speculation, answered by a notice in order with its other messages.
   */
  async barrier(executor: number): Promise<void> {
    const id = `ffffff.9~${++this.barriers}`;
    this.post(executor, { t: 'spec.resolved', id, ok: true });
    await until(() => this.c.notices.some((n) => n.text.includes(id)));
  }

  answer(pid: Pid): FreezeAnswer | undefined {
    return this.answers.find((a) => a.pid === pid);
  }

  private route(executor: number, msg: ToExecutor): void {
    if (!('pid' in msg) || msg.pid !== this.watched) return this.post(executor, msg);
    const reply = msg.t === 'deliver' && msg.port.startsWith('#reply:');
    if (this.repliesClosed && reply) {
      this.gated.push({ executor, msg });
      return;
    }
    if (this.phase !== 'running') {
      this.kept.push(msg);
      // While it quiesces for the freeze, numbered deliveries go to it too (they settle its speculation).
      if (!(this.phase === 'freezing' && msg.t === 'deliver' && msg.seq !== undefined)) return;
    }
    if (reply) this.repliesPosted++;
    this.post(executor, msg);
  }
}

const programs = (): Record<string, Uint8Array> => ({ journal: program('journal') });

/** journal's spec as the test cluster starts it (a thaw needs the same). */
function spec(pid: Pid, mode: SpeculationMode, args: string[]): ProcessSpec {
  const module = program('journal');
  return { pid, peer: PEER, name: 'journal', hash: sha256hex(module), module, args: ['journal', ...args], env: {}, hasParent: false, interactiveStdin: false, speculation: mode };
}

async function until<T>(f: () => T | undefined | false, what = 'condition'): Promise<T> {
  for (let i = 0; i < 4000; i++) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Every process's output and exit, as the fork-on-wait tests compare runs. */
function summary(c: SpecCluster): string {
  return [...c.procs.values()].map((q) => `${q.name}: [${c.text(q.pid, 1)}] [${c.text(q.pid, 2)}] exit ${q.exit?.code}`).join('\n');
}

async function finished(h: Harness): Promise<string> {
  await Promise.all([...h.c.procs.values()].map((q) => q.exited));
  expect(h.c.anomalies).toEqual([]);
  return summary(h.c);
}

/** A run to the end, nothing frozen: what the others must print. */
async function reference(args: string[]): Promise<{ all: string; file?: Uint8Array }> {
  const h = new Harness();
  h.start(args, 'off');
  const all = await finished(h);
  return args[0] === '-f' ? { all, file: h.fs.file(args[1]!.slice('/cluster/'.length)) } : { all };
}

const depth = (h: Harness, p: ClusterProc): number => h.c.stats(p.pid)?.depth ?? 0;

/**
 * Starts `journal ARGS` in `mode` and returns once it runs at least one level deep on a replica
 * wait that cannot settle ('on' predicts once the site is trusted; 'mispredict' forks at every
 * wait, wrongly): the /cluster replica acknowledgements are held until `h.fs.open()`.
 */
async function speculatingOnHeldWait(h: Harness, args: string[], mode: 'on' | 'mispredict'): Promise<ClusterProc> {
  const p = h.start(args, mode);
  if (mode === 'on') await until(() => (h.c.stats(p.pid)?.hits ?? 0) >= 2, 'hits');
  h.fs.close();
  await until(() => depth(h, p) >= 1, 'depth 1');
  return p;
}
const predictions = (h: Harness, p: ClusterProc): number => h.c.stats(p.pid)?.predictions ?? 0;

describe('quiesce: a freeze of a speculating process waits for its speculation to settle', () => {
  it('journal (calls to its replica) frozen at depth ≥ 2: frozen, not refused; thawed elsewhere it prints what an unfrozen run prints and speculates again', async () => {
    const ARGS = ['40', '4'];
    const ref = await reference(ARGS);
    const h = new Harness();
    const w = h.start(ARGS, 'on');
    // Once the site is trusted it pipelines; with the replies held back its levels stay open.
    await until(() => (h.c.stats(w.pid)?.hits ?? 0) >= 2, 'hits');
    h.closeReplies();
    await until(() => depth(h, w) >= 2, 'depth 2');
    h.freeze(w);
    await h.barrier(A);
    expect(h.answer(w.pid)).toBeUndefined(); // waiting, not refused
    expect(h.timers.quiesce).toHaveLength(1); // the freeze met open speculation: it quiesces
    expect(depth(h, w)).toBeGreaterThanOrEqual(2);
    h.openReplies();
    const answer = await until(() => h.answer(w.pid), 'the freeze answer');
    expect(answer.t).toBe('frozen');
    expect(h.timers.quiesce[0]!.cancelled).toBe(true); // answered: its bound is gone
    const image = (answer as Extract<FreezeAnswer, { t: 'frozen' }>).image;
    expect(decodeImage(image).specNext).toBeGreaterThan(2); // it had speculated before
    h.thaw(w, image, B, 'on');
    expect(await finished(h)).toBe(ref.all);
    expect(h.c.stats(w.pid)!.predictions).toBeGreaterThan(0); // the thawed copy speculated again
  }, 120_000);

  for (const mode of ['on', 'mispredict'] as const) {
    it(`journal -f (fsync replica waits), ${mode}: frozen once its level ${mode === 'on' ? 'commits' : 'is rolled back'}; the thawed copy writes the same file and output`, async () => {
      const ARGS = ['-f', '/cluster/j.bin', '60', '2'];
      const ref = await reference(ARGS);
      const h = new Harness();
      const p = await speculatingOnHeldWait(h, ARGS, mode);
      h.freeze(p);
      await h.barrier(A);
      expect(h.answer(p.pid)).toBeUndefined();
      expect(h.timers.quiesce).toHaveLength(1);
      h.fs.open();
      const answer = await until(() => h.answer(p.pid), 'the freeze answer');
      expect(answer.t).toBe('frozen');
      h.thaw(p, (answer as Extract<FreezeAnswer, { t: 'frozen' }>).image, B, mode);
      expect(await finished(h)).toBe(ref.all);
      expect(h.fs.file('j.bin')).toEqual(ref.file);
    }, 120_000);
  }
});

describe('quiesce: a checkpoint of a speculating process', () => {
  it('journal -f checkpointed at depth ≥ 1: checkpointed once it commits, goes on speculating; a restart from the image gives the same file and output', async () => {
    const ARGS = ['-f', '/cluster/j.bin', '80', '2'];
    const ref = await reference(ARGS);
    const h = new Harness();
    const p = await speculatingOnHeldWait(h, ARGS, 'on');
    h.checkpoint(p);
    await h.barrier(A);
    expect(h.c.checkpoints.get(p.pid)).toBeUndefined(); // waiting, not refused
    expect(h.timers.quiesce).toHaveLength(1);
    const before = predictions(h, p);
    h.fs.open();
    const [answer] = await until(() => h.c.checkpoints.get(p.pid), 'the checkpoint answer');
    expect(answer!.reason).toBeUndefined();
    const image = answer!.image!;
    expect(h.timers.quiesce[0]!.cancelled).toBe(true);
    expect(await finished(h)).toBe(ref.all);
    expect(h.fs.file('j.bin')).toEqual(ref.file);
    // it went on speculating after the checkpoint
    expect(h.c.stats(p.pid)!.predictions).toBeGreaterThan(before);

    // A restart from the checkpoint (its host lost): it writes the records from there again, and
    // its output continues at the image's offset with the bytes the lost run printed there.
    const whole = new Uint8Array(p.outBytes);
    for (const o of p.out) whole.set(o.data, o.at);
    const { outAt } = decodeImage(image);
    const again = new InProcessExecution(1, { maxMemoryBytes: MAX_MEMORY, files: h.fs });
    const outs: Extract<FromExecutor, { t: 'out' }>[] = [];
    let exit: Extract<FromExecutor, { t: 'exit' }> | undefined;
    again.attach((_i, msg) => {
      if (msg.t === 'out') outs.push(msg);
      if (msg.t === 'exit') exit = msg;
    });
    again.post(0, { t: 'thaw', spec: spec(p.pid, 'on', ARGS), image });
    await until(() => exit, 'the restarted exit');
    expect(exit!.code).toBe(0);
    expect(outs[0]!.at).toBe(outAt);
    const rest = dec.decode(Buffer.concat(outs.map((o) => o.data)));
    expect(dec.decode(whole.subarray(0, outAt)) + rest).toBe(h.c.text(p.pid));
    expect(h.fs.file('j.bin')).toEqual(ref.file);
  }, 120_000);
});

describe('quiesce: the bound', () => {
  it('a speculation whose real result does not come: freeze.failed and checkpoint.failed with the reason; then it runs on and speculates again', async () => {
    const ARGS = ['-f', '/cluster/j.bin', '60', '2'];
    const ref = await reference(ARGS);
    const h = new Harness();
    const p = await speculatingOnHeldWait(h, ARGS, 'on');
    h.freeze(p);
    h.checkpoint(p);
    await until(() => h.timers.quiesce.length === 1, 'the quiesce bound');
    const before = predictions(h, p);
    h.timers.quiesce[0]!.fire(); // the bound passes with the replica wait still out
    const reason = `speculation did not settle within ${QUIESCE_TIMEOUT_MS} ms`;
    expect(await until(() => h.answer(p.pid), 'the freeze answer')).toEqual({ t: 'freeze.failed', pid: p.pid, reason });
    expect(await until(() => h.c.checkpoints.get(p.pid), 'the checkpoint answer')).toEqual([{ reason }]);
    h.fs.open();
    expect(await finished(h)).toBe(ref.all);
    expect(h.fs.file('j.bin')).toEqual(ref.file);
    expect(h.c.stats(p.pid)!.predictions).toBeGreaterThan(before); // not left unable to speculate
  }, 120_000);

  it('journal blocked, while it quiesced, in a call it would fork at: forks at once when the freeze fails', async () => {
    // Records that take a while to compute, so that the freeze comes long before the level bound.
    const ARGS = ['40', '200'];
    const ref = await reference(ARGS);
    const h = new Harness();
    const w = h.start(ARGS, 'on');
    await until(() => (h.c.stats(w.pid)?.hits ?? 0) >= 2, 'hits');
    h.closeReplies();
    await until(() => depth(h, w) >= 1, 'depth 1');
    h.freeze(w);
    await until(() => h.timers.quiesce.length === 1, 'the quiesce bound');
    // It runs on its open levels to its next call and waits there, unforked: its record is out
    // and no reply can come (held back).
    await until(() => h.outstanding() === depth(h, w) + 1, 'blocked in an unforked call');
    const before = predictions(h, w);
    expect(depth(h, w)).toBeLessThan(32); // room for a fork under the level bound
    h.timers.quiesce[0]!.fire();
    expect(await until(() => h.answer(w.pid), 'the freeze answer')).toMatchObject({ t: 'freeze.failed', reason: expect.stringMatching(/did not settle/) });
    // Replies still held back: only a fork at the call it waits in lets it predict again.
    await until(() => predictions(h, w) > before, 'a prediction after the failed freeze');
    h.openReplies();
    expect(await finished(h)).toBe(ref.all);
  }, 120_000);
});

describe('quiesce: a dependent', () => {
  const record = (b: number): Uint8Array => new Uint8Array(4096).fill(b);
  const fnv = (...records: Uint8Array[]): string => {
    let x = 0xcbf29ce484222325n;
    for (const r of records) for (const b of r) x = BigInt.asUintN(64, (x ^ BigInt(b)) * 0x100000001b3n);
    return x.toString(16).padStart(16, '0');
  };

  it("journal --replica fed records carrying another's speculations, checkpointed: it goes on taking them (its sender is not held up) and is checkpointed once they committed", async () => {
    const h = new Harness();
    const r = h.start(['--replica', '3'], 'on');
    expect(await r.started).toBe(true);
    const exec = h.c.driver.executors[A]!;
    // as from a writer "dddddd.1" that is not a process here; a token asks for the acknowledgement
    const send = (seq: number, port: string, data: Uint8Array, deps?: string[], token = 0) =>
      h.c.post(r.pid, { t: 'deliver', pid: r.pid, port, from: 'dddddd.1', token, data, seq, ...(deps ? { deps } : {}) });
    send(1, 'rec', record(1), ['dddddd.1~1'], 11);
    await until(() => h.c.external.length === 1, 'the first acknowledgement');
    h.checkpoint(r);
    send(2, 'rec', record(2), ['dddddd.1~2'], 12);
    // Taken while it quiesces: acknowledged at once (carrying both speculations), as a writer
    // pipelining its records needs; the checkpoint waits.
    await until(() => h.c.external.length === 2, 'the second acknowledgement');
    expect(h.c.external[1]!.deps?.sort()).toEqual(['dddddd.1~1', 'dddddd.1~2']);
    expect(h.timers.quiesce).toHaveLength(1);
    h.c.post(r.pid, { t: 'spec.resolved', id: 'dddddd.1~1', ok: true });
    await h.barrier(A);
    expect(h.c.checkpoints.get(r.pid)).toBeUndefined(); // still depends on the second
    h.c.post(r.pid, { t: 'spec.resolved', id: 'dddddd.1~2', ok: true });
    const [answer] = await until(() => h.c.checkpoints.get(r.pid), 'the checkpoint answer');
    expect(answer!.image).toBeDefined();
    expect(exec.twinBytes).toBe(0);
    // Once more, blocked in recv with nothing more coming: the commit alone lets it take the image.
    send(3, 'rec', record(3), ['dddddd.1~3']);
    await until(() => exec.twinBytes > 0, 'a dependency level after the checkpoint');
    h.checkpoint(r);
    h.c.post(r.pid, { t: 'spec.resolved', id: 'dddddd.1~3', ok: true });
    const second = await until(() => h.c.checkpoints.get(r.pid)?.[1], 'the second checkpoint answer');
    expect(second.image).toBeDefined();
    send(4, 'digest', new TextEncoder().encode('?'), undefined, 7);
    await until(() => h.c.external.length === 3, 'the digest');
    expect(dec.decode(h.c.external[2]!.data)).toBe(`${fnv(record(1), record(2), record(3))} ${3 * 4096}`);
    expect(h.c.external[2]!.deps).toBeUndefined();
    send(5, 'quit', new Uint8Array(0));
    expect((await r.exited).code).toBe(0);
    expect(h.c.anomalies).toEqual([]);
  }, 60_000);
});
