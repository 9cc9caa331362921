// Links between real tabs: both data-plane modes, bad frames from a peer, and reconnection.
import type { Page } from '@playwright/test';
import { Packr } from 'msgpackr';
import { expect, test } from './fixtures.ts';
import { expectViews, openTab } from './helpers.ts';
import { PROTOCOL_VERSION } from '../src/kernel/wire.ts';

type Lshapes = {
  mode: string;
  mesh: { close(peer: string, reason: string): void; connected(): string[] };
  kernel: {
    links(): Promise<{ peer: string; state: string }[]>;
    debugSendRaw(peer: string, frames: Uint8Array[]): Promise<void>;
    pingPong(peer: string, n: number, size: number): Promise<number[]>;
  };
};

const admittedPeers = (page: Page) =>
  page.evaluate(async () => {
    const l = (globalThis as unknown as { lshapes: Lshapes }).lshapes;
    return (await l.kernel.links()).filter((x) => x.state === 'admitted').map((x) => x.peer).sort();
  });

const eventLog = (page: Page) => page.locator('ol[aria-label="Kernel events"]').innerText();

test('a transfer-mode tab and a bridge-mode tab exchange messages port to port', async ({ device }) => {
  const a = await device();
  const b = await device();
  const idA = await openTab(a, '/');
  const idB = await openTab(b, `/?plane=bridge${new URL(a.url()).hash}`);
  expect(await a.evaluate(() => (globalThis as unknown as { lshapes: Lshapes }).lshapes.mode)).toBe('transfer');
  expect(await b.evaluate(() => (globalThis as unknown as { lshapes: Lshapes }).lshapes.mode)).toBe('bridge');
  await expectViews([a, b], [idA, idB]);
  // 20 round trips each way through the echo port, 1 KiB and 200 KiB (chunked) bodies.
  for (const [from, to] of [[a, idB], [b, idA]] as const) {
    for (const size of [1024, 200 * 1024]) {
      const rtts = await from.evaluate(({ to, size }) => (globalThis as unknown as { lshapes: Lshapes }).lshapes.kernel.pingPong(to, 20, size), { to, size });
      expect(rtts).toHaveLength(20);
    }
  }
});

test('bad frames from a peer are refused with a reason; past the limit the link is closed and comes back', async ({ device }) => {
  const a = await device();
  const b = await device();
  const idA = await openTab(a, '/');
  const idB = await openTab(b, a.url());
  await expectViews([a, b], [idA, idB]);

  const pack = new Packr({ useRecords: false }).pack.bind(new Packr({ useRecords: false }));
  const validMsg = pack({ k: 'msg', from: 'x', to: 'echo', body: { hello: 'world'.repeat(10) } });
  const bad: [string, Uint8Array][] = [
    ['empty frame', new Uint8Array(0)],
    ['undecodable frame', new Uint8Array([0xc1])],
    ['undecodable frame', validMsg.subarray(0, validMsg.length >> 1)],
    ['invalid frame (kind explode)', pack({ k: 'explode' })],
    ['invalid frame (kind msg)', pack({ k: 'msg', from: 5, to: 'x', body: 1 })],
    ['invalid frame (kind chunk)', pack({ k: 'chunk', id: 1, i: 0, n: 1e9, data: new Uint8Array(10) })],
    ['hello after admission', pack({ k: 'hello', v: PROTOCOL_VERSION, pub: new Uint8Array(65), nonce: new Uint8Array(32), kind: 'browser' })],
  ];
  // (the eighth strike, below, is a large frame of garbage; an oversized frame cannot even be sent
  // over Chromium's data channel, whose maximum message is our maximum frame: the kernel's own
  // size check is covered in src/kernel/kernel.test.ts)
  const send = (frames: Uint8Array[]) =>
    a.evaluate(
      ({ to, frames }) => (globalThis as unknown as { lshapes: Lshapes }).lshapes.kernel.debugSendRaw(to, frames.map((f) => new Uint8Array(f))),
      { to: idB, frames: frames.map((f) => [...f]) },
    );
  await send(bad.map(([, f]) => f));
  for (const [reason] of bad) await expect.poll(() => eventLog(b)).toContain(reason);
  // Seven bad frames are tolerated: the link is still up and still carries messages.
  expect(await admittedPeers(b)).toEqual([idA]);
  const rtt = await a.evaluate((to) => (globalThis as unknown as { lshapes: Lshapes }).lshapes.kernel.pingPong(to, 3, 16), idB);
  expect(rtt).toHaveLength(3);

  // The eighth closes it; then the two live peers reconnect by themselves.
  await send([new Uint8Array(200 * 1024).fill(0x07)]);
  await expect.poll(() => eventLog(b)).toContain('Data read, but end of buffer not reached');
  await expect.poll(() => eventLog(b)).toContain('too many bad frames');
  await expect.poll(() => admittedPeers(a), { timeout: 30_000 }).toEqual([idB]);
  await expect.poll(() => admittedPeers(b), { timeout: 30_000 }).toEqual([idA]);
  await expectViews([a, b], [idA, idB]);
});

test('a dropped connection between two live peers comes back by itself', async ({ device }) => {
  const a = await device();
  const b = await device();
  const idA = await openTab(a, '/');
  const idB = await openTab(b, a.url());
  await expectViews([a, b], [idA, idB]);
  // Tear the WebRTC connection down from the higher id's side: it cannot re-initiate, so it must knock.
  const [hi, loId] = idA > idB ? [a, idB] : [b, idA];
  await hi.evaluate((peer) => (globalThis as unknown as { lshapes: Lshapes }).lshapes.mesh.close(peer, 'test cut'), loId);
  await expect.poll(() => eventLog(hi)).toContain('test cut');
  await expect.poll(() => admittedPeers(a), { timeout: 30_000 }).toEqual([idB]);
  await expect.poll(() => admittedPeers(b), { timeout: 30_000 }).toEqual([idA]);
  const rtt = await a.evaluate((to) => (globalThis as unknown as { lshapes: Lshapes }).lshapes.kernel.pingPong(to, 3, 16), idB);
  expect(rtt).toHaveLength(3);
});

test('a stranger who knows the room id but not the token is refused by admission and never listed', async ({ device }) => {
  const a = await device();
  const idA = await openTab(a, '/');
  const room = await a.evaluate(() => (globalThis as unknown as { lshapes: { room: string } }).lshapes.room);
  const stranger = await device();
  const idS = await openTab(stranger, `/#c=not-the-cluster-token&room=${room}`);
  // The relay puts them in one room, WebRTC connects, and admission refuses: a wrong MAC.
  await expect.poll(() => eventLog(a), { timeout: 30_000 }).toContain(`refused ${idS.slice(0, 8)}: wrong cluster token`);
  await expect.poll(() => eventLog(stranger), { timeout: 30_000 }).toContain('wrong cluster token');
  expect(await admittedPeers(a)).toEqual([]);
  await expectViews([a], [idA]);
  await expectViews([stranger], [idS]);
});
