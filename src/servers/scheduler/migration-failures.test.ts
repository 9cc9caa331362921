// What a migration does with bad input and failures: images that are corrupt, truncated, of
// another version, of another program or from outside the cluster are refused with the reason
// and nothing starts; a target that vanishes mid-move leaves the process running on its old
// host, output exactly once; unknown pids and peers get migrate.failed with the reason. And the
// hand-over's commit step: a target runs an image only on go, so a move given up (timeout) never
// leaves two copies running, a target lost after go leaves the old host running it from the
// image it kept, and an image that never gets go is never run.
import { beforeAll, describe, expect, test } from 'vitest';
import { createHash } from 'node:crypto';
import { InProcessExecution } from '../../kernel/process/in-process.ts';
import type { ProcessSpec } from '../../kernel/process/protocol.ts';
import { buildPrograms, program } from '../../kernel/wasi/test-programs.ts';
import { simCryptoDriver } from '../../host/sim/crypto.ts';
import { SimRandom } from '../../host/sim/random.ts';
import { imageKey, packImage } from '../dispatcher/transfer.ts';
import { IMMIGRATE_TIMEOUT_MS } from '../dispatcher/emigration.ts';
import type { PeerMessage } from './protocol.ts';
import { BUSY_EVERY, busyLines, simCluster, text } from './test-cluster.ts';

beforeAll(() => buildPrograms(), 180_000);

const PID = 'abcdef.1';
/** The simulator's HMAC (the one every simulated peer uses). */
const simHmac = simCryptoDriver(new SimRandom(1)).hmacSha256;
const hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A real image of `cat` blocked reading stdin (frozen in an executor of its own), with "kept\n" unread in it. */
async function catImage(): Promise<Uint8Array> {
  const exec = new InProcessExecution(1);
  const module = program('cat');
  const spec: ProcessSpec = { pid: PID, peer: 'elsewhere', name: 'cat', hash: hex(module), module, args: ['cat'], env: {}, hasParent: false, interactiveStdin: true };
  return new Promise((resolve, reject) => {
    let asked = false;
    exec.attach((_, m) => {
      if (m.t === 'state' && !asked) {
        asked = true;
        exec.post(0, { t: 'stdin', pid: PID, data: text('kept\n') });
        exec.post(0, { t: 'freeze', pid: PID });
      }
      if (m.t === 'frozen') resolve(m.image);
      if (m.t === 'freeze.failed' || m.t === 'exit') reject(new Error(JSON.stringify(m)));
    });
    exec.post(0, { t: 'start', spec });
  });
}

describe('bad immigrants are refused with the reason; nothing starts', async () => {
  test('corrupt, truncated, other-version, other-program and outsider images; a good one runs', async () => {
    const { sim, peers, pump, terminal, ps, findRow, intercept } = await simCluster(2);
    const [a, b] = peers as [typeof peers[0], typeof peers[0]];
    const t = terminal(a);
    const raw = await catImage();
    const key = await imageKey('sim-cluster-token-0001', simHmac);
    const pack = (image: Uint8Array, k = key) => packImage(image, k, simHmac);
    const cat = program('cat');
    const hello = program('hello');
    const flip = (b: Uint8Array, at: number) => {
      const c = b.slice();
      c[at]! ^= 0xff;
      return c;
    };
    const otherVersion = raw.slice();
    new DataView(otherVersion.buffer).setUint32(8, 99, true);
    let ref = 100;
    const immigrate = (image: Uint8Array, module = cat): Extract<PeerMessage, { kind: 'immigrate' }> => ({
      kind: 'immigrate',
      ref: ++ref,
      pid: PID,
      name: 'cat',
      args: [],
      env: {},
      hash: hex(module),
      module,
      image,
      client: { peer: a.id, port: 'nobody' },
      interactive: true,
      spawner: a.id,
      startedAt: 0,
      moves: 1,
    });
    const cases: [string, Extract<PeerMessage, { kind: 'immigrate' }>, RegExp][] = [
      ['corrupt', immigrate(await pack(flip(raw, raw.length - 10))), /corrupt|checksum/i],
      ['truncated image', immigrate(await pack(raw.subarray(0, raw.length - 100))), /truncated/i],
      ['truncated transfer', immigrate((await pack(raw)).subarray(0, 40)), /truncated/i],
      ['other version', immigrate(await pack(otherVersion)), /version/i],
      ['other program', immigrate(await pack(raw), hello), /another program/i],
      ['outsider', immigrate(await pack(raw, new Uint8Array(32).fill(7))), /not from this cluster/],
      ['module not matching its hash', { ...immigrate(await pack(raw)), module: hello }, /does not match its hash/],
    ];
    const refusals = () => sim.trace.filter((l) => l.includes(`refused process ${PID}`));
    for (const [name, msg, reason] of cases) {
      const before = refusals().length;
      a.kernel.send({ peer: a.id, port: 'scheduler' }, { peer: b.id, port: 'scheduler' }, msg);
      expect(await pump(() => refusals().length > before), name).toBe(true);
      expect(refusals().at(-1), name).toMatch(reason);
    }
    await pump(() => false, 500, 0);
    expect((await ps(t)).some((r) => r.pid === PID)).toBe(false);
    // The control: the same image, packed with the cluster's key, is ready, and runs on go, with
    // its unread stdin. (a's own Scheduler does not hear b's answers: it would cancel what it never sent.)
    a.kernel.register('nobody', () => {});
    const outs: string[] = [];
    a.kernel.register('watcher', (env) => {
      const m = env.body as { kind: string; data?: Uint8Array };
      if (m.kind === 'out') outs.push(new TextDecoder().decode(m.data));
    });
    const answers = intercept(a, (m) => m.kind.startsWith('immigrate'));
    const good = { ...immigrate(await pack(raw)), client: { peer: a.id, port: 'watcher' } };
    a.kernel.send({ peer: a.id, port: 'scheduler' }, { peer: b.id, port: 'scheduler' }, good);
    expect(await pump(() => answers.caught().some((m) => m.kind === 'immigrate.ready'))).toBe(true);
    a.kernel.send({ peer: a.id, port: 'scheduler' }, { peer: b.id, port: 'scheduler' }, { kind: 'immigrate.go', ref: good.ref, pid: PID });
    expect(await pump(() => outs.join('') === 'kept\n')).toBe(true);
    const row = await findRow(t, (r) => r.pid === PID);
    expect(row).toMatchObject({ peer: b.id, moves: 1 });
  }, 120_000);
});

describe('failed moves leave the process where it was', () => {
  test('migrate of an unknown pid, to an unknown peer, or to where it runs: migrate.failed with the reason', async () => {
    const { peers, pump, terminal } = await simCluster(2);
    const [a, b] = peers as [typeof peers[0], typeof peers[0]];
    const t = terminal(a);
    expect(await t.request({ kind: 'migrate', pid: 'abcdef.99', to: b.id })).toMatchObject({ kind: 'migrate.failed', message: 'no such process: abcdef.99' });
    const pid = await t.run('cat', [], { on: b, interactive: true });
    expect(await t.request({ kind: 'migrate', pid, to: 'ffffffff' })).toMatchObject({ kind: 'migrate.failed', message: 'no peer ffffffff in the cluster' });
    expect(await t.request({ kind: 'migrate', pid, to: b.id })).toMatchObject({ kind: 'migrate.failed', message: expect.stringMatching(/already runs on/) });
    t.send({ kind: 'stdin', pid, data: text('still here\n') });
    t.send({ kind: 'stdin.end', pid });
    expect(await pump(() => !!t.exit(pid))).toBe(true);
    expect(t.raw(pid)).toBe('still here\n');
  }, 120_000);

  test('the target crashes mid-move: the process goes on on its old host, every tick once, stdin sent meanwhile delivered once', async () => {
    const { peers, pump, terminal, seenOn, crash } = await simCluster(3);
    const [a, b, c] = peers as [typeof peers[0], typeof peers[0], typeof peers[0]];
    const t = terminal(a);
    const pid = await t.run('cat', [], { on: b, interactive: true });
    t.send({ kind: 'stdin', pid, data: text('1\n') });
    expect(await pump(() => t.raw(pid) === '1\n')).toBe(true);
    t.send({ kind: 'migrate', req: 77, pid, to: c.id });
    crash(c);
    t.send({ kind: 'stdin', pid, data: text('2\n') });
    expect(await pump(() => t.msgs.some((m) => 'req' in m && m.req === 77), 200_000)).toBe(true);
    expect(t.msgs.find((m) => 'req' in m && m.req === 77)).toMatchObject({ kind: 'migrate.failed', message: expect.stringMatching(/went away|cannot be reached|did not take it/) });
    expect(await seenOn(t, pid, b)).toMatchObject({ peer: b.id });
    t.send({ kind: 'stdin', pid, data: text('3\n') });
    t.send({ kind: 'stdin.end', pid });
    expect(await pump(() => !!t.exit(pid))).toBe(true);
    expect(t.exit(pid)).toMatchObject({ code: 0 });
    expect(t.raw(pid)).toBe('1\n2\n3\n');
  }, 120_000);
});

describe('the hand-over commits: never two copies', () => {
  /** Records, after every step, on how many peers `pid` runs (executors, and hosts' own table rows). */
  function watch(c: Awaited<ReturnType<typeof simCluster>>, pid: string) {
    const seen = { executors: 0, tables: 0, on: new Set<string>() };
    c.monitors.push(() => {
      const r = c.runningOn(pid);
      seen.executors = Math.max(seen.executors, r.executors.length);
      seen.tables = Math.max(seen.tables, r.tables.length);
      for (const p of r.executors) seen.on.add(p);
    });
    return seen;
  }

  /**
   * `busy` runs on b (started from a's terminal); a migrate to t3 (request `req`) is under way
   * and t3's `immigrate.go` is caught, not yet delivered: b is committed to the move.
   */
  async function movedUntilGo(seed: string, req: number) {
    const c = await simCluster(3, { seed });
    const [a, b, t3] = c.peers as [typeof c.peers[0], typeof c.peers[0], typeof c.peers[0]];
    const t = c.terminal(a);
    const lines = (pid: string) => t.raw(pid).split('\n').length - 1;
    const pid = await t.run('busy', [String(BUSY_EVERY)], { on: b });
    expect(await c.pump(() => lines(pid) >= 1)).toBe(true);
    const seen = watch(c, pid);
    const go = c.intercept(t3, (m) => m.kind === 'immigrate.go');
    t.send({ kind: 'migrate', req, pid, to: t3.id });
    expect(await c.pump(() => go.caught().length > 0)).toBe(true);
    return { c, b, t3, t, pid, lines, seen, go };
  }

  test('the old host gives up (timeout) just as the target would start it: the target never runs it, output is the unmoved one', async () => {
    const c = await simCluster(3, { seed: 'race' });
    const { peers, pump, terminal, intercept, seenOn } = c;
    const [a, b, t3] = peers as [typeof peers[0], typeof peers[0], typeof peers[0]];
    const t = terminal(a);
    const lines = (pid: string) => t.raw(pid).split('\n').length - 1;
    const pid = await t.run('busy', [String(BUSY_EVERY)], { on: b });
    expect(await pump(() => lines(pid) >= 1)).toBe(true);
    const seen = watch(c, pid);
    // Whatever the target answers reaches the old host only after the old host gave up on it.
    const late = intercept(b, (m, from) => from === t3.id && 'pid' in m && m.pid === pid && (m.kind.startsWith('immigrate') || m.kind === 'immigrated'));
    t.send({ kind: 'migrate', req: 501, pid, to: t3.id });
    expect(await pump(() => late.caught().length > 0)).toBe(true);
    expect(late.caught()[0]!.kind).toBe('immigrate.ready'); // checked and kept: not running
    const reply = () => t.msgs.find((m) => 'req' in m && m.req === 501);
    expect(await pump(() => !!reply(), IMMIGRATE_TIMEOUT_MS + 5_000, 0)).toBe(true);
    expect(reply()).toMatchObject({ kind: 'migrate.failed', message: expect.stringMatching(/did not take it/) });
    late.release(); // the ready arrives now: it gets a cancel, not a go
    const before = lines(pid);
    expect(await pump(() => lines(pid) >= before + 3)).toBe(true);
    expect(await seenOn(t, pid, b)).toMatchObject({ peer: b.id });
    expect(await t.request({ kind: 'kill', pid })).toMatchObject({ kind: 'kill.ok' });
    expect(await pump(() => !!t.exit(pid))).toBe(true);
    expect(seen.executors).toBe(1);
    expect(seen.tables).toBe(1);
    expect([...seen.on]).toEqual([b.id]);
    expect(c.schedulerOf(t3).table().some((r) => r.pid === pid && r.peer === t3.id)).toBe(false);
    expect(t.raw(pid)).toBe(busyLines(lines(pid)));
  }, 180_000);

  test('the target vanishes after go, before it ran the process: it goes on on its old host from the kept image, output once', async () => {
    const { c, b, t3, t, pid, lines, seen } = await movedUntilGo('gone-after-go', 502);
    const { pump, seenOn, crash } = c;
    crash(t3); // b is committed now: only the view can tell it the target is gone
    const reply = () => t.msgs.find((m) => 'req' in m && m.req === 502);
    expect(await pump(() => !!reply(), 200_000)).toBe(true);
    expect(reply()).toMatchObject({ kind: 'migrate.failed', message: expect.stringMatching(/went away during the move/) });
    const before = lines(pid);
    expect(await pump(() => lines(pid) >= before + 3)).toBe(true);
    expect(await seenOn(t, pid, b)).toMatchObject({ peer: b.id });
    expect(t.lost(pid)).toBeUndefined();
    expect(await t.request({ kind: 'kill', pid })).toMatchObject({ kind: 'kill.ok' });
    expect(await pump(() => !!t.exit(pid))).toBe(true);
    expect(seen.executors).toBe(1);
    expect([...seen.on]).toEqual([b.id]);
    expect(t.raw(pid)).toBe(busyLines(lines(pid)));
  }, 180_000);

  test('the old host leaves right after go (a closing tab drains so): the process arrives and goes on on the target; its spawner neither restarts it nor calls it lost', async () => {
    const { c, b, t3, t, pid, lines, seen, go } = await movedUntilGo('leave-after-go', 503);
    const { sim, pump, seenOn } = c;
    go.release();
    // The target's view drops b before the thawed process reports its first state (forced here:
    // the thaw takes real time in the executor, the goodbye only virtual time), then b is gone.
    (c.schedulerOf(t3) as unknown as { peerGone(p: string): void }).peerGone(b.id);
    await sim.leave(b);
    const before = lines(pid);
    expect(await pump(() => lines(pid) >= before + 3, 200_000)).toBe(true);
    expect(await seenOn(t, pid, t3)).toMatchObject({ peer: t3.id });
    expect(t.lost(pid)).toBeUndefined();
    expect(await t.request({ kind: 'kill', pid })).toMatchObject({ kind: 'kill.ok' });
    expect(await pump(() => !!t.exit(pid))).toBe(true);
    expect(seen.executors).toBe(1);
    expect(t.raw(pid)).toBe(busyLines(lines(pid)));
  }, 180_000);

  test('an image that never gets go is never run: dropped after its timeout, on cancel, and a late go is refused', async () => {
    const c = await simCluster(2, { seed: 'no-go' });
    const { peers, pump, intercept, schedulerOf } = c;
    const [a, b] = peers as [typeof peers[0], typeof peers[0]];
    const seen = watch(c, PID);
    let listed = false;
    c.monitors.push(() => void (listed ||= schedulerOf(b).table().some((r) => r.pid === PID)));
    const key = await imageKey('sim-cluster-token-0001', simHmac);
    const cat = program('cat');
    const image = await packImage(await catImage(), key, simHmac);
    a.kernel.register('nobody', () => {});
    // a's Scheduler never hears b's answers (it would cancel what it did not send): the test is a.
    const answers = intercept(a, (m) => m.kind.startsWith('immigrate'));
    const toB = (m: PeerMessage) => a.kernel.send({ peer: a.id, port: 'scheduler' }, { peer: b.id, port: 'scheduler' }, m);
    const answer = (ref: number, kind: string) => answers.caught().find((m) => 'ref' in m && m.ref === ref && m.kind === kind);
    const immigrate = (ref: number): PeerMessage => ({
      kind: 'immigrate', ref, pid: PID, name: 'cat', args: [], env: {}, hash: hex(cat), module: cat, image,
      client: { peer: a.id, port: 'nobody' }, interactive: true, spawner: a.id, startedAt: 0, moves: 1,
    });
    // No go at all: kept until IMMIGRATE_TIMEOUT_MS, then dropped and said so.
    toB(immigrate(1));
    expect(await pump(() => !!answer(1, 'immigrate.ready'))).toBe(true);
    expect(await pump(() => !!answer(1, 'immigrate.failed'), IMMIGRATE_TIMEOUT_MS + 5_000, 0)).toBe(true);
    expect(answer(1, 'immigrate.failed')).toMatchObject({ reason: expect.stringMatching(/no go came .* never run/) });
    toB({ kind: 'immigrate.go', ref: 1, pid: PID }); // too late
    expect(await pump(() => answers.caught().filter((m) => m.kind === 'immigrate.failed').length === 2)).toBe(true);
    expect(answers.caught().at(-1)).toMatchObject({ ref: 1, reason: expect.stringMatching(/not kept here/) });
    // Cancelled when ready: dropped; a go after that is refused.
    toB(immigrate(2));
    expect(await pump(() => !!answer(2, 'immigrate.ready'))).toBe(true);
    toB({ kind: 'immigrate.cancel', ref: 2, pid: PID });
    toB({ kind: 'immigrate.go', ref: 2, pid: PID });
    expect(await pump(() => !!answer(2, 'immigrate.failed'))).toBe(true);
    // A go from the right peer with another ref is no go for this one; a malformed go is refused like any bad message.
    toB(immigrate(3));
    expect(await pump(() => !!answer(3, 'immigrate.ready'))).toBe(true);
    toB({ kind: 'immigrate.go', ref: 4, pid: PID });
    toB({ kind: 'immigrate.go', ref: 3, pid: 'not a pid' } as PeerMessage);
    expect(await pump(() => !!answer(4, 'immigrate.failed'))).toBe(true);
    await pump(() => false, 500, 0);
    expect(c.sim.trace.some((l) => /bad scheduler message .*not a pid/.test(l))).toBe(true);
    toB({ kind: 'immigrate.cancel', ref: 3, pid: PID });
    await pump(() => false, 500, 0);
    expect(seen.executors).toBe(0);
    expect(listed).toBe(false);
    // The control: the same image with go runs (so the checks above could have seen it).
    toB(immigrate(5));
    expect(await pump(() => !!answer(5, 'immigrate.ready'))).toBe(true);
    toB({ kind: 'immigrate.go', ref: 5, pid: PID });
    expect(await pump(() => !!answer(5, 'immigrated'))).toBe(true);
    expect(seen.executors).toBe(1);
    expect(listed).toBe(true);
  }, 180_000);
});
