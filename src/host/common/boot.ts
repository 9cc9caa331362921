// Boots a kernel with the standard servers. Every host (tab, Node peer, simulator) calls this,
// so all peers run the same kernel with the same servers.
import { Kernel } from '../../kernel/kernel.ts';
import type { Identity } from '../../kernel/identity.ts';
import { PORTS } from '../../kernel/server.ts';
import type { HostDrivers, KernelEvent } from '../../kernel/types.ts';
import type { ViewMessage } from '../../servers/synchronizer/protocol.ts';
import { BenchPorts } from './bench-ports.ts';
import { DriverServer } from '../../servers/driver/driver.ts';
import { SynchronizerServer } from '../../servers/synchronizer/synchronizer.ts';
import type { MembershipTiming } from '../../servers/synchronizer/membership.ts';
import { SchedulerServer } from '../../servers/scheduler/scheduler.ts';
import type { ProgramStore } from '../../servers/scheduler/client.ts';
import type { ExecutionDriver } from '../../kernel/process/protocol.ts';

export { VERSION } from './version.ts';

export interface BootOptions {
  identity: Identity;
  token: string;
  drivers: HostDrivers;
  timing?: MembershipTiming;
  /** Where this peer runs processes (none: it runs none) and where it finds programs by name. */
  exec?: ExecutionDriver;
  programs?: ProgramStore;
}

/** Creates the kernel and its servers; call `kernel.start()` once the host is ready for links. */
export async function bootKernel(opts: BootOptions): Promise<Kernel> {
  const kernel = await Kernel.create({ identity: opts.identity, token: opts.token, drivers: opts.drivers });
  kernel.addServer(new DriverServer(kernel));
  kernel.addServer(new SynchronizerServer(opts.timing));
  kernel.addServer(
    new SchedulerServer({
      clock: opts.drivers.clock,
      sha256: (data) => opts.drivers.crypto.sha256(data),
      ...(opts.exec ? { exec: opts.exec } : {}),
      ...(opts.programs ? { programs: opts.programs } : {}),
    }),
  );
  return kernel;
}

export interface HostKernelOptions extends BootOptions {
  /** The port the host's shell listens on for the Synchronizer's view ("ui", "cli"). */
  viewPort: string;
  onView(view: ViewMessage): void;
  onEvent(event: KernelEvent): void;
}

/**
 * What every real host does at start: boot, listen for kernel events, watch the membership
 * view like any other client (by message), add the diagnostic ports, start.
 */
export async function startHostKernel(opts: HostKernelOptions): Promise<{ kernel: Kernel; bench: BenchPorts }> {
  const kernel = await bootKernel(opts);
  kernel.on(opts.onEvent);
  kernel.register(opts.viewPort, (env) => {
    if ((env.body as ViewMessage)?.kind === 'view') opts.onView(env.body as ViewMessage);
  });
  const bench = new BenchPorts(kernel);
  kernel.start();
  kernel.send({ peer: kernel.self, port: opts.viewPort }, { peer: kernel.self, port: PORTS.synchronizer }, { kind: 'watch' });
  return { kernel, bench };
}
