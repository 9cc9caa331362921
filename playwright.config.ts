import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: 'e2e',
  testMatch: '*.spec.ts',
  // Not test-results/: Playwright empties its outputDir, which would delete vitest.json.
  outputDir: 'test-results/playwright-artifacts',
  workers: 1, // a 2-core machine; several tabs per test already load it
  fullyParallel: false,
  timeout: 120_000,
  retries: 0,
  reporter: 'list',
  use: {
    browserName: 'chromium',
    permissions: ['microphone', 'camera'],
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--allow-loopback-in-peer-connection',
        '--use-fake-ui-for-media-stream',
        '--disable-quic',
        '--no-first-run',
        // A second name for loopback that is not a secure context, like a LAN address over http.
        '--host-resolver-rules=MAP lshapes.test 127.0.0.1',
      ],
    },
  },
});
