// The pure parts of moving processes: notices, targets, sums, and the drain as the tab closes.
import { describe, expect, it } from 'vitest';
import type { ProcessInfo } from '../servers/scheduler/client.ts';
import type { PeerView } from '../servers/synchronizer/protocol.ts';
import { canMove, describeSpeculation, drainNotice, hostsLiveProcesses, installDrainOnClose, migrateNotice, moveTargets, sumSpeculation, type BeforeUnloadLike } from './moves.ts';

const SELF = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const NODE = 'a1f00d5e9c8b7a6958473625140f1e2d';

function row(pid: string, extra: Partial<ProcessInfo> = {}): ProcessInfo {
  return { pid, name: 'counter', args: [], peer: SELF, state: 'RUNNING', cpuMs: 0, startedAt: 1, ...extra };
}

const peer = (id: string, state: PeerView['state']): PeerView => ({ id, kind: 'node', capacity: 1, load: 0, uptimeMs: 0, version: 't', state, rttMs: undefined });

describe('moves', () => {
  it('says what a migrate did, or why it failed', () => {
    expect(migrateNotice('4f2a1c.3', NODE, { ok: true, peer: NODE, freezeMs: 11.6 })).toEqual({ kind: 'migrate', level: 'info', text: '4f2a1c.3 moved to a1f00d5e (stopped 12 ms)' });
    expect(migrateNotice('4f2a1c.3', NODE, { ok: false, error: new Error('it exited') })).toEqual({ kind: 'migrate', level: 'error', text: 'Moving 4f2a1c.3 to a1f00d5e failed: it exited' });
  });

  it('says what a drain did, and warns about processes that could not move', () => {
    expect(drainNotice({ ok: true, moved: 2, left: 0 }).text).toBe('Moved 2 processes away.');
    expect(drainNotice({ ok: true, moved: 1, left: 1 })).toEqual({ kind: 'drain', level: 'error', text: 'Moved 1 process away; 1 process could not move and still run here.' });
    expect(drainNotice({ ok: true, moved: 0, left: 0 }).text).toBe('No process runs in this tab.');
    expect(drainNotice({ ok: false, error: new Error('no other peer') }).text).toBe('Moving the processes away failed: no other peer');
  });

  it('moves live processes to this tab or linked peers other than where they run', () => {
    expect(['RUNNING', 'WAITING', 'WAIT_CONFIRM', 'READY', 'STOPPED'].every((state) => canMove({ state: state as ProcessInfo['state'] }))).toBe(true);
    expect(canMove({ state: 'EXITED' })).toBe(false);
    expect(canMove({ state: 'MIGRATING' })).toBe(false);
    const peers = [peer(SELF, 'self'), peer(NODE, 'connected'), peer('7e57', 'gossip')];
    expect(moveTargets(peers, { peer: SELF }).map((p) => p.id)).toEqual([NODE]);
    expect(moveTargets(peers, { peer: NODE }).map((p) => p.id)).toEqual([SELF]);
    expect(moveTargets(undefined, { peer: NODE })).toEqual([]);
  });

  it('sums Fork On Wait counters and describes them', () => {
    expect(sumSpeculation([row('a.1')])).toBeUndefined();
    const sum = sumSpeculation([
      row('a.1', { speculation: { depth: 1, predictions: 3, hits: 2, rollbacks: 0, savedMs: 10 } }),
      row('a.2'),
      row('a.3', { speculation: { depth: 0, predictions: 1, hits: 0, rollbacks: 1, savedMs: 0 } }),
    ]);
    expect(sum).toEqual({ depth: 1, predictions: 4, hits: 2, rollbacks: 1, savedMs: 10 });
    expect(describeSpeculation(sum!)).toBe('4 predictions · 2 hits · 1 rollback · 10 ms saved · 1 outstanding');
  });
});

describe('installDrainOnClose', () => {
  function target() {
    const fns = new Set<(e: BeforeUnloadLike) => void>();
    return {
      addEventListener: (_: 'beforeunload', fn: (e: BeforeUnloadLike) => void) => void fns.add(fn),
      removeEventListener: (_: 'beforeunload', fn: (e: BeforeUnloadLike) => void) => void fns.delete(fn),
      /** Fires beforeunload; whether the browser would ask. */
      close() {
        let prevented = false;
        const e: BeforeUnloadLike = { preventDefault: () => (prevented = true), returnValue: undefined };
        for (const f of fns) f(e);
        return { prevented, returnValue: e.returnValue };
      },
      get size() {
        return fns.size;
      },
    };
  }

  it('drains and asks only while this tab runs live processes', () => {
    const t = target();
    let rows: ProcessInfo[] | undefined;
    let drains = 0;
    const uninstall = installDrainOnClose(t, SELF, () => rows, async () => void drains++);
    // No table yet, nothing here, or only exited ones here: close silently.
    expect(t.close().prevented).toBe(false);
    rows = [row('a.1', { peer: NODE }), row('a.2', { state: 'EXITED' })];
    expect(t.close().prevented).toBe(false);
    expect(hostsLiveProcesses(rows, SELF)).toBe(false);
    expect(drains).toBe(0);
    rows = [row('a.1'), row('a.3', { state: 'WAITING' }), row('a.2', { peer: NODE })];
    const asked = t.close();
    expect(asked.prevented).toBe(true);
    expect(asked.returnValue).toBe('2 processes still run in this tab; they are being moved to other peers');
    expect(drains).toBe(1);
    uninstall();
    expect(t.size).toBe(0);
  });

  it('a failing drain does not throw out of the handler', async () => {
    const t = target();
    installDrainOnClose(t, SELF, () => [row('a.1')], () => Promise.reject(new Error('kernel gone')));
    expect(t.close().prevented).toBe(true);
    await new Promise((r) => setTimeout(r, 0));
  });
});
