// The `lshapes` CLI: real programs (programs/build, and two small C programs built here) run by
// runProgram / cli() in this process, and by `node bin/lshapes.mjs` as a child process.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, buildPrograms } from '../kernel/wasi/test-programs.ts';
import { cli, parseCommandLine } from './main.ts';
import { parseDir, runProgram, shellCode, type RunProgramOptions } from './run.ts';

const BUILD = path.join(ROOT, 'programs', 'build');
const prog = (name: string) => path.join(BUILD, `${name}.wasm`);

let tmp: string;
/** Shared by every run here, so each module is rewritten once (in-process and child runs). */
let cacheHome: string;
let cacheDir: string;
/** A C program built here: `probe env`, `probe exit N`, `probe trap`, `probe write FILE TEXT`. */
let probe: string;
/** A C program importing a function LSHAPES does not provide. */
let noimport: string;

/** Compiles C for wasm32-wasi the way scripts/build-programs.mjs does (the toolchain is there once buildPrograms() ran). */
function compileC(name: string, source: string): string {
  const src = path.join(tmp, `${name}.c`);
  const out = path.join(tmp, `${name}.wasm`);
  writeFileSync(src, source);
  const cc = process.env.WASI_CC ?? (process.env.WASI_SYSROOT ? 'clang' : '/usr/bin/clang');
  const flags = process.env.WASI_SYSROOT ? ['--target=wasm32-wasi', `--sysroot=${process.env.WASI_SYSROOT}`] : ['--target=wasm32-wasi'];
  execFileSync(cc, [...flags, '-O2', '-o', out, src], { stdio: 'pipe' });
  return out;
}

beforeAll(() => {
  // Building may first install the toolchain with apt-get (as root on Debian): allow minutes.
  buildPrograms();
  tmp = mkdtempSync(path.join(tmpdir(), 'lshapes-cli-'));
  cacheHome = path.join(tmp, 'cache');
  cacheDir = path.join(cacheHome, 'lshapes');
  probe = compileC(
    'probe',
    `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
extern char **environ;
int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "env") == 0) {
    for (char **e = environ; *e; e++) printf("%s\\n", *e);
    return 0;
  }
  if (argc > 2 && strcmp(argv[1], "exit") == 0) { fprintf(stderr, "exiting\\n"); return atoi(argv[2]); }
  if (argc > 1 && strcmp(argv[1], "trap") == 0) { printf("before\\n"); fflush(stdout); __builtin_trap(); }
  if (argc > 3 && strcmp(argv[1], "write") == 0) {
    FILE *f = fopen(argv[2], "w");
    if (!f) { perror(argv[2]); return 1; }
    fputs(argv[3], f);
    return fclose(f) == 0 ? 0 : 1;
  }
  return 0;
}
`,
  );
  noimport = compileC(
    'noimport',
    `__attribute__((import_module("env"), import_name("lshapes_nope"))) void nope(void);
int main(void) { nope(); return 0; }
`,
  );
}, 600_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function sink(): { write(data: Uint8Array | string): boolean; text(): string } {
  const chunks: Buffer[] = [];
  return {
    write(data) {
      chunks.push(Buffer.from(data));
      return true;
    },
    text: () => Buffer.concat(chunks).toString('utf8'),
  };
}

async function run(file: string, args: string[], opts: Partial<RunProgramOptions> = {}): Promise<Result> {
  const stdout = sink();
  const stderr = sink();
  const code = await runProgram({ file, args, stdout, stderr, cacheDir, ...opts });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** `lshapes ARGV...` through cli(), as main() calls it. */
async function lshapes(argv: string[], stdin: string | null = null): Promise<Result> {
  const stdout = sink();
  const stderr = sink();
  const code = await cli(argv, {
    stdout: stdout as unknown as NodeJS.WritableStream,
    stderr: stderr as unknown as NodeJS.WritableStream,
    stdin: stdin === null ? null : Readable.from([Buffer.from(stdin)]),
    env: { LSHAPES_CACHE_DIR: cacheDir, HOME: '/home/me' },
  });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

describe('lshapes run', () => {
  it('runs hello with its arguments: stdout, exit 0', async () => {
    const r = await run(prog('hello'), ['one', 'two words']);
    expect(r).toEqual({ code: 0, stdout: 'hello, world\narg 1: one\narg 2: two words\n', stderr: '' });
  });

  it('passes the exit code through (and stderr), mod 256', async () => {
    const wc = await lshapes(['run', prog('wc'), '/missing']);
    expect(wc.code).toBe(1);
    expect(wc.stderr).toMatch(/^wc: \/missing: /);
    expect(await run(probe, ['exit', '42'])).toEqual({ code: 42, stdout: '', stderr: 'exiting\n' });
    expect((await run(probe, ['exit', '300'])).code).toBe(300 % 256);
    expect(shellCode(-1)).toBe(255);
  });

  it('gives the program the --env variables and nothing of ours', async () => {
    const r = await lshapes(['run', '--env', 'GREETING=hi there', '--env=EMPTY=', '--env', 'HOME', probe, 'env']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['EMPTY=', 'GREETING=hi there', 'HOME=/home/me']);
  });

  it('mounts --dir HOST::GUEST read-write for cat, wc and the program itself', async () => {
    const dir = path.join(tmp, 'data');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'file.txt'), 'alpha beta\ngamma\n');
    const cat = await lshapes(['run', '--dir', `${dir}::/guest`, prog('cat'), '/guest/file.txt']);
    expect(cat).toEqual({ code: 0, stdout: 'alpha beta\ngamma\n', stderr: '' });
    const wc = await lshapes(['run', '--dir', `${dir}::/guest`, prog('wc'), '/guest/file.txt']);
    expect(wc.code).toBe(0);
    expect(wc.stdout.trim().split(/\s+/)).toEqual(['2', '3', '17', '/guest/file.txt']);
    // read-write: the program writes a host file
    const write = await lshapes(['run', '--dir', `${dir}::/guest`, probe, 'write', '/guest/new.txt', 'written by the program']);
    expect(write).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(readFileSync(path.join(dir, 'new.txt'), 'utf8')).toBe('written by the program');
    // without --dir the program sees no host file
    const none = await lshapes(['run', prog('cat'), path.join(dir, 'file.txt')]);
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('');
  });

  it('mounts a relative --dir so relative paths work, and DIR at the same path', async () => {
    const dir = path.join(tmp, 'rel');
    mkdirSync(path.join(dir, 'sub'), { recursive: true });
    writeFileSync(path.join(dir, 'sub', 'x.txt'), 'needle\nhay\nneedle again\n');
    expect(parseDir('.')).toEqual({ host: '.', guest: '/' });
    expect(parseDir('sub')).toEqual({ host: 'sub', guest: '/sub' });
    const grep = await run(prog('grep'), ['-c', 'needle', 'sub/x.txt'], { dirs: [{ host: dir, guest: '/' }] });
    expect(grep).toEqual({ code: 0, stdout: '2\n', stderr: '' });
    const abs = await lshapes(['run', '--dir', dir, prog('cat'), path.join(dir, 'sub', 'x.txt')]);
    expect(abs).toEqual({ code: 0, stdout: 'needle\nhay\nneedle again\n', stderr: '' });
  });

  it('forwards stdin', async () => {
    expect(await lshapes(['run', prog('cat')], 'abc')).toEqual({ code: 0, stdout: 'abc', stderr: '' });
    const wc = await lshapes(['run', prog('wc')], 'one two\nthree\n');
    expect(wc.stdout.trim().split(/\s+/)).toEqual(['2', '3', '14']);
    // no stdin given: the program reads end of file at once
    expect(await run(prog('cat'), [], { stdin: null })).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('says clearly why a program cannot run, on one line, and exits non-zero', async () => {
    const notWasm = path.join(tmp, 'notes.wasm');
    writeFileSync(notWasm, 'just some text, not a module\n');
    const bad = await run(notWasm, []);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/^lshapes: .*notes\.wasm: (notes is )?not a WebAssembly module.*\n$/);

    const invalid = path.join(tmp, 'invalid.wasm');
    writeFileSync(invalid, Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x01, 0xff, 0xff]));
    const inv = await run(invalid, []);
    expect(inv.code).toBe(1);
    expect(inv.stderr).toMatch(/^lshapes: .*invalid\.wasm: [^\n]+\n$/);

    const missing = await run(path.join(tmp, 'nothing-here.wasm'), []);
    expect(missing).toEqual({ code: 1, stdout: '', stderr: `lshapes: ${path.join(tmp, 'nothing-here.wasm')}: no such file or directory\n` });

    const imp = await run(noimport, []);
    expect(imp.code).toBe(1);
    expect(imp.stderr).toMatch(/^lshapes: .*env\.lshapes_nope.*\n$/);

    const trap = await run(probe, ['trap']);
    expect(trap.code).toBe(134);
    expect(trap.stdout).toBe('before\n');
    expect(trap.stderr).toMatch(/^lshapes: [^\n]+\n$/);

    const dir = await lshapes(['run', '--dir', path.join(tmp, 'no-such-dir'), prog('hello')]);
    expect(dir.code).toBe(1);
    expect(dir.stderr).toMatch(/^lshapes: --dir .*no-such-dir: no such file or directory\n$/);
  });

  it('keeps rewritten modules in the cache, and rewrites again when an entry is bad', async () => {
    const hash = createHash('sha256').update(readFileSync(prog('hello'))).digest('hex');
    const [sub] = readdirSync(path.join(cacheDir, 'rewritten'));
    const entry = path.join(cacheDir, 'rewritten', sub!, `${hash}.wasm`);
    expect(readFileSync(entry).subarray(0, 4)).toEqual(Buffer.from([0, 0x61, 0x73, 0x6d]));
    writeFileSync(entry, 'garbage');
    expect((await run(prog('hello'), [])).stdout).toBe('hello, world\n');
    expect(readFileSync(entry).subarray(0, 4)).toEqual(Buffer.from([0, 0x61, 0x73, 0x6d]));
    expect(await run(prog('hello'), ['cached'])).toEqual({ code: 0, stdout: 'hello, world\narg 1: cached\n', stderr: '' });
  });

  it('kills the program when aborted (Ctrl-C) and returns 130', async () => {
    const ac = new AbortController();
    const stdout = sink();
    const done = runProgram({
      file: prog('counter'),
      args: [],
      stdout: {
        write(data) {
          stdout.write(data);
          ac.abort();
        },
      },
      stderr: sink(),
      signal: ac.signal,
      cacheDir,
    });
    expect(await done).toBe(130);
    expect(stdout.text()).toMatch(/^.+\n/);
  });
});

describe('lshapes command line', () => {
  it('parses options before the program and leaves the rest to it', () => {
    expect(parseCommandLine(['run', '--env', 'A=1', '--dir=/x::/y', 'p.wasm', '--env', 'B=2', '-h'])).toEqual({
      kind: 'run',
      file: 'p.wasm',
      args: ['--env', 'B=2', '-h'],
      env: { A: '1' },
      dirs: [{ host: '/x', guest: '/y' }],
      cache: true,
    });
    expect(parseCommandLine(['p.wasm', 'a'])).toMatchObject({ kind: 'run', file: 'p.wasm', args: ['a'] });
    expect(parseCommandLine(['run', '--', '-odd.wasm'])).toMatchObject({ kind: 'run', file: '-odd.wasm', args: [] });
    expect(parseCommandLine(['run', '--no-cache', 'p.wasm'])).toMatchObject({ kind: 'run', cache: false });
  });

  it('has help, and usage errors exit 2', async () => {
    const help = await lshapes(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: lshapes run');
    const runHelp = await lshapes(['run', '--help']);
    expect(runHelp.code).toBe(0);
    expect(runHelp.stdout).toContain('--dir HOST::GUEST');
    for (const argv of [[], ['run'], ['run', '--bogus', 'p.wasm'], ['run', '--env'], ['run', '--env', '=x', 'p.wasm'], ['run', '--dir', '../up', 'p.wasm']]) {
      const r = await lshapes(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^lshapes: .+\nusage: lshapes run/);
    }
  });
});

describe('bin/lshapes.mjs', () => {
  const bin = path.join(ROOT, 'bin', 'lshapes.mjs');

  function child(argv: string[], opts: { input?: string; onStdout?: (text: string, kill: (sig: NodeJS.Signals) => void) => void } = {}): Promise<Result> {
    return new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [bin, ...argv], { cwd: tmp, env: { ...process.env, XDG_CACHE_HOME: cacheHome, LSHAPES_CACHE_DIR: cacheDir } });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        opts.onStdout?.(stdout, (sig) => p.kill(sig));
      });
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('error', reject);
      p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      p.stdin.end(opts.input ?? '');
    });
  }

  it('runs a program end to end: stdout, stdin, --dir, exit code', async () => {
    writeFileSync(path.join(tmp, 'words.txt'), 'x y z\n');
    const hello = await child(['run', prog('hello'), 'from', 'the shell']);
    expect(hello).toEqual({ code: 0, stdout: 'hello, world\narg 1: from\narg 2: the shell\n', stderr: '' });
    const wc = await child(['run', '--dir', '.', prog('wc'), 'words.txt', 'nope.txt']);
    expect(wc.code).toBe(1);
    expect(wc.stdout).toContain('      1       3       6 words.txt');
    expect(wc.stderr).toMatch(/nope\.txt/);
    const cat = await child(['run', prog('cat')], { input: 'piped in' });
    expect(cat).toEqual({ code: 0, stdout: 'piped in', stderr: '' });
    const usage = await child(['run']);
    expect(usage.code).toBe(2);
  });

  it('exits 130 on Ctrl-C (SIGINT), killing the program', async () => {
    let sent = false;
    const r = await child(['run', prog('counter')], {
      onStdout: (text, kill) => {
        if (!sent && text.includes('\n')) {
          sent = true;
          kill('SIGINT');
        }
      },
    });
    expect(sent).toBe(true);
    expect(r.code).toBe(130);
    expect(r.stderr).toBe('');
  });
});
