import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { HostFunction, HostModule } from './host-calls.ts';
import { SnapshotError, ThreadStateError } from './errors.ts';
import { fixture } from './fixtures/load.ts';
import { rewriteModule } from './rewrite.ts';
import { decodeSnapshot, encodeSnapshot, memoryImageBytes, type ThreadSnapshot } from './snapshot.ts';
import { WasmThread, type RunResult } from './thread.ts';
import type { RewrittenModule } from './types.ts';

/** The deterministic value env.get(i) answers (a pure function: re-issuing it is harmless). */
function answer(i: number): number {
  return (Math.imul(i + 1, 2654435761) >>> 16) & 0x3ff;
}

/**
 * The host of fixtures/prog.wat. Its output is host state, so it travels in the snapshot. Which
 * calls answer asynchronously is decided by `plan` (from the call count); a print's side effect
 * happens when its Promise settles, so a call re-issued after restoring a snapshot taken while
 * it was pending still prints exactly once.
 */
class ProgHost implements HostModule {
  readonly name = 'env';
  out: bigint[] = [];
  calls = 0;
  constructor(private readonly plan: (n: number) => boolean) {}
  functions(): Record<string, HostFunction> {
    return {
      print: (v) => {
        if (this.plan(this.calls++)) {
          return Promise.resolve().then(() => {
            this.out.push(BigInt(v));
          });
        }
        this.out.push(BigInt(v));
      },
      get: (i) => {
        const value = answer(Number(i));
        return this.plan(this.calls++) ? new Promise<number>((res) => setTimeout(() => res(value), 0)) : value;
      },
    };
  }
  snapshot(): unknown {
    return { out: this.out.slice(), calls: this.calls };
  }
  restore(state: unknown): void {
    const s = state as { out: bigint[]; calls: number };
    this.out = s.out.slice();
    this.calls = s.calls;
  }
}

const never = (): boolean => false;

async function finish(t: WasmThread, slice = {}): Promise<RunResult> {
  for (;;) {
    const r = t.run(slice);
    if (r.state === 'blocked') await r.until;
    else if (r.state !== 'yielded') return r;
  }
}

let prog: Promise<RewrittenModule> | undefined;
const progModule = (): Promise<RewrittenModule> => (prog ??= rewriteModule(fixture('prog.wat')));

let reference: Promise<{ out: bigint[]; fuel: number }> | undefined;
/** One uninterrupted run with every host call answered at once: its output and fuel used. */
function referenceRun(): Promise<{ out: bigint[]; fuel: number }> {
  reference ??= (async () => {
    const host = new ProgHost(never);
    const t = await WasmThread.create(await progModule(), [host]);
    expect(t.run()).toEqual({ state: 'exited', code: 0 });
    return { out: host.out, fuel: t.fuelUsed };
  })();
  return reference;
}
const referenceOutput = async (): Promise<bigint[]> => (await referenceRun()).out;

describe('thread snapshots', () => {
  it('the reference run of the deterministic program prints a long sequence', async () => {
    const out = await referenceOutput();
    expect(out.length).toBeGreaterThan(300);
    // the last value is the shadow stack pointer: balanced back to its start
    expect(out.at(-1)).not.toBe(0n);
  });

  it('property: snapshot at random preemption points and host calls, restore in a fresh instance, same output', async () => {
    const rw = await progModule();
    const { out: expected, fuel } = await referenceRun();
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            fuel: fc.integer({ min: 1, max: 4000 }), // the whole run passes ~25 000 preemption points
            snapshot: fc.constantFrom('none', 'none', 'value', 'bytes'),
            beforeSettle: fc.boolean(),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        fc.integer({ min: 0, max: 0x7fffffff }),
        fc.boolean(),
        // where the Asyncify buffer is borrowed: the default (whole 128 KiB memory), or 130 072
        // bytes so that the saved stack is written over the program's data at 1024
        fc.constantFrom(undefined, 130_072),
        async (steps, seed, snapshotFresh, asyncifyBufferBytes) => {
          const plan = (n: number): boolean => ((Math.imul(n + 1, 0x9e3779b1) ^ seed) >>> 0) % 5 === 0;
          const options = asyncifyBufferBytes ? { asyncifyBufferBytes } : {};
          let host = new ProgHost(plan);
          let t = await WasmThread.create(rw, [host], options);
          const reincarnate = async (how: 'value' | 'bytes'): Promise<void> => {
            let s: ThreadSnapshot = t.snapshot();
            if (how === 'bytes') s = decodeSnapshot(encodeSnapshot(s));
            host = new ProgHost(plan);
            t = await WasmThread.restore(rw, s, [host], options);
          };
          if (snapshotFresh) await reincarnate('bytes');
          for (let i = 0; ; i++) {
            const step = steps[i % steps.length]!;
            const r = t.run({ fuel: step.fuel });
            if (r.state === 'exited' || r.state === 'trapped') {
              expect(r).toEqual({ state: 'exited', code: 0 });
              break;
            }
            if (r.state === 'blocked' && !step.beforeSettle) await r.until;
            if (step.snapshot !== 'none') await reincarnate(step.snapshot);
            if (r.state === 'blocked' && t.state === 'WAITING') {
              const again = t.run(); // a restored blocked thread re-issues its call here
              if (again.state === 'blocked') await again.until;
            }
          }
          expect(host.out).toEqual(expected);
          expect(t.fuelUsed).toBe(fuel); // exact accounting, however the run was cut
        },
      ),
      { numRuns: 40 },
    );
  }, 120_000);

  it('a snapshot is a fork: the original and the copy both finish with the same output', async () => {
    const rw = await progModule();
    const expected = await referenceOutput();
    const host = new ProgHost(never);
    const t = await WasmThread.create(rw, [host]);
    for (let i = 0; i < 5; i++) expect(t.run({ fuel: 3777 }).state).toBe('yielded');
    const s = t.snapshot();
    const copyHost = new ProgHost(never);
    const copy = await WasmThread.restore(rw, decodeSnapshot(encodeSnapshot(s)), [copyHost]);
    expect(await finish(t)).toEqual({ state: 'exited', code: 0 });
    expect(await finish(copy, { fuel: 1000 })).toEqual({ state: 'exited', code: 0 });
    expect(host.out).toEqual(expected);
    expect(copyHost.out).toEqual(expected);
    expect(copy.fuelUsed).toBe(t.fuelUsed);
  });

  it('restores a blocked thread by re-issuing its pending host call', async () => {
    const rw = await progModule();
    const host = new ProgHost(() => true); // everything blocks
    const t = await WasmThread.create(rw, [host]);
    const r = t.run();
    expect(r.state).toBe('blocked');
    expect(t.waitingOn).toEqual({ module: 'env', name: 'get', args: [0] });
    const s = t.snapshot();
    expect(s.status).toBe('blocked');
    expect(s.pending).toEqual({ module: 'env', name: 'get', args: [0] });
    const issued: number[] = [];
    const copyHost = new ProgHost(never);
    const fns = copyHost.functions();
    const spy: HostModule = {
      name: 'env',
      functions: () => ({
        ...fns,
        get: (i) => {
          issued.push(Number(i));
          return fns.get!(i);
        },
      }),
      snapshot: () => copyHost.snapshot(),
      restore: (st) => copyHost.restore(st),
    };
    const copy = await WasmThread.restore(rw, s, [spy]);
    expect(copy.state).toBe('READY');
    expect(issued).toEqual([]); // nothing runs before run()
    expect(await finish(copy)).toEqual({ state: 'exited', code: 0 });
    expect(issued[0]).toBe(0);
    expect(copyHost.out).toEqual(await referenceOutput());
  });

  it('keeps the settled result of a blocked call in the snapshot (no re-issue)', async () => {
    const rw = await progModule();
    const t = await WasmThread.create(rw, [new ProgHost((n) => n === 0)]);
    const r = t.run();
    expect(r.state).toBe('blocked');
    if (r.state === 'blocked') await r.until;
    expect(t.state).toBe('READY');
    const s = decodeSnapshot(encodeSnapshot(t.snapshot()));
    expect(s.pending).toEqual({ module: 'env', name: 'get', args: [0], settled: { ok: true, value: answer(0) } });
    let reissued = false;
    const host = new ProgHost(never);
    const fns = host.functions();
    const copy = await WasmThread.restore(rw, s, [
      {
        name: 'env',
        functions: () => ({
          ...fns,
          get: (i) => {
            if (Number(i) === 0) reissued = true;
            return fns.get!(i);
          },
        }),
        snapshot: () => host.snapshot(),
        restore: (st) => host.restore(st),
      },
    ]);
    expect(await finish(copy)).toEqual({ state: 'exited', code: 0 });
    expect(reissued).toBe(false);
    expect(host.out).toEqual(await referenceOutput());
  });

  it('Fork On Wait: a blocked snapshot resumes with a supplied (predicted) result', async () => {
    const rw = await rewriteModule(fixture('block.wat'));
    const env = (got: (number | bigint)[], read: HostFunction): HostModule => ({
      name: 'env',
      functions: () => ({ read, read64: () => 0n, write: (v) => void got.push(v), write64: () => {} }),
      snapshot: () => null,
      restore: () => {},
    });
    const real: (number | bigint)[] = [];
    const t = await WasmThread.create(rw, [env(real, () => new Promise((res) => setTimeout(() => res(5), 1)))]);
    expect(t.run().state).toBe('blocked');
    const s = t.snapshot();
    const guessed: (number | bigint)[] = [];
    const speculative = await WasmThread.restore(rw, s, [env(guessed, () => 1)], { resumeWith: { ok: true, value: 99 } });
    expect(await finish(speculative)).toEqual({ state: 'exited', code: 0 });
    expect(guessed).toEqual([100, 2, 2]);
    expect(await finish(t)).toEqual({ state: 'exited', code: 0 });
    expect(real).toEqual([6, 6, 6]);
  });

  it('refuses a supplied result for a snapshot that is not blocked', async () => {
    const rw = await progModule();
    const t = await WasmThread.create(rw, [new ProgHost(never)]);
    expect(t.run({ fuel: 10 })).toEqual({ state: 'yielded' });
    await expect(
      WasmThread.restore(rw, t.snapshot(), [new ProgHost(never)], { resumeWith: { ok: true, value: 1 } }),
    ).rejects.toThrow('resumeWith is for a snapshot blocked in a host call, this one is yielded');
  });

  it('leaves zero memory out of the image', async () => {
    const rw = await progModule();
    const t = await WasmThread.create(rw, [new ProgHost(never)]);
    t.run({ fuel: 5000 });
    const s = t.snapshot();
    expect(s.memory.pages).toBe(2);
    expect(memoryImageBytes(s.memory)).toBeLessThanOrEqual(2 * 4096); // the table at 1024 and the shadow stack top
    expect(Object.keys(s.globals).sort()).toEqual(['__stack_pointer', 'acc', 'calls', 'f'].sort());
    expect(typeof s.globals.acc).toBe('bigint');
    expect(s.asyncify!.length).toBeGreaterThan(0);
  });

  it('refuses snapshots while running or after exit', async () => {
    const rw = await rewriteModule(fixture('block.wat'));
    let thread: WasmThread | undefined;
    let inside: unknown;
    const env: HostModule = {
      name: 'env',
      functions: () => ({
        read: () => {
          try {
            thread!.snapshot();
          } catch (e) {
            inside = e;
          }
          return 1;
        },
        read64: () => 0n,
        write: () => {},
        write64: () => {},
      }),
      snapshot: () => null,
      restore: () => {},
    };
    thread = await WasmThread.create(rw, [env]);
    expect(thread.run()).toEqual({ state: 'exited', code: 0 });
    expect(inside).toBeInstanceOf(ThreadStateError);
    expect(() => thread!.snapshot()).toThrow('cannot snapshot a thread that has exited');
  });
});

describe('snapshot encoding', () => {
  async function sample(): Promise<{ rw: RewrittenModule; s: ThreadSnapshot; bytes: Uint8Array }> {
    const rw = await progModule();
    const t = await WasmThread.create(rw, [new ProgHost(never)]);
    t.run({ fuel: 3000 });
    const s = t.snapshot();
    return { rw, s, bytes: encodeSnapshot(s) };
  }

  it('round-trips exactly', async () => {
    const { s, bytes } = await sample();
    expect(decodeSnapshot(bytes)).toEqual(s);
    expect(new TextDecoder().decode(bytes.subarray(0, 7))).toBe('LSHSNAP');
  });

  it('refuses truncated, corrupt, foreign and future snapshots with clear errors', async () => {
    const { bytes } = await sample();
    expect(() => decodeSnapshot(bytes.subarray(0, 20))).toThrow(/truncated/);
    expect(() => decodeSnapshot(bytes.subarray(0, bytes.length - 1))).toThrow('snapshot is corrupt or truncated (checksum mismatch)');
    const flipped = bytes.slice();
    flipped[flipped.length - 100]! ^= 0x40;
    expect(() => decodeSnapshot(flipped)).toThrow(/checksum mismatch/);
    const foreign = bytes.slice();
    foreign[0] = 0x7b;
    expect(() => decodeSnapshot(foreign)).toThrow('not an LSHAPES thread snapshot (bad magic)');
    const future = bytes.slice();
    future[8] = 2;
    expect(() => decodeSnapshot(future)).toThrow('unsupported snapshot format version 2');
    expect(() => decodeSnapshot(new Uint8Array(0))).toThrow(SnapshotError);
  });

  it('refuses a well-formed payload with missing pieces', async () => {
    const { s } = await sample();
    expect(() => encodeSnapshot({ ...s, moduleHash: 'nope' })).toThrow(/moduleHash/);
    expect(() => encodeSnapshot({ ...s, status: 'yielded', asyncify: null })).toThrow(/no Asyncify stack data/);
    expect(() => encodeSnapshot({ ...s, entryIndex: 5 })).toThrow(/entryIndex/);
  });

  it('refuses to restore a snapshot of another program', async () => {
    const { s } = await sample();
    const other = await rewriteModule(fixture('busy.wat'));
    await expect(WasmThread.restore(other, s, [])).rejects.toThrow(/snapshot belongs to another program/);
  });

  it('refuses host state for a host module that is not provided', async () => {
    const { rw, s } = await sample();
    await expect(WasmThread.restore(rw, s, [])).rejects.toThrow('snapshot has state for host module "env", which was not provided');
  });
});
