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
