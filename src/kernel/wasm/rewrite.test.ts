import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WasmLoadError } from './errors.ts';
import { binaryen, fixture, wat } from './fixtures/load.ts';
import { clearRewriteCache, rewriteModule } from './rewrite.ts';

const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

describe('rewriteModule: refusing bad input', () => {
  it('refuses bytes that are not WebAssembly', async () => {
    await expect(rewriteModule(new TextEncoder().encode('#!/bin/sh\necho hi\n'))).rejects.toThrow(
      'not a WebAssembly module: the file does not start with the "\\0asm" magic number',
    );
    await expect(rewriteModule(new Uint8Array(0))).rejects.toThrow(WasmLoadError);
  });

  it('recognizes a component and an unknown version', async () => {
    await expect(rewriteModule(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]))).rejects.toThrow(
      'this is a WebAssembly component, not a core module',
    );
    await expect(rewriteModule(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x02, 0x00, 0x00, 0x00]))).rejects.toThrow(
      'unsupported WebAssembly binary version 2 (expected 1)',
    );
  });

  it('refuses a truncated module with the engine’s explanation', async () => {
    const good = fixture('busy.wat');
    const err = await rewriteModule(good.subarray(0, good.length - 5)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WasmLoadError);
    expect((err as Error).message).toMatch(/^invalid WebAssembly module: .+/);
  });

  it('refuses a module that does not validate', async () => {
    // one function () -> i32 whose body is empty
    const bytes = new Uint8Array([
      ...HEADER,
      0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, // type section
      0x03, 0x02, 0x01, 0x00, // function section
      0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code section
    ]);
    await expect(rewriteModule(bytes)).rejects.toThrow(/^invalid WebAssembly module: Compiling function #0 failed/);
  });

  it('refuses features outside the supported set, saying which', async () => {
    const simd = wat(`(module (func (export "_start") (drop (v128.const i32x4 1 2 3 4))))`, binaryen.Features.SIMD128);
    await expect(rewriteModule(simd)).rejects.toThrow(
      'the module uses WebAssembly features LSHAPES does not support: SIMD128 (supported: mutable-globals, bulk-memory, sign-ext, nontrapping-float-to-int)',
    );
  });

  it('refuses imports the runtime cannot provide or that clash with it', async () => {
    await expect(rewriteModule(wat(`(module (import "env" "g" (global i32)) (func (export "_start")))`))).rejects.toThrow(
      'the module imports a global ("env.g"): LSHAPES provides only function imports and memory',
    );
    await expect(rewriteModule(wat(`(module (import "lshapes_rt" "yield_check" (func)) (func (export "_start")))`))).rejects.toThrow(
      'import "lshapes_rt.yield_check": the import module name "lshapes_rt" is reserved for the runtime',
    );
  });
});

describe('rewriteModule: output', () => {
  it('describes imports with signatures, exports, and the runtime layout', async () => {
    const rw = await rewriteModule(fixture('block.wat'));
    expect(rw.imports).toEqual([
      { module: 'env', name: 'read', params: ['i32'], results: ['i32'] },
      { module: 'env', name: 'read64', params: [], results: ['i64'] },
      { module: 'env', name: 'write', params: ['i32'], results: [] },
      { module: 'env', name: 'write64', params: ['i64'], results: [] },
    ]);
    expect(rw.exports).toEqual([{ name: '_start', kind: 'function' }]);
    expect(rw.runtime.memoryExport).toBe('__lshapes_memory'); // the program had no memory: one was added
    const names = WebAssembly.Module.exports(rw.module).map((e) => e.name);
    expect(names).toEqual(
      expect.arrayContaining(['_start', '__lshapes_fuel', 'asyncify_start_unwind', 'asyncify_stop_unwind', 'asyncify_start_rewind', 'asyncify_stop_rewind']),
    );
    expect(WebAssembly.Module.imports(rw.module)).toContainEqual({ module: 'lshapes_rt', name: 'yield_check', kind: 'function' });
    expect(WebAssembly.validate(rw.bytes as Uint8Array<ArrayBuffer>)).toBe(true);
  });

  it('exports every mutable global (i64 included) and a memory that was not exported', async () => {
    const rw = await rewriteModule(
      wat(`(module (memory $heap 3) (global $sp (mut i32) (i32.const 4096)) (global $big (mut i64) (i64.const 1))
        (global $k i32 (i32.const 5)) (func (export "_start")))`),
    );
    expect(rw.runtime.globals).toEqual([
      { name: 'sp', exportName: '__lshapes_global:sp', type: 'i32' },
      { name: 'big', exportName: '__lshapes_global:big', type: 'i64' },
    ]);
    expect(rw.runtime.memoryExport).toBe('__lshapes_memory');
    const kinds = Object.fromEntries(WebAssembly.Module.exports(rw.module).map((e) => [e.name, e.kind]));
    expect(kinds['__lshapes_global:sp']).toBe('global');
    expect(kinds['__lshapes_global:big']).toBe('global');
    expect(kinds['__lshapes_memory']).toBe('memory');
  });

  it('keeps an exported memory under its name', async () => {
    const rw = await rewriteModule(wat(`(module (memory (export "memory") 1) (func (export "_start")))`));
    expect(rw.runtime.memoryExport).toBe('memory');
  });

  it('puts a preemption check at every loop header', async () => {
    const rw = await rewriteModule(fixture('busy.wat'), { optimizeLevel: 0, cache: false });
    const text = binaryen.readBinary(rw.bytes).emitText();
    const yieldFn = /\(import "lshapes_rt" "yield_check" \(func \$(\S+?)\)\)/.exec(text)?.[1];
    expect(yieldFn).toBeTruthy();
    expect(text.split('(loop').length - 1).toBe(2); // the loop, and the one wrapping it to resume
    expect(text.split(`(call $${yieldFn}`).length - 1).toBe(1);
    expect(text).toMatch(/global\.set \$__lshapes_fuel/);
  });
});

describe('rewriteModule: hashing and cache', () => {
  it('hashes the original bytes with SHA-256 (or an injected hasher)', async () => {
    const bytes = fixture('busy.wat');
    const rw = await rewriteModule(bytes);
    expect(rw.hash).toBe(createHash('sha256').update(bytes).digest('hex'));
    let called = 0;
    const viaInjected = await rewriteModule(bytes, {
      cache: false,
      sha256: (b) => {
        called++;
        return new Uint8Array(createHash('sha256').update(b).digest());
      },
    });
    expect(called).toBe(1);
    expect(viaInjected.hash).toBe(rw.hash);
  });

  it('rewrites the same program once', async () => {
    clearRewriteCache();
    const bytes = fixture('prog.wat');
    const [a, b] = await Promise.all([rewriteModule(bytes), rewriteModule(bytes.slice())]);
    expect(a).toBe(b);
    expect(await rewriteModule(bytes.buffer.slice(0) as ArrayBuffer)).toBe(a);
    const other = await rewriteModule(bytes, { preemptAtFunctionEntry: true });
    expect(other).not.toBe(a);
    expect(other.hash).toBe(a.hash);
  });
});
