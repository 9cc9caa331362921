// A tab's execution worker: runs processes for the kernel worker that created it (one per core).
import { Executor } from '../../kernel/process/executor.ts';
import type { FromExecutor, ToExecutor } from '../../kernel/process/protocol.ts';

declare const self: {
  postMessage(msg: unknown): void;
  addEventListener(type: 'message', fn: (ev: MessageEvent) => void): void;
};

// A macrotask without setTimeout's 4 ms clamp: messages (kill, stdin) get in between slices.
const channel = new MessageChannel();
const wakeups: (() => void)[] = [];
channel.port1.onmessage = () => wakeups.shift()?.();
const yieldToHost = () =>
  new Promise<void>((resolve) => {
    wakeups.push(resolve);
    channel.port2.postMessage(null);
  });

const executor = new Executor({
  post: (msg: FromExecutor) => self.postMessage(msg),
  clock: performance,
  yieldToHost,
  // WebCrypto: a frozen image's checksum off the thread (a migration's downtime), and the rewrite cache's.
  sha256: async (bytes) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)),
});

self.addEventListener('message', (ev: MessageEvent) => executor.handle(ev.data as ToExecutor));
