// WASI preview 1 and the virtual filesystem.
export { Wasi, type WasiOptions, type WasiSnapshot, type FdSnapshot, Filetype, Fdflags, Oflags, Fstflags, Whence as WasiWhence } from './preview1.ts';
export { Namespace, Vfs, OpenFile, type FileSystem, type Stat, type DirEntry, type Lookup, type NodeId, type FileType, type Mount, type Location, type VfsOpenFlags } from './vfs.ts';
export { MemFs, memfsFrom, type MemFsOptions, type MemFsTree } from './memfs.ts';
export { Errno, FsError, fsError, errnoName, type ErrnoName } from './errno.ts';
export { Rights, ALL_RIGHTS, FILE_RIGHTS, DIR_RIGHTS } from './rights.ts';
export { type WasiClock, ClockId, systemClock, VirtualClock } from './clock.ts';
export { type InputStream, type OutputStream, bytesInput, emptyInput, nullOutput, CollectOutput, QueueInput } from './streams.ts';
export { type MaybePromise, type Co, run, runAsync, wait, isPromise } from './co.ts';
export { runSync, BlockingCallError } from './run-sync.ts';
