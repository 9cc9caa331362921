// The Node peer's kernel thread: the very same kernel as a tab's, in worker_threads.
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import os from 'node:os';
import { parentPort, type MessagePort } from 'node:worker_threads';
import type { Identity } from '../../kernel/identity.ts';
import type { Kernel } from '../../kernel/kernel.ts';
import type { KernelEvent } from '../../kernel/types.ts';
import type { ViewMessage } from '../../servers/synchronizer/protocol.ts';
import { BenchPorts } from '../common/bench-ports.ts';
import { bootKernel } from '../common/boot.ts';
import { WorkerNic, type FromKernel, type ToKernel } from '../common/data-plane.ts';
import { realDrivers } from '../common/drivers.ts';

const port = parentPort!;
const nic = new WorkerNic({
  post: (msg: FromKernel, transfer?: Transferable[]) => port.postMessage(msg, (transfer ?? []) as ArrayBuffer[]),
  listen: (fn) =>
    port.on('message', (data: unknown) => {
      if (data && typeof data === 'object' && 't' in data) fn(data as ToKernel);
    }),
});

let kernel: Kernel | undefined;

const api = {
  async boot(identity: Identity, token: string, onEvent: (e: KernelEvent) => void, onView: (v: ViewMessage) => void) {
    const k = await bootKernel({
      identity,
      token,
      drivers: realDrivers({ nic, kind: 'node', capacity: os.availableParallelism(), console: { write: (t) => process.stdout.write(t) } }),
    });
    k.on((e) => void onEvent(e));
    k.register('cli', (env) => {
      if ((env.body as ViewMessage)?.kind === 'view') void onView(env.body as ViewMessage);
    });
    new BenchPorts(k);
    k.start();
    k.send({ peer: k.self, port: 'cli' }, { peer: k.self, port: 'synchronizer' }, { kind: 'watch' });
    kernel = k;
    return { peerId: k.self, room: k.room };
  },
  async shutdown() {
    kernel?.stop('node peer stopping');
  },
};

export type NodeKernelApi = typeof api;

port.once('message', (msg: { comlink?: MessagePort }) => {
  if (msg.comlink) Comlink.expose(api, nodeEndpoint(msg.comlink));
});
