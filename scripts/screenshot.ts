// Takes docs/screenshot.png: three tabs of one cluster, the prime counter run from the first
// (its parts on all three), a counter running on another tab, and the first tab's shell.
//   npx tsx scripts/screenshot.ts      (after `npm run build`)
import { lab } from '../bench/browser.ts';

const l = await lab();
try {
  const a = await l.tab('/');
  const url = await a.page.getByLabel('Cluster URL').inputValue();
  const b = await l.tab(url.replace(l.base, ''));
  const c = await l.tab(url.replace(l.base, ''));
  await a.page.setViewportSize({ width: 1440, height: 1000 });
  await a.page.waitForFunction(() => document.querySelectorAll('table[aria-label="Peers"] tbody tr').length === 3, undefined, { timeout: 30_000 });
  const type = async (line: string) => {
    await a.page.getByLabel('Terminal input').focus();
    await a.page.keyboard.type(line);
    await a.page.keyboard.press('Enter');
  };
  await type('run primes 3000000 3');
  await a.page.waitForFunction(() => document.querySelector('.xterm-rows')?.textContent?.includes('exited with code'), undefined, { timeout: 90_000 });
  await c.page.evaluate((on) => (globalThis as unknown as { lshapes: { shell: { start(n: string, a: string[], o: object): Promise<unknown> } } }).lshapes.shell.start('counter', [], { on }), b.id);
  await type('ps');
  await a.page.waitForTimeout(2500);
  await a.page.screenshot({ path: 'docs/screenshot.png' });
  console.log('wrote docs/screenshot.png');
} finally {
  await l.close();
}
