// The React shell of one LSHAPES tab: the terminal that runs programs, the cluster's processes,
// its files, who this tab is, its peers, how to join, what happened.
import type { ShellApi } from '../host/browser/shell-api.ts';
import { ClusterCard } from './ClusterCard.tsx';
import { EventLog } from './EventLog.tsx';
import { FilesPanel } from './FilesPanel.tsx';
import { PeersPanel } from './PeersPanel.tsx';
import { ProcessesPanel } from './ProcessesPanel.tsx';
import type { ShellBackend } from './terminal/commands.ts';
import { Terminal } from './terminal/Terminal.tsx';
import { shortId } from './format.ts';
import { useShell } from './useShell.ts';
import { useFiles } from './useFiles.ts';
import { useMoves } from './moves.ts';
import './shell.css';

export interface AppProps {
  api: ShellApi;
  /** The link another machine opens to join this cluster. */
  clusterUrl: string;
  /** What the terminal runs commands against; no terminal without it. Keep it stable: a new one remounts the terminal. */
  shellBackend?: ShellBackend;
}

export function App({ api, clusterUrl, shellBackend }: AppProps) {
  const shell = useShell(api);
  const files = useFiles(api);
  const moves = useMoves(api);
  // Before whoami() answers, the view already says who we are.
  const selfId = shell.me?.peerId ?? shell.view?.self;
  const selfKind = shell.me?.kind ?? shell.view?.peers.find((p) => p.id === selfId)?.kind;

  return (
    <div className="shell">
      <header className="shell-header">
        <h1>LSHAPES</h1>
        <p className="whoami" role="group" aria-label="This peer">
          {selfId ? (
            <>
              <code title={selfId} data-peer-id={selfId}>{shortId(selfId)}</code>
              {selfKind && <span className={`kind kind-${selfKind}`}>{selfKind}</span>}
              {shell.me?.room && <span className="muted">room {shell.me.room}</span>}
            </>
          ) : (
            <span className="muted">starting…</span>
          )}
        </p>
      </header>
      {shell.error && (
        <p className="banner banner-error" role="alert">The kernel stopped answering: {shell.error}</p>
      )}
      <main className={shellBackend ? 'shell-main has-terminal' : 'shell-main'}>
        {shellBackend && <Terminal backend={shellBackend} />}
        <ProcessesPanel rows={shell.processes} self={selfId} peers={shell.view?.peers} moves={moves} />
        <FilesPanel api={api} files={files} />
        <PeersPanel view={shell.view} processes={shell.processes} moves={moves} />
        <ClusterCard clusterUrl={clusterUrl} />
        <EventLog events={shell.events} />
      </main>
    </div>
  );
}

export interface BootErrorProps {
  message: string;
}

/** Shown instead of the App when the tab's kernel failed to boot. */
export function BootError({ message }: BootErrorProps) {
  return (
    <div className="shell">
      <header className="shell-header">
        <h1>LSHAPES</h1>
      </header>
      <main className="shell-main single">
        <section className="panel boot-error" role="alert" aria-labelledby="boot-error-heading">
          <h2 id="boot-error-heading">This tab could not start its kernel</h2>
          <pre className="boot-error-message">{message}</pre>
          <p>Reload the tab to try again. If it keeps failing, check that the browser supports WebRTC, Web Workers and WebCrypto, and that the relay is running.</p>
        </section>
      </main>
    </div>
  );
}
