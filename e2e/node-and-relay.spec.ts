// The same kernel headless in Node joins the tabs; and the relay can restart under a live cluster.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from './fixtures.ts';
import { clusterUrlOf, expectViews, openTab, startNodePeer } from './helpers.ts';

test('a Node peer started with the cluster URL appears in every tab as kind "node"', async ({ device }) => {
  const a = await device();
  const b = await device();
  const idA = await openTab(a, '/');
  const url = await clusterUrlOf(a);
  const idB = await openTab(b, url);
  const node = startNodePeer(url);
  try {
    const idN = await node.peerId;
    await expectViews([a, b], [idA, idB, idN]);
    await expect(a.locator(`tr[data-peer-id="${idN}"]`)).toContainText('node');
    await expect(b.locator(`tr[data-peer-id="${idN}"]`)).toContainText('node');
    // It sees the tabs too.
    await expect.poll(() => node.output.join('')).toMatch(/\[view\] 3 peers/);
    // And it runs processes for them: a program placed on it streams its output to the tab.
    const r = await a.evaluate(
      (on) => (globalThis as unknown as { lshapes: { shell: { run(n: string, a: string[], o: object): Promise<{ code?: number; stdout: string }> } } }).lshapes.shell.run('hello', ['from', 'node'], { on }),
      idN,
    );
    expect(r).toMatchObject({ code: 0, stdout: 'hello, world\narg 1: from\narg 2: node\n' });
    // It holds a share of the cluster filesystem on disk: a file added in a tab lands in its
    // store, and a program on it reads the file through /cluster.
    const text = 'added in a tab, kept by a Node peer\n';
    await a.evaluate(
      (t) => (globalThis as unknown as { lshapes: { kernel: { files: { ingest(d: string, f: { path: string; file: Blob }[]): Promise<unknown> } } } }).lshapes.kernel.files.ingest('root', [{ path: 'kept.txt', file: new Blob([t]) }]),
      text,
    );
    const hash = createHash('sha256').update(text).digest('hex');
    const block = path.join(node.state, 'store', 'blocks', hash.slice(0, 2), hash);
    await expect.poll(() => existsSync(block), { timeout: 30_000 }).toBe(true);
    expect(readFileSync(block, 'utf8')).toBe(text);
    const cat = await a.evaluate(
      (on) => (globalThis as unknown as { lshapes: { shell: { run(n: string, a: string[], o: object): Promise<{ code?: number; stdout: string }> } } }).lshapes.shell.run('cat', ['/cluster/kept.txt'], { on }),
      idN,
    );
    expect(cat).toMatchObject({ code: 0, stdout: text });
    // Stopping it is a graceful leave.
    node.proc.kill('SIGTERM');
    await expectViews([a, b], [idA, idB], 5_000);
  } finally {
    node.proc.kill('SIGKILL');
  }
});

test('the relay restarts mid-test: the tabs still see each other and new tabs still join', async ({ device, relay }) => {
  const a = await device();
  const b = await device();
  const idA = await openTab(a, '/');
  const url = await clusterUrlOf(a);
  const idB = await openTab(b, url);
  await expectViews([a, b], [idA, idB]);

  await relay.restart();
  // Peer connections never depended on the relay.
  await expectViews([a, b], [idA, idB]);
  await a.waitForTimeout(2_000);
  await expectViews([a, b], [idA, idB]);

  // Tabs reconnect to the relay by themselves, so a newcomer is signaled to both.
  const c = await device();
  const idC = await openTab(c, url);
  await expectViews([a, b, c], [idA, idB, idC]);
});
