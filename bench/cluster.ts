// Cluster benchmark (issue "Boot a cluster"): between two real tabs over real WebRTC, the
// kernel's port-to-port path next to a raw RTCDataChannel measured in the same run, for both
// data-plane modes; and how long the others take to drop a closed or crashed tab.
import type { Page } from '@playwright/test';
import { admitted, lab, percentile, type Lab } from './browser.ts';

type Api = { lshapes: { kernel: { pingPong(p: string, n: number, s: number): Promise<number[]>; blast(p: string, n: number, s: number): Promise<{ ms: number }> } } };

const RTT_COUNT = 500;
const SMALL = 64;
const SMALL_COUNT = 20_000;
const BIG = 256 * 1024;
const BIG_COUNT = 200;

/** A plain negotiated RTCDataChannel between two pages, signaled by the benchmark itself. */
export async function rawChannel(a: Page, b: Page): Promise<void> {
  const setup = `
    globalThis.__raw = (() => {
      const pc = new RTCPeerConnection({ iceServers: [] });
      const ch = pc.createDataChannel('raw', { negotiated: true, id: 7 });
      ch.binaryType = 'arraybuffer';
      const state = { pc, ch, count: 0, bytes: 0 };
      ch.onmessage = (ev) => {
        const d = new Uint8Array(ev.data);
        if (d[0] === 1) ch.send(ev.data);                       // echo
        else if (d[0] === 2) ch.send(new Uint8Array([3]));      // end of a blast: ack
        else if (d[0] === 3) state.acked?.();
        else { state.count++; state.bytes += d.length; }
      };
      return state;
    })();
    async function gathered(pc) { if (pc.iceGatheringState !== 'complete') await new Promise((r) => pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && r())); }
    globalThis.__gathered = gathered;`;
  await a.evaluate(setup);
  await b.evaluate(setup);
  const offer = await a.evaluate(`(async () => { const { pc } = __raw; await pc.setLocalDescription(await pc.createOffer()); await __gathered(pc); return pc.localDescription.sdp; })()`);
  const answer = await b.evaluate(`(async (sdp) => { const { pc } = __raw; await pc.setRemoteDescription({ type: 'offer', sdp }); await pc.setLocalDescription(await pc.createAnswer()); await __gathered(pc); return pc.localDescription.sdp; })(${JSON.stringify(offer)})`);
  await a.evaluate(`__raw.pc.setRemoteDescription({ type: 'answer', sdp: ${JSON.stringify(answer)} })`);
  for (const p of [a, b]) await p.waitForFunction(`__raw.ch.readyState === 'open'`);
}

/** Mean round trip over `n` sequential echoes: total time / n, immune to the coarse timer of non-isolated pages. */
async function rawRtt(a: Page, n: number, size: number): Promise<number> {
  return a.evaluate(`(async () => {
    const { ch } = __raw; const msg = new Uint8Array(${size}); msg[0] = 1;
    const t0 = performance.now();
    for (let i = 0; i < ${n}; i++) {
      await new Promise((r) => { const prev = ch.onmessage; ch.onmessage = (ev) => { ch.onmessage = prev; r(); }; ch.send(msg); });
    }
    return (performance.now() - t0) / ${n}; })()`) as Promise<number>;
}

/** Milliseconds to send `n` messages of `size` bytes over the raw channel, until the other side acked the last. */
export async function rawBlast(a: Page, n: number, size: number): Promise<number> {
  return a.evaluate(`(async () => {
    const { ch } = __raw; const msg = new Uint8Array(${size}); msg[0] = 0;
    ch.bufferedAmountLowThreshold = 1 << 20;
    const t0 = performance.now();
    for (let i = 0; i < ${n}; i++) {
      if (ch.bufferedAmount > 4 << 20) await new Promise((r) => (ch.onbufferedamountlow = r));
      ch.send(msg);
    }
    await new Promise((r) => { __raw.acked = r; ch.send(new Uint8Array([2])); });
    return performance.now() - t0; })()`) as Promise<number>;
}

/** Per-echo round trips through the kernel (`echo` port); their sum / n is the mean. */
const kernelRtt = (a: Page, peer: string, n: number, size: number) =>
  a.evaluate(({ peer, n, size }) => (globalThis as unknown as Api).lshapes.kernel.pingPong(peer, n, size), { peer, n, size });
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const kernelBlast = async (a: Page, peer: string, n: number, size: number) =>
  (await a.evaluate(({ peer, n, size }) => (globalThis as unknown as Api).lshapes.kernel.blast(peer, n, size), { peer, n, size })).ms;

export interface PlaneResult {
  mode: 'transfer' | 'bridge';
  rawRttMs: number;
  kernelRttMs: number;
  rttRatio: number;
  kernelRttP99Ms: number;
  rawMsgsPerS: number;
  kernelMsgsPerS: number;
  rawMiBps: number;
  kernelMiBps: number;
}

async function measurePlane(l: Lab, mode: 'transfer' | 'bridge'): Promise<PlaneResult> {
  const q = mode === 'bridge' ? '?plane=bridge' : '';
  const a = await l.tab(`/${q}`);
  const hash = new URL(a.page.url()).hash;
  const b = await l.tab(`/${q}${hash}`);
  await admitted(a.page, [b.id]);
  await admitted(b.page, [a.id]);
  await rawChannel(a.page, b.page);
  // Warm up both paths (JIT, SCTP windows), then measure them back to back.
  await rawRtt(a.page, 50, SMALL);
  await kernelRtt(a.page, b.id, 50, SMALL);
  // Alternate the two paths a few times so neither gets a quieter moment of the machine.
  const raws: number[] = [];
  const kers: number[] = [];
  for (let round = 0; round < 4; round++) {
    raws.push(await rawRtt(a.page, RTT_COUNT, SMALL));
    kers.push(...(await kernelRtt(a.page, b.id, RTT_COUNT, SMALL)));
  }
  const raw = mean(raws);
  const ker = mean(kers);
  const rawSmallMs = await rawBlast(a.page, SMALL_COUNT, SMALL);
  const kerSmallMs = await kernelBlast(a.page, b.id, SMALL_COUNT, SMALL);
  const rawBigMs = await rawBlast(a.page, BIG_COUNT, BIG);
  const kerBigMs = await kernelBlast(a.page, b.id, BIG_COUNT, BIG);
  await a.page.context().close();
  await b.page.context().close();
  const mib = (BIG_COUNT * BIG) / 2 ** 20;
  return {
    mode,
    rawRttMs: raw,
    kernelRttMs: ker,
    rttRatio: ker / raw,
    kernelRttP99Ms: percentile(kers, 0.99),
    rawMsgsPerS: SMALL_COUNT / (rawSmallMs / 1000),
    kernelMsgsPerS: SMALL_COUNT / (kerSmallMs / 1000),
    rawMiBps: mib / (rawBigMs / 1000),
    kernelMiBps: mib / (kerBigMs / 1000),
  };
}

/** Milliseconds until every other tab's peers panel no longer lists `gone`. */
async function timeToDrop(watchers: Page[], gone: string, act: () => Promise<void>): Promise<number> {
  const t0 = Date.now();
  await act();
  await Promise.all(
    watchers.map((p) => p.waitForFunction((id) => !document.querySelector(`tr[data-peer-id="${id}"]`), gone, { timeout: 60_000, polling: 50 })),
  );
  return Date.now() - t0;
}

export async function measureDetection(l: Lab): Promise<{ closedMs: number; crashedMs: number }> {
  const a = await l.tab('/');
  const hash = new URL(a.page.url()).hash;
  const b = await l.tab(`/${hash}`);
  const c = await l.tab(`/${hash}`);
  const d = await l.tab(`/${hash}`);
  for (const t of [a, b, c, d]) await t.page.waitForFunction((n) => document.querySelectorAll('table[aria-label="Peers"] tbody tr').length === n, 4, { timeout: 30_000 });
  const closedMs = await timeToDrop([a.page, b.page], d.id, () => d.page.close({ runBeforeUnload: true }));
  const cdp = await c.page.context().newCDPSession(c.page);
  const crashedMs = await timeToDrop([a.page, b.page], c.id, async () => void cdp.send('Page.crash').catch(() => {}));
  return { closedMs, crashedMs };
}

export async function runClusterBench(): Promise<{ planes: PlaneResult[]; detection: { closedMs: number; crashedMs: number } }> {
  const l = await lab();
  try {
    const planes = [await measurePlane(l, 'transfer'), await measurePlane(l, 'bridge')];
    const detection = await measureDetection(l);
    return { planes, detection };
  } finally {
    await l.close();
  }
}
