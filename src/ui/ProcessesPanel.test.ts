// The processes panel rendered to static HTML (react-dom/server), read back with small regexes.
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { ProcessInfo } from '../servers/scheduler/client.ts';
import { ProcessesPanel, sortProcesses, stateClass } from './ProcessesPanel.tsx';

const SELF = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const NODE = 'a1f00d5e9c8b7a6958473625140f1e2d';

function row(pid: string, extra: Partial<ProcessInfo> = {}): ProcessInfo {
  return { pid, name: 'primes', args: ['2000000', '4'], peer: SELF, state: 'RUNNING', cpuMs: 400, startedAt: 100, ...extra };
}

const render = (rows: ProcessInfo[] | undefined, self: string | null = SELF) => renderToStaticMarkup(createElement(ProcessesPanel, { rows, self: self ?? undefined }));

const text = (html: string) => html.replace(/<[^>]+>/g, '').replace(/&#x27;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** Each <tr data-pid> as { pid, state, cells (text) }. */
function rowsOf(html: string) {
  return [...html.matchAll(/<tr data-pid="([^"]*)" data-state="([^"]*)"[^>]*>(.*?)<\/tr>/g)].map((m) => ({
    pid: m[1],
    state: m[2],
    cells: [...m[3]!.matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((c) => text(c[1]!)),
    html: m[0],
  }));
}

describe('ProcessesPanel', () => {
  it('is a table captioned "Processes" with one row per process: pid, command, peer, state, CPU, exit', () => {
    const html = render([
      row('a1b2c3.1', { args: ['a b'], cpuMs: 125_000 }),
      row('a1b2c3.2', { name: 'cat', args: [], peer: NODE, state: 'EXITED', exitCode: 3, cpuMs: 12_345, startedAt: 50 }),
    ]);
    expect(html).toContain('<table class="processes-table"><caption class="sr-only">Processes</caption>');
    expect(html).toContain('<h2 id="processes-heading">Processes');
    expect(html).toContain('(1 active, 1 exited)');
    expect(rowsOf(html).map((r) => [r.pid, r.state, ...r.cells])).toEqual([
      ['a1b2c3.1', 'RUNNING', 'a1b2c3.1', "primes 'a b'", 'a1b2c3d4 (this tab)', 'RUNNING', '2m05s', ''],
      ['a1b2c3.2', 'EXITED', 'a1b2c3.2', 'cat', 'a1f00d5e', 'EXITED', '12.3s', '3'],
    ]);
  });

  it('marks the state with a class per state and the exit code as good or bad', () => {
    const states = ['READY', 'RUNNING', 'WAITING', 'WAIT_CONFIRM', 'STOPPED', 'MIGRATING'] as const;
    const html = render([...states.map((state, i) => row(`a.${i}`, { state, startedAt: i })), row('a.9', { state: 'EXITED', exitCode: 0 })]);
    const rows = rowsOf(html);
    expect(rows.map((r) => r.state)).toEqual([...states, 'EXITED']);
    for (const r of rows) expect(r.html).toContain(`class="state ${stateClass(r.state as ProcessInfo['state'])}"`);
    expect(stateClass('WAIT_CONFIRM')).toBe('proc-state-wait-confirm');
    expect(rows.at(-1)!.html).toContain('<span class="exit-ok">0</span>');
    expect(render([row('a.1', { state: 'EXITED', exitCode: 137 })])).toContain('<span class="exit-bad">137</span>');
  });

  it('says "this tab" only for processes on this peer, and shows the parent of a child', () => {
    const html = render([row('a.1'), row('a.2', { peer: NODE, parent: 'a.1', startedAt: 200 })]);
    const [mine, child] = rowsOf(html);
    expect(mine!.html).toContain('proc-here');
    expect(child!.html).not.toContain('this tab');
    expect(child!.cells[1]).toBe('primes 2000000 4 ← a.1');
    expect(rowsOf(render([row('a.1')], null))[0]!.html).not.toContain('this tab');
  });

  it('waits for the first table, and says how to start a process when there is none', () => {
    expect(render(undefined)).toContain('Waiting for the process table');
    expect(render(undefined)).not.toContain('<table');
    const empty = render([]);
    expect(empty).toContain('No processes.');
    expect(empty).toContain('(0 active)');
  });
});

describe('sortProcesses', () => {
  it('puts live processes first by start, then exited ones newest first, one row per pid', () => {
    const rows = [
      row('x.1', { state: 'EXITED', startedAt: 1 }),
      row('x.2', { startedAt: 30 }),
      row('x.3', { state: 'EXITED', startedAt: 5 }),
      row('x.4', { state: 'WAITING', startedAt: 10 }),
      row('x.2', { startedAt: 99 }),
    ];
    expect(sortProcesses(rows).map((r) => r.pid)).toEqual(['x.4', 'x.2', 'x.3', 'x.1']);
  });
});
