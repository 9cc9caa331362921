import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { startRelay, relayUrls, CLOSE_POLICY, CLOSE_REPLACED, CLOSE_JOIN_TIMEOUT, type Relay, type RelayOptions } from './server.ts';
import { MAX_SIGNAL_BYTES, type RelayMessage } from './protocol.ts';

const peerId = () => randomBytes(16).toString('hex');
const roomId = () => randomBytes(32).toString('hex');

/** A ws client that queues what it receives so tests can await messages in order. */
class Client {
  readonly received: RelayMessage[] = [];
  private read = 0;
  private wake: (() => void) | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.received.push(JSON.parse(String(data)) as RelayMessage);
      this.wake?.();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        resolve({ code, reason: String(reason) });
        this.wake?.();
      });
    });
    ws.on('error', () => {}); // the close event carries what tests check
  }

  static open(port: number, opts: WebSocket.ClientOptions = {}): Promise<Client> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/signal`, opts);
    const client = new Client(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
    });
  }

  static async joined(port: number, room: string, peer = peerId()): Promise<Client & { peer: string }> {
    const c = Object.assign(await Client.open(port), { peer });
    c.send({ t: 'join', room, peer });
    expect((await c.next()).t).toBe('peers');
    return c;
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** The next message not yet consumed; rejects if the socket closes first. */
  async next(): Promise<RelayMessage> {
    while (this.read >= this.received.length) {
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error('socket closed while waiting for a message');
      await new Promise<void>((r) => (this.wake = r));
    }
    return this.received[this.read++]!;
  }

  close(): void {
    this.ws.close();
  }
}

let dir: string;
const relays: Relay[] = [];
const clients: Client[] = [];

async function relay(opts: RelayOptions = {}): Promise<Relay & { logs: string[]; waitForLog(re: RegExp): Promise<void> }> {
  const logs: string[] = [];
  const waiters: Array<() => void> = [];
  const r = await startRelay({
    port: 0,
    host: '127.0.0.1',
    staticDir: dir,
    log: (line) => {
      logs.push(line);
      for (const w of waiters.splice(0)) w();
    },
    ...opts,
  });
  relays.push(r);
  return Object.assign(r, {
    logs,
    async waitForLog(re: RegExp) {
      while (!logs.some((l) => re.test(l))) await new Promise<void>((res) => waiters.push(res));
    },
  });
}

async function open(port: number, opts?: WebSocket.ClientOptions): Promise<Client> {
  const c = await Client.open(port, opts);
  clients.push(c);
  return c;
}

async function joined(port: number, room: string, peer?: string): Promise<Client & { peer: string }> {
  const c = await Client.joined(port, room, peer);
  clients.push(c);
  return c;
}

/** Raw HTTP GET that keeps the path exactly as written (no client-side normalisation). */
function get(port: number, rawPath: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: rawPath, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'lshapes-relay-'));
  writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>LSHAPES test</title>');
  mkdirSync(path.join(dir, 'assets'));
  writeFileSync(path.join(dir, 'assets', 'app-1234.js'), 'export const x = 1;');
  writeFileSync(path.join(dir, 'assets', 'worker.mjs'), 'export {};');
  writeFileSync(path.join(dir, 'assets', 'prog.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  writeFileSync(path.join(dir, 'style.css'), 'body{}');
  writeFileSync(path.join(dir, 'icon.svg'), '<svg/>');
  writeFileSync(path.join(dir, 'data.json'), '{}');
  // A file next to the static dir that traversal would reach.
  writeFileSync(path.join(dir, '..', `${path.basename(dir)}-secret.txt`), 'secret');
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await Promise.all(relays.splice(0).map((r) => r.close()));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(path.join(dir, '..', `${path.basename(dir)}-secret.txt`), { force: true });
});

describe('rooms', () => {
  it('answers join with the peers already there and tells them who joined and left', async () => {
    const r = await relay();
    const room = roomId();
    const a = await joined(r.port, room);

    const b = await open(r.port);
    const bId = peerId();
    b.send({ t: 'join', room, peer: bId });
    expect(await b.next()).toEqual({ t: 'peers', peers: [a.peer] });
    expect(await a.next()).toEqual({ t: 'joined', peer: bId });

    b.close();
    expect(await a.next()).toEqual({ t: 'left', peer: bId });
  });

  it('keeps rooms apart: peers lists and joins are per room', async () => {
    const r = await relay();
    const a = await joined(r.port, roomId());
    const b = await open(r.port);
    b.send({ t: 'join', room: roomId(), peer: peerId() });
    expect(await b.next()).toEqual({ t: 'peers', peers: [] });
    // a hears nothing about b: the next thing a gets is its own answer from the relay.
    a.send({ t: 'signal', to: peerId(), data: 1 });
    expect((await a.next()).t).toBe('error');
  });

  it('forwards signal to the named peer of the same room, with the sender id', async () => {
    const r = await relay();
    const room = roomId();
    const a = await joined(r.port, room);
    const b = await joined(r.port, room);
    const c = await joined(r.port, room);
    expect(await a.next()).toEqual({ t: 'joined', peer: b.peer });
    expect(await a.next()).toEqual({ t: 'joined', peer: c.peer });
    expect(await b.next()).toEqual({ t: 'joined', peer: c.peer });

    const sdp = { type: 'offer', sdp: 'v=0\r\n...', nested: [1, 2, { x: null }] };
    a.send({ t: 'signal', to: b.peer, data: sdp });
    expect(await b.next()).toEqual({ t: 'signal', from: a.peer, data: sdp });
    // c was not the target: its next message is the one addressed to it.
    b.send({ t: 'signal', to: c.peer, data: 'hello c' });
    expect(await c.next()).toEqual({ t: 'signal', from: b.peer, data: 'hello c' });
  });

  it('refuses a signal to a peer of another room and does not deliver it', async () => {
    const r = await relay();
    const room1 = roomId();
    const room2 = roomId();
    const a = await joined(r.port, room1);
    const b = await joined(r.port, room2);
    const c = await joined(r.port, room2);
    expect(await b.next()).toEqual({ t: 'joined', peer: c.peer });

    a.send({ t: 'signal', to: b.peer, data: 'sneaky' });
    const err = await a.next();
    expect(err.t).toBe('error');
    expect(err.t === 'error' && err.reason).toMatch(/unknown peer/);
    expect(a.ws.readyState).toBe(WebSocket.OPEN); // a race with a departure is not abuse

    // The refused signal was handled before this one is sent, so b's next message is c's.
    c.send({ t: 'signal', to: b.peer, data: 'legit' });
    expect(await b.next()).toEqual({ t: 'signal', from: c.peer, data: 'legit' });
  });

  it('lets a reloaded peer replace its old connection without a left broadcast', async () => {
    const r = await relay();
    const room = roomId();
    const a1 = await joined(r.port, room);
    const b = await joined(r.port, room);
    expect(await a1.next()).toEqual({ t: 'joined', peer: b.peer });

    const a2 = await open(r.port);
    a2.send({ t: 'join', room, peer: a1.peer });
    expect(await a2.next()).toEqual({ t: 'peers', peers: [b.peer] });
    expect((await a1.closed).code).toBe(CLOSE_REPLACED);
    // b learns the peer is back (its old WebRTC link is dead) but never that it left.
    expect(await b.next()).toEqual({ t: 'joined', peer: a1.peer });

    await r.waitForLog(/replaced connection .* closed/);
    a2.send({ t: 'signal', to: b.peer, data: 'after reload' });
    expect(await b.next()).toEqual({ t: 'signal', from: a1.peer, data: 'after reload' });
    expect(b.received.some((m) => m.t === 'left')).toBe(false);

    // The new connection is the live one: signals reach it.
    b.send({ t: 'signal', to: a1.peer, data: 'hi again' });
    expect(await a2.next()).toEqual({ t: 'signal', from: b.peer, data: 'hi again' });
  });

  it('refuses a join beyond the room cap', async () => {
    const r = await relay({ limits: { maxPeersPerRoom: 2 } });
    const room = roomId();
    await joined(r.port, room);
    await joined(r.port, room);
    const c = await open(r.port);
    c.send({ t: 'join', room, peer: peerId() });
    const err = await c.next();
    expect(err.t === 'error' && err.reason).toMatch(/room full/);
    expect((await c.closed).code).toBe(CLOSE_POLICY);
  });

  it('closes a socket that never joins', async () => {
    const r = await relay({ limits: { joinTimeoutMs: 50 } });
    const c = await open(r.port);
    const err = await c.next();
    expect(err.t === 'error' && err.reason).toMatch(/no join/);
    expect((await c.closed).code).toBe(CLOSE_JOIN_TIMEOUT);
  });

  it('drops a socket that stops answering pings', async () => {
    const r = await relay({ limits: { heartbeatMs: 250 } });
    const dead = await open(r.port, { autoPong: false });
    const alive = await joined(r.port, roomId());
    await dead.closed;
    await r.waitForLog(/missed a heartbeat/);
    expect(alive.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('bad input', () => {
  /** After each abuse, a well-behaved pair in another room must still be served. */
  async function othersStillServed(port: number): Promise<void> {
    const room = roomId();
    const x = await joined(port, room);
    const y = await joined(port, room);
    x.send({ t: 'signal', to: y.peer, data: 'ok' });
    expect(await y.next()).toEqual({ t: 'signal', from: x.peer, data: 'ok' });
  }

  it.each([
    ['malformed JSON', '{"t":"join",', /malformed JSON/],
    ['a non-object', '42', /invalid message/],
    ['an unknown type', { t: 'hello' }, /invalid message/],
    ['a bad room id', { t: 'join', room: 'lobby', peer: peerId() }, /invalid message: room/],
    ['a bad peer id', { t: 'join', room: roomId(), peer: 'ME' }, /invalid message: peer/],
    ['a signal before join', { t: 'signal', to: peerId(), data: 1 }, /before join/],
  ])('answers %s with an error and keeps the socket', async (_name, msg, reason) => {
    const r = await relay();
    const c = await open(r.port);
    c.send(msg);
    const err = await c.next();
    expect(err.t).toBe('error');
    expect(err.t === 'error' && err.reason).toMatch(reason);
    expect(r.logs.some((l) => reason.test(l))).toBe(true);
    // One mistake is forgiven: the socket can still join.
    const room = roomId();
    c.send({ t: 'join', room, peer: peerId() });
    expect(await c.next()).toEqual({ t: 'peers', peers: [] });
    await othersStillServed(r.port);
  });

  it('rejects binary frames', async () => {
    const r = await relay();
    const c = await open(r.port);
    c.ws.send(Buffer.from('{"t":"join"}'), { binary: true });
    const err = await c.next();
    expect(err.t === 'error' && err.reason).toMatch(/binary/);
  });

  it('rejects a second join on the same connection', async () => {
    const r = await relay();
    const c = await joined(r.port, roomId());
    c.send({ t: 'join', room: roomId(), peer: peerId() });
    const err = await c.next();
    expect(err.t === 'error' && err.reason).toMatch(/already joined/);
  });

  it('closes a socket after repeated errors', async () => {
    const r = await relay();
    const c = await open(r.port);
    for (let i = 0; i < 10; i++) c.send('nope');
    expect((await c.closed).code).toBe(CLOSE_POLICY);
    expect(c.received.filter((m) => m.t === 'error').length).toBeGreaterThanOrEqual(1);
    await othersStillServed(r.port);
  });

  it('closes a socket that sends an oversized message', async () => {
    const r = await relay();
    const room = roomId();
    const a = await joined(r.port, room);
    const b = await joined(r.port, room);
    a.send({ t: 'signal', to: b.peer, data: 'x'.repeat(MAX_SIGNAL_BYTES + 1) });
    expect((await a.closed).code).toBe(1009); // ws: message too big
    // Only the joined notice reached b, never the oversized payload; b is still served.
    expect(b.received.every((m) => m.t !== 'signal')).toBe(true);
    await othersStillServed(r.port);
  });

  it('accepts a message just under the size cap', async () => {
    const r = await relay();
    const room = roomId();
    const a = await joined(r.port, room);
    const b = await joined(r.port, room);
    const envelope = JSON.stringify({ t: 'signal', to: b.peer, data: '' });
    const data = 'y'.repeat(MAX_SIGNAL_BYTES - envelope.length);
    a.send({ t: 'signal', to: b.peer, data });
    expect(await b.next()).toEqual({ t: 'signal', from: a.peer, data });
  });

  it('closes a flooding socket with 1008 and keeps serving others', async () => {
    const r = await relay({ limits: { rateBurst: 20, ratePerSec: 1 } });
    const room = roomId();
    const a = await joined(r.port, room);
    const b = await joined(r.port, room);
    for (let i = 0; i < 200; i++) a.send({ t: 'signal', to: b.peer, data: i });
    const { code } = await a.closed;
    expect(code).toBe(CLOSE_POLICY);
    expect(a.received.some((m) => m.t === 'error' && /rate limit/.test(m.reason))).toBe(true);
    // b got at most the burst; the rest was dropped at the relay.
    const signals = b.received.filter((m) => m.t === 'signal').length;
    expect(signals).toBeLessThanOrEqual(20);
    await othersStillServed(r.port);
  });

  it('refuses WebSocket upgrades on other paths', async () => {
    const r = await relay();
    const ws = new WebSocket(`ws://127.0.0.1:${r.port}/elsewhere`);
    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => resolve(-1));
    });
    expect(status).toBe(404);
  });
});

describe('static files', () => {
  it('serves files with the right MIME types', async () => {
    const r = await relay();
    const cases: Array<[string, string]> = [
      ['/', 'text/html'],
      ['/index.html', 'text/html'],
      ['/assets/app-1234.js', 'text/javascript'],
      ['/assets/worker.mjs', 'text/javascript'],
      ['/assets/prog.wasm', 'application/wasm'],
      ['/style.css', 'text/css'],
      ['/icon.svg', 'image/svg+xml'],
      ['/data.json', 'application/json'],
    ];
    for (const [p, type] of cases) {
      const res = await get(r.port, p);
      expect(res.status, p).toBe(200);
      expect(res.type, p).toContain(type);
    }
    expect((await get(r.port, '/assets/app-1234.js?v=2')).body).toBe('export const x = 1;');
  });

  it('falls back to index.html for app routes but 404s missing assets', async () => {
    const r = await relay();
    const route = await get(r.port, '/cluster/processes');
    expect(route.status).toBe(200);
    expect(route.body).toContain('LSHAPES test');
    expect((await get(r.port, '/assets/missing.js')).status).toBe(404);
  });

  it('refuses path traversal', async () => {
    const r = await relay();
    const secret = `${path.basename(dir)}-secret.txt`;
    for (const p of [`/../${secret}`, `/assets/../../${secret}`, `/%2e%2e/${secret}`, `/..%2f${secret}`, `/..%5c${secret}`, '/%00']) {
      const res = await get(r.port, p);
      expect(res.status, p).toBe(403);
      expect(res.body).not.toContain('secret');
    }
    expect((await get(r.port, '/%E0%A4%A')).status).toBe(400);
  });

  it('answers only GET and HEAD', async () => {
    const r = await relay();
    expect((await get(r.port, '/', 'POST')).status).toBe(405);
    const head = await get(r.port, '/', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('explains how to build when the static dir is missing', async () => {
    const r = await relay({ staticDir: path.join(dir, 'no-such-dist') });
    const res = await get(r.port, '/');
    expect(res.status).toBe(503);
    expect(res.body).toContain('npm run build');
    // Signaling works without the app.
    await joined(r.port, roomId());
  });
});

describe('urls', () => {
  it('lists localhost and the LAN addresses when listening on all interfaces', () => {
    const urls = relayUrls('0.0.0.0', 8080);
    expect(urls[0]).toBe('http://localhost:8080');
    for (const u of urls) expect(u).toMatch(/^http:\/\/[^/]+:8080$/);
    expect(urls.some((u) => u.includes('127.0.0.1'))).toBe(false);
  });

  it('lists just the bound address otherwise', async () => {
    const r = await relay();
    expect(r.urls).toEqual([`http://127.0.0.1:${r.port}`]);
  });

  it('can restart on the same port', async () => {
    const r = await relay();
    await r.close();
    const again = await relay({ port: r.port });
    expect(again.port).toBe(r.port);
    await joined(again.port, roomId());
  });
});
