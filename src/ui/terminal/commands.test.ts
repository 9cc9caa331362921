import { describe, expect, it } from 'vitest';
import { stripAnsi } from './ansi.ts';
import {
  Shell,
  ShellSyntaxError,
  UsageError,
  formatColumns,
  formatCpu,
  formatPs,
  formatSize,
  normalizePath,
  parseRunArgs,
  quoteWord,
  resolvePeer,
  tokenize,
  type ForegroundJob,
  type ShellConsole,
} from './commands.ts';
import { FakeBackend, GOSSIP, NODE, SELF } from './fake-backend.ts';

const dec = new TextDecoder();

/** Records what the interpreter writes, colours kept in `raw`, stripped in `text`. */
class RecordingConsole implements ShellConsole {
  raw = '';
  errors: string[] = [];
  cleared = 0;
  job: ForegroundJob | undefined;
  jobs: (ForegroundJob | undefined)[] = [];
  print(text: string) {
    this.raw += text;
  }
  error(message: string) {
    this.errors.push(message);
    this.raw += `!${message}\n`;
  }
  clear() {
    this.cleared++;
  }
  stdout(bytes: Uint8Array) {
    this.raw += dec.decode(bytes);
  }
  stderr(bytes: Uint8Array) {
    this.raw += `[stderr]${dec.decode(bytes)}`;
  }
  foreground(job: ForegroundJob | undefined) {
    this.job = job;
    this.jobs.push(job);
  }
  get text() {
    return stripAnsi(this.raw);
  }
}

async function exec(line: string, backend = new FakeBackend()) {
  const con = new RecordingConsole();
  await new Shell(backend).execute(line, con);
  return { con, backend };
}

/** Waits until `f` holds, polling on macrotasks. */
async function until(f: () => boolean, what = 'condition') {
  for (let i = 0; i < 200; i++) {
    if (f()) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('tokenize', () => {
  it('splits on runs of blanks', () => {
    expect(tokenize('  run  hello\tworld  ')).toEqual(['run', 'hello', 'world']);
    expect(tokenize('')).toEqual([]);
    expect(tokenize('   ')).toEqual([]);
  });

  it('keeps single-quoted text literal, backslashes included', () => {
    expect(tokenize(`echo 'a  b' 'c\\d' '"'`)).toEqual(['echo', 'a  b', 'c\\d', '"']);
  });

  it('handles escapes inside double quotes', () => {
    expect(tokenize(`echo "say \\"hi\\"" "back\\\\slash" "\\n stays"`)).toEqual(['echo', 'say "hi"', 'back\\slash', '\\n stays']);
    expect(tokenize(`"it's"`)).toEqual(["it's"]);
  });

  it('escapes one character outside quotes', () => {
    expect(tokenize('cat my\\ file.txt \\"q\\\' \\\\')).toEqual(['cat', 'my file.txt', `"q'`, '\\']);
  });

  it('joins adjacent quoted and bare parts into one word, and keeps empty words', () => {
    expect(tokenize(`a"b c"'d'e`)).toEqual(['ab cde']);
    expect(tokenize(`echo '' ""`)).toEqual(['echo', '', '']);
  });

  it('rejects unterminated quotes and a trailing backslash', () => {
    expect(() => tokenize(`echo 'abc`)).toThrow(new ShellSyntaxError('unterminated single quote'));
    expect(() => tokenize(`echo "abc`)).toThrow(new ShellSyntaxError('unterminated double quote'));
    expect(() => tokenize(`echo "abc\\"`)).toThrow(ShellSyntaxError);
    expect(() => tokenize('echo abc\\')).toThrow(new ShellSyntaxError('trailing backslash'));
  });
});

describe('parseRunArgs', () => {
  it('takes the program and its arguments', () => {
    expect(parseRunArgs(['hello', 'a', 'b'])).toEqual({ prog: 'hello', args: ['a', 'b'], on: undefined });
  });

  it('takes --on after the arguments, before the program, or as --on=', () => {
    expect(parseRunArgs(['hello', 'a', '--on', 'a1f'])).toEqual({ prog: 'hello', args: ['a'], on: 'a1f' });
    expect(parseRunArgs(['--on', 'a1f', 'hello', 'a'])).toEqual({ prog: 'hello', args: ['a'], on: 'a1f' });
    expect(parseRunArgs(['--on=a1f', 'hello'])).toEqual({ prog: 'hello', args: [], on: 'a1f' });
    expect(parseRunArgs(['hello', 'x', '--on=7e'])).toEqual({ prog: 'hello', args: ['x'], on: '7e' });
  });

  it('passes everything after -- to the program', () => {
    expect(parseRunArgs(['hello', '--', 'x', '--on', 'y'])).toEqual({ prog: 'hello', args: ['x', '--on', 'y'], on: undefined });
  });

  it('rejects a missing program, a missing peer and a second --on', () => {
    expect(() => parseRunArgs([])).toThrow(/usage: run <prog>/);
    expect(() => parseRunArgs(['--on', 'a1'])).toThrow(/usage: run <prog>/);
    expect(() => parseRunArgs(['hello', '--on'])).toThrow(new UsageError('--on needs a peer id (or a prefix of one)'));
    expect(() => parseRunArgs(['--on', 'a1', 'hello', '--on', 'b'])).toThrow(/--on given twice/);
  });
});

describe('resolvePeer', () => {
  const peers = new FakeBackend().peerRows;

  it('resolves a unique prefix, case-insensitively, to the full id', () => {
    expect(resolvePeer('7e', peers)).toBe(GOSSIP);
    expect(resolvePeer('A1F', peers)).toBe(NODE);
    expect(resolvePeer('a1b2', peers)).toBe(SELF);
  });

  it('lets an exact id win over longer ids it prefixes', () => {
    const rows = [...peers, { ...peers[1]!, id: 'abc' }, { ...peers[1]!, id: 'abcd' }];
    expect(resolvePeer('abc', rows)).toBe('abc');
  });

  it('names the candidates of an ambiguous prefix', () => {
    expect(() => resolvePeer('a1', peers)).toThrow('ambiguous peer "a1": matches a1b2c3d4, a1f00d5e');
  });

  it('says when nothing matches', () => {
    expect(() => resolvePeer('ff', peers)).toThrow('no peer matches "ff" (see peers)');
    expect(() => resolvePeer('', peers)).toThrow('empty peer id');
  });
});

describe('helpers', () => {
  it('normalizes paths', () => {
    expect(normalizePath('')).toBe('/');
    expect(normalizePath('docs')).toBe('/docs');
    expect(normalizePath('/docs//a/./b/../c/')).toBe('/docs/a/c');
    expect(normalizePath('/../..')).toBe('/');
  });

  it('aligns columns, right-aligned where asked, without trailing blanks', () => {
    expect(formatColumns([['A', 'BB', 'C'], ['long', '1', 'x'], ['z', '100', '']], ['left', 'right'])).toBe(
      'A      BB  C\n' + 'long    1  x\n' + 'z     100\n',
    );
  });

  it('aligns by visible width, ignoring colours', () => {
    const out = formatColumns([['\x1b[31mred\x1b[0m', 'x'], ['plain!', 'y']]);
    expect(stripAnsi(out)).toBe('red     x\nplain!  y\n');
  });

  it('formats sizes and quotes words', () => {
    expect([0, 512, 1536, 5 * 1024 * 1024].map(formatSize)).toEqual(['0 B', '512 B', '1.5 KiB', '5.0 MiB']);
    expect([quoteWord('a'), quoteWord('a b'), quoteWord(''), quoteWord("it's")]).toEqual(['a', "'a b'", "''", `'it'\\''s'`]);
  });
});

describe('Shell commands', () => {
  it('help lists every command with its usage', async () => {
    const { con } = await exec('help');
    for (const usage of [
      'run <prog> [args…] [--on <peer>]',
      'ps',
      'kill <pid>',
      'peers',
      'ls [path]',
      'cat <path>',
      'cp <src> <dst>',
      'mv <src> <dst>',
      'rm [-r] <path>',
      'mkdir [-p] <path>',
      'cd [path]',
      'pwd',
      'help [cmd]',
      'clear',
    ]) {
      expect(con.text).toMatch(new RegExp(`^${usage.replace(/[[\]<>.…]/g, '\\$&')} +\\S`, 'm'));
    }
    expect(con.errors).toEqual([]);
  });

  it('help <cmd> explains one command; help run lists the programs', async () => {
    expect((await exec('help kill')).con.text).toBe('usage: kill <pid>\nstop a process\nThe pid as ps shows it, e.g. 4f2a1c.3: it works for a process on any peer.\n');
    const run = (await exec('help run')).con.text;
    expect(run).toContain('usage: run <prog> [args…] [--on <peer>]');
    expect(run).toContain('programs: crash echo fail greet hello spin stubborn upper vanish\n');
    expect((await exec('help nope')).con.errors).toEqual(['help: no such command: nope']);
    expect((await exec('help toString')).con.errors).toEqual(['help: no such command: toString']);
  });

  it('reports an unknown command', async () => {
    const { con } = await exec('frobnicate --now');
    expect(con.errors).toEqual(['unknown command: frobnicate (try help)']);
    expect(con.text).toBe('!unknown command: frobnicate (try help)\n');
  });

  it('reports syntax errors without running anything', async () => {
    const { con, backend } = await exec(`run hello 'oops`);
    expect(con.errors).toEqual(['syntax error: unterminated single quote']);
    expect(backend.calls.run).toEqual([]);
  });

  it('does nothing for a blank line', async () => {
    const { con } = await exec('   ');
    expect(con.raw).toBe('');
  });

  it('peers: aligned columns, this tab first, then direct links, then gossip', async () => {
    const { con } = await exec('peers');
    expect(con.text).toBe(
      [
        'ID        KIND     STATE      LOAD  CAP     RTT     UPTIME',
        'a1b2c3d4  browser  self        0.5    4       —      3 min',
        'a1f00d5e  node     connected  1.25   16  3.1 ms  2 h 5 min',
        '7e57ab1e  browser  gossip        0    2       —       30 s',
        '',
      ].join('\n'),
    );
  });

  it('ps: one aligned row per process, by start, with program, peer, state and CPU time', async () => {
    const backend = new FakeBackend();
    const shell = new Shell(backend);
    const con = new RecordingConsole();
    // Two processes: one that runs on, one that exits.
    void shell.execute(`run spin 'a b' --on 7e`, con);
    await until(() => con.job !== undefined, 'spin in the foreground');
    con.job!.interrupt();
    await until(() => con.job === undefined, 'spin to exit');
    await shell.execute('run fail', con);
    const ps = new RecordingConsole();
    await shell.execute('ps', ps);
    expect(ps.text).toBe(
      [
        'PID       PROGRAM     PEER      STATE           CPU',
        "a1b2c3.1  spin 'a b'  7e57ab1e  EXITED (137)  2m05s",
        'a1b2c3.2  fail        a1b2c3d4  EXITED (3)     0.4s',
        '',
      ].join('\n'),
    );
  });

  it('ps sorts by start time when the rows have one, and colours the state', () => {
    const row = (pid: string, startedAt: number | undefined, state: 'RUNNING' | 'WAITING' = 'RUNNING') => ({
      pid,
      prog: 'primes',
      args: [],
      peer: NODE,
      state,
      cpuMs: 0,
      ...(startedAt !== undefined ? { startedAt } : {}),
    });
    const text = (rows: ReturnType<typeof row>[]) => stripAnsi(formatPs(rows)).split('\n').slice(1, -1).map((l) => l.split(' ')[0]);
    expect(text([row('b.10', 30), row('a.2', 10), row('c.1', 20)])).toEqual(['a.2', 'c.1', 'b.10']);
    // Without start times: as given.
    expect(text([row('b.10', 30), row('a.2', undefined), row('c.1', 20)])).toEqual(['b.10', 'a.2', 'c.1']);
    expect(formatPs([row('a.1', 1, 'RUNNING')])).toContain('\x1b[32mRUNNING');
  });

  it('formats CPU time', () => {
    expect([0, 99, 400, 12_345, 59_999, 60_000, 125_000, 3_599_999, 3_720_000].map(formatCpu)).toEqual([
      '0.0s',
      '0.0s',
      '0.4s',
      '12.3s',
      '59.9s',
      '1m00s',
      '2m05s',
      '59m59s',
      '1h02m',
    ]);
    expect(formatCpu(-1)).toBe('—');
  });

  it('ls lists directories first, with sizes and replicas; relative paths start at the working directory', async () => {
    expect((await exec('ls')).con.text).toBe(
      [
        ' dir              docs/',
        ' dir              empty/',
        ' 7 B  on 2 peers  blob.bin',
        '38 B  on 2 peers  hello.txt',
        '',
      ].join('\n'),
    );
    expect((await exec('ls docs/../docs')).con.text).toBe('10 B  on 2 peers  readme.md\n');
    expect((await exec('ls /cluster/empty')).con.raw).toBe('');
    expect((await exec('ls ..')).con.text).toBe('dir              cluster/\n' + '8 B  on 2 peers  README.txt\n');
  });

  it('ls and cat report backend errors prefixed with the command', async () => {
    expect((await exec('ls /nope')).con.errors).toEqual(['ls: /nope: no such directory']);
    expect((await exec('cat docs')).con.errors).toEqual(['cat: /cluster/docs: is a directory']);
    expect((await exec('cat')).con.errors).toEqual(['usage: cat <path>']);
  });

  it('cat prints text files and refuses binary ones', async () => {
    expect((await exec('cat hello.txt')).con.text).toBe('hello from the filesystem\nsecond line\n');
    expect((await exec('cat /cluster/blob.bin')).con.errors).toEqual(['cat: /cluster/blob.bin: binary file (7 B), not shown']);
  });

  it('starts in /cluster; cd changes the working directory, pwd prints it, a bare cd goes back', async () => {
    const backend = new FakeBackend();
    const shell = new Shell(backend);
    const run = async (line: string) => {
      const con = new RecordingConsole();
      await shell.execute(line, con);
      return con;
    };
    expect(shell.cwd).toBe('/cluster');
    expect((await run('pwd')).text).toBe('/cluster\n');
    expect((await run('cd docs')).errors).toEqual([]);
    expect((await run('pwd')).text).toBe('/cluster/docs\n');
    expect((await run('cat readme.md')).text).toBe('# LSHAPES\n');
    expect((await run('cd ../..')).errors).toEqual([]);
    expect(shell.cwd).toBe('/');
    expect((await run('cat README.txt')).text).toBe('read me\n');
    expect((await run('cd /cluster/hello.txt')).errors).toEqual(['cd: /cluster/hello.txt: not a directory']);
    expect((await run('cd nowhere')).errors).toEqual(['cd: /nowhere: no such file']);
    expect(shell.cwd).toBe('/');
    expect((await run('cd')).errors).toEqual([]);
    expect(shell.cwd).toBe('/cluster');
    expect((await run('cd a b')).errors).toEqual(['usage: cd [path]']);
    expect((await run('pwd x')).errors).toEqual(['usage: pwd']);
    // relative paths of the other commands follow it too
    await run('cd docs');
    expect((await run('cp readme.md copy.md')).errors).toEqual([]);
    expect(new TextDecoder().decode(backend.files.get('/cluster/docs/copy.md'))).toBe('# LSHAPES\n');
  });

  it('cp copies a file, into a directory when the destination is one', async () => {
    const backend = new FakeBackend();
    expect((await exec('cp hello.txt docs', backend)).con.errors).toEqual([]);
    expect((await exec('cp /cluster/hello.txt /cluster/h2', backend)).con.errors).toEqual([]);
    expect(backend.files.get('/cluster/docs/hello.txt')).toEqual(backend.files.get('/cluster/hello.txt'));
    expect(backend.files.has('/cluster/h2')).toBe(true);
    expect((await exec('cp docs x', backend)).con.errors).toEqual(['cp: /cluster/docs: is a directory (cp copies files)']);
    expect((await exec('cp nope x', backend)).con.errors).toEqual(['cp: /cluster/nope: no such file']);
    expect((await exec('cp hello.txt /x', backend)).con.errors).toEqual(['cp: /x: read-only']);
    expect((await exec('cp hello.txt', backend)).con.errors).toEqual(['usage: cp <src> <dst>']);
    expect((await exec('cp -r a b', backend)).con.errors).toEqual(['usage: cp <src> <dst>']);
  });

  it('mv renames and moves, directories with what they hold', async () => {
    const backend = new FakeBackend();
    expect((await exec('mv hello.txt greeting.txt', backend)).con.errors).toEqual([]);
    expect([backend.files.has('/cluster/hello.txt'), backend.files.has('/cluster/greeting.txt')]).toEqual([false, true]);
    expect((await exec('mv docs empty', backend)).con.errors).toEqual([]);
    expect(backend.files.has('/cluster/empty/docs/readme.md')).toBe(true);
    expect((await exec('mv /README.txt x', backend)).con.errors).toEqual(['mv: /README.txt: read-only']);
    expect((await exec('mv gone x', backend)).con.errors).toEqual(['mv: /cluster/gone: no such file']);
    expect((await exec('mv a', backend)).con.errors).toEqual(['usage: mv <src> <dst>']);
  });

  it('rm removes files, and directories only with -r', async () => {
    const backend = new FakeBackend();
    expect((await exec('rm blob.bin', backend)).con.errors).toEqual([]);
    expect(backend.files.has('/cluster/blob.bin')).toBe(false);
    expect((await exec('rm blob.bin', backend)).con.errors).toEqual(['rm: /cluster/blob.bin: no such file']);
    expect((await exec('rm docs', backend)).con.errors).toEqual(['rm: /cluster/docs: is a directory (use rm -r)']);
    expect((await exec('rm -r docs', backend)).con.errors).toEqual([]);
    expect([backend.dirs.has('/cluster/docs'), backend.files.has('/cluster/docs/readme.md')]).toEqual([false, false]);
    expect((await exec('rm -x a', backend)).con.errors).toEqual(['usage: rm [-r] <path>']);
    expect((await exec('rm', backend)).con.errors).toEqual(['usage: rm [-r] <path>']);
    expect((await exec('rm -- -r', backend)).con.errors).toEqual(['rm: /cluster/-r: no such file']);
  });

  it('mkdir makes a directory; -p makes its parents and accepts one that exists', async () => {
    const backend = new FakeBackend();
    expect((await exec('mkdir new', backend)).con.errors).toEqual([]);
    expect(backend.dirs.has('/cluster/new')).toBe(true);
    expect((await exec('mkdir new', backend)).con.errors).toEqual(['mkdir: /cluster/new: already exists']);
    expect((await exec('mkdir a/b/c', backend)).con.errors).toEqual(['mkdir: /cluster/a/b/c: no such file']);
    expect((await exec('mkdir -p a/b/c', backend)).con.errors).toEqual([]);
    expect(['/cluster/a', '/cluster/a/b', '/cluster/a/b/c'].every((d) => backend.dirs.has(d))).toBe(true);
    expect((await exec('mkdir -p new', backend)).con.errors).toEqual([]);
    expect((await exec('mkdir -p', backend)).con.errors).toEqual(['usage: mkdir [-p] <path>']);
  });

  it('kill validates the pid and passes it on', async () => {
    expect((await exec('kill')).con.errors).toEqual(['usage: kill <pid>']);
    expect((await exec('kill a.1 a.2')).con.errors).toEqual(['usage: kill <pid>']);
    for (const bad of ['abc', '-3', '42', 'a1b2c3.', '.3', 'a1b2c3.x', 'zz.1']) {
      expect((await exec(`kill ${bad}`)).con.errors).toEqual([`kill: not a pid: ${bad} (pids look like 4f2a1c.3, see ps)`]);
    }
    const { con, backend } = await exec('kill 4F2A1C.42');
    expect(backend.calls.kill).toEqual(['4f2a1c.42']);
    expect(con.errors).toEqual(['kill: no such process: 4f2a1c.42']);
  });

  it('kill stops a running process by its pid text', async () => {
    const backend = new FakeBackend();
    const shell = new Shell(backend);
    const con = new RecordingConsole();
    const running = shell.execute('run spin', con);
    await until(() => con.job !== undefined, 'spin in the foreground');
    const other = new RecordingConsole();
    await shell.execute(`kill ${con.job!.pid}`, other);
    expect(other.errors).toEqual([]);
    expect(backend.calls.kill).toEqual(['a1b2c3.1']);
    await running;
    // Killed from elsewhere: the terminal says why it ended.
    expect(con.errors).toEqual(['killed']);
    expect(con.text).toBe('!killed\n[pid a1b2c3.1 exited with code 137]\n');
  });

  it('ps, peers and clear take no arguments', async () => {
    expect((await exec('ps -a')).con.errors).toEqual(['usage: ps']);
    expect((await exec('peers x')).con.errors).toEqual(['usage: peers']);
    const clear = await exec('clear');
    expect(clear.con.cleared).toBe(1);
    expect((await exec('clear all')).con.cleared).toBe(0);
  });

  it('run streams the output and returns when the process exits', async () => {
    const { con, backend } = await exec('run hello "big world"');
    expect(backend.calls.run).toEqual([{ prog: 'hello', args: ['big world'], on: undefined }]);
    expect(con.text).toBe('Hello, big world!\nI am pid a1b2c3.1 on a1b2c3d4.\n[pid a1b2c3.1 exited with code 0]\n');
    // The job owned the keyboard while it ran and gave it back.
    expect(con.jobs.map((j) => j?.pid)).toEqual(['a1b2c3.1', undefined]);
  });

  it('run --on resolves a peer prefix to the full id', async () => {
    const { con, backend } = await exec('run hello --on a1f');
    expect(backend.calls.run).toEqual([{ prog: 'hello', args: [], on: NODE }]);
    expect(con.text).toContain('on a1f00d5e.');
  });

  it('run --on refuses an ambiguous or unknown prefix before running anything', async () => {
    const amb = await exec('run hello --on a1');
    expect(amb.con.errors).toEqual(['run: ambiguous peer "a1": matches a1b2c3d4, a1f00d5e']);
    expect(amb.backend.calls.run).toEqual([]);
    const none = await exec('run hello --on zz');
    expect(none.con.errors).toEqual(['run: no peer matches "zz" (see peers)']);
    expect(none.backend.calls.run).toEqual([]);
  });

  it('run reports an unknown program and a non-zero exit code', async () => {
    expect((await exec('run nope')).con.errors).toEqual(['run: no such program: nope']);
    const fail = await exec('run fail');
    expect(fail.con.text).toBe('[stderr]fail: something went wrong\n[pid a1b2c3.1 exited with code 3]\n');
  });

  it('run shows why a process ended when it did not simply exit, in red, then its code', async () => {
    const { con } = await exec('run crash');
    expect(con.errors).toEqual(['trap: unreachable executed']);
    expect(con.text).toBe('about to crash\n!trap: unreachable executed\n[pid a1b2c3.1 exited with code 134]\n');
    expect(con.raw).toContain('\x1b[2m[pid a1b2c3.1 exited with code 134]');
    expect(con.job).toBeUndefined();
  });

  it('run reports a lost process and gives the keyboard back', async () => {
    const { con } = await exec('run vanish');
    expect(con.errors).toEqual(['[pid a1b2c3.1 lost: peer 7e57ab1e left the cluster]']);
    expect(con.text).toBe('working!' + '[pid a1b2c3.1 lost: peer 7e57ab1e left the cluster]\n');
  });

  it('the status line starts on a line of its own after output without a final newline', async () => {
    const backend = new FakeBackend();
    const con = new RecordingConsole();
    const done = new Shell(backend).execute('run greet', con);
    await until(() => con.text === 'name? ', 'the question');
    con.job!.eof();
    await done;
    expect(con.text).toBe('name? \n[pid a1b2c3.1 exited with code 1]\n');
    expect(con.jobs.map((j) => j?.pid)).toEqual(['a1b2c3.1', undefined]);
  });

  it('the foreground job carries stdin and EOF to the process', async () => {
    const backend = new FakeBackend();
    const con = new RecordingConsole();
    const done = new Shell(backend).execute('run upper', con);
    await until(() => con.job !== undefined, 'the job');
    const enc = new TextEncoder();
    con.job!.stdin(enc.encode('abc\n'));
    await until(() => con.text.includes('ABC\n'), 'ABC');
    con.job!.eof();
    await done;
    expect(backend.calls.stdin).toEqual(['abc\n']);
    expect(backend.calls.eof).toEqual(['a1b2c3.1']);
    expect(con.text).toBe('ABC\n[upper: end of input]\n[pid a1b2c3.1 exited with code 0]\n');
  });

  it('Ctrl-C kills the process; a second one detaches from a process that does not exit', async () => {
    const backend = new FakeBackend();
    const con = new RecordingConsole();
    const done = new Shell(backend).execute('run stubborn', con);
    await until(() => con.job !== undefined, 'the job');
    con.job!.interrupt();
    await until(() => backend.calls.kill.length === 1, 'kill');
    expect(backend.calls.kill).toEqual(['a1b2c3.1']);
    expect(con.job).toBeDefined(); // still waiting for it
    con.job!.interrupt();
    await done;
    expect(backend.calls.kill).toEqual(['a1b2c3.1']);
    expect(con.text).toBe('[pid a1b2c3.1 detached: it may still be running, see ps]\n');
    expect(con.job).toBeUndefined();
  });
});

describe('Shell: migrate, background jobs, speculation in ps', () => {
  it('migrate resolves the peer prefix, passes the pid on and says where it went and how long it stopped', async () => {
    const backend = new FakeBackend();
    const shell = new Shell(backend);
    await shell.execute('run spin &', new RecordingConsole());
    const con = new RecordingConsole();
    await shell.execute('migrate A1B2C3.1 a1f', con);
    expect(backend.calls.migrate).toEqual([{ pid: 'a1b2c3.1', to: NODE }]);
    expect(con.errors).toEqual([]);
    expect(con.text).toBe('a1b2c3.1 moved to a1f00d5e (stopped 12 ms)\n');
    // The backend's reason, prefixed with the command.
    const again = new RecordingConsole();
    await shell.execute('migrate a1b2c3.1 a1f00d', again);
    expect(again.errors).toEqual(['migrate: a1b2c3.1 already runs on a1f00d5e']);
  });

  it('migrate refuses a bad pid, a missing or ambiguous peer, and extra words, before asking the backend', async () => {
    for (const [line, error] of [
      ['migrate', 'usage: migrate <pid> <peer>'],
      ['migrate a1b2c3.1', 'usage: migrate <pid> <peer>'],
      ['migrate a1b2c3.1 a1f x', 'usage: migrate <pid> <peer>'],
      ['migrate 42 a1f', 'migrate: not a pid: 42 (pids look like 4f2a1c.3, see ps)'],
      ['migrate a1b2c3.1 a1', 'migrate: ambiguous peer "a1": matches a1b2c3d4, a1f00d5e'],
      ['migrate a1b2c3.1 zz', 'migrate: no peer matches "zz" (see peers)'],
    ] as const) {
      const { con, backend } = await exec(line);
      expect(con.errors, line).toEqual([error]);
      expect(backend.calls.migrate).toEqual([]);
    }
    expect((await exec('migrate a1b2c3.9 a1f')).con.errors).toEqual(['migrate: no such process: a1b2c3.9']);
    expect((await exec('help migrate')).con.text).toContain('usage: migrate <pid> <peer>\nmove a running process to another peer\n');
  });

  it('run … & returns at once with an empty stdin; the output and the end are printed as they come', async () => {
    const backend = new FakeBackend();
    const shell = new Shell(backend);
    const con = new RecordingConsole();
    await shell.execute('run upper --on a1f &', con);
    // Back at the prompt without waiting, and the keyboard was never taken.
    expect(con.jobs).toEqual([]);
    expect(backend.calls.run).toEqual([{ prog: 'upper', args: [], on: NODE }]);
    await until(() => con.text.includes('exited'), 'the background job to end');
    expect(backend.calls.eof).toEqual(['a1b2c3.1']);
    expect(con.text).toBe('[pid a1b2c3.1 running in the background]\n[upper: end of input]\n[pid a1b2c3.1 exited with code 0]\n');
    const crash = new RecordingConsole();
    await shell.execute('run crash &', crash);
    await until(() => crash.text.includes('exited'), 'the crash');
    expect(crash.errors).toEqual(['[pid a1b2c3.2: trap: unreachable executed]']);
    const lost = new RecordingConsole();
    await shell.execute('run vanish &', lost);
    await until(() => lost.errors.length > 0, 'the loss');
    expect(lost.errors).toEqual(['[pid a1b2c3.3 lost: peer 7e57ab1e left the cluster]']);
  });

  it('parseRunArgs takes a final & as its own word only', () => {
    expect(parseRunArgs(['counter', '5', '--on', 'a1', '&'])).toEqual({ prog: 'counter', args: ['5'], on: 'a1', background: true });
    expect(parseRunArgs(['echo', 'a&'])).toEqual({ prog: 'echo', args: ['a&'], on: undefined });
    expect(parseRunArgs(['echo', '--', '&'])).toEqual({ prog: 'echo', args: [], on: undefined, background: true });
    expect(() => parseRunArgs(['&'])).toThrow('usage: run');
  });

  it('ps adds a SPEC column once a process speculated, and a twin line under one in WAIT_CONFIRM', () => {
    const base = { prog: 'pingpong', args: [], peer: NODE, cpuMs: 1500 };
    const rows = [
      { ...base, pid: 'a.1', state: 'RUNNING' as const, startedAt: 1, speculation: { depth: 3, predictions: 9, hits: 5, rollbacks: 1, savedMs: 40 } },
      { ...base, pid: 'a.2', state: 'WAITING' as const, startedAt: 2, speculation: { depth: 0, predictions: 2, hits: 2, rollbacks: 0, savedMs: 8 } },
      { ...base, pid: 'a.3', state: 'RUNNING' as const, startedAt: 3 },
    ];
    expect(stripAnsi(formatPs(rows))).toBe(
      [
        'PID  PROGRAM   PEER      STATE          CPU   SPEC',
        'a.1  pingpong  a1f00d5e  WAIT_CONFIRM  1.5s  3/5/1',
        '  ↳  twin      a1f00d5e  STOPPED ×3',
        'a.2  pingpong  a1f00d5e  WAITING       1.5s  0/2/0',
        'a.3  pingpong  a1f00d5e  RUNNING       1.5s      -',
        '',
      ].join('\n'),
    );
    expect(formatPs(rows)).toContain('\x1b[33mWAIT_CONFIRM');
    expect(formatPs(rows)).toContain('\x1b[35mSTOPPED ×3');
    // Without speculation, ps stays as narrow as before.
    expect(stripAnsi(formatPs([rows[2]!])).split('\n')[0]).toBe('PID  PROGRAM   PEER      STATE     CPU');
  });
});

describe('Shell.complete', () => {
  it('offers commands first, programs after run (past --on), peers after --on, commands after help', async () => {
    const shell = new Shell(new FakeBackend());
    await shell.refreshCompletions();
    expect(shell.complete('')).toContain('peers');
    expect(shell.complete('pe')).toContain('run');
    expect(shell.complete('run ')).toEqual(['crash', 'echo', 'fail', 'greet', 'hello', 'spin', 'stubborn', 'upper', 'vanish']);
    expect(shell.complete('run --on 7e hel')).toContain('hello');
    expect(shell.complete('run --on ')).toEqual(['7e57ab1e', 'a1b2c3d4', 'a1f00d5e']);
    expect(shell.complete('run hello ')).toEqual([]);
    expect(shell.complete('help ')).toContain('kill');
    expect(shell.complete('help kill ')).toEqual([]);
    expect(shell.complete('ls ')).toEqual([]);
    expect(shell.complete('migrate a1b2c3.1 ')).toEqual(['7e57ab1e', 'a1b2c3d4', 'a1f00d5e']);
    expect(shell.complete('migrate ')).toEqual([]);
  });
});
