// Processes: the Scheduler ↔ executor protocol, the executor that runs programs, the `lshapes`
// import module, and executors on the current thread (tests, simulator, Node CLI).
export * from './protocol.ts';
export { Executor, type ExecutorOptions } from './executor.ts';
export { InProcessExecution, macrotask, type InProcessOptions } from './in-process.ts';
export {
  LshapesHost,
  errnoOf,
  validPortName,
  MAX_MESSAGE_BYTES,
  MAILBOX_MAX_BYTES,
  MAILBOX_MAX_MESSAGES,
  type LshapesOptions,
  type LshapesSnapshot,
} from './lshapes.ts';
export { SAMPLE_FILES } from './sample-files.ts';
