#!/usr/bin/env node
// Build the sample programs into programs/build/*.wasm (wasm32-wasi command modules, WASI
// preview 1):
//   programs/c/*.c   with clang and wasi-libc;
//   programs/as/*.ts with the AssemblyScript compiler from node_modules (each top-level file is a
//                    program; programs/as/lib/ is shared code).
// Only programs whose source (or a shared header / the AssemblyScript lib, the compiler, or this
// script) is newer than the output are rebuilt. Then programs/build/index.json lists the
// programs a user can run (all but the test programs), as a JSON array of names.
//
//   node scripts/build-programs.mjs            build what is stale
//   node scripts/build-programs.mjs --force    rebuild everything
//
// C toolchain: Debian's clang, lld, wasi-libc and libclang-rt-<N>-dev-wasm32, installed with
// apt-get when missing and we are root on Debian (else the exact command is printed). Set
// WASI_SYSROOT (and WASI_CC) to use another toolchain, e.g. wasi-sdk.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ROOT, ensureDebianPackages, EnsureError } from './ensure.mjs';

export const SRC_DIR = path.join(ROOT, 'programs', 'c');
export const OUT_DIR = path.join(ROOT, 'programs', 'build');
export const AS_DIR = path.join(ROOT, 'programs', 'as');
export const AS_LIB_DIR = path.join(AS_DIR, 'lib');
export const INDEX_FILE = path.join(OUT_DIR, 'index.json');
const SELF = fileURLToPath(import.meta.url);

/** The compiler and the flags every program is built with. */
export function ensureToolchain() {
  const cc = process.env.WASI_CC ?? 'clang';
  if (process.env.WASI_SYSROOT) {
    return { cc, flags: [`--target=wasm32-wasi`, `--sysroot=${process.env.WASI_SYSROOT}`] };
  }
  // Debian puts wasi-libc in the multiarch directories /usr/{include,lib}/wasm32-wasi, where
  // Debian's clang finds it for --target=wasm32-wasi without a --sysroot.
  const needed = [
    ['clang', '/usr/bin/clang'],
    ['lld', '/usr/bin/wasm-ld'],
    ['wasi-libc', '/usr/lib/wasm32-wasi/libc.a'],
  ];
  const missing = needed.filter(([, probe]) => !existsSync(probe));
  if (missing.length) ensureDebianPackages(missing.map(([pkg]) => pkg), [missing[0][1]]);
  for (const [pkg, probe] of needed) {
    if (!existsSync(probe)) throw new EnsureError(`${pkg} is installed but ${probe} is missing`);
  }
  // clang links compiler-rt's builtins for wasm32; Debian ships them per clang version.
  const res = spawnSync('/usr/bin/clang', ['--version'], { encoding: 'utf8' });
  const major = /clang version (\d+)/.exec(res.stdout ?? '')?.[1];
  if (!major) throw new EnsureError(`cannot tell the clang version from: ${res.stdout ?? res.error}`);
  const resourceDir = spawnSync('/usr/bin/clang', ['-print-resource-dir'], { encoding: 'utf8' }).stdout.trim();
  const builtins = path.join(resourceDir, 'lib', 'wasi', 'libclang_rt.builtins-wasm32.a');
  ensureDebianPackages([`libclang-rt-${major}-dev-wasm32`], [builtins]);
  return { cc: '/usr/bin/clang', flags: ['--target=wasm32-wasi'] };
}

export const COMMON_FLAGS = ['-O2', '-Wall', '-Wextra', '-Wno-unused-parameter', '-Wl,--strip-debug'];

function mtime(file) {
  return existsSync(file) ? statSync(file).mtimeMs : -Infinity;
}

/** Build every stale C program; returns the paths of the .wasm files. Throws on a failed build. */
export function buildCPrograms({ force = false, quiet = false } = {}) {
  const sources = readdirSync(SRC_DIR).filter((f) => f.endsWith('.c')).sort();
  const headers = readdirSync(SRC_DIR).filter((f) => f.endsWith('.h'));
  const shared = Math.max(mtime(SELF), ...headers.map((h) => mtime(path.join(SRC_DIR, h))));
  const stale = sources.filter((f) => {
    const out = path.join(OUT_DIR, f.replace(/\.c$/, '.wasm'));
    return force || mtime(out) < Math.max(mtime(path.join(SRC_DIR, f)), shared);
  });
  const outputs = sources.map((f) => path.join(OUT_DIR, f.replace(/\.c$/, '.wasm')));
  if (stale.length === 0) {
    if (!quiet) console.log(`build-programs: ${sources.length} C programs up to date`);
    return outputs;
  }
  const { cc, flags } = ensureToolchain();
  mkdirSync(OUT_DIR, { recursive: true });
  for (const f of stale) {
    const out = path.join(OUT_DIR, f.replace(/\.c$/, '.wasm'));
    const args = [...flags, ...COMMON_FLAGS, `-I${SRC_DIR}`, '-o', out, path.join(SRC_DIR, f)];
    if (!quiet) console.log(`build-programs: ${path.basename(cc)} ${args.join(' ').replaceAll(ROOT + path.sep, '')}`);
    // Write to a temporary name and rename: builds running at once (parallel test workers)
    // never see a half-written module.
    const tmp = `${out}.${process.pid}.tmp`;
    args[args.indexOf(out)] = tmp;
    const res = spawnSync(cc, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    if (res.status !== 0) {
      rmSync(tmp, { force: true });
      throw new Error(`build-programs: ${f} failed (exit ${res.status ?? res.error})`);
    }
    renameSync(tmp, out);
  }
  return outputs;
}

// ───────────────────────────── AssemblyScript ─────────────────────────────

const ASC_PKG = path.join(ROOT, 'node_modules', 'assemblyscript');
const WASI_SHIM_PKG = path.join(ROOT, 'node_modules', '@assemblyscript', 'wasi-shim');
/** The WASI shim's config: abort/trace/console/process over WASI, `_start` exported. */
export const WASI_SHIM_CONFIG = path.join(WASI_SHIM_PKG, 'asconfig.json');

/**
 * asc flags after the source file. AssemblyScript 0.28 enables exactly the features LSHAPES
 * supports by default (mutable-globals, sign-extension, nontrapping-f2i, bulk-memory); SIMD,
 * threads, reference types, GC, exception handling, multi-value, tail calls are off unless
 * --enable'd, so nothing needs --disable. The checks after each build catch a change of that.
 */
export const ASC_FLAGS = ['--config', path.relative(ROOT, WASI_SHIM_CONFIG).split(path.sep).join('/'), '-O3'];

/** The compiler's JS entry (node_modules/assemblyscript/dist/asc.js), or a clear error. */
export function ascEntry() {
  const entry = path.join(ASC_PKG, 'dist', 'asc.js');
  for (const [what, file] of [
    ['assemblyscript', entry],
    ['@assemblyscript/wasi-shim', WASI_SHIM_CONFIG],
  ]) {
    if (!existsSync(file)) {
      throw new EnsureError(`${what} is not installed (${path.relative(ROOT, file)} is missing): run npm install`);
    }
  }
  return entry;
}

function newestIn(dir) {
  if (!existsSync(dir)) return -Infinity;
  let newest = mtime(dir);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestIn(p) : mtime(p));
  }
  return newest;
}

/** Build every stale AssemblyScript program (programs/as/*.ts); returns the .wasm paths. */
export function buildAsPrograms({ force = false, quiet = false } = {}) {
  if (!existsSync(AS_DIR)) return [];
  const sources = readdirSync(AS_DIR, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => e.name)
    .sort();
  const outputs = sources.map((f) => path.join(OUT_DIR, f.replace(/\.ts$/, '.wasm')));
  if (sources.length === 0) return outputs;
  const entry = ascEntry();
  const shared = Math.max(
    mtime(SELF),
    newestIn(AS_LIB_DIR),
    mtime(path.join(ASC_PKG, 'package.json')),
    mtime(path.join(WASI_SHIM_PKG, 'package.json')),
    mtime(WASI_SHIM_CONFIG),
  );
  const stale = sources.filter((f) => force || mtime(path.join(OUT_DIR, f.replace(/\.ts$/, '.wasm'))) < Math.max(mtime(path.join(AS_DIR, f)), shared));
  if (stale.length === 0) {
    if (!quiet) console.log(`build-programs: ${sources.length} AssemblyScript programs up to date`);
    return outputs;
  }
  mkdirSync(OUT_DIR, { recursive: true });
  // One Node process compiles them all with asc's JS API: loading and warming up the compiler
  // costs more than compiling a small program.
  const jobs = stale.map((f) => ({ src: path.join(AS_DIR, f), out: path.join(OUT_DIR, f.replace(/\.ts$/, '.wasm')) }));
  const res = spawnSync(process.execPath, [SELF, '--asc-batch', JSON.stringify({ entry, jobs, quiet })], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (res.status !== 0) {
    throw new Error(`build-programs: building AssemblyScript programs failed (exit ${res.status ?? res.error}); see the messages above`);
  }
  return outputs;
}

/** A path relative to the repo root with forward slashes, as asc wants (it runs in ROOT). */
const rel = (file) => path.relative(ROOT, file).split(path.sep).join('/');

/** The asc arguments for one program (asc runs in ROOT: its --config resolves relative paths). */
export function ascArgs(src, out) {
  return [rel(src), ...ASC_FLAGS, '-o', rel(out)];
}

/** What `node_modules/.bin/asc` would be given for one program (for logs and docs). */
export function ascCommandLine(src, out) {
  return ['asc', ...ascArgs(src, out)].join(' ');
}

/** A built module is a WASI command that imports only what LSHAPES provides. */
async function checkModule(file) {
  const module = await WebAssembly.compile(readFileSync(file));
  const problems = [];
  const bad = WebAssembly.Module.imports(module).filter((i) => i.module !== 'wasi_snapshot_preview1' && i.module !== 'lshapes');
  if (bad.length) problems.push(`imports ${bad.map((i) => `${i.module}.${i.name}`).join(', ')} (only wasi_snapshot_preview1 and lshapes exist)`);
  const exports = WebAssembly.Module.exports(module);
  if (!exports.some((e) => e.name === '_start' && e.kind === 'function')) problems.push('does not export _start');
  if (!exports.some((e) => e.name === 'memory' && e.kind === 'memory')) problems.push('does not export memory');
  return problems;
}

/** `--asc-batch`: runs in its own process (see buildAsPrograms). */
async function ascBatch({ entry, jobs, quiet }) {
  process.chdir(ROOT);
  const asc = await import(pathToFileURL(entry).href);
  const failed = [];
  for (const { src, out } of jobs) {
    if (!quiet) console.log(`build-programs: ${ascCommandLine(src, out)}`);
    const tmp = `${out}.${process.pid}.tmp`;
    let problems;
    try {
      const { error } = await asc.main(ascArgs(src, tmp), { stdout: process.stdout, stderr: process.stderr });
      problems = error ? [error.message] : await checkModule(tmp);
    } catch (err) {
      problems = [err instanceof Error ? err.message : String(err)];
    }
    if (problems.length) {
      rmSync(tmp, { force: true });
      const name = path.relative(ROOT, src);
      console.error(`build-programs: ${name} failed: ${problems.join('; ')}`);
      failed.push(name);
      continue;
    }
    renameSync(tmp, out);
  }
  if (failed.length) {
    console.error(`build-programs: ${failed.length} AssemblyScript program(s) failed: ${failed.join(', ')}`);
    process.exit(1);
  }
}

// ───────────────────────────── all of them ─────────────────────────────

/** Test programs: built, but not listed in index.json. */
export function isTestProgram(name) {
  return /^(wasi_|lshapes_|bench_)/.test(name) || ['busy', 'oom', 'badptr', 'trap', 'cpubench'].includes(name);
}

/** Writes programs/build/index.json (a sorted JSON array of runnable names) when it changed. */
export function writeIndex(outputs) {
  const names = [...new Set(outputs.map((f) => path.basename(f, '.wasm')))].filter((n) => !isTestProgram(n)).sort();
  const text = JSON.stringify(names) + '\n';
  if (existsSync(INDEX_FILE) && readFileSync(INDEX_FILE, 'utf8') === text) return names;
  mkdirSync(OUT_DIR, { recursive: true });
  const tmp = `${INDEX_FILE}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, INDEX_FILE);
  return names;
}

/**
 * Build every stale program (C, then AssemblyScript) and write index.json; returns the paths of
 * the .wasm files. Throws on a failed build.
 */
export function buildPrograms({ force = false, quiet = false } = {}) {
  const c = buildCPrograms({ force, quiet });
  const as = buildAsPrograms({ force, quiet });
  const clash = as.filter((f) => c.includes(f));
  if (clash.length) {
    throw new Error(`build-programs: ${clash.map((f) => path.basename(f, '.wasm')).join(', ')} exist both in programs/c and programs/as`);
  }
  const outputs = [...c, ...as];
  writeIndex(outputs);
  return outputs;
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  const batch = process.argv.indexOf('--asc-batch');
  if (batch >= 0) {
    await ascBatch(JSON.parse(process.argv[batch + 1]));
  } else {
    try {
      buildPrograms({ force: process.argv.includes('--force') });
    } catch (err) {
      console.error(err instanceof EnsureError ? `build-programs: ${err.message}` : err.message);
      process.exit(1);
    }
  }
}
