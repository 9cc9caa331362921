// CLI: tsx src/relay/main.ts [--port 8080] [--host 0.0.0.0] [--static dist]
import { startRelay } from './server.ts';

const USAGE = 'usage: tsx src/relay/main.ts [--port 8080] [--host 0.0.0.0] [--static dist]';

function parseArgs(argv: string[]): { port: number; host: string; staticDir: string } {
  const out = { port: Number(process.env.PORT ?? 8080), host: '0.0.0.0', staticDir: 'dist' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    }
    // Accept both `--port 9000` and `--port=9000`.
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (flag !== '--port' && flag !== '--host' && flag !== '--static') fail(`unknown option ${arg}`);
    const value = inline ?? argv[++i];
    if (value === undefined) fail(`missing value for ${flag}`);
    if (flag === '--port') out.port = Number(value);
    else if (flag === '--host') out.host = value;
    else out.staticDir = value;
  }
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) fail(`bad port: ${out.port}`);
  return out;
}

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

const args = parseArgs(process.argv.slice(2));
const relay = await startRelay({ port: args.port, host: args.host, staticDir: args.staticDir }).catch((err: unknown) => {
  if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') fail(`port ${args.port} is already in use; pick another with --port`);
  throw err;
});

console.log('LSHAPES is running. Open one of these on any machine of your LAN:');
for (const url of relay.urls) console.log(url);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1); // second Ctrl-C: do not wait
    stopping = true;
    console.log(`\n${signal}: stopping the relay`);
    relay.close().then(() => process.exit(0), () => process.exit(1));
  });
}
