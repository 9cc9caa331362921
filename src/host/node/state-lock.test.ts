// One Node peer per state directory.
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from 'vitest';
import { lockStateDir } from './state-lock.ts';

const dir = () => mkdtempSync(path.join(os.tmpdir(), 'lshapes-lock-'));

test('a second peer on the same state directory is refused, naming the first; after release it may start', async () => {
  const d = dir();
  const first = await lockStateDir(d);
  await expect(lockStateDir(d, process.pid + 1)).rejects.toThrow(new RegExp(`in use by another LSHAPES node peer \\(pid ${process.pid}\\)`));
  await first.release();
  expect(existsSync(first.path)).toBe(false);
  const second = await lockStateDir(d, process.pid + 1);
  await second.release();
});

test('a lock left by a process that no longer runs is taken over', async () => {
  const d = dir();
  writeFileSync(path.join(d, 'lock'), '2147483646\n'); // no such pid
  const lock = await lockStateDir(d);
  await lock.release();
});
