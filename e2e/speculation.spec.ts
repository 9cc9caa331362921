// Fork On Wait between real tabs: a writer in tab A that waits for a replica process in tab B to
// acknowledge each record runs ahead on predicted acknowledgements. The processes panel shows it
// in WAIT_CONFIRM with its STOPPED twins while it runs; the replica ends up with exactly the
// writer's records, once each, in order (its digest equals the writer's); ps counts the hits.
import type { Page } from '@playwright/test';
import { expectOnScreen, openCluster, terminalText, typeCommand as type } from './helpers.ts';
import { expect, test } from './fixtures.ts';

const RECORDS = 1500;

/** Polls A's processes panel until the writer shows WAIT_CONFIRM with a twin row under it. */
async function sawTwins(page: Page, pid: () => string | undefined, until: () => boolean): Promise<boolean> {
  while (!until()) {
    const p = pid();
    if (p) {
      const row = page.locator(`tr[data-pid="${p}"][data-state="WAIT_CONFIRM"]`);
      const twin = page.locator(`tr[data-twin-of="${p}"]`);
      if ((await row.count()) > 0 && (await twin.count()) > 0 && /STOPPED/.test(await twin.innerText())) return true;
    }
    await page.waitForTimeout(30);
  }
  return false;
}

test('a writer waiting for a remote replica runs ahead in WAIT_CONFIRM; the replica gets every record once', async ({ device }) => {
  const { pages, ids } = await openCluster(device, 2);
  const [a] = pages as [Page, Page];
  await type(a, `run journal ${RECORDS} 4 ${ids[1]!.slice(0, 8)} --on ${ids[0]!.slice(0, 8)}`);
  let pid: string | undefined;
  let ended = false;
  const watching = sawTwins(a, () => pid, () => ended);
  const started = await expectOnScreen(a, /\[pid ([0-9a-f]{6}\.\d+)|record 100 acknowledged/, 60_000);
  pid = /([0-9a-f]{6}\.\d+)/.exec(started)?.[1];
  // The pid as the panel lists it: the journal row on A's own peer.
  pid ??= await a.locator('tr[data-pid]').filter({ hasText: 'journal' }).first().getAttribute('data-pid') ?? undefined;
  const text = await expectOnScreen(a, /replica exited 0/, 120_000);
  ended = true;
  expect(await watching).toBe(true);
  const writer = /writer {2}([0-9a-f]{16}) (\d+), (\d+) unexpected replies/.exec(text);
  const replica = /replica ([0-9a-f]{16}) (\d+)/.exec(text);
  expect(writer && replica).toBeTruthy();
  expect(writer![3]).toBe('0');
  expect(replica![1]).toBe(writer![1]);
  expect(Number(replica![2])).toBe(RECORDS * 4096);
  for (let k = 100; k <= RECORDS; k += 100) expect(text).toContain(`record ${k} acknowledged`);
  await expectOnScreen(a, /exited with code 0/);
  // ps shows the Fork On Wait counters of the writer: outstanding/hits/rollbacks.
  await type(a, 'ps');
  await expect.poll(async () => /journal.*\b0\/([1-9]\d*)\/0\b/.test(await terminalText(a)), { timeout: 10_000 }).toBe(true);
});
