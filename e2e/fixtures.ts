// Playwright fixtures for multi-device tests: a real relay serving the built app, and any number
// of "devices" — each its own browser context (own storage, own IndexedDB), like separate machines.
import { test as base, expect, type BrowserContext, type BrowserContextOptions, type Page } from '@playwright/test';
import { fileURLToPath } from 'node:url';
import { startRelay, type Relay } from '../src/relay/server.ts';

const DIST = fileURLToPath(new URL('../dist', import.meta.url));

export interface RelayFixture {
  /** http://127.0.0.1:PORT — also the baseURL of every device. */
  readonly url: string;
  readonly port: number;
  /** Everything the relay logged during this test. */
  readonly logs: string[];
  /** Close the relay and start a fresh one on the same port (peers must reconnect). */
  restart(): Promise<void>;
}

export interface DeviceOptions extends BrowserContextOptions {
  /** Label used in the device log; default device1, device2, ... */
  name?: string;
}

export type DeviceFactory = (opts?: DeviceOptions) => Promise<Page>;

export const test = base.extend<{ relay: RelayFixture; device: DeviceFactory }>({
  relay: async ({}, use, testInfo) => {
    const logs: string[] = [];
    const start = (port: number) =>
      startRelay({ port, host: '127.0.0.1', staticDir: DIST, log: (line) => logs.push(line) });
    let relay: Relay = await start(0);
    const port = relay.port;
    await use({
      url: `http://127.0.0.1:${port}`,
      port,
      logs,
      async restart() {
        await relay.close();
        logs.push('--- relay restarted ---');
        relay = await start(port);
      },
    });
    await relay.close();
    if (testInfo.status !== testInfo.expectedStatus) {
      await testInfo.attach('relay.log', { body: logs.join('\n'), contentType: 'text/plain' });
    }
  },

  device: async ({ browser, relay }, use, testInfo) => {
    const contexts: BrowserContext[] = [];
    const logs: string[] = [];
    await use(async ({ name, ...options } = {}) => {
      const label = name ?? `device${contexts.length + 1}`;
      const context = await browser.newContext({
        baseURL: relay.url,
        permissions: ['microphone', 'camera'],
        ...options,
      });
      contexts.push(context);
      const page = await context.newPage();
      page.on('console', (m) => logs.push(`[${label}] ${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => logs.push(`[${label}] pageerror: ${e.stack ?? e.message}`));
      return page;
    });
    await Promise.all(contexts.map((c) => c.close()));
    if (testInfo.status !== testInfo.expectedStatus) {
      await testInfo.attach('devices.log', { body: logs.join('\n'), contentType: 'text/plain' });
    }
  },
});

export { expect };
