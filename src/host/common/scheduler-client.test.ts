// The Scheduler client against a fake Scheduler port on a real Kernel (virtual clock, no links).
import { describe, expect, it } from 'vitest';
import { identityFrom } from '../../kernel/identity.ts';
import { Kernel } from '../../kernel/kernel.ts';
import type { Envelope, NetworkInterface } from '../../kernel/types.ts';
import type { ClientMessage, ClientRequest, ProcessInfo } from '../../servers/scheduler/client.ts';
import { Scheduler, TimerOwner, settle } from '../sim/clock.ts';
import { simCryptoDriver, simKeyPair } from '../sim/crypto.ts';
import { SimRandom } from '../sim/random.ts';
import { REQUEST_TIMEOUT_MS, RUN_TIMEOUT_MS, SchedulerClient, parseClientMessage } from './scheduler-client.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

const nic: NetworkInterface = { attach() {}, send() {}, bufferedAmount: () => 0, close() {} };

async function world() {
  const sched = new Scheduler();
  const random = new SimRandom('scheduler-client-test');
  const crypto = simCryptoDriver(random);
  const identity = await identityFrom(crypto, simKeyPair(random.bytes(32)));
  const kernel = await Kernel.create({
    identity,
    token: 'scheduler-client-test-token',
    drivers: {
      nic,
      clock: sched.clockFor(new TimerOwner(identity.peerId)),
      random,
      crypto,
      console: { write: () => {} },
      info: { kind: 'sim', capacity: 1, version: 'test', load: () => 0 },
    },
  });
  /** What the client sent to the fake Scheduler port. */
  const requests: ClientRequest[] = [];
  let client: Envelope['from'] | undefined;
  kernel.register('scheduler', (env) => {
    client = env.from;
    requests.push(env.body as ClientRequest);
  });
  const sc = new SchedulerClient(kernel, 'shell');
  /** The Scheduler answers (any body, valid or not). */
  const send = (...bodies: unknown[]) => {
    for (const b of bodies) kernel.send({ peer: kernel.self, port: 'scheduler' }, client ?? { peer: kernel.self, port: 'shell' }, b);
  };
  /** The request that was sent last (after letting the kernel deliver it). */
  const last = async <K extends ClientRequest['kind']>(kind: K) => {
    await settle();
    const r = requests.at(-1);
    expect(r?.kind).toBe(kind);
    return r as Extract<ClientRequest, { kind: K }>;
  };
  const advance = (ms: number) => sched.run(sched.now + ms);
  return { kernel, sc, requests, send, last, advance, sched };
}

function row(pid: string, extra: Partial<ProcessInfo> = {}): ProcessInfo {
  return { pid, name: 'primes', args: ['10'], peer: 'p'.repeat(32), state: 'RUNNING', cpuMs: 5, startedAt: 1, ...extra };
}

const out = (pid: string, text: string, fd: 1 | 2 = 1): ClientMessage => ({ kind: 'out', pid, fd, data: enc.encode(text) });

/** Starts a run and answers it with run.ok for `pid`. `log` gets "fd:text" for each output. */
async function started(w: Awaited<ReturnType<typeof world>>, pid: string, log: string[] = []) {
  const p = w.sc.run('primes', ['10'], { onOutput: (fd, data) => log.push(`${fd}:${dec.decode(data)}`) });
  const req = await w.last('run');
  w.send({ kind: 'run.ok', req: req.req, pid, peer: 'p'.repeat(32) });
  const h = await p;
  return { h, log };
}

describe('SchedulerClient.run', () => {
  it('sends the run request with its options and resolves with pid and peer', async () => {
    const w = await world();
    const module = new Uint8Array([0, 97, 115, 109]);
    const p = w.sc.run('primes', ['100', '4'], { on: 'a1f', env: { X: '1' }, module, interactive: true, onOutput: () => {} });
    const req = await w.last('run');
    expect(req).toEqual({ kind: 'run', req: req.req, name: 'primes', args: ['100', '4'], on: 'a1f', env: { X: '1' }, module, interactive: true, acks: true });
    w.send({ kind: 'run.ok', req: req.req, pid: 'abc123.1', peer: 'f'.repeat(32) });
    const h = await p;
    expect([h.pid, h.peer]).toEqual(['abc123.1', 'f'.repeat(32)]);
    expect(w.sc.liveRuns).toEqual(['abc123.1']);
  });

  it('delivers output in order and settles exit only after all of it, even right behind run.ok', async () => {
    const w = await world();
    const events: string[] = [];
    const p = w.sc.run('primes', [], { onOutput: (fd, data) => events.push(`${fd}:${dec.decode(data)}`) });
    const req = await w.last('run');
    // All in one go: the outs are delivered before run()'s continuation runs.
    w.send(
      { kind: 'run.ok', req: req.req, pid: 'abc123.1', peer: 'f'.repeat(32) },
      out('abc123.1', 'one\n'),
      out('abc123.1', 'oops\n', 2),
      out('abc123.1', 'two\n'),
      { kind: 'exit', pid: 'abc123.1', code: 0 },
    );
    const h = await p;
    const exit = await h.exit.then((e) => {
      events.push('exit');
      return e;
    });
    expect(exit).toEqual({ code: 0 });
    expect(events).toEqual(['1:one\n', '2:oops\n', '1:two\n', 'exit']);
    expect(w.sc.liveRuns).toEqual([]);
  });

  it('passes the exit message on', async () => {
    const w = await world();
    const { h } = await started(w, 'abc123.1');
    w.send({ kind: 'exit', pid: 'abc123.1', code: 134, message: 'trap: unreachable' });
    await expect(h.exit).resolves.toEqual({ code: 134, message: 'trap: unreachable' });
  });

  it('rejects with the Scheduler message on run.failed', async () => {
    const w = await world();
    const p = w.sc.run('nope', [], { onOutput: () => {} });
    const req = await w.last('run');
    w.send({ kind: 'run.failed', req: req.req, message: 'no such program: nope' });
    await expect(p).rejects.toThrow('no such program: nope');
  });

  it('rejects exit when the process is lost', async () => {
    const w = await world();
    const { h, log } = await started(w, 'abc123.1');
    w.send(out('abc123.1', 'partial'), { kind: 'lost', pid: 'abc123.1', message: 'peer 7e57ab1e left' });
    await expect(h.exit).rejects.toThrow('peer 7e57ab1e left');
    expect(log).toEqual(['1:partial']);
  });

  it('holds output for an unknown pid that comes before run.ok and gives it to that run', async () => {
    const w = await world();
    const log: string[] = [];
    const p = w.sc.run('primes', [], { onOutput: (fd, d) => log.push(dec.decode(d)) });
    const req = await w.last('run');
    w.send(out('abc123.1', 'early '), out('abc123.1', 'bird'));
    await settle();
    expect(log).toEqual([]);
    w.send({ kind: 'run.ok', req: req.req, pid: 'abc123.1', peer: 'f'.repeat(32) }, { kind: 'exit', pid: 'abc123.1', code: 0 });
    await (await p).exit;
    expect(log).toEqual(['early ', 'bird']);
  });

  it('keeps delivering a live run\'s output while another run request is pending', async () => {
    const w = await world();
    const a = await started(w, 'abc123.1');
    void w.sc.run('primes', [], { onOutput: () => {} }).catch(() => {});
    await w.last('run');
    w.send(out('abc123.1', 'still here'));
    await settle();
    expect(a.log).toEqual(['1:still here']);
  });

  it('routes output of child pids: to the only live run, else the latest, else through known parents', async () => {
    const w = await world();
    const a = await started(w, 'abc123.1');
    w.send(out('abc123.7', 'child of the only run'));
    await settle();
    expect(a.log).toEqual(['1:child of the only run']);

    const b = await started(w, 'abc123.2');
    // A new child while two runs live: the latest run gets it. A child already routed stays.
    w.send(out('abc123.8', 'new child'), out('abc123.7', 'old child'));
    await settle();
    expect(b.log).toEqual(['1:new child']);
    expect(a.log).toEqual(['1:child of the only run', '1:old child']);

    // With the table known, a grandchild of run 1 goes to run 1.
    const stop = w.sc.watch(() => {});
    w.send({ kind: 'table', rows: [row('abc123.1'), row('abc123.2'), row('abc123.5', { parent: 'abc123.1' }), row('abc123.9', { parent: 'abc123.5' })] });
    w.send(out('abc123.9', 'grandchild'));
    await settle();
    expect(a.log.at(-1)).toBe('1:grandchild');
    expect(b.log).toEqual(['1:new child']);
    stop();
  });

  it('drops output that comes after a run ended instead of giving it to another run', async () => {
    const w = await world();
    const a = await started(w, 'abc123.1');
    w.send(out('abc123.3', 'child'));
    await settle();
    const b = await started(w, 'abc123.2');
    w.send({ kind: 'exit', pid: 'abc123.1', code: 0 }, out('abc123.1', 'late'), out('abc123.3', 'late child'));
    await a.h.exit;
    await settle();
    expect(a.log).toEqual(['1:child']);
    expect(b.log).toEqual([]);
    expect(w.sc.stats.orphans).toBe(2);
  });

  it('times out a run after 60 s and other requests after 10 s, with a clear message', async () => {
    const w = await world();
    const run = w.sc.run('primes', [], { onOutput: () => {} });
    const runErr = run.catch((e: Error) => e);
    const ps = w.sc.ps();
    const psErr = ps.catch((e: Error) => e);
    await w.advance(REQUEST_TIMEOUT_MS - 1);
    await settle();
    expect(await Promise.race([psErr, Promise.resolve('pending')])).toBe('pending');
    await w.advance(1);
    expect(((await psErr) as Error).message).toBe('the scheduler did not answer ps within 10 s');
    await w.advance(RUN_TIMEOUT_MS - REQUEST_TIMEOUT_MS - 1);
    expect(await Promise.race([runErr, Promise.resolve('pending')])).toBe('pending');
    await w.advance(1);
    expect(((await runErr) as Error).message).toBe('the scheduler did not answer run primes within 60 s');
    // A late answer is counted, not delivered.
    const req = w.requests.find((r) => r.kind === 'run')!;
    w.send({ kind: 'run.ok', req: 'req' in req ? req.req : -1, pid: 'x.1', peer: 'f'.repeat(32) });
    await settle();
    expect(w.sc.stats.unmatched).toBe(1);
  });
});

describe('SchedulerClient requests', () => {
  it('stdin and stdin.end go to the Scheduler', async () => {
    const w = await world();
    w.sc.stdin('abc123.1', enc.encode('hi\n'));
    w.sc.stdinEnd('abc123.1');
    await settle();
    expect(w.requests).toEqual([
      { kind: 'stdin', pid: 'abc123.1', data: enc.encode('hi\n') },
      { kind: 'stdin.end', pid: 'abc123.1' },
    ]);
  });

  it('kill resolves on kill.ok and rejects with the message of kill.failed', async () => {
    const w = await world();
    const ok = w.sc.kill('abc123.1');
    const r1 = await w.last('kill');
    expect(r1.pid).toBe('abc123.1');
    w.send({ kind: 'kill.ok', req: r1.req });
    await expect(ok).resolves.toBeUndefined();
    const bad = w.sc.kill('abc123.9');
    const r2 = await w.last('kill');
    w.send({ kind: 'kill.failed', req: r2.req, message: 'no such process: abc123.9' });
    await expect(bad).rejects.toThrow('no such process: abc123.9');
  });

  it('ps returns the valid rows and counts the bad ones; programs returns names', async () => {
    const w = await world();
    const ps = w.sc.ps();
    const r = await w.last('ps');
    w.send({ kind: 'ps.ok', req: r.req, rows: [row('abc123.1'), { pid: 3 }, row('abc123.2', { state: 'EXITED', exitCode: 1 })] });
    expect((await ps).map((x) => x.pid)).toEqual(['abc123.1', 'abc123.2']);
    expect(w.sc.stats.garbage).toBe(1);
    const progs = w.sc.programs();
    const r2 = await w.last('programs');
    w.send({ kind: 'programs.ok', req: r2.req, names: ['primes', 'cat'] });
    expect(await progs).toEqual(['primes', 'cat']);
  });

  it('a reply of the wrong kind does not answer a request', async () => {
    const w = await world();
    const ps = w.sc.ps();
    const r = await w.last('ps');
    w.send({ kind: 'programs.ok', req: r.req, names: [] }, { kind: 'ps.ok', req: r.req, rows: [] });
    expect(await ps).toEqual([]);
    expect(w.sc.stats.unmatched).toBe(1);
  });

  it('watch: one watch message, every listener gets the tables, the last unsubscribe unwatches', async () => {
    const w = await world();
    const a: string[][] = [];
    const b: string[][] = [];
    const stopA = w.sc.watch((rows) => a.push(rows.map((x) => x.pid)));
    await w.last('watch');
    w.send({ kind: 'table', rows: [row('abc123.1')] });
    await settle();
    const stopB = w.sc.watch((rows) => b.push(rows.map((x) => x.pid)));
    expect(b).toEqual([['abc123.1']]); // the last table, at once
    w.send({ kind: 'table', rows: [row('abc123.1'), row('abc123.2')] });
    await settle();
    expect(a).toEqual([['abc123.1'], ['abc123.1', 'abc123.2']]);
    expect(b).toEqual([['abc123.1'], ['abc123.1', 'abc123.2']]);
    stopA();
    await settle();
    expect(w.requests.map((r) => r.kind)).toEqual(['watch']);
    stopB();
    await w.last('unwatch');
  });

  it('ignores and counts garbage without throwing, and keeps working', async () => {
    const w = await world();
    const { h, log } = await started(w, 'abc123.1');
    const errors: string[] = [];
    w.kernel.on((e) => e.type === 'log' && e.level === 'error' && errors.push(e.text));
    w.send(null, 42, 'x', [], { kind: 'nope' }, { kind: 'out', pid: 'abc123.1', fd: 3, data: enc.encode('x') }, { kind: 'out', pid: 'abc123.1', fd: 1, data: 'text' });
    w.send({ kind: 'exit', pid: 'abc123.1', code: '0' }, { kind: 'run.ok', req: 'one', pid: 'a', peer: 'b' }, { kind: 'table', rows: 'all' });
    // From another port than a Scheduler's.
    w.kernel.send({ peer: w.kernel.self, port: 'intruder' }, { peer: w.kernel.self, port: 'shell' }, out('abc123.1', 'forged'));
    await settle();
    expect(w.sc.stats.garbage).toBe(11);
    expect(errors).toEqual([]);
    w.send(out('abc123.1', 'fine'), { kind: 'exit', pid: 'abc123.1', code: 0 });
    await expect(h.exit).resolves.toEqual({ code: 0 });
    expect(log).toEqual(['1:fine']);
  });

  it('takes output and exit from the Scheduler of the peer the process runs on', async () => {
    // A stub kernel: the test plays the remote peer's Scheduler.
    let handler: ((env: Envelope) => void) | undefined;
    const sent: unknown[] = [];
    const self = 'a'.repeat(32);
    const remote = 'b'.repeat(32);
    const sc = new SchedulerClient(
      {
        self,
        register: (_port, h) => (handler = h),
        unregister: () => {},
        send: (_from, _to, body) => sent.push(body) > 0,
        drivers: { clock: { setTimeout: () => () => {} } },
      },
      'shell',
    );
    const deliver = (peer: string, port: string, body: unknown) => handler!({ from: { peer, port }, to: { peer: self, port: 'shell' }, body });
    const log: string[] = [];
    const p = sc.run('primes', [], { on: 'bbbb', onOutput: (_fd, d) => log.push(dec.decode(d)) });
    const req = (sent[0] as { req: number }).req;
    // The remote output may even come before the local run.ok.
    deliver(remote, 'scheduler', out('aaaaaa.1', 'remote '));
    deliver(self, 'scheduler', { kind: 'run.ok', req, pid: 'aaaaaa.1', peer: remote });
    deliver(remote, 'scheduler', out('aaaaaa.1', 'output'));
    deliver(remote, 'shell', out('aaaaaa.1', ' forged'));
    deliver(remote, 'scheduler', { kind: 'exit', pid: 'aaaaaa.1', code: 0 });
    const h = await p;
    expect(h.peer).toBe(remote);
    await expect(h.exit).resolves.toEqual({ code: 0 });
    expect(log.join('')).toBe('remote output');
    expect(sc.stats.garbage).toBe(1);
  });

  it('a listener that throws does not stop the next chunks', async () => {
    const w = await world();
    const seen: string[] = [];
    const p = w.sc.run('primes', [], {
      onOutput: (_fd, d) => {
        seen.push(dec.decode(d));
        throw new Error('listener bug');
      },
    });
    const req = await w.last('run');
    w.send({ kind: 'run.ok', req: req.req, pid: 'abc123.1', peer: 'f'.repeat(32) }, out('abc123.1', 'a'), out('abc123.1', 'b'), { kind: 'exit', pid: 'abc123.1', code: 0 });
    await (await p).exit;
    expect(seen).toEqual(['a', 'b']);
  });

  it('close rejects what is pending and frees the port', async () => {
    const w = await world();
    const { h } = await started(w, 'abc123.1');
    const ps = w.sc.ps();
    await w.last('ps');
    w.sc.close();
    await expect(ps).rejects.toThrow('the scheduler client was closed');
    await expect(h.exit).rejects.toThrow('the scheduler client was closed');
    await expect(w.sc.programs()).rejects.toThrow('closed');
    // The port can be registered again.
    expect(() => new SchedulerClient(w.kernel, 'shell')).not.toThrow();
  });
});

describe('parseClientMessage', () => {
  it('accepts every well-formed message and keeps only known fields', () => {
    expect(parseClientMessage({ kind: 'exit', pid: 'a.1', code: 1, extra: true })).toEqual({ kind: 'exit', pid: 'a.1', code: 1 });
    expect(parseClientMessage({ kind: 'lost', pid: 'a.1', message: 'gone' })).toEqual({ kind: 'lost', pid: 'a.1', message: 'gone' });
    expect(parseClientMessage({ kind: 'kill.ok', req: 3 })).toEqual({ kind: 'kill.ok', req: 3 });
    expect(parseClientMessage({ kind: 'table', rows: [] })).toEqual({ kind: 'table', rows: [] });
  });

  it('refuses malformed ones', () => {
    for (const bad of [undefined, {}, { kind: 'lost', pid: 'a.1' }, { kind: 'exit', pid: 'a.1', code: 1, message: 7 }, { kind: 'kill.ok', req: 1.5 }, { kind: 'programs.ok', req: 1, names: [1] }]) {
      expect(parseClientMessage(bad)).toBeUndefined();
    }
  });
});

describe('SchedulerClient.migrate and drain', () => {
  it('migrate sends the pid and the peer and resolves with where it went and how long it stopped', async () => {
    const w = await world();
    const p = w.sc.migrate('abc123.1', 'ab12');
    const req = await w.last('migrate');
    expect(req).toEqual({ kind: 'migrate', req: req.req, pid: 'abc123.1', to: 'ab12' });
    w.send({ kind: 'migrate.ok', req: req.req, pid: 'abc123.1', peer: 'a'.repeat(32), freezeMs: 12 });
    await expect(p).resolves.toEqual({ peer: 'a'.repeat(32), freezeMs: 12 });
  });

  it('migrate rejects with the Scheduler reason, and after 60 s without an answer', async () => {
    const w = await world();
    const p = w.sc.migrate('abc123.1', 'zz');
    const req = await w.last('migrate');
    w.send({ kind: 'migrate.failed', req: req.req, message: 'no peer matches "zz"' });
    await expect(p).rejects.toThrow('no peer matches "zz"');
    const slow = w.sc.migrate('abc123.1', 'ab12');
    slow.catch(() => {});
    await w.last('migrate');
    w.advance(59_000);
    await settle();
    let settled = false;
    void slow.then(() => (settled = true), () => (settled = true));
    await settle();
    expect(settled).toBe(false);
    w.advance(1_000);
    await expect(slow).rejects.toThrow('the scheduler did not answer migrate abc123.1 within 60 s');
  });

  it('drain resolves with how many moved and how many are left; a kill reply does not answer it', async () => {
    const w = await world();
    const p = w.sc.drain();
    const req = await w.last('drain');
    expect(req).toEqual({ kind: 'drain', req: req.req });
    w.send({ kind: 'kill.ok', req: req.req }, { kind: 'drain.ok', req: req.req, moved: 2, left: 1 });
    await expect(p).resolves.toEqual({ moved: 2, left: 1 });
    expect(w.sc.stats.unmatched).toBe(1);
  });
});

describe('SchedulerClient output offsets (a moved process repeats what it printed)', () => {
  const at = (pid: string, offset: number, text: string, fd: 1 | 2 = 1): ClientMessage => ({ kind: 'out', pid, fd, data: enc.encode(text), at: offset });

  it('drops chunks it already has, trims an overlapping one, and acknowledges every byte', async () => {
    const w = await world();
    const { h, log } = await started(w, 'abc123.1');
    w.send(
      at('abc123.1', 0, 'tick 1\n'),
      at('abc123.1', 7, 'tick 2\n'),
      at('abc123.1', 14, 'tick 3\n'),
      // The process restarted from an image taken after "tick 1": it prints 2 and 3 again.
      at('abc123.1', 7, 'tick 2\n'),
      at('abc123.1', 14, 'tick 3\ntick 4\n', 2),
      at('abc123.1', 28, 'tick 5\n'),
      { kind: 'exit', pid: 'abc123.1', code: 0 },
    );
    await h.exit;
    await settle();
    expect(log).toEqual(['1:tick 1\n', '1:tick 2\n', '1:tick 3\n', '2:tick 4\n', '1:tick 5\n']);
    expect(w.sc.stats).toMatchObject({ repeated: 14, missing: 0 });
    const acked = w.requests.filter((r) => r.kind === 'ack').reduce((n, r) => n + (r.kind === 'ack' ? r.bytes : 0), 0);
    expect(acked).toBe(7 * 7);
  });

  it('keeps offsets per pid (children apart), passes a gap on, and follows chunks without an offset', async () => {
    const w = await world();
    const { log } = await started(w, 'abc123.1');
    w.send(
      at('abc123.1', 0, 'parent\n'),
      at('abc123.2', 0, 'child\n'),
      // The child's offset 0 is its own, not the parent's.
      at('abc123.2', 6, 'more\n'),
      out('abc123.1', 'next\n'),
      at('abc123.1', 7, 'next\n'),
      at('abc123.1', 20, 'after a gap\n'),
    );
    await settle();
    expect(log.map((l) => l.slice(2))).toEqual(['parent\n', 'child\n', 'more\n', 'next\n', 'after a gap\n']);
    expect(w.sc.stats).toMatchObject({ repeated: 5, missing: 8 });
  });

  it('starts afresh for a process after its exit', async () => {
    const w = await world();
    const a = await started(w, 'abc123.1');
    w.send(at('abc123.1', 0, 'one\n'), { kind: 'exit', pid: 'abc123.1', code: 0 });
    await a.h.exit;
    const b = await started(w, 'abc123.7');
    w.send(at('abc123.7', 0, 'one\n'));
    await settle();
    expect(b.log).toEqual(['1:one\n']);
  });
});

describe('parseClientMessage: moves and speculation', () => {
  it('accepts migrate and drain answers, out with an offset, and rows with Fork On Wait counters', () => {
    expect(parseClientMessage({ kind: 'migrate.ok', req: 1, pid: 'a.1', peer: 'p', freezeMs: 3 })).toEqual({ kind: 'migrate.ok', req: 1, pid: 'a.1', peer: 'p', freezeMs: 3 });
    expect(parseClientMessage({ kind: 'migrate.failed', req: 1, message: 'no' })).toEqual({ kind: 'migrate.failed', req: 1, message: 'no' });
    expect(parseClientMessage({ kind: 'drain.ok', req: 2, moved: 1, left: 0 })).toEqual({ kind: 'drain.ok', req: 2, moved: 1, left: 0 });
    const data = enc.encode('x');
    expect(parseClientMessage({ kind: 'out', pid: 'a.1', fd: 1, data, at: 5 })).toEqual({ kind: 'out', pid: 'a.1', fd: 1, data, at: 5 });
    const speculation = { depth: 2, predictions: 5, hits: 3, rollbacks: 0, savedMs: 40 };
    const ok = row('a.1', { state: 'WAIT_CONFIRM', speculation, moves: 1 });
    expect(parseClientMessage({ kind: 'table', rows: [ok] })).toEqual({ kind: 'table', rows: [ok] });
  });

  it('refuses bad offsets, bad answers and rows with broken counters', () => {
    const data = enc.encode('x');
    for (const bad of [
      { kind: 'out', pid: 'a.1', fd: 1, data, at: -1 },
      { kind: 'out', pid: 'a.1', fd: 1, data, at: 1.5 },
      { kind: 'migrate.ok', req: 1, pid: 'a.1', peer: 'p' },
      { kind: 'drain.ok', req: 1, moved: -1, left: 0 },
    ]) {
      expect(parseClientMessage(bad)).toBeUndefined();
    }
    const bad = { rows: 0 };
    const msg = parseClientMessage({ kind: 'table', rows: [row('a.1', { speculation: { depth: 1 } as never }), row('a.2', { moves: -1 }), row('a.3')] }, bad);
    expect(msg).toEqual({ kind: 'table', rows: [row('a.3')] });
    expect(bad.rows).toBe(2);
  });
});
