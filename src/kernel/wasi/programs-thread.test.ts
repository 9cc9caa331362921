// The C programs on the thread runtime (WasmThread, Asyncify): here host calls may block, so
// programs run on a host directory (every call a Promise), on the real clock, on stdin that
// arrives later — and a thread blocked in a WASI call can be snapshotted and resumed elsewhere.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HostFs } from '../../host/node/hostfs.ts';
import { WasmThread } from '../wasm/thread.ts';
import { VirtualClock, systemClock } from './clock.ts';
import { MemFs, memfsFrom } from './memfs.ts';
import { Wasi, type WasiOptions } from './preview1.ts';
import { CollectOutput, QueueInput, bytesInput } from './streams.ts';
import { buildPrograms, driveThread, expected, rewrittenProgram, runThreaded } from './test-programs.ts';
import { Namespace, type FileSystem } from './vfs.ts';

// Building may first install the toolchain with apt-get (as root on Debian): allow minutes.
beforeAll(() => buildPrograms(), 600_000);

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function hostDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'lshapes-wasi-thread-'));
  dirs.push(d);
  return d;
}

function wasiFor(name: string, args: string[], options: WasiOptions) {
  const stdout = new CollectOutput();
  const stderr = new CollectOutput();
  const errors: unknown[] = [];
  const wasi = new Wasi({
    args: [name, ...args],
    env: { HOME: '/', TESTVAR: 'value' },
    stdout,
    stderr,
    clock: new VirtualClock(),
    onError: (call, err) => errors.push([call, err]),
    ...options,
  });
  return { wasi, stdout, stderr, errors };
}

/** Every FileSystem method answers with a Promise, a little later. */
function slow(fs: FileSystem): FileSystem {
  return new Proxy(fs, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function' || prop === 'retain' || prop === 'release') return v;
      return (...args: unknown[]) =>
        new Promise((resolve, reject) =>
          setImmediate(() => {
            try {
              resolve((v as (...a: unknown[]) => unknown).apply(target, args));
            } catch (err) {
              reject(err);
            }
          }),
        );
    },
  });
}

describe('WASI programs on the thread runtime', () => {
  for (const name of ['wasi_files', 'wasi_dirs', 'wasi_links']) {
    it(`${name} on a host directory (HostFs) prints the expected output`, async () => {
      const ns = new Namespace({ '/': await HostFs.open(hostDir()) });
      const { wasi, stdout, stderr, errors } = wasiFor(name, [], { namespace: ns });
      const { code, blocks } = await runThreaded(name, wasi);
      expect(errors).toEqual([]);
      expect(stderr.text()).toBe('');
      expect(stdout.text()).toBe(expected(name));
      expect(code).toBe(0);
      expect(blocks).toBeGreaterThan(50);
    });
  }

  it('wasi_raw over filesystems that answer with Promises prints the expected output', async () => {
    const ns = new Namespace();
    ns.mount('/', slow(memfsFrom({ tmp: {}, ro: {} })));
    ns.mount('/ro', slow(memfsFrom({ readme: 'read me' })), { readonly: true });
    ns.mount('/tmp', slow(new MemFs()));
    const { wasi, stdout, errors } = wasiFor('wasi_raw', ['one', 'two words'], { namespace: ns, stdin: bytesInput('abc') });
    const { code, blocks } = await runThreaded('wasi_raw', wasi);
    expect(errors).toEqual([]);
    expect(stdout.text()).toBe(expected('wasi_raw'));
    expect(code).toBe(7);
    expect(blocks).toBeGreaterThan(50);
  });

  it('counter sleeps on the real clock (poll_oneoff blocks)', async () => {
    const { wasi, stdout } = wasiFor('counter', ['2'], { clock: systemClock() });
    const t0 = performance.now();
    const { code, blocks } = await runThreaded('counter', wasi);
    expect(code).toBe(0);
    // Sleeps are never shorter than asked (a loaded machine may make them longer).
    const ticks = /^tick 1 \((\d+)s\)\ntick 2 \((\d+)s\)\n$/.exec(stdout.text());
    expect(ticks, stdout.text()).not.toBeNull();
    expect(Number(ticks![1])).toBeGreaterThanOrEqual(1);
    expect(Number(ticks![2])).toBeGreaterThanOrEqual(2);
    expect(blocks).toBe(2);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(1990);
  });

  it('cat waits for stdin typed later', async () => {
    const stdin = new QueueInput();
    const { wasi, stdout } = wasiFor('cat', [], { stdin });
    const t = await WasmThread.create(await rewrittenProgram('cat'), [wasi]);
    setTimeout(() => stdin.push('first line\n'), 20);
    setTimeout(() => {
      stdin.push('second line\n');
      stdin.end();
    }, 40);
    const { code, blocks } = await driveThread(t);
    expect(code).toBe(0);
    expect(stdout.text()).toBe('first line\nsecond line\n');
    expect(blocks).toBeGreaterThanOrEqual(2);
  });

  it('a thread blocked in a WASI call is snapshotted and resumed in a new instance with its fd table', async () => {
    const dir = hostDir();
    writeFileSync(path.join(dir, 'in.txt'), 'from the host file\n');
    const ns = new Namespace({ '/': await HostFs.open(dir) });
    // cat in.txt - in.txt: stop it where it first reads the host file (fd 4, still at offset 0).
    const first = wasiFor('cat', ['in.txt', '-', 'in.txt'], { namespace: ns, stdin: new QueueInput() });
    const rw = await rewrittenProgram('cat');
    const t1 = await WasmThread.create(rw, [first.wasi]);
    let snapshot;
    for (;;) {
      const r = t1.run();
      if (r.state !== 'blocked') throw new Error(`unexpected ${r.state}`);
      const s = t1.snapshot();
      if (s.pending?.name === 'fd_read' && s.pending.args[0] === 4) {
        snapshot = s;
        break;
      }
      await r.until;
    }
    expect(first.stdout.text()).toBe('');
    const fds = (snapshot.hostState.wasi_snapshot_preview1 as { fds: { fd: number; path?: string }[] }).fds;
    expect(fds.map((f) => [f.fd, f.path])).toEqual([
      [0, undefined],
      [1, undefined],
      [2, undefined],
      [3, '/'],
      [4, '/in.txt'],
    ]);
    // The snapshot is plain data: it can cross the wire.
    expect(structuredClone(snapshot.hostState)).toEqual(snapshot.hostState);

    const stdin2 = new QueueInput();
    stdin2.push('typed on the other peer\n');
    stdin2.end();
    const second = wasiFor('cat', ['ignored'], { namespace: ns, stdin: stdin2 });
    const t2 = await WasmThread.restore(rw, snapshot, [second.wasi]);
    const { code } = await driveThread(t2);
    expect(code).toBe(0);
    expect(second.stdout.text()).toBe('from the host file\ntyped on the other peer\nfrom the host file\n');
    expect(second.errors).toEqual([]);
  });
});
