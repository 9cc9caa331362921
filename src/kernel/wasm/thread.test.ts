import { describe, expect, it } from 'vitest';
import { ProcessExit, type HostFunction, type HostModule } from './host-calls.ts';
import { WasmLinkError } from './errors.ts';
import { fixture, wat } from './fixtures/load.ts';
import { rewriteModule } from './rewrite.ts';
import { WasmThread, type RunResult } from './thread.ts';

/** A stateless host module from a table of functions. */
function hostModule(name: string, fns: Record<string, HostFunction>): HostModule {
  return { name, functions: () => fns, snapshot: () => null, restore: () => {} };
}

function busyEnv(limit: number, log: number[]): HostModule {
  return hostModule('env', {
    limit: () => limit,
    progress: (n) => {
      log.push(Number(n));
    },
  });
}

/** Runs a thread to the end, awaiting blocked calls, with the given slice. */
async function drive(t: WasmThread, slice = {}): Promise<{ result: RunResult; yields: number; blocks: number }> {
  let yields = 0;
  let blocks = 0;
  for (;;) {
    const r = t.run(slice);
    if (r.state === 'yielded') yields++;
    else if (r.state === 'blocked') {
      blocks++;
      expect(t.state).toBe('WAITING');
      await r.until;
      expect(t.state).toBe('READY');
    } else return { result: r, yields, blocks };
  }
}

describe('WasmThread: preemption', () => {
  it('pauses a busy loop at a preemption point and resumes it where it was', async () => {
    const rw = await rewriteModule(fixture('busy.wat'));
    const log: number[] = [];
    const t = await WasmThread.create(rw, [busyEnv(10_000, log)]);
    expect(t.state).toBe('READY');
    const first = t.run({ fuel: 2500 });
    expect(first).toEqual({ state: 'yielded' });
    expect(t.state).toBe('READY');
    expect(log).toEqual([1000, 2000]); // stopped in the middle of the loop
    const { result, yields } = await drive(t, { fuel: 2500 });
    expect(result).toEqual({ state: 'exited', code: 0 });
    expect(yields).toBe(3);
    expect(log).toEqual([1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10_000, 10_000]);
    expect(t.state).toBe('EXITED');
    expect(t.fuelUsed).toBe(10_001); // one preemption point per loop iteration
    expect(t.run()).toEqual({ state: 'exited', code: 0 }); // idempotent once exited
  });

  it('interleaves two busy threads round-robin: both make progress', async () => {
    const rw = await rewriteModule(fixture('busy.wat'));
    const trace: string[] = [];
    const mk = (id: string, limit: number) =>
      WasmThread.create(rw, [
        hostModule('env', {
          limit: () => limit,
          progress: (n) => {
            trace.push(`${id}${n}`);
          },
        }),
      ]);
    const ready = [await mk('a', 6000), await mk('b', 4000)];
    const ends: string[] = [];
    while (ready.length) {
      const t = ready.shift()!;
      const r = t.run({ fuel: 1500 });
      if (r.state === 'yielded') ready.push(t);
      else ends.push(JSON.stringify(r));
    }
    expect(ends).toEqual(['{"state":"exited","code":0}', '{"state":"exited","code":0}']);
    // a strict alternation of slices: b finishes while a is still running
    // (a slice passes exactly 1500 loop headers: the k-th ends with the counter at 1500k)
    expect(trace).toEqual(['a1000', 'b1000', 'a2000', 'a3000', 'b2000', 'b3000', 'a4000', 'b4000', 'b4000', 'a5000', 'a6000', 'a6000']);
  });

  it('yields after a time slice measured on the injected clock', async () => {
    const rw = await rewriteModule(fixture('busy.wat'));
    let now = 0;
    const log: number[] = [];
    const clock = { now: () => (now += 1) }; // every reading advances 1 ms
    const t = await WasmThread.create(rw, [busyEnv(1_000_000, log)], { clock, checkInterval: 100 });
    expect(t.run({ ms: 5 })).toEqual({ state: 'yielded' });
    // start reading + 5 readings at 100 points each
    expect(t.fuelUsed).toBe(500);
    const { result } = await drive(t, { ms: 1000 });
    expect(result).toEqual({ state: 'exited', code: 0 });
    expect(log.at(-1)).toBe(1_000_000);
  });

  it('preempts loop-free recursion when function entries are preemption points', async () => {
    const src = `(module
      (import "env" "out" (func $out (param i32)))
      (func $fib (param i32) (result i32)
        (if (result i32) (i32.lt_u (local.get 0) (i32.const 2)) (then (local.get 0))
          (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1))) (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
      (func (export "_start") (call $out (call $fib (i32.const 20)))))`;
    const out: number[] = [];
    const env = hostModule('env', { out: (v) => void out.push(Number(v)) });
    const plain = await rewriteModule(wat(src));
    const t1 = await WasmThread.create(plain, [env]);
    expect(t1.run({ fuel: 100 })).toEqual({ state: 'exited', code: 0 }); // no loop: never preempted
    const entry = await rewriteModule(wat(src), { preemptAtFunctionEntry: true });
    expect(entry.runtime.preemptAtFunctionEntry).toBe(true);
    const t2 = await WasmThread.create(entry, [env]);
    const { result, yields } = await drive(t2, { fuel: 1000 });
    expect(result).toEqual({ state: 'exited', code: 0 });
    expect(yields).toBeGreaterThan(20); // fib(20) makes 21891 calls
    expect(out).toEqual([6765, 6765]);
  });
});

describe('WasmThread: blocking host calls', () => {
  it('blocks on a host call returning a Promise and continues with its value', async () => {
    const rw = await rewriteModule(fixture('block.wat'));
    const got: (number | bigint)[] = [];
    const env = hostModule('env', {
      read: (i) => new Promise((res) => setTimeout(() => res(Number(i) * 10), 2)),
      read64: () => Promise.resolve(1n << 40n),
      write: (v) => void got.push(v),
      write64: (v) => void got.push(v),
    });
    const t = await WasmThread.create(rw, [env]);
    const r = t.run();
    expect(r.state).toBe('blocked');
    expect(t.waitingOn).toEqual({ module: 'env', name: 'read', args: [0] });
    expect(t.run().state).toBe('blocked'); // polling a WAITING thread is harmless
    const { result, blocks } = await drive(t);
    expect(result).toEqual({ state: 'exited', code: 0 });
    expect(blocks).toBe(4);
    expect(got).toEqual([1, 11, 21, (1n << 40n) + 1n]);
  });

  it('mixes synchronous and asynchronous answers, converting result types', async () => {
    const rw = await rewriteModule(fixture('block.wat'));
    const got: (number | bigint)[] = [];
    const env = hostModule('env', {
      read: (i) => (Number(i) === 1 ? Promise.resolve(100n) : 7), // bigint for an i32 result
      read64: () => 41, // a number for an i64 result
      write: (v) => void got.push(v),
      write64: (v) => void got.push(v),
    });
    const t = await WasmThread.create(rw, [env]);
    const { result, blocks } = await drive(t);
    expect(result).toEqual({ state: 'exited', code: 0 });
    expect(blocks).toBe(1);
    expect(got).toEqual([8, 101, 8, 42n]);
  });

  it('ends the thread with the code of a ProcessExit, thrown or as a rejection', async () => {
    const rw = await rewriteModule(fixture('block.wat'));
    const sync = await WasmThread.create(rw, [
      hostModule('env', {
        read: () => {
          throw new ProcessExit(3);
        },
        read64: () => 0,
        write: () => {},
        write64: () => {},
      }),
    ]);
    expect(sync.run()).toEqual({ state: 'exited', code: 3 });
    expect(sync.exit).toEqual({ kind: 'exit', code: 3 });
    const later = await WasmThread.create(rw, [
      hostModule('env', { read: () => Promise.reject(new ProcessExit(4)), read64: () => 0, write: () => {}, write64: () => {} }),
    ]);
    const { result } = await drive(later);
    expect(result).toEqual({ state: 'exited', code: 4 });
  });

  it('traps with the host call named when a host function fails', async () => {
    const rw = await rewriteModule(fixture('block.wat'));
    const t = await WasmThread.create(rw, [
      hostModule('env', { read: () => Promise.reject(new Error('disk on fire')), read64: () => 0, write: () => {}, write64: () => {} }),
    ]);
    const { result } = await drive(t);
    expect(result).toEqual({ state: 'trapped', message: 'host call env.read failed: disk on fire' });
  });
});

describe('WasmThread: scheduling', () => {
  it('a round-robin scheduler runs a busy thread while another waits on a host call', async () => {
    const busy = await rewriteModule(fixture('busy.wat'));
    const block = await rewriteModule(fixture('block.wat'));
    const events: string[] = [];
    let release: (v: number) => void = () => {};
    const reader = await WasmThread.create(block, [
      hostModule('env', {
        read: (i) => (Number(i) === 1 ? new Promise<number>((res) => (release = res)) : 0),
        read64: () => 0n,
        write: (v) => void events.push(`write ${v}`),
        write64: () => {},
      }),
    ]);
    const worker = await WasmThread.create(busy, [
      hostModule('env', { limit: () => 5000, progress: (n) => void events.push(`progress ${n}`) }),
    ]);
    const ready: WasmThread[] = [reader, worker];
    const done: RunResult[] = [];
    let live = 2;
    while (live > 0) {
      const t = ready.shift();
      if (!t) {
        // nothing runnable: the reader is WAITING; let its host call answer now
        expect(reader.state).toBe('WAITING');
        release(41);
        await new Promise((r) => setTimeout(r, 0));
        continue;
      }
      const r = t.run({ fuel: 1000 });
      if (r.state === 'yielded') ready.push(t);
      else if (r.state === 'blocked') void r.until.then(() => ready.push(t));
      else {
        done.push(r);
        live--;
      }
    }
    expect(done).toEqual([
      { state: 'exited', code: 0 },
      { state: 'exited', code: 0 },
    ]);
    // the worker finished all its slices while the reader was blocked on its second read
    expect(events.indexOf('progress 5000')).toBeLessThan(events.indexOf('write 42'));
    expect(events.filter((e) => e.startsWith('write'))).toEqual(['write 1', 'write 42', 'write 1']);
  });

  it('terminate() ends a waiting thread; its late answer is ignored', async () => {
    const rw = await rewriteModule(fixture('block.wat'));
    let answer: (v: number) => void = () => {};
    const t = await WasmThread.create(rw, [
      hostModule('env', { read: () => new Promise<number>((res) => (answer = res)), read64: () => 0n, write: () => {}, write64: () => {} }),
    ]);
    const r = t.run();
    expect(r.state).toBe('blocked');
    expect(t.terminate(143)).toEqual({ state: 'exited', code: 143 });
    expect(t.state).toBe('EXITED');
    answer(1);
    if (r.state === 'blocked') await r.until;
    expect(t.state).toBe('EXITED');
    expect(t.run()).toEqual({ state: 'exited', code: 143 });
    expect(() => t.snapshot()).toThrow(/exited/);
  });
});

describe('WasmThread: traps', () => {
  const cases: [string, RegExp][] = [
    ['unreachable', /^trap: unreachable instruction executed/],
    ['oob', /^trap: out-of-bounds memory access/],
    ['div0', /^trap: integer divide by zero/],
    ['overflow', /^trap: integer overflow/],
    ['stack', /^trap: stack overflow \(call stack exhausted\)/],
    ['badindex', /^trap: indirect call through an invalid table index/],
    ['nullentry', /^trap: indirect call (through an invalid table index|signature mismatch)/],
    ['sigmismatch', /^trap: indirect call signature mismatch/],
    ['fptoint', /^trap: invalid conversion from float to integer/],
  ];
  it.each(cases)('%s gives a clear message', async (entry, message) => {
    const rw = await rewriteModule(fixture('traps.wat'));
    const t = await WasmThread.create(rw, [hostModule('env', { exit: () => {} })], { entry });
    const r = t.run({ fuel: 1_000_000 });
    expect(r.state).toBe('trapped');
    expect(r.state === 'trapped' && r.message).toMatch(message);
    expect(t.state).toBe('EXITED');
    expect(t.exit?.kind).toBe('trap');
  });

  it('names the wasm function that trapped', async () => {
    // (without the optimizer, which would inline $inner into its caller)
    const rw = await rewriteModule(
      wat(`(module (func $inner (unreachable)) (func $outer (call $inner)) (func (export "_start") (call $outer)))`),
      { optimizeLevel: 0 },
    );
    const t = await WasmThread.create(rw, []);
    expect(t.run()).toEqual({ state: 'trapped', message: 'trap: unreachable instruction executed (in function inner)' });
  });

  it('proc_exit-style exit from a host function ends with its code', async () => {
    const rw = await rewriteModule(fixture('traps.wat'));
    const env = hostModule('env', {
      exit: (c) => {
        throw new ProcessExit(Number(c));
      },
    });
    const t = await WasmThread.create(rw, [env], { entry: 'exit7' });
    expect(t.run()).toEqual({ state: 'exited', code: 7 });
  });

  it('explains an Asyncify buffer too small for the stack being saved', async () => {
    // recursion 2000 deep, yielding at the bottom: far more than 4 KiB of saved locals
    const src = `(module (memory 16)
      (func $down (param i32) (param i64) (param i64) (param i64) (result i64)
        (local $l i32)
        (if (result i64) (i32.eqz (local.get 0))
          (then (loop $spin (local.set $l (i32.add (local.get $l) (i32.const 1))) (br_if $spin (i32.lt_u (local.get $l) (i32.const 10)))) (i64.const 0))
          (else (i64.add (call $down (i32.sub (local.get 0) (i32.const 1)) (local.get 1) (local.get 2) (local.get 3)) (local.get 1)))))
      (func (export "_start") (drop (call $down (i32.const 2000) (i64.const 1) (i64.const 2) (i64.const 3)))))`;
    const rw = await rewriteModule(wat(src));
    const t = await WasmThread.create(rw, [], { asyncifyBufferBytes: 4096 });
    const r = t.run({ fuel: 3 });
    expect(r.state).toBe('trapped');
    expect(r.state === 'trapped' && r.message).toMatch(/needs more than the 4096 bytes of Asyncify buffer/);
    // with the default buffer the same program yields and finishes
    const ok = await WasmThread.create(rw, []);
    expect(ok.run({ fuel: 3 })).toEqual({ state: 'yielded' });
    expect((await drive(ok)).result).toEqual({ state: 'exited', code: 0 });
  });
});

describe('WasmThread: linking', () => {
  it('refuses at instantiate a program importing something no host provides, naming it', async () => {
    const rw = await rewriteModule(
      wat(`(module (import "env" "print" (func (param i32))) (import "lshapes" "spawn" (func (result i32))) (func (export "_start")))`),
    );
    const env = hostModule('env', { print: () => {} });
    await expect(WasmThread.create(rw, [env])).rejects.toThrow(
      'missing import "lshapes.spawn": no host module "lshapes" is provided (provided: env)',
    );
    await expect(WasmThread.create(rw, [hostModule('env', {}), hostModule('lshapes', { spawn: () => 1 })])).rejects.toThrow(
      'missing import "env.print": host module "env" has no function "print"',
    );
    const err = await WasmThread.create(rw, [env]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WasmLinkError);
    expect((err as WasmLinkError).importModule).toBe('lshapes');
    expect((err as WasmLinkError).importName).toBe('spawn');
  });

  it("with missingImports: 'trap', a missing import traps only when called", async () => {
    const rw = await rewriteModule(wat(`(module (import "lshapes" "spawn" (func (result i32))) (func (export "_start") (drop (call 0))))`));
    const t = await WasmThread.create(rw, [], { missingImports: 'trap' });
    const r = t.run();
    expect(r.state === 'trapped' && r.message).toMatch(/host call lshapes.spawn failed: missing import: no host module "lshapes"/);
  });

  it('refuses an entry the program does not export', async () => {
    const rw = await rewriteModule(fixture('busy.wat'));
    await expect(WasmThread.create(rw, [busyEnv(1, [])], { entry: 'main' })).rejects.toThrow(
      'the program exports no function "main" to run (it exports: _start)',
    );
  });

  it('runs the wasm start function first (moved out of instantiation)', async () => {
    const out: number[] = [];
    const src = `(module (import "env" "out" (func $out (param i32)))
      (global $g (mut i32) (i32.const 1))
      (func $init (global.set $g (i32.const 42)) (call $out (i32.const 1)))
      (start $init)
      (func (export "_start") (call $out (global.get $g))))`;
    const rw = await rewriteModule(wat(src));
    const t = await WasmThread.create(rw, [hostModule('env', { out: (v) => void out.push(Number(v)) })]);
    expect(out).toEqual([]); // instantiating ran nothing
    expect(t.run()).toEqual({ state: 'exited', code: 0 });
    expect(out).toEqual([1, 42]);
  });

  it('provides an imported memory', async () => {
    const out: number[] = [];
    const src = `(module (import "env" "memory" (memory 2 10)) (import "env" "out" (func $out (param i32)))
      (func (export "_start") (i32.store (i32.const 70000) (i32.const 9)) (call $out (i32.add (memory.size) (i32.load (i32.const 70000))))))`;
    const rw = await rewriteModule(wat(src));
    expect(rw.runtime.memoryImport).toEqual({ module: 'env', name: 'memory', initialPages: 2, maximumPages: 10 });
    const t = await WasmThread.create(rw, [hostModule('env', { out: (v) => void out.push(Number(v)) })]);
    expect(t.run()).toEqual({ state: 'exited', code: 0 });
    expect(out).toEqual([11]);
  });
});
