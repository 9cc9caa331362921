// The C programs in programs/c, built with clang for wasm32-wasi, run on our WASI over an
// in-memory filesystem with plain WebAssembly.instantiate (runSync: nothing may block, so the
// clock is virtual and stdin is buffered). Their output is compared with programs/expected, and
// the sample programs' output with Node's own node:wasi running the same binaries.
//
// The expected outputs of wasi_files, wasi_dirs and wasi_links are also what the same sources
// print when built natively and run on Linux (ext4), except one line: open("") is "ok" here
// because wasi-libc turns an empty relative path into "." before calling path_open (our
// path_open itself answers ENOENT, see wasi_raw).
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WASI } from 'node:wasi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from './clock.ts';
import { MemFs, memfsFrom, type MemFsTree } from './memfs.ts';
import { Wasi } from './preview1.ts';
import { BlockingCallError, runSync } from './run-sync.ts';
import { CollectOutput, bytesInput } from './streams.ts';
import { buildPrograms, expected, program } from './test-programs.ts';
import { Namespace } from './vfs.ts';

// Building may first install the toolchain with apt-get (as root on Debian): allow minutes.
beforeAll(() => buildPrograms(), 600_000);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function runOurs(name: string, args: string[], opts: { ns?: Namespace; stdin?: string; clock?: VirtualClock } = {}): Promise<Run> {
  const stdout = new CollectOutput();
  const stderr = new CollectOutput();
  const errors: unknown[] = [];
  const wasi = new Wasi({
    args: [name, ...args],
    env: { HOME: '/', TESTVAR: 'value' },
    namespace: opts.ns ?? new Namespace({ '/': new MemFs() }),
    stdin: bytesInput(opts.stdin ?? ''),
    stdout,
    stderr,
    clock: opts.clock ?? new VirtualClock(),
    onError: (call, err) => errors.push([call, err]),
  });
  const code = await runSync(program(name), wasi);
  expect(errors).toEqual([]);
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

// ───────────────────────────── node:wasi, for comparison ─────────────────────────────

let hostDir: string;
const FILES: Record<string, string | Uint8Array> = {
  'poem.txt': 'Hello, world\nhello again\n\nthe quick brown fox\njumps over the lazy dog\nHELLO LOUD\n',
  'empty.txt': '',
  'words.txt': '  leading spaces\ttabs\nno newline at end',
};

function bigFile(): Uint8Array {
  const b = new Uint8Array(1 << 20);
  let x = 12345;
  for (let i = 0; i < b.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

function runNode(name: string, args: string[], stdin = ''): Run {
  const io = mkdtempSync(path.join(tmpdir(), 'lshapes-nodewasi-io-'));
  const inPath = path.join(io, 'in');
  writeFileSync(inPath, stdin);
  const fds = [openSync(inPath, 'r'), openSync(path.join(io, 'out'), 'w'), openSync(path.join(io, 'err'), 'w')];
  try {
    const wasi = new WASI({
      version: 'preview1',
      args: [name, ...args],
      env: { HOME: '/' },
      preopens: { '/': hostDir },
      stdin: fds[0],
      stdout: fds[1],
      stderr: fds[2],
      returnOnExit: true,
    });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(program(name)), wasi.getImportObject() as WebAssembly.Imports);
    const code = wasi.start(instance);
    return {
      code,
      stdout: readFileSync(path.join(io, 'out'), 'utf8'),
      stderr: readFileSync(path.join(io, 'err'), 'utf8'),
    };
  } finally {
    fds.forEach((fd) => closeSync(fd));
    rmSync(io, { recursive: true, force: true });
  }
}

function sameTree(): Namespace {
  const tree: MemFsTree = { ...FILES, 'big.bin': bigFile() };
  return new Namespace({ '/': memfsFrom(tree) });
}

describe('sample programs against node:wasi', () => {
  beforeAll(() => {
    hostDir = mkdtempSync(path.join(tmpdir(), 'lshapes-nodewasi-'));
    for (const [name, data] of Object.entries(FILES)) writeFileSync(path.join(hostDir, name), data);
    writeFileSync(path.join(hostDir, 'big.bin'), bigFile());
  });
  afterAll(() => rmSync(hostDir, { recursive: true, force: true }));

  const cases: [string, string[], string?][] = [
    ['hello', ['one', 'two words']],
    ['cat', ['/poem.txt', 'words.txt']],
    ['cat', ['/poem.txt', '/missing.txt', 'empty.txt']],
    ['cat', [], 'from stdin\n'],
    ['cat', ['-', '/poem.txt'], 'dash means stdin\n'],
    ['wc', ['/poem.txt', 'words.txt', 'empty.txt', 'big.bin']],
    ['wc', [], 'a b c\n'],
    ['grep', ['hello', '/poem.txt']],
    ['grep', ['-in', '^hel+o', '/poem.txt', 'words.txt']],
    ['grep', ['-vc', 'o', '/poem.txt']],
    ['grep', ['z.*z', '/poem.txt']],
    ['grep', ['x', '/nope']],
    ['grep', ['-q', 'x']],
    ['sha256sum', ['/poem.txt', 'empty.txt', 'big.bin', 'missing']],
    ['sha256sum', [], 'abc'],
  ];
  for (const [name, args, stdin] of cases) {
    it(`${name} ${args.join(' ')}${stdin === undefined ? '' : ' < stdin'}: same stdout, stderr and exit code`, async () => {
      const ours = await runOurs(name, args, { ns: sameTree(), stdin });
      const theirs = runNode(name, args, stdin);
      expect(ours).toEqual(theirs);
    });
  }

  it('sha256sum agrees with node:crypto', async () => {
    const { stdout } = await runOurs('sha256sum', ['big.bin', 'poem.txt'], { ns: sameTree() });
    const sha = (d: string | Uint8Array) => createHash('sha256').update(d).digest('hex');
    expect(stdout).toBe(`${sha(bigFile())}  big.bin\n${sha(FILES['poem.txt']!)}  poem.txt\n`);
  });
});

describe('sample programs', () => {
  it('grep exits 0 on a match, 1 on none, 2 on an error', async () => {
    const ns = sameTree();
    expect((await runOurs('grep', ['fox', 'poem.txt'], { ns })).code).toBe(0);
    expect((await runOurs('grep', ['wolf', 'poem.txt'], { ns })).code).toBe(1);
    expect((await runOurs('grep', ['fox', 'nope'], { ns })).code).toBe(2);
    expect((await runOurs('grep', ['a+b?c*\\.$', 'x'], { ns, stdin: '' })).code).toBe(2);
    expect((await runOurs('grep', ['a+b?c*\\.$'], { stdin: 'xaac.\nab\naabbc.\n' })).stdout).toBe('xaac.\n');
  });

  it('counter ticks once a second on the (virtual) clock', async () => {
    const clock = new VirtualClock();
    const { code, stdout } = await runOurs('counter', ['4'], { clock });
    expect(code).toBe(0);
    expect(stdout).toBe('tick 1 (1s)\ntick 2 (2s)\ntick 3 (3s)\ntick 4 (4s)\n');
    expect(clock.elapsed).toBe(4_000_000_000n);
  });

  it('a program that blocks cannot run without the thread runtime', async () => {
    const wasi = new Wasi({ args: ['cat'], stdin: { read: () => new Promise<Uint8Array>(() => {}) } });
    await expect(runSync(program('cat'), wasi)).rejects.toThrow(BlockingCallError);
  });
});

describe('WASI test programs (expected output in programs/expected)', () => {
  for (const name of ['wasi_files', 'wasi_dirs', 'wasi_links']) {
    it(`${name} on a MemFs`, async () => {
      const { code, stdout, stderr } = await runOurs(name, []);
      expect(stderr).toBe('');
      expect(stdout).toBe(expected(name));
      expect(code).toBe(0);
    });
  }

  it('wasi_raw: every call, with mounts, rights and bad pointers', async () => {
    const ns = new Namespace();
    ns.mount('/', memfsFrom({ tmp: {}, ro: {} }));
    ns.mount('/ro', memfsFrom({ readme: 'read me' }), { readonly: true });
    ns.mount('/tmp', new MemFs());
    const { code, stdout } = await runOurs('wasi_raw', ['one', 'two words'], { ns, stdin: 'abc' });
    expect(stdout).toBe(expected('wasi_raw'));
    expect(code).toBe(7);
  });
});
