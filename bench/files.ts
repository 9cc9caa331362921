// Cluster-filesystem benchmark (issue "Stockholder"), each measurement next to its baseline in
// one run:
//   ingest       1 GiB of distinct 1 MiB chunks (a file on disk, as a File) dropped into a tab:
//                the real ingest (files.ingest: read, SHA-256, IndexedDB, one op) vs a bare `idb`
//                write of the same bytes from the same kernel worker (same batching, no hashing,
//                no ops); and, to say where the time goes, reading and hashing alone;
//   heap         the kernel worker's JS heap (and ArrayBuffer backing stores) sampled over CDP
//                every 100 ms during that drop, next to its value before; the main thread's too;
//   namespace    10,000 entries made by one Stockholder apply (one commit), then the tab
//                reloaded: the Stockholder's own load time (stats.loadMs / loadedOps);
//   replication  256 MiB ingested in tab A, replicated to tab B (from A's ingest resolving to
//                B's copy being whole) vs a raw RTCDataChannel blast of 256 MiB between the same
//                pages; then a third tab C fetching it from A and B at once;
//   ops          a folder made on A (the shell's mkdir) until B's shell stat sees it.
// Ingest and namespace run in a browser with a persistent profile, so IndexedDB writes go to
// disk as a user's do (Playwright's fresh contexts keep IndexedDB in memory); replication and
// ops run in the lab's contexts, like the cluster benchmark. Numbers only, never assertions.
import { chromium, type CDPSession, type Page } from '@playwright/test';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../e2e/chromium.ts';
import type { KernelWorkerApi } from '../src/host/browser/kernel-worker.ts';
import { BLOCK_SIZE } from '../src/servers/stockholder/types.ts';
import { admitted, lab, median, percentile, type Lab } from './browser.ts';
import { rawBlast, rawChannel } from './cluster.ts';

/** What bench code reaches in a page: the kernel worker's api (a comlink proxy: every call is async). */
type Api = { lshapes: { peerId: string; kernel: KernelWorkerApi } } & Record<string, unknown>;

const MiB = 1 << 20;
const INGEST_MIB = 1024;
const REPLICATE_MIB = 256;
const RAW_MESSAGE = 256 * 1024;
const NS_FOLDERS = 100;
const NS_FILES_PER = 99;
const NS_RELOADS = 3;
const OP_RUNS = 20;
/** How often the kernel worker's heap is read during the drop. */
const HEAP_EVERY_MS = 100;

export interface FilesResult {
  ingest: {
    mib: number;
    bareIdbMs: number;
    ingestMs: number;
    bareIdbMiBps: number;
    ingestMiBps: number;
    /** ingest rate / bare rate. */
    ratio: number;
    /** Diagnosis: the same Blob read in 1 MiB slices, and read + SHA-256 per slice (WebCrypto), in the kernel worker. */
    readMs: number;
    readHashMs: number;
  };
  heap: {
    samples: number;
    /** Kernel worker, MiB: V8 heap used, and with ArrayBuffer backing stores, before the drop and at its peak. */
    workerBeforeMiB: number;
    workerPeakMiB: number;
    workerBuffersBeforeMiB: number;
    workerBuffersPeakMiB: number;
    /** The same peak during the bare idb write (the baseline's own garbage). */
    bareWorkerBuffersPeakMiB: number;
    /** The tab's main thread (which holds the dropped Blob's handle), V8 heap used. */
    mainBeforeMiB: number;
    mainPeakMiB: number;
  };
  namespace: {
    entries: number;
    ops: number;
    /** The one apply that made them (model + one strict commit), and of it the model's part (making the ops). */
    makeMs: number;
    makeModelMs: number;
    /** The reloaded Stockholder's own figures: median of NS_RELOADS reloads, and each. */
    loadMs: number;
    loadsMs: number[];
    /** Reloads whose kernel came up before the old one let go of the store (on memory): redone. */
    reloadsOnMemory: number;
    loadedOps: number;
    listed: number;
    store: string;
    /** Diagnosis: the same load redone in the settled tab, by part (best of 3): IndexedDB getAll of the ops, FsModel.load, the first view. */
    parts: { readMs: number; applyMs: number; viewMs: number };
  };
  replication: {
    mib: number;
    rawMiBps: number;
    /** The same bytes through the kernel between the same tabs (`blast`, the cluster benchmark's port-to-port path). */
    kernelMiBps: number;
    /** A's ingest resolved → B holds the whole version. */
    oneHolderMs: number;
    oneHolderMiBps: number;
    ratio: number;
    /** C's kernel first lists the file → C holds it whole, with A and B both holding it. */
    twoHoldersMs: number;
    twoHoldersMiBps: number;
    /** two-holder rate / one-holder rate. */
    twoVsOne: number;
    /** Blocks A and B served to C. */
    servedToC: { a: number; b: number };
    /** Blocks B and C received (hash checked) beyond the file's own: fetched more than once. */
    duplicates: { b: number; c: number };
  };
  ops: { runs: number; medianMs: number; p90Ms: number; maxMs: number; localMkdirMedianMs: number };
}

// ───────────────────────────── pages ─────────────────────────────

/**
 * Writes `mib` distinct 1 MiB chunks to a file in `dir` (one random MiB with the chunk's index
 * stamped in: no two chunks share a hash, none compresses) and puts it in `page` at
 * globalThis[name] as a File from a file input, as a drop from the desktop gives one: backed by
 * the file on disk. (A 1 GiB Blob built in the page cannot be read back here: Chromium's blob
 * storage refuses past about 512 MiB with NotReadableError.)
 */
async function dropFile(page: Page, dir: string, name: string, mib: number): Promise<void> {
  const file = path.join(dir, `${name}.bin`);
  const fd = openSync(file, 'w');
  const chunk = randomBytes(MiB);
  for (let i = 0; i < mib; i++) {
    chunk.writeUInt32BE(i, 0);
    writeSync(fd, chunk);
  }
  closeSync(fd);
  await page.evaluate((id) => {
    const input = document.createElement('input');
    input.type = 'file';
    input.id = id;
    input.hidden = true;
    document.body.append(input);
  }, name);
  await page.setInputFiles(`#${name}`, file);
  await page.evaluate((id) => ((globalThis as Record<string, unknown>)[id] = (document.getElementById(id) as HTMLInputElement).files![0]), name);
}

async function stockholderOf(page: Page) {
  return page.evaluate(() => (globalThis as unknown as Api).lshapes.kernel.benchStockholder());
}

async function waitBooted(page: Page): Promise<void> {
  await page.waitForFunction(() => (globalThis as { lshapes?: { peerId?: string } }).lshapes?.peerId, undefined, { timeout: 30_000 });
}

// ───────────────────────────── heap over CDP ─────────────────────────────

interface HeapReading {
  workerUsed: number;
  workerBuffers: number;
  mainUsed: number;
}

/**
 * Reads the page's kernel worker's heap: `performance.memory` does not exist in workers, so
 * through the page's CDP session, auto-attached (non-flat) to its workers, with
 * Runtime.getHeapUsage sent to the worker's session. `workerBuffers` adds ArrayBuffer backing
 * stores (blocks being hashed or stored live there, outside the V8 heap).
 */
async function heapProbe(page: Page) {
  const s: CDPSession = await page.context().newCDPSession(page);
  const worker = new Promise<string>((resolve, reject) => {
    s.on('Target.attachedToTarget', (ev) => {
      if (ev.targetInfo.type === 'worker' && (ev.targetInfo.title === 'lshapes-kernel' || ev.targetInfo.url.includes('kernel-worker'))) resolve(ev.sessionId);
    });
    setTimeout(() => reject(new Error('no kernel worker target')), 10_000);
  });
  const waiting = new Map<number, { ok(r: unknown): void; fail(e: Error): void }>();
  s.on('Target.receivedMessageFromTarget', (ev) => {
    const m = JSON.parse(ev.message) as { id?: number; result?: unknown; error?: { message: string } };
    const w = m.id === undefined ? undefined : waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id!);
    if (m.error) w.fail(new Error(m.error.message));
    else w.ok(m.result);
  });
  await s.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  const sessionId = await worker;
  let nextId = 0;
  const call = <T>(method: string, params: object = {}) =>
    new Promise<T>((ok, fail) => {
      const id = ++nextId;
      waiting.set(id, { ok: ok as (r: unknown) => void, fail });
      s.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params }) }).catch(fail);
    });
  type Usage = { usedSize: number; backingStorageSize?: number };
  return {
    async read(): Promise<HeapReading> {
      const [w, m] = await Promise.all([call<Usage>('Runtime.getHeapUsage'), s.send('Runtime.getHeapUsage')]);
      return { workerUsed: w.usedSize, workerBuffers: w.usedSize + (w.backingStorageSize ?? 0), mainUsed: m.usedSize };
    },
    /** Collects garbage in the worker and the page, so "before" is what is really live. */
    async gc(): Promise<void> {
      await Promise.all([call('HeapProfiler.collectGarbage'), s.send('HeapProfiler.collectGarbage')]);
    },
    async close(): Promise<void> {
      await s.detach().catch(() => {});
    },
  };
}

type HeapProbe = Awaited<ReturnType<typeof heapProbe>>;

/** Runs `work` while reading the heap every HEAP_EVERY_MS; the peak of each reading. */
async function sampling<T>(probe: HeapProbe, work: () => Promise<T>): Promise<{ result: T; peak: HeapReading; samples: number }> {
  const peak: HeapReading = { workerUsed: 0, workerBuffers: 0, mainUsed: 0 };
  let samples = 0;
  let done = false;
  const loop = (async () => {
    while (!done) {
      const r = await probe.read().catch(() => undefined);
      if (r) {
        samples++;
        peak.workerUsed = Math.max(peak.workerUsed, r.workerUsed);
        peak.workerBuffers = Math.max(peak.workerBuffers, r.workerBuffers);
        peak.mainUsed = Math.max(peak.mainUsed, r.mainUsed);
      }
      await new Promise((r) => setTimeout(r, HEAP_EVERY_MS));
    }
  })();
  try {
    return { result: await work(), peak, samples };
  } finally {
    done = true;
    await loop;
  }
}

// ───────────────────────────── ingest, heap, namespace (persistent profile) ─────────────────────────────

async function measureIngest(page: Page, dir: string): Promise<{ ingest: FilesResult['ingest']; heap: FilesResult['heap'] }> {
  await dropFile(page, dir, '__big', INGEST_MIB);
  const probe = await heapProbe(page);
  try {
    // Baseline first: the bare write, into a database of its own, deleted afterwards.
    await probe.gc();
    const { result: bare, peak: barePeak } = await sampling(probe, () =>
      page.evaluate(() => {
        const g = globalThis as unknown as Api;
        return g.lshapes.kernel.benchBareIdbWrite(g.__big as Blob, 'lshapes-bench-bare');
      }),
    );
    await probe.gc();
    const before = await probe.read();
    const { result: ingestMs, peak, samples } = await sampling(probe, () =>
      page.evaluate(async () => {
        const g = globalThis as unknown as Api;
        const t0 = performance.now();
        const r = await g.lshapes.kernel.files.ingest('root', [{ path: 'big.bin', file: g.__big as Blob }]);
        if (r.added !== 1) throw new Error(`ingest failed: ${JSON.stringify(r.failed)}`);
        return performance.now() - t0;
      }),
    );
    const diag = await page.evaluate(() => {
      const g = globalThis as unknown as Api;
      return g.lshapes.kernel.benchReadAndHash(g.__big as Blob);
    });
    const rate = (ms: number) => INGEST_MIB / (ms / 1000);
    return {
      ingest: {
        mib: INGEST_MIB,
        bareIdbMs: bare.ms,
        ingestMs,
        bareIdbMiBps: rate(bare.ms),
        ingestMiBps: rate(ingestMs),
        ratio: rate(ingestMs) / rate(bare.ms),
        readMs: diag.readMs,
        readHashMs: diag.readHashMs,
      },
      heap: {
        samples,
        workerBeforeMiB: before.workerUsed / MiB,
        workerPeakMiB: peak.workerUsed / MiB,
        workerBuffersBeforeMiB: before.workerBuffers / MiB,
        workerBuffersPeakMiB: peak.workerBuffers / MiB,
        bareWorkerBuffersPeakMiB: barePeak.workerBuffers / MiB,
        mainBeforeMiB: before.mainUsed / MiB,
        mainPeakMiB: peak.mainUsed / MiB,
      },
    };
  } finally {
    await probe.close();
  }
}

async function measureNamespace(page: Page): Promise<FilesResult['namespace']> {
  const made = await page.evaluate(({ folders, per }) => (globalThis as unknown as Api).lshapes.kernel.benchMakeEntries(folders, per), {
    folders: NS_FOLDERS,
    per: NS_FILES_PER,
  });
  // A tab holding the only copy of something asks before it goes: say yes.
  page.on('dialog', (d) => void d.accept().catch(() => {}));
  // The reloaded tab's kernel worker must get the profile's store (a Web Lock the old worker
  // lets go of as it dies); one that came up on memory loaded nothing worth timing: not counted.
  const loads: number[] = [];
  let onMemory = 0;
  let last: Awaited<ReturnType<typeof stockholderOf>> | undefined;
  while (loads.length < NS_RELOADS) {
    await page.reload();
    await waitBooted(page);
    const sh = await stockholderOf(page);
    if (!sh.store.label.startsWith('IndexedDB')) {
      if (++onMemory > 5) throw new Error(`reloaded tabs keep coming up without the profile's store: ${sh.store.label}`);
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    loads.push(sh.stats.loadMs);
    last = sh;
  }
  // Parts: once the reloaded tab settled (its first snapshot, the files panel's 10,000 rows), best of 3.
  await new Promise((r) => setTimeout(r, 3000));
  const parts = { readMs: Infinity, applyMs: Infinity, viewMs: Infinity };
  for (let i = 0; i < 3; i++) {
    const p = await page.evaluate(() => (globalThis as unknown as Api).lshapes.kernel.benchLoadParts());
    parts.readMs = Math.min(parts.readMs, p.readMs);
    parts.applyMs = Math.min(parts.applyMs, p.applyMs);
    parts.viewMs = Math.min(parts.viewMs, p.viewMs);
  }
  return {
    entries: NS_FOLDERS * (NS_FILES_PER + 1),
    ops: made.ops,
    makeMs: made.ms,
    makeModelMs: made.modelMs,
    loadMs: median(loads),
    loadsMs: loads,
    reloadsOnMemory: onMemory,
    loadedOps: last!.stats.loadedOps,
    listed: last!.entries,
    store: last!.store.label,
    parts,
  };
}

async function measureLocal(base: string, dir: string): Promise<Pick<FilesResult, 'ingest' | 'heap' | 'namespace'>> {
  const ctx = await chromium.launchPersistentContext(path.join(dir, 'profile'), { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, permissions: ['microphone', 'camera'] });
  try {
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    await page.goto(`${base}/`);
    await waitBooted(page);
    const { store } = await stockholderOf(page);
    if (!store.label.startsWith('IndexedDB')) throw new Error(`the tab did not get the profile's store: ${store.label}`);
    const { ingest, heap } = await measureIngest(page, dir);
    const namespace = await measureNamespace(page);
    return { ingest, heap, namespace };
  } finally {
    await ctx.close();
  }
}

// ───────────────────────────── replication and op latency (lab tabs) ─────────────────────────────

/** In `page`, polls benchFile(path) every 50 ms; resolves globalThis[name] with the Date.now() it was first listed and first whole here. */
async function startWatch(page: Page, name: string, file: string): Promise<void> {
  await page.evaluate(
    ({ name, file }) => {
      const g = globalThis as unknown as Api;
      g[name] = (async () => {
        let listedAt = 0;
        for (;;) {
          const f = await g.lshapes.kernel.benchFile(file);
          if (f.listed && listedAt === 0) listedAt = Date.now();
          if (f.local) return { listedAt, localAt: Date.now() };
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
    },
    { name, file },
  );
}

const watched = (page: Page, name: string) =>
  page.evaluate((name) => (globalThis as unknown as Api)[name] as Promise<{ listedAt: number; localAt: number }>, name);

async function measureReplication(l: Lab, dir: string): Promise<{ replication: FilesResult['replication']; ops: FilesResult['ops'] }> {
  const a = await l.tab('/');
  const hash = new URL(a.page.url()).hash;
  const b = await l.tab(`/${hash}`);
  await admitted(a.page, [b.id]);
  await admitted(b.page, [a.id]);

  // Raw baseline: the same bytes over a plain data channel between the same two pages.
  await rawChannel(a.page, b.page);
  await rawBlast(a.page, 50, RAW_MESSAGE); // warm-up: SCTP windows
  const rawMs = await rawBlast(a.page, (REPLICATE_MIB * MiB) / RAW_MESSAGE, RAW_MESSAGE);
  await a.page.evaluate(`__raw.pc.close()`);
  await b.page.evaluate(`__raw.pc.close()`);
  // The kernel's own port-to-port path for the same bytes: what replication rides on.
  const kernelMs = (
    await a.page.evaluate(
      ({ peer, n, size }) => (globalThis as unknown as Api).lshapes.kernel.blast(peer, n, size),
      { peer: b.id, n: (REPLICATE_MIB * MiB) / RAW_MESSAGE, size: RAW_MESSAGE },
    )
  ).ms;

  // A → B.
  await dropFile(a.page, dir, '__rep', REPLICATE_MIB);
  await startWatch(b.page, '__repB', '/rep.bin');
  const ingestedAt = await a.page.evaluate(async () => {
    const g = globalThis as unknown as Api;
    const r = await g.lshapes.kernel.files.ingest('root', [{ path: 'rep.bin', file: g.__rep as Blob }]);
    if (r.added !== 1) throw new Error(`ingest failed: ${JSON.stringify(r.failed)}`);
    return Date.now();
  });
  const atB = await watched(b.page, '__repB');
  const oneHolderMs = atB.localAt - ingestedAt;

  // A and B → C.
  const [servedA, servedB] = [(await stockholderOf(a.page)).stats.blocksOut, (await stockholderOf(b.page)).stats.blocksOut];
  const c = await l.tab(`/${hash}`);
  await startWatch(c.page, '__repC', '/rep.bin');
  const atC = await watched(c.page, '__repC');
  const twoHoldersMs = atC.localAt - atC.listedAt;
  const servedToC = { a: (await stockholderOf(a.page)).stats.blocksOut - servedA, b: (await stockholderOf(b.page)).stats.blocksOut - servedB };
  const blocks = (REPLICATE_MIB * MiB) / BLOCK_SIZE;
  const duplicates = { b: (await stockholderOf(b.page)).stats.blocksIn - blocks, c: (await stockholderOf(c.page)).stats.blocksIn - blocks };

  const rate = (ms: number) => REPLICATE_MIB / (ms / 1000);
  const replication = {
    mib: REPLICATE_MIB,
    rawMiBps: rate(rawMs),
    kernelMiBps: rate(kernelMs),
    oneHolderMs,
    oneHolderMiBps: rate(oneHolderMs),
    ratio: rate(oneHolderMs) / rate(rawMs),
    twoHoldersMs,
    twoHoldersMiBps: rate(twoHoldersMs),
    twoVsOne: rate(twoHoldersMs) / rate(oneHolderMs),
    servedToC,
    duplicates,
  };

  // An op on A until B's shell sees it (C is still there). Both pages run in this one browser:
  // their Date.now() agree. B polls stat back to back, each a round trip into its kernel worker.
  const lags: number[] = [];
  const locals: number[] = [];
  for (let i = 0; i < OP_RUNS + 2; i++) {
    const folder = `/cluster/p${i}`;
    await b.page.evaluate((dir) => {
      const g = globalThis as unknown as Api;
      g.__seen = (async () => {
        for (;;) {
          const seen = await g.lshapes.kernel.stat(dir).then(
            () => true,
            () => false,
          );
          if (seen) return Date.now();
        }
      })();
    }, folder);
    const made = await a.page.evaluate(async (dir) => {
      const t0 = Date.now();
      await (globalThis as unknown as Api).lshapes.kernel.mkdir(dir, false);
      return { t0, t1: Date.now() };
    }, folder);
    const seenAt = await b.page.evaluate(() => (globalThis as unknown as Api).__seen as Promise<number>);
    if (i < 2) continue; // warm-up
    lags.push(seenAt - made.t0);
    locals.push(made.t1 - made.t0);
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const t of [a, b, c]) await t.page.context().close();
  return {
    replication,
    ops: { runs: lags.length, medianMs: median(lags), p90Ms: percentile(lags, 0.9), maxMs: Math.max(...lags), localMkdirMedianMs: median(locals) },
  };
}

export async function runFilesBench(): Promise<FilesResult> {
  // The dropped files and the persistent profile live here, deleted at the end.
  const dir = mkdtempSync(path.join(tmpdir(), 'lshapes-bench-files-'));
  const l = await lab();
  try {
    const local = await measureLocal(l.base, dir);
    const { replication, ops } = await measureReplication(l, dir);
    return { ...local, replication, ops };
  } finally {
    await l.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `FILES_ONLY=namespace npx tsx bench/files.ts` (after `npx vite build`): only the namespace
 * measurement, in a persistent profile of its own; printed, never written anywhere.
 */
async function runNamespaceOnly(): Promise<FilesResult['namespace']> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lshapes-bench-ns-'));
  const l = await lab();
  const ctx = await chromium.launchPersistentContext(path.join(dir, 'profile'), { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  try {
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    await page.goto(`${l.base}/`);
    await waitBooted(page);
    const { store } = await stockholderOf(page);
    if (!store.label.startsWith('IndexedDB')) throw new Error(`the tab did not get the profile's store: ${store.label}`);
    return await measureNamespace(page);
  } finally {
    await ctx.close();
    await l.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.env.FILES_ONLY === 'namespace' && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await runNamespaceOnly(), null, 2));
}
