// A server is an actor behind a well-known port. It talks to other servers only by
// messages (DESIGN.md, "microkernel discipline"); this is all it gets from the kernel.
import type { Address, Envelope, PeerId, PortName } from './types.ts';

export interface ServerContext {
  readonly self: PeerId;
  /** Sends from this server's port; false when the kernel knows at once it cannot deliver. */
  send(to: Address, body: unknown): boolean;
  log(level: 'info' | 'warn' | 'error', text: string): void;
}

export interface Server {
  readonly port: PortName;
  start(ctx: ServerContext): void;
  receive(env: Envelope): void;
  /** Graceful leave: last chance to send (the kernel sends `bye` right after). */
  stop?(): void;
}

/** The well-known ports. */
export const PORTS = {
  driver: 'driver',
  synchronizer: 'synchronizer',
  scheduler: 'scheduler',
  dispatcher: 'dispatcher',
  transmitter: 'transmitter',
  stockholder: 'stockholder',
} as const;
