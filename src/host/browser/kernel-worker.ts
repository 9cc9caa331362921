// The kernel's Web Worker: one per tab. It runs the same kernel as every other peer; the main
// thread only owns what workers cannot (RTCPeerConnection, signaling, the DOM).
import * as Comlink from 'comlink';
import type { Identity } from '../../kernel/identity.ts';
import type { Kernel } from '../../kernel/kernel.ts';
import type { PeerId } from '../../kernel/types.ts';
import type { BenchPorts } from '../common/bench-ports.ts';
import { startHostKernel } from '../common/boot.ts';
import { WorkerNic, type FromKernel, type ToKernel } from '../common/data-plane.ts';
import { realDrivers } from '../common/drivers.ts';
import type { ShellEvent } from './shell-api.ts';

/** The worker global, typed by hand: the DOM and WebWorker libs cannot both be loaded. */
declare const self: {
  postMessage(msg: unknown, transfer: Transferable[]): void;
  addEventListener(type: 'message', fn: (ev: MessageEvent) => void): void;
};

// The data plane uses the worker's own port (RTCDataChannels are transferred to it);
// comlink gets a MessageChannel of its own.
const nic = new WorkerNic({
  post: (msg: FromKernel, transfer?: Transferable[]) => self.postMessage(msg, transfer ?? []),
  listen: (fn) =>
    self.addEventListener('message', (ev: MessageEvent) => {
      if (ev.data && typeof ev.data === 'object' && 't' in ev.data) fn(ev.data as ToKernel);
    }),
});

let kernel: Kernel | undefined;
let bench: BenchPorts | undefined;
const recent: ShellEvent[] = [];
const listeners: ((e: ShellEvent) => void)[] = [];

function broadcast(e: ShellEvent): void {
  for (const l of listeners) void Promise.resolve(l(e)).catch(() => {});
}

function remember(e: ShellEvent): void {
  recent.push(e);
  if (recent.length > 200) recent.shift();
  broadcast(e);
}

const api = {
  async boot(identity: Identity, token: string): Promise<{ peerId: PeerId; room: string }> {
    if (!kernel) {
      ({ kernel, bench } = await startHostKernel({
        identity,
        token,
        drivers: realDrivers({ nic, kind: 'browser', capacity: navigator.hardwareConcurrency || 1, console: { write: (t) => console.log(t) } }),
        viewPort: 'ui',
        onView: (view) => broadcast({ type: 'view', view }),
        onEvent: (event) => remember({ type: 'kernel', at: Date.now(), event }),
      }));
    }
    return { peerId: kernel.self, room: kernel.room };
  },
  async whoami() {
    return { peerId: kernel!.self, kind: 'browser' as const, room: kernel!.room };
  },
  async subscribe(listener: (e: ShellEvent) => void): Promise<void> {
    for (const e of recent) void Promise.resolve(listener(e)).catch(() => {});
    listeners.push(listener);
  },
  /** Graceful leave, called as the tab closes. */
  async shutdown(): Promise<void> {
    kernel?.stop('tab closed');
  },
  /** For e2e tests and bench. */
  async links() {
    return kernel?.linkStats() ?? [];
  },
  async pingPong(peer: PeerId, count: number, size: number) {
    return bench!.pingPong(peer, count, size);
  },
  async blast(peer: PeerId, count: number, size: number) {
    return bench!.blast(peer, count, size);
  },
  /** Raw bytes on the link to `peer`, past the kernel's encoder: how tests play a broken peer. */
  async debugSendRaw(peer: PeerId, frames: Uint8Array[]) {
    for (const f of frames) nic.send(peer, f);
  },
};

export type KernelWorkerApi = typeof api;

self.addEventListener('message', (ev: MessageEvent) => {
  if (ev.data?.comlink instanceof MessagePort) Comlink.expose(api, ev.data.comlink);
});
