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
import { SchedulerServer, type SchedulerOptions } from '../../servers/scheduler/scheduler.ts';
import type { ProgramStore } from '../../servers/scheduler/client.ts';
import type { ExecutionDriver } from '../../kernel/process/protocol.ts';
import { StockholderServer } from '../../servers/stockholder/stockholder.ts';
import { ClusterFileSystem } from '../../servers/stockholder/fs.ts';
import { MemoryStore, type BlockStore } from '../../servers/stockholder/store.ts';

export { VERSION } from './version.ts';

export interface BootOptions {
  identity: Identity;
  token: string;
  drivers: HostDrivers;
  timing?: MembershipTiming;
  /** Where this peer runs processes (none: it runs none) and where it finds programs by name. */
  exec?: ExecutionDriver;
  programs?: ProgramStore;
  /** Where this peer keeps its share of the cluster filesystem (default: memory). */
  store?: BlockStore;
  /** A store this peer gets to own later (a tab whose profile's owner tab closes). */
  takeover?: Promise<BlockStore>;
  /** Rebalancing and checkpoints (default: both on). */
  scheduler?: SchedulerOptions;
}

/** The cluster filesystem's server of a booted kernel, and the FileSystem processes and the shell see. */
export interface ClusterFiles {
  stockholder: StockholderServer;
  fs: ClusterFileSystem;
}

const clusterFiles = new WeakMap<Kernel, ClusterFiles>();

/** The Stockholder a kernel was booted with: hosts hand it to their shell and files panel. */
export function filesOf(kernel: Kernel): ClusterFiles {
  const f = clusterFiles.get(kernel);
  if (f === undefined) throw new Error('kernel was not booted by bootKernel');
  return f;
}

/** Creates the kernel and its servers; call `kernel.start()` once the host is ready for links. */
export async function bootKernel(opts: BootOptions): Promise<Kernel> {
  const kernel = await Kernel.create({ identity: opts.identity, token: opts.token, drivers: opts.drivers });
  kernel.addServer(new DriverServer(kernel));
  kernel.addServer(new SynchronizerServer(opts.timing));
  const stockholder = new StockholderServer({
    clock: opts.drivers.clock,
    sha256: (data) => opts.drivers.crypto.sha256(data),
    randomBytes: (n) => opts.drivers.random.bytes(n),
    store: opts.store ?? new MemoryStore(),
    ...(opts.takeover ? { takeover: opts.takeover } : {}),
  });
  const fs = new ClusterFileSystem(stockholder, (fn, ms) => opts.drivers.clock.setTimeout(fn, ms));
  clusterFiles.set(kernel, { stockholder, fs });
  kernel.addServer(stockholder);
  kernel.addServer(
    new SchedulerServer(
      {
        clock: opts.drivers.clock,
        sha256: (data) => opts.drivers.crypto.sha256(data),
        ...(opts.exec ? { exec: opts.exec } : {}),
        ...(opts.programs ? { programs: opts.programs } : {}),
        files: fs,
        // Process images that cross peers are authenticated with a key derived from the token.
        hmacSha256: (key, data) => opts.drivers.crypto.hmacSha256(key, data),
        token: opts.token,
      },
      opts.scheduler,
    ),
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
