// Checkpoints and restart: a process's host crashes; its spawner restarts it on another peer from
// the last checkpoint in the cluster filesystem (same pid), and the terminal, dropping what it
// already has by `at`, shows exactly what an uncrashed run shows. Without a checkpoint the
// process is lost, as before; a process that ends leaves no checkpoint behind.
import { beforeAll, describe, expect, test } from 'vitest';
import { buildPrograms } from '../../kernel/wasi/test-programs.ts';
import { filesOf } from '../../host/common/boot.ts';
import { CheckpointStore } from '../dispatcher/checkpoint-store.ts';
import { BUSY_EVERY, busyLines, simCluster } from './test-cluster.ts';

beforeAll(() => buildPrograms(), 180_000);

/** Checkpoints every 300 virtual ms (the pump advances virtual time slowly while programs run). */
const OPTS = { rebalance: false, checkpointEveryMs: 300 };


describe('checkpoints', () => {
  test('the host crashes: restarted on another peer from its checkpoint, same pid; the shown output equals an uncrashed run', async () => {
    const { peers, pump, terminal, findRow, crash, settled } = await simCluster(3, { scheduler: OPTS, seed: 'ckpt' });
    const [a, b] = peers as [typeof peers[0], typeof peers[0]];
    const t = terminal(a);
    const store = new CheckpointStore(filesOf(a.kernel).fs);
    const lines = (pid: string) => t.shown(pid).split('\n').length - 1;
    const pid = await t.run('busy', [String(BUSY_EVERY)], { on: b });
    let saved: Uint8Array | undefined;
    expect(await pump(() => lines(pid) >= 3)).toBe(true);
    // (the store is polled between pumps: a load is asynchronous)
    for (let i = 0; i < 200 && !saved; i++) {
      const r = await settled(store.load(pid));
      saved = r.ok ? r.value : undefined;
      await pump(() => false, 50, 0);
    }
    expect(saved).toBeDefined();
    const beforeCrash = lines(pid);
    crash(b);
    expect(await pump(() => lines(pid) >= beforeCrash + 3, 200_000, 60_000)).toBe(true);
    const row = await findRow(t, (r) => r.pid === pid && r.state !== 'EXITED');
    expect(row?.peer).not.toBe(b.id);
    expect(row?.moves).toBe(1);
    expect(t.lost(pid)).toBeUndefined();
    expect(await t.request({ kind: 'kill', pid })).toMatchObject({ kind: 'kill.ok' });
    expect(await pump(() => !!t.exit(pid))).toBe(true);
    const shown = t.shown(pid);
    expect(shown).toBe(busyLines(lines(pid)));
    // The restart repeated what it printed after the checkpoint: the raw stream has repeats the terminal dropped.
    expect(t.raw(pid).length).toBeGreaterThan(shown.length);
  }, 180_000);

  test('a kill during the restart (the new host keeps the image, waiting for go) is not lost: it ends the process once it runs', async () => {
    const { peers, pump, terminal, crash, settled, intercept } = await simCluster(3, { scheduler: OPTS, seed: 'ckpt-kill' });
    const [a, b, c] = peers as [typeof peers[0], typeof peers[0], typeof peers[0]];
    const t = terminal(a);
    const store = new CheckpointStore(filesOf(a.kernel).fs);
    const pid = await t.run('busy', [String(BUSY_EVERY)], { on: b });
    expect(await pump(() => t.raw(pid).length > 0)).toBe(true);
    let saved: Uint8Array | undefined;
    for (let i = 0; i < 200 && !saved; i++) {
      const r = await settled(store.load(pid));
      saved = r.ok ? r.value : undefined;
      await pump(() => false, 50, 0);
    }
    expect(saved).toBeDefined();
    // Whichever peer the spawner (a) restarts it on, its go waits: the image is kept there, not running.
    const isGo = (m: { kind: string }) => m.kind === 'immigrate.go';
    const held = [intercept(a, isGo), intercept(c, isGo)];
    crash(b);
    expect(await pump(() => held.some((h) => h.caught().length > 0), 200_000, 60_000)).toBe(true);
    expect(await t.request({ kind: 'kill', pid })).toMatchObject({ kind: 'kill.ok' });
    for (const h of held) h.release();
    expect(await pump(() => !!t.exit(pid), 200_000)).toBe(true);
    expect(t.exit(pid)!.code).not.toBe(0);
    expect(t.lost(pid)).toBeUndefined();
  }, 180_000);

  test('without a checkpoint the process is lost, as before', async () => {
    const { peers, pump, terminal, crash } = await simCluster(2, { scheduler: { rebalance: false, checkpointEveryMs: 0 }, seed: 'nockpt' });
    const [a, b] = peers as [typeof peers[0], typeof peers[0]];
    const t = terminal(a);
    const pid = await t.run('busy', [String(BUSY_EVERY)], { on: b });
    expect(await pump(() => t.raw(pid).length > 0)).toBe(true);
    crash(b);
    expect(await pump(() => !!t.lost(pid), 200_000)).toBe(true);
    expect(t.lost(pid)!.message).toMatch(/went away/);
  }, 120_000);

  test('a process that ends leaves no checkpoint behind', async () => {
    const { peers, pump, terminal, settled } = await simCluster(2, { scheduler: OPTS, seed: 'ckpt-end' });
    const [a, b] = peers as [typeof peers[0], typeof peers[0]];
    const t = terminal(a);
    const store = new CheckpointStore(filesOf(a.kernel).fs);
    const pid = await t.run('busy', [String(BUSY_EVERY)], { on: b });
    expect(await pump(() => t.raw(pid).length > 0)).toBe(true); // loaded and running
    let saved: Uint8Array | undefined;
    for (let i = 0; i < 200 && !saved; i++) {
      const r = await settled(store.load(pid));
      saved = r.ok ? r.value : undefined;
      await pump(() => false, 50, 0);
    }
    expect(saved).toBeDefined();
    expect(await t.request({ kind: 'kill', pid })).toMatchObject({ kind: 'kill.ok' });
    expect(await pump(() => !!t.exit(pid))).toBe(true);
    let gone = false;
    for (let i = 0; i < 200 && !gone; i++) {
      const r = await settled(store.load(pid));
      gone = r.ok && r.value === undefined;
      await pump(() => false, 20, 0);
    }
    expect(gone).toBe(true);
  }, 120_000);
});
