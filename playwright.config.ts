import { defineConfig } from '@playwright/test';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './e2e/chromium.ts';

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
      executablePath: CHROMIUM_PATH,
      args: CHROMIUM_ARGS,
    },
  },
});
