// Image deltas for pre-copy (transfer.ts makeDelta / applyDelta): a real memhog image taken as a
// checkpoint while it runs and its image at a later freeze differ in a few chunks; the delta
// rebuilds the frozen image exactly (it thaws and goes on), and is a small part of it. Bytes that
// moved (a page of memory that turned non-zero shifts the rest of the image) are found again. A
// delta of another base, a tampered, truncated or lying one is refused with its reason, and no
// input makes the parser throw anything but a DeltaError.
import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../kernel/process/image.ts';
import { InProcessExecution } from '../../kernel/process/in-process.ts';
import type { FromExecutor, ProcessSpec } from '../../kernel/process/protocol.ts';
import { PEER, sha256hex } from '../../kernel/process/test-scheduler.ts';
import { MemFs } from '../../kernel/wasi/memfs.ts';
import { buildPrograms, program } from '../../kernel/wasi/test-programs.ts';
import {
  DELTA_CHUNK_BYTES,
  DELTA_FORMAT_VERSION,
  DeltaError,
  applyDelta,
  deltaBase,
  imageKey,
  makeDelta,
  packImage,
  unpackImage,
  imageCheck,
  verifyImage,
  type DeltaBase,
  type DeltaRefusal,
  type DeltaVerify,
} from './transfer.ts';

beforeAll(() => buildPrograms(), 600_000);

const sha256 = (d: Uint8Array) => Promise.resolve(new Uint8Array(createHash('sha256').update(d).digest()));
const hmac = (key: Uint8Array, data: Uint8Array) => Promise.resolve(new Uint8Array(createHmac('sha256', key).update(data).digest()));
const dec = new TextDecoder();
/** The generic check: the SHA-256 of the whole image (process images use their seal's checksum: verifyImage). */
const bySha: DeltaVerify = async (image, check) => Buffer.from(await sha256(image)).equals(check);
const deltaOf = async (base: DeltaBase, image: Uint8Array) => makeDelta(base, image, await sha256(image));
/** Offsets in a delta: version, base size, base SHA-256, image size, image check, op count, first op. */
const AT = { version: 8, baseSize: 12, baseSha: 16, size: 48, sha: 52, count: 84, ops: 88 };

async function until(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A base offset the delta copies from (its first copy op's first byte). */
function firstCopied(delta: Uint8Array): number {
  const view = new DataView(delta.buffer, delta.byteOffset, delta.byteLength);
  for (let at = AT.ops; at < delta.length; ) {
    if (delta[at] === 0) return view.getUint32(at + 1, true);
    at += 5 + view.getUint32(at + 1, true);
  }
  throw new Error('the delta copies nothing');
}

async function refusal(p: Promise<unknown>): Promise<{ reason: DeltaRefusal; message: string }> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DeltaError);
    return { reason: (e as DeltaError).reason, message: (e as DeltaError).message };
  }
  throw new Error('expected a DeltaError, got none');
}

/** Pseudo-random bytes (xorshift), incompressible and reproducible. */
function noise(n: number, seed = 2463534242): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe('a real memhog image', () => {
  it('checkpoint while it runs, then freeze: the delta is a few chunks, rebuilds the frozen image exactly, and that image thaws and goes on', async () => {
    const KIB = 1024;
    // As in a tab: the executor hashes a frozen image with the host's (async) SHA-256, after the freeze.
    const hashed: number[] = [];
    const hostSha = async (d: Uint8Array) => (hashed.push(d.length), sha256(d));
    const driver = new InProcessExecution(2, { maxMemoryBytes: 16 << 20, files: new MemFs(), sha256: hostSha });
    const log: { from: number; msg: FromExecutor }[] = [];
    driver.attach((from, msg) => void log.push({ from, msg }));
    const module = program('memhog');
    const spec: ProcessSpec = {
      pid: 'dddddd.1', peer: PEER, name: 'memhog', hash: sha256hex(module), module,
      args: ['memhog', String(KIB)], env: {}, hasParent: false, interactiveStdin: false,
    };
    const text = (from?: number) => log.map(({ from: f, msg }) => (msg.t === 'out' && msg.fd === 1 && (from === undefined || f === from) ? dec.decode(msg.data) : '')).join('');
    const rounds = () => text().split('\n').length - 1;
    const answer = <T extends FromExecutor['t']>(t: T) => log.find((m) => m.msg.t === t)?.msg as Extract<FromExecutor, { t: T }> | undefined;
    driver.post(0, { t: 'start', spec });
    await until(() => rounds() >= 2, 'two rounds');
    driver.post(0, { t: 'checkpoint', pid: spec.pid });
    await until(() => !!answer('checkpointed'), 'the checkpoint');
    const baseImage = answer('checkpointed')!.image;
    const at = rounds();
    await until(() => rounds() >= at + 3, 'three more rounds'); // it ran on: a few words of its heap changed
    driver.post(0, { t: 'freeze', pid: spec.pid });
    await until(() => !!answer('frozen'), 'the freeze');
    const final = answer('frozen')!.image;
    const printed = rounds();
    expect(hashed).toContain(final.length - 44); // its payload (the seal's header is 44 bytes)
    expect(decodeImage(final).pid).toBe(spec.pid); // its checksum was filled in before it was posted

    const base = await deltaBase(baseImage, sha256);
    const delta = makeDelta(base, final, imageCheck(final));
    expect(final.length).toBeGreaterThan(KIB * 1024);
    // What changed: the image header, memhog's few heap words, its stack and the tail: a few chunks.
    expect(delta.literal).toBeLessThan(final.length / 16);
    expect(delta.bytes.length).toBeLessThan(final.length / 16);
    const rebuilt = await applyDelta(baseImage, base.sha, delta.bytes, verifyImage(sha256));
    expect(rebuilt).toEqual(final);
    expect(decodeImage(rebuilt).pid).toBe(spec.pid);
    // The check is the image's own seal checksum: a rebuild off by one byte of memory is refused,
    // though its header (which names that checksum) is intact.
    const wrongBase = baseImage.slice();
    wrongBase[firstCopied(delta.bytes)]! ^= 1;
    const { reason } = await refusal(applyDelta(wrongBase, base.sha, delta.bytes, verifyImage(sha256)));
    expect(reason).toBe('mismatch');
    expect(await verifyImage(sha256)(final, imageCheck(final))).toBe(true);
    expect(await verifyImage(sha256)(final, imageCheck(baseImage))).toBe(false);

    // Packed for the wire like an image, and back.
    const key = await imageKey('cluster', hmac);
    const packed = await packImage(delta.bytes, key, hmac);
    expect(await unpackImage(packed, key, hmac)).toEqual(delta.bytes);

    // Checked here already (verifyImage): the executor does not hash it again.
    driver.post(1, { t: 'thaw', spec, image: rebuilt, checked: true });
    await until(() => text(1).split('\n').length - 1 >= 2, 'rounds after the thaw');
    driver.post(1, { t: 'kill', pid: spec.pid, reason: 'done' });
    // It goes on from the round it was frozen after.
    expect(text(1).split('\n')[0]).toMatch(new RegExp(`^round ${printed + 1} sum [0-9a-f]{8}$`));
  }, 120_000);
});

describe('makeDelta / applyDelta', () => {
  const N = 256 * 1024;
  const original = noise(N);
  let base: DeltaBase;
  beforeAll(async () => {
    base = await deltaBase(original, sha256);
  });

  it('an unchanged image is one copy; scattered word changes cost a chunk each', async () => {
    const same = await deltaOf(base, original.slice());
    expect(same.literal).toBe(0);
    expect(same.bytes.length).toBe(AT.ops + 9);
    const changed = original.slice();
    for (const i of [100, 40_000, 40_004, 200_000]) changed[i]! ^= 0x5a;
    const d = await deltaOf(base, changed);
    expect(d.literal).toBe(3 * DELTA_CHUNK_BYTES); // 40_000 and 40_004 share a chunk
    expect(await applyDelta(original, base.sha, d.bytes, bySha)).toEqual(changed);
  });

  it('bytes inserted or removed in the middle (a memory page turned non-zero or zero): the rest is found again at its new offset', async () => {
    const inserted = new Uint8Array(N + 4100);
    inserted.set(original.subarray(0, 100_000));
    inserted.set(noise(4100, 7), 100_000);
    inserted.set(original.subarray(100_000), 104_100);
    const d = await deltaOf(base, inserted);
    // The new bytes and at most two chunks around them, not the whole rest of the image.
    expect(d.literal).toBeLessThanOrEqual(4100 + 2 * DELTA_CHUNK_BYTES);
    expect(await applyDelta(original, base.sha, d.bytes, bySha)).toEqual(inserted);

    const removed = new Uint8Array(N - 5000);
    removed.set(original.subarray(0, 60_000));
    removed.set(original.subarray(65_000), 60_000);
    const r = await deltaOf(base, removed);
    expect(r.literal).toBeLessThanOrEqual(2 * DELTA_CHUNK_BYTES);
    expect(await applyDelta(original, base.sha, r.bytes, bySha)).toEqual(removed);
  });

  it('shorter, longer, empty and wholly new images rebuild exactly too', async () => {
    for (const image of [original.subarray(0, 1000), new Uint8Array([...original, ...noise(12_345, 3)]), new Uint8Array(0), noise(N, 99)]) {
      const d = await deltaOf(base, image);
      expect(await applyDelta(original, base.sha, d.bytes, bySha)).toEqual(image);
    }
  });

  describe('refusals', () => {
    const final = original.slice();
    final[5000]! ^= 1;
    let delta: Uint8Array;
    beforeAll(async () => {
      delta = (await deltaOf(base, final)).bytes;
    });
    const patched = (at: number, bytes: number[] | Uint8Array) => {
      const d = delta.slice();
      d.set(bytes, at);
      return d;
    };
    const u32 = (n: number) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, n, true);
      return b;
    };

    it('against another base (other bytes, or another size): other-base', async () => {
      const other = original.slice();
      other[7]! ^= 1;
      expect(await refusal(applyDelta(other, await sha256(other), delta, bySha))).toEqual({ reason: 'other-base', message: 'the delta was made against another base image' });
      expect((await refusal(applyDelta(original.subarray(1), await sha256(original.subarray(1)), delta, bySha))).reason).toBe('other-base');
    });

    it('a changed byte of its data, or a copy moved: the rebuilt image does not match its check', async () => {
      const ops = delta.subarray(AT.ops);
      // Its ops: copy [0, 4096), data (the changed chunk), copy the rest.
      expect(ops[0]).toBe(0);
      expect(ops[9]).toBe(1);
      const dataAt = AT.ops + 9 + 5 + 10;
      expect((await refusal(applyDelta(original, base.sha, patched(dataAt, [delta[dataAt]! ^ 1]), bySha))).reason).toBe('mismatch');
      expect((await refusal(applyDelta(original, base.sha, patched(AT.ops + 1, u32(8)), bySha))).reason).toBe('mismatch');
    });

    it('a wrong image check: mismatch', async () => {
      expect(await refusal(applyDelta(original, base.sha, patched(AT.sha, [delta[AT.sha]! ^ 0x80]), bySha))).toEqual({
        reason: 'mismatch',
        message: 'the rebuilt image does not match its check',
      });
    });

    it('cut short anywhere: truncated', async () => {
      for (const len of [0, 5, 8, AT.ops - 1, AT.ops, AT.ops + 4, delta.length - 1]) {
        const r = await refusal(applyDelta(original, base.sha, delta.subarray(0, len), bySha));
        expect(r.reason, `length ${len}`).toBe('truncated');
        expect(r.message).toMatch(/^truncated delta/);
      }
    });

    it('bytes after the last op, a size its ops do not write, a copy outside the base, an unknown or empty op: corrupt', async () => {
      const cases: [Uint8Array, RegExp][] = [
        [new Uint8Array([...delta, 0]), /1 bytes after the last op/],
        [patched(AT.size, u32(final.length + 1)), /writes 262144 of the announced 262145 bytes/],
        [patched(AT.size, u32(final.length - 1)), /writes past the announced 262143 bytes/],
        [patched(AT.ops + 1, u32(N)), /copies bytes 262144\.\.266240 of a 262144-byte base/],
        [patched(AT.ops, [7]), /unknown op 7/],
        [patched(AT.ops + 5, u32(0)), /an empty copy/],
        [patched(AT.count, u32(2)), /bytes after the last op/],
      ];
      for (const [bad, message] of cases) {
        const r = await refusal(applyDelta(original, base.sha, bad, bySha));
        expect(r.reason, String(message)).toBe('corrupt');
        expect(r.message).toMatch(message);
      }
      // More ops announced than there are: truncated.
      expect((await refusal(applyDelta(original, base.sha, patched(AT.count, u32(4)), bySha))).reason).toBe('truncated');
    });

    it('not a delta (a bare image, text), another version, over the size cap', async () => {
      expect(await refusal(applyDelta(original, base.sha, original.slice(0, 200), bySha))).toEqual({ reason: 'not-delta', message: 'not an image delta' });
      expect((await refusal(applyDelta(original, base.sha, 'nope' as unknown as Uint8Array, bySha))).reason).toBe('not-delta');
      const v = await refusal(applyDelta(original, base.sha, patched(AT.version, u32(DELTA_FORMAT_VERSION + 1)), bySha));
      expect(v).toEqual({ reason: 'version', message: `delta made by another version (${DELTA_FORMAT_VERSION + 1}; this peer reads ${DELTA_FORMAT_VERSION})` });
      expect((await refusal(applyDelta(original, base.sha, delta, bySha, { maxBytes: 1000 }))).reason).toBe('too-large');
    });
  });
});

describe('fuzz: applyDelta refuses with a DeltaError, never anything else, and never rebuilds wrong bytes', () => {
  const small = noise(3 * DELTA_CHUNK_BYTES + 123, 11);
  const target = (() => {
    const t = new Uint8Array(small.length + 50);
    t.set(small.subarray(0, 5000));
    t.set(noise(50, 5), 5000);
    t.set(small.subarray(5000), 5050);
    return t;
  })();
  let baseSha: Uint8Array;
  let good: Uint8Array;
  beforeAll(async () => {
    const base = await deltaBase(small, sha256);
    baseSha = base.sha;
    good = (await deltaOf(base, target)).bytes;
  });

  /** Applies `d`: a DeltaError, or exactly the image the valid delta rebuilds. */
  const check = async (d: Uint8Array) => {
    try {
      expect(await applyDelta(small, baseSha, d, bySha)).toEqual(target);
    } catch (e) {
      expect(e).toBeInstanceOf(DeltaError);
      expect((e as Error).message.length).toBeGreaterThan(0);
    }
  };

  it('random bytes, with and without the magic', async () => {
    const magic = new TextEncoder().encode('LSHDELT\0');
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), fc.boolean(), async (bytes, withMagic) => {
        const d = withMagic ? new Uint8Array([...magic, ...bytes]) : bytes;
        await check(d);
      }),
      { numRuns: 1000 },
    );
  });

  it('a valid delta mutated: bytes flipped, cut, spliced, extended', async () => {
    const mutation = fc.oneof(
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 6 }).map((flips) => (d: Uint8Array) => {
        const m = d.slice();
        for (const [at, x] of flips) m[at % m.length]! ^= x;
        return m;
      }),
      fc.nat().map((n) => (d: Uint8Array) => d.subarray(0, n % d.length)),
      fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 40 })).map(([at, ins]) => (d: Uint8Array) => {
        const p = at % d.length;
        return new Uint8Array([...d.subarray(0, p), ...ins, ...d.subarray(p)]);
      }),
      fc.uint8Array({ minLength: 1, maxLength: 40 }).map((tail) => (d: Uint8Array) => new Uint8Array([...d, ...tail])),
      // The header's numbers replaced (sizes, counts, offsets).
      fc.tuple(fc.constantFrom(AT.baseSize, AT.size, AT.count, AT.ops + 1, AT.ops + 5), fc.nat()).map(([at, n]) => (d: Uint8Array) => {
        const m = d.slice();
        new DataView(m.buffer).setUint32(at, n >>> 0, true);
        return m;
      }),
    );
    await fc.assert(
      fc.asyncProperty(mutation, async (mutate) => {
        await check(mutate(good));
      }),
      { numRuns: 1500 },
    );
  });
});
