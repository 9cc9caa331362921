// Test support: tiny WASI programs (WAT) that write or hold a file, for the tests of what a
// process sees of the filesystems (no C sample program writes a file at a path it is given).
import { wat } from '../wasm/fixtures/load.ts';

const escape = (s: string) => [...new TextEncoder().encode(s)].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('');

/**
 * Creates (or truncates) `path` relative to preopened fd `dirfd` and writes `text` into it; exits
 * with the errno of the first call that fails (0 when all went well).
 */
export function writer(dirfd: number, path: string, text: string): Uint8Array {
  const n = (s: string) => new TextEncoder().encode(s).length;
  return wat(`(module
    (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (data (i32.const 100) "${escape(path)}")
    (data (i32.const 1000) "${escape(text)}")
    (func (export "_start")
      (local $e i32)
      ;; oflags 9 = CREAT | TRUNC
      (local.set $e (call $open (i32.const ${dirfd}) (i32.const 0) (i32.const 100) (i32.const ${n(path)}) (i32.const 9)
        (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 8)))
      (if (local.get $e) (then (call $exit (local.get $e))))
      (i32.store (i32.const 16) (i32.const 1000))
      (i32.store (i32.const 20) (i32.const ${n(text)}))
      (local.set $e (call $write (i32.load (i32.const 8)) (i32.const 16) (i32.const 1) (i32.const 24)))
      (if (local.get $e) (then (call $exit (local.get $e))))
      (call $exit (call $close (i32.load (i32.const 8))))))`);
}

/** Opens `path` (relative to fd 3, `/`) and then waits for a line on stdin before exiting. */
export function holder(path: string): Uint8Array {
  return wat(`(module
    (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (data (i32.const 100) "${escape(path)}")
    (func (export "_start")
      (local $e i32)
      (local.set $e (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const ${new TextEncoder().encode(path).length}) (i32.const 0)
        (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 8)))
      (if (local.get $e) (then (call $exit (local.get $e))))
      (i32.store (i32.const 16) (i32.const 1000))
      (i32.store (i32.const 20) (i32.const 100))
      (call $exit (call $read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))))`);
}
