// The kernel's event stream and the view's joins and departures, newest first.
import { formatClock, type LogEntry } from './format.ts';

export interface EventLogProps {
  /** Newest first. */
  events: readonly LogEntry[];
}

const SEVERITY_WORD = { info: 'info', ok: 'ok', warn: 'warning', error: 'error' } as const;

export function EventLog({ events }: EventLogProps) {
  return (
    <section className="panel log" aria-label="Event log">
      <h2>
        Event log <span className="muted count">({events.length}, newest first)</span>
      </h2>
      {events.length === 0 ? (
        <p className="muted">No events yet.</p>
      ) : (
        <ol aria-label="Kernel events" className="events">
          {events.map((e) => (
            <li key={e.seq} className={`event sev-${e.severity}`} data-source={e.source}>
              <time dateTime={Number.isFinite(e.at) ? new Date(e.at).toISOString() : undefined}>{formatClock(e.at)}</time>
              <span className="sev-dot" aria-hidden="true" />
              <span className="sr-only">{SEVERITY_WORD[e.severity]}: </span>
              <span className="text">{e.text}</span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
