// Moving a running process between real tabs: started in tab A, moved to tab B from A's terminal,
// dragged back to A in the processes panel. Its output keeps coming to A's terminal throughout,
// every line once and in order, and it ends normally.
import type { Page } from '@playwright/test';
import { expectOnScreen, openCluster, terminalText, typeCommand as type } from './helpers.ts';
import { expect, test } from './fixtures.ts';

/** How many lines counter prints (one a second). */
const TICKS = 30;

/** The peer a process runs on, as the processes panel of `page` shows it. */
async function panelRow(page: Page, pid: string): Promise<{ peer: string; state: string } | undefined> {
  const row = page.locator(`tr[data-pid="${pid}"]`);
  if ((await row.count()) === 0) return undefined;
  return { peer: (await row.getAttribute('data-peer-id')) ?? '', state: (await row.getAttribute('data-state')) ?? '' };
}

/**
 * Watches the terminal while the process runs: every screen must show its "tick n" lines
 * consecutively (a repeat or a gap would show as a break), and together the screens must show
 * each of them. Polled several times per tick, so no line scrolls away unseen.
 */
function watchTicks(page: Page) {
  const seen = new Set<number>();
  const breaks: string[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const ticks = [...(await terminalText(page)).matchAll(/^tick (\d+) /gm)].map((m) => Number(m[1]));
      ticks.forEach((t, i) => {
        seen.add(t);
        if (i > 0 && t !== ticks[i - 1]! + 1) breaks.push(`tick ${ticks[i - 1]} then tick ${t}`);
      });
      await page.waitForTimeout(200);
    }
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

test('a process moves to another tab and back; its output reaches the terminal that started it, in order, once', async ({ device }) => {
  const { pages, ids } = await openCluster(device, 2);
  const [a, b] = pages as [Page, Page];
  const [idA, idB] = ids as [string, string];

  await type(a, `run counter ${TICKS} --on ${idA.slice(0, 8)} &`);
  const started = await expectOnScreen(a, /\[pid (\S+) running in the background\]/);
  const pid = /\[pid (\S+) running in the background\]/.exec(started)![1]!;
  const ticks = watchTicks(a);
  try {
    await expect.poll(() => ticks.max(), { timeout: 60_000 }).toBeGreaterThanOrEqual(3);

    // A's terminal moves it to B and says so.
    await type(a, `migrate ${pid} ${idB.slice(0, 8)}`);
    await expectOnScreen(a, new RegExp(`${pid.replace('.', '\\.')} moved to ${idB.slice(0, 8)} \\(stopped \\d+ ms\\)`));
    // Both tabs' panels, and ps, show it on B; it goes on printing there.
    for (const page of [a, b]) await expect.poll(async () => (await panelRow(page, pid))?.peer).toBe(idB);
    await type(a, 'ps');
    await expectOnScreen(a, new RegExp(`${pid.replace('.', '\\.')}\\s+counter ${TICKS}\\s+${idB.slice(0, 8)}\\s+(RUNNING|WAITING)`));
    const onB = ticks.max();
    await expect.poll(() => ticks.max(), { timeout: 30_000 }).toBeGreaterThanOrEqual(onB + 2);

    // Dragged back onto this tab in A's processes panel.
    await expect.poll(async () => (await panelRow(a, pid))?.state).toMatch(/^(RUNNING|WAITING)$/);
    await a.locator(`tr[data-pid="${pid}"]`).dragTo(a.locator(`.proc-targets [data-drop-peer="${idA}"]`));
    await expect(a.locator('.move-notices')).toContainText(new RegExp(`${pid.replace('.', '\\.')} moved to ${idA.slice(0, 8)} \\(stopped \\d+ ms\\)`), { timeout: 60_000 });
    await expect.poll(async () => (await panelRow(b, pid))?.peer).toBe(idA);

    // It ends normally, after every line.
    await expectOnScreen(a, new RegExp(`\\[pid ${pid.replace('.', '\\.')} exited with code 0\\]`), 90_000);
  } finally {
    await ticks.stop();
  }
  expect(ticks.breaks).toEqual([]);
  expect([...ticks.seen].sort((x, y) => x - y)).toEqual(Array.from({ length: TICKS }, (_, i) => i + 1));
  // No output went missing between the peers (repeats from a restarted image are dropped by the client).
  const stats = await a.evaluate(() => (globalThis as unknown as { lshapes: { kernel: { schedulerStats(): Promise<{ missing: number } | undefined> } } }).lshapes.kernel.schedulerStats());
  expect(stats?.missing).toBe(0);
});
