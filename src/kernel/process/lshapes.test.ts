// The `lshapes` import module: every call of the ABI from C (programs/c/lshapes_calls.c, run as
// parent, children and sleeper through the executor and a fake Scheduler), and its state in
// thread snapshots (a thread blocked in recv or call resumes elsewhere with its mailbox).
import { beforeAll, describe, expect, it } from 'vitest';
import { Wasi } from '../wasi/preview1.ts';
import { CollectOutput } from '../wasi/streams.ts';
import { buildPrograms, expected, program } from '../wasi/test-programs.ts';
import { rewriteModule } from '../wasm/rewrite.ts';
import { decodeSnapshot, encodeSnapshot } from '../wasm/snapshot.ts';
import { WasmThread } from '../wasm/thread.ts';
import type { RewrittenModule } from '../wasm/types.ts';
import { LshapesHost, MAILBOX_MAX_MESSAGES, type LshapesSnapshot } from './lshapes.ts';
import { EXIT_CANNOT_START, EXIT_KILLED, type KernelReply, type KernelRequest } from './protocol.ts';
import { FakeScheduler, PEER } from './test-scheduler.ts';

beforeAll(() => buildPrograms(), 600_000);

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('lshapes from C', () => {
  it('lshapes_calls prints the expected output; its children end as they should', async () => {
    // two executors: children start on the other one, so messages cross executors
    const s = new FakeScheduler({ lshapes_calls: program('lshapes_calls'), garbage: enc('garbage, not wasm') }, 2);
    const parent = s.start('lshapes_calls');
    const e = await parent.exited;
    expect(s.text(parent.pid, 2)).toBe('');
    expect(s.text(parent.pid)).toBe(expected('lshapes_calls'));
    expect(e.code).toBe(0);
    expect([...s.procs.values()].map((p) => `${p.name}:${p.exit?.code}`)).toEqual([
      'lshapes_calls:0',
      'garbage:1', // spawn garbage: ENOEXEC
      'lshapes_calls:5', // the child
      'lshapes_calls:137', // the sleeper
    ]);
    const [, garbage, child, sleeper] = [...s.procs.values()];
    expect(garbage!.exit!.code).toBe(EXIT_CANNOT_START);
    expect(sleeper!.exit!.message).toBe(`killed by ${parent.pid}`);
    expect(sleeper!.exit!.code).toBe(EXIT_KILLED);
    expect(child!.executor).not.toBe(parent.executor);
    for (const p of [child!, sleeper!]) expect(s.text(p.pid) + s.text(p.pid, 2)).toBe('');
    // the parent's sends went out in order: the flood is numbered 0..1099 and "go" comes after
    const flood = parent.calls.filter((c) => c.op === 'send' && c.port === 'flood').map((c) => (c.op === 'send' ? new TextDecoder().decode(c.data) : ''));
    expect(flood).toEqual(Array.from({ length: 1100 }, (_, i) => String(i)));
    const sends = parent.calls.filter((c) => c.op === 'send').map((c) => (c.op === 'send' ? c.port : ''));
    expect(sends.indexOf('inbox', sends.indexOf('flood'))).toBeGreaterThan(sends.lastIndexOf('flood'));
    // what the parent printed before its first kernel call was posted before that call
    const before = parent.log.slice(0, parent.log.indexOf('call')).filter((t) => t === 'out').length;
    const printed = parent.out.slice(0, before).map((o) => new TextDecoder().decode(o.data)).join('');
    expect(printed.endsWith('peer_id cap 0: ENOBUFS\n')).toBe(true);
    expect(s.anomalies).toEqual([]);
    expect(s.driver.size).toBe(0);
  });
});

describe('lshapes state in snapshots', () => {
  let rw: RewrittenModule;
  beforeAll(async () => {
    // the executor's default options, so this shares its rewrite when the files run together
    rw = await rewriteModule(program('lshapes_calls'), { maxMemoryBytes: 512 << 20 });
  });

  function host(args: string[], parent?: string) {
    const requests: KernelRequest[] = [];
    const out = new CollectOutput();
    const ls = new LshapesHost({
      pid: 'aaaaaa.9',
      peer: PEER,
      parent,
      request: (req) => {
        requests.push(req);
        return Promise.resolve<KernelReply>({ ok: true, op: 'send' });
      },
    });
    const wasi = new Wasi({ args: ['lshapes_calls', ...args], stdout: out });
    return { requests, out, ls, wasi };
  }

  it('a thread blocked in recv resumes from its snapshot with its mailbox, ports and senders', async () => {
    const a = host(['mailbox']);
    const t = await WasmThread.create(rw, [a.wasi, a.ls]);
    let r = t.run();
    expect(r.state).toBe('blocked');
    expect(t.waitingOn?.name).toBe('recv');
    a.ls.deliver('b', 'bbbbbb.1', 0, enc('for b'));
    a.ls.deliver('c', 'bbbbbb.2', 7, enc('for c, from a call'));
    a.ls.deliver('#x', 'bbbbbb.2', 0, enc('runtime ports are not for programs'));
    expect(a.ls.queuedMessages).toBe(2);
    const snap = decodeSnapshot(encodeSnapshot(t.snapshot())); // through the wire format
    a.ls.dispose();

    const b = host(['mailbox']);
    const t2 = await WasmThread.restore(rw, snap, [b.wasi, b.ls]);
    expect(b.ls.queuedMessages).toBe(2);
    r = t2.run(); // the recv is issued again: still nothing on "a"
    expect(r.state).toBe('blocked');
    b.ls.deliver('a', 'bbbbbb.1', 0, enc('for a'));
    await (r as { until: Promise<void> }).until;
    expect(t2.run()).toEqual({ state: 'exited', code: 0 });
    expect(a.out.text()).toBe('');
    expect(b.out.text()).toBe('a: ok "for a"\nb: ok "for b"\nc: ok "for c, from a call" token yes\n');
    // the reply goes to the caller's reply port for its own token
    expect(b.requests).toEqual([{ op: 'send', to: 'bbbbbb.2', port: '#reply:7', data: enc('from the mailbox'), token: 0, seq: 1 }]);
  });

  it('a thread blocked in call does not send again when restored, and takes the reply there', async () => {
    const a = host(['child', 'z'], 'pppppp.1');
    const t = await WasmThread.create(rw, [a.wasi, a.ls]);
    let r = t.run();
    expect(t.waitingOn?.name).toBe('recv');
    a.ls.deliver('inbox', 'pppppp.1', 0, enc('hi'));
    await (r as { until: Promise<void> }).until;
    r = t.run();
    expect(t.waitingOn?.name).toBe('call');
    expect(a.requests).toEqual([
      { op: 'send', to: 'pppppp.1', port: 'ctl', data: enc("child got 'hi' from handle 0, arg 'z'"), token: 1, seq: 1 },
    ]);
    const snap = t.snapshot();
    expect((snap.hostState['lshapes'] as LshapesSnapshot).calling).toEqual({ token: 1, reply: null, error: 0, to: 'pppppp.1', port: 'ctl', timeoutMs: -1 });
    a.ls.dispose();

    const b = host(['child', 'z'], 'pppppp.1');
    const t2 = await WasmThread.restore(rw, structuredClone(snap), [b.wasi, b.ls]);
    r = t2.run();
    expect(r.state).toBe('blocked');
    expect(b.requests).toEqual([]); // not sent twice
    b.ls.deliver('#reply:2', 'pppppp.1', 0, enc('pong')); // another call's reply: dropped
    b.ls.deliver('#reply:1', 'pppppp.1', 0, enc('pong'));
    await (r as { until: Promise<void> }).until;
    r = t2.run(); // the child goes on: a long message to the parent, then waits for "go"
    expect(r.state).toBe('blocked');
    expect(t2.waitingOn?.name).toBe('recv');
    expect(b.requests.map((q) => (q.op === 'send' ? [q.port, q.data.length, q.token] : q.op))).toEqual([['ctl', 300, 0]]);
    t2.terminate(137);
    b.ls.dispose();
  });
});

describe('LshapesHost', () => {
  const none = (): Promise<KernelReply> => new Promise(() => {});

  it('bounds the mailbox by messages and bytes, dropping the oldest', () => {
    const ls = new LshapesHost({ pid: 'a.1', peer: PEER, request: none });
    for (let i = 0; i < MAILBOX_MAX_MESSAGES + 10; i++) ls.deliver('p', 'b.1', 0, enc(String(i)));
    expect(ls.queuedMessages).toBe(MAILBOX_MAX_MESSAGES);
    let snap = ls.snapshot();
    expect(new TextDecoder().decode(snap.mailbox[0]!.data)).toBe('10');
    for (let i = 0; i < 20; i++) ls.deliver('q', 'b.1', 0, new Uint8Array(1 << 20));
    expect(ls.queuedMessages).toBe(16); // 16 MiB of messages: the small ones went first
    snap = ls.snapshot();
    expect(snap.mailbox.every((m) => m.port === 'q')).toBe(true);
    ls.deliver('q', 'b.1', 0, new Uint8Array((1 << 20) + 1)); // too big: not taken
    expect(ls.queuedMessages).toBe(16);
  });

  it('a sender inventing port names does not grow the mailbox: emptied ports are forgotten', () => {
    const ls = new LshapesHost({ pid: 'a.1', peer: PEER, request: none });
    for (let i = 0; i < MAILBOX_MAX_MESSAGES * 4; i++) ls.deliver(`port${i}`, 'b.1', 0, enc('x'));
    expect(ls.queuedMessages).toBe(MAILBOX_MAX_MESSAGES);
    expect(ls.mailboxPorts).toBe(MAILBOX_MAX_MESSAGES);
  });

  it('refuses a snapshot of another process or of something else', () => {
    const a = new LshapesHost({ pid: 'a.1', peer: PEER, request: none });
    const b = new LshapesHost({ pid: 'a.2', peer: PEER, request: none });
    expect(() => b.restore(a.snapshot())).toThrow(/snapshot of process a\.1/);
    expect(() => b.restore({ version: 2 })).toThrow(/not an lshapes snapshot/);
    a.deliver('p', 'x.1', 3, enc('m'));
    const c = new LshapesHost({ pid: 'a.1', peer: PEER, request: none });
    c.restore(structuredClone(a.snapshot()));
    expect(c.snapshot()).toEqual(a.snapshot());
  });
});
