// A tab's main thread: finds its cluster and identity, starts the kernel worker, owns the
// peer connections (workers cannot) and renders the shell.
import Peer from '@thaunknown/simple-peer/lite.js';
import * as Comlink from 'comlink';
import { createRoot } from 'react-dom/client';
import { App, BootError } from '../../ui/App.tsx';
import { MainDataPlane, type DataPlaneMode, type FromKernel, type ToKernel } from '../common/data-plane.ts';
import { Mesh, type SimplePeerLike } from '../common/mesh.ts';
import { clusterToken, relayUrl } from './cluster-url.ts';
import { tabIdentity } from './identity.ts';
import type { KernelWorkerApi } from './kernel-worker.ts';
import type { ShellApi, ShellEvent } from './shell-api.ts';
import { createShellBackend, createTestShell } from './shell-backend.ts';
import type { ViewMessage } from '../../servers/synchronizer/protocol.ts';
import type { ProcessInfo } from '../../servers/scheduler/client.ts';
import type { FilesApi, FilesSnapshot } from '../../servers/stockholder/files-api.ts';
import { installCloseGuard } from '../../ui/files/close-guard.ts';
import { installDrainOnClose } from '../../ui/moves.ts';

/** Can an RTCDataChannel be transferred to a worker here? Try it once with a throwaway one. */
function canTransferChannels(worker: Worker): boolean {
  const pc = new RTCPeerConnection();
  try {
    const ch = pc.createDataChannel('probe', { negotiated: true, id: 0 });
    worker.postMessage({ probe: ch }, [ch as unknown as Transferable]);
    return true;
  } catch {
    return false;
  } finally {
    pc.close();
  }
}

function chooseMode(worker: Worker): DataPlaneMode {
  const asked = new URLSearchParams(location.search).get('plane');
  const supported = canTransferChannels(worker);
  if (asked === 'bridge' || !supported) return 'bridge';
  return 'transfer';
}

async function start(): Promise<void> {
  const root = createRoot(document.getElementById('root')!);
  const { token } = clusterToken();
  const identity = await tabIdentity();
  const worker = new Worker(new URL('./kernel-worker.ts', import.meta.url), { type: 'module', name: 'lshapes-kernel' });
  const { port1, port2 } = new MessageChannel();
  worker.postMessage({ comlink: port2 }, [port2]);
  const kernel = Comlink.wrap<KernelWorkerApi>(port1);
  // `?workers=N` sets how many execution workers this tab runs processes in (default: one per core).
  const workersParam = new URLSearchParams(location.search).get('workers');
  const workers = workersParam !== null && /^\d{1,2}$/.test(workersParam) ? Number(workersParam) : undefined;
  const booted = await kernel.boot(identity, token, workers === undefined ? {} : { workers });
  const { peerId } = booted;
  // `#c=…&room=<hex>` joins another cluster's relay room with this tab's own token: admission
  // must then refuse every link. It is how the e2e tests play a stranger who knows a room id.
  const room = new URLSearchParams(location.hash.slice(1)).get('room')?.match(/^[0-9a-f]{64}$/)?.[0] ?? booted.room;

  const mode = chooseMode(worker);
  let mesh: Mesh | undefined;
  const plane = new MainDataPlane(
    mode,
    {
      post: (msg: ToKernel, transfer?: Transferable[]) => worker.postMessage(msg, transfer ?? []),
      listen: (fn: (msg: FromKernel) => void) =>
        worker.addEventListener('message', (ev) => {
          if (ev.data && typeof ev.data === 'object' && 't' in ev.data) fn(ev.data as FromKernel);
        }),
    },
    (peer, reason) => mesh?.close(peer, reason),
  );
  mesh = new Mesh({
    self: peerId,
    room,
    relayUrl: relayUrl(),
    createSocket: (url) => new WebSocket(url),
    createPeer: (initiator) => new Peer({ initiator, trickle: true, config: { iceServers: [] } }) as unknown as SimplePeerLike,
    dataPlane: plane,
    log: (text) => console.info(`[mesh] ${text}`),
  });

  // Best effort: tell the others we are leaving. If the tab dies first, failure detection does it.
  addEventListener('pagehide', () => {
    void kernel.shutdown();
    mesh?.stop();
  });

  // The latest Synchronizer view the shell got, for the terminal's `peers` and `--on` completion.
  let latestView: ViewMessage | undefined;
  // The cluster filesystem: the kernel worker exposes its FilesApi as `api.files` (a nested object,
  // since the worker's own `mkdir(path, parents)` is the terminal's). The latest snapshot the
  // shell got decides whether closing the tab must be confirmed.
  const files = (kernel as unknown as { files: Comlink.Remote<FilesApi> }).files;
  let latestFiles: FilesSnapshot | undefined;
  // The latest process table the shell got: whether closing the tab must move processes away.
  let latestProcesses: ProcessInfo[] | undefined;
  const api: ShellApi = {
    whoami: () => kernel.whoami(),
    subscribe: (listener: (e: ShellEvent) => void) =>
      kernel.subscribe(
        Comlink.proxy((e: ShellEvent) => {
          if (e.type === 'view') latestView = e.view;
          listener(e);
        }),
      ),
    watchProcesses: async (listener: (rows: ProcessInfo[]) => void) => {
      await kernel.watchProcesses(
        Comlink.proxy((rows: ProcessInfo[]) => {
          latestProcesses = rows;
          listener(rows);
        }),
      );
    },
    migrate: (pid, to) => kernel.migrate(pid, to),
    drain: () => kernel.drain(),
    watchFiles: (listener: (s: FilesSnapshot) => void) =>
      files.watchFiles(
        Comlink.proxy((s: FilesSnapshot) => {
          latestFiles = s;
          listener(s);
        }),
      ),
    unwatchFiles: (id) => files.unwatchFiles(id),
    // The dropped Files are structured-cloned as handles: the worker reads them with Blob.slice.
    ingest: (dir, dropped) => files.ingest(dir, dropped),
    download: (id) => files.download(id),
    mkdir: (dir, name) => files.mkdir(dir, name),
    rename: (id, name) => files.rename(id, name),
    move: (id, dir) => files.move(id, dir),
    remove: (id) => files.remove(id),
    restore: (id) => files.restore(id),
    emptyTrash: () => files.emptyTrash(),
  };
  // Closing the only tab that holds some files would lose them: the browser asks first.
  installCloseGuard(window, () => latestFiles);
  // Closing a tab that runs processes moves them away (the browser asks, so the user can wait).
  installDrainOnClose(window, peerId, () => latestProcesses, () => kernel.drain());
  const shellBackend = createShellBackend(kernel, () => latestView?.peers);
  // A handle for e2e tests and bench/ (what a developer would poke at in the console too).
  // `shell`: run/start/wait/ps/kill helpers with text output (src/host/browser/shell-backend.ts).
  // `files()`: the latest FilesSnapshot the shell got.
  Object.assign(globalThis, { lshapes: { peerId, room, mode, kernel, mesh, shell: createTestShell(kernel), files: () => latestFiles } });
  root.render(<App api={api} clusterUrl={location.href} shellBackend={shellBackend} />);
}

start().catch((err: Error) => {
  console.error(err);
  createRoot(document.getElementById('root')!).render(<BootError message={err.message} />);
});
