// The processes panel rendered to static HTML (react-dom/server), read back with small regexes.
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { ProcessInfo } from '../servers/scheduler/client.ts';
import { ProcessesPanel, sortProcesses, stateClass } from './ProcessesPanel.tsx';

const SELF = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const NODE = 'a1f00d5e9c8b7a6958473625140f1e2d';

function row(pid: string, extra: Partial<ProcessInfo> = {}): ProcessInfo {
  return { pid, name: 'primes', args: ['2000000', '4'], peer: SELF, state: 'RUNNING', cpuMs: 400, startedAt: 100, ...extra };
}

const render = (rows: ProcessInfo[] | undefined, self: string | null = SELF) => renderToStaticMarkup(createElement(ProcessesPanel, { rows, self: self ?? undefined }));

const text = (html: string) => html.replace(/<[^>]+>/g, '').replace(/&#x27;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** Each <tr data-pid> as { pid, state, cells (text) }. */
function rowsOf(html: string) {
  return [...html.matchAll(/<tr data-pid="([^"]*)" data-state="([^"]*)"[^>]*>(.*?)<\/tr>/g)].map((m) => ({
    pid: m[1],
    state: m[2],
    cells: [...m[3]!.matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((c) => text(c[1]!)),
    html: m[0],
  }));
}

describe('ProcessesPanel', () => {
  it('is a table captioned "Processes" with one row per process: pid, command, peer, state, CPU, exit', () => {
    const html = render([
      row('a1b2c3.1', { args: ['a b'], cpuMs: 125_000 }),
      row('a1b2c3.2', { name: 'cat', args: [], peer: NODE, state: 'EXITED', exitCode: 3, cpuMs: 12_345, startedAt: 50 }),
    ]);
    expect(html).toContain('<table class="processes-table"><caption class="sr-only">Processes</caption>');
    expect(html).toContain('<h2 id="processes-heading">Processes');
    expect(html).toContain('(1 active, 1 exited)');
    expect(rowsOf(html).map((r) => [r.pid, r.state, ...r.cells])).toEqual([
      ['a1b2c3.1', 'RUNNING', 'a1b2c3.1', "primes 'a b'", 'a1b2c3d4 (this tab)', 'RUNNING', '2m05s', ''],
      ['a1b2c3.2', 'EXITED', 'a1b2c3.2', 'cat', 'a1f00d5e', 'EXITED', '12.3s', '3'],
    ]);
  });

  it('marks the state with a class per state and the exit code as good or bad', () => {
    const states = ['READY', 'RUNNING', 'WAITING', 'WAIT_CONFIRM', 'STOPPED', 'MIGRATING'] as const;
    const html = render([...states.map((state, i) => row(`a.${i}`, { state, startedAt: i })), row('a.9', { state: 'EXITED', exitCode: 0 })]);
    const rows = rowsOf(html);
    expect(rows.map((r) => r.state)).toEqual([...states, 'EXITED']);
    for (const r of rows) expect(r.html).toContain(`class="state ${stateClass(r.state as ProcessInfo['state'])}"`);
    expect(stateClass('WAIT_CONFIRM')).toBe('proc-state-wait-confirm');
    expect(rows.at(-1)!.html).toContain('<span class="exit-ok">0</span>');
    expect(render([row('a.1', { state: 'EXITED', exitCode: 137 })])).toContain('<span class="exit-bad">137</span>');
  });

  it('says "this tab" only for processes on this peer, and shows the parent of a child', () => {
    const html = render([row('a.1'), row('a.2', { peer: NODE, parent: 'a.1', startedAt: 200 })]);
    const [mine, child] = rowsOf(html);
    expect(mine!.html).toContain('proc-here');
    expect(child!.html).not.toContain('this tab');
    expect(child!.cells[1]).toBe('primes 2000000 4 ← a.1');
    expect(rowsOf(render([row('a.1')], null))[0]!.html).not.toContain('this tab');
  });

  it('waits for the first table, and says how to start a process when there is none', () => {
    expect(render(undefined)).toContain('Waiting for the process table');
    expect(render(undefined)).not.toContain('<table');
    const empty = render([]);
    expect(empty).toContain('No processes.');
    expect(empty).toContain('(0 active)');
  });
});

describe('sortProcesses', () => {
  it('puts live processes first by start, then exited ones newest first, one row per pid', () => {
    const rows = [
      row('x.1', { state: 'EXITED', startedAt: 1 }),
      row('x.2', { startedAt: 30 }),
      row('x.3', { state: 'EXITED', startedAt: 5 }),
      row('x.4', { state: 'WAITING', startedAt: 10 }),
      row('x.2', { startedAt: 99 }),
    ];
    expect(sortProcesses(rows).map((r) => r.pid)).toEqual(['x.4', 'x.2', 'x.3', 'x.1']);
  });
});

// ---- Fork On Wait and moves ----

import { isValidElement, type ReactElement, type ReactNode } from 'react';
import type { PeerView, ViewMessage } from '../servers/synchronizer/protocol.ts';
import type { Moves } from './moves.ts';
import { PID_MIME } from './moves.ts';
import { PeersPanel } from './PeersPanel.tsx';

const GOSSIP = '7e57ab1e000011112222333344445555';
const peer = (id: string, state: PeerView['state']): PeerView => ({ id, kind: 'browser', capacity: 2, load: 0, uptimeMs: 1000, version: 't', state, rttMs: state === 'connected' ? 2 : undefined });
const PEERS = [peer(SELF, 'self'), peer(NODE, 'connected'), peer(GOSSIP, 'gossip')];
const spec = (depth: number, predictions: number, hits: number, rollbacks: number, savedMs = 40) => ({ depth, predictions, hits, rollbacks, savedMs });

/** Moves that record what the panels asked. */
function recordingMoves(extra: Partial<Moves> = {}) {
  const calls: [string, ...string[]][] = [];
  const moves: Moves = {
    moving: new Map(),
    notices: [],
    draining: false,
    migrate: (pid, to) => void calls.push(['migrate', pid, to]),
    drain: () => void calls.push(['drain']),
    ...extra,
  };
  return { moves, calls };
}

/** Every host element of a tree, expanding (hookless) function components by calling them. */
function elements(node: ReactNode): ReactElement<Record<string, any>>[] {
  if (Array.isArray(node)) return node.flatMap(elements);
  if (!isValidElement(node)) return [];
  const el = node as ReactElement<Record<string, any>>;
  if (typeof el.type === 'function') return elements((el.type as (p: unknown) => ReactNode)(el.props));
  if (typeof el.type === 'symbol') return elements(el.props.children as ReactNode); // fragments
  return [el, ...elements(el.props.children as ReactNode)];
}

const one = (tree: ReactNode, pred: (e: ReactElement<Record<string, any>>) => boolean, what: string) => {
  const found = elements(tree).filter(pred);
  expect(found, what).toHaveLength(1);
  return found[0]!;
};

/** A DataTransfer as the browser hands it to drag handlers. */
function dataTransfer() {
  const data = new Map<string, string>();
  return {
    get types() {
      return [...data.keys()];
    },
    getData: (t: string) => data.get(t) ?? '',
    setData: (t: string, v: string) => void data.set(t, v),
    effectAllowed: 'all',
    dropEffect: 'none',
  };
}

function dragEvent(dt: ReturnType<typeof dataTransfer>) {
  const classes = new Set<string>();
  let prevented = false;
  return {
    event: { dataTransfer: dt, preventDefault: () => (prevented = true), currentTarget: { classList: { add: (c: string) => classes.add(c), remove: (c: string) => classes.delete(c) } } },
    classes,
    prevented: () => prevented,
  };
}

describe('ProcessesPanel: Fork On Wait', () => {
  it('shows a process with outstanding speculations as WAIT_CONFIRM with a twin sub-row, and its counters', () => {
    const html = render([
      row('a.1', { state: 'RUNNING', speculation: spec(3, 9, 5, 1), startedAt: 1 }),
      row('a.2', { state: 'WAITING', speculation: spec(0, 2, 2, 0, 8), startedAt: 2 }),
      row('a.3', { startedAt: 3 }),
    ]);
    const rows = rowsOf(html);
    expect(rows.map((r) => [r.pid, r.state, r.cells[5]])).toEqual([
      ['a.1', 'WAIT_CONFIRM', '5/9 ↺1'],
      ['a.2', 'WAITING', '2/2'],
      ['a.3', 'RUNNING', ''],
    ]);
    expect(html).toContain('<th scope="col" class="num" title="Fork On Wait: confirmed predictions / predictions, ↺ rollbacks">Forks</th>');
    expect(rows[0]!.html).toContain('title="9 predictions · 5 hits · 1 rollback · 40 ms saved · 3 outstanding"');
    // The twin sits right under its process, as its own row without a pid (not a process of its own).
    const twins = [...html.matchAll(/<tr class="proc-twin" data-twin-of="([^"]*)">(.*?)<\/tr>/g)];
    expect(twins.map((m) => [m[1], text(m[2]!)])).toEqual([['a.1', '↳ twin · STOPPED ×3']]);
    expect(html.indexOf('data-twin-of="a.1"')).toBeGreaterThan(html.indexOf('data-pid="a.1"'));
    expect(html.indexOf('data-twin-of="a.1"')).toBeLessThan(html.indexOf('data-pid="a.2"'));
    // It spans the whole table: an empty pid cell, then the 6 other columns.
    expect(twins[0]![0]).toContain('<td></td><td colSpan="6"');
  });

  it('has no Forks column and no twins when nothing speculated, and shows how often a process moved', () => {
    const html = render([row('a.1', { moves: 2 })]);
    expect(html).not.toContain('Forks');
    expect(html).not.toContain('proc-twin');
    expect(rowsOf(html)[0]!.cells[2]).toBe('a1b2c3d4 (this tab) ↔2');
    expect(html).toContain('title="moved 2 times"');
  });
});

describe('ProcessesPanel: moving processes', () => {
  const ROWS = [row('a.1', { startedAt: 1 }), row('a.2', { peer: NODE, startedAt: 2 }), row('a.3', { state: 'EXITED', exitCode: 0, startedAt: 3 })];
  const panel = (moves: Moves, rows = ROWS) => ProcessesPanel({ rows, self: SELF, peers: PEERS, moves });

  it('makes live rows draggable with a "Move to…" select of the peers they can go to; exited rows stay put', () => {
    const { moves } = recordingMoves();
    const html = renderToStaticMarkup(panel(moves));
    const [a1, a2, a3] = rowsOf(html);
    expect(a1!.html).toContain('draggable="true"');
    expect(a3!.html).not.toContain('draggable');
    // Not to where it runs, nor to a peer known only by gossip.
    const options = (h: string) => [...h.matchAll(/<option value="([^"]*)"[^>]*>([^<]*)<\/option>/g)].map((m) => [m[1], m[2]]);
    expect(options(a1!.html)).toEqual([['', 'Move to…'], [NODE, 'a1f00d5e']]);
    expect(options(a2!.html)).toEqual([['', 'Move to…'], [SELF, 'a1b2c3d4 (this tab)']]);
    expect(a1!.html).toContain('aria-label="Move a.1 to…"');
    expect(a3!.html).not.toContain('<select');
    // The peers a row can be dropped on, this tab included.
    expect([...html.matchAll(/data-drop-peer="([^"]*)"/g)].map((m) => m[1])).toEqual([SELF, NODE]);
  });

  it('a row dragged onto a peer chip is migrated there; the select does the same', () => {
    const { moves, calls } = recordingMoves();
    const tree = panel(moves);
    const dt = dataTransfer();
    const drag = dragEvent(dt);
    one(tree, (e) => e.type === 'tr' && e.props['data-pid'] === 'a.2', 'row a.2').props.onDragStart(drag.event);
    expect(dt.getData(PID_MIME)).toBe('a.2');
    expect(dt.effectAllowed).toBe('move');
    const chip = one(tree, (e) => e.props['data-drop-peer'] === SELF, 'the chip of this tab');
    const over = dragEvent(dt);
    chip.props.onDragOver(over.event);
    expect(over.prevented()).toBe(true); // without it the browser refuses the drop
    expect(over.classes.has('drop-over')).toBe(true);
    chip.props.onDrop(over.event);
    expect(over.classes.has('drop-over')).toBe(false);
    expect(calls).toEqual([['migrate', 'a.2', SELF]]);

    one(tree, (e) => e.type === 'select' && e.props['aria-label'] === 'Move a.1 to…', 'the select').props.onChange({ currentTarget: { value: NODE } });
    expect(calls.at(-1)).toEqual(['migrate', 'a.1', NODE]);
  });

  it('a drag of something else (files, text) is not taken by a peer', () => {
    const { moves, calls } = recordingMoves();
    const chip = one(panel(moves), (e) => e.props['data-drop-peer'] === NODE, 'the chip of the node');
    const dt = dataTransfer();
    dt.setData('Files', '');
    const over = dragEvent(dt);
    chip.props.onDragOver(over.event);
    chip.props.onDrop(over.event);
    expect(over.prevented()).toBe(false);
    expect(calls).toEqual([]);
  });

  it('shows MIGRATING and where to while a move is out, without controls; then the notices', () => {
    const { moves } = recordingMoves({
      moving: new Map([['a.1', NODE]]),
      notices: [
        { seq: 1, kind: 'migrate', level: 'info', text: 'a.9 moved to a1f00d5e (stopped 12 ms)' },
        { seq: 2, kind: 'migrate', level: 'error', text: 'Moving a.8 to a1f00d5e failed: it exited' },
      ],
    });
    const html = renderToStaticMarkup(panel(moves));
    const a1 = rowsOf(html)[0]!;
    expect([a1.state, a1.cells[2], a1.cells[3]]).toEqual(['MIGRATING', 'a1b2c3d4 (this tab) → a1f00d5e', 'MIGRATING']);
    expect(a1.html).not.toContain('draggable');
    expect(a1.html).not.toContain('<select');
    expect(html).toContain('<li class="event sev-info"><span class="sev-dot" aria-hidden="true"></span><span class="text">a.9 moved to a1f00d5e (stopped 12 ms)</span></li>');
    expect(html).toContain('<li class="event sev-error" role="alert">');
  });

  it('offers no moves without them (an api that cannot migrate)', () => {
    const html = renderToStaticMarkup(ProcessesPanel({ rows: ROWS, self: SELF, peers: PEERS }));
    expect(html).not.toContain('draggable');
    expect(html).not.toContain('<select');
    expect(html).not.toContain('data-drop-peer');
  });
});

describe('PeersPanel: counters, drops and "Move my processes away"', () => {
  const view: ViewMessage = { kind: 'view', self: SELF, peers: PEERS };
  const procs = [
    row('a.1', { speculation: spec(1, 4, 3, 1, 30) }),
    row('a.2', { speculation: spec(0, 6, 6, 0, 50), startedAt: 2 }),
    row('a.3', { peer: NODE, startedAt: 3 }),
  ];
  const peerRows = (html: string) =>
    [...html.matchAll(/<tr role="row" data-peer-id="([^"]*)"[^>]*>(.*?)<\/tr>/g)].map((m) => ({ id: m[1], html: m[0], cells: [...m[2]!.matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((c) => text(c[1]!)) }));

  it('sums each peer\'s Fork On Wait counters over its processes', () => {
    const html = renderToStaticMarkup(PeersPanel({ view, processes: procs }));
    const rows = peerRows(html);
    expect(rows.map((r) => [r.id, r.cells[6]])).toEqual([
      [SELF, '9/10 ↺1'],
      [NODE, ''],
      [GOSSIP, ''],
    ]);
    expect(rows[0]!.html).toContain('title="10 predictions · 9 hits · 1 rollback · 80 ms saved · 1 outstanding"');
    expect(renderToStaticMarkup(PeersPanel({ view, processes: [row('a.3')] }))).not.toContain('Forks');
  });

  it('takes a dropped process row on this tab and linked peers, not on gossip ones', () => {
    const { moves, calls } = recordingMoves();
    const tree = PeersPanel({ view, processes: procs, moves });
    expect(elements(tree).filter((e) => e.props['data-drop-peer'] !== undefined).map((e) => e.props['data-drop-peer'])).toEqual([SELF, NODE]);
    const dt = dataTransfer();
    dt.setData(PID_MIME, 'a.3');
    const drop = dragEvent(dt);
    one(tree, (e) => e.props['data-drop-peer'] === SELF, 'the row of this tab').props.onDrop(drop.event);
    expect(calls).toEqual([['migrate', 'a.3', SELF]]);
  });

  it('"Move my processes away" drains this tab while it runs processes, and says what moved', () => {
    const { moves, calls } = recordingMoves({ notices: [{ seq: 3, kind: 'drain', level: 'info', text: 'Moved 2 processes away.' }] });
    const tree = PeersPanel({ view, processes: procs, moves });
    const button = one(tree, (e) => e.type === 'button', 'the button');
    expect(button.props.children).toBe('Move my processes away');
    expect(button.props.disabled).toBe(false);
    button.props.onClick();
    expect(calls).toEqual([['drain']]);
    expect(renderToStaticMarkup(tree)).toContain('<span class="drain-result sev-info" role="status">Moved 2 processes away.</span>');
    // Nothing runs here: nothing to move. While draining: "Moving…".
    const idle = one(PeersPanel({ view, processes: [row('a.3', { peer: NODE })], moves }), (e) => e.type === 'button', 'the button');
    expect(idle.props.disabled).toBe(true);
    const busy = one(PeersPanel({ view, processes: procs, moves: { ...moves, draining: true } }), (e) => e.type === 'button', 'the button');
    expect([busy.props.children, busy.props.disabled]).toEqual(['Moving…', true]);
    expect(elements(PeersPanel({ view, processes: procs, moves: { ...moves, drain: undefined } as Moves })).some((e) => e.type === 'button')).toBe(false);
  });
});
