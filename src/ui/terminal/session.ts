// One terminal's life: the line editor, the interpreter and the foreground process, wired to a
// byte sink (xterm.js's write). Pure: no DOM, so tests drive it with keystrokes and read a screen.
import { paint } from './ansi.ts';
import { Shell, type ForegroundJob, type Pid, type ShellBackend, type ShellConsole } from './commands.ts';
import { LineEditor, type EditorResult } from './line-editor.ts';

export const DEFAULT_PROMPT = `\x1b[1;34mlshapes\x1b[0m $ `;
export const DEFAULT_BANNER = `${paint('bold', 'LSHAPES')} ${paint('dim', 'terminal. Type help for the commands.')}\n`;

/** '\n' → '\r\n' (a terminal's LF does not return the carriage); existing '\r\n' stays.
 *  `afterCR`: the previous chunk ended with '\r'. */
export function toCrlf(text: string, afterCR = false): string {
  return text.replace(/(\r?)\n/g, (m, cr: string, offset: number) => (cr !== '' || (offset === 0 && afterCR) ? m : '\r\n'));
}

/** A process's byte stream as terminal text: UTF-8 decoded across chunk boundaries, CRLF line ends. */
export class OutputStream {
  private readonly decoder = new TextDecoder('utf-8');
  private afterCR = false;

  push(bytes: Uint8Array): string {
    return this.text(this.decoder.decode(bytes, { stream: true }));
  }

  /** What is left of a partly received character (as U+FFFD). */
  end(): string {
    return this.text(this.decoder.decode());
  }

  private text(s: string): string {
    if (s === '') return '';
    const out = toCrlf(s, this.afterCR);
    this.afterCR = s.endsWith('\r');
    return out;
  }
}

export interface TerminalSessionOptions {
  cols?: number;
  prompt?: string;
  historySize?: number;
  /** Printed by start(); '' for none. */
  banner?: string;
}

const TRAILING_SGR = /(?:\x1b\[[0-9;]*m)+$/;
const encoder = new TextEncoder();

export class TerminalSession {
  private readonly editor: LineEditor;
  private readonly shell: Shell;
  private readonly banner: string;
  private job: ForegroundJob | undefined;
  private running: Promise<void> | undefined;
  private interruptPending = false;
  /** Keys typed while a command starts (no foreground job yet): the job's, or the next prompt's. */
  private typeahead = '';
  private atLineStart = true;
  private disposed = false;
  private stdoutStream = new OutputStream();
  private stderrStream = new OutputStream();
  private readonly console: ShellConsole;

  constructor(backend: ShellBackend, private readonly sink: (data: string) => void, opts: TerminalSessionOptions = {}) {
    this.shell = new Shell(backend);
    this.banner = opts.banner ?? DEFAULT_BANNER;
    this.editor = new LineEditor({
      prompt: opts.prompt ?? DEFAULT_PROMPT,
      cols: opts.cols ?? 80,
      historySize: opts.historySize ?? 500,
      complete: (before) => this.shell.complete(before),
    });
    this.console = {
      print: (text) => this.aside(() => this.write(toCrlf(text))),
      error: (message) =>
        this.aside(() => {
          if (!this.atLineStart) this.write('\r\n');
          this.write(paint('red', message) + '\r\n');
        }),
      clear: () => {
        this.write('\x1b[H\x1b[2J\x1b[3J');
        this.atLineStart = true;
      },
      stdout: (bytes) => this.aside(() => this.write(this.stdoutStream.push(bytes))),
      stderr: (bytes) => this.aside(() => this.write(this.stderrStream.push(bytes))),
      foreground: (job) => this.foreground(job),
    };
  }

  /** The editor's mode: 'command' at the prompt, 'input' while a foreground process reads, else 'idle'. */
  get mode() {
    return this.editor.mode;
  }

  get history(): readonly string[] {
    return this.editor.history;
  }

  /** The pid of the foreground process, if one runs. */
  get foregroundPid(): Pid | undefined {
    return this.job?.pid;
  }

  /** Prints the banner and the first prompt. */
  start(): void {
    if (this.banner) this.write(toCrlf(this.banner));
    void this.shell.refreshCompletions();
    this.apply(this.editor.showPrompt());
  }

  /** Keystrokes and pastes, as xterm's onData delivers them. */
  input(data: string): void {
    if (this.disposed) return;
    // A program is starting (a remote one can take a second): keep what is typed for it, as a
    // terminal's typeahead does. Ctrl-C still goes through at once.
    if (this.running && !this.job && !data.includes('\x03')) {
      this.typeahead += data;
      return;
    }
    this.apply(this.editor.feed(data));
  }

  /** The terminal's new width (xterm's onResize). */
  resize(cols: number): void {
    if (this.disposed) return;
    this.write(this.editor.setCols(cols));
  }

  /** Stops writing. A foreground process is left running (detached), not killed. */
  dispose(): void {
    this.disposed = true;
    this.job = undefined;
  }

  /** Resolves once no command runs (the prompt is back). For tests and harnesses. */
  async whenIdle(): Promise<void> {
    while (this.running) await this.running;
  }

  private write(data: string): void {
    if (this.disposed || data === '') return;
    this.sink(data);
    const visible = data.replace(TRAILING_SGR, '');
    if (visible !== '') this.atLineStart = visible.endsWith('\n');
  }

  /** Writes output of a background process. At the prompt it goes above it: the prompt and the
   *  line being typed are erased, the output written, and they are drawn again below it (a
   *  partial last line of output is ended first, so the prompt starts a row of its own). */
  private aside(write: () => void): void {
    if (this.editor.mode !== 'command' || this.disposed) {
      write();
      return;
    }
    this.write(this.editor.hide());
    this.atLineStart = true;
    write();
    if (!this.atLineStart) this.write('\r\n');
    this.write(this.editor.redraw());
  }

  private apply(r: EditorResult): void {
    this.write(r.output);
    for (const a of r.actions) {
      switch (a.type) {
        case 'line':
          this.execute(a.line);
          break;
        case 'stdin':
          this.job?.stdin(encoder.encode(a.data));
          break;
        case 'eof':
          this.job?.eof();
          break;
        case 'interrupt':
          if (this.job) this.job.interrupt();
          else if (this.running) this.interruptPending = true;
          break;
      }
    }
  }

  private execute(line: string): void {
    this.interruptPending = false;
    const done = this.shell.execute(line, this.console).then(() => {
      if (this.running === done) this.running = undefined;
      this.interruptPending = false;
      if (this.disposed) return;
      this.write(this.stdoutStream.end() + this.stderrStream.end());
      this.stdoutStream = new OutputStream();
      this.stderrStream = new OutputStream();
      if (!this.atLineStart) this.write('\r\n');
      this.apply(this.editor.showPrompt());
      this.flushTypeahead();
    });
    this.running = done;
  }

  private flushTypeahead(): void {
    const keys = this.typeahead;
    this.typeahead = '';
    if (keys) this.apply(this.editor.feed(keys));
  }

  private foreground(job: ForegroundJob | undefined): void {
    if (this.disposed) return;
    if (job) {
      this.job = job;
      this.apply(this.editor.beginInput());
      if (this.interruptPending) {
        this.interruptPending = false;
        job.interrupt();
      }
      this.flushTypeahead();
    } else {
      this.job = undefined;
      this.editor.end();
    }
  }
}
