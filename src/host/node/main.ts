// `npm run peer -- --url <cluster URL>`: a headless peer. The main thread owns the WebRTC
// connections (@roamhq/wrtc through simple-peer 9) and bridges frames to the kernel thread.
import wrtc from '@roamhq/wrtc';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MessageChannel, Worker } from 'node:worker_threads';
import SimplePeer from 'simple-peer';
import WebSocket from 'ws';
import { TOKEN_PATTERN } from '../../kernel/identity.ts';
import type { KernelEvent } from '../../kernel/types.ts';
import type { ViewMessage } from '../../servers/synchronizer/protocol.ts';
import { MainDataPlane, type FromKernel, type ToKernel } from '../common/data-plane.ts';
import { Mesh, type SimplePeerLike } from '../common/mesh.ts';
import type { WebSocketLike } from '../common/signaling.ts';
import { nodeIdentity } from './identity.ts';
import { lockStateDir } from './state-lock.ts';
import type { NodeKernelApi } from './kernel-worker.ts';

/** How long a stopping peer waits for its processes to move to other peers (SIGINT/SIGTERM). */
const DRAIN_MS = 20_000;
const USAGE = 'usage: npm run peer -- --url http://HOST:PORT/#c=TOKEN [--state DIR] [--workers N]';

export function parseClusterUrl(raw: string): { token: string; relayUrl: string } {
  const url = new URL(raw);
  const token = new URLSearchParams(url.hash.slice(1)).get('c');
  if (!token || !TOKEN_PATTERN.test(token)) throw new Error(`no cluster token (#c=…) in ${raw}`);
  return { token, relayUrl: `${url.protocol === 'https:' ? 'wss' : 'ws'}://${url.host}/signal` };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { url: { type: 'string' }, state: { type: 'string' }, workers: { type: 'string' } } });
  if (!values.url) throw new Error(USAGE);
  const { token, relayUrl } = parseClusterUrl(values.url);
  const stateDir = path.resolve(values.state ?? '.lshapes/node-peer');
  const identity = await nodeIdentity(stateDir);
  const lock = await lockStateDir(stateDir);
  process.on('exit', () => rmSync(lock.path, { force: true }));
  const workers = values.workers === undefined ? undefined : Number(values.workers);
  if (workers !== undefined && !(Number.isInteger(workers) && workers >= 0 && workers <= 256)) throw new Error(`--workers wants a whole number, not ${values.workers}`);

  const worker = new Worker(new URL('./kernel-worker-boot.mjs', import.meta.url));
  const { port1, port2 } = new MessageChannel();
  worker.postMessage({ comlink: port2 }, [port2]);
  const kernel = Comlink.wrap<NodeKernelApi>(nodeEndpoint(port1));

  let lastView = '';
  const onEvent = (e: KernelEvent) => {
    if (e.type === 'log' || e.type === 'link.refused' || e.type === 'frame.bad' || e.type === 'link.down') console.log(`[kernel] ${JSON.stringify(e)}`);
  };
  const onView = (v: ViewMessage) => {
    const line = v.peers.map((p) => `${p.id.slice(0, 8)}:${p.kind}`).join(' ');
    if (line !== lastView) console.log(`[view] ${v.peers.length} peers: ${line}`);
    lastView = line;
  };
  const { peerId, room } = await kernel.boot(identity, token, Comlink.proxy(onEvent), Comlink.proxy(onView), workers, path.join(stateDir, 'store'));
  console.log(`LSHAPES node peer ${peerId} joining ${relayUrl}`);

  let mesh: Mesh | undefined;
  const plane = new MainDataPlane(
    'bridge',
    {
      post: (msg: ToKernel, transfer?: Transferable[]) => worker.postMessage(msg, (transfer ?? []) as ArrayBuffer[]),
      listen: (fn: (msg: FromKernel) => void) =>
        worker.on('message', (data: unknown) => {
          if (data && typeof data === 'object' && 't' in data) fn(data as FromKernel);
        }),
    },
    (peer, reason) => mesh?.close(peer, reason),
  );
  mesh = new Mesh({
    self: peerId,
    room,
    relayUrl,
    createSocket: (url) => new WebSocket(url) as unknown as WebSocketLike,
    createPeer: (initiator) => new SimplePeer({ initiator, trickle: true, wrtc, config: { iceServers: [] } }) as unknown as SimplePeerLike,
    dataPlane: plane,
    log: (text) => console.log(`[mesh] ${text}`),
  });

  let stopping = false;
  const stop = async () => {
    if (stopping) {
      // A second Ctrl-C: stop now, without waiting for the moves.
      console.log('stopping now');
      process.exit(1);
    }
    stopping = true;
    // Hand this peer's processes to the others first (bounded: a stuck move must not keep the
    // peer from stopping); what could not move is killed by the shutdown, as before.
    console.log('moving processes to other peers…');
    const drained = await Promise.race([kernel.drain(DRAIN_MS), new Promise<undefined>((r) => setTimeout(r, DRAIN_MS + 1000))]);
    if (drained) console.log(`moved ${drained.moved} process(es) to other peers${drained.left ? `; ${drained.left} could not move` : ''}`);
    else console.log('the processes did not all move in time');
    await kernel.shutdown();
    // Let the goodbye frames leave before the connections go.
    await new Promise((r) => setTimeout(r, 200));
    mesh?.stop();
    await worker.terminate();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
