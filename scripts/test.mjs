#!/usr/bin/env node
// npm test: typecheck, unit tests, build, end-to-end tests — in that order, every step run even
// after a failure so one run reports everything. Ends with the line `total: N passed, M failed`;
// exits non-zero if any step failed. Skipped tests count as failures: we allow none.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ensureDeps, ensureChromium, run, bin, ROOT, EnsureError } from './ensure.mjs';

let chromium;
try {
  ensureDeps();
  chromium = ensureChromium();
} catch (err) {
  if (!(err instanceof EnsureError)) throw err;
  console.error(`test: ${err.message}`);
  process.exit(1);
}

const RESULTS = path.join(ROOT, 'test-results');
const VITEST_JSON = path.join(RESULTS, 'vitest.json');
const PLAYWRIGHT_JSON = path.join(RESULTS, 'playwright.json');
mkdirSync(RESULTS, { recursive: true });
// Stale reports from an earlier run must not be counted as this run's.
for (const f of [VITEST_JSON, PLAYWRIGHT_JSON]) rmSync(f, { force: true });

/** @typedef {{tests: number, passed: number, failed: number, skipped: number}} Counts */

/** @returns {Counts | undefined} */
function vitestCounts() {
  const r = readJson(VITEST_JSON);
  if (!r) return undefined;
  return {
    tests: r.numTotalTests ?? 0,
    passed: r.numPassedTests ?? 0,
    // A file that fails to load has no failed test: it counts as one. (numFailedTestSuites
    // would count a failed test's describe blocks too.)
    failed: (r.numFailedTests ?? 0) + (r.testResults ?? []).filter((f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed')).length,
    skipped: (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0),
  };
}

/** @returns {Counts | undefined} */
function playwrightCounts() {
  const r = readJson(PLAYWRIGHT_JSON);
  if (!r?.stats) return undefined;
  const s = r.stats;
  return {
    tests: (s.expected ?? 0) + (s.flaky ?? 0) + (s.unexpected ?? 0) + (s.skipped ?? 0),
    passed: (s.expected ?? 0) + (s.flaky ?? 0),
    // Errors outside any test (config, global setup) fail the run too.
    failed: Math.max(s.unexpected ?? 0, r.errors?.length ?? 0),
    skipped: s.skipped ?? 0,
  };
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function hasSpecFiles(dir) {
  if (!existsSync(dir)) return false;
  return readdirSync(dir, { recursive: true }).some((f) => String(f).endsWith('.spec.ts'));
}

const steps = [
  { name: 'typecheck', cmd: bin('tsc'), args: ['--noEmit', '-p', 'tsconfig.json'] },
  {
    name: 'vitest',
    cmd: bin('vitest'),
    args: ['run', '--reporter=default', '--reporter=json', `--outputFile=${path.relative(ROOT, VITEST_JSON)}`],
    counts: vitestCounts,
  },
  { name: 'build', cmd: bin('vite'), args: ['build'] },
  {
    name: 'playwright',
    cmd: bin('playwright'),
    args: ['test', '--reporter=list,json'],
    env: { CHROMIUM_PATH: chromium, PLAYWRIGHT_JSON_OUTPUT_NAME: PLAYWRIGHT_JSON },
    counts: playwrightCounts,
    // Until someone writes e2e/*.spec.ts, "No tests found" is not a failure.
    emptyIsFine: () => !hasSpecFiles(path.join(ROOT, 'e2e')),
  },
];

const summary = [];
let passed = 0;
let failed = 0;
for (const step of steps) {
  console.log(`\n━━ ${step.name}: ${path.basename(step.cmd)} ${step.args.join(' ')}`);
  const code = run(step.cmd, step.args, { env: { ...process.env, ...step.env } });
  const counts = step.counts?.();
  if (step.emptyIsFine?.() && (counts?.tests ?? 0) === 0) {
    summary.push(`${step.name.padEnd(11)} 0 tests (no e2e/*.spec.ts yet)`);
    continue;
  }
  let line;
  if (counts) {
    passed += counts.passed;
    failed += counts.failed + counts.skipped;
    line = `${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`;
  }
  if (code !== 0 && (!counts || counts.failed + counts.skipped === 0)) {
    // The step failed without a failing test to show for it (type error, build error, crash).
    failed += 1;
    line = `${line ? `${line}; ` : ''}FAILED (exit ${code}), counted as 1 failure`;
  }
  summary.push(`${step.name.padEnd(11)} ${line ?? 'ok'}`);
}

console.log('\n━━ summary');
for (const line of summary) console.log(line);
console.log(`total: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
