// Where speculation outcomes go, on its own: dependents by peer and by local process, once each,
// outcomes remembered (bounded) for late deliveries, and a moved process's dependencies following it.
import { describe, expect, test } from 'vitest';
import { SpeculationRoutes } from './spec-routes.ts';

const P = 'p'.repeat(32);
const Q = 'q'.repeat(32);

describe('SpeculationRoutes', () => {
  test('an outcome goes to the peers and local processes that got dependent deliveries, once', () => {
    const r = new SpeculationRoutes();
    r.sentTo(P, ['a.1~1', 'a.1~2']);
    r.sentTo(Q, ['a.1~1']);
    r.deliveredTo('b.1', ['a.1~1']);
    expect(r.resolve('a.1~1', true)).toEqual({ peers: [P, Q], pids: ['b.1'] });
    expect(r.resolve('a.1~1', true)).toEqual({ peers: [], pids: [] }); // came back around: nobody again
    expect(r.resolve('a.1~2', false)).toEqual({ peers: [P], pids: [] });
    expect(r.resolve('a.1~3', true)).toEqual({ peers: [], pids: [] });
  });

  test('late deliveries: committed dependencies stripped, a cancelled one drops the delivery', () => {
    const r = new SpeculationRoutes();
    r.resolve('a.1~1', true);
    r.resolve('a.1~2', false);
    expect(r.filter(undefined)).toEqual({ drop: false, deps: undefined });
    expect(r.filter(['a.1~1'])).toEqual({ drop: false, deps: undefined });
    expect(r.filter(['a.1~1', 'a.1~9'])).toEqual({ drop: false, deps: ['a.1~9'] });
    expect(r.filter(['a.1~9', 'a.1~2'])).toEqual({ drop: true });
  });

  test('a process that moves takes its dependencies along, and their outcomes follow it', () => {
    const r = new SpeculationRoutes();
    r.deliveredTo('b.1', ['a.1~1', 'a.1~2']);
    r.deliveredTo('b.2', ['a.1~1']);
    expect(r.depsOf('b.1').sort()).toEqual(['a.1~1', 'a.1~2']);
    r.moved('b.1', Q);
    expect(r.depsOf('b.1')).toEqual([]);
    expect(r.resolve('a.1~1', true)).toEqual({ peers: [Q], pids: ['b.2'] });
  });

  test('bounded: the oldest speculations and outcomes are forgotten first', () => {
    const r = new SpeculationRoutes(2, 2);
    r.sentTo(P, ['x.1~1']);
    r.sentTo(P, ['x.1~2']);
    r.sentTo(P, ['x.1~1']); // used again: now the newest
    r.sentTo(P, ['x.1~3']);
    expect(r.size).toBe(2);
    expect(r.resolve('x.1~2', true).peers).toEqual([]);
    expect(r.resolve('x.1~1', true).peers).toEqual([P]);
    r.resolve('x.1~4', false);
    r.resolve('x.1~5', true);
    expect(r.outcome('x.1~2')).toBeUndefined();
    expect(r.outcome('x.1~4')).toBe(false);
  });
});
