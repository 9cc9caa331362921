// Processes across real tabs: the terminal starts programs, the Scheduler places them on other
// tabs, their output streams back, and a process on one tab can be killed from another.
import type { Page } from '@playwright/test';
import { expectOnScreen, openCluster as cluster, openTab, typeCommand as type } from './helpers.ts';
import { expect, test } from './fixtures.ts';

/** Rows of the processes panel: pid → state and peer. */
async function processRows(page: Page): Promise<{ pid: string; state: string; text: string }[]> {
  return page.locator('[data-pid]').evaluateAll((rows) =>
    rows.map((r) => ({ pid: r.getAttribute('data-pid') ?? '', state: r.getAttribute('data-state') ?? '', text: (r as HTMLElement).innerText })),
  );
}


test('the prime counter started in tab A runs its parts on tabs B, C and D and prints the total in A', async ({ device }) => {
  const { pages, ids } = await cluster(device, 4);
  const [a] = pages;
  await type(a!, 'run primes 3000000 4');
  const text = await expectOnScreen(a!, /primes below 3000000: 216816/, 90_000);
  // Every part says where it ran: A computed one part itself, and each other tab got one child.
  const where = [...text.matchAll(/part \d+\.\.\d+ on ([0-9a-f]{8})/g)].map((m) => m[1]);
  expect(where.sort()).toEqual(ids.map((id) => id.slice(0, 8)).sort());
  await expectOnScreen(a!, /exited with code 0/);
});

test('a program placed on another tab streams its output back; a third tab kills it', async ({ device }) => {
  const { pages, ids } = await cluster(device, 3);
  const [a, b, c] = pages as [Page, Page, Page];
  await type(a, `run counter --on ${ids[1]!.slice(0, 8)}`);
  await expectOnScreen(a, /tick 2 /, 60_000);

  // Every tab's processes panel lists it, running on B.
  let pid = '';
  await expect
    .poll(async () => {
      const row = (await processRows(c)).find((r) => r.text.includes('counter') && r.state !== 'EXITED');
      pid = row?.pid ?? '';
      return row?.text ?? '';
    })
    .toContain(ids[1]!.slice(0, 8));
  expect((await processRows(b)).map((r) => r.pid)).toContain(pid);

  await type(c, `kill ${pid}`);
  await expectOnScreen(a, new RegExp(`pid ${pid.replace('.', '\\.')} exited with code 137`));
  await expect.poll(async () => (await processRows(b)).find((r) => r.pid === pid)?.state).toBe('EXITED');
});

test('a broken program ends with a clear message and a non-zero status; the tab runs the next one', async ({ device }) => {
  const { pages } = await cluster(device, 1);
  const [a] = pages as [Page];
  await type(a, 'run nosuchprogram');
  await expectOnScreen(a, /no such program: nosuchprogram/);
  await type(a, 'run trap');
  await expectOnScreen(a, /unreachable[\s\S]*exited with code 134/);
  // An endless loop is preempted: Ctrl-C reaches it and ends it.
  await type(a, 'run busy');
  await expect.poll(async () => (await processRows(a)).some((r) => r.text.includes('busy') && r.state === 'RUNNING')).toBe(true);
  await a.keyboard.press('Control+C');
  await expectOnScreen(a, /exited with code 137/);
  await type(a, 'run hello world');
  await expectOnScreen(a, /hello, world\narg 1: world\n\[pid \S+ exited with code 0\]/);
});

test('a program on another tab reads its stdin from the terminal that started it; ping and pong play across tabs', async ({ device }) => {
  const { pages, ids } = await cluster(device, 2);
  const [a] = pages as [Page];
  const b8 = ids[1]!.slice(0, 8);
  await type(a, `run wc --on ${b8}`);
  // WAITING: loaded (so the terminal has handed it the keyboard) and blocked reading stdin.
  await expect.poll(async () => (await processRows(a)).some((r) => r.text.includes('wc') && r.state === 'WAITING'), { timeout: 60_000 }).toBe(true);
  await type(a, 'one two three');
  await a.keyboard.press('Control+D');
  await expectOnScreen(a, /\b1\s+3\s+14\b/);
  await expectOnScreen(a, /exited with code 0/);

  await type(a, `run ping 3 --on ${b8}`);
  await expectOnScreen(a, /pong 3\n[\s\S]*pong exited with 0/);
});

type Shell = { start(n: string): Promise<{ pid: string }>; ps(): Promise<{ pid: string; cpuMs: number; state: string }[]>; kill(pid: string): Promise<void> };

test('one execution worker time-slices two endless loops: both make progress', async ({ device }) => {
  const a = await device();
  await openTab(a, '/?workers=1');
  const [p1, p2] = await a.evaluate(async () => {
    const s = (globalThis as unknown as { lshapes: { shell: Shell } }).lshapes.shell;
    return [(await s.start('busy')).pid, (await s.start('busy')).pid];
  });
  const cpu = () =>
    a.evaluate(async (pids) => {
      const rows = await (globalThis as unknown as { lshapes: { shell: Shell } }).lshapes.shell.ps();
      return pids.map((pid) => rows.find((r) => r.pid === pid)?.cpuMs ?? 0);
    }, [p1, p2]);
  // Both get CPU time, again and again: neither starves the other.
  await expect.poll(async () => (await cpu()).every((ms) => ms > 500), { timeout: 30_000 }).toBe(true);
  const before = await cpu();
  await expect.poll(async () => (await cpu()).every((ms, i) => ms > before[i]! + 500), { timeout: 30_000 }).toBe(true);
  await a.evaluate(async (pids) => {
    const s = (globalThis as unknown as { lshapes: { shell: Shell } }).lshapes.shell;
    for (const pid of pids) await s.kill(pid);
  }, [p1, p2]);
});
