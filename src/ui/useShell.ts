// The shell's state: who this tab is, the latest Synchronizer view, and the event log.
import { useEffect, useReducer, useState } from 'react';
import { proxy } from 'comlink';
import type { PeerId, PeerKind } from '../kernel/types.ts';
import type { ViewMessage } from '../servers/synchronizer/protocol.ts';
import type { ProcessInfo } from '../servers/scheduler/client.ts';
import type { ShellApi, ShellEvent } from '../host/browser/shell-api.ts';
import { describeEvent, describeViewDiff, diffViews, type LogEntry } from './format.ts';

/** How many log entries the shell keeps. */
export const MAX_EVENTS = 500;

export interface ShellState {
  view: ViewMessage | undefined;
  /** Newest first, at most MAX_EVENTS. */
  events: LogEntry[];
  nextSeq: number;
}

export const initialShellState: ShellState = { view: undefined, events: [], nextSeq: 0 };

/** Folds one ShellEvent into the state. `now` stamps the lines synthesized from view changes. Pure. */
export function reduceShell(state: ShellState, e: ShellEvent, now: number): ShellState {
  let seq = state.nextSeq;
  let fresh: LogEntry[];
  let view = state.view;
  if (e.type === 'view') {
    fresh = describeViewDiff(diffViews(state.view, e.view)).map((line) => ({ ...line, seq: seq++, at: now }));
    view = e.view;
  } else {
    fresh = [{ ...describeEvent(e.event), source: e.event.type, seq: seq++, at: e.at }];
  }
  if (fresh.length === 0) return { ...state, view };
  fresh.reverse(); // newest first
  const events = fresh.concat(state.events);
  if (events.length > MAX_EVENTS) events.length = MAX_EVENTS;
  return { view, events, nextSeq: seq };
}

function reducer(state: ShellState, action: { e: ShellEvent; now: number }): ShellState {
  return reduceShell(state, action.e, action.now);
}

export interface Whoami {
  peerId: PeerId;
  kind: PeerKind;
  room: string;
}

export interface Shell extends ShellState {
  /** Undefined until whoami() answers. */
  me: Whoami | undefined;
  /** The cluster's process table; undefined until the first one (or when the api has none). */
  processes: ProcessInfo[] | undefined;
  /** Set when whoami() or subscribe() failed. */
  error: string | undefined;
}

/** Subscribes to `api` for the lifetime of the component (the api has no unsubscribe: events after unmount are dropped). */
export function useShell(api: ShellApi): Shell {
  const [state, dispatch] = useReducer(reducer, initialShellState);
  const [me, setMe] = useState<Whoami | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [processes, setProcesses] = useState<ProcessInfo[] | undefined>(undefined);

  useEffect(() => {
    let active = true;
    const fail = (err: unknown) => {
      if (active) setError(err instanceof Error ? err.message : String(err));
    };
    api.whoami().then((w) => {
      if (active) setMe(w);
    }, fail);
    // proxy(): the api may be a comlink Remote of the kernel worker; on a plain object it is a no-op marker.
    api.subscribe(proxy((e: ShellEvent) => {
      if (active) dispatch({ e, now: Date.now() });
    })).catch(fail);
    // The process table is not vital: if it cannot be watched, the panel just keeps waiting.
    api.watchProcesses?.(proxy((rows: ProcessInfo[]) => {
      if (active) setProcesses(rows);
    }))?.catch((err: unknown) => console.warn('cannot watch the processes:', err));
    return () => {
      active = false;
    };
  }, [api]);

  return { ...state, me, error, processes };
}
