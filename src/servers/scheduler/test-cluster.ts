// Test harness for the Dispatcher's tests: a simulated cluster whose peers run real programs
// (InProcessExecution), a virtual clock pumped while real time passes for the executors, and a
// raw terminal port that records every ClientMessage (so tests see `at`, `migrate.ok`, `drain.ok`).
import { expect } from 'vitest';
import { InProcessExecution } from '../../kernel/process/in-process.ts';
import { program } from '../../kernel/wasi/test-programs.ts';
import { Simulation, type SimPeer } from '../../host/sim/sim.ts';
import type { Server } from '../../kernel/server.ts';
import type { Envelope } from '../../kernel/types.ts';
import type { KernelReply, ToExecutor } from '../../kernel/process/protocol.ts';
import type { ClientMessage, ClientRequest, ProcessInfo, ProgramStore } from './client.ts';
import type { PeerMessage } from './protocol.ts';
import type { SchedulerOptions, SchedulerServer } from './scheduler.ts';
import type { CheckpointStore } from '../dispatcher/checkpoint-store.ts';

export const NAMES = ['counter', 'cat', 'tee', 'ping', 'pong', 'busy', 'hello', 'primes', 'memhog', 'wc', 'sha256sum', 'grep', 'journal'];
export const store: ProgramStore = { list: async () => NAMES, load: async (name) => (NAMES.includes(name) ? program(name) : undefined) };

export type Out = Extract<ClientMessage, { kind: 'out' }>;
type RunSpeculation = NonNullable<Extract<ClientRequest, { kind: 'run' }>['speculation']>;

export interface Terminal {
  peer: SimPeer;
  msgs: ClientMessage[];
  send(body: ClientRequest): void;
  /** Sends a request with a fresh `req` and waits for the reply carrying it. */
  request<K extends ClientRequest['kind']>(body: Omit<Extract<ClientRequest, { kind: K }>, 'req'> & { kind: K }): Promise<ClientMessage>;
  run(name: string, args: string[], opts?: { on?: SimPeer; interactive?: boolean; speculation?: RunSpeculation }): Promise<string>;
  /** Output of `pid` as received, in arrival order. */
  raw(pid: string, fd?: 1 | 2): string;
  /** Output of `pid` placed by `at` (bytes a client already has are dropped), as a terminal shows it. */
  shown(pid: string): string;
  exit(pid: string): Extract<ClientMessage, { kind: 'exit' }> | undefined;
  lost(pid: string): Extract<ClientMessage, { kind: 'lost' }> | undefined;
}

export async function simCluster(n: number, opts: { seed?: string; scheduler?: SchedulerOptions; slots?: number } = {}) {
  const execs = new Map<string, InProcessExecution>();
  /** Every kernel-call reply the Schedulers posted to their executors, in order (tests count them). */
  const replies: { peer: string; pid: string; reply: KernelReply }[] = [];
  const sim = new Simulation({
    seed: opts.seed ?? 'dispatcher',
    latencyMs: 1,
    jitterMs: 0,
    programs: store,
    exec: (p) => {
      const e = new InProcessExecution(opts.slots ?? 1);
      const post = e.post.bind(e);
      e.post = (executor: number, msg: ToExecutor) => {
        if (msg.t === 'reply') replies.push({ peer: p.id, pid: msg.pid, reply: msg.reply });
        post(executor, msg);
      };
      execs.set(p.id, e);
      return e;
    },
    scheduler: opts.scheduler ?? { rebalance: false, checkpointEveryMs: 0 },
  });
  const peers: SimPeer[] = [];
  for (let i = 0; i < n; i++) peers.push(await sim.addPeer());
  expect(await sim.runUntil(() => sim.converged(), 20_000)).toBe(true);
  await sim.run(1000);
  /**
   * Advances virtual time in 1 ms steps while real time passes for the executors (programs load
   * and sleep in real time), until `done()` or `maxSteps` steps (then `realMs` of real time at
   * least, so a slow machine's cold module rewrite is not mistaken for a failure).
   */
  /** Called after every pump step (tests that watch the whole cluster at every moment). */
  const monitors: (() => void)[] = [];
  /**
   * Looks (20 simulated ms apart) that seenOn and findRow take at least, whatever the real
   * time: 60 s simulated covers noticing a crashed peer (5 s silence) and a restart; on a
   * loaded machine 30 real seconds can be fewer looks than that (a restart then looked lost).
   */
  const MIN_LOOKS = 3000;
  const pump = async (done: () => boolean, maxSteps = 60_000, realMs = 20_000): Promise<boolean> => {
    const until = Date.now() + realMs;
    for (let i = 0; !done() && (i < maxSteps || Date.now() < until); i++) {
      await sim.run(1);
      await new Promise((r) => setImmediate(r));
      for (const m of monitors) m();
    }
    return done();
  };
  let nextPort = 0;
  let nextReq = 0;
  const terminal = (peer: SimPeer): Terminal => {
    const msgs: ClientMessage[] = [];
    const port = `term${++nextPort}`;
    peer.kernel.register(port, (env) => msgs.push(env.body as ClientMessage));
    const send = (body: ClientRequest) => peer.kernel.send({ peer: peer.id, port }, { peer: peer.id, port: 'scheduler' }, body);
    const outs = (pid: string) => msgs.filter((m): m is Out => m.kind === 'out' && m.pid === pid);
    const t: Terminal = {
      peer,
      msgs,
      send,
      async request(body) {
        const req = ++nextReq;
        send({ ...body, req } as ClientRequest);
        let reply: ClientMessage | undefined;
        const found = await pump(() => !!(reply = msgs.find((m) => 'req' in m && m.req === req)), 200_000);
        if (!found) throw new Error(`no reply to ${body.kind}`);
        return reply!;
      },
      async run(name, args, o = {}) {
        const r = await t.request({ kind: 'run', name, args, ...(o.on ? { on: o.on.id } : {}), ...(o.interactive ? { interactive: true } : {}), ...(o.speculation ? { speculation: o.speculation } : {}) });
        if (r.kind !== 'run.ok') throw new Error(JSON.stringify(r));
        return r.pid;
      },
      raw: (pid, fd) =>
        outs(pid)
          .filter((m) => fd === undefined || m.fd === fd)
          .map((m) => new TextDecoder().decode(m.data))
          .join(''),
      shown(pid) {
        let have = new Uint8Array(0);
        for (const m of outs(pid)) {
          const at = m.at ?? have.length;
          if (at > have.length) throw new Error(`${pid}: a gap in the output at ${have.length} (next piece at ${at})`);
          const fresh = m.data.subarray(have.length - at);
          if (fresh.length === 0) continue;
          const next = new Uint8Array(have.length + fresh.length);
          next.set(have);
          next.set(fresh, have.length);
          have = next;
        }
        return new TextDecoder().decode(have);
      },
      exit: (pid) => msgs.find((m): m is Extract<ClientMessage, { kind: 'exit' }> => m.kind === 'exit' && m.pid === pid),
      lost: (pid) => msgs.find((m): m is Extract<ClientMessage, { kind: 'lost' }> => m.kind === 'lost' && m.pid === pid),
    };
    return t;
  };
  /** The cluster table as `peer` sees it. */
  const ps = async (t: Terminal): Promise<ProcessInfo[]> => {
    const r = await t.request({ kind: 'ps' });
    if (r.kind !== 'ps.ok') throw new Error(JSON.stringify(r));
    return r.rows;
  };
  /** Waits (pumping) until `peer`'s table shows `pid` on `host`. */
  const seenOn = async (t: Terminal, pid: string, host: SimPeer): Promise<ProcessInfo | undefined> => {
    const until = Date.now() + 30_000;
    for (let i = 0; i < MIN_LOOKS || Date.now() < until; i++) {
      const row = (await ps(t)).find((r) => r.pid === pid);
      if (row && row.peer === host.id && row.state !== 'MIGRATING') return row;
      await pump(() => false, 20, 0);
    }
    return undefined;
  };
  /** Waits (pumping) until `peer`'s table has a row that `pred` accepts. */
  const findRow = async (t: Terminal, pred: (r: ProcessInfo) => boolean): Promise<ProcessInfo | undefined> => {
    const until = Date.now() + 30_000; // programs load and run in real time
    for (let i = 0; i < MIN_LOOKS || Date.now() < until; i++) {
      const row = (await ps(t)).find(pred);
      if (row) return row;
      await pump(() => false, 20, 0);
    }
    return undefined;
  };
  /**
   * The peer dies at once (sim.crash). Its executors share this Node process with the others and
   * would run on as orphans, slowing every pump: their processes are stopped too, as a dead tab's would be.
   */
  const crash = (peer: SimPeer) => {
    sim.crash(peer);
    const e = execs.get(peer.id)!;
    for (const [i, x] of e.executors.entries()) for (const pid of x.pids()) e.post(i, { t: 'kill', pid, reason: 'its peer crashed' });
  };
  /** Awaits `p` while pumping (what it waits for may need virtual time: a remote file read). */
  const settled = async <T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> => {
    let r: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    p.then(
      (value) => (r = { ok: true, value }),
      (error: unknown) => (r = { ok: false, error }),
    );
    await pump(() => r !== undefined, 200_000);
    return r ?? { ok: false, error: new Error('did not settle') };
  };
  /** The Scheduler of `peer`'s current life. */
  const schedulerOf = (peer: SimPeer): SchedulerServer =>
    (peer.kernel as unknown as { servers: Server[] }).servers.find((x) => x.port === 'scheduler') as SchedulerServer;
  /**
   * Where `pid` runs at this moment: the peers whose executor holds it (a live or loading copy),
   * and the peers whose own table rows say it runs there (neither moving nor ended).
   */
  const runningOn = (pid: string): { executors: string[]; tables: string[] } => {
    const executors: string[] = [];
    const tables: string[] = [];
    for (const p of peers) {
      if (p.status !== 'alive') continue;
      if (execs.get(p.id)?.executors.some((x) => x.pids().includes(pid))) executors.push(p.id);
      const row = schedulerOf(p)
        .table()
        .find((r) => r.pid === pid && r.peer === p.id);
      if (row && row.state !== 'MIGRATING' && row.state !== 'EXITED') tables.push(p.id);
    }
    return { executors, tables };
  };
  /**
   * Holds back the Scheduler messages `peer` receives that `pred` picks (in order), until
   * `release()` delivers them and lets everything through again: a message order forced on the cluster.
   */
  const intercept = (peer: SimPeer, pred: (msg: PeerMessage, from: string) => boolean) => {
    const sched = schedulerOf(peer);
    const receive = sched.receive.bind(sched);
    const caught: Envelope[] = [];
    let on = true;
    sched.receive = (env: Envelope) => {
      if (on && env.from.port === 'scheduler' && pred(env.body as PeerMessage, env.from.peer)) caught.push(env);
      else receive(env);
    };
    return {
      caught: () => caught.map((e) => e.body as PeerMessage),
      release() {
        on = false;
        sched.receive = receive;
        for (const env of caught.splice(0)) receive(env);
      },
      /** Drops what was caught and lets everything through again. */
      drop() {
        on = false;
        sched.receive = receive;
        caught.length = 0;
      },
    };
  };
  return { sim, peers, pump, terminal, ps, seenOn, findRow, crash, settled, monitors, schedulerOf, runningOn, intercept, replies };
}

export const text = (s: string) => new TextEncoder().encode(s);

/** Every how many iterations `busy` prints, in the tests (large: each line crossing the simulated network costs the pump a slice). */
export const BUSY_EVERY = 20_000_000;

/**
 * The first `n` lines `busy BUSY_EVERY` prints, unmoved: 1, 2, 3, … Its counter is a 32-bit
 * unsigned long (wasm32), so after 214 lines it wraps and goes on 0, 1, 2, …
 */
export function busyLines(n: number, every = BUSY_EVERY): string {
  const period = Math.floor((2 ** 32 - 1) / every) + 1;
  return Array.from({ length: n }, (_, i) => `${(i + 1) % period}\n`).join('');
}

/**
 * The stored checkpoint of `pid` once two loads a virtual second apart are the same bytes: the
 * process is blocked (its image no longer changes), and that image was stored after it blocked.
 */
export async function steadyCheckpoint(c: Awaited<ReturnType<typeof simCluster>>, store: CheckpointStore, pid: string): Promise<Uint8Array | undefined> {
  const load = async () => {
    const r = await c.settled(store.load(pid));
    return r.ok ? r.value : undefined;
  };
  let prev = await load();
  for (let i = 0; i < 60; i++) {
    await c.pump(() => false, 1000, 0);
    const now = await load();
    if (now && prev && now.length === prev.length && now.every((v, j) => v === prev![j])) return now;
    prev = now;
  }
  return undefined;
}
