// Smoke test of the relay as real browsers see it: the app page, and signaling between two
// devices over /signal, surviving a relay restart on the same port.
import type { Page } from '@playwright/test';
import { test, expect } from './fixtures.ts';

const ROOM = 'a'.repeat(64);

/** Open /signal from the page, join ROOM as `peer`, and keep every message in window.__msgs. */
async function join(page: Page, peer: string): Promise<unknown> {
  return page.evaluate(
    ({ room, peer }) =>
      new Promise((resolve, reject) => {
        const w = window as unknown as { __ws: WebSocket; __msgs: unknown[] };
        w.__msgs = [];
        const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/signal`);
        w.__ws = ws;
        ws.onopen = () => ws.send(JSON.stringify({ t: 'join', room, peer }));
        ws.onerror = () => reject(new Error('websocket error'));
        ws.onmessage = (e) => {
          const msg = JSON.parse(String(e.data)) as { t: string };
          if (msg.t === 'peers') resolve(msg);
          else w.__msgs.push(msg);
        };
      }),
    { room: ROOM, peer },
  );
}

const messages = (page: Page) => page.evaluate(() => (window as unknown as { __msgs: unknown[] }).__msgs);

test('serves the app and relays signals between two devices, across a restart', async ({ relay, device }) => {
  const a = await device();
  const b = await device();
  const idA = '1'.repeat(32);
  const idB = '2'.repeat(32);

  // 200 once `npm run build` has produced dist/, else the 503 page that says how to build.
  const res = await a.goto('/');
  expect([200, 503]).toContain(res?.status());
  if (res?.status() === 503) await expect(a.locator('body')).toContainText('npm run build');
  await b.goto('/');

  expect(await join(a, idA)).toEqual({ t: 'peers', peers: [] });
  expect(await join(b, idB)).toEqual({ t: 'peers', peers: [idA] });
  await expect.poll(() => messages(a)).toContainEqual({ t: 'joined', peer: idB });

  await b.evaluate((to) => (window as unknown as { __ws: WebSocket }).__ws.send(JSON.stringify({ t: 'signal', to, data: { sdp: 'x' } })), idA);
  await expect.poll(() => messages(a)).toContainEqual({ t: 'signal', from: idB, data: { sdp: 'x' } });

  // A restarted relay starts empty on the same URL; peers that rejoin find each other again.
  await relay.restart();
  await expect.poll(() => a.evaluate(() => (window as unknown as { __ws: WebSocket }).__ws.readyState)).toBe(3);
  expect(await join(a, idA)).toEqual({ t: 'peers', peers: [] });
  expect(await join(b, idB)).toEqual({ t: 'peers', peers: [idA] });
});
