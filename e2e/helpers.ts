// Helpers shared by the multi-tab tests: open a tab, read what its shell shows.
import type { Page } from '@playwright/test';
import { expect } from './fixtures.ts';

/** Opens `path` and waits for the kernel to boot; returns the tab's peer id. */
export async function openTab(page: Page, path: string): Promise<string> {
  await page.goto(path);
  await page.waitForFunction(() => (globalThis as { lshapes?: { peerId?: string } }).lshapes?.peerId, undefined, { timeout: 30_000 });
  return page.evaluate(() => (globalThis as unknown as { lshapes: { peerId: string } }).lshapes.peerId);
}

/** The peer ids listed in the tab's peers panel (itself included), sorted. */
export async function listedPeers(page: Page): Promise<string[]> {
  const ids = await page.locator('table[aria-label="Peers"] tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-peer-id') ?? ''));
  return ids.sort();
}

/** Waits until every page lists exactly `ids`. */
export async function expectViews(pages: Page[], ids: string[], timeout = 30_000): Promise<void> {
  const want = [...ids].sort();
  for (const p of pages) await expect.poll(() => listedPeers(p), { timeout }).toEqual(want);
}

export async function clusterUrlOf(page: Page): Promise<string> {
  return page.getByLabel('Cluster URL').inputValue();
}

/** Opens `n` tabs of one new cluster, each a separate device, and waits until every tab has a direct link to every other. */
export async function openCluster(device: () => Promise<Page>, n: number): Promise<{ pages: Page[]; ids: string[] }> {
  const a = await device();
  const ids = [await openTab(a, '/')];
  const url = await clusterUrlOf(a);
  const pages = [a];
  for (let i = 1; i < n; i++) {
    const p = await device();
    ids.push(await openTab(p, url));
    pages.push(p);
  }
  await expectViews(pages, ids);
  // A peer first learned by gossip is listed before its link is up: wait for the links.
  for (const p of pages) {
    await expect
      .poll(() => p.locator('table[aria-label="Peers"] tbody tr').evaluateAll((rows) => rows.every((r) => /state-(self|connected)/.test(r.className))), { timeout: 30_000 })
      .toBe(true);
  }
  return { pages, ids };
}

/** Types a command line into the tab's terminal. */
export async function typeCommand(page: Page, line: string): Promise<void> {
  const input = page.getByLabel('Terminal input');
  await input.focus();
  await page.keyboard.type(line);
  await page.keyboard.press('Enter');
}

/** Everything the terminal shows (xterm's DOM renderer keeps one div per row). */
export async function terminalText(page: Page): Promise<string> {
  return page.locator('.xterm-rows').innerText();
}

export async function expectOnScreen(page: Page, pattern: RegExp, timeout = 60_000): Promise<string> {
  await expect.poll(() => terminalText(page), { timeout }).toMatch(pattern);
  return terminalText(page);
}
