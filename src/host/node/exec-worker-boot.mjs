// worker_threads do not inherit tsx's loader: register it in the thread, then load the executor.
import { register } from 'tsx/esm/api';

register();
await import('./exec-worker.ts');
