// Drivers for real hosts (a tab's worker, a Node peer's worker): the platform's own clock,
// randomness and WebCrypto. Only the network interface and console differ per host.
import type { ConsoleDriver, HostDrivers, NetworkInterface, PeerKind } from '../../kernel/types.ts';
import { VERSION } from './version.ts';
import { platformCrypto } from './platform-crypto.ts';

export function realDrivers(opts: { nic: NetworkInterface; kind: PeerKind; capacity: number; console: ConsoleDriver }): HostDrivers {
  return {
    nic: opts.nic,
    clock: {
      now: () => performance.now(),
      wallNow: () => Date.now(),
      setTimeout: (fn, ms) => {
        const t = setTimeout(fn, ms);
        return () => clearTimeout(t);
      },
    },
    random: { bytes: (n) => crypto.getRandomValues(new Uint8Array(n)) },
    crypto: platformCrypto(),
    console: opts.console,
    info: { kind: opts.kind, capacity: Math.max(0, opts.capacity), version: VERSION, load: () => 0 },
  };
}
