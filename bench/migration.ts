// Migration benchmark (issue "Dispatcher and Fork On Wait"): how long a running thread stands
// still when it moves between two tabs (real WebRTC, real execution workers): `memhog KIB`
// (programs/c/memhog.c, a heap of incompressible bytes that it keeps walking and printing) is
// moved back and forth. The Dispatcher pre-copies (emigration.ts): a checkpoint goes to the
// target while the process runs (precopyMs), then it is frozen and only the delta against that
// base travels (frozen KiB). freezeMs is the downtime the Dispatcher reports — from the freeze
// request to the first state report of the thawed process on the other tab (final image, delta,
// authenticate, ship, rebuild and check, instantiate, restore) — and callMs the whole `migrate`
// call as the shell sees it (pre-copy included). The anchor: Xen live migration's 60 ms downtime
// for a game server (it pre-copies memory while the VM runs).
// The connection is fresh: the first hop is the first bulk transfer on it (the link's window
// is what makes that work, see src/kernel/link.ts).
// Numbers only: nothing here asserts a timing. Lost or repeated output is an error.
import type { Page } from '@playwright/test';
import { admitted, lab, median, type Lab } from './browser.ts';

const HOPS = 6;

export interface MigrationRow {
  heapKiB: number;
  /** Downtime (median). */
  freezeMs: number;
  /** Downtime of the first hop (the first row's is the program's first run on the target tab). */
  firstMs: number;
  /** Pre-copy before the freeze, the process running (median). */
  precopyMs: number;
  /** Shipped while frozen (median, KiB). */
  frozenKiB: number;
  /** Where the downtime went (medians, ms; dispatcher/emigration.ts FreezePhases). */
  phases: Phases;
  callMs: number;
  /** Hops that succeeded. */
  hops: number;
  /** Why a hop failed (then the medians are of the hops before it). */
  error?: string;
}

type Phases = { freeze: number; pack: number; check: number; thaw: number };

type Shell = {
  start(n: string, a: string[], o: { on?: string }): Promise<{ pid: string }>;
  migrate(pid: string, to: string): Promise<{ peer: string; freezeMs: number; precopyMs?: number; frozenBytes?: number; phases?: Phases }>;
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
    // MIGRATION_KIB=128,900 measures other heaps (a comparison run, not the published table).
    const heaps = process.env.MIGRATION_KIB ? process.env.MIGRATION_KIB.split(',').map(Number) : [900, 16 * 1024 - 200];
    for (const heapKiB of heaps) {
      const { pid } = await page.evaluate(({ kib, on }) => (globalThis as unknown as ShellGlobal).lshapes.shell.start('memhog', [String(kib)], { on }), { kib: heapKiB, on: ids[0]! });
      // Until it printed a few rounds: its heap is allocated and filled.
      await page.waitForFunction((p) => ((globalThis as unknown as ShellGlobal).lshapes.shell.output(p)?.stdout.split('\n').length ?? 0) > 3, pid, { timeout: 120_000 });
      const freezes: number[] = [];
      const precopies: number[] = [];
      const frozenKiB: number[] = [];
      const calls: number[] = [];
      const phases: Phases[] = [];
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
        precopies.push(r.precopyMs ?? 0);
        frozenKiB.push((r.frozenBytes ?? NaN) / 1024);
        calls.push(r.callMs);
        if (r.phases) phases.push(r.phases);
        if (process.env.MIGRATION_VERBOSE) console.error(JSON.stringify({ heapKiB, hop: hop + 1, freezeMs: r.freezeMs, precopyMs: r.precopyMs, frozenBytes: r.frozenBytes, phases: r.phases }));
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
      const med = (xs: number[]) => (xs.length ? median(xs) : NaN);
      rows.push({
        heapKiB,
        freezeMs: med(freezes),
        firstMs: freezes[0] ?? NaN,
        precopyMs: med(precopies),
        frozenKiB: Math.round(med(frozenKiB)),
        callMs: med(calls),
        phases: { freeze: med(phases.map((x) => x.freeze)), pack: med(phases.map((x) => x.pack)), check: med(phases.map((x) => x.check)), thaw: med(phases.map((x) => x.thaw)) },
        hops: freezes.length,
        ...(error ? { error } : {}),
      });
    }
    return rows;
  } finally {
    await l.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await migrationBench();
  console.table(rows.map(({ phases, ...r }) => ({ ...r, ...Object.fromEntries(Object.entries(phases).map(([k, v]) => [`${k}Phase`, Math.round(v)])) })));
}
