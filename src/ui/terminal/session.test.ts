import { describe, expect, it } from 'vitest';
import { FakeBackend, NODE } from './fake-backend.ts';
import { FakeScreen } from './fake-screen.ts';
import { OutputStream, TerminalSession, toCrlf } from './session.ts';

const CTRL_C = '\x03';
const CTRL_D = '\x04';

function setup(backend = new FakeBackend(), cols = 60) {
  const screen = new FakeScreen(cols, 40);
  const raw: string[] = [];
  const session = new TerminalSession(
    backend,
    (data) => {
      raw.push(data);
      screen.write(data);
    },
    { cols, prompt: '$ ', banner: 'welcome\n' },
  );
  session.start();
  return { backend, screen, session, raw };
}

/** Waits until `f` holds, polling on macrotasks. */
async function until(f: () => boolean, what = 'condition') {
  for (let i = 0; i < 200; i++) {
    if (f()) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('toCrlf and OutputStream', () => {
  it('turns LF into CRLF and leaves CRLF alone, across chunks', () => {
    expect(toCrlf('a\nb\r\nc\n')).toBe('a\r\nb\r\nc\r\n');
    expect(toCrlf('\nx', true)).toBe('\nx');
    const s = new OutputStream();
    expect(s.push(new TextEncoder().encode('a\r'))).toBe('a\r');
    expect(s.push(new TextEncoder().encode('\nb\n'))).toBe('\nb\r\n');
  });

  it('decodes UTF-8 split across chunks', () => {
    const bytes = new TextEncoder().encode('é€');
    const s = new OutputStream();
    expect(s.push(bytes.slice(0, 1)) + s.push(bytes.slice(1, 3)) + s.push(bytes.slice(3))).toBe('é€');
    expect(s.end()).toBe('');
  });
});

describe('TerminalSession', () => {
  it('starts with the banner and a prompt', () => {
    const { screen, session } = setup();
    expect(screen.lines.slice(0, 2)).toEqual(['welcome', '$']);
    expect(session.mode).toBe('command');
  });

  it('help prints the commands, then a fresh prompt', async () => {
    const { screen, session } = setup();
    session.input('help\r');
    await session.whenIdle();
    expect(screen.text).toMatch(/^\$ help\nrun <prog> \[args…\] \[--on <peer>\] \[&\] +run a program/m);
    expect(screen.text).toMatch(/^kill <pid> +stop a process$/m);
    expect(screen.cursorLine).toBe('$');
    expect(screen.cursor.x).toBe(2);
    expect(session.history).toEqual(['help']);
  });

  it('run hello shows the output and returns to the prompt', async () => {
    const { screen, session, raw } = setup();
    session.input('run hello\r');
    await session.whenIdle();
    expect(screen.text).toBe(['welcome', '$ run hello', 'Hello, world!', 'I am pid a1b2c3.1 on a1b2c3d4.', '[pid a1b2c3.1 exited with code 0]', '$'].join('\n'));
    // Process output reached the terminal with CRLF line ends.
    expect(raw.join('')).toContain('Hello, world!\r\nI am pid a1b2c3.1');
  });

  it('errors are red and on their own line', async () => {
    const { screen, session, raw } = setup();
    session.input('bogus\r');
    await session.whenIdle();
    expect(raw.join('')).toContain('\x1b[31munknown command: bogus (try help)\x1b[0m\r\n');
    expect(screen.lines.slice(1, 4)).toEqual(['$ bogus', 'unknown command: bogus (try help)', '$']);
  });

  it('a running process receives stdin line by line, with local echo, and EOF on Ctrl-D', async () => {
    const { backend, screen, session } = setup();
    session.input('run upper\r');
    await until(() => session.mode === 'input', 'input mode');
    expect(session.foregroundPid).toBe('a1b2c3.1');
    session.input('shout\x7fT');
    expect(screen.cursorLine).toBe('shouT'); // echoed by the terminal, not sent yet
    expect(backend.calls.stdin).toEqual([]);
    session.input('\r');
    await until(() => screen.text.includes('SHOUT'), 'the echo of the process');
    expect(backend.calls.stdin).toEqual(['shouT\n']);
    session.input('bye' + CTRL_D);
    expect(backend.calls.stdin).toEqual(['shouT\n', 'bye']);
    session.input(CTRL_D);
    await session.whenIdle();
    expect(backend.calls.eof).toEqual(['a1b2c3.1']);
    expect(screen.text).toBe(['welcome', '$ run upper', 'shouT', 'SHOUT', 'byeBYE[upper: end of input]', '[pid a1b2c3.1 exited with code 0]', '$'].join('\n'));
    expect(session.mode).toBe('command');
    expect(session.foregroundPid).toBeUndefined();
  });

  it('keys typed while a program starts are its stdin (typeahead); after a command without a program they are the next command', async () => {
    const { backend, screen, session } = setup(new FakeBackend({ delayMs: 20 }));
    session.input('run upper\r');
    session.input('early\r'); // before the process is the foreground job
    await until(() => backend.calls.stdin.length > 0, 'the typeahead on stdin');
    expect(backend.calls.stdin).toEqual(['early\n']);
    session.input(CTRL_D);
    await session.whenIdle();
    session.input('run nosuch\r');
    session.input('help kill\r');
    await until(() => screen.text.includes('kill <pid>'), 'the typed-ahead command');
    expect(screen.text).toContain('no such program: nosuch');
  });

  it('Ctrl-C kills the foreground process and the prompt comes back', async () => {
    const { backend, screen, session } = setup();
    session.input('run spin\r');
    await until(() => session.mode === 'input', 'input mode');
    session.input('half a line' + CTRL_C);
    await session.whenIdle();
    expect(backend.calls.kill).toEqual(['a1b2c3.1']);
    expect(backend.calls.stdin).toEqual([]);
    // No "killed" message: the user pressed Ctrl-C and knows.
    expect(screen.lines.slice(1, 5)).toEqual(['$ run spin', 'half a line^C', '[pid a1b2c3.1 exited with code 137]', '$']);
    session.input('ps\r');
    await session.whenIdle();
    expect(screen.text).toMatch(/^a1b2c3\.1 {2}spin {5}a1b2c3d4 {2}EXITED \(137\) {2}2m05s$/m);
  });

  it('Ctrl-C typed before the process has started still kills it', async () => {
    const { backend, session } = setup();
    session.input('run spin\r' + CTRL_C);
    await session.whenIdle();
    expect(backend.calls.kill).toEqual(['a1b2c3.1']);
    expect(session.mode).toBe('command');
  });

  it('a process that ignores the kill can be detached with a second Ctrl-C', async () => {
    const { backend, screen, session } = setup();
    session.input('run stubborn\r');
    await until(() => session.mode === 'input', 'input mode');
    session.input(CTRL_C);
    await until(() => backend.calls.kill.length === 1, 'kill');
    expect(session.mode).toBe('input');
    session.input(CTRL_C);
    await session.whenIdle();
    expect(screen.text).toContain('[pid a1b2c3.1 detached: it may still be running, see ps]\n$');
  });

  it('a crash message is red on its own line, a lost process is reported, and the prompt comes back', async () => {
    const { screen, session, raw } = setup();
    session.input('run crash\r');
    await session.whenIdle();
    expect(raw.join('')).toContain('\x1b[31mtrap: unreachable executed\x1b[0m\r\n');
    expect(screen.text).toBe(['welcome', '$ run crash', 'about to crash', 'trap: unreachable executed', '[pid a1b2c3.1 exited with code 134]', '$'].join('\n'));
    session.input('run vanish\r');
    await session.whenIdle();
    // "working" had no newline: the red message starts its own line.
    expect(screen.lines.slice(5, 9)).toEqual(['$ run vanish', 'working', '[pid a1b2c3.2 lost: peer 7e57ab1e left the cluster]', '$']);
    expect(session.mode).toBe('command');
  });

  it('output without a final newline gets one before the prompt; the answer goes to stdin', async () => {
    const { backend, screen, session } = setup();
    session.input('run greet\r');
    await until(() => screen.text.includes('name?'), 'the question');
    session.input('Ada\r');
    await session.whenIdle();
    expect(backend.calls.stdin).toEqual(['Ada\n']);
    expect(screen.text).toBe(['welcome', '$ run greet', 'name? Ada', 'hi Ada', '[pid a1b2c3.1 exited with code 0]', '$'].join('\n'));
  });

  it('typeahead runs commands in order', async () => {
    const { backend, screen, session } = setup();
    session.input('run echo one\rrun echo two --on a1f\r');
    await until(() => backend.calls.run.length === 2, 'two runs');
    await session.whenIdle();
    expect(backend.calls.run).toEqual([
      { prog: 'echo', args: ['one'], on: undefined },
      { prog: 'echo', args: ['two'], on: NODE },
    ]);
    expect(screen.text).toBe(
      ['welcome', '$ run echo one', 'one', '[pid a1b2c3.1 exited with code 0]', '$ run echo two --on a1f', 'two', '[pid a1b2c3.2 exited with code 0]', '$'].join('\n'),
    );
  });

  it('Tab completes program names after run', async () => {
    const { screen, session } = setup();
    await until(() => {
      session.input('\x15run he\t');
      return screen.cursorLine === '$ run hello';
    }, 'program names');
    session.input('\r');
    await session.whenIdle();
    expect(screen.text).toContain('Hello, world!');
  });

  it('clear empties the screen and leaves a prompt on top', async () => {
    const { screen, session } = setup();
    session.input('help\r');
    await session.whenIdle();
    session.input('clear\r');
    await session.whenIdle();
    expect(screen.text).toBe('$');
    expect(screen.cursor).toEqual({ x: 2, y: 0 });
  });

  it('output of a background process goes above the prompt, and the line being typed stays as it was', async () => {
    const { screen, session, backend } = setup(new FakeBackend(), 30);
    session.input('run spin &\r');
    await session.whenIdle();
    const spin = backend.procs.get('a1b2c3.1')!;
    // A long line being typed, wrapped over two rows, the cursor moved back into it.
    session.input('echo ' + 'x'.repeat(30) + '\x1b[D\x1b[D');
    spin.io.onStdout(new TextEncoder().encode('tick 1\ntick 2\n'));
    spin.io.onStdout(new TextEncoder().encode('partial'));
    spin.finish(0);
    await until(() => screen.text.includes('exited'), 'the end of spin');
    expect(screen.text.split('\n').slice(1)).toEqual([
      '$ run spin &',
      '[pid a1b2c3.1 running in the b',
      'ackground]',
      'tick 1',
      'tick 2',
      'partial',
      '[pid a1b2c3.1 exited with code',
      ' 0]',
      '$ echo xxxxxxxxxxxxxxxxxxxxxxx',
      'xxxxxxx',
    ]);
    // The cursor is still where it was in the line, and editing goes on from there.
    expect(screen.cursor).toEqual({ x: 5, y: 10 });
    session.input('!\r');
    await session.whenIdle();
    expect(session.history.at(-1)).toBe('echo ' + 'x'.repeat(28) + '!xx');
  });

  it('writes nothing after dispose', async () => {
    const { session, raw } = setup();
    session.input('run hello\r');
    session.dispose();
    const before = raw.length;
    await session.whenIdle();
    session.input('x');
    expect(raw.length).toBe(before);
  });
});
