import { describe, expect, it } from 'vitest';
import type { ShellEvent } from '../host/browser/shell-api.ts';
import type { PeerView, ViewMessage } from '../servers/synchronizer/protocol.ts';
import { MAX_EVENTS, initialShellState, reduceShell, type ShellState } from './useShell.ts';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const C = 'c'.repeat(32);

function peer(id: string, state: PeerView['state'] = 'connected'): PeerView {
  return { id, kind: 'browser', capacity: 4, load: 0, uptimeMs: 0, version: '0.1.0', state, rttMs: undefined };
}
function viewEvent(ids: string[]): ShellEvent {
  const v: ViewMessage = { kind: 'view', self: A, peers: ids.map((id) => peer(id, id === A ? 'self' : 'connected')) };
  return { type: 'view', view: v };
}
function run(events: ShellEvent[], start: ShellState = initialShellState): ShellState {
  return events.reduce((s, e, i) => reduceShell(s, e, 1000 + i), start);
}

describe('reduceShell', () => {
  it('keeps the latest view and logs nothing for the first one', () => {
    const s = run([viewEvent([A, B])]);
    expect(s.view?.peers.map((p) => p.id)).toEqual([A, B]);
    expect(s.events).toEqual([]);
  });

  it('logs joins and departures between views, newest first, stamped with now', () => {
    const s = run([viewEvent([A, B]), viewEvent([A, C])]);
    expect(s.events.map((e) => [e.source, e.text, e.at])).toEqual([
      ['view.left', 'peer bbbbbbbb (browser) left the view', 1001],
      ['view.joined', 'peer cccccccc (browser) joined', 1001],
    ]);
    expect(s.view?.peers.map((p) => p.id)).toEqual([A, C]);
  });

  it('logs kernel events with their own time and unique increasing seqs', () => {
    const s = run([
      { type: 'kernel', at: 42, event: { type: 'link.admitted', peer: B, kind: 'node' } },
      { type: 'kernel', at: 43, event: { type: 'frame.bad', peer: B, reason: 'short' } },
    ]);
    expect(s.events.map((e) => [e.seq, e.at, e.severity, e.text])).toEqual([
      [1, 43, 'error', 'bad frame from bbbbbbbb: short'],
      [0, 42, 'ok', 'peer bbbbbbbb (node) admitted'],
    ]);
  });

  it(`keeps only the last ${MAX_EVENTS} events`, () => {
    const many: ShellEvent[] = Array.from({ length: MAX_EVENTS + 20 }, (_, i) => ({
      type: 'kernel',
      at: i,
      event: { type: 'log', level: 'info', source: 't', text: String(i) },
    }));
    const s = run(many);
    expect(s.events).toHaveLength(MAX_EVENTS);
    expect(s.events[0]?.text).toBe(`t: ${MAX_EVENTS + 19}`);
    expect(s.events.at(-1)?.text).toBe('t: 20');
  });

  it('does not mutate the previous state', () => {
    const s1 = run([viewEvent([A]), { type: 'kernel', at: 1, event: { type: 'link.up', peer: B } }]);
    const snapshot = JSON.stringify(s1);
    run([viewEvent([A, B]), { type: 'kernel', at: 2, event: { type: 'link.up', peer: C } }], s1);
    expect(JSON.stringify(s1)).toBe(snapshot);
  });
});
