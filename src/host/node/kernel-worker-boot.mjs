// worker_threads do not inherit tsx's loader: register it in the thread, then load the kernel.
import { register } from 'tsx/esm/api';

register();
await import('./kernel-worker.ts');
