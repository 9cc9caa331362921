// The terminal's line discipline, as a pure state machine over the strings xterm.js delivers
// (printable text, control characters, CSI/SS3 key sequences). It answers each input with the
// bytes to write back (echo, ANSI cursor movement) and with actions for the session.
//
// Three modes:
// - command: a readline-like prompt with cursor editing, history and Tab completion;
// - input:   a foreground process owns the keyboard: a cooked tty (line-buffered, local echo,
//            Backspace/Ctrl-U/Ctrl-W erase, Enter sends the line, Ctrl-D sends EOF, Ctrl-C interrupts);
// - idle:    a command is running: keystrokes are kept as typeahead for the next prompt.
import { charWidth, visibleWidth } from './ansi.ts';

export type EditorAction =
  /** Command mode: the user pressed Enter on this line. The editor is idle until showPrompt(). */
  | { type: 'line'; line: string }
  /** Input mode: text for the foreground process's stdin (a line with its '\n', or what Ctrl-D flushed). */
  | { type: 'stdin'; data: string }
  /** Input mode: Ctrl-D on an empty line. */
  | { type: 'eof' }
  /** Ctrl-C in input or idle mode. (In command mode Ctrl-C just cancels the line.) */
  | { type: 'interrupt' };

export interface EditorResult {
  /** Bytes for the terminal, in order. */
  output: string;
  actions: EditorAction[];
}

export type EditorMode = 'idle' | 'command' | 'input';

export interface LineEditorOptions {
  /** May hold SGR colours. Default "$ ". */
  prompt?: string;
  /** Terminal width in cells. Default 80. */
  cols?: number;
  /** How many lines the history keeps. Default 500. */
  historySize?: number;
  /** Candidate words for the word before the cursor, given the line up to the cursor. */
  complete?: (before: string) => readonly string[];
}

type Key =
  | { name: 'char'; ch: string }
  | {
      name:
        | 'enter' | 'backspace' | 'delete' | 'left' | 'right' | 'up' | 'down' | 'home' | 'end'
        | 'wordLeft' | 'wordRight' | 'wordRubout' | 'killStart' | 'killEnd' | 'interrupt' | 'ctrlD'
        | 'clearScreen' | 'tab' | 'ignore';
    };

const CSI = '\x1b[';
const CLEAR_SCREEN = '\x1b[H\x1b[2J';

/** The key at s[i] and how many UTF-16 units it takes. */
function readKey(s: string, i: number): { key: Key; len: number } {
  const c = s[i]!;
  const k = (name: Exclude<Key['name'], 'char'>, len = 1) => ({ key: { name } as Key, len });
  if (c === '\x1b') {
    const n = s[i + 1];
    if (n === '[') {
      let j = i + 2;
      while (j < s.length && /[0-9;]/.test(s[j]!)) j++;
      if (j >= s.length) return k('ignore', s.length - i);
      const params = s.slice(i + 2, j);
      const len = j + 1 - i;
      const mod = params.split(';')[1];
      const word = mod === '5' || mod === '3';
      switch (s[j]) {
        case 'A': return k('up', len);
        case 'B': return k('down', len);
        case 'C': return k(word ? 'wordRight' : 'right', len);
        case 'D': return k(word ? 'wordLeft' : 'left', len);
        case 'H': return k('home', len);
        case 'F': return k('end', len);
        case '~': {
          const code = params.split(';')[0];
          if (code === '1' || code === '7') return k('home', len);
          if (code === '4' || code === '8') return k('end', len);
          if (code === '3') return k('delete', len);
          return k('ignore', len);
        }
        default: return k('ignore', len);
      }
    }
    if (n === 'O') {
      const f = s[i + 2];
      const map: Record<string, Exclude<Key['name'], 'char'>> = { A: 'up', B: 'down', C: 'right', D: 'left', H: 'home', F: 'end' };
      return k((f !== undefined && map[f]) || 'ignore', f === undefined ? 2 : 3);
    }
    if (n === '\x7f' || n === '\b') return k('wordRubout', 2);
    if (n === 'b') return k('wordLeft', 2);
    if (n === 'f') return k('wordRight', 2);
    return k('ignore', n === undefined ? 1 : 2);
  }
  switch (c) {
    case '\r': return k('enter', s[i + 1] === '\n' ? 2 : 1);
    case '\n': return k('enter');
    case '\x7f':
    case '\b': return k('backspace');
    case '\t': return k('tab');
    case '\x01': return k('home');
    case '\x02': return k('left');
    case '\x03': return k('interrupt');
    case '\x04': return k('ctrlD');
    case '\x05': return k('end');
    case '\x06': return k('right');
    case '\x0b': return k('killEnd');
    case '\x0c': return k('clearScreen');
    case '\x0e': return k('down');
    case '\x10': return k('up');
    case '\x15': return k('killStart');
    case '\x17': return k('wordRubout');
  }
  const cp = s.codePointAt(i)!;
  const len = cp > 0xffff ? 2 : 1;
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return k('ignore', len);
  return { key: { name: 'char', ch: String.fromCodePoint(cp) }, len };
}

const isSpace = (ch: string | undefined) => ch === ' ' || ch === '\t';
const widthOf = (chars: readonly string[]) => chars.reduce((w, ch) => w + charWidth(ch.codePointAt(0)!), 0);

function commonPrefix(words: readonly string[]): string {
  let p = words[0] ?? '';
  for (const w of words) while (!w.startsWith(p)) p = p.slice(0, -1);
  return p;
}

export class LineEditor {
  private _mode: EditorMode = 'idle';
  private readonly promptText: string;
  private readonly promptWidth: number;
  private _cols: number;
  private readonly historySize: number;
  private readonly completer: ((before: string) => readonly string[]) | undefined;

  /** The line being edited, one code point per element. */
  private buf: string[] = [];
  private cur = 0;
  private readonly hist: string[] = [];
  private histIndex = 0;
  private draft: string[] = [];
  /** Typeahead kept while idle. */
  private queue = '';
  /** Command mode: where the cursor is on screen, in cells from the prompt's first cell. */
  private shown = 0;
  private dirty = false;

  private out = '';
  private actions: EditorAction[] = [];

  constructor(opts: LineEditorOptions = {}) {
    this.promptText = opts.prompt ?? '$ ';
    this.promptWidth = visibleWidth(this.promptText);
    this._cols = Math.max(1, Math.floor(opts.cols ?? 80));
    this.historySize = Math.max(0, opts.historySize ?? 500);
    this.completer = opts.complete;
  }

  get mode(): EditorMode {
    return this._mode;
  }
  get cols(): number {
    return this._cols;
  }
  /** The line being edited. */
  get line(): string {
    return this.buf.join('');
  }
  /** The cursor, in code points from the start of the line. */
  get cursor(): number {
    return this.cur;
  }
  /** Oldest first. */
  get history(): readonly string[] {
    return this.hist;
  }
  /** Typeahead waiting for the next mode. */
  get pending(): string {
    return this.queue;
  }

  /** The terminal changed width. xterm.js does not reflow the line holding the cursor (its
   *  reflowCursorLine option is off: "shells handle this themselves"), so at the prompt the rows
   *  are still laid out for the old width: go back to the prompt's first cell by the old width,
   *  clear, and draw again for the new one. Returns what to write. */
  setCols(cols: number): string {
    const old = this._cols;
    this._cols = Math.max(1, Math.floor(cols));
    if (this._mode !== 'command' || this._cols === old) return '';
    const up = Math.floor(this.shown / old);
    let s = up > 0 ? `${CSI}${up}A` : '';
    s += `\r${CSI}J`;
    this.shown = 0;
    this.dirty = false;
    return s + this.render();
  }

  /** Shows a fresh prompt (the cursor must be at the start of a line) and replays typeahead. */
  showPrompt(): EditorResult {
    this.begin();
    this._mode = 'command';
    this.buf = [];
    this.cur = 0;
    this.histIndex = this.hist.length;
    this.draft = [];
    this.shown = 0;
    this.dirty = true;
    return this.replay();
  }

  /** A foreground process takes the keyboard: cooked input from here on. Typeahead typed before
   *  it started stays for the shell (a pasted list of commands runs one after another); the
   *  process gets what is typed from now on. */
  beginInput(): EditorResult {
    this.begin();
    this._mode = 'input';
    this.buf = [];
    this.cur = 0;
    return this.finish();
  }

  /** The foreground process is gone (or a command runs): keep keystrokes as typeahead. A partly
   *  typed input line goes back to the typeahead, as a tty hands unread input to the shell. */
  end(): void {
    if (this._mode === 'input' && this.buf.length > 0) this.queue = this.buf.join('') + this.queue;
    this._mode = 'idle';
    this.buf = [];
    this.cur = 0;
  }

  /** Command mode: what erases the prompt and the line being edited, leaving the cursor at the
   *  start of the prompt's first row, so that output of a background process can go there.
   *  redraw() puts them back below it. '' in other modes. */
  hide(): string {
    if (this._mode !== 'command') return '';
    const up = Math.floor(this.shown / this._cols);
    this.shown = 0;
    this.dirty = true;
    return (up > 0 ? `${CSI}${up}A` : '') + `\r${CSI}J`;
  }

  /** Command mode: the prompt and the line, drawn again from the cursor's row (after hide()). */
  redraw(): string {
    if (this._mode !== 'command') return '';
    this.dirty = false;
    return this.render();
  }

  /** Input from the terminal (xterm's onData). */
  feed(data: string): EditorResult {
    this.begin();
    this.consume(data);
    return this.finish();
  }

  // ---- internals ----

  private begin(): void {
    this.out = '';
    this.actions = [];
  }

  private finish(): EditorResult {
    this.flush();
    const r = { output: this.out, actions: this.actions };
    this.out = '';
    this.actions = [];
    return r;
  }

  private replay(): EditorResult {
    const q = this.queue;
    this.queue = '';
    this.consume(q);
    return this.finish();
  }

  private consume(data: string): void {
    let i = 0;
    while (i < data.length) {
      if (this._mode === 'idle') {
        const c = data[i]!;
        if (c === '\x03') {
          this.queue = '';
          this.actions.push({ type: 'interrupt' });
        } else {
          this.queue += c;
        }
        i++;
        continue;
      }
      const { key, len } = readKey(data, i);
      i += len;
      if (this._mode === 'command') this.commandKey(key);
      else this.inputKey(key);
    }
  }

  private write(s: string): void {
    this.flush();
    this.out += s;
  }

  private flush(): void {
    if (!this.dirty || this._mode !== 'command') return;
    this.dirty = false;
    this.out += this.render();
  }

  /** Redraws prompt and line from the prompt's first cell and puts the cursor where it belongs. */
  private render(): string {
    const cols = this._cols;
    const end = this.promptWidth + widthOf(this.buf);
    const target = this.promptWidth + widthOf(this.buf.slice(0, this.cur));
    let s = '';
    const up = Math.floor(this.shown / cols);
    if (up > 0) s += `${CSI}${up}A`;
    s += `\r${CSI}J` + this.promptText + this.buf.join('');
    // A line that ends exactly at the right margin leaves the cursor pending a wrap. Wrap with a
    // blank (the new row stays part of the line, so resizing keeps it with the prompt) and return.
    if (this.exactFill()) s += ' \r';
    const back = Math.floor(end / cols) - Math.floor(target / cols);
    if (back > 0) s += `${CSI}${back}A`;
    s += '\r';
    if (target % cols > 0) s += `${CSI}${target % cols}C`;
    this.shown = target;
    return s;
  }

  /** The prompt and line end exactly at the right margin. */
  private exactFill(): boolean {
    const end = this.promptWidth + widthOf(this.buf);
    return end > 0 && end % this._cols === 0;
  }

  /** Puts the cursor after the line and starts a fresh row below it. */
  private leaveLine(mark = ''): void {
    this.cur = this.buf.length;
    this.dirty = true;
    // Past an exact fill the cursor already starts a row (holding the blank): clear it and its wrap.
    this.write(this.exactFill() && mark === '' ? `\r${CSI}K` : `${mark}\r\n`);
  }

  private edit(f: () => void): void {
    f();
    this.dirty = true;
  }

  private commandKey(key: Key): void {
    const b = this.buf;
    switch (key.name) {
      case 'char':
        return this.edit(() => b.splice(this.cur++, 0, key.ch));
      case 'backspace':
        if (this.cur > 0) this.edit(() => b.splice(--this.cur, 1));
        return;
      case 'delete':
        if (this.cur < b.length) this.edit(() => b.splice(this.cur, 1));
        return;
      case 'ctrlD':
        if (this.cur < b.length) this.edit(() => b.splice(this.cur, 1));
        return;
      case 'left':
        if (this.cur > 0) this.edit(() => this.cur--);
        return;
      case 'right':
        if (this.cur < b.length) this.edit(() => this.cur++);
        return;
      case 'home':
        return this.edit(() => (this.cur = 0));
      case 'end':
        return this.edit(() => (this.cur = b.length));
      case 'wordLeft':
        return this.edit(() => (this.cur = this.wordStart()));
      case 'wordRight':
        return this.edit(() => {
          let j = this.cur;
          while (j < b.length && isSpace(b[j])) j++;
          while (j < b.length && !isSpace(b[j])) j++;
          this.cur = j;
        });
      case 'wordRubout':
        return this.edit(() => {
          const j = this.wordStart();
          b.splice(j, this.cur - j);
          this.cur = j;
        });
      case 'killStart':
        return this.edit(() => {
          b.splice(0, this.cur);
          this.cur = 0;
        });
      case 'killEnd':
        return this.edit(() => b.splice(this.cur));
      case 'up':
        if (this.histIndex > 0) {
          if (this.histIndex === this.hist.length) this.draft = [...b];
          this.histIndex--;
          this.setLine(Array.from(this.hist[this.histIndex]!));
        }
        return;
      case 'down':
        if (this.histIndex < this.hist.length) {
          this.histIndex++;
          this.setLine(this.histIndex === this.hist.length ? this.draft : Array.from(this.hist[this.histIndex]!));
        }
        return;
      case 'clearScreen':
        this.write(CLEAR_SCREEN);
        this.shown = 0;
        this.dirty = true;
        return;
      case 'interrupt':
        this.leaveLine('^C');
        this.buf = [];
        this.cur = 0;
        this.histIndex = this.hist.length;
        this.shown = 0;
        this.dirty = true;
        return;
      case 'enter': {
        this.leaveLine();
        const line = b.join('');
        this.remember(line);
        this.buf = [];
        this.cur = 0;
        this._mode = 'idle';
        this.actions.push({ type: 'line', line });
        return;
      }
      case 'tab':
        return this.completeWord();
      case 'ignore':
        return;
    }
  }

  private inputKey(key: Key): void {
    const b = this.buf;
    const erase = (chars: readonly string[]) => {
      const w = widthOf(chars);
      if (w > 0) this.write('\b'.repeat(w) + ' '.repeat(w) + '\b'.repeat(w));
    };
    switch (key.name) {
      case 'char':
        b.push(key.ch);
        this.write(key.ch);
        return;
      case 'tab':
        b.push('\t');
        this.write('\t');
        return;
      case 'enter':
        this.write('\r\n');
        this.actions.push({ type: 'stdin', data: b.join('') + '\n' });
        this.buf = [];
        return;
      case 'backspace':
        if (b.length > 0) erase(b.splice(-1));
        return;
      case 'killStart':
        erase(b.splice(0));
        return;
      case 'wordRubout': {
        let j = b.length;
        while (j > 0 && isSpace(b[j - 1])) j--;
        while (j > 0 && !isSpace(b[j - 1])) j--;
        erase(b.splice(j));
        return;
      }
      case 'ctrlD':
        if (b.length > 0) {
          this.actions.push({ type: 'stdin', data: b.join('') });
          this.buf = [];
        } else {
          this.actions.push({ type: 'eof' });
        }
        return;
      case 'interrupt':
        this.write('^C\r\n');
        this.buf = [];
        this.actions.push({ type: 'interrupt' });
        return;
      case 'clearScreen':
        this.write(CLEAR_SCREEN + b.join(''));
        return;
      default:
        // No cursor movement or history in a cooked tty; swallow the keys rather than echo escapes.
        return;
    }
  }

  private wordStart(): number {
    let j = this.cur;
    while (j > 0 && isSpace(this.buf[j - 1])) j--;
    while (j > 0 && !isSpace(this.buf[j - 1])) j--;
    return j;
  }

  private setLine(chars: string[]): void {
    this.buf = [...chars];
    this.cur = this.buf.length;
    this.dirty = true;
  }

  private remember(line: string): void {
    if (this.historySize === 0 || line.trim() === '' || this.hist.at(-1) === line) return;
    this.hist.push(line);
    while (this.hist.length > this.historySize) this.hist.shift();
  }

  private completeWord(): void {
    if (!this.completer) return;
    const before = this.buf.slice(0, this.cur).join('');
    const cut = Math.max(before.lastIndexOf(' '), before.lastIndexOf('\t'));
    const word = before.slice(cut + 1);
    const candidates = [...new Set(this.completer(before))].filter((c) => c.startsWith(word)).sort();
    if (candidates.length === 0) return;
    const insert = (text: string) =>
      this.edit(() => {
        const chars = Array.from(text);
        this.buf.splice(this.cur, 0, ...chars);
        this.cur += chars.length;
      });
    if (candidates.length === 1) {
      const rest = candidates[0]!.slice(word.length);
      insert(isSpace(this.buf[this.cur]) ? rest : rest + ' ');
      return;
    }
    const prefix = commonPrefix(candidates);
    if (prefix.length > word.length) {
      insert(prefix.slice(word.length));
      return;
    }
    // Nothing more to add: list the candidates under the line, then draw the line again.
    const at = this.cur;
    this.leaveLine();
    this.write(this.layout(candidates));
    this.cur = at;
    this.shown = 0;
    this.dirty = true;
  }

  /** Words in as many columns as fit, filled down then across; each row ends in "\r\n". */
  private layout(words: readonly string[]): string {
    const width = Math.max(...words.map((w) => visibleWidth(w))) + 2;
    const perRow = Math.max(1, Math.floor(this._cols / width));
    const rows = Math.ceil(words.length / perRow);
    let s = '';
    for (let r = 0; r < rows; r++) {
      let line = '';
      for (let c = 0; c < perRow; c++) {
        const w = words[c * rows + r];
        if (w !== undefined) line += w + ' '.repeat(width - visibleWidth(w));
      }
      s += line.trimEnd() + '\r\n';
    }
    return s;
  }
}
