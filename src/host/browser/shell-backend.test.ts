// The tab's terminal path end to end, minus the browser: TerminalSession → ShellBackend → comlink
// (a real MessageChannel, as between the tab and its kernel worker) → shell service →
// SchedulerClient → kernel → a scripted Scheduler port.
import * as Comlink from 'comlink';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeScheduler, bareKernel } from '../common/fake-scheduler.ts';
import { SchedulerClient } from '../common/scheduler-client.ts';
import { createShellService, type ShellService } from '../common/shell-service.ts';
import { ShellFiles } from '../common/shell-files.ts';
import { memfsFrom } from '../../kernel/wasi/memfs.ts';
import { Namespace, Vfs } from '../../kernel/wasi/vfs.ts';
import type { ProcessInfo } from '../../servers/scheduler/client.ts';
import type { PeerRow } from '../../ui/terminal/commands.ts';
import { FakeScreen } from '../../ui/terminal/fake-screen.ts';
import { TerminalSession } from '../../ui/terminal/session.ts';
import { createShellBackend, createTestShell, toProcessRow } from './shell-backend.ts';

const ports: MessagePort[] = [];
afterEach(() => {
  for (const p of ports.splice(0)) p.close();
});

async function setup(peerRows?: PeerRow[]) {
  const { kernel } = await bareKernel('shell-backend-test');
  const fake = new FakeScheduler(kernel);
  const client = new SchedulerClient(kernel, 'shell');
  // A MemFs stands in for the cluster filesystem.
  const cluster = memfsFrom({ 'notes.txt': 'first note\n', docs: { 'a.md': '# A\n' } });
  const service = createShellService(() => client, new ShellFiles(cluster));
  const { port1, port2 } = new MessageChannel();
  ports.push(port1, port2);
  Comlink.expose(service, port2);
  const remote = Comlink.wrap<ShellService>(port1);
  const rows = peerRows;
  const backend = createShellBackend(remote, () => rows);
  return { kernel, fake, remote, backend, cluster: new Vfs(new Namespace({ '/': cluster })) };
}

function terminal(backend: ReturnType<typeof createShellBackend>) {
  const screen = new FakeScreen(80, 400);
  const raw: string[] = [];
  const session = new TerminalSession(
    backend,
    (d) => {
      raw.push(d);
      screen.write(d);
    },
    { cols: 80, prompt: '$ ', banner: '' },
  );
  session.start();
  return { screen, session, raw };
}

async function until(f: () => boolean, what: string) {
  for (let i = 0; i < 500; i++) {
    if (f()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('the terminal over the kernel worker api', () => {
  it('run prints all the output, in order, before the prompt comes back', async () => {
    const { fake, backend, kernel } = await setup();
    fake.chunks = 300;
    const { screen, session } = terminal(backend);
    session.input('run hello there\r');
    await session.whenIdle();
    const lines = screen.text.split('\n');
    const expected = Array.from({ length: 300 }, (_, i) => `hello there ${i}`);
    const pid = [...fake.procs.keys()][0]!;
    expect(lines).toEqual(['$ run hello there', ...expected, `[pid ${pid} exited with code 0]`, '$']);
    expect(fake.requests.find((r) => r.kind === 'run')).toMatchObject({ kind: 'run', name: 'hello', args: ['there'], interactive: true });
    expect(kernel.self.startsWith(fake.procs.keys().next().value!.split('.')[0]!)).toBe(true);
  });

  it('a crash prints its message in red, then the exit code; a lost process is reported', async () => {
    const { backend } = await setup();
    const { screen, session, raw } = terminal(backend);
    session.input('run crash\r');
    await session.whenIdle();
    const pid = screen.text.match(/\[pid (\S+) exited with code 134\]/)?.[1];
    expect(pid).toBeDefined();
    expect(screen.text).toBe(['$ run crash', 'about to crash', 'oh no', 'trap: unreachable executed', `[pid ${pid} exited with code 134]`, '$'].join('\n'));
    expect(raw.join('')).toContain('\x1b[31mtrap: unreachable executed\x1b[0m');
    session.input('run vanish\r');
    await session.whenIdle();
    expect(screen.text).toMatch(/\$ run vanish\nworking\n\[pid \S+ lost: peer 7e57ab1e left the cluster\]\n\$$/);
  });

  it('stdin goes to the process, Ctrl-D ends it; Ctrl-C kills; ps shows the string pids', async () => {
    const { backend } = await setup();
    const { screen, session } = terminal(backend);
    session.input('run upper\r');
    await until(() => session.mode === 'input', 'input mode');
    session.input('shout\r');
    await until(() => screen.text.includes('SHOUT'), 'the echo');
    session.input('\x04');
    await session.whenIdle();
    expect(screen.text).toMatch(/^\$ run upper\nshout\nSHOUT\n\[pid \S+\.1 exited with code 0\]\n\$$/);

    session.input('run spin\r');
    await until(() => session.mode === 'input', 'spin running');
    const spinPid = session.foregroundPid!;
    session.input('\x03');
    await session.whenIdle();
    session.input('ps\r');
    await session.whenIdle();
    expect(screen.text).toMatch(new RegExp(`^${spinPid.replace('.', '\\.')} +spin +\\S{8} +EXITED \\(137\\) +0\\.2s$`, 'm'));
    expect(screen.text).toMatch(/^\S+\.1 +upper +\S{8} +EXITED \(0\) +0\.1s$/m);
  });

  it('run failures, kill errors, ls and cat reach the terminal with their messages', async () => {
    const { backend } = await setup();
    const { screen, session } = terminal(backend);
    for (const line of ['run nope', 'kill abc123.9', 'ls /texts', 'cat /texts', 'cat /README.txt']) {
      session.input(line + '\r');
      await session.whenIdle();
    }
    expect(screen.text).toContain('$ run nope\nrun: no such program: nope\n');
    expect(screen.text).toContain('$ kill abc123.9\nkill: no such process: abc123.9\n');
    expect(screen.text).toContain('$ ls /texts\n292 B    numbers.txt\n633 B    ozymandias.txt\n');
    expect(screen.text).toContain('$ cat /texts\ncat: /texts: is a directory\n');
    expect(screen.text).toContain('$ cat /README.txt\nWelcome to LSHAPES.\n');
  });

  it('the file commands work on the cluster filesystem, relative to the working directory', async () => {
    const { backend, cluster } = await setup();
    const { screen, session } = terminal(backend);
    const lines = [
      'pwd',
      'ls',
      'mkdir -p backup/old',
      'cp notes.txt backup',
      'cp /texts/numbers.txt backup/old/n.txt',
      'mv docs backup',
      'cd backup',
      'pwd',
      'ls',
      'cat docs/a.md',
      'rm docs',
      'rm -r docs',
      'rm /README.txt',
      'rm nothing',
      'cd /',
      'ls',
    ];
    for (const line of lines) {
      session.input(line + '\r');
      await session.whenIdle();
    }
    expect(screen.text).toContain('$ pwd\n/cluster\n$ ls\n dir    docs/\n11 B    notes.txt\n');
    expect(screen.text).toContain('$ cd backup\n$ pwd\n/cluster/backup\n$ ls\n dir    docs/\n dir    old/\n11 B    notes.txt\n$ cat docs/a.md\n# A\n');
    expect(screen.text).toContain('$ rm docs\nrm: /cluster/backup/docs: is a directory (use rm -r)\n$ rm -r docs\n$ rm /README.txt\nrm: /README.txt: read-only\n');
    expect(screen.text).toContain('$ rm nothing\nrm: /cluster/backup/nothing: no such file\n');
    expect(screen.text).toMatch(/\$ cd \/\n\$ ls\n +dir {4}cluster\/\n/);
    expect(await cluster.readText('/backup/notes.txt')).toBe('first note\n');
    expect((await cluster.readText('/backup/old/n.txt')).split('\n')[99]).toBe('100');
    expect(await cluster.exists('/docs')).toBe(false);
    expect(await cluster.exists('/backup/docs')).toBe(false);
  });

  it('peers come from the getter; before a view they fail with a message', async () => {
    const row: PeerRow = { id: 'a1b2c3d4e5f60718293a4b5c6d7e8f90', kind: 'browser', state: 'self', load: 0, capacity: 4, uptimeMs: 0 };
    expect(await (await setup([row])).backend.peers()).toEqual([row]);
    await expect((await setup()).backend.peers()).rejects.toThrow('no view of the cluster yet');
  });
});

describe('createTestShell', () => {
  it('runs to the end with text output, feeds stdin, reports crashes and lost processes', async () => {
    const { remote } = await setup();
    const shell = createTestShell(remote);
    const hello = await shell.run('hello', ['e2e']);
    expect(hello.code).toBe(0);
    expect(hello.stdout.split('\n')[0]).toBe('hello e2e 0');
    expect(await shell.run('upper', [], { stdin: 'abc\n' })).toMatchObject({ code: 0, stdout: 'ABC\n', stderr: '' });
    expect(await shell.run('crash')).toMatchObject({ code: 134, message: 'trap: unreachable executed', stdout: 'about to crash\n', stderr: 'oh no\n' });
    expect(await shell.run('vanish')).toMatchObject({ lost: 'peer 7e57ab1e left the cluster', stdout: 'working' });
    await expect(shell.run('nope')).rejects.toThrow('no such program: nope');
  });

  it('start, output, kill, wait and ps for long-running processes', async () => {
    const { remote } = await setup();
    const shell = createTestShell(remote);
    const { pid } = await shell.start('spin');
    expect((await shell.ps()).find((r: ProcessInfo) => r.pid === pid)?.state).toBe('RUNNING');
    expect(shell.output(pid)).toEqual({ stdout: '', stderr: '' });
    await shell.kill(pid);
    expect(await shell.wait(pid)).toMatchObject({ pid, code: 137, message: 'killed' });
    expect(await shell.programs()).toContain('spin');
  });
});

describe('the terminal moving a process over the kernel worker api', () => {
  it('run … & then migrate: the prompt comes back and migrate prints where it went', async () => {
    const peers: PeerRow[] = [];
    const { backend, kernel } = await setup(peers);
    peers.push({ id: kernel.self, kind: 'browser', state: 'self', load: 0, capacity: 1, uptimeMs: 0 });
    const { screen, session } = terminal(backend);
    session.input('run spin &\r');
    await session.whenIdle();
    await until(() => screen.text.includes('running in the background'), 'the background job');
    const pid = /\[pid (\S+) running/.exec(screen.text)![1]!;
    session.input(`migrate ${pid} ${kernel.self.slice(0, 6)}\r`);
    await session.whenIdle();
    expect(screen.text).toContain(`${pid} moved to ${kernel.self.slice(0, 8)} (stopped 7 ms)`);
    session.input(`kill ${pid}\r`);
    await until(() => screen.text.includes('exited with code 137'), 'the kill');
  });
});

describe('toProcessRow', () => {
  it('maps a Scheduler row to a terminal row', () => {
    const info: ProcessInfo = { pid: 'a.1', name: 'cat', args: ['/x'], peer: 'p', state: 'EXITED', cpuMs: 5, exitCode: 1, startedAt: 9, parent: 'a.0' };
    expect(toProcessRow(info)).toEqual({ pid: 'a.1', prog: 'cat', args: ['/x'], peer: 'p', state: 'EXITED', cpuMs: 5, exitCode: 1, startedAt: 9 });
    const speculation = { depth: 1, predictions: 2, hits: 1, rollbacks: 0, savedMs: 3 };
    expect(toProcessRow({ ...info, speculation }).speculation).toEqual(speculation);
  });
});
