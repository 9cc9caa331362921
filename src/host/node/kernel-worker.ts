// The Node peer's kernel thread: the very same kernel as a tab's, in worker_threads.
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import os from 'node:os';
import { parentPort, type MessagePort } from 'node:worker_threads';
import type { Identity } from '../../kernel/identity.ts';
import type { Kernel } from '../../kernel/kernel.ts';
import type { KernelEvent } from '../../kernel/types.ts';
import type { ViewMessage } from '../../servers/synchronizer/protocol.ts';
import type { ClientMessage, ClientRequest } from '../../servers/scheduler/client.ts';
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
  /**
   * Moves this peer's processes to other peers (the Scheduler's `drain`) before it leaves.
   * Undefined when the Scheduler did not answer within `timeoutMs`.
   */
  drain(timeoutMs: number): Promise<{ moved: number; left: number } | undefined> {
    const k = kernel;
    if (!k) return Promise.resolve(undefined);
    const reply = 'cli.drain';
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        k.unregister(reply);
        resolve(undefined);
      }, timeoutMs);
      k.register(reply, (env) => {
        const m = env.body as ClientMessage;
        if (m?.kind !== 'drain.ok') return;
        clearTimeout(timer);
        k.unregister(reply);
        resolve({ moved: m.moved, left: m.left });
      });
      k.send({ peer: k.self, port: reply }, { peer: k.self, port: 'scheduler' }, { kind: 'drain', req: 1 } satisfies ClientRequest);
    });
  },
  async shutdown() {
    kernel?.stop('node peer stopping');
  },
};

export type NodeKernelApi = typeof api;

port.once('message', (msg: { comlink?: MessagePort }) => {
  if (msg.comlink) Comlink.expose(api, nodeEndpoint(msg.comlink));
});
