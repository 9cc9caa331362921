// Types for build-programs.mjs (used by vite.config.ts and the tests).
export const SRC_DIR: string;
export const OUT_DIR: string;
export function buildPrograms(options?: { force?: boolean; quiet?: boolean }): string[];
