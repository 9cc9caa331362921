// The relay connection: join the room, pass signals, and come back by itself when the relay
// restarts. Peer connections never depend on it once they are up.
import type { ClientMessage, RelayMessage } from '../../relay/protocol.ts';

export type SignalingStatus = 'connecting' | 'open' | 'closed';

/** The subset of the WebSocket API we use: the browser's, or `ws` in Node. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: never) => void) | null;
  onclose: ((ev: never) => void) | null;
  onerror: ((ev: never) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
}

export interface SignalingOptions {
  url: string;
  room: string;
  peer: string;
  createSocket(url: string): WebSocketLike;
  onMessage(msg: RelayMessage): void;
  onStatus?(status: SignalingStatus): void;
  log?(text: string): void;
}

const BACKOFF_MS = [250, 500, 1000, 2000, 4000];

export class SignalingClient {
  private ws: WebSocketLike | undefined;
  private attempt = 0;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly opts: SignalingOptions) {
    this.connect();
  }

  send(msg: ClientMessage): boolean {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  get open(): boolean {
    return this.ws?.readyState === 1;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws?.close(1000, 'bye');
  }

  private connect(): void {
    if (this.stopped) return;
    this.opts.onStatus?.('connecting');
    let ws: WebSocketLike;
    try {
      ws = this.opts.createSocket(this.opts.url);
    } catch (err) {
      this.opts.log?.(`relay socket failed: ${(err as Error).message}`);
      return this.retry();
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      ws.send(JSON.stringify({ t: 'join', room: this.opts.room, peer: this.opts.peer } satisfies ClientMessage));
      this.opts.onStatus?.('open');
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      let msg: RelayMessage;
      try {
        msg = JSON.parse(ev.data) as RelayMessage;
      } catch {
        return this.opts.log?.('relay sent invalid JSON');
      }
      if (msg && typeof msg === 'object' && typeof msg.t === 'string') this.opts.onMessage(msg);
    };
    ws.onerror = () => {};
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.opts.onStatus?.('closed');
      this.retry();
    };
  }

  private retry(): void {
    if (this.stopped) return;
    const base = BACKOFF_MS[Math.min(this.attempt++, BACKOFF_MS.length - 1)]!;
    this.timer = setTimeout(() => this.connect(), base * (0.75 + Math.random() * 0.5));
  }
}
