// Every process of the cluster, from the Scheduler's table: one row each, running ones first (by
// start), then the recently exited ones, newest first (the Scheduler keeps those ~30 s).
import type { PeerId } from '../kernel/types.ts';
import type { ProcessInfo, ProcessState } from '../servers/scheduler/client.ts';
import { shortId } from './format.ts';
import { formatCpu, quoteWord } from './terminal/commands.ts';

export interface ProcessesPanelProps {
  /** Undefined until the first table arrives. */
  rows: readonly ProcessInfo[] | undefined;
  /** This tab's peer id, to mark its processes. */
  self: PeerId | undefined;
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

export function ProcessesPanel({ rows, self }: ProcessesPanelProps) {
  const sorted = rows ? sortProcesses(rows) : [];
  const live = sorted.filter((r) => r.state !== 'EXITED').length;
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
                <th scope="col" className="num">Exit</th>
              </tr>
            </thead>
            <tbody>
              {sorted.map((p) => {
                const mine = self !== undefined && p.peer === self;
                return (
                  <tr
                    key={p.pid}
                    data-pid={p.pid}
                    data-state={p.state}
                    data-peer-id={p.peer}
                    className={`proc-row${p.state === 'EXITED' ? ' proc-exited' : ''}${mine ? ' proc-here' : ''}`}
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
                    </td>
                    <td>
                      <span className={`state ${stateClass(p.state)}`}>{p.state}</span>
                    </td>
                    <td className="num">{formatCpu(p.cpuMs)}</td>
                    <td className="num">
                      {p.state === 'EXITED' && p.exitCode !== undefined ? (
                        <span className={p.exitCode === 0 ? 'exit-ok' : 'exit-bad'}>{p.exitCode}</span>
                      ) : (
                        ''
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
