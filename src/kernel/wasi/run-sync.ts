// Run a WASI command to completion without the thread runtime: plain WebAssembly.instantiate,
// so every host call must answer at once. A call that would block (returns a Promise) ends the
// run with BlockingCallError. Programs on a MemFs with a VirtualClock and buffered stdin never
// block; anything that really waits needs WasmThread (src/kernel/wasm).

import type { HostModule } from '../wasm/host-calls.ts';
import { ProcessExit } from '../wasm/host-calls.ts';
import { isPromise } from './co.ts';

export class BlockingCallError extends Error {
  constructor(readonly call: string) {
    super(`${call} would block; run this program on the thread runtime`);
    this.name = 'BlockingCallError';
  }
}

/** Instantiate a command module with the host modules and run `_start`; its exit code. */
export async function runSync(wasm: BufferSource | WebAssembly.Module, ...hosts: HostModule[]): Promise<number> {
  let memory: WebAssembly.Memory | undefined;
  const access = {
    memory(): WebAssembly.Memory {
      if (!memory) throw new Error('memory used before instantiation');
      return memory;
    },
  };
  const imports: WebAssembly.Imports = {};
  for (const host of hosts) {
    const fns: Record<string, WebAssembly.ImportValue> = {};
    for (const [name, fn] of Object.entries(host.functions(access))) {
      fns[name] = (...args: (number | bigint)[]) => {
        const r = fn(...args);
        if (isPromise(r)) {
          r.catch(() => {});
          throw new BlockingCallError(`${host.name}.${name}`);
        }
        return r;
      };
    }
    imports[host.name] = fns;
  }
  const module = wasm instanceof WebAssembly.Module ? wasm : await WebAssembly.compile(wasm);
  const instance = await WebAssembly.instantiate(module, imports);
  memory = instance.exports.memory as WebAssembly.Memory;
  const start = instance.exports._start as () => void;
  try {
    start();
    return 0;
  } catch (err) {
    if (err instanceof ProcessExit) return err.code;
    throw err;
  }
}
