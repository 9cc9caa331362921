// How to join this cluster from another machine: the link, a copy button and a QR code.
import { useEffect, useRef, useState } from 'react';
import QRCode from 'qrcode';

export interface ClusterCardProps {
  clusterUrl: string;
}

type CopyState = 'idle' | 'copied' | 'failed';

/** How long "Copied" stays on the button. */
const COPIED_MS = 1500;

export function ClusterCard({ clusterUrl }: ClusterCardProps) {
  const inputRef = useRef<HTMLInputElement>(null);
  const [copy, setCopy] = useState<CopyState>('idle');
  const [qr, setQr] = useState<{ url: string; dataUrl: string } | { url: string; error: string } | undefined>(undefined);

  useEffect(() => {
    let active = true;
    QRCode.toDataURL(clusterUrl, { margin: 1, width: 360, errorCorrectionLevel: 'M' }).then(
      (dataUrl) => active && setQr({ url: clusterUrl, dataUrl }),
      (err: unknown) => active && setQr({ url: clusterUrl, error: err instanceof Error ? err.message : String(err) }),
    );
    return () => {
      active = false;
    };
  }, [clusterUrl]);

  useEffect(() => {
    if (copy === 'idle') return;
    const t = setTimeout(() => setCopy('idle'), COPIED_MS);
    return () => clearTimeout(t);
  }, [copy]);

  const copyLink = async () => {
    try {
      if (!navigator.clipboard) throw new Error('no async clipboard');
      await navigator.clipboard.writeText(clusterUrl);
      setCopy('copied');
    } catch {
      // Not a secure context (plain http on a LAN address), or permission denied: the legacy path.
      const input = inputRef.current;
      input?.focus();
      input?.select();
      let ok = false;
      try {
        ok = document.execCommand('copy');
      } catch {
        ok = false;
      }
      setCopy(ok ? 'copied' : 'failed');
    }
  };

  const current = qr && qr.url === clusterUrl ? qr : undefined;

  return (
    <section className="panel cluster" aria-label="Cluster">
      <h2>Cluster</h2>
      <p>Open this link on any machine of your LAN to join this cluster.</p>
      <div className="url-row">
        <input
          ref={inputRef}
          type="text"
          readOnly
          value={clusterUrl}
          aria-label="Cluster URL"
          onFocus={(e) => e.currentTarget.select()}
        />
        <button type="button" onClick={() => void copyLink()} aria-live="polite">
          {copy === 'copied' ? 'Copied' : 'Copy link'}
        </button>
      </div>
      <p className="url-full">
        <a href={clusterUrl} target="_blank" rel="noopener noreferrer">{clusterUrl}</a>
      </p>
      {copy === 'failed' && (
        <p className="hint" role="status">Could not copy: the link is selected, press Ctrl+C (⌘C on a Mac).</p>
      )}
      <div className="qr">
        {current === undefined ? (
          <div className="qr-placeholder" aria-hidden="true" />
        ) : 'dataUrl' in current ? (
          <img src={current.dataUrl} alt="QR code for the cluster URL" width={180} height={180} />
        ) : (
          <p className="muted" role="status">No QR code: {current.error}</p>
        )}
      </div>
    </section>
  );
}
