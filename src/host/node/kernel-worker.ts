// The Node peer's kernel thread: the very same kernel as a tab's, in worker_threads.
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import os from 'node:os';
import { parentPort, type MessagePort } from 'node:worker_threads';
import type { Identity } from '../../kernel/identity.ts';
import type { Kernel } from '../../kernel/kernel.ts';
import type { KernelEvent } from '../../kernel/types.ts';
import type { ViewMessage } from '../../servers/synchronizer/protocol.ts';
import { startHostKernel } from '../common/boot.ts';
import { WorkerNic, type FromKernel, type ToKernel } from '../common/data-plane.ts';
import { realDrivers } from '../common/drivers.ts';
import { nodeExecution } from './exec-pool.ts';
import { filePrograms } from './programs.ts';
import { DiskStore } from './store-disk.ts';
import { ROOT } from '../../servers/stockholder/types.ts';

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
  /** `storeDir`: where this peer keeps its share of the cluster filesystem. */
  async boot(identity: Identity, token: string, onEvent: (e: KernelEvent) => void, onView: (v: ViewMessage) => void, workers = os.availableParallelism(), storeDir?: string) {
    ({ kernel } = await startHostKernel({
      identity,
      token,
      ...(storeDir ? { store: await DiskStore.open(storeDir) } : {}),
      exec: nodeExecution(workers, { clusterRoot: ROOT }),
      programs: filePrograms(),
      drivers: realDrivers({ nic, kind: 'node', capacity: workers, console: { write: (t) => process.stdout.write(t) } }),
      viewPort: 'cli',
      onView: (v) => void onView(v),
      onEvent: (e) => void onEvent(e),
    }));
    return { peerId: kernel.self, room: kernel.room };
  },
  async shutdown() {
    kernel?.stop('node peer stopping');
  },
};

export type NodeKernelApi = typeof api;

port.once('message', (msg: { comlink?: MessagePort }) => {
  if (msg.comlink) Comlink.expose(api, nodeEndpoint(msg.comlink));
});
