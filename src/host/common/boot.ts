// Boots a kernel with the standard servers. Every host (tab, Node peer, simulator) calls this,
// so all peers run the same kernel with the same servers.
import { Kernel } from '../../kernel/kernel.ts';
import type { Identity } from '../../kernel/identity.ts';
import type { HostDrivers } from '../../kernel/types.ts';
import { DriverServer } from '../../servers/driver/driver.ts';
import { SynchronizerServer } from '../../servers/synchronizer/synchronizer.ts';
import type { MembershipTiming } from '../../servers/synchronizer/membership.ts';

export { VERSION } from './version.ts';

export interface BootOptions {
  identity: Identity;
  token: string;
  drivers: HostDrivers;
  timing?: MembershipTiming;
}

/** Creates the kernel and its servers; call `kernel.start()` once the host is ready for links. */
export async function bootKernel(opts: BootOptions): Promise<Kernel> {
  const kernel = await Kernel.create({ identity: opts.identity, token: opts.token, drivers: opts.drivers });
  kernel.addServer(new DriverServer(kernel));
  kernel.addServer(new SynchronizerServer(opts.timing));
  return kernel;
}
