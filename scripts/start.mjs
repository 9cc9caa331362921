#!/usr/bin/env node
// npm start [-- --port 9000 --host 0.0.0.0]: install deps if needed, build the app, run the relay.
import { spawn } from 'node:child_process';
import { ensureDeps, run, bin, ROOT, EnsureError } from './ensure.mjs';

try {
  ensureDeps();
} catch (err) {
  if (!(err instanceof EnsureError)) throw err;
  console.error(`start: ${err.message}`);
  process.exit(1);
}

const built = run(bin('vite'), ['build']);
if (built !== 0) {
  console.error(`start: vite build failed (exit ${built})`);
  process.exit(built);
}

const relay = spawn(bin('tsx'), ['src/relay/main.ts', ...process.argv.slice(2)], {
  cwd: ROOT,
  stdio: 'inherit',
  shell: process.platform === 'win32',
});
// Ctrl-C already reaches the relay through the process group; a signal sent to this process
// alone (a supervisor's SIGTERM) is forwarded if the relay is still running a moment later.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => setTimeout(() => relay.exitCode === null && relay.kill(signal), 300).unref());
}
relay.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
