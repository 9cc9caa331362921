// The target's side of a pre-copy (immigration.ts): a base is checked like any image and kept,
// bounded (BaseStore: one per process, MAX_BASE_BYTES in all, dropped on cancel, timeout or its
// sender leaving); the final image comes as a delta against it, is rebuilt and then admitted
// exactly as a full image. A delta without its base is refused with `noBase` (its sender then
// sends the full image); a tampered or foreign one is refused like an image.
import { createHash, createHmac } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { InProcessExecution } from '../../kernel/process/in-process.ts';
import type { FromExecutor, ProcessSpec } from '../../kernel/process/protocol.ts';
import { PEER, sha256hex } from '../../kernel/process/test-scheduler.ts';
import { MemFs } from '../../kernel/wasi/memfs.ts';
import { buildPrograms, program } from '../../kernel/wasi/test-programs.ts';
import { BASE_KEEP_MS, BaseStore, admitBase, admitDelta, admitImage, type Base, type Keys } from './immigration.ts';
import { deltaBase, imageCheck, imageKey, makeDelta, packImage } from './transfer.ts';

beforeAll(() => buildPrograms(), 600_000);

const sha256 = (d: Uint8Array) => Promise.resolve(new Uint8Array(createHash('sha256').update(d).digest()));
const hmac = (key: Uint8Array, data: Uint8Array) => Promise.resolve(new Uint8Array(createHmac('sha256', key).update(data).digest()));
const enc = new TextEncoder();
const A = 'a'.repeat(32);
const B = 'b'.repeat(32);

async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('admitBase and admitDelta (a real cat: checkpointed after one line, frozen after two)', () => {
  const module = program('cat');
  const hash = sha256hex(module);
  const pid = 'cccccc.7';
  let keys: Keys;
  let baseImage: Uint8Array;
  let final: Uint8Array;
  let packedBase: Uint8Array;
  let packedDelta: Uint8Array;

  beforeAll(async () => {
    keys = { key: await imageKey('cluster', hmac), hmac, sha256 };
    const driver = new InProcessExecution(1, { maxMemoryBytes: 16 << 20, files: new MemFs() });
    const log: FromExecutor[] = [];
    driver.attach((_from, msg) => void log.push(msg));
    const spec: ProcessSpec = { pid, peer: PEER, name: 'cat', hash, module, args: ['cat'], env: {}, hasParent: false, interactiveStdin: true };
    const out = () => log.map((m) => (m.t === 'out' ? new TextDecoder().decode(m.data) : '')).join('');
    driver.post(0, { t: 'start', spec });
    driver.post(0, { t: 'stdin', pid, data: enc.encode('one\n') });
    await until(() => out() === 'one\n', 'the first line');
    driver.post(0, { t: 'checkpoint', pid });
    await until(() => log.some((m) => m.t === 'checkpointed'), 'the checkpoint');
    baseImage = (log.find((m) => m.t === 'checkpointed') as Extract<FromExecutor, { t: 'checkpointed' }>).image;
    driver.post(0, { t: 'stdin', pid, data: enc.encode('two\n') });
    await until(() => out() === 'one\ntwo\n', 'the second line');
    driver.post(0, { t: 'freeze', pid });
    await until(() => log.some((m) => m.t === 'frozen'), 'the freeze');
    final = (log.find((m) => m.t === 'frozen') as Extract<FromExecutor, { t: 'frozen' }>).image;
    packedBase = await packImage(baseImage, keys.key!, hmac);
    packedDelta = await packImage(makeDelta(await deltaBase(baseImage, sha256), final, imageCheck(final)).bytes, keys.key!, hmac);
  }, 60_000);

  it('a base is checked like an image, and kept with its SHA-256', async () => {
    const r = await admitBase({ pid, hash, module, image: packedBase }, keys);
    expect(r).toEqual({ ok: true, image: baseImage, sha: await sha256(baseImage), cpuMs: expect.any(Number) });
    expect(await admitBase({ pid, hash, module: program('hello'), image: packedBase }, keys)).toEqual({ ok: false, reason: 'the module does not match its hash' });
    const other = { ...keys, key: await imageKey('another cluster', hmac) };
    expect(await admitBase({ pid, hash, module, image: packedBase }, other)).toMatchObject({ ok: false, reason: expect.stringMatching(/^not from this cluster/) });
  });

  it('the delta against the kept base rebuilds the frozen image, byte for byte the one a full transfer admits', async () => {
    const base = { pid, hash, image: baseImage, sha: await sha256(baseImage), cpuMs: 3 };
    const r = await admitDelta({ pid, hash, delta: packedDelta }, base, keys);
    const full = await admitImage({ pid, hash, module, image: await packImage(final, keys.key!, hmac) }, keys);
    expect(full).toMatchObject({ ok: true, image: final });
    // Not decoded again (the base was): its CPU time is the base's until its first state.
    expect(r).toEqual({ ok: true, image: final, cpuMs: 3 });
    // A base kept for another process is no base for this one.
    expect(await admitDelta({ pid: 'cccccc.8', hash, delta: packedDelta }, base, keys)).toEqual({ ok: false, noBase: true, reason: `no base: the pre-copy image kept here is of process ${pid}` });
  });

  it('a kept base that changed under its SHA-256 (memory gone bad, a bug): the rebuild fails its check, noBase, so the full image goes', async () => {
    const bad = baseImage.slice();
    bad[bad.length >> 1]! ^= 1; // in its memory: the delta copies it
    const r = await admitDelta({ pid, hash, delta: packedDelta }, { pid, hash, image: bad, sha: await sha256(baseImage), cpuMs: 0 }, keys);
    expect(r).toEqual({ ok: false, noBase: true, reason: 'no base: the rebuilt image does not match its check' });
  });

  it("no base, a base of another program, or another base: refused with noBase ('no base: …'), so the sender sends the full image", async () => {
    const sha = await sha256(baseImage);
    const none = await admitDelta({ pid, hash, delta: packedDelta }, undefined, keys);
    expect(none).toEqual({ ok: false, noBase: true, reason: expect.stringMatching(/^no base: this peer keeps no pre-copy image of it/) });
    const program = await admitDelta({ pid, hash, delta: packedDelta }, { pid, hash: 'f'.repeat(64), image: baseImage, sha, cpuMs: 0 }, keys);
    expect(program).toMatchObject({ ok: false, noBase: true, reason: 'no base: the pre-copy image kept here is of another program' });
    const otherImage = final; // a real image, just not the base it was made against
    const other = await admitDelta({ pid, hash, delta: packedDelta }, { pid, hash, image: otherImage, sha: await sha256(otherImage), cpuMs: 0 }, keys);
    expect(other).toEqual({ ok: false, noBase: true, reason: 'no base: the delta was made against another base image' });
  });

  it('a tampered, foreign or malformed delta is refused as such (no retry with the full image: it is not about the base)', async () => {
    const base = { pid, hash, image: baseImage, sha: await sha256(baseImage), cpuMs: 0 };
    const tampered = packedDelta.slice();
    tampered[30]! ^= 1;
    const t = await admitDelta({ pid, hash, delta: tampered }, base, keys);
    expect(t).toEqual({ ok: false, reason: expect.stringMatching(/^the delta: not from this cluster/) });
    const foreign = await admitDelta({ pid, hash, delta: packedDelta }, base, { ...keys, key: await imageKey('another cluster', hmac) });
    expect(foreign).toMatchObject({ ok: false, reason: expect.stringMatching(/not from this cluster/) });
    expect(foreign).not.toHaveProperty('noBase');
    // Authenticated, but not a delta (a full image where a delta belongs).
    const image = await admitDelta({ pid, hash, delta: packedBase }, base, keys);
    expect(image).toEqual({ ok: false, reason: 'not an image delta' });
    expect(await admitDelta({ pid, hash, delta: packedDelta }, base, { ...keys, key: undefined })).toEqual({ ok: false, reason: 'this peer cannot authenticate process images' });
  });
});

describe('BaseStore', () => {
  function store(maxBytes = 1000) {
    let now = 0;
    const timers: { at: number; fn: () => void; live: boolean }[] = [];
    const s = new BaseStore(
      (fn, ms) => {
        const t = { at: now + ms, fn, live: true };
        timers.push(t);
        return () => void (t.live = false);
      },
      maxBytes,
    );
    const advance = (ms: number) => {
      now += ms;
      for (const t of timers) if (t.live && t.at <= now) (t.live = false), t.fn();
    };
    return { s, advance };
  }
  const base = (pid: string, from: string, ref: number, bytes: number): Base => ({
    from,
    ref,
    pid,
    hash: '0'.repeat(64),
    module: new Uint8Array(10),
    image: new Uint8Array(bytes - 10),
    sha: new Uint8Array(32),
    cpuMs: 0,
  });

  it('reserve while checked, keep, take once (only for the same move and sender)', () => {
    const { s } = store();
    expect(s.reserve('p.1', A, 1, 300)).toBeUndefined();
    expect(s.bytes).toBe(300);
    expect(s.take('p.1', A, 1)).toBeUndefined(); // reserved, not checked yet: nothing to rebuild from (and dropped)
    expect(s.bytes).toBe(0);
    expect(s.reserve('p.1', A, 2, 300)).toBeUndefined();
    const b = base('p.1', A, 2, 250);
    expect(s.keep(b)).toBeUndefined();
    expect(s.bytes).toBe(250); // the real size replaces the reservation
    expect(s.holds('p.1', A, 2)).toBe(true);
    expect(s.take('p.1', B, 2)).toBeUndefined();
    expect(s.take('p.1', A, 3)).toBeUndefined();
    expect(s.take('p.1', A, 2)).toBe(b);
    expect(s.take('p.1', A, 2)).toBeUndefined();
    expect(s.size).toBe(0);
    expect(s.bytes).toBe(0);
  });

  it('one base per process: a newer one replaces it, and the older one cannot be kept any more', () => {
    const { s } = store();
    expect(s.reserve('p.1', A, 1, 100)).toBeUndefined();
    expect(s.reserve('p.1', B, 5, 100)).toBeUndefined();
    expect(s.size).toBe(1);
    expect(s.keep(base('p.1', A, 1, 100))).toBe('its move was cancelled while the base was checked');
    expect(s.keep(base('p.1', B, 5, 100))).toBeUndefined();
    expect(s.bytes).toBe(100);
  });

  it('bounded in bytes: a base that does not fit is refused with the reason; a kept one larger than reserved is dropped if it does not fit', () => {
    const { s } = store(1000);
    expect(s.reserve('p.1', A, 1, 600)).toBeUndefined();
    expect(s.reserve('p.2', A, 2, 500)).toMatch(/^no room for a pre-copy base/);
    expect(s.reserve('p.2', A, 2, 400)).toBeUndefined();
    expect(s.keep(base('p.2', A, 2, 500))).toMatch(/^no room for a pre-copy base/);
    expect(s.holds('p.2', A, 2)).toBe(false);
    expect(s.bytes).toBe(600);
  });

  it('dropped on cancel (that move only), when its sender leaves, and after BASE_KEEP_MS', () => {
    const { s, advance } = store(10_000);
    s.reserve('p.1', A, 1, 100);
    s.reserve('p.2', A, 2, 100);
    s.reserve('p.3', B, 3, 100);
    s.drop('p.1', A, 9); // another move: stays
    s.drop('p.1', B); // another sender: stays
    expect(s.size).toBe(3);
    s.drop('p.1', A, 1);
    expect(s.holds('p.1', A, 1)).toBe(false);
    s.dropFrom(A);
    expect(s.size).toBe(1);
    expect(s.holds('p.3', B, 3)).toBe(true);
    advance(BASE_KEEP_MS - 1);
    expect(s.size).toBe(1);
    advance(1);
    expect(s.size).toBe(0);
    expect(s.bytes).toBe(0);
  });
});
