import { describe, expect, it } from 'vitest';
import type { KernelEvent } from '../kernel/types.ts';
import type { PeerView, ViewMessage } from '../servers/synchronizer/protocol.ts';
import {
  describeEvent,
  describeViewDiff,
  diffViews,
  formatClock,
  formatLoad,
  formatRtt,
  formatUptime,
  shortId,
  sortPeers,
} from './format.ts';
import * as formatters from './format.ts';

const A = '3fa2c1d0' + 'a'.repeat(24);
const B = '0b1c2d3e' + 'b'.repeat(24);
const C = 'ffee0011' + 'c'.repeat(24);
const D = '77777777' + 'd'.repeat(24);

function peer(id: string, over: Partial<PeerView> = {}): PeerView {
  return { id, kind: 'browser', capacity: 8, load: 0, uptimeMs: 1000, version: '0.1.0', state: 'connected', rttMs: 1.25, ...over };
}

function view(self: string, peers: PeerView[]): ViewMessage {
  return { kind: 'view', self, peers };
}

describe('shortId', () => {
  it('keeps the first 8 hex chars', () => {
    expect(shortId(A)).toBe('3fa2c1d0');
    expect(shortId(A)).toHaveLength(8);
  });
});

describe('formatUptime', () => {
  it('shows seconds under a minute, rounding down', () => {
    expect(formatUptime(0)).toBe('0 s');
    expect(formatUptime(999)).toBe('0 s');
    expect(formatUptime(12_000)).toBe('12 s');
    expect(formatUptime(59_999)).toBe('59 s');
  });
  it('shows minutes under an hour', () => {
    expect(formatUptime(60_000)).toBe('1 min');
    expect(formatUptime(3 * 60_000 + 59_000)).toBe('3 min');
    expect(formatUptime(59 * 60_000)).toBe('59 min');
  });
  it('shows hours and minutes under a day, days and hours beyond', () => {
    expect(formatUptime(3_600_000)).toBe('1 h');
    expect(formatUptime(2 * 3_600_000 + 5 * 60_000)).toBe('2 h 5 min');
    expect(formatUptime(24 * 3_600_000)).toBe('1 d');
    expect(formatUptime(27 * 3_600_000 + 10 * 60_000)).toBe('1 d 3 h');
  });
  it('shows a dash for nonsense', () => {
    expect(formatUptime(-1)).toBe('—');
    expect(formatUptime(Number.NaN)).toBe('—');
  });
});

describe('formatRtt', () => {
  it('shows milliseconds with one decimal', () => {
    expect(formatRtt(12.34, 'connected')).toBe('12.3 ms');
    expect(formatRtt(0.06, 'connected')).toBe('0.1 ms');
    expect(formatRtt(3, 'connected')).toBe('3.0 ms');
  });
  it('shows a dash for this tab and for unknown round trips', () => {
    expect(formatRtt(0, 'self')).toBe('—');
    expect(formatRtt(undefined, 'self')).toBe('—');
    expect(formatRtt(undefined, 'gossip')).toBe('—');
    expect(formatRtt(undefined, 'connected')).toBe('—');
    expect(formatRtt(Number.NaN, 'connected')).toBe('—');
  });
  it('still shows a measured round trip for a gossip-only peer', () => {
    expect(formatRtt(7.77, 'gossip')).toBe('7.8 ms');
  });
});

describe('formatLoad', () => {
  it('rounds to two decimals and drops trailing zeros', () => {
    expect(formatLoad(0)).toBe('0');
    expect(formatLoad(1.5)).toBe('1.5');
    expect(formatLoad(1 / 3)).toBe('0.33');
    expect(formatLoad(Number.POSITIVE_INFINITY)).toBe('—');
  });
});

describe('formatClock', () => {
  it('formats local time as zero-padded HH:MM:SS', () => {
    expect(formatClock(new Date(2024, 0, 2, 3, 4, 5, 678).getTime())).toBe('03:04:05');
    expect(formatClock(new Date(2024, 0, 2, 23, 59, 9).getTime())).toBe('23:59:09');
  });
});

describe('describeEvent', () => {
  const cases: [KernelEvent, string, string][] = [
    [{ type: 'link.up', peer: A }, 'link up with 3fa2c1d0, admitting…', 'info'],
    [{ type: 'link.admitted', peer: A, kind: 'browser' }, 'peer 3fa2c1d0 (browser) admitted', 'ok'],
    [{ type: 'link.admitted', peer: B, kind: 'node' }, 'peer 0b1c2d3e (node) admitted', 'ok'],
    [{ type: 'link.down', peer: A, reason: 'ice failed' }, 'link to 3fa2c1d0 down: ice failed', 'warn'],
    [{ type: 'link.refused', peer: A, reason: 'bad signature' }, 'refused 3fa2c1d0: bad signature', 'warn'],
    [{ type: 'frame.bad', peer: C, reason: 'truncated header' }, 'bad frame from ffee0011: truncated header', 'error'],
    [
      { type: 'message.undeliverable', to: { peer: D, port: 'proc.42' }, reason: 'no such port' },
      'undeliverable to 77777777:proc.42: no such port',
      'warn',
    ],
    [{ type: 'log', level: 'info', source: 'synchronizer', text: 'view has 4 peers' }, 'synchronizer: view has 4 peers', 'info'],
    [{ type: 'log', level: 'warn', source: 'kernel', text: 'slow link' }, 'kernel: slow link', 'warn'],
    [{ type: 'log', level: 'error', source: 'driver', text: 'boom' }, 'driver: boom', 'error'],
  ];
  it.each(cases)('%j', (event, text, severity) => {
    expect(describeEvent(event)).toEqual({ text, severity });
  });
  it('covers every KernelEvent type', () => {
    const types = new Set(cases.map(([e]) => e.type));
    expect([...types].sort()).toEqual(
      ['frame.bad', 'link.admitted', 'link.down', 'link.refused', 'link.up', 'log', 'message.undeliverable'].sort(),
    );
  });
});

describe('diffViews', () => {
  it('reports nothing for the first view', () => {
    expect(diffViews(undefined, view(A, [peer(A, { state: 'self' }), peer(B)]))).toEqual({ joined: [], left: [] });
  });
  it('finds joined and departed peers by id', () => {
    const prev = view(A, [peer(A, { state: 'self' }), peer(B), peer(C)]);
    const next = view(A, [peer(A, { state: 'self' }), peer(C, { load: 3 }), peer(D, { kind: 'node' })]);
    const diff = diffViews(prev, next);
    expect(diff.joined.map((p) => p.id)).toEqual([D]);
    expect(diff.left.map((p) => p.id)).toEqual([B]);
  });
  it('ignores changes to peers that stay', () => {
    const prev = view(A, [peer(A, { state: 'self' }), peer(B, { state: 'gossip', rttMs: undefined })]);
    const next = view(A, [peer(B, { state: 'connected', rttMs: 4, uptimeMs: 9000 }), peer(A, { state: 'self' })]);
    expect(diffViews(prev, next)).toEqual({ joined: [], left: [] });
  });
  it('turns into joined and left lines', () => {
    const prev = view(A, [peer(A, { state: 'self' }), peer(B, { kind: 'sim' })]);
    const next = view(A, [peer(A, { state: 'self' }), peer(D, { kind: 'node' })]);
    expect(describeViewDiff(diffViews(prev, next))).toEqual([
      { text: 'peer 77777777 (node) joined', severity: 'ok', source: 'view.joined' },
      { text: 'peer 0b1c2d3e (sim) left the view', severity: 'info', source: 'view.left' },
    ]);
  });
});

describe('sortPeers', () => {
  it('puts this tab first, then connected, then gossip, by id within each, without mutating', () => {
    const input = [peer(C, { state: 'gossip' }), peer(D), peer(A, { state: 'self' }), peer(B, { state: 'gossip' })];
    expect(sortPeers(input).map((p) => p.id)).toEqual([A, D, B, C]);
    expect(input.map((p) => p.id)).toEqual([C, D, A, B]);
  });
  it('keeps one row per id, the first entry winning', () => {
    const rows = sortPeers([peer(B, { load: 1 }), peer(A, { state: 'self' }), peer(B, { load: 2 })]);
    expect(rows.map((p) => [p.id, p.load])).toEqual([[A, 0], [B, 1]]);
  });
});

describe('formatBytes / formatRate / formatPercent', () => {
  it('prints sizes in binary units with about three significant digits', () => {
    const { formatBytes } = formatters;
    expect([0, 512, 1023, 1536, 10 * 1024, 5 * 1024 * 1024, 12.34 * 1024 * 1024, 120 * 1024 ** 3].map(formatBytes)).toEqual([
      '0 B',
      '512 B',
      '1023 B',
      '1.5 KiB',
      '10.0 KiB',
      '5.0 MiB',
      '12.3 MiB',
      '120 GiB',
    ]);
    expect(formatBytes(1023.9 * 1024)).toBe('1.0 MiB'); // not "1024 KiB"
    expect(formatBytes(-1)).toBe('—');
  });

  it('prints rates in MiB/s, keeping slow ones readable', () => {
    const { formatRate } = formatters;
    expect(formatRate(3.1 * 1024 * 1024)).toBe('3.1 MiB/s');
    expect(formatRate(50 * 1024)).toBe('0.05 MiB/s');
    expect(formatRate(0)).toBe('0.00 MiB/s');
  });

  it('prints whole percents, rounded down, 100 only when done', () => {
    const { formatPercent } = formatters;
    expect(formatPercent(999, 1000)).toBe('99%');
    expect(formatPercent(1000, 1000)).toBe('100%');
    expect(formatPercent(0, 0)).toBe('100%');
    expect(formatPercent(5, 10)).toBe('50%');
  });
});
