// What a migration does with bad input and failures: images that are corrupt, truncated, of
// another version, of another program or from outside the cluster are refused with the reason
// and nothing starts; a target that vanishes mid-move leaves the process running on its old
// host, output exactly once; unknown pids and peers get migrate.failed with the reason.
import { beforeAll, describe, expect, test } from 'vitest';
import { createHash } from 'node:crypto';
import { InProcessExecution } from '../../kernel/process/in-process.ts';
import type { ProcessSpec } from '../../kernel/process/protocol.ts';
import { buildPrograms, program } from '../../kernel/wasi/test-programs.ts';
import { simCryptoDriver } from '../../host/sim/crypto.ts';
import { SimRandom } from '../../host/sim/random.ts';
import { imageKey, packImage } from '../dispatcher/transfer.ts';
import type { PeerMessage } from './protocol.ts';
import { simCluster, text } from './test-cluster.ts';

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
    const { sim, peers, pump, terminal, ps, findRow } = await simCluster(2);
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
    // The control: the same image, packed with the cluster's key, runs, with its unread stdin.
    a.kernel.register('nobody', () => {});
    const outs: string[] = [];
    a.kernel.register('watcher', (env) => {
      const m = env.body as { kind: string; data?: Uint8Array };
      if (m.kind === 'out') outs.push(new TextDecoder().decode(m.data));
    });
    a.kernel.send({ peer: a.id, port: 'scheduler' }, { peer: b.id, port: 'scheduler' }, { ...immigrate(await pack(raw)), client: { peer: a.id, port: 'watcher' } });
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
