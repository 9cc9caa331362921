// Programs by name for a Node peer: the repo's built programs (programs/build/NAME.wasm).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProgramStore } from '../../servers/scheduler/client.ts';

export const PROGRAMS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'programs', 'build');
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function filePrograms(dir = PROGRAMS_DIR): ProgramStore {
  return {
    async list() {
      try {
        const names: unknown = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
        return Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : [];
      } catch {
        return [];
      }
    },
    async load(name) {
      if (!NAME.test(name)) return undefined;
      try {
        return new Uint8Array(await readFile(path.join(dir, `${name}.wasm`)));
      } catch {
        return undefined;
      }
    },
  };
}
