// The shell's terminal panel: xterm.js on screen, a TerminalSession (line editor + interpreter)
// behind it, talking to the system through a ShellBackend.
import { useEffect, useRef } from 'react';
import { Terminal as XTerm, type ITheme } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import type { ShellBackend } from './commands.ts';
import { TerminalSession } from './session.ts';
import './terminal.css';

export interface TerminalProps {
  backend: ShellBackend;
}

/** Dark, with ANSI colours readable on it; the page around it stays light. */
const THEME: ITheme = {
  background: '#1c1f24',
  foreground: '#e6e8eb',
  cursor: '#e6e8eb',
  cursorAccent: '#1c1f24',
  selectionBackground: '#3d5a99',
  black: '#1c1f24',
  red: '#ff6b61',
  green: '#5fd38a',
  yellow: '#f2c14e',
  blue: '#7aa7ff',
  magenta: '#d29cf0',
  cyan: '#56c8d8',
  white: '#e6e8eb',
  brightBlack: '#8a919c',
  brightRed: '#ff8a80',
  brightGreen: '#86e3a8',
  brightYellow: '#ffd97a',
  brightBlue: '#9dbdff',
  brightMagenta: '#e2b8f7',
  brightCyan: '#84dbe6',
  brightWhite: '#ffffff',
};

const FONT = 'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace';

export function Terminal({ backend }: TerminalProps) {
  const hostRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const host = hostRef.current;
    if (!host) return;
    const term = new XTerm({ theme: THEME, fontFamily: FONT, fontSize: 13, cursorBlink: true, scrollback: 5000 });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(host);
    term.textarea?.setAttribute('aria-label', 'Terminal input');
    const refit = () => {
      // The panel may be hidden (no size): keep the last size then.
      if (host.clientWidth > 0 && host.clientHeight > 0) fit.fit();
    };
    refit();

    const session = new TerminalSession(backend, (data) => term.write(data), { cols: term.cols });
    // Ctrl-C with a selection copies, Ctrl-V pastes: leave those to the browser.
    term.attachCustomKeyEventHandler((e) => {
      if (e.type !== 'keydown' || !e.ctrlKey || e.altKey || e.metaKey) return true;
      const k = e.key.toLowerCase();
      if (k === 'c' && term.hasSelection()) return false;
      if (k === 'v') return false;
      return true;
    });
    const subs = [term.onData((data) => session.input(data)), term.onResize(({ cols }) => session.resize(cols))];
    const observer = new ResizeObserver(refit);
    observer.observe(host);
    session.start();

    return () => {
      observer.disconnect();
      for (const s of subs) s.dispose();
      session.dispose();
      term.dispose();
    };
  }, [backend]);

  return (
    <section className="panel terminal-panel" role="region" aria-label="Terminal">
      <h2>Terminal</h2>
      <div className="terminal-screen">
        <div className="terminal-host" ref={hostRef} />
      </div>
    </section>
  );
}
