// The LAN relay: one HTTP port that serves the built app and the signaling WebSocket at /signal.
// It groups peers by room and forwards opaque `signal` payloads between peers of one room; it
// never interprets them. Every input is untrusted: nothing a client sends may crash the relay or
// disturb other connections.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createReadStream, promises as fsp } from 'node:fs';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { ClientMessage, MAX_SIGNAL_BYTES, type RelayMessage } from './protocol.ts';

export interface RelayLimits {
  maxConnections: number;
  maxRooms: number;
  maxPeersPerRoom: number;
  /** A socket that has not joined a room by then is closed. */
  joinTimeoutMs: number;
  /** Ping period; a socket that missed one pong is dropped at the next tick. */
  heartbeatMs: number;
  /** Token bucket per connection: burst size and refill per second. */
  rateBurst: number;
  ratePerSec: number;
  /** Protocol errors tolerated on one connection before it is closed. */
  maxStrikes: number;
  /** A receiver this far behind (bytes queued) is considered dead and dropped. */
  maxBufferedBytes: number;
}

export const DEFAULT_LIMITS: RelayLimits = {
  maxConnections: 4096,
  maxRooms: 1024,
  maxPeersPerRoom: 512,
  joinTimeoutMs: 10_000,
  heartbeatMs: 30_000,
  rateBurst: 200,
  ratePerSec: 50,
  maxStrikes: 5,
  maxBufferedBytes: 4 * 1024 * 1024,
};

export interface RelayOptions {
  port?: number;
  /** Default 0.0.0.0: the relay is meant to be reached from the whole LAN. */
  host?: string;
  /** Built app to serve; default `dist/` of the current directory. */
  staticDir?: string;
  log?: (line: string) => void;
  limits?: Partial<RelayLimits>;
}

export interface Relay {
  port: number;
  urls: string[];
  close(): Promise<void>;
}

/** WebSocket close codes the relay uses (1008 = policy violation). */
export const CLOSE_POLICY = 1008;
export const CLOSE_REPLACED = 4000;
export const CLOSE_JOIN_TIMEOUT = 4001;
export const CLOSE_SHUTDOWN = 1001;

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
};

interface Conn {
  id: number;
  ws: WebSocket;
  remote: string;
  peer?: string;
  room?: string;
  tokens: number;
  lastRefill: number;
  strikes: number;
  alive: boolean;
  joinTimer?: NodeJS.Timeout;
  /** Set when a newer connection took over this peer id: its close is not a departure. */
  replaced: boolean;
}

export async function startRelay(opts: RelayOptions = {}): Promise<Relay> {
  const host = opts.host ?? '0.0.0.0';
  const staticDir = path.resolve(opts.staticDir ?? 'dist');
  const log = opts.log ?? ((line: string) => console.log(line));
  const limits: RelayLimits = { ...DEFAULT_LIMITS, ...opts.limits };

  const rooms = new Map<string, Map<string, Conn>>();
  const conns = new Set<Conn>();
  let nextId = 1;

  const server = createServer((req, res) => {
    serveStatic(staticDir, req, res).catch((err: unknown) => {
      log(`http: ${req.method} ${req.url}: ${String(err)}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });
  // Garbage from the network must never become an uncaught error.
  server.on('clientError', (_err, socket) => socket.destroy());

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_SIGNAL_BYTES });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const pathname = (req.url ?? '').split('?')[0];
    if (pathname !== '/signal') return refuseUpgrade(socket, 404, 'Not Found');
    if (conns.size >= limits.maxConnections) {
      log(`relay: refused connection from ${remoteOf(req)}: ${limits.maxConnections} connections open`);
      return refuseUpgrade(socket, 503, 'Service Unavailable');
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req));
  });

  function onConnection(ws: WebSocket, req: IncomingMessage): void {
    const conn: Conn = {
      id: nextId++,
      ws,
      remote: remoteOf(req),
      tokens: limits.rateBurst,
      lastRefill: Date.now(),
      strikes: 0,
      alive: true,
      replaced: false,
    };
    conns.add(conn);
    conn.joinTimer = setTimeout(() => {
      if (conn.peer) return;
      log(`relay: #${conn.id} ${conn.remote} did not join within ${limits.joinTimeoutMs} ms`);
      send(conn, { t: 'error', reason: `no join within ${limits.joinTimeoutMs} ms` });
      ws.close(CLOSE_JOIN_TIMEOUT, 'join timeout');
    }, limits.joinTimeoutMs);

    ws.on('pong', () => (conn.alive = true));
    ws.on('message', (data, isBinary) => {
      try {
        onMessage(conn, data, isBinary);
      } catch (err) {
        // A bug here must cost one connection at most, never the relay.
        log(`relay: #${conn.id} internal error: ${String(err)}`);
        ws.terminate();
      }
    });
    // ws reports oversized frames and protocol violations here, then closes the socket itself.
    ws.on('error', (err) => log(`relay: #${conn.id} ${conn.remote} socket error: ${err.message}`));
    ws.on('close', () => onClose(conn));
  }

  function onMessage(conn: Conn, data: RawData, isBinary: boolean): void {
    if (conn.ws.readyState !== WebSocket.OPEN) return; // already being closed: ignore the tail
    if (!takeToken(conn)) {
      log(`relay: #${conn.id} ${conn.remote} rate limit exceeded, closing`);
      send(conn, { t: 'error', reason: `rate limit exceeded (${limits.ratePerSec} messages/s)` });
      conn.ws.close(CLOSE_POLICY, 'rate limit exceeded');
      return;
    }
    if (isBinary) return reject(conn, 'binary frames are not accepted; send JSON text');

    let json: unknown;
    try {
      json = JSON.parse(rawToString(data));
    } catch {
      return reject(conn, 'malformed JSON');
    }
    const parsed = ClientMessage.safeParse(json);
    if (!parsed.success) {
      const detail = parsed.error.issues
        .map((i) => (i.path.length ? `${i.path.join('.')}: ` : '') + i.message)
        .join('; ');
      return reject(conn, `invalid message: ${detail}`);
    }
    const msg = parsed.data;
    if (msg.t === 'join') return join(conn, msg.room, msg.peer);

    if (!conn.peer || !conn.room) return reject(conn, 'signal before join: send {t:"join"} first');
    const target = rooms.get(conn.room)?.get(msg.to);
    if (!target || target === conn) {
      // Not a strike: the target may have left a moment ago.
      send(conn, { t: 'error', reason: `unknown peer ${msg.to} in this room` });
      return;
    }
    send(target, { t: 'signal', from: conn.peer, data: msg.data });
  }

  function join(conn: Conn, roomId: string, peer: string): void {
    if (conn.peer) return reject(conn, 'already joined; one join per connection');
    let room = rooms.get(roomId);
    const previous = room?.get(peer);
    if (!room) {
      if (rooms.size >= limits.maxRooms) return refuse(conn, `relay full: ${limits.maxRooms} rooms`);
      room = new Map();
      rooms.set(roomId, room);
    } else if (!previous && room.size >= limits.maxPeersPerRoom) {
      return refuse(conn, `room full: ${limits.maxPeersPerRoom} peers`);
    }
    if (previous) {
      // Same peer id again: the tab reloaded. The new socket takes over silently.
      previous.replaced = true;
      log(`relay: peer ${peer} reconnected, replacing #${previous.id}`);
      previous.ws.close(CLOSE_REPLACED, 'replaced by a newer connection');
    }
    clearTimeout(conn.joinTimer);
    conn.peer = peer;
    conn.room = roomId;
    const others = [...room.keys()].filter((p) => p !== peer);
    room.set(peer, conn);
    send(conn, { t: 'peers', peers: others });
    // Also on replacement: the others' WebRTC links to the old tab are dead and must be redone.
    for (const p of others) send(room.get(p)!, { t: 'joined', peer });
    log(`relay: #${conn.id} ${conn.remote} peer ${peer} joined room ${roomId.slice(0, 8)}… (${room.size} peers)`);
  }

  function onClose(conn: Conn): void {
    clearTimeout(conn.joinTimer);
    conns.delete(conn);
    if (conn.replaced) log(`relay: replaced connection #${conn.id} of peer ${conn.peer} closed`);
    if (!conn.peer || !conn.room || conn.replaced) return;
    const room = rooms.get(conn.room);
    if (!room || room.get(conn.peer) !== conn) return;
    room.delete(conn.peer);
    if (room.size === 0) rooms.delete(conn.room);
    for (const other of room.values()) send(other, { t: 'left', peer: conn.peer });
    log(`relay: peer ${conn.peer} left room ${conn.room.slice(0, 8)}… (${room.size} peers)`);
  }

  /** A protocol error: tell the client why; close it once it keeps misbehaving. */
  function reject(conn: Conn, reason: string): void {
    conn.strikes++;
    log(`relay: #${conn.id} ${conn.remote} error: ${reason}`);
    send(conn, { t: 'error', reason });
    if (conn.strikes >= limits.maxStrikes) {
      log(`relay: #${conn.id} ${conn.remote} closed after ${conn.strikes} errors`);
      conn.ws.close(CLOSE_POLICY, 'too many protocol errors');
    }
  }

  /** A request we cannot serve at all (capacity): tell why and close. */
  function refuse(conn: Conn, reason: string): void {
    log(`relay: #${conn.id} ${conn.remote} refused: ${reason}`);
    send(conn, { t: 'error', reason });
    conn.ws.close(CLOSE_POLICY, reason.slice(0, 120));
  }

  function takeToken(conn: Conn): boolean {
    const now = Date.now();
    conn.tokens = Math.min(limits.rateBurst, conn.tokens + ((now - conn.lastRefill) / 1000) * limits.ratePerSec);
    conn.lastRefill = now;
    if (conn.tokens < 1) return false;
    conn.tokens -= 1;
    return true;
  }

  function send(conn: Conn, msg: RelayMessage): void {
    if (conn.ws.readyState !== WebSocket.OPEN) return;
    if (conn.ws.bufferedAmount > limits.maxBufferedBytes) {
      log(`relay: #${conn.id} ${conn.remote} is not reading (${conn.ws.bufferedAmount} bytes queued), dropping`);
      conn.ws.terminate();
      return;
    }
    conn.ws.send(JSON.stringify(msg));
  }

  const heartbeat = setInterval(() => {
    for (const conn of conns) {
      if (!conn.alive) {
        log(`relay: #${conn.id} ${conn.remote} missed a heartbeat, dropping`);
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
    }
  }, limits.heartbeatMs);
  heartbeat.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8080, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log(`http: server error: ${err.message}`));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (opts.port ?? 8080);

  let closing: Promise<void> | undefined;
  return {
    port,
    urls: relayUrls(host, port),
    close() {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(heartbeat);
        for (const conn of conns) {
          clearTimeout(conn.joinTimer);
          conn.ws.terminate();
        }
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** The addresses to print: localhost plus every LAN IPv4 when listening on all interfaces. */
export function relayUrls(host: string, port: number): string[] {
  if (host !== '0.0.0.0' && host !== '::') return [`http://${host.includes(':') ? `[${host}]` : host}:${port}`];
  const urls = [`http://localhost:${port}`];
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === 'IPv4' && !a.internal) urls.push(`http://${a.address}:${port}`);
    }
  }
  return urls;
}

async function serveStatic(root: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
    res.end('method not allowed\n');
    return;
  }
  const index = path.join(root, 'index.html');
  if (!(await isFile(index))) {
    res.writeHead(503, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(
      `<!doctype html><title>LSHAPES: app not built</title>` +
        `<h1>LSHAPES: the app is not built</h1>` +
        `<p>No <code>index.html</code> in <code>${escapeHtml(root)}</code>. ` +
        `Run <code>npm run build</code> (or <code>npm start</code>, which builds first), then reload.</p>\n`,
    );
    return;
  }

  // Parse by hand rather than with URL, which would silently fold `..` away: we refuse it.
  const raw = (req.url ?? '/').split(/[?#]/)[0] ?? '/';
  let pathname: string;
  try {
    pathname = decodeURIComponent(raw);
  } catch {
    return sendText(res, 400, 'bad request\n');
  }
  const file = path.resolve(root, '.' + pathname);
  const escapes = file !== root && !file.startsWith(root + path.sep);
  if (!pathname.startsWith('/') || pathname.includes('\0') || pathname.split(/[\\/]/).includes('..') || escapes) {
    return sendText(res, 403, 'forbidden\n');
  }

  let target = file;
  if (await isDir(target)) target = path.join(target, 'index.html');
  if (!(await isFile(target))) {
    // SPA fallback for routes; a missing asset (has an extension) is a real 404.
    if (path.extname(pathname) !== '') return sendText(res, 404, 'not found\n');
    target = index;
  }

  const stat = await fsp.stat(target);
  const ext = path.extname(target).toLowerCase();
  res.writeHead(200, {
    'content-type': MIME[ext] ?? 'application/octet-stream',
    'content-length': stat.size,
    'x-content-type-options': 'nosniff',
    // Vite puts content-hashed files under assets/; everything else must be revalidated.
    'cache-control': target.startsWith(path.join(root, 'assets') + path.sep)
      ? 'public, max-age=31536000, immutable'
      : 'no-cache',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const stream = createReadStream(target);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

function sendText(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
}

function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

async function isFile(p: string): Promise<boolean> {
  return (await fsp.stat(p).catch(() => undefined))?.isFile() ?? false;
}

async function isDir(p: string): Promise<boolean> {
  return (await fsp.stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

function remoteOf(req: IncomingMessage): string {
  return `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
