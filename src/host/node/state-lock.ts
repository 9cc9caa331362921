// One Node peer per state directory: two would share one identity (one peer id on two
// machines' worth of links) and write one file store at once. The lock is a file holding the
// owner's pid, created exclusively; a lock left by a process that no longer runs is taken over.
import { open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';

export interface StateLock {
  readonly path: string;
  release(): Promise<void>;
}

/** Takes `<dir>/lock` or throws, naming the process that holds it. */
export async function lockStateDir(dir: string, pid: number = process.pid): Promise<StateLock> {
  const file = path.join(dir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(`${pid}\n`);
      await handle.close();
      return { path: file, release: () => rm(file, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(holder) && holder > 0 && holder !== pid && alive(holder)) {
        throw new Error(`${dir} is in use by another LSHAPES node peer (pid ${holder}); give this one its own --state DIR`);
      }
      // Left by a process that is gone (or unreadable): take it over.
      await rm(file, { force: true });
    }
  }
  throw new Error(`could not lock ${file}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
