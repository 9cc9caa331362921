// A cluster of real tabs over real WebRTC: joining, leaving, crashing, isolation between clusters.
import { expectViews, listedPeers, openTab, clusterUrlOf } from './helpers.ts';
import { expect, test } from './fixtures.ts';

test('four tabs join one cluster; a closed tab and a crashed tab disappear from the others', async ({ device }) => {
  const a = await device();
  const idA = await openTab(a, '/');
  // Opening the bare URL made a cluster: its token is in the fragment, and the shell shows it.
  expect(new URL(a.url()).hash).toMatch(/^#c=[A-Za-z0-9_-]{16,}$/);
  const url = await clusterUrlOf(a);
  expect(url).toBe(a.url());
  await expect(a.getByRole('img', { name: /QR code/ })).toBeVisible();

  const [b, c, d] = [await device(), await device(), await device()];
  const ids = [idA, await openTab(b, url), await openTab(c, url), await openTab(d, url)];
  expect(new Set(ids).size).toBe(4);
  await expectViews([a, b, c, d], ids);

  // Graceful leave: the closing tab says goodbye, so the others drop it at once.
  await d.close();
  await expectViews([a, b, c], ids.slice(0, 3), 5_000);

  // A crash says nothing: failure detection must notice the silence.
  const cdp = await c.context().newCDPSession(c);
  void cdp.send('Page.crash').catch(() => {}); // never answers: the page is gone
  await expectViews([a, b], ids.slice(0, 2), 15_000);
});

test('a reload keeps the tab\'s peer id, and a second tab of the same profile is another peer', async ({ device }) => {
  const a = await device();
  const id1 = await openTab(a, '/');
  const url = a.url();
  await a.reload();
  const id2 = await openTab(a, url);
  expect(id2).toBe(id1);
  const sameProfile = await a.context().newPage();
  const id3 = await openTab(sameProfile, url);
  expect(id3).not.toBe(id1);
  await expectViews([a, sameProfile], [id1, id3]);
});

test('a tab with another cluster\'s token never sees the cluster, and the cluster never sees it', async ({ device }) => {
  const a = await device();
  const b = await device();
  const idA = await openTab(a, '/');
  const idB = await openTab(b, a.url());
  await expectViews([a, b], [idA, idB]);

  const stranger = await device();
  const idS = await openTab(stranger, '/#c=another-cluster-token-0001');
  await expect.poll(() => listedPeers(stranger)).toEqual([idS]);
  // Give gossip several rounds; neither side may ever list the other.
  for (let i = 0; i < 6; i++) {
    await a.waitForTimeout(500);
    expect(await listedPeers(a)).not.toContain(idS);
    expect(await listedPeers(stranger)).toEqual([idS]);
  }
});

test('a tab outside a secure context (LAN address over http) joins with pure-JavaScript crypto', async ({ device, relay }) => {
  const a = await device();
  const idA = await openTab(a, '/');
  const token = new URL(a.url()).hash;
  const lan = await device();
  // lshapes.test maps to 127.0.0.1 (playwright.config.ts) but, unlike localhost, is not trustworthy.
  const idL = await openTab(lan, `http://lshapes.test:${relay.port}/${token}`);
  expect(await lan.evaluate(() => [isSecureContext, typeof crypto.subtle])).toEqual([false, 'undefined']);
  await expectViews([a, lan], [idA, idL]);
});
