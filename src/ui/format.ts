// Pure formatting helpers for the shell: ids, durations, round trips, event-log lines.
// No React and no DOM here, so it all runs (and is tested) under Node.
import type { KernelEvent, PeerId } from '../kernel/types.ts';
import type { PeerState, PeerView, ViewMessage } from '../servers/synchronizer/protocol.ts';

export type Severity = 'info' | 'ok' | 'warn' | 'error';

/** One line of the event log: a kernel event or a synthesized view change. */
export interface LogLine {
  text: string;
  severity: Severity;
}

/** A log line with what the event log needs to render it. */
export interface LogEntry extends LogLine {
  /** Increasing, unique within a shell: the React key. */
  seq: number;
  /** Wall-clock milliseconds since the epoch. */
  at: number;
  /** The KernelEvent type, or 'view.joined' / 'view.left' for synthesized lines. */
  source: KernelEvent['type'] | 'view.joined' | 'view.left';
}

/** The first 8 hex chars of a peer id. */
export function shortId(id: PeerId): string {
  return id.slice(0, 8);
}

/** "0 s", "12 s", "3 min", "2 h 5 min", "1 d 3 h". Rounds down. */
export function formatUptime(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 24) return min % 60 === 0 ? `${h} h` : `${h} h ${min % 60} min`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d} d` : `${d} d ${h % 24} h`;
}

/** "12.3 ms", or "—" for this tab itself or when there is no direct link to measure. */
export function formatRtt(rttMs: number | undefined, state: PeerState): string {
  if (state === 'self' || rttMs === undefined || !Number.isFinite(rttMs) || rttMs < 0) return '—';
  return `${rttMs.toFixed(1)} ms`;
}

/** Load as a short number: "0", "1.5", "0.33". */
export function formatLoad(load: number): string {
  if (!Number.isFinite(load)) return '—';
  return String(Math.round(load * 100) / 100);
}

/** Local wall-clock time as HH:MM:SS. */
export function formatClock(at: number): string {
  const d = new Date(at);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** The short human text and severity of a kernel event. */
export function describeEvent(e: KernelEvent): LogLine {
  switch (e.type) {
    case 'link.up':
      return { text: `link up with ${shortId(e.peer)}, admitting…`, severity: 'info' };
    case 'link.admitted':
      return { text: `peer ${shortId(e.peer)} (${e.kind}) admitted`, severity: 'ok' };
    case 'link.down':
      return { text: `link to ${shortId(e.peer)} down: ${e.reason}`, severity: 'warn' };
    case 'link.refused':
      return { text: `refused ${shortId(e.peer)}: ${e.reason}`, severity: 'warn' };
    case 'frame.bad':
      return { text: `bad frame from ${shortId(e.peer)}: ${e.reason}`, severity: 'error' };
    case 'message.undeliverable':
      return { text: `undeliverable to ${shortId(e.to.peer)}:${e.to.port}: ${e.reason}`, severity: 'warn' };
    case 'log':
      return { text: `${e.source}: ${e.text}`, severity: e.level };
  }
}

export interface ViewDiff {
  joined: PeerView[];
  left: PeerView[];
}

/** Peers in `next` but not `prev` (joined), and in `prev` but not `next` (left). No previous view: nothing. */
export function diffViews(prev: ViewMessage | undefined, next: ViewMessage): ViewDiff {
  if (!prev) return { joined: [], left: [] };
  const before = new Set(prev.peers.map((p) => p.id));
  const after = new Set(next.peers.map((p) => p.id));
  return {
    joined: next.peers.filter((p) => !before.has(p.id)),
    left: prev.peers.filter((p) => !after.has(p.id)),
  };
}

/** The synthesized log lines for a view change: joins first, then departures. */
export function describeViewDiff(diff: ViewDiff): (LogLine & { source: 'view.joined' | 'view.left' })[] {
  return [
    ...diff.joined.map((p) => ({ text: `peer ${shortId(p.id)} (${p.kind}) joined`, severity: 'ok' as const, source: 'view.joined' as const })),
    ...diff.left.map((p) => ({ text: `peer ${shortId(p.id)} (${p.kind}) left the view`, severity: 'info' as const, source: 'view.left' as const })),
  ];
}

const STATE_ORDER: Record<PeerState, number> = { self: 0, connected: 1, gossip: 2 };

/** Rows in a stable order: this tab first, then direct links, then gossip-only peers; by id within each.
 *  One row per id: should a view ever list an id twice, the first entry wins. */
export function sortPeers(peers: readonly PeerView[]): PeerView[] {
  const byId = new Map<PeerId, PeerView>();
  for (const p of peers) if (!byId.has(p.id)) byId.set(p.id, p);
  return [...byId.values()].sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

const KIB = 1024;
const MIB = KIB * KIB;
const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** Binary units, about three significant digits: "0 B", "512 B", "1.5 KiB", "12.3 MiB", "120 GiB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  if (bytes < KIB) return `${Math.round(bytes)} B`;
  let unit = 0;
  let v = bytes;
  while (v >= KIB && unit < BYTE_UNITS.length - 1) {
    v /= KIB;
    unit++;
  }
  // 1023.96 KiB would print as "1024 KiB": show the next unit instead.
  if (v >= 999.5 && unit < BYTE_UNITS.length - 1) {
    v /= KIB;
    unit++;
  }
  return `${v < 99.95 ? v.toFixed(1) : Math.round(v)} ${BYTE_UNITS[unit]}`;
}

/** A transfer rate in MiB/s: "3.1 MiB/s", "0.05 MiB/s" (slow ones keep two decimals so they do not read as 0). */
export function formatRate(bytesPerSecond: number): string {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond < 0) return '—';
  const mib = bytesPerSecond / MIB;
  return `${mib < 0.1 ? mib.toFixed(2) : mib.toFixed(1)} MiB/s`;
}

/** Whole percent done, rounded down (100 only when finished); an empty total counts as done. */
export function formatPercent(done: number, total: number): string {
  if (!(total > 0)) return '100%';
  return `${Math.max(0, Math.min(100, Math.floor((done / total) * 100)))}%`;
}
