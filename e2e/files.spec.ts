// The cluster filesystem (the Stockholder) across real tabs, driven through the files panel and
// the terminal: drops replicate to every tab and read back byte for byte, survive reloads and the
// tab that added them, are readable by programs on other tabs, and a crash mid-drop never leaves
// a file that cannot be read.
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Locator, Page } from '@playwright/test';
import { SAMPLE_FILES } from '../src/kernel/process/sample-files.ts';
import type { FilesSnapshot } from '../src/servers/stockholder/files-api.ts';
import { clusterUrlOf, expectOnScreen, openCluster, openTab, terminalText, typeCommand } from './helpers.ts';
import { expect, test } from './fixtures.ts';

const MiB = 1 << 20;
/** How long a change made in one tab may take to show in another. */
const ACROSS = 30_000;

const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');

/** Bytes that look random but are the same on every run (xorshift32): no two 1 MiB blocks alike. */
function pseudoRandomBytes(size: number, seed: number): Buffer {
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return Buffer.from(words.buffer, 0, size);
}

/** A tab about to lose the only copy of a file asks before it unloads: say yes. */
function acceptDialogs(page: Page): void {
  page.on('dialog', (d) => void d.accept());
}

/** The live (not trashed, not still uploading) row of `path` in the tab's files panel. */
function liveRow(page: Page, path: string): Locator {
  return page.locator(`table[data-place="live"] tr.file-row[data-path="${path}"]:not([data-id^="upload:"])`);
}

/** Rows of the trash whose path ends with `/name`. */
function trashRow(page: Page, name: string): Locator {
  return page.locator(`table[data-place="trash"] tr.file-row[data-trashed="true"][data-path$="/${name}"]`);
}

function addFiles(page: Page, files: { name: string; text?: string; bytes?: Buffer }[]): Promise<void> {
  return page.getByLabel('Files to add').setInputFiles(
    files.map((f) => ({ name: f.name, mimeType: f.text !== undefined ? 'text/plain' : 'application/octet-stream', buffer: f.bytes ?? Buffer.from(f.text ?? '') })),
  );
}

/** Clicks the row's Download button and returns the bytes the browser saved (failing with the panel's message if the download failed). */
async function download(page: Page, path: string): Promise<Buffer> {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const alerts = page.locator('.files-messages [role="alert"]');
  const alertsBefore = await alerts.count();
  const saved = page.waitForEvent('download', { timeout: 60_000 });
  await liveRow(page, path).getByRole('button', { name: `Download ${name}`, exact: true }).click();
  const failed = alerts
    .nth(alertsBefore)
    .waitFor({ timeout: 60_000 })
    .then(async () => {
      throw new Error(`the panel says: ${await alerts.nth(alertsBefore).innerText()}`);
    });
  const got = await Promise.race([saved, failed]);
  expect(got.suggestedFilename()).toBe(name);
  expect(await got.failure()).toBeNull();
  return readFile(await got.path());
}

/** Waits for the (re)loaded tab's kernel. */
async function booted(page: Page): Promise<void> {
  await page.waitForFunction(() => (globalThis as { lshapes?: { peerId?: string } }).lshapes?.peerId, undefined, { timeout: 30_000 });
}

/** How many blocks the profile's IndexedDB store holds (read directly, not through the app). */
function storedBlocks(page: Page): Promise<number> {
  return page.evaluate(
    () =>
      new Promise<number>((resolve, reject) => {
        const req = indexedDB.open('lshapes-store');
        // Never create it here: the app must find it as it left it.
        req.onupgradeneeded = () => req.transaction!.abort();
        req.onerror = () => reject(new Error(`cannot open lshapes-store: ${req.error?.message}`));
        req.onsuccess = () => {
          const db = req.result;
          const count = db.transaction('blocks').objectStore('blocks').count();
          count.onsuccess = () => (db.close(), resolve(count.result));
          count.onerror = () => (db.close(), reject(count.error));
        };
      }),
  );
}

/** The latest files snapshot the tab's shell got. */
function snapshotOf(page: Page): Promise<FilesSnapshot | undefined> {
  return page.evaluate(() => (globalThis as unknown as { lshapes: { files(): FilesSnapshot | undefined } }).lshapes.files());
}

test('a file dropped into tab A is held and read by B and C, survives reloading every tab, and outlives A', async ({ device }) => {
  const { pages } = await openCluster(device, 3);
  const [a, b, c] = pages as [Page, Page, Page];
  for (const p of pages) acceptDialogs(p);
  const big = pseudoRandomBytes(3 * MiB + 7, 0x5eed);
  const note = 'a small note\nin two lines\n';

  await test.step('dropped into A: every tab lists it on 3 peers; B and C read every byte', async () => {
    await addFiles(a, [{ name: 'big.bin', bytes: big }, { name: 'note.txt', text: note }]);
    for (const p of pages) {
      await expect(liveRow(p, '/big.bin')).toHaveAttribute('data-replicas', '3', { timeout: 60_000 });
      await expect(liveRow(p, '/note.txt')).toHaveAttribute('data-replicas', '3', { timeout: ACROSS });
      await expect(liveRow(p, '/big.bin')).not.toHaveAttribute('data-sole-copy', 'true');
    }
    for (const p of [b, c]) {
      const bytes = await download(p, '/big.bin');
      expect(bytes.length).toBe(big.length);
      expect(sha256(bytes)).toBe(sha256(big));
      expect((await download(p, '/note.txt')).toString()).toBe(note);
    }
  });

  await test.step('all three tabs reloaded at once: each still lists it and reads it identically', async () => {
    await Promise.all(pages.map((p) => p.reload()));
    for (const p of pages) await booted(p);
    for (const p of pages) {
      await expect(liveRow(p, '/big.bin')).toHaveCount(1, { timeout: ACROSS });
      // Listed straight from this tab's IndexedDB, with its blocks there too.
      const row = (await snapshotOf(p))?.rows.find((r) => r.path === '/big.bin');
      expect(row?.local).toBe(true);
      expect(sha256(await download(p, '/big.bin'))).toBe(sha256(big));
      expect((await download(p, '/note.txt')).toString()).toBe(note);
    }
    for (const p of pages) await expect(liveRow(p, '/big.bin')).toHaveAttribute('data-replicas', '3', { timeout: ACROSS });
  });

  await test.step('A closed: C says on 2 peers and still reads every byte', async () => {
    await a.close();
    for (const p of [b, c]) {
      await expect(liveRow(p, '/big.bin')).toHaveAttribute('data-replicas', '2', { timeout: ACROSS });
      await expect(liveRow(p, '/big.bin')).toContainText('on 2 peers');
    }
    expect(sha256(await download(c, '/big.bin'))).toBe(sha256(big));
  });
});

test('a program started in tab B reads a file added in tab A', async ({ device }) => {
  const { pages, ids } = await openCluster(device, 2);
  const [a, b] = pages as [Page, Page];
  const words = 'the quick brown fox\njumps over\nthe lazy dog\n';
  await addFiles(a, [{ name: 'words.txt', text: words }]);
  await expect(liveRow(b, '/words.txt')).toHaveCount(1, { timeout: ACROSS });

  // Placed on B itself: the reading happens on the tab that did not add the file.
  const onB = ids[1]!.slice(0, 8);
  const [lines, count, bytes] = [words.split('\n').length - 1, words.split(/\s+/).filter(Boolean).length, Buffer.byteLength(words)];
  await typeCommand(b, `run wc /cluster/words.txt --on ${onB}`);
  await expectOnScreen(b, new RegExp(`\\b${lines}\\s+${count}\\s+${bytes} /cluster/words\\.txt`));
  await expectOnScreen(b, /exited with code 0/);
  await typeCommand(b, `run sha256sum /cluster/words.txt --on ${onB}`);
  await expectOnScreen(b, new RegExp(`${sha256(words)}\\s+/cluster/words\\.txt`));
});

test('a folder added in tab A shows in tab B with its nested files', async ({ device }, testInfo) => {
  const dir = testInfo.outputPath('pics');
  await mkdir(join(dir, 'sub'), { recursive: true });
  await writeFile(join(dir, 'top.txt'), 'at the top\n');
  await writeFile(join(dir, 'sub', 'b.txt'), 'b, one folder down\n');
  const { pages } = await openCluster(device, 2);
  const [a, b] = pages as [Page, Page];

  await a.getByLabel('Folder to add').setInputFiles(dir);
  await expect(liveRow(b, '/pics/sub/b.txt')).toHaveAttribute('data-kind', 'file', { timeout: ACROSS });
  await expect(liveRow(b, '/pics/top.txt')).toHaveAttribute('data-kind', 'file');
  await expect(liveRow(b, '/pics')).toHaveAttribute('data-kind', 'dir');
  await expect(liveRow(b, '/pics/sub')).toHaveAttribute('data-kind', 'dir');
  expect((await download(b, '/pics/sub/b.txt')).toString()).toBe('b, one folder down\n');
});

test('mkdir, cp, mv and rm in tab A\'s terminal show in tab B\'s panel and terminal', async ({ device }) => {
  const { pages } = await openCluster(device, 2);
  const [a, b] = pages as [Page, Page];
  const readme = SAMPLE_FILES['README.txt'] as string;

  await typeCommand(a, 'mkdir /cluster/docs');
  await expect(liveRow(b, '/docs')).toHaveAttribute('data-kind', 'dir', { timeout: ACROSS });

  await typeCommand(a, 'cp /README.txt /cluster/docs/readme.txt');
  await expect(liveRow(b, '/docs/readme.txt')).toHaveAttribute('data-kind', 'file', { timeout: ACROSS });
  expect((await download(b, '/docs/readme.txt')).toString()).toBe(readme);
  await typeCommand(b, 'ls /cluster/docs');
  await expectOnScreen(b, /readme\.txt/, ACROSS);

  // A rename is a move of the same entry, not a copy.
  const id = await liveRow(b, '/docs/readme.txt').getAttribute('data-id');
  await typeCommand(a, 'mv /cluster/docs/readme.txt /cluster/docs/notes.txt');
  await expect(liveRow(b, '/docs/notes.txt')).toHaveAttribute('data-id', id!, { timeout: ACROSS });
  await expect(liveRow(b, '/docs/readme.txt')).toHaveCount(0);

  await typeCommand(a, 'rm /cluster/docs/notes.txt');
  await expect(liveRow(b, '/docs/notes.txt')).toHaveCount(0, { timeout: ACROSS });
  await expect(trashRow(b, 'notes.txt')).toHaveCount(1);
  await expect(liveRow(b, '/docs')).toHaveCount(1);
  // None of A's commands complained ("cp: /cluster/...: reason").
  expect(await terminalText(a)).not.toMatch(/\b(mkdir|cp|mv|rm): /);
});

test('a file deleted in tab A is in tab B\'s trash; restored in B it is back in A; emptying the trash removes it everywhere', async ({ device }) => {
  const { pages } = await openCluster(device, 2);
  const [a, b] = pages as [Page, Page];
  const text = 'keep me\n';
  await addFiles(a, [{ name: 'keep.txt', text }]);
  await expect(liveRow(b, '/keep.txt')).toHaveCount(1, { timeout: ACROSS });

  await liveRow(a, '/keep.txt').getByRole('button', { name: 'Delete keep.txt', exact: true }).click();
  await expect(trashRow(b, 'keep.txt')).toHaveCount(1, { timeout: ACROSS });
  await expect(liveRow(b, '/keep.txt')).toHaveCount(0);

  await trashRow(b, 'keep.txt').getByRole('button', { name: 'Restore keep.txt', exact: true }).click();
  await expect(liveRow(a, '/keep.txt')).toHaveCount(1, { timeout: ACROSS });
  await expect(trashRow(a, 'keep.txt')).toHaveCount(0);
  expect((await download(a, '/keep.txt')).toString()).toBe(text);

  // Delete again in B; empty the trash in A (it asks first): gone from both, live and trash.
  await liveRow(b, '/keep.txt').getByRole('button', { name: 'Delete keep.txt', exact: true }).click();
  await expect(trashRow(a, 'keep.txt')).toHaveCount(1, { timeout: ACROSS });
  await a.getByRole('button', { name: 'Empty trash' }).click();
  await a.getByRole('button', { name: 'Delete forever' }).click();
  for (const p of [a, b]) {
    await expect(trashRow(p, 'keep.txt')).toHaveCount(0, { timeout: ACROSS });
    await expect(liveRow(p, '/keep.txt')).toHaveCount(0);
    await expect(p.getByText('The trash is empty.')).toBeVisible();
  }
});

test('a tab that crashes while a big file is being added leaves no file, or a whole one, in its profile', async ({ device }, testInfo) => {
  const size = 48 * MiB + 3;
  const bytes = pseudoRandomBytes(size, 0xc0ffee);
  const file = testInfo.outputPath('huge.bin');
  await writeFile(file, bytes);
  const a = await device();
  await openTab(a, '/');
  const url = a.url();
  await expect(a.locator('.files-storage')).toBeVisible({ timeout: ACROSS });

  await a.getByLabel('Files to add').setInputFiles(file);
  // Crash once some of its blocks are stored but (normally) before its operation is.
  const uploading = a.getByRole('progressbar', { name: 'uploading huge.bin' });
  let lastPercent = 0;
  await expect
    .poll(
      async () => {
        const now = await uploading.getAttribute('aria-valuenow', { timeout: 100 }).catch(() => null);
        if (now !== null) lastPercent = Number(now);
        return lastPercent > 0 || (await liveRow(a, '/huge.bin').count()) > 0;
      },
      { timeout: ACROSS, intervals: [50] },
    )
    .toBe(true);
  const cdp = await a.context().newCDPSession(a);
  const crashed = a.waitForEvent('crash');
  void cdp.send('Page.crash').catch(() => {}); // never answers: the page is gone
  await crashed;

  // Look at the store before the app does: a page of the same origin that is not the app.
  const again = await a.context().newPage();
  acceptDialogs(again);
  await again.goto('/programs/index.json');
  const orphans = await storedBlocks(again);
  await openTab(again, url);
  // The new tab owns the profile's store (not a memory stand-in while the crashed one lets go).
  await expect.poll(async () => (await snapshotOf(again))?.store.durable, { timeout: ACROSS }).toBe(true);
  const rows = ((await snapshotOf(again))?.rows ?? []).filter((r) => r.path === '/huge.bin' && !r.id.startsWith('upload:'));
  testInfo.annotations.push({ type: 'crash', description: `upload at ${lastPercent}% when crashed, ${orphans} blocks in the store; file ${rows.length ? 'complete' : 'absent'} after` });
  if (rows.length === 0) {
    await expect(liveRow(again, '/huge.bin')).toHaveCount(0);
    // The blocks stored before the crash belong to no file: they are deleted at the next start.
    expect((await snapshotOf(again))?.store.usage).toBe(0);
    await expect.poll(() => storedBlocks(again), { timeout: ACROSS }).toBe(0);
  } else {
    expect(rows).toHaveLength(1);
    expect(rows[0]!.size).toBe(size);
    const got = await download(again, '/huge.bin');
    expect(got.length).toBe(size);
    expect(sha256(got)).toBe(sha256(bytes));
  }
});

test('two tabs of one browser profile: one owns the IndexedDB store, the other keeps memory and takes over when the owner closes', async ({ device }) => {
  const first = await device();
  acceptDialogs(first);
  const { pages } = await openCluster(async () => first, 1);
  const url = await clusterUrlOf(pages[0]!);
  // A second tab of the same profile (same context): another peer, sharing IndexedDB.
  const second = await first.context().newPage();
  acceptDialogs(second);
  await openTab(second, url);
  await addFiles(first, [{ name: 'shared.txt', text: 'one profile, two tabs\n' }]);
  await expect.poll(async () => (await snapshotOf(second))?.rows.find((r) => r.path === '/shared.txt')?.local, { timeout: 30_000 }).toBe(true);
  expect((await snapshotOf(first))?.store).toMatchObject({ durable: true });
  expect((await snapshotOf(second))?.store).toMatchObject({ durable: false });
  await first.close();
  // The owner is gone: the second tab gets the lock, merges into IndexedDB, and says so.
  await expect.poll(async () => (await snapshotOf(second))?.store.durable, { timeout: 30_000 }).toBe(true);
  await second.reload();
  await booted(second);
  await expect.poll(async () => (await snapshotOf(second))?.rows.find((r) => r.path === '/shared.txt')?.local, { timeout: 30_000 }).toBe(true);
  expect(await download(second, '/shared.txt')).toEqual(Buffer.from('one profile, two tabs\n'));
});
