import react from '@vitejs/plugin-react';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { defineConfig, type Plugin } from 'vite';
import { OUT_DIR, buildPrograms } from './scripts/build-programs.mjs';

/**
 * The sample programs (programs/, built from source with clang and AssemblyScript) are part of
 * the app: served at /programs/NAME.wasm with /programs/index.json listing the runnable ones.
 */
function programs(): Plugin {
  const files = () => (existsSync(OUT_DIR) ? readdirSync(OUT_DIR).filter((f) => f.endsWith('.wasm') || f === 'index.json') : []);
  return {
    name: 'lshapes-programs',
    buildStart() {
      buildPrograms({ quiet: true });
    },
    generateBundle() {
      for (const f of files()) this.emitFile({ type: 'asset', fileName: `programs/${f}`, source: readFileSync(path.join(OUT_DIR, f)) });
    },
    configureServer(server) {
      buildPrograms({ quiet: true });
      server.middlewares.use('/programs', (req, res, next) => {
        const name = decodeURIComponent((req.url ?? '').replace(/^\//, '').split('?')[0]!);
        if (!files().includes(name)) return next();
        res.setHeader('Content-Type', name.endsWith('.json') ? 'application/json' : 'application/wasm');
        res.end(readFileSync(path.join(OUT_DIR, name)));
      });
    },
  };
}

export default defineConfig({
  plugins: [react(), programs()],
  worker: { format: 'es' },
  build: { target: 'es2022', sourcemap: true },
});
