// Migration benchmark (issue "Dispatcher and Fork On Wait"): how long a running thread stands
// still when it moves between two tabs (real WebRTC, real execution workers): `memhog KIB`
// (programs/c/memhog.c, a heap of incompressible bytes that it keeps walking and printing) is
// moved back and forth; the freeze time is what the Dispatcher reports — from the freeze request
// to the first state report of the thawed process on the other tab (snapshot, compress,
// authenticate, ship, check, decompress, instantiate, restore) — and the whole `migrate` call as
// the shell sees it. The anchor: Xen live migration's 60 ms downtime for a game server (it
// pre-copies memory while the VM runs; we stop the thread for the whole copy).
// The connection is fresh: the first hop is the first bulk transfer on it (the link's window
// is what makes that work, see src/kernel/link.ts).
// Numbers only: nothing here asserts a timing. Lost or repeated output is an error.
import type { Page } from '@playwright/test';
import { admitted, lab, median, type Lab } from './browser.ts';

const HOPS = 6;

export interface MigrationRow {
  heapKiB: number;
  freezeMs: number;
  callMs: number;
  /** Hops that succeeded. */
  hops: number;
  /** Why a hop failed (then the medians are of the hops before it). */
  error?: string;
}

type Shell = {
  start(n: string, a: string[], o: { on?: string }): Promise<{ pid: string }>;
  migrate(pid: string, to: string): Promise<{ peer: string; freezeMs: number }>;
  output(pid: string): { stdout: string; stderr: string } | undefined;
  kill(pid: string): Promise<void>;
};
type ShellGlobal = { lshapes: { shell: Shell } };

async function twoTabs(l: Lab): Promise<{ pages: Page[]; ids: string[] }> {
  const first = await l.tab('/?workers=1');
  const hash = new URL(first.page.url()).hash;
  const second = await l.tab('/?workers=1' + hash);
  const pages = [first.page, second.page];
  const ids = [first.id, second.id];
  await linked(pages, ids);
  return { pages, ids };
}

/** Both tabs have admitted links to each other: placing on the other one works. */
async function linked(pages: Page[], ids: string[]): Promise<void> {
  await admitted(pages[0]!, [ids[1]!]);
  await admitted(pages[1]!, [ids[0]!]);
}

export async function migrationBench(): Promise<MigrationRow[]> {
  const l = await lab();
  try {
    const { pages, ids } = await twoTabs(l);
    const page = pages[0]!;
    const rows: MigrationRow[] = [];
    for (const heapKiB of [900, 16 * 1024 - 200]) {
      const { pid } = await page.evaluate(({ kib, on }) => (globalThis as unknown as ShellGlobal).lshapes.shell.start('memhog', [String(kib)], { on }), { kib: heapKiB, on: ids[0]! });
      // Until it printed a few rounds: its heap is allocated and filled.
      await page.waitForFunction((p) => ((globalThis as unknown as ShellGlobal).lshapes.shell.output(p)?.stdout.split('\n').length ?? 0) > 3, pid, { timeout: 120_000 });
      const freezes: number[] = [];
      const calls: number[] = [];
      let error: string | undefined;
      for (let hop = 0; hop < HOPS && !error; hop++) {
        const to = ids[(hop + 1) % 2]!;
        const r = await page
          .evaluate(
            async ({ p, to }) => {
              const t0 = performance.now();
              const m = await (globalThis as unknown as ShellGlobal).lshapes.shell.migrate(p, to);
              return { ...m, callMs: performance.now() - t0 };
            },
            { p: pid, to },
          )
          .catch((e: Error) => {
            error = `hop ${hop + 1}: ${e.message.split('\n')[0]!.replace(/^page.evaluate: Error: /, '')}`;
            return undefined;
          });
        if (!r) break;
        if (r.peer !== to) throw new Error(`migrate answered ${r.peer}, not ${to}`);
        freezes.push(r.freezeMs);
        calls.push(r.callMs);
        // Let it run a round on its new peer before moving it again.
        const before = await page.evaluate((p) => (globalThis as unknown as ShellGlobal).lshapes.shell.output(p)!.stdout.length, pid);
        await page.waitForFunction(({ p, n }) => (globalThis as unknown as ShellGlobal).lshapes.shell.output(p)!.stdout.length > n, { p: pid, n: before }, { timeout: 60_000 });
      }
      const out = await page.evaluate((p) => (globalThis as unknown as ShellGlobal).lshapes.shell.output(p)!.stdout, pid);
      await page.evaluate((p) => (globalThis as unknown as ShellGlobal).lshapes.shell.kill(p), pid).catch(() => {});
      // Every round exactly once, in order: a lost or repeated line is a broken migration.
      const lines = out.split('\n').filter(Boolean);
      lines.forEach((line, i) => {
        if (!line.startsWith(`round ${i + 1} `)) throw new Error(`memhog output broken at line ${i + 1}: ${line}`);
      });
      rows.push({ heapKiB, freezeMs: freezes.length ? median(freezes) : NaN, callMs: calls.length ? median(calls) : NaN, hops: freezes.length, ...(error ? { error } : {}) });
    }
    return rows;
  } finally {
    await l.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.table(await migrationBench());
}
