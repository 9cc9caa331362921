// The three ways a process leaves its peer, with real tabs and a real Node peer: the tab it runs
// in is closed (it is moved away while the browser asks), the tab crashes (the peer that started
// it restarts it from its checkpoint), the Node peer it runs on is stopped (it is moved away
// before the peer exits). Each time its output keeps coming to the terminal that started it,
// every line once and in order, and it ends normally.
import type { Dialog, Page } from '@playwright/test';
import { rmSync } from 'node:fs';
import { expect, test } from './fixtures.ts';
import {
  clusterUrlOf,
  expectOnScreen,
  expectViews,
  literal,
  openCluster,
  openTab,
  panelRow,
  schedulerStats,
  startNodePeer,
  typeCommand as type,
  watchTicks,
} from './helpers.ts';

/** Starts `counter n` in the background on `on` from `page`'s terminal; returns its pid. */
async function startCounter(page: Page, n: number, on: string): Promise<string> {
  await type(page, `run counter ${n} --on ${on.slice(0, 8)} &`);
  const started = await expectOnScreen(page, /\[pid (\S+) running in the background\]/);
  return /\[pid (\S+) running in the background\]/.exec(started)![1]!;
}

/** Every tick 1..n was seen, and no screen showed a repeat or a gap. */
function expectEveryTickOnce(ticks: ReturnType<typeof watchTicks>, n: number): void {
  expect(ticks.breaks).toEqual([]);
  expect([...ticks.seen].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
}

/** What `page` lists in /.lshapes/checkpoints, the Dispatcher's folder in the cluster filesystem (mounted at /cluster); none when absent. */
async function checkpointFiles(page: Page): Promise<{ name: string; size?: number }[]> {
  return page.evaluate(async () => {
    const k = (globalThis as unknown as { lshapes: { kernel: { ls(p: string): Promise<{ name: string; size?: number }[]> } } }).lshapes.kernel;
    return k.ls('/cluster/.lshapes/checkpoints').catch(() => []);
  });
}

const exited0 = (pid: string) => new RegExp(`\\[pid ${literal(pid)} exited with code 0\\]`);

test('a tab that closes moves its processes away while the browser asks, then goes', async ({ device }) => {
  const TICKS = 40;
  const { pages, ids } = await openCluster(device, 2);
  const [a, b] = pages as [Page, Page];
  const [idA, idB] = ids as [string, string];

  const pid = await startCounter(b, TICKS, idA);
  const ticks = watchTicks(b);
  try {
    await expect.poll(async () => (await panelRow(b, pid))?.peer).toBe(idA);
    // Well before its first checkpoint (CHECKPOINT_MS): a move, not a restart, must carry it.
    await expect.poll(() => ticks.max(), { timeout: 60_000 }).toBeGreaterThanOrEqual(3);
    await expect.poll(async () => (await panelRow(a, pid))?.state).toMatch(/^(RUNNING|WAITING)$/);

    // The user has used tab A (Chromium asks before unload only on a page the user touched),
    // then closes it. The app asks "leave?" and starts the drain; this user waits for it.
    await a.locator('.xterm-screen').click();
    const asked = new Promise<Dialog>((resolve) => a.once('dialog', resolve));
    await a.close({ runBeforeUnload: true });
    const dialog = await asked;
    expect(dialog.type()).toBe('beforeunload');
    // While the prompt is up the process moves to B, the only other peer; the user leaves as
    // soon as B lists it, while B may still be thawing it (MIGRATING): A's go has been said, and
    // the process must arrive and go on without A (this lost it once: the fix is in scheduler.ts).
    await expect.poll(async () => (await panelRow(b, pid))?.peer, { timeout: 30_000 }).toBe(idB);
    await dialog.accept();
    await expect.poll(() => a.isClosed()).toBe(true);

    // A is gone from B's view; the process goes on on B and ends there after every line.
    await expectViews([b], [idB]);
    await expect.poll(() => panelRow(b, pid), { timeout: 30_000 }).toEqual({ peer: idB, state: expect.stringMatching(/^(RUNNING|WAITING)$/) });
    const onB = ticks.max();
    await expect.poll(() => ticks.max(), { timeout: 30_000 }).toBeGreaterThanOrEqual(onB + 2);
    await expectOnScreen(b, exited0(pid), 90_000);
  } finally {
    await ticks.stop();
  }
  expectEveryTickOnce(ticks, TICKS);
  expect(await b.locator('.xterm-rows').innerText()).not.toMatch(/lost/);
  expect((await schedulerStats(b))?.missing).toBe(0);
});

test('a tab that vanishes: its process restarts on another peer from its checkpoint, no line shown twice', async ({ device }) => {
  const TICKS = 30;
  const { pages, ids } = await openCluster(device, 2);
  const [a, b] = pages as [Page, Page];
  const [idA, idB] = ids as [string, string];

  const pid = await startCounter(b, TICKS, idA);
  const ticks = watchTicks(b);
  try {
    await expect.poll(async () => (await panelRow(b, pid))?.peer).toBe(idA);
    // Running ≥ CHECKPOINT_MS, it is checkpointed into the cluster filesystem, which B holds too.
    const checkpoint = new RegExp(`^${literal(pid)}\\.ckpt-[ab]$`);
    await expect.poll(async () => (await checkpointFiles(b)).some((e) => checkpoint.test(e.name) && (e.size ?? 0) > 0), { timeout: 45_000 }).toBe(true);
    // A few more lines after it: the ones since the checkpoint are computed again on B.
    const atCheckpoint = ticks.max();
    await expect.poll(() => ticks.max(), { timeout: 30_000 }).toBeGreaterThanOrEqual(atCheckpoint + 3);

    // A's renderer crashes: no beforeunload, no pagehide, no goodbye; its links just go quiet.
    const cdp = await a.context().newCDPSession(a);
    const crashed = a.waitForEvent('crash');
    void cdp.send('Page.crash').catch(() => {}); // never answered: the answer dies with the page
    await crashed;

    // B, which started it, restarts it on itself from the checkpoint; it ends normally.
    await expect.poll(() => panelRow(b, pid), { timeout: 60_000 }).toEqual({ peer: idB, state: expect.stringMatching(/^(RUNNING|WAITING)$/) });
    await expect(b.getByRole('list', { name: 'Kernel events' })).toContainText(`restarting ${pid} on ${idB.slice(0, 8)} from its checkpoint`);
    await expectViews([b], [idB]);
    await expectOnScreen(b, exited0(pid), 90_000);
  } finally {
    await ticks.stop();
  }
  expectEveryTickOnce(ticks, TICKS);
  expect(await b.locator('.xterm-rows').innerText()).not.toMatch(/lost/);
  expect((await schedulerStats(b))?.missing).toBe(0);
  // It exited: its checkpoint is gone with it.
  await expect.poll(async () => (await checkpointFiles(b)).filter((e) => e.name.startsWith(`${pid}.`))).toEqual([]);
});

test('a Node peer that is stopped hands its processes to a tab, then exits cleanly', async ({ device }) => {
  const TICKS = 30;
  const a = await device();
  const idA = await openTab(a, '/');
  const node = startNodePeer(await clusterUrlOf(a));
  try {
    const idN = await node.peerId;
    await expectViews([a], [idA, idN]);
    await expect
      .poll(() => a.locator('table[aria-label="Peers"] tbody tr').evaluateAll((rows) => rows.every((r) => /state-(self|connected)/.test(r.className))), { timeout: 30_000 })
      .toBe(true);

    const pid = await startCounter(a, TICKS, idN);
    const ticks = watchTicks(a);
    try {
      await expect.poll(async () => (await panelRow(a, pid))?.peer).toBe(idN);
      await expect.poll(() => ticks.max(), { timeout: 60_000 }).toBeGreaterThanOrEqual(3);

      // Ctrl-C's sibling: the peer moves what it runs to the others, then says goodbye and exits.
      node.proc.kill('SIGTERM');
      await expect.poll(async () => (await panelRow(a, pid))?.peer, { timeout: 30_000 }).toBe(idA);
      expect(await node.exited).toBe(0);
      expect(node.output.join('')).toMatch(/moved 1 process\(es\) to other peers\n/);
      await expectViews([a], [idA]);

      await expectOnScreen(a, exited0(pid), 90_000);
    } finally {
      await ticks.stop();
    }
    expectEveryTickOnce(ticks, TICKS);
    expect(await a.locator('.xterm-rows').innerText()).not.toMatch(/lost/);
    expect((await schedulerStats(a))?.missing).toBe(0);
  } finally {
    node.proc.kill('SIGKILL');
    rmSync(node.state, { recursive: true, force: true });
  }
});
