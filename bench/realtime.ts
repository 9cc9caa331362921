// A real-time cluster in one Node process, for benchmarks that need a link of a chosen round
// trip: real kernels (bootKernel, the servers a tab runs), real executors in worker threads
// (nodeExecution: the programs really compute in parallel with the kernels), real crypto and
// clocks; only the wire is emulated — frames between two kernels arrive after rttMs / 2, in
// order, like a LAN link with that latency. The simulator cannot serve here: its clock is
// virtual, while a program's compute takes real time.
import { bootKernel, filesOf } from '../src/host/common/boot.ts';
import { realDrivers } from '../src/host/common/drivers.ts';
import { generateKeyPair, webCryptoDriver } from '../src/host/common/webcrypto.ts';
import { nodeExecution } from '../src/host/node/exec-pool.ts';
import { filePrograms } from '../src/host/node/programs.ts';
import { identityFrom, newClusterToken } from '../src/kernel/identity.ts';
import type { Kernel } from '../src/kernel/kernel.ts';
import type { LinkInfo, NetworkInterface, NicEvents, PeerId } from '../src/kernel/types.ts';
import { ROOT } from '../src/servers/stockholder/types.ts';
import type { ViewMessage } from '../src/servers/synchronizer/protocol.ts';
import { PORTS } from '../src/kernel/server.ts';
import { ownFrame } from '../src/kernel/wire.ts';

/** One direction of a link: frames due at a time, delivered in order by one timer. */
class Pipe {
  private readonly queue: { at: number; frame: Uint8Array }[] = [];
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly oneWayMs: number,
    private readonly deliver: (frame: Uint8Array) => void,
  ) {}

  push(frame: Uint8Array): void {
    // The receiver gets the frame's own bytes, as off a real wire (ownFrame: the sender's is a
    // view into a shared encode buffer of several MiB).
    const bytes = ownFrame(frame);
    if (this.oneWayMs <= 0) {
      queueMicrotask(() => this.deliver(bytes));
      return;
    }
    this.queue.push({ at: performance.now() + this.oneWayMs, frame: bytes });
    this.arm();
  }

  private arm(): void {
    if (this.timer || this.queue.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = performance.now();
      while (this.queue.length && this.queue[0]!.at <= now + 0.2) this.deliver(this.queue.shift()!.frame);
      this.arm();
    }, Math.max(0, this.queue[0]!.at - performance.now()));
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.queue.length = 0;
  }
}

/** A NIC whose links are pipes to other in-process NICs. */
class PipeNic implements NetworkInterface {
  events: NicEvents | undefined;
  readonly out = new Map<PeerId, Pipe>();
  constructor(readonly peer: PeerId) {}
  attach(events: NicEvents): void {
    this.events = events;
  }
  send(peer: PeerId, frame: Uint8Array): void {
    this.out.get(peer)?.push(frame);
  }
  bufferedAmount(): number {
    return 0;
  }
  close(peer: PeerId): void {
    this.out.get(peer)?.close();
    this.out.delete(peer);
  }
}

function link(a: PipeNic, b: PipeNic, rttMs: number): void {
  a.out.set(b.peer, new Pipe(rttMs / 2, (f) => b.events?.frame(a.peer, f)));
  b.out.set(a.peer, new Pipe(rttMs / 2, (f) => a.events?.frame(b.peer, f)));
  const fa = `fp-${a.peer.slice(0, 8)}`;
  const fb = `fp-${b.peer.slice(0, 8)}`;
  const upA: LinkInfo = { peer: b.peer, localFingerprint: fa, remoteFingerprint: fb };
  const upB: LinkInfo = { peer: a.peer, localFingerprint: fb, remoteFingerprint: fa };
  a.events?.linkUp(upA);
  b.events?.linkUp(upB);
}

export interface RealtimeCluster {
  kernels: Kernel[];
  ids: PeerId[];
  close(): void;
}

/** `n` kernels, fully linked with round trip `rttMs`, each with `workers` execution worker threads; resolves once all see each other. */
export async function realtimeCluster(n: number, opts: { rttMs: number; workers?: number }): Promise<RealtimeCluster> {
  const crypto = webCryptoDriver();
  const token = newClusterToken((k) => globalThis.crypto.getRandomValues(new Uint8Array(k)));
  const kernels: Kernel[] = [];
  const nics: PipeNic[] = [];
  const pools: { terminate(): void }[] = [];
  const views: (ViewMessage | undefined)[] = [];
  for (let i = 0; i < n; i++) {
    const keys = await generateKeyPair(true);
    const identity = await identityFrom(crypto, keys);
    const nic = new PipeNic(identity.peerId);
    const exec = nodeExecution(opts.workers ?? 1, { clusterRoot: ROOT });
    pools.push(exec);
    const kernel = await bootKernel({
      identity,
      token,
      drivers: realDrivers({ nic, kind: 'node', capacity: opts.workers ?? 1, console: { write: () => {} } }),
      exec,
      programs: filePrograms(),
    });
    void filesOf(kernel);
    const at = i;
    kernel.register('bench-view', (env) => {
      if ((env.body as ViewMessage)?.kind === 'view') views[at] = env.body as ViewMessage;
    });
    kernel.start();
    kernel.send({ peer: kernel.self, port: 'bench-view' }, { peer: kernel.self, port: PORTS.synchronizer }, { kind: 'watch' });
    kernels.push(kernel);
    nics.push(nic);
  }
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) link(nics[i]!, nics[j]!, opts.rttMs);
  const deadline = Date.now() + 30_000;
  while (!views.every((v) => v && v.peers.filter((p) => p.state !== 'gossip').length === n)) {
    if (Date.now() > deadline) throw new Error('the real-time cluster did not converge in 30 s');
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    kernels,
    ids: kernels.map((k) => k.self),
    close() {
      for (const k of kernels) k.stop();
      // Their worker threads too: left running, a later cluster in this process shares the CPU with them.
      for (const p of pools) p.terminate();
      for (const nic of nics) for (const peer of [...nic.out.keys()]) nic.close(peer);
    },
  };
}
