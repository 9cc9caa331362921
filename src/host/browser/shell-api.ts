// What the React shell gets from its tab's kernel (over comlink, from the kernel worker).
import type { KernelEvent, PeerId, PeerKind } from '../../kernel/types.ts';
import type { ViewMessage } from '../../servers/synchronizer/protocol.ts';
import type { Pid, ProcessInfo } from '../../servers/scheduler/client.ts';
import type { Drained, Moved } from '../common/shell-service.ts';
import type { FilesApi } from '../../servers/stockholder/files-api.ts';

export type ShellEvent =
  | { type: 'view'; view: ViewMessage }
  | { type: 'kernel'; at: number; event: KernelEvent };

/** The cluster filesystem's methods are optional: without `watchFiles` the shell shows no files panel content. */
export interface ShellApi extends Partial<FilesApi> {
  whoami(): Promise<{ peerId: PeerId; kind: PeerKind; room: string }>;
  /** Calls `listener` with every view update and kernel event from now on (a comlink proxy). */
  subscribe(listener: (e: ShellEvent) => void): Promise<void>;
  /** Calls `listener` with the cluster's whole process table on every change (a comlink proxy).
   *  Optional: without it the shell shows no process table. */
  watchProcesses?(listener: (rows: ProcessInfo[]) => void): Promise<void>;
  /** Moves a running process to peer `to` (a full id). Optional: without it the panels offer no moves. */
  migrate?(pid: Pid, to: PeerId): Promise<Moved>;
  /** Moves every process running on this tab elsewhere ("Move my processes away", closing the tab). */
  drain?(): Promise<Drained>;
}
