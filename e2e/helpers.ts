// Helpers shared by the multi-tab tests: open a tab, read what its shell shows.
import type { Page } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/** The peer a process runs on and its state, as the processes panel of `page` shows it. */
export async function panelRow(page: Page, pid: string): Promise<{ peer: string; state: string } | undefined> {
  // Read in one go: a row that goes between two reads must not leave a read waiting for it.
  const rows = await page
    .locator(`tr[data-pid="${pid}"]`)
    .evaluateAll((rs) => rs.map((r) => ({ peer: r.getAttribute('data-peer-id') ?? '', state: r.getAttribute('data-state') ?? '' })));
  return rows[0];
}

/** `text` as a RegExp source that matches it literally (pids hold dots). */
export function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Watches the terminal while a counter runs: every screen must show its "tick n" lines
 * consecutively (a repeat or a gap would show as a break), and together the screens must show
 * each of them. Polled several times per tick, so no line scrolls away unseen. A page that
 * crashed or closed ends the watch (its terminal is gone).
 */
export function watchTicks(page: Page) {
  const seen = new Set<number>();
  const breaks: string[] = [];
  let running = true;
  /** Reads the screen once; false when the page is gone. */
  const look = async (): Promise<boolean> => {
    const text = await terminalText(page).catch(() => undefined);
    if (text === undefined) return false;
    const ticks = [...text.matchAll(/^tick (\d+) /gm)].map((m) => Number(m[1]));
    ticks.forEach((t, i) => {
      seen.add(t);
      if (i > 0 && t !== ticks[i - 1]! + 1) breaks.push(`tick ${ticks[i - 1]} then tick ${t}`);
    });
    return true;
  };
  const done = (async () => {
    while (running && !page.isClosed()) {
      if (!(await look())) break;
      await page.waitForTimeout(200).catch(() => {});
    }
    // One last look: the final lines may have come with the exit the caller waited for, after
    // the last poll (a stop between two polls missed the last tick once).
    if (!page.isClosed()) await look();
  })();
  return {
    seen,
    breaks,
    max: () => Math.max(0, ...seen),
    async stop() {
      running = false;
      await done;
    },
  };
}

/** What the tab's Scheduler client could not use; `missing` counts output bytes that never came. */
export async function schedulerStats(page: Page): Promise<{ missing: number } | undefined> {
  return page.evaluate(() => (globalThis as unknown as { lshapes: { kernel: { schedulerStats(): Promise<{ missing: number } | undefined> } } }).lshapes.kernel.schedulerStats());
}

export interface NodePeer {
  proc: ChildProcess;
  /** Everything it printed (stdout and stderr). */
  output: string[];
  peerId: Promise<string>;
  /** Its state directory (identity, store). */
  state: string;
  /** Resolves with its exit code once it has exited. */
  exited: Promise<number | null>;
}

/** Starts a headless Node peer (src/host/node/main.ts) that joins the cluster at `url`. */
export function startNodePeer(url: string): NodePeer {
  const state = mkdtempSync(join(tmpdir(), 'lshapes-node-'));
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/host/node/main.ts', '--url', url, '--state', state], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const peerId = new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      output.push(d.toString());
      const m = /node peer ([0-9a-f]{32})/.exec(output.join(''));
      if (m) resolve(m[1]!);
    });
    proc.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
    void exited.then((code) => reject(new Error(`node peer exited (${code}): ${output.join('')}`)));
  });
  return { proc, output, peerId, state, exited };
}
