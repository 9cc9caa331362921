#!/usr/bin/env node
// Build the sample programs: programs/c/*.c → programs/build/*.wasm (wasm32-wasi, WASI preview 1)
// with clang and wasi-libc. Only programs whose source (or a shared header, or this script) is
// newer than the output are rebuilt.
//
//   node scripts/build-programs.mjs            build what is stale
//   node scripts/build-programs.mjs --force    rebuild everything
//
// Toolchain: Debian's clang, lld, wasi-libc and libclang-rt-<N>-dev-wasm32, installed with
// apt-get when missing and we are root on Debian (else the exact command is printed). Set
// WASI_SYSROOT (and WASI_CC) to use another toolchain, e.g. wasi-sdk.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ROOT, ensureDebianPackages, EnsureError } from './ensure.mjs';

export const SRC_DIR = path.join(ROOT, 'programs', 'c');
export const OUT_DIR = path.join(ROOT, 'programs', 'build');
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

/** Build every stale program; returns the paths of the .wasm files. Throws on a failed build. */
export function buildPrograms({ force = false, quiet = false } = {}) {
  const sources = readdirSync(SRC_DIR).filter((f) => f.endsWith('.c')).sort();
  const headers = readdirSync(SRC_DIR).filter((f) => f.endsWith('.h'));
  const shared = Math.max(mtime(SELF), ...headers.map((h) => mtime(path.join(SRC_DIR, h))));
  const stale = sources.filter((f) => {
    const out = path.join(OUT_DIR, f.replace(/\.c$/, '.wasm'));
    return force || mtime(out) < Math.max(mtime(path.join(SRC_DIR, f)), shared);
  });
  const outputs = sources.map((f) => path.join(OUT_DIR, f.replace(/\.c$/, '.wasm')));
  if (stale.length === 0) {
    if (!quiet) console.log(`build-programs: ${sources.length} programs up to date`);
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

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  try {
    buildPrograms({ force: process.argv.includes('--force') });
  } catch (err) {
    console.error(err instanceof EnsureError ? `build-programs: ${err.message}` : err.message);
    process.exit(1);
  }
}
