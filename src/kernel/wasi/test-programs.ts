// Test support (Node only, used by *.test.ts): build and load the sample programs, and run them
// either synchronously (runSync) or on the thread runtime (WasmThread), which lets host calls
// block.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostModule } from '../wasm/host-calls.ts';
import { rewriteModule } from '../wasm/rewrite.ts';
import type { RewrittenModule } from '../wasm/types.ts';
import { WasmThread } from '../wasm/thread.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

let built = false;

/** Builds stale programs (scripts/build-programs.mjs) once per test worker. */
export function buildPrograms(): void {
  if (built) return;
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-programs.mjs')], { stdio: 'pipe', cwd: ROOT });
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer; message: string };
    throw new Error(`building the programs failed:\n${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? e.message}`);
  }
  built = true;
}

const cache = new Map<string, Uint8Array<ArrayBuffer>>();

/** programs/build/<name>.wasm */
export function program(name: string): Uint8Array<ArrayBuffer> {
  let bytes = cache.get(name);
  if (!bytes) {
    buildPrograms();
    bytes = new Uint8Array(readFileSync(path.join(ROOT, 'programs', 'build', `${name}.wasm`)));
    cache.set(name, bytes);
  }
  return bytes;
}

/** programs/expected/<name>.out */
export function expected(name: string): string {
  return readFileSync(path.join(ROOT, 'programs', 'expected', `${name}.out`), 'utf8');
}

const rewritten = new Map<string, Promise<RewrittenModule>>();

/** The program rewritten for the thread runtime (Asyncify), cached per worker. */
export function rewrittenProgram(name: string): Promise<RewrittenModule> {
  let r = rewritten.get(name);
  if (!r) {
    r = rewriteModule(program(name));
    rewritten.set(name, r);
  }
  return r;
}

export interface ThreadRun {
  code: number;
  /** How many times the thread blocked on a host call's Promise. */
  blocks: number;
}

/** Runs a thread until it ends, waiting whenever it blocks. */
export async function driveThread(t: WasmThread): Promise<ThreadRun> {
  let blocks = 0;
  for (;;) {
    const r = t.run({ ms: 50 });
    if (r.state === 'yielded') continue;
    if (r.state === 'blocked') {
      blocks++;
      await r.until;
      continue;
    }
    if (r.state === 'trapped') throw new Error(`program trapped: ${r.message}`);
    return { code: r.code, blocks };
  }
}

/** Runs a program on the thread runtime with the given host modules. */
export async function runThreaded(name: string, ...hosts: HostModule[]): Promise<ThreadRun> {
  const t = await WasmThread.create(await rewrittenProgram(name), hosts);
  return driveThread(t);
}
