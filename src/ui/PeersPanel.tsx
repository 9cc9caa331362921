// The peers of the latest Synchronizer view, one table row each (this tab included).
import type { ViewMessage } from '../servers/synchronizer/protocol.ts';
import { formatLoad, formatRtt, formatUptime, shortId, sortPeers } from './format.ts';

export interface PeersPanelProps {
  /** Undefined until the first view arrives. */
  view: ViewMessage | undefined;
}

export function PeersPanel({ view }: PeersPanelProps) {
  const peers = view ? sortPeers(view.peers) : [];
  return (
    <section className="panel peers" aria-labelledby="peers-heading">
      <h2 id="peers-heading">Peers ({peers.length})</h2>
      {view ? (
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
                <th scope="col">State</th>
              </tr>
            </thead>
            <tbody>
              {peers.map((p) => (
                <tr key={p.id} role="row" data-peer-id={p.id} className={`state-${p.state}`}>
                  <td>
                    <code title={p.id}>{shortId(p.id)}</code>
                    {p.state === 'self' && <span className="self-mark"> (this tab)</span>}
                  </td>
                  <td><span className={`kind kind-${p.kind}`}>{p.kind}</span></td>
                  <td className="num">{formatLoad(p.load)}</td>
                  <td className="num">{p.capacity}</td>
                  <td className="num">{formatRtt(p.rttMs, p.state)}</td>
                  <td className="num">{formatUptime(p.uptimeMs)}</td>
                  <td><span className={`state state-badge-${p.state}`}>{p.state}</span></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p className="muted" role="status">Waiting for the first view of the cluster…</p>
      )}
    </section>
  );
}
