// Fuzzing what arrives from the network and from disk: no input makes a parser throw, and
// nothing malformed gets applied.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { parseLog } from '../../host/node/store-disk.ts';
import { FsModel } from './model.ts';
import { PeerMessageSchema } from './protocol.ts';
import { ROOT, type FsOp } from './types.ts';

const ORIGIN = `${'a'.repeat(32)}~00000001`;
const valid: FsOp = { origin: ORIGIN, seq: 1, time: [1, ORIGIN], wall: 0, body: { t: 'move', child: `${ORIGIN}:1`, parent: ROOT, meta: { name: 'x', kind: 'file' } } };

/** A valid op with one field replaced by something arbitrary (deep paths included). */
const mutatedOp = fc
  .tuple(fc.constantFrom('origin', 'seq', 'time', 'wall', 'body', 'body.t', 'body.child', 'body.parent', 'body.meta', 'body.meta.name', 'body.meta.kind'), fc.anything())
  .map(([path, value]) => {
    const op = structuredClone(valid) as unknown as Record<string, unknown>;
    const keys = path.split('.');
    let at = op;
    for (const k of keys.slice(0, -1)) at = at[k] as Record<string, unknown>;
    at[keys.at(-1)!] = value;
    return op;
  });

describe('fuzz', () => {
  test('peer message schema: never throws on anything, accepts only well-formed messages', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.record({ kind: fc.constantFrom('vv', 'ops', 'have', 'get', 'block', 'nohave'), ops: fc.array(mutatedOp, { maxLength: 3 }), hashes: fc.anything(), vv: fc.anything() })), (msg) => {
        const r = PeerMessageSchema.safeParse(msg);
        if (!r.success || r.data.kind !== 'ops') return;
        // Independent checks of what an accepted op must be.
        const id = /^(root|trash|[0-9a-f]{32}~[0-9a-f]{8}:\d+)$/;
        for (const op of r.data.ops) {
          expect(op.time[1]).toBe(op.origin);
          expect(Number.isSafeInteger(op.seq) && op.seq >= 1).toBe(true);
          if (op.body.t === 'move') {
            expect(id.test(op.body.child) && id.test(op.body.parent)).toBe(true);
            expect(['dir', 'file']).toContain(op.body.meta.kind);
            expect(op.body.meta.name.length > 0 && !op.body.meta.name.includes('/')).toBe(true);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  // The wire schema (stricter: ids must be op ids) guards the network; the model must still
  // never throw and never let a malformed op break its view.
  test('model: mutated ops are rejected or applied, never thrown; the view stays consistent', () => {
    fc.assert(
      fc.property(fc.array(mutatedOp, { maxLength: 5 }), (ops) => {
        const m = new FsModel(`${'b'.repeat(32)}~00000002`);
        m.receive(ops as unknown as FsOp[]);
        // The view stays consistent: every entry's parent is listed or fixed.
        const ids = new Set(m.entries().map((e) => e.id));
        for (const e of m.entries()) {
          expect(e.parent === 'root' || e.parent === 'trash' || ids.has(e.parent)).toBe(true);
          expect(e.name.length > 0 && !e.name.includes('/') && e.name !== '.' && e.name !== '..').toBe(true);
        }
      }),
      { numRuns: 1000 },
    );
  });

  test('disk op log: random bytes never throw, and what loads is within the bytes given', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        const r = parseLog(Buffer.from(bytes));
        expect(r.validBytes).toBeLessThanOrEqual(bytes.length);
        for (const op of r.ops) expect(typeof op).toBe('object');
      }),
      { numRuns: 2000 },
    );
  });
});
