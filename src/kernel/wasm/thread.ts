// One WebAssembly thread: an instance of a rewritten module (rewrite.ts) driven by Asyncify.
//
// How a scheduler drives threads (all on one JS thread, no workers needed):
//
//   const t = await WasmThread.create(rewritten, hostModules);
//   ready.push(t);
//   while (ready.length) {
//     const t = ready.shift()!;
//     const r = t.run({ ms: 10 });           // or { fuel: n } for deterministic slices
//     switch (r.state) {
//       case 'yielded': ready.push(t); break;                    // slice used up: READY again
//       case 'blocked': r.until.then(() => ready.push(t)); break; // WAITING on a host Promise
//       case 'exited':  /* r.code */ break;
//       case 'trapped': /* r.message */ break;
//     }
//   }
//
// `run()` is synchronous: it runs wasm until the thread exits, traps, uses up its slice (it
// then unwinds at the next preemption point: 'yielded'), or a host call returns a Promise (it
// unwinds: 'blocked'; `until` resolves, never rejects, once the Promise settled and the thread is
// READY again). Calling run() on a WAITING thread just returns the same 'blocked' result, so a
// scheduler may also simply poll. The thread rewinds and continues where it stopped on the next
// run(); a host call's settled value (or rejection) is delivered then.
//
// snapshot() is allowed whenever the thread is not RUNNING or EXITED: fresh, yielded, or blocked
// (before or after its Promise settled). WasmThread.restore() builds a new instance from one and
// resumes at the same point; a blocked snapshot re-issues its pending host call on the first
// run() (unless the call had already settled, or the restorer supplies a result: Fork On Wait).

import { ProcessExit, type HostFunction, type HostModule, type HostResult, type MemoryAccess } from './host-calls.ts';
import { HostCallError, SnapshotError, ThreadStateError, WasmLinkError, describe } from './errors.ts';
import {
  applyMemory,
  captureMemory,
  validateSnapshot,
  type PendingCall,
  type SettledCall,
  type ThreadSnapshot,
} from './snapshot.ts';
import { ASYNCIFY_EXPORTS, RUNTIME_ABI, type ImportInfo, type RewrittenModule, type ValType } from './types.ts';

export type ThreadState = 'READY' | 'RUNNING' | 'WAITING' | 'EXITED';

export type RunResult =
  | { readonly state: 'yielded' }
  | { readonly state: 'blocked'; readonly until: Promise<void> }
  | { readonly state: 'exited'; readonly code: number }
  | { readonly state: 'trapped'; readonly message: string };

/** How long run() may go before yielding; without either limit it runs until exit or block. */
export interface Slice {
  /** Preemption points (loop iterations) to pass; deterministic. */
  fuel?: number;
  /** Milliseconds of the injected clock; checked every `checkInterval` preemption points. */
  ms?: number;
}

export interface ThreadOptions {
  /** The export to run (default `_start`, the WASI command entry). */
  entry?: string;
  /** Clock for `ms` slices (default performance.now). The kernel passes its injected Clock. */
  clock?: { now(): number };
  /** Preemption points between two clock readings in `ms` slices (default 10 000). */
  checkInterval?: number;
  /** Bytes of linear memory borrowed for the Asyncify stack while unwinding (default 256 KiB). */
  asyncifyBufferBytes?: number;
  /** 'error' (default): a missing import fails instantiation; 'trap': it traps when called. */
  missingImports?: 'error' | 'trap';
}

export interface RestoreOptions extends ThreadOptions {
  /** For a blocked snapshot: resume with this result instead of re-issuing the call. */
  resumeWith?: SettledCall;
}

export type ThreadExit = { kind: 'exit'; code: number } | { kind: 'trap'; message: string };

interface AsyncifyExports {
  startUnwind(ptr: number): void;
  stopUnwind(): void;
  startRewind(ptr: number): void;
  stopRewind(): void;
}

type Entry = () => unknown;

/** The internal record of a call the thread is blocked in. */
interface Blocked {
  kind: 'host';
  key: string;
  imp: ImportInfo;
  fn: HostFunction;
  args: (number | bigint)[];
  settled: SettledCall | null;
  /** Not issued yet (restored from a snapshot): run() issues it. */
  reissue: boolean;
}

const MAX_FUEL = 0x7fffffff;
const DEFAULT_CHECK_INTERVAL = 10_000;
const DEFAULT_ASYNCIFY_BYTES = 256 * 1024;

/**
 * What a borrowed region held. One buffer for all threads: a region is borrowed and given back
 * within one synchronous unwind or rewind, so two threads never hold one at the same time.
 */
let scratch = new Uint8Array(0);

const defaultClock = {
  now: (): number => (globalThis.performance ? globalThis.performance.now() : Date.now()),
};

export class WasmThread {
  private _state: ThreadState = 'READY';
  private _exit: ThreadExit | null = null;
  private _fuelUsed = 0;

  private instance!: WebAssembly.Instance;
  private _memory!: WebAssembly.Memory;
  private asyncify!: AsyncifyExports;
  private fuel!: WebAssembly.Global;
  private globals = new Map<string, WebAssembly.Global>();
  private entries: string[];
  private entryIndex = 0;

  private readonly clock: { now(): number };
  private readonly checkInterval: number;
  private readonly asyncifyBytes: number;

  // slice accounting
  private fuelSet = 0;
  private sliceLeft = Infinity;
  private deadline = Infinity;

  // unwind / rewind
  private status: 'fresh' | 'yielded' | 'blocked' = 'fresh';
  private unwound: Uint8Array | null = null;
  private unwinding: 'yield' | 'block' | null = null;
  private rewinding = false;
  /** The borrowed region: where it starts and its size; what it held is in `scratch`. */
  private borrowed: { base: number; size: number } | null = null;
  private blocked: Blocked | null = null;
  private until: Promise<void> | null = null;

  private constructor(
    readonly rewritten: RewrittenModule,
    private readonly hostModules: readonly HostModule[],
    options: ThreadOptions,
  ) {
    this.clock = options.clock ?? defaultClock;
    this.checkInterval = Math.max(1, Math.floor(options.checkInterval ?? DEFAULT_CHECK_INTERVAL));
    this.asyncifyBytes = Math.max(4096, Math.floor(options.asyncifyBufferBytes ?? DEFAULT_ASYNCIFY_BYTES));
    const entry = options.entry ?? '_start';
    this.entries = rewritten.runtime.startExport ? [rewritten.runtime.startExport, entry] : [entry];
  }

  /** Instantiates the module with the host modules; fails with WasmLinkError on a missing import. */
  static async create(rewritten: RewrittenModule, hostModules: readonly HostModule[], options: ThreadOptions = {}): Promise<WasmThread> {
    const t = new WasmThread(rewritten, hostModules, options);
    await t.instantiate(options);
    return t;
  }

  /** A new instance in the snapshot's state; it resumes at the same point on run(). */
  static async restore(
    rewritten: RewrittenModule,
    snapshot: ThreadSnapshot,
    hostModules: readonly HostModule[],
    options: RestoreOptions = {},
  ): Promise<WasmThread> {
    validateSnapshot(snapshot);
    if (snapshot.moduleHash !== rewritten.hash) {
      throw new SnapshotError(
        `snapshot belongs to another program (module ${snapshot.moduleHash.slice(0, 12)}…, not ${rewritten.hash.slice(0, 12)}…)`,
      );
    }
    if (snapshot.abi !== rewritten.runtime.abi || snapshot.abi !== RUNTIME_ABI) {
      throw new SnapshotError(`snapshot was taken with runtime ABI ${snapshot.abi}, this module uses ${rewritten.runtime.abi}`);
    }
    const t = new WasmThread(rewritten, hostModules, options);
    if (snapshot.entries.join('\n') !== t.entries.join('\n')) {
      throw new SnapshotError(`snapshot runs ${snapshot.entries.join(', ')}, not ${t.entries.join(', ')} (entry option differs)`);
    }
    const provided = new Set(hostModules.map((h) => h.name));
    for (const name of Object.keys(snapshot.hostState)) {
      if (!provided.has(name)) throw new SnapshotError(`snapshot has state for host module "${name}", which was not provided`);
    }
    await t.instantiate(options);

    for (const hm of hostModules) {
      if (Object.hasOwn(snapshot.hostState, hm.name)) hm.restore(snapshot.hostState[hm.name]);
    }

    applyMemory(t._memory, snapshot.memory);
    for (const slot of rewritten.runtime.globals) {
      if (!Object.hasOwn(snapshot.globals, slot.name)) throw new SnapshotError(`snapshot lacks the value of global "${slot.name}"`);
      const v = snapshot.globals[slot.name]!;
      const g = t.globals.get(slot.name)!;
      g.value = slot.type === 'i64' ? BigInt(v) : Number(v);
    }
    t.entryIndex = snapshot.entryIndex;
    t.status = snapshot.status;
    t.unwound = snapshot.asyncify ? snapshot.asyncify.slice() : null;
    t._fuelUsed = snapshot.fuelUsed;
    if (options.resumeWith && snapshot.status !== 'blocked') {
      throw new SnapshotError(`resumeWith is for a snapshot blocked in a host call, this one is ${snapshot.status}`);
    }
    if (snapshot.status === 'blocked') {
      const p = snapshot.pending!;
      const key = `${p.module}\u0000${p.name}`;
      const bound = t.bound.get(key);
      if (!bound) throw new SnapshotError(`snapshot is blocked in ${p.module}.${p.name}, which this module does not import`);
      const settled = options.resumeWith ?? p.settled ?? null;
      t.blocked = { kind: 'host', key, imp: bound.imp, fn: bound.fn, args: p.args.slice(), settled, reissue: settled === null };
    }
    return t;
  }

  // ------------------------------------------------------------------------------------------
  // accessors

  get state(): ThreadState {
    return this._state;
  }

  /** How the thread ended (null while it has not). */
  get exit(): ThreadExit | null {
    return this._exit;
  }

  /** Preemption points passed (a CPU-use measure independent of the host's speed). */
  get fuelUsed(): number {
    return this._fuelUsed;
  }

  /** The linear memory (it changes identity after restore; host calls use MemoryAccess). */
  get memory(): WebAssembly.Memory {
    return this._memory;
  }

  /** The host call the thread is blocked in, for display. */
  get waitingOn(): { module: string; name: string; args: readonly (number | bigint)[] } | null {
    const b = this.blocked;
    return b ? { module: b.imp.module, name: b.imp.name, args: b.args } : null;
  }

  // ------------------------------------------------------------------------------------------
  // instantiation

  private bound = new Map<string, { imp: ImportInfo; fn: HostFunction }>();

  private async instantiate(options: ThreadOptions): Promise<void> {
    const rt = this.rewritten.runtime;
    const byName = new Map<string, HostModule>();
    for (const hm of this.hostModules) {
      if (byName.has(hm.name)) throw new WasmLinkError(`two host modules are named "${hm.name}"`, hm.name, '');
      byName.set(hm.name, hm);
    }
    const access: MemoryAccess = { memory: () => this._memory };
    const tables = new Map<string, Record<string, HostFunction>>();
    for (const hm of this.hostModules) tables.set(hm.name, hm.functions(access));

    const importObject: Record<string, Record<string, WebAssembly.ImportValue>> = {};
    const put = (module: string, name: string, v: WebAssembly.ImportValue): void => {
      (importObject[module] ??= {})[name] = v;
    };

    for (const imp of this.rewritten.imports) {
      const table = tables.get(imp.module);
      let fn = table && Object.hasOwn(table, imp.name) ? table[imp.name] : undefined;
      if (typeof fn !== 'function') {
        const why = table
          ? `host module "${imp.module}" has no function "${imp.name}"`
          : `no host module "${imp.module}" is provided (provided: ${[...tables.keys()].join(', ') || 'none'})`;
        if (options.missingImports !== 'trap') {
          throw new WasmLinkError(`missing import "${imp.module}.${imp.name}": ${why}`, imp.module, imp.name);
        }
        fn = () => {
          throw new Error(`missing import: ${why}`);
        };
      }
      const key = `${imp.module}\u0000${imp.name}`;
      this.bound.set(key, { imp, fn });
      put(imp.module, imp.name, this.wrapHost(key, imp, fn));
    }
    put(rt.yieldImport.module, rt.yieldImport.name, () => this.yieldCheck());

    if (rt.memoryImport) {
      const mi = rt.memoryImport;
      const desc: WebAssembly.MemoryDescriptor = { initial: mi.initialPages };
      if (mi.maximumPages !== undefined) desc.maximum = mi.maximumPages;
      put(mi.module, mi.name, new WebAssembly.Memory(desc));
    }

    try {
      this.instance = await WebAssembly.instantiate(this.rewritten.module, importObject);
    } catch (e) {
      throw new WasmLinkError(`cannot instantiate the program: ${describe(e)}`, '', '');
    }
    const ex = this.instance.exports;
    const mem = ex[rt.memoryExport];
    if (!(mem instanceof WebAssembly.Memory)) throw new WasmLinkError('internal error: the rewritten module exports no memory', '', '');
    this._memory = mem;
    const fuel = ex[rt.fuelExport];
    if (!(fuel instanceof WebAssembly.Global)) throw new WasmLinkError('internal error: no fuel global', '', '');
    this.fuel = fuel;
    for (const slot of rt.globals) {
      const g = ex[slot.exportName];
      if (!(g instanceof WebAssembly.Global)) throw new WasmLinkError(`internal error: global ${slot.name} not exported`, '', '');
      this.globals.set(slot.name, g);
    }
    const fnExport = (name: string): ((...a: number[]) => number) => {
      const f = ex[name];
      if (typeof f !== 'function') throw new WasmLinkError(`internal error: no export ${name}`, '', '');
      return f as (...a: number[]) => number;
    };
    this.asyncify = {
      startUnwind: fnExport(ASYNCIFY_EXPORTS.startUnwind),
      stopUnwind: fnExport(ASYNCIFY_EXPORTS.stopUnwind),
      startRewind: fnExport(ASYNCIFY_EXPORTS.startRewind),
      stopRewind: fnExport(ASYNCIFY_EXPORTS.stopRewind),
    };
    for (const name of this.entries) {
      if (typeof ex[name] !== 'function') {
        const fns = this.rewritten.exports.filter((e) => e.kind === 'function').map((e) => e.name);
        throw new WasmLinkError(`the program exports no function "${name}" to run (it exports: ${fns.join(', ') || 'none'})`, '', name);
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // running

  run(slice: Slice = {}): RunResult {
    switch (this._state) {
      case 'EXITED':
        return this.exitResult();
      case 'RUNNING':
        throw new ThreadStateError('run() called while the thread is running (re-entrant call from a host function?)');
      case 'WAITING':
        return { state: 'blocked', until: this.until! };
      case 'READY':
        break;
    }
    // a restored blocked thread issues its pending call again first
    const b = this.blocked;
    if (b?.reissue) {
      b.reissue = false;
      const r = this.issue(b);
      if (r) return r;
    }

    this._state = 'RUNNING';
    this.sliceLeft = slice.fuel === undefined ? Infinity : Math.max(1, Math.floor(slice.fuel));
    this.deadline = slice.ms === undefined ? Infinity : this.clock.now() + slice.ms;
    this.refill();
    try {
      for (;;) {
        const name = this.entries[this.entryIndex]!;
        const f = this.instance.exports[name] as Entry;
        if (this.unwound) this.beginRewind();
        f();
        if (this.unwinding) return this.finishUnwind();
        if (this.rewinding) throw new Error('internal error: the rewind did not reach the host call');
        if (++this.entryIndex >= this.entries.length) return this.finish({ kind: 'exit', code: 0 });
        this.status = 'fresh';
      }
    } catch (e) {
      return this.finish(this.classify(e));
    } finally {
      this.account();
      if (this._state === 'RUNNING') this._state = 'READY';
    }
  }

  /** Issues a (restored) pending host call; returns a RunResult if the thread cannot go on now. */
  private issue(b: Blocked): RunResult | null {
    let r: HostResult;
    try {
      r = b.fn(...b.args);
    } catch (e) {
      b.settled = settledError(e, b.imp);
      return null;
    }
    if (isThenable(r)) {
      this.wait(b, r);
      this._state = 'WAITING';
      return { state: 'blocked', until: this.until! };
    }
    b.settled = { ok: true, value: r as number | bigint | undefined };
    return null;
  }

  private wait(b: Blocked, p: PromiseLike<number | bigint | void>): void {
    this.until = Promise.resolve(p).then(
      (v) => {
        b.settled = { ok: true, value: v as number | bigint | undefined };
      },
      (e: unknown) => {
        b.settled = settledError(e, b.imp);
      },
    ).then(() => {
      if (this._state === 'WAITING' && this.blocked === b) this._state = 'READY';
    });
  }

  private wrapHost(key: string, imp: ImportInfo, fn: HostFunction): (...args: (number | bigint)[]) => unknown {
    const result = imp.results[0];
    return (...args) => {
      if (this.rewinding) {
        const b = this.blocked;
        if (!b || b.key !== key) throw new Error(`internal error: rewound into ${imp.module}.${imp.name}, expected another call`);
        this.endRewind();
        this.blocked = null;
        this.until = null;
        const s = b.settled!;
        if (!s.ok) {
          if ('exitCode' in s) throw new ProcessExit(s.exitCode);
          throw new HostCallError(imp.module, imp.name, new Error(s.message));
        }
        return convert(s.value, result);
      }
      let r: HostResult;
      try {
        r = fn(...args);
      } catch (e) {
        if (e instanceof ProcessExit) throw e;
        throw new HostCallError(imp.module, imp.name, e);
      }
      if (isThenable(r)) {
        const b: Blocked = { kind: 'host', key, imp, fn, args, settled: null, reissue: false };
        this.blocked = b;
        this.beginUnwind('block');
        this.wait(b, r); // the state becomes WAITING when run() returns (finishUnwind)
        return convert(undefined, result);
      }
      return convert(r, result);
    };
  }

  private yieldCheck(): void {
    if (this.rewinding) {
      this.endRewind();
      this.refill();
      return;
    }
    // A preemption point found no fuel left (the counter is back at zero; see rewrite.ts).
    const used = this.fuelSet - (this.fuel.value as number);
    this._fuelUsed += used;
    this.sliceLeft -= used;
    this.fuelSet = 0;
    this.fuel.value = 0;
    if (this.sliceLeft <= 0 || (this.deadline !== Infinity && this.clock.now() >= this.deadline)) {
      this.beginUnwind('yield');
      return;
    }
    this.refill();
  }

  private refill(): void {
    let n = this.deadline === Infinity ? MAX_FUEL : this.checkInterval;
    if (this.sliceLeft < n) n = this.sliceLeft;
    this.fuelSet = n;
    this.fuel.value = n;
  }

  private account(): void {
    if (!this.fuel) return;
    const v = this.fuel.value as number;
    this._fuelUsed += this.fuelSet - v;
    this.fuelSet = v;
  }

  // ------------------------------------------------------------------------------------------
  // Asyncify: the unwound stack lives in a region borrowed from the top of linear memory only
  // while unwinding or rewinding (no program code runs then); its previous contents are put
  // back right after, so the program never sees it and no memory is reserved from it.

  private borrow(base: number, size: number): void {
    if (scratch.length < size) scratch = new Uint8Array(size);
    scratch.set(new Uint8Array(this._memory.buffer, base, size));
    this.borrowed = { base, size };
  }

  /** Puts back the first `used` bytes of the borrowed region (Asyncify wrote nothing beyond). */
  private giveBack(used: number): void {
    const { base, size } = this.borrowed!;
    this.borrowed = null;
    new Uint8Array(this._memory.buffer).set(scratch.subarray(0, Math.min(used, size)), base);
  }

  private beginUnwind(reason: 'yield' | 'block'): void {
    const buf = this._memory.buffer;
    const size = buf.byteLength;
    const n = Math.min(this.asyncifyBytes, size) & ~7;
    if (n < 64) throw new Error('the program has no memory to save its stack in (a 0-page memory cannot be paused)');
    const base = size - n;
    this.borrow(base, n);
    const dv = new DataView(buf);
    dv.setUint32(base, base + 8, true);
    dv.setUint32(base + 4, size - 8, true);
    this.unwinding = reason;
    this.asyncify.startUnwind(base);
  }

  private finishUnwind(): RunResult {
    this.asyncify.stopUnwind();
    const reason = this.unwinding!;
    this.unwinding = null;
    const base = this.borrowed!.base;
    const cur = new DataView(this._memory.buffer).getUint32(base, true);
    this.unwound = new Uint8Array(this._memory.buffer).slice(base + 8, cur);
    this.giveBack(cur - base);
    if (reason === 'yield') {
      this.status = 'yielded';
      this._state = 'READY';
      return { state: 'yielded' };
    }
    this.status = 'blocked';
    const b = this.blocked!;
    if (b.settled) {
      // settled synchronously in the meantime (cannot happen with real Promises, but be exact)
      this._state = 'READY';
    } else {
      this._state = 'WAITING';
    }
    return { state: 'blocked', until: this.until! };
  }

  private beginRewind(): void {
    const data = this.unwound!;
    const buf = this._memory.buffer;
    const size = buf.byteLength;
    const base = (size - 16 - data.length) & ~7;
    if (base < 0) throw new Error('internal error: memory too small for the saved stack');
    const end = base + 8 + data.length;
    this.borrow(base, end - base);
    const bytes = new Uint8Array(buf);
    bytes.set(data, base + 8);
    const dv = new DataView(buf);
    dv.setUint32(base, end, true);
    dv.setUint32(base + 4, end, true);
    this.rewinding = true;
    this.asyncify.startRewind(base);
  }

  private endRewind(): void {
    this.asyncify.stopRewind();
    this.rewinding = false;
    this.giveBack(this.borrowed!.size);
    this.unwound = null;
    this.status = 'fresh';
  }

  /**
   * Ends the thread now (a kill from the kernel, e.g. a wait that timed out). Not while it is
   * RUNNING (call it between run() calls); a pending host call's result is then ignored.
   */
  terminate(code: number): RunResult {
    if (this._state === 'RUNNING') throw new ThreadStateError('cannot terminate a running thread from inside run()');
    if (this._state === 'EXITED') return this.exitResult();
    return this.finish({ kind: 'exit', code });
  }

  // ------------------------------------------------------------------------------------------
  // ending

  private finish(exit: ThreadExit): RunResult {
    this._state = 'EXITED';
    this._exit = exit;
    this.unwound = null;
    this.blocked = null;
    this.until = null;
    return this.exitResult();
  }

  private exitResult(): RunResult {
    const e = this._exit!;
    return e.kind === 'exit' ? { state: 'exited', code: e.code } : { state: 'trapped', message: e.message };
  }

  private classify(e: unknown): ThreadExit {
    if (e instanceof ProcessExit) return { kind: 'exit', code: e.code };
    const where = wasmFrame(e);
    const suffix = where ? ` (in ${where})` : '';
    if (this.rewinding) return { kind: 'trap', message: `internal error while resuming the thread: ${describe(e)}${suffix}` };
    if (this.unwinding) {
      return {
        kind: 'trap',
        message: `trap while saving the stack: it needs more than the ${this.borrowed?.size ?? this.asyncifyBytes} bytes of Asyncify buffer (raise asyncifyBufferBytes)${suffix}`,
      };
    }
    if (e instanceof HostCallError) return { kind: 'trap', message: e.message };
    if (e instanceof WebAssembly.RuntimeError) return { kind: 'trap', message: `trap: ${trapText(e.message)}${suffix}` };
    if (e instanceof RangeError && /call stack/i.test(e.message)) {
      return { kind: 'trap', message: `trap: stack overflow (call stack exhausted)${suffix}` };
    }
    return { kind: 'trap', message: `internal error while running the thread: ${describe(e)}` };
  }

  // ------------------------------------------------------------------------------------------
  // snapshots

  snapshot(): ThreadSnapshot {
    if (this._state === 'RUNNING') throw new ThreadStateError('cannot snapshot a running thread (only between run() calls)');
    if (this._state === 'EXITED') throw new ThreadStateError('cannot snapshot a thread that has exited');
    const globals: Record<string, number | bigint> = {};
    for (const [name, g] of this.globals) globals[name] = g.value as number | bigint;
    const hostState: Record<string, unknown> = {};
    for (const hm of this.hostModules) hostState[hm.name] = hm.snapshot();
    let pending: PendingCall | null = null;
    const b = this.blocked;
    if (this.status === 'blocked' && b) {
      pending = { module: b.imp.module, name: b.imp.name, args: b.args.slice() };
      if (b.settled) pending.settled = b.settled;
    }
    return {
      moduleHash: this.rewritten.hash,
      abi: this.rewritten.runtime.abi,
      status: this.status,
      entries: this.entries.slice(),
      entryIndex: this.entryIndex,
      memory: captureMemory(this._memory),
      globals,
      asyncify: this.unwound ? this.unwound.slice() : null,
      hostState,
      pending,
      fuelUsed: this._fuelUsed,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// helpers

function isThenable(x: unknown): x is PromiseLike<number | bigint | void> {
  return typeof x === 'object' && x !== null && typeof (x as { then?: unknown }).then === 'function';
}

function settledError(e: unknown, imp: ImportInfo): SettledCall {
  if (e instanceof ProcessExit) return { ok: false, exitCode: e.code };
  return { ok: false, message: describe(e) || `${imp.module}.${imp.name} failed` };
}

function convert(v: unknown, t: ValType | undefined): number | bigint | undefined {
  switch (t) {
    case undefined:
      return undefined;
    case 'i64':
      if (typeof v === 'bigint') return v;
      return BigInt(Math.trunc(Number(v ?? 0)) || 0);
    case 'i32':
      if (typeof v === 'bigint') return Number(BigInt.asIntN(32, v));
      return (Number(v ?? 0) | 0);
    default:
      return typeof v === 'bigint' ? Number(v) : Number(v ?? 0);
  }
}

// V8 and SpiderMonkey wordings, most specific first.
const TRAPS: [RegExp, string][] = [
  [/unreachable/i, 'unreachable instruction executed'],
  [/table index|undefined element|\btable\b/i, 'indirect call through an invalid table index'],
  [/signature mismatch|null function|indirect call/i, 'indirect call signature mismatch'],
  [/memory access out of bounds|out of bounds memory access|index out of bounds/i, 'out-of-bounds memory access'],
  [/divide by zero|division by zero/i, 'integer divide by zero'],
  [/float unrepresentable|invalid conversion|conversion to integer/i, 'invalid conversion from float to integer'],
  [/unrepresentable|integer overflow/i, 'integer overflow'],
];

function trapText(m: string): string {
  for (const [re, text] of TRAPS) if (re.test(m)) return text;
  return m;
}

/** The innermost wasm function named in an error's stack, if any. */
function wasmFrame(e: unknown): string | null {
  const stack = e instanceof Error ? e.stack : undefined;
  if (!stack) return null;
  for (const line of stack.split('\n')) {
    const m = /at (?:\$)?(\S+) \(wasm:\/\//.exec(line) ?? /^\s*(\S+)@wasm:\/\//.exec(line);
    if (m?.[1]) return `function ${m[1]}`;
    const idx = /wasm-function\[(\d+)\]/.exec(line);
    if (idx) return `wasm function #${idx[1]}`;
  }
  return null;
}
