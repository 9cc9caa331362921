// Every process of the cluster, from the Scheduler's table: one row each, running ones first (by
// start), then the recently exited ones, newest first (the Scheduler keeps those ~30 s).
// A process running ahead on a speculation (Fork On Wait) is WAIT_CONFIRM, with its STOPPED
// twins on a sub-row below it; its counters are in a small column (details in the tooltip).
// With `moves`, a live row can be dragged onto a peer (the chips above the table, or a row of the
// peers panel) or sent with its "Move to…" select; it shows MIGRATING until the answer.
// Hookless: the shared state comes in as props (src/ui/moves.ts), so tests call the handlers.
import type { PeerId } from '../kernel/types.ts';
import type { ProcessInfo, ProcessState, SpeculationStats } from '../servers/scheduler/client.ts';
import type { PeerView } from '../servers/synchronizer/protocol.ts';
import { shortId } from './format.ts';
import { canMove, describeSpeculation, moveTargets, peerDropHandlers, startDrag, type Moves } from './moves.ts';
import { formatCpu, quoteWord, shownState } from './terminal/commands.ts';

export interface ProcessesPanelProps {
  /** Undefined until the first table arrives. */
  rows: readonly ProcessInfo[] | undefined;
  /** This tab's peer id, to mark its processes. */
  self: PeerId | undefined;
  /** The peers of the latest view: where processes can be moved to. */
  peers?: readonly PeerView[] | undefined;
  /** Moving processes; without it the panel only shows them. */
  moves?: Moves | undefined;
}

/** Rows in display order: live ones by start time, then exited ones, newest first. One row per pid. */
export function sortProcesses(rows: readonly ProcessInfo[]): ProcessInfo[] {
  const byPid = new Map<string, ProcessInfo>();
  for (const r of rows) if (!byPid.has(r.pid)) byPid.set(r.pid, r);
  const all = [...byPid.values()];
  const live = all.filter((r) => r.state !== 'EXITED').sort((a, b) => a.startedAt - b.startedAt || cmp(a.pid, b.pid));
  const exited = all.filter((r) => r.state === 'EXITED').sort((a, b) => b.startedAt - a.startedAt || cmp(a.pid, b.pid));
  return live.concat(exited);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The CSS class of a state badge: "proc-state-wait-confirm". */
export function stateClass(state: ProcessState): string {
  return `proc-state-${state.toLowerCase().replace(/_/g, '-')}`;
}

/** Fork On Wait counters in a cell: "hits/predictions", "↺n" for rollbacks; the rest in the tooltip. */
export function SpecCell({ spec }: { spec: SpeculationStats | undefined }) {
  if (!spec) return <td className="num spec" />;
  const detail = describeSpeculation(spec);
  return (
    <td className="num spec">
      <span title={detail} aria-label={detail}>
        {spec.hits}/{spec.predictions}
        {spec.rollbacks > 0 && <span className="spec-rollbacks"> ↺{spec.rollbacks}</span>}
      </span>
    </td>
  );
}

export function ProcessesPanel({ rows, self, peers, moves }: ProcessesPanelProps) {
  const sorted = rows ? sortProcesses(rows) : [];
  const live = sorted.filter((r) => r.state !== 'EXITED').length;
  const specs = sorted.some((r) => r.speculation !== undefined);
  // Where a dragged row can be dropped: every peer a process could go to.
  const chips = moves && live > 0 ? (peers ?? []).filter((v) => v.state === 'self' || v.state === 'connected') : [];
  const columns = 6 + (specs ? 1 : 0) + (moves ? 1 : 0);
  return (
    <section className="panel processes" aria-labelledby="processes-heading">
      <h2 id="processes-heading">
        Processes {rows && <span className="count muted">({live} active{sorted.length > live ? `, ${sorted.length - live} exited` : ''})</span>}
      </h2>
      {!rows ? (
        <p className="muted" role="status">Waiting for the process table…</p>
      ) : sorted.length === 0 ? (
        <p className="muted" role="status">
          No processes. Start one in the terminal, e.g. <code>run primes 2000000 4</code> (<code>help run</code> lists the programs).
        </p>
      ) : (
        <>
          {moves && chips.length > 1 && (
            <p className="proc-targets" role="group" aria-label="Move targets">
              <span className="muted">Drag a process onto a peer to move it:</span>
              {chips.map((v) => (
                <span key={v.id} className={`peer-chip${v.state === 'self' ? ' peer-chip-self' : ''}`} data-drop-peer={v.id} title={v.id} {...peerDropHandlers(v.id, moves.migrate)}>
                  {shortId(v.id)}
                  {v.state === 'self' && <span className="muted"> (this tab)</span>}
                </span>
              ))}
            </p>
          )}
          <div className="table-scroll">
            <table className="processes-table">
              <caption className="sr-only">Processes</caption>
              <thead>
                <tr>
                  <th scope="col">PID</th>
                  <th scope="col">Program</th>
                  <th scope="col">Peer</th>
                  <th scope="col">State</th>
                  <th scope="col" className="num">CPU</th>
                  {specs && (
                    <th scope="col" className="num" title="Fork On Wait: confirmed predictions / predictions, ↺ rollbacks">
                      Forks
                    </th>
                  )}
                  <th scope="col" className="num">Exit</th>
                  {moves && (
                    <th scope="col">
                      <span className="sr-only">Move</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>
                {sorted.flatMap((p) => {
                  const mine = self !== undefined && p.peer === self;
                  const movingTo = moves?.moving.get(p.pid);
                  const state: ProcessState = movingTo !== undefined ? 'MIGRATING' : shownState(p);
                  const movable = moves !== undefined && movingTo === undefined && canMove(p);
                  const targets = movable ? moveTargets(peers, p) : [];
                  const twins = state === 'WAIT_CONFIRM' ? (p.speculation?.depth ?? 0) : 0;
                  const row = (
                    <tr
                      key={p.pid}
                      data-pid={p.pid}
                      data-state={state}
                      data-peer-id={p.peer}
                      className={`proc-row${p.state === 'EXITED' ? ' proc-exited' : ''}${mine ? ' proc-here' : ''}${movable ? ' proc-movable' : ''}`}
                      {...(movable ? { draggable: true, onDragStart: (e: Parameters<typeof startDrag>[0]) => startDrag(e, p.pid) } : {})}
                    >
                      <td>
                        <code>{p.pid}</code>
                      </td>
                      <td className="proc-command" title={p.parent ? `started by ${p.parent}` : undefined}>
                        <code>{[p.name, ...p.args].map(quoteWord).join(' ')}</code>
                        {p.parent && <span className="muted proc-parent"> ← {p.parent}</span>}
                      </td>
                      <td>
                        <code title={p.peer}>{shortId(p.peer)}</code>
                        {mine && <span className="self-mark"> (this tab)</span>}
                        {movingTo !== undefined && <span className="muted proc-moving"> → {shortId(movingTo)}</span>}
                        {(p.moves ?? 0) > 0 && (
                          <span className="muted proc-moves" title={`moved ${p.moves === 1 ? 'once' : `${p.moves} times`}`}>
                            {' '}
                            ↔{p.moves}
                          </span>
                        )}
                      </td>
                      <td>
                        <span className={`state ${stateClass(state)}`}>{state}</span>
                      </td>
                      <td className="num">{formatCpu(p.cpuMs)}</td>
                      {specs && <SpecCell spec={p.speculation} />}
                      <td className="num">
                        {p.state === 'EXITED' && p.exitCode !== undefined ? (
                          <span className={p.exitCode === 0 ? 'exit-ok' : 'exit-bad'}>{p.exitCode}</span>
                        ) : (
                          ''
                        )}
                      </td>
                      {moves && (
                        <td className="proc-move">
                          {targets.length > 0 && (
                            <select
                              aria-label={`Move ${p.pid} to…`}
                              value=""
                              onChange={(e: { currentTarget: { value: string } }) => {
                                const to = e.currentTarget.value;
                                if (to) moves.migrate(p.pid, to);
                              }}
                            >
                              <option value="">Move to…</option>
                              {targets.map((v) => (
                                <option key={v.id} value={v.id}>
                                  {shortId(v.id)}
                                  {v.state === 'self' ? ' (this tab)' : ''}
                                </option>
                              ))}
                            </select>
                          )}
                        </td>
                      )}
                    </tr>
                  );
                  if (twins === 0) return [row];
                  return [
                    row,
                    <tr key={`${p.pid}~twins`} className="proc-twin" data-twin-of={p.pid}>
                      <td />
                      <td colSpan={columns - 1} title="stopped at the wait, in case the prediction was wrong">
                        <span className="muted">↳ twin · </span>
                        <span className={`state ${stateClass('STOPPED')}`}>STOPPED</span>
                        {twins > 1 && <span className="muted"> ×{twins}</span>}
                      </td>
                    </tr>,
                  ];
                })}
              </tbody>
            </table>
          </div>
        </>
      )}
      {moves && moves.notices.length > 0 && (
        <ul className="events move-notices" aria-label="Process moves">
          {moves.notices.map((n) => (
            <li key={n.seq} className={`event sev-${n.level}`} {...(n.level === 'error' ? { role: 'alert' } : {})}>
              <span className="sev-dot" aria-hidden="true" />
              <span className="text">{n.text}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
