// Two diagnostic ports every peer has: `echo` answers each message with the same body (round
// trips), `sink` swallows what it receives (throughput). Used by bench/ and the e2e tests.
import type { Kernel } from '../../kernel/kernel.ts';
import type { PeerId } from '../../kernel/types.ts';

export class BenchPorts {
  private waiting = new Map<number, () => void>();
  private seq = 0;

  constructor(private readonly kernel: Kernel) {
    kernel.register('echo', (env) => kernel.send({ peer: kernel.self, port: 'echo' }, { peer: env.from.peer, port: env.from.port }, env.body));
    kernel.register('sink', () => {});
    kernel.register('bench', (env) => {
      const id = (env.body as { id?: number })?.id;
      if (typeof id === 'number') this.waiting.get(id)?.();
    });
  }

  /** Sequential round trips to `peer`'s echo port; returns each one's duration in ms. */
  async pingPong(peer: PeerId, count: number, size: number, timeoutMs = 5000): Promise<number[]> {
    const data = new Uint8Array(size);
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const id = this.seq++;
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`echo timed out after ${timeoutMs} ms`)), timeoutMs);
        this.waiting.set(id, () => {
          clearTimeout(timer);
          this.waiting.delete(id);
          resolve();
        });
        this.kernel.send({ peer: this.kernel.self, port: 'bench' }, { peer, port: 'echo' }, { id, data });
      });
      out.push(performance.now() - t0);
    }
    return out;
  }

  /** Sends `count` messages of `size` bytes to `peer`'s sink, then one echo to know they all arrived. */
  async blast(peer: PeerId, count: number, size: number): Promise<{ ms: number }> {
    const data = new Uint8Array(size);
    const t0 = performance.now();
    for (let i = 0; i < count; i++) this.kernel.send({ peer: this.kernel.self, port: 'bench' }, { peer, port: 'sink' }, { data });
    await this.pingPong(peer, 1, 0, 120_000);
    return { ms: performance.now() - t0 };
  }
}
