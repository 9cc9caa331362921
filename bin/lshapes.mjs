#!/usr/bin/env node
// The `lshapes` command: registers tsx's loader (the sources are TypeScript, run as they are),
// then hands over to src/cli/main.ts. See `lshapes --help`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv.slice(2));
