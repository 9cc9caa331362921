// The kernel's Web Worker: one per tab. It runs the same kernel as every other peer; the main
// thread only owns what workers cannot (RTCPeerConnection, signaling, the DOM).
import * as Comlink from 'comlink';
import type { Identity } from '../../kernel/identity.ts';
import type { Kernel } from '../../kernel/kernel.ts';
import type { PeerId } from '../../kernel/types.ts';
import type { BenchPorts } from '../common/bench-ports.ts';
import { startHostKernel } from '../common/boot.ts';
import { browserExecution } from './exec-pool.ts';
import { fetchPrograms } from './programs.ts';
import { WorkerNic, type FromKernel, type ToKernel } from '../common/data-plane.ts';
import { realDrivers } from '../common/drivers.ts';
import type { ShellEvent } from './shell-api.ts';
import { SchedulerClient } from '../common/scheduler-client.ts';
import { createShellService, type OutputCallback, type ShellService } from '../common/shell-service.ts';
import { ShellFiles } from '../common/shell-files.ts';
import { filesOf } from '../common/boot.ts';
import { createFilesService } from '../common/files-service.ts';
import { openProfileStore } from './store-owner.ts';
import { ROOT } from '../../servers/stockholder/types.ts';
import type { DroppedFile, FilesApi, FilesSnapshot } from '../../servers/stockholder/files-api.ts';
import type { Pid, ProcessInfo } from '../../servers/scheduler/client.ts';

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
/** The shell's client of this peer's Scheduler (port "shell"), made right after the kernel boots. */
let scheduler: SchedulerClient | undefined;
/** The terminal's commands and the files panel, made once the kernel (and its Stockholder) booted. */
let shellService: ShellService | undefined;
let filesService: FilesApi | undefined;
function shell(): ShellService {
  if (!shellService) throw new Error('the kernel has not started yet');
  return shellService;
}
function files(): FilesApi {
  if (!filesService) throw new Error('the kernel has not started yet');
  return filesService;
}
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
  /** `workers`: execution workers for processes (default: one per core). */
  async boot(identity: Identity, token: string, opts: { workers?: number } = {}): Promise<{ peerId: PeerId; room: string }> {
    if (!kernel) {
      const workers = Math.max(0, Math.min(64, opts.workers ?? (navigator.hardwareConcurrency || 1)));
      // One tab per profile owns its IndexedDB store; another keeps memory until it takes over.
      const profile = await openProfileStore();
      ({ kernel, bench } = await startHostKernel({
        identity,
        token,
        store: profile.store,
        ...(profile.owner ? {} : { takeover: profile.takeover }),
        exec: browserExecution(workers, { clusterRoot: ROOT }),
        programs: fetchPrograms(),
        drivers: realDrivers({ nic, kind: 'browser', capacity: workers, console: { write: (t) => console.log(t) } }),
        viewPort: 'ui',
        onView: (view) => broadcast({ type: 'view', view }),
        onEvent: (event) => remember({ type: 'kernel', at: Date.now(), event }),
      }));
    }
    scheduler ??= new SchedulerClient(kernel, 'shell');
    const cluster = filesOf(kernel);
    shellService ??= createShellService(() => scheduler!, new ShellFiles(cluster.fs));
    filesService ??= createFilesService(cluster.stockholder);
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

  // ---- processes and files, for the terminal and the processes panel (src/host/common/shell-service.ts) ----

  /** Starts a program (`on`: a peer id or prefix). `output` (a comlink proxy) gets its and its children's output. */
  run(name: string, args: string[], on: string | undefined, interactive: boolean, output: OutputCallback): Promise<{ pid: Pid; peer: PeerId }> {
    return shell().run(name, args, on, interactive, output);
  },
  /** How a process started by run() ended, after all its output reached `output`; rejects when it was lost. */
  waitExit(pid: Pid): Promise<{ code: number; message?: string }> {
    return shell().waitExit(pid);
  },
  stdin(pid: Pid, data: Uint8Array): Promise<void> {
    return shell().stdin(pid, data);
  },
  stdinEnd(pid: Pid): Promise<void> {
    return shell().stdinEnd(pid);
  },
  kill(pid: Pid): Promise<void> {
    return shell().kill(pid);
  },
  ps(): Promise<ProcessInfo[]> {
    return shell().ps();
  },
  programs(): Promise<string[]> {
    return shell().programs();
  },
  /** `listener` (a comlink proxy) gets the cluster's process table on every change. Returns an id for unwatchProcesses. */
  watchProcesses(listener: (rows: ProcessInfo[]) => unknown): Promise<number> {
    return shell().watchProcesses(listener);
  },
  unwatchProcesses(id: number): Promise<void> {
    return shell().unwatchProcesses(id);
  },
  /** The sample files every process sees at / (until the Stockholder). */
  ls(path: string): Promise<{ name: string; kind: 'file' | 'dir'; size?: number }[]> {
    return shell().ls(path);
  },
  cat(path: string): Promise<Uint8Array> {
    return shell().cat(path);
  },
  stat(path: string) {
    return shell().stat(path);
  },
  cp(src: string, dst: string) {
    return shell().cp(src, dst);
  },
  mv(src: string, dst: string) {
    return shell().mv(src, dst);
  },
  rm(path: string, recursive: boolean) {
    return shell().rm(path, recursive);
  },
  mkdir(path: string, parents: boolean) {
    return shell().mkdir(path, parents);
  },
  /** The files panel (src/ui/FilesPanel.tsx): the cluster filesystem as this tab's Stockholder sees it. */
  files: {
    watchFiles: (listener: (s: FilesSnapshot) => void) => files().watchFiles(listener),
    unwatchFiles: (id: number) => files().unwatchFiles(id),
    ingest: (dir: string, dropped: DroppedFile[]) => files().ingest(dir, dropped),
    download: (id: string) => files().download(id),
    mkdir: (dir: string, name: string) => files().mkdir(dir, name),
    rename: (id: string, name: string) => files().rename(id, name),
    move: (id: string, dir: string) => files().move(id, dir),
    remove: (id: string) => files().remove(id),
    restore: (id: string) => files().restore(id),
    emptyTrash: () => files().emptyTrash(),
  } satisfies FilesApi,
  /** What the shell's Scheduler client could not use (garbage, unmatched replies, orphan output). */
  async schedulerStats() {
    return scheduler ? { ...scheduler.stats } : undefined;
  },
};

export type KernelWorkerApi = typeof api;

self.addEventListener('message', (ev: MessageEvent) => {
  if (ev.data?.comlink instanceof MessagePort) Comlink.expose(api, ev.data.comlink);
});
