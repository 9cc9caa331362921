// Programs by name for a tab: the app serves the built programs at /programs/ (index.json lists
// them), so every tab of a cluster finds the same ones.
import type { ProgramStore } from '../../servers/scheduler/client.ts';

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export function fetchPrograms(base = new URL('/programs/', location.origin)): ProgramStore {
  return {
    async list() {
      const res = await fetch(new URL('index.json', base));
      if (!res.ok) return [];
      const names: unknown = await res.json();
      return Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : [];
    },
    async load(name) {
      if (!NAME.test(name) || name.startsWith('.')) return undefined;
      const res = await fetch(new URL(`${name}.wasm`, base));
      if (!res.ok) return undefined;
      return new Uint8Array(await res.arrayBuffer());
    },
  };
}
