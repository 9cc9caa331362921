// The shell's layout, rendered to static HTML: the terminal is mounted when there is a backend,
// the processes panel always.
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { ShellApi } from '../host/browser/shell-api.ts';
import { App } from './App.tsx';
import { FakeBackend } from './terminal/fake-backend.ts';

const api: ShellApi = {
  whoami: () => new Promise(() => {}),
  subscribe: () => new Promise(() => {}),
  watchProcesses: () => new Promise(() => {}),
};

describe('App', () => {
  it('mounts the terminal first, then the processes panel', () => {
    const html = renderToStaticMarkup(createElement(App, { api, clusterUrl: 'http://x/#c=t', shellBackend: new FakeBackend() }));
    expect(html).toContain('<main class="shell-main has-terminal">');
    const terminal = html.indexOf('aria-label="Terminal"');
    const processes = html.indexOf('id="processes-heading"');
    const peers = html.indexOf('id="peers-heading"');
    expect(terminal).toBeGreaterThan(0);
    expect(processes).toBeGreaterThan(terminal);
    expect(peers).toBeGreaterThan(processes);
    expect(html).toContain('Waiting for the process table');
  });

  it('has no terminal without a backend', () => {
    const html = renderToStaticMarkup(createElement(App, { api, clusterUrl: 'http://x/#c=t' }));
    expect(html).toContain('<main class="shell-main">');
    expect(html).not.toContain('aria-label="Terminal"');
    expect(html).toContain('id="processes-heading"');
  });
});
