// Moving processes between peers from the panels: drag a process row onto a peer (or pick one in
// its "Move to…" select), "Move my processes away", and the drain as the tab closes. The pure
// parts (what may move where, the notices, the drag data, the close guard) are here and tested
// under Node; useMoves holds the state the panels share (what is moving, the last notices).
import { useCallback, useEffect, useRef, useState } from 'react';
import type { PeerId } from '../kernel/types.ts';
import type { Pid, ProcessInfo, SpeculationStats } from '../servers/scheduler/client.ts';
import type { PeerView } from '../servers/synchronizer/protocol.ts';
import type { ShellApi } from '../host/browser/shell-api.ts';
import { shortId } from './format.ts';
import { formatMoved } from './terminal/commands.ts';

/** The drag data type of a process row: its pid. */
export const PID_MIME = 'application/x-lshapes-pid';

/** How many notices the panels keep. */
export const MAX_MOVE_NOTICES = 4;

export interface MoveNotice {
  /** Increasing: the React key. */
  seq: number;
  /** What it is about: one process's move, or the whole tab's drain. */
  kind: 'migrate' | 'drain';
  level: 'info' | 'error';
  text: string;
}

/** What the panels need to offer moves. Absent when the api cannot migrate. */
export interface Moves {
  /** Processes being moved now, and where to: they show MIGRATING until the answer. */
  moving: ReadonlyMap<Pid, PeerId>;
  /** Newest last, at most MAX_MOVE_NOTICES. */
  notices: readonly MoveNotice[];
  migrate(pid: Pid, to: PeerId): void;
  /** "Move my processes away"; absent when the api cannot drain. */
  drain?: () => void;
  /** A drain is under way. */
  draining: boolean;
}

/** A process can be moved while it lives and is not being moved already. */
export function canMove(p: Pick<ProcessInfo, 'state'>): boolean {
  return p.state !== 'EXITED' && p.state !== 'MIGRATING';
}

/** Peers a process may move to: this tab and the peers it has a direct link to, but not where it runs. */
export function moveTargets(peers: readonly PeerView[] | undefined, p: Pick<ProcessInfo, 'peer'>): PeerView[] {
  return (peers ?? []).filter((v) => (v.state === 'self' || v.state === 'connected') && v.id !== p.peer);
}

/** The notice for a migrate's outcome. */
export function migrateNotice(pid: Pid, to: PeerId, outcome: { ok: true; peer: PeerId; freezeMs: number } | { ok: false; error: unknown }): Omit<MoveNotice, 'seq'> {
  if (outcome.ok) return { kind: 'migrate', level: 'info', text: formatMoved(pid, outcome) };
  const why = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
  return { kind: 'migrate', level: 'error', text: `Moving ${pid} to ${shortId(to)} failed: ${why}` };
}

const processes = (n: number) => (n === 1 ? '1 process' : `${n} processes`);

/** The notice for a drain's outcome. */
export function drainNotice(outcome: { ok: true; moved: number; left: number } | { ok: false; error: unknown }): Omit<MoveNotice, 'seq'> {
  if (!outcome.ok) return { kind: 'drain', level: 'error', text: `Moving the processes away failed: ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)}` };
  const { moved, left } = outcome;
  if (moved === 0 && left === 0) return { kind: 'drain', level: 'info', text: 'No process runs in this tab.' };
  const text = `Moved ${processes(moved)} away` + (left > 0 ? `; ${processes(left)} could not move and still run here.` : '.');
  return { kind: 'drain', level: left > 0 ? 'error' : 'info', text };
}

/** Fork On Wait counters summed over rows (undefined when none of them speculated). */
export function sumSpeculation(rows: readonly Pick<ProcessInfo, 'speculation'>[]): SpeculationStats | undefined {
  let sum: SpeculationStats | undefined;
  for (const r of rows) {
    const s = r.speculation;
    if (!s) continue;
    sum ??= { depth: 0, predictions: 0, hits: 0, rollbacks: 0, savedMs: 0 };
    sum.depth += s.depth;
    sum.predictions += s.predictions;
    sum.hits += s.hits;
    sum.rollbacks += s.rollbacks;
    sum.savedMs += s.savedMs;
  }
  return sum;
}

/** "9 predictions · 5 hits · 1 rollback · 40 ms saved" (and "· 3 outstanding" while running ahead). */
export function describeSpeculation(s: SpeculationStats): string {
  const n = (k: number, one: string, many = `${one}s`) => `${k} ${k === 1 ? one : many}`;
  const parts = [n(s.predictions, 'prediction'), n(s.hits, 'hit'), n(s.rollbacks, 'rollback'), `${Math.round(s.savedMs)} ms saved`];
  if (s.depth > 0) parts.push(`${s.depth} outstanding`);
  return parts.join(' · ');
}

/** Whether this peer runs live processes (closing it should move them). */
export function hostsLiveProcesses(rows: readonly ProcessInfo[] | undefined, self: PeerId): boolean {
  return (rows ?? []).some((r) => r.peer === self && r.state !== 'EXITED');
}

// ---- drag and drop ----

/** The parts of a DataTransfer the drag handlers touch. */
export interface DataTransferLike {
  types: readonly string[];
  getData(type: string): string;
  setData(type: string, value: string): void;
  effectAllowed: string;
  dropEffect: string;
}

export interface DragEventLike {
  dataTransfer: DataTransferLike | null;
  preventDefault(): void;
  currentTarget: { classList?: { add(c: string): void; remove(c: string): void } } | null;
}

/** Starts dragging a process row: its pid travels (as text too, for other drop targets). */
export function startDrag(e: DragEventLike, pid: Pid): void {
  if (!e.dataTransfer) return;
  e.dataTransfer.setData(PID_MIME, pid);
  e.dataTransfer.setData('text/plain', pid);
  e.dataTransfer.effectAllowed = 'move';
}

/** Handlers that make an element a drop target for process rows: the pid moves to `peer`. */
export function peerDropHandlers(peer: PeerId, migrate: (pid: Pid, to: PeerId) => void) {
  const mark = (e: DragEventLike, on: boolean) => {
    const cl = e.currentTarget?.classList;
    if (cl) (on ? cl.add : cl.remove).call(cl, 'drop-over');
  };
  const isProcess = (e: DragEventLike) => e.dataTransfer?.types.includes(PID_MIME) === true;
  return {
    onDragOver(e: DragEventLike) {
      if (!isProcess(e)) return;
      e.preventDefault(); // allows the drop
      e.dataTransfer!.dropEffect = 'move';
      mark(e, true);
    },
    onDragLeave(e: DragEventLike) {
      mark(e, false);
    },
    onDrop(e: DragEventLike) {
      mark(e, false);
      const pid = isProcess(e) ? e.dataTransfer!.getData(PID_MIME) : '';
      if (!pid) return;
      e.preventDefault();
      migrate(pid, peer);
    },
  };
}

// ---- closing the tab ----

export interface BeforeUnloadLike {
  preventDefault(): void;
  returnValue: unknown;
}

export interface UnloadTarget {
  addEventListener(type: 'beforeunload', fn: (e: BeforeUnloadLike) => void): void;
  removeEventListener(type: 'beforeunload', fn: (e: BeforeUnloadLike) => void): void;
}

/**
 * Closing a tab that runs processes emigrates them: on beforeunload the kernel is asked to drain
 * (fire and forget) and the browser asks the user to confirm, so they can stay while the
 * processes move. Returns the uninstaller.
 */
export function installDrainOnClose(target: UnloadTarget, self: PeerId, latest: () => readonly ProcessInfo[] | undefined, drain: () => Promise<unknown>): () => void {
  const onBeforeUnload = (e: BeforeUnloadLike) => {
    const rows = latest();
    if (!hostsLiveProcesses(rows, self)) return;
    drain().catch(() => {});
    e.preventDefault();
    // Older Chromium and Safari only ask when returnValue is set (the text itself is not shown).
    e.returnValue = `${processes(rows!.filter((r) => r.peer === self && r.state !== 'EXITED').length)} still run in this tab; they are being moved to other peers`;
  };
  target.addEventListener('beforeunload', onBeforeUnload);
  return () => target.removeEventListener('beforeunload', onBeforeUnload);
}

// ---- the shared state ----

/** The panels' moves over `api`; undefined when the api cannot migrate. */
export function useMoves(api: ShellApi): Moves | undefined {
  const [moving, setMoving] = useState<ReadonlyMap<Pid, PeerId>>(new Map());
  const [notices, setNotices] = useState<readonly MoveNotice[]>([]);
  const [draining, setDraining] = useState(false);
  const seq = useRef(0);
  /** Pids with a migrate request out: a second drag of the same process is ignored. */
  const inFlight = useRef(new Set<Pid>());
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  const notify = useCallback((n: Omit<MoveNotice, 'seq'>) => {
    if (mounted.current) setNotices((prev) => [...prev, { ...n, seq: seq.current++ }].slice(-MAX_MOVE_NOTICES));
  }, []);

  const migrate = useCallback(
    (pid: Pid, to: PeerId) => {
      const call = api.migrate;
      if (!call || inFlight.current.has(pid)) return;
      inFlight.current.add(pid);
      setMoving((prev) => (prev.has(pid) ? prev : new Map(prev).set(pid, to)));
      call.call(api, pid, to).then(
        (m) => notify(migrateNotice(pid, to, { ok: true, ...m })),
        (error: unknown) => notify(migrateNotice(pid, to, { ok: false, error })),
      ).finally(() => {
        inFlight.current.delete(pid);
        if (!mounted.current) return;
        setMoving((prev) => {
          const next = new Map(prev);
          next.delete(pid);
          return next;
        });
      });
    },
    [api, notify],
  );

  const drain = useCallback(() => {
    const call = api.drain;
    if (!call) return;
    setDraining(true);
    call.call(api).then(
      (d) => notify(drainNotice({ ok: true, ...d })),
      (error: unknown) => notify(drainNotice({ ok: false, error })),
    ).finally(() => {
      if (mounted.current) setDraining(false);
    });
  }, [api, notify]);

  if (!api.migrate) return undefined;
  return { moving, notices, migrate, draining, ...(api.drain ? { drain } : {}) };
}
