// Shared set-up for browser benchmarks: a relay serving dist/, Debian's Chromium, one browser
// context per simulated device (as in e2e/), and helpers to open tabs of one cluster.
import { chromium, type Browser, type Page } from '@playwright/test';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../e2e/chromium.ts';
import { startRelay, type Relay } from '../src/relay/server.ts';


export interface Lab {
  relay: Relay;
  browser: Browser;
  base: string;
  tab(path: string): Promise<{ page: Page; id: string }>;
  close(): Promise<void>;
}

export async function lab(): Promise<Lab> {
  const relay = await startRelay({ port: 0, host: '127.0.0.1', staticDir: fileURLToPath(new URL('../dist', import.meta.url)), log: () => {} });
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  const base = `http://127.0.0.1:${relay.port}`;
  return {
    relay,
    browser,
    base,
    async tab(path) {
      const ctx = await browser.newContext({ permissions: ['microphone', 'camera'] });
      const page = await ctx.newPage();
      await page.goto(base + path);
      await page.waitForFunction(() => (globalThis as { lshapes?: { peerId?: string } }).lshapes?.peerId);
      const id = await page.evaluate(() => (globalThis as unknown as { lshapes: { peerId: string } }).lshapes.peerId);
      return { page, id };
    },
    async close() {
      await browser.close();
      await relay.close();
    },
  };
}

/**
 * Waits until `page`'s kernel has admitted links to all of `peers`. (A loop of evaluate calls:
 * Playwright's waitForFunction takes an async predicate's promise as a truthy answer at once.)
 */
export async function admitted(page: Page, peers: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const links = await page.evaluate(() => (globalThis as unknown as { lshapes: { kernel: { links(): Promise<{ peer: string; state: string }[]> } } }).lshapes.kernel.links());
    if (peers.every((p) => links.some((l) => l.peer === p && l.state === 'admitted'))) return;
    if (Date.now() > deadline) throw new Error(`links to ${peers.join(', ')} not admitted after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
}
