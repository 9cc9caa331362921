// The sender-side message log's bounds and selection (message-log.ts): what a restarted receiver
// gets again is exactly what its per-sender last seq has not covered, within the age and byte bounds.
import { describe, expect, test } from 'vitest';
import { MessageLog } from './message-log.ts';
import { messageLogMs, CHECKPOINT_MS, PARENT_RESTART_GRACE_MS } from './scheduler.ts';

const P = 'aaaaaa.1';
const Q = 'bbbbbb.2';
const R = 'cccccc.3';

describe('message log', () => {
  test('sends again, per sender in seq order, only what is above the last seq seen (all of an unknown sender)', () => {
    const log = new MessageLog<string>(1000);
    log.add(P, Q, 1, 10, 'q1', 0);
    log.add(P, R, 7, 10, 'r7', 1);
    log.add(R, Q, 2, 10, 'q2 to R', 2);
    log.add(P, Q, 3, 10, 'q3', 3);
    log.add(P, R, 8, 10, 'r8', 4);
    const again = log.since(P, new Map([[Q, 1]]), 5).map((e) => e.msg);
    expect(again).toEqual(['r7', 'q3', 'r8']);
    expect(log.since(P, new Map([[Q, 3], [R, 8]]), 5)).toEqual([]);
    expect(log.since('dddddd.4', new Map(), 5)).toEqual([]);
  });

  test('entries older than the window are not sent again; an ended receiver is forgotten', () => {
    const log = new MessageLog<string>(1000);
    log.add(P, Q, 1, 10, 'old', 0);
    log.add(P, Q, 2, 10, 'new', 600);
    log.add(R, Q, 3, 10, 'for R', 700);
    expect(log.since(P, new Map(), 999).map((e) => e.msg)).toEqual(['old', 'new']);
    expect(log.since(P, new Map(), 1000).map((e) => e.msg)).toEqual(['new']);
    expect(log.size).toBe(2);
    log.drop(P);
    expect(log.since(P, new Map(), 1000)).toEqual([]);
    expect(log.since(R, new Map(), 1000).map((e) => e.msg)).toEqual(['for R']);
    expect(log.size).toBe(1);
    expect(log.since(R, new Map(), 1700)).toEqual([]);
    expect(log.size).toBe(0);
    expect(log.bytes).toBe(0);
  });

  test('over the byte bound the oldest go first', () => {
    const log = new MessageLog<string>(1_000_000, 3 * (1000 + 128));
    for (let i = 1; i <= 5; i++) log.add(P, Q, i, 1000, `m${i}`, i);
    expect(log.since(P, new Map(), 10).map((e) => e.msg)).toEqual(['m3', 'm4', 'm5']);
    expect(log.bytes).toBeLessThanOrEqual(3 * 1128);
  });

  test('many entries: dropping and ageing keep it small (the array is reclaimed)', () => {
    const log = new MessageLog<number>(100);
    for (let i = 1; i <= 10_000; i++) log.add(i % 2 ? P : R, Q, i, 0, i, i);
    log.drop(P);
    expect(log.size).toBe(50);
    expect(log.since(R, new Map([[Q, 9_990]]), 10_000).map((e) => e.msg)).toEqual([9_992, 9_994, 9_996, 9_998, 10_000]);
  });

  test('the window covers two checkpoint intervals and a restart', () => {
    expect(messageLogMs(CHECKPOINT_MS)).toBe(2 * CHECKPOINT_MS + PARENT_RESTART_GRACE_MS);
  });
});
