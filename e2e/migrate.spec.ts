// Moving a running process between real tabs: started in tab A, moved to tab B from A's terminal,
// dragged back to A in the processes panel. Its output keeps coming to A's terminal throughout,
// every line once and in order, and it ends normally.
import type { Page } from '@playwright/test';
import { expectOnScreen, openCluster, panelRow, typeCommand as type, watchTicks } from './helpers.ts';
import { expect, test } from './fixtures.ts';

/** How many lines counter prints (one a second). */
const TICKS = 30;

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
