#!/usr/bin/env node
// Make sure what LSHAPES needs is present before anything else runs. Plain Node, no npm
// dependencies: this runs before `npm install`.
//
//   node scripts/ensure.mjs deps            install/refresh node_modules when package*.json changed
//   node scripts/ensure.mjs deps chromium   ... and find (or on Debian as root, install) Chromium
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STAMP = path.join(ROOT, 'node_modules', '.lshapes-deps-stamp');
const isWindows = process.platform === 'win32';

/** Run a command with inherited stdio; returns its exit code (1 if it could not start). */
export function run(cmd, args = [], opts = {}) {
  const res = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', shell: isWindows, ...opts });
  if (res.error) console.error(`ensure: could not run ${cmd}: ${res.error.message}`);
  return res.status ?? 1;
}

/** Path of a locally installed CLI (node_modules/.bin), so we never trigger an npx download. */
export function bin(name) {
  return path.join(ROOT, 'node_modules', '.bin', isWindows ? `${name}.cmd` : name);
}

export function depsHash() {
  const h = createHash('sha256');
  for (const f of ['package.json', 'package-lock.json']) {
    const p = path.join(ROOT, f);
    h.update(`${f}\0${existsSync(p) ? readFileSync(p) : ''}\0`);
  }
  return h.digest('hex');
}

/** Every package named in package.json has a folder in node_modules. */
function depsPresent() {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const names = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies });
  return names.every((n) => existsSync(path.join(ROOT, 'node_modules', n, 'package.json')));
}

/** Install node_modules when missing or when package.json / package-lock.json changed. */
export function ensureDeps() {
  const hash = depsHash();
  const hasModules = existsSync(path.join(ROOT, 'node_modules'));
  if (hasModules && existsSync(STAMP) && readFileSync(STAMP, 'utf8').trim() === hash) return;

  const npm = isWindows ? 'npm.cmd' : 'npm';
  // A clean tree installs exactly the lock file; an existing one is updated in place.
  const args = !hasModules && existsSync(path.join(ROOT, 'package-lock.json')) ? ['ci'] : ['install'];
  console.log(`ensure: dependencies ${hasModules ? 'changed' : 'missing'}, running npm ${args[0]}`);
  const code = run(npm, [...args, '--no-audit', '--no-fund']);
  if (code !== 0) {
    // Offline with a complete node_modules (e.g. a prepared CI image): go on, but say so.
    if (hasModules && depsPresent()) {
      console.warn(`ensure: npm ${args[0]} failed (exit ${code}); continuing with the installed node_modules`);
      return;
    }
    throw new EnsureError(`npm ${args[0]} failed (exit ${code})`);
  }
  // npm may have rewritten package-lock.json: stamp what is there now.
  writeFileSync(STAMP, depsHash() + '\n');
}

export class EnsureError extends Error {}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;
const isDebian = () => existsSync('/etc/debian_version');

/** Seconds apt-get waits for another apt-get's dpkg lock (two installs started side by side) instead of failing. */
const LOCK_WAIT_S = 600;

/**
 * Make sure Debian packages are installed, judged by files they provide (probeFiles: any one
 * present is enough). Installs them with apt-get when we are root on Debian; otherwise throws
 * an EnsureError that says which command to run. Returns the first probe file found.
 * build-programs.mjs: ensureDebianPackages(['clang', 'lld', 'wasi-libc'], ...).
 */
export function ensureDebianPackages(pkgs, probeFiles, hint = '') {
  const found = () => probeFiles.find((f) => existsSync(f));
  if (found()) return found();
  const list = pkgs.join(' ');
  if (isRoot() && isDebian()) {
    console.log(`ensure: installing ${list} with apt-get`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    if (run('apt-get', ['update'], { env }) === 0 && run('apt-get', ['-o', `DPkg::Lock::Timeout=${LOCK_WAIT_S}`, 'install', '-y', ...pkgs], { env }) === 0 && found()) {
      return found();
    }
    throw new EnsureError(`apt-get install -y ${list} failed`);
  }
  throw new EnsureError(
    `missing: ${list}\nInstall it on Debian/Ubuntu with:\n  sudo apt-get install -y ${list}` + (hint ? `\n${hint}` : ''),
  );
}

/** Path of the Chromium the end-to-end tests drive: CHROMIUM_PATH, else the Debian package. */
export function ensureChromium() {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) {
    if (existsSync(fromEnv)) return fromEnv;
    throw new EnsureError(`CHROMIUM_PATH=${fromEnv} does not exist`);
  }
  return ensureDebianPackages(['chromium'], ['/usr/bin/chromium'], 'or set CHROMIUM_PATH=/path/to/chrome');
}

// CLI
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const wanted = process.argv.slice(2);
  const known = new Set(['deps', 'chromium']);
  const unknown = wanted.filter((w) => !known.has(w));
  if (wanted.length === 0 || unknown.length) {
    console.error(`usage: node scripts/ensure.mjs deps [chromium]${unknown.length ? `\nunknown: ${unknown.join(' ')}` : ''}`);
    process.exit(2);
  }
  try {
    if (wanted.includes('deps')) ensureDeps();
    if (wanted.includes('chromium')) console.log(`ensure: chromium at ${ensureChromium()}`);
  } catch (err) {
    if (!(err instanceof EnsureError)) throw err;
    console.error(`ensure: ${err.message}`);
    process.exit(1);
  }
}
