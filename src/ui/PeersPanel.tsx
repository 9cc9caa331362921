// The peers of the latest Synchronizer view, one table row each (this tab included). With the
// process table, each peer's Fork On Wait counters (summed over its processes); with `moves`,
// a process row dropped on a peer moves there, and "Move my processes away" drains this tab.
import type { ProcessInfo } from '../servers/scheduler/client.ts';
import type { ViewMessage } from '../servers/synchronizer/protocol.ts';
import { formatLoad, formatRtt, formatUptime, shortId, sortPeers } from './format.ts';
import { hostsLiveProcesses, peerDropHandlers, sumSpeculation, type Moves } from './moves.ts';
import { SpecCell } from './ProcessesPanel.tsx';

export interface PeersPanelProps {
  /** Undefined until the first view arrives. */
  view: ViewMessage | undefined;
  /** The cluster's process table, for the per-peer counters. */
  processes?: readonly ProcessInfo[] | undefined;
  moves?: Moves | undefined;
}

export function PeersPanel({ view, processes, moves }: PeersPanelProps) {
  const peers = view ? sortPeers(view.peers) : [];
  const specs = (processes ?? []).some((r) => r.speculation !== undefined);
  const busyHere = view !== undefined && hostsLiveProcesses(processes, view.self);
  const drainNotice = moves?.notices.findLast((n) => n.kind === 'drain');
  return (
    <section className="panel peers" aria-labelledby="peers-heading">
      <h2 id="peers-heading">Peers ({peers.length})</h2>
      {view ? (
        <>
          <div className="table-scroll">
            <table aria-label="Peers">
              <thead>
                <tr>
                  <th scope="col">Id</th>
                  <th scope="col">Kind</th>
                  <th scope="col" className="num">Load</th>
                  <th scope="col" className="num">Capacity</th>
                  <th scope="col" className="num">Round trip</th>
                  <th scope="col" className="num">Uptime</th>
                  {specs && (
                    <th scope="col" className="num" title="Fork On Wait over the peer's processes: confirmed predictions / predictions, ↺ rollbacks">
                      Forks
                    </th>
                  )}
                  <th scope="col">State</th>
                </tr>
              </thead>
              <tbody>
                {peers.map((p) => {
                  // A process can move to this tab or a directly linked peer.
                  const target = moves !== undefined && (p.state === 'self' || p.state === 'connected');
                  return (
                    <tr
                      key={p.id}
                      role="row"
                      data-peer-id={p.id}
                      className={`state-${p.state}${target ? ' peer-drop' : ''}`}
                      {...(target ? { 'data-drop-peer': p.id, ...peerDropHandlers(p.id, moves.migrate) } : {})}
                    >
                      <td>
                        <code title={p.id}>{shortId(p.id)}</code>
                        {p.state === 'self' && <span className="self-mark"> (this tab)</span>}
                      </td>
                      <td><span className={`kind kind-${p.kind}`}>{p.kind}</span></td>
                      <td className="num">{formatLoad(p.load)}</td>
                      <td className="num">{p.capacity}</td>
                      <td className="num">{formatRtt(p.rttMs, p.state)}</td>
                      <td className="num">{formatUptime(p.uptimeMs)}</td>
                      {specs && <SpecCell spec={sumSpeculation((processes ?? []).filter((r) => r.peer === p.id))} />}
                      <td><span className={`state state-badge-${p.state}`}>{p.state}</span></td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          {moves?.drain && (
            <p className="peers-actions">
              <button type="button" onClick={moves.drain} disabled={moves.draining || !busyHere} title="Move every process running in this tab to other peers">
                {moves.draining ? 'Moving…' : 'Move my processes away'}
              </button>
              {drainNotice && (
                <span className={`drain-result sev-${drainNotice.level}`} role="status">
                  {drainNotice.text}
                </span>
              )}
            </p>
          )}
        </>
      ) : (
        <p className="muted" role="status">Waiting for the first view of the cluster…</p>
      )}
    </section>
  );
}
