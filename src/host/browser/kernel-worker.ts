// The kernel's Web Worker: one per tab. It runs the same kernel as every other peer; the main
// thread only owns what workers cannot (RTCPeerConnection, signaling, the DOM).
import * as Comlink from 'comlink';
import { deleteDB, openDB } from 'idb';
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
import { createShellService, type Drained, type Moved, type OutputCallback, type ShellService } from '../common/shell-service.ts';
import { ShellFiles } from '../common/shell-files.ts';
import { filesOf } from '../common/boot.ts';
import { createFilesService } from '../common/files-service.ts';
import { openProfileStore } from './store-owner.ts';
import { IdbStore } from './store-idb.ts';
import { FsModel } from '../../servers/stockholder/model.ts';
import { BLOCK_SIZE, ROOT } from '../../servers/stockholder/types.ts';
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
  /** Moves a running process to peer `to` (an id or unique prefix); rejects with the Scheduler's reason. */
  migrate(pid: Pid, to: string): Promise<Moved> {
    return shell().migrate(pid, to);
  },
  /** Moves every process running on this tab elsewhere (the tab is closing). */
  drain(): Promise<Drained> {
    return shell().drain();
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

  // ---- bench: for bench/files.ts only (the app never calls these) ----

  /**
   * The baseline of the ingest benchmark: the same bytes into a fresh IndexedDB database with
   * plain `idb`, as the Stockholder stores them (1 MiB Blob.slice reads, 8 puts per relaxed
   * transaction, the next batch read while one is stored) but without hashing or ops. Timed from
   * the first read to the last commit; the database is deleted afterwards.
   */
  async benchBareIdbWrite(blob: Blob, dbName: string): Promise<{ ms: number }> {
    const db = await openDB(dbName, 1, { upgrade: (d) => void d.createObjectStore('blocks') });
    const t0 = performance.now();
    let storing: Promise<void> = Promise.resolve();
    let batch: { key: string; bytes: Uint8Array }[] = [];
    const put = async (b: typeof batch) => {
      const tx = db.transaction('blocks', 'readwrite', { durability: 'relaxed' });
      for (const x of b) void tx.store.put(x.bytes, x.key);
      await tx.done;
    };
    for (let offset = 0, i = 0; offset < blob.size; offset += BLOCK_SIZE, i++) {
      const bytes = new Uint8Array(await blob.slice(offset, offset + BLOCK_SIZE).arrayBuffer());
      batch.push({ key: `block-${i}`, bytes });
      if (batch.length >= 8) {
        await storing;
        storing = put(batch);
        storing.catch(() => {});
        batch = [];
      }
    }
    await storing;
    if (batch.length > 0) await put(batch);
    const ms = performance.now() - t0;
    db.close();
    await deleteDB(dbName);
    return { ms };
  },
  /** Where an ingest's time goes: reading `blob` in 1 MiB slices alone, then reading and hashing each slice (WebCrypto SHA-256). */
  async benchReadAndHash(blob: Blob): Promise<{ readMs: number; readHashMs: number }> {
    const sh = filesOf(kernel!).stockholder;
    let t0 = performance.now();
    for (let offset = 0; offset < blob.size; offset += BLOCK_SIZE) await blob.slice(offset, offset + BLOCK_SIZE).arrayBuffer();
    const readMs = performance.now() - t0;
    t0 = performance.now();
    for (let offset = 0; offset < blob.size; offset += BLOCK_SIZE) await sh.hashOf(new Uint8Array(await blob.slice(offset, offset + BLOCK_SIZE).arrayBuffer()));
    return { readMs, readHashMs: performance.now() - t0 };
  },
  /** A cluster path (`/big.bin`) as this peer's Stockholder sees it: listed yet, and held whole here. */
  async benchFile(path: string): Promise<{ listed: boolean; local: boolean; version?: string }> {
    const sh = filesOf(kernel!).stockholder;
    await sh.ready;
    let e: ReturnType<typeof sh.model.lookup> = undefined;
    let dir = ROOT;
    for (const name of path.split('/').filter(Boolean)) {
      e = sh.model.lookup(dir, name);
      if (e === undefined) return { listed: false, local: false };
      dir = e.id;
    }
    if (e === undefined || e.manifest === undefined) return { listed: e !== undefined, local: false };
    return { listed: true, local: sh.holdsAll(e.manifest), ...(e.version !== undefined ? { version: e.version } : {}) };
  },
  /** `folders` folders of `filesPer` empty files each under the top level, made by ONE apply (one commit); `modelMs` is making the ops. */
  async benchMakeEntries(folders: number, filesPer: number): Promise<{ ops: number; ms: number; modelMs: number }> {
    const sh = filesOf(kernel!).stockholder;
    const t0 = performance.now();
    let modelMs = 0;
    const ops = await sh.apply((m, wall) => {
      const started = performance.now();
      const out = [];
      for (let d = 0; d < folders; d++) {
        const name = `bench-${d}`;
        out.push(m.mkdir(ROOT, name, wall));
        const dir = m.lookup(ROOT, name)!.id;
        for (let f = 0; f < filesPer; f++) out.push(...m.createFile(dir, `f${f}.txt`, { size: 0, blocks: [] }, wall));
      }
      modelMs = performance.now() - started;
      return out;
    });
    return { ops: ops.length, ms: performance.now() - t0, modelMs };
  },
  /** The Stockholder's counters (loadMs, loadedOps, blocks in/out...), its store and how many entries it lists. */
  async benchStockholder() {
    const sh = filesOf(kernel!).stockholder;
    await sh.ready;
    return { stats: { ...sh.stats }, store: sh.storeInfo, entries: sh.model.entries().length };
  },
  /** Where a Stockholder load's time goes, redone on a second connection to the profile's store: reading the ops, applying them, building the view. */
  async benchLoadParts(): Promise<{ ops: number; readMs: number; applyMs: number; viewMs: number }> {
    const store = await IdbStore.open();
    try {
      const t0 = performance.now();
      const ops = await store.loadOps();
      const t1 = performance.now();
      const model = new FsModel('bench~00000000');
      model.load(ops);
      const t2 = performance.now();
      model.entries();
      return { ops: ops.length, readMs: t1 - t0, applyMs: t2 - t1, viewMs: performance.now() - t2 };
    } finally {
      await store.close();
    }
  },
};

export type KernelWorkerApi = typeof api;

self.addEventListener('message', (ev: MessageEvent) => {
  if (ev.data?.comlink instanceof MessagePort) Comlink.expose(api, ev.data.comlink);
});
