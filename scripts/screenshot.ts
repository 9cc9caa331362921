// Takes docs/screenshot.png: three tabs of one cluster, files dropped into another tab listed in
// the first's Files panel, the prime counter run from the first (its parts on all three), a
// program reading a cluster file, a counter running on another tab, and the first tab's shell.
//   npx tsx scripts/screenshot.ts      (after `npm run build`)
import { lab } from '../bench/browser.ts';

const l = await lab();
try {
  const a = await l.tab('/');
  const url = await a.page.getByLabel('Cluster URL').inputValue();
  const b = await l.tab(url.replace(l.base, ''));
  const c = await l.tab(url.replace(l.base, ''));
  await a.page.setViewportSize({ width: 1440, height: 1250 });
  // Files added in tab B: a few texts in a folder and a photo-sized binary.
  await b.page.evaluate(async () => {
    const big = new Uint8Array(5 << 20).map((_, i) => (i * 2654435761) >>> 24);
    const poem = 'I met a traveller from an antique land,\nWho said—"Two vast and trunkless legs of stone\n';
    const files = [
      { path: 'photos/harbour.raw', file: new Blob([big]) },
      { path: 'texts/ozymandias.txt', file: new Blob([poem]) },
      { path: 'texts/notes.md', file: new Blob(['# notes\n- replicate everything\n']) },
      { path: 'todo.txt', file: new Blob(['migrate threads\nfork on wait\n']) },
    ];
    await (globalThis as unknown as { lshapes: { kernel: { files: { ingest(d: string, f: unknown[]): Promise<unknown> } } } }).lshapes.kernel.files.ingest('root', files);
  });
  await a.page.waitForFunction(() => document.querySelectorAll('table[aria-label="Peers"] tbody tr').length === 3, undefined, { timeout: 30_000 });
  const type = async (line: string) => {
    await a.page.getByLabel('Terminal input').focus();
    await a.page.keyboard.type(line);
    await a.page.keyboard.press('Enter');
  };
  await type('run primes 3000000 3');
  await a.page.waitForFunction(() => document.querySelector('.xterm-rows')?.textContent?.includes('exited with code'), undefined, { timeout: 90_000 });
  await c.page.evaluate((on) => (globalThis as unknown as { lshapes: { shell: { start(n: string, a: string[], o: object): Promise<unknown> } } }).lshapes.shell.start('counter', [], { on }), b.id);
  await type('ls');
  await type('run wc /cluster/texts/ozymandias.txt');
  await a.page.waitForFunction(() => (document.querySelector('.xterm-rows')?.textContent?.match(/exited with code/g)?.length ?? 0) >= 2, undefined, { timeout: 60_000 });
  await type('ps');
  await a.page.waitForTimeout(2500);
  await a.page.screenshot({ path: 'docs/screenshot.png' });
  console.log('wrote docs/screenshot.png');
} finally {
  await l.close();
}
