// Packing process images for the wire: a real image (cat frozen on one executor) survives
// pack → unpack and continues on another; everything else is refused with the right reason.
import { createHmac } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../kernel/process/image.ts';
import { InProcessExecution } from '../../kernel/process/in-process.ts';
import type { FromExecutor, ProcessSpec } from '../../kernel/process/protocol.ts';
import { PEER, sha256hex } from '../../kernel/process/test-scheduler.ts';
import { MemFs } from '../../kernel/wasi/memfs.ts';
import { buildPrograms, program } from '../../kernel/wasi/test-programs.ts';
import { MAX_IMAGE_BYTES, TRANSFER_FORMAT_VERSION, TRANSFER_STORED_VERSION, TransferError, imageKey, packImage, unpackImage, type TransferRefusal } from './transfer.ts';

beforeAll(() => buildPrograms(), 600_000);

const hmac = (key: Uint8Array, data: Uint8Array) => Promise.resolve(new Uint8Array(createHmac('sha256', key).update(data).digest()));
const enc = new TextEncoder();
const dec = new TextDecoder();
const HEADER = 20;

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function refusal(p: Promise<unknown>): Promise<{ reason: TransferRefusal; message: string }> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(TransferError);
    return { reason: (e as TransferError).reason, message: (e as TransferError).message };
  }
  throw new Error('expected a TransferError, got none');
}

/** A packed transfer of `payload` as-is (not necessarily valid deflate), correctly MACed: what a buggy member could send. */
async function forge(key: Uint8Array, payload: Uint8Array, size: number, version = TRANSFER_FORMAT_VERSION): Promise<Uint8Array> {
  const out = new Uint8Array(HEADER + payload.length + 32);
  out.set(enc.encode('LSHXFER\0'));
  const v = new DataView(out.buffer);
  v.setUint32(8, version, true);
  v.setUint32(12, size, true);
  v.setUint32(16, payload.length, true);
  out.set(payload, HEADER);
  out.set(await hmac(key, out.subarray(0, HEADER + payload.length)), HEADER + payload.length);
  return out;
}

async function deflateRaw(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await new Response(new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream('deflate-raw'))).arrayBuffer());
}

describe('imageKey', () => {
  it('depends on the token and is not the admission key', async () => {
    const a = await imageKey('token-a', hmac);
    expect(a).toHaveLength(32);
    expect(a).toEqual(await imageKey('token-a', hmac));
    expect(a).not.toEqual(await imageKey('token-b', hmac));
    expect(a).not.toEqual(await hmac(enc.encode('token-a'), enc.encode('lshapes-admission-key-v1')));
  });
});

describe('a real process image', () => {
  it('cat frozen on A, packed, unpacked and thawed on B: reads on where it stopped', async () => {
    const key = await imageKey('cluster', hmac);
    const driver = new InProcessExecution(2, { maxMemoryBytes: 16 << 20, files: new MemFs() });
    const log: { from: number; msg: FromExecutor }[] = [];
    driver.attach((from, msg) => void log.push({ from, msg }));
    const module = program('cat');
    const spec: ProcessSpec = {
      pid: 'cccccc.1', peer: PEER, name: 'cat', hash: sha256hex(module), module,
      args: ['cat'], env: {}, hasParent: false, interactiveStdin: true,
    };
    const text = () => log.map(({ msg }) => (msg.t === 'out' && msg.fd === 1 ? dec.decode(msg.data) : '')).join('');
    const waiting = () => log.filter(({ msg }) => msg.t === 'state').at(-1)?.msg;
    driver.post(0, { t: 'start', spec });
    driver.post(0, { t: 'stdin', pid: spec.pid, data: enc.encode('one\n') });
    await until(() => text() === 'one\n', 'the first line');
    await until(() => (waiting() as { state?: string } | undefined)?.state === 'WAITING', 'cat to wait for input');
    driver.post(0, { t: 'freeze', pid: spec.pid });
    let frozen: Extract<FromExecutor, { t: 'frozen' }> | undefined;
    await until(() => !!(frozen = log.find((m): m is { from: number; msg: Extract<FromExecutor, { t: 'frozen' }> } => m.msg.t === 'frozen')?.msg), 'frozen');
    const image = frozen!.image;

    const packed = await packImage(image, key, hmac);
    // mostly-zero linear memory: deflate must shrink it a lot
    expect(packed.length).toBeLessThan(image.length / 4);
    const back = await unpackImage(packed, key, hmac);
    expect(back).toEqual(image);
    expect(decodeImage(back).pid).toBe(spec.pid);

    driver.post(1, { t: 'thaw', spec, image: back });
    driver.post(1, { t: 'stdin', pid: spec.pid, data: enc.encode('two\n') });
    driver.post(1, { t: 'stdin.end', pid: spec.pid });
    await until(() => log.some(({ msg }) => msg.t === 'exit'), 'the exit');
    expect(log.find(({ msg }) => msg.t === 'exit')).toMatchObject({ from: 1, msg: { code: 0 } });
    expect(text()).toBe('one\ntwo\n');
  });
});

describe('refusals', () => {
  const image = new Uint8Array(100_000).map((_, i) => (i * 7) % 251);
  let key: Uint8Array;
  let packed: Uint8Array;
  beforeAll(async () => {
    key = await imageKey('cluster', hmac);
    packed = await packImage(image, key, hmac);
  });

  it('round-trips bytes exactly, including an empty image', async () => {
    expect(await unpackImage(packed, key, hmac)).toEqual(image);
    expect(await unpackImage(await packImage(new Uint8Array(0), key, hmac), key, hmac)).toEqual(new Uint8Array(0));
  });

  it('another cluster\'s key: not from this cluster', async () => {
    const other = await imageKey('another cluster', hmac);
    expect(await refusal(unpackImage(packed, other, hmac))).toEqual({ reason: 'foreign', message: expect.stringMatching(/^not from this cluster/) });
  });

  it('any byte changed (header, payload or MAC) is refused as foreign', async () => {
    for (const at of [12, 16, HEADER, HEADER + 10, packed.length - 40, packed.length - 1]) {
      const bad = packed.slice();
      bad[at]! ^= 1;
      const r = await refusal(unpackImage(bad, key, hmac));
      // a flipped size byte may also read as truncated / trailing bytes; never accepted
      expect(['foreign', 'truncated', 'corrupt']).toContain(r.reason);
      if (at >= HEADER) expect(r.reason).toBe('foreign');
    }
  });

  it('cut short anywhere: truncated', async () => {
    for (const len of [0, 5, 8, HEADER, HEADER + 31, packed.length - 1, packed.length - 33]) {
      const r = await refusal(unpackImage(packed.subarray(0, len), key, hmac));
      expect(r.reason, `length ${len}`).toBe('truncated');
      expect(r.message).toMatch(/^truncated/);
    }
  });

  it('bytes after the end: corrupt', async () => {
    const long = new Uint8Array(packed.length + 3);
    long.set(packed);
    expect((await refusal(unpackImage(long, key, hmac))).reason).toBe('corrupt');
  });

  it('other bytes (a bare process image, text): not a process image transfer', async () => {
    const bare = new Uint8Array(200);
    bare.set(enc.encode('LSHPROC\0'));
    for (const bytes of [bare, enc.encode('hello, this is not a transfer at all, honestly')]) {
      expect(await refusal(unpackImage(bytes, key, hmac))).toEqual({ reason: 'not-transfer', message: 'not a process image transfer' });
    }
    expect((await refusal(unpackImage('nope' as unknown as Uint8Array, key, hmac))).reason).toBe('not-transfer');
  });

  it('another format version: made by another version (N)', async () => {
    const v3 = packed.slice();
    new DataView(v3.buffer).setUint32(8, 3, true);
    const r = await refusal(unpackImage(v3, key, hmac));
    expect(r.reason).toBe('version');
    expect(r.message).toMatch(/^made by another version \(3;/);
  });

  it('an image that does not compress is stored as it is, and unpacks the same', async () => {
    const noise = new Uint8Array(300_000);
    for (let i = 0; i < noise.length; i += 65536) crypto.getRandomValues(noise.subarray(i, i + 65536));
    const p = await packImage(noise, key, hmac);
    expect(new DataView(p.buffer).getUint32(8, true)).toBe(TRANSFER_STORED_VERSION);
    expect(p.length).toBe(HEADER + noise.length + 32);
    expect(await unpackImage(p, key, hmac)).toEqual(noise);
    // A compressible one still is deflated.
    const zeros = await packImage(new Uint8Array(300_000), key, hmac);
    expect(new DataView(zeros.buffer).getUint32(8, true)).toBe(TRANSFER_FORMAT_VERSION);
    expect(zeros.length).toBeLessThan(10_000);
    // Stored, the payload size must be the image size (it is authenticated: only a buggy member sends otherwise).
    const bad = await forge(key, noise.subarray(0, 1000), 999, TRANSFER_STORED_VERSION);
    expect((await refusal(unpackImage(bad, key, hmac))).message).toMatch(/stored image of 1000 bytes, 999 announced/);
  });

  it('authenticated but not deflate: corrupt (cannot decompress)', async () => {
    const junk = await forge(key, enc.encode('definitely not a deflate stream, just some text'), 1000);
    const r = await refusal(unpackImage(junk, key, hmac));
    expect(r.reason).toBe('corrupt');
    expect(r.message).toMatch(/^corrupt \(cannot decompress/);
  });

  it('authenticated, but inflates to another size than announced: corrupt', async () => {
    const payload = await deflateRaw(image);
    expect((await refusal(unpackImage(await forge(key, payload, image.length - 1), key, hmac))).message).toMatch(/more than the announced/);
    expect((await refusal(unpackImage(await forge(key, payload, image.length + 1), key, hmac))).message).toMatch(/decompresses to 100000 bytes, 100001 announced/);
    expect(await unpackImage(await forge(key, payload, image.length), key, hmac)).toEqual(image);
  });

  it('zip bomb: 64 MiB of zeros announced honestly is refused over the cap, lied about it stops at the announced size', async () => {
    const zeros = new Uint8Array(64 << 20);
    const bomb = await deflateRaw(zeros);
    expect(bomb.length).toBeLessThan(100_000);
    const honest = await forge(key, bomb, zeros.length);
    const r = await refusal(unpackImage(honest, key, hmac, { maxBytes: 1 << 20 }));
    expect(r.reason).toBe('too-large');
    // a lie about the size: inflation stops once the announced 1 KiB is exceeded
    expect((await refusal(unpackImage(await forge(key, bomb, 1024), key, hmac))).reason).toBe('corrupt');
    // the default cap is not in the way of a real one
    expect(MAX_IMAGE_BYTES).toBeGreaterThan(512 << 20);
  });

  it('packImage refuses an image over the cap, before compressing it', async () => {
    const r = await refusal(packImage(new Uint8Array(2048), key, hmac, { maxBytes: 1024 }));
    expect(r.reason).toBe('too-large');
    expect(r.message).toMatch(/2048 bytes, the limit is 1024/);
  });
});
