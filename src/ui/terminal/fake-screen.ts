// A minimal VT100 screen for tests: enough of xterm.js's behaviour (pending wrap, CR, LF, BS,
// CUU/CUD/CUF/CUB, ED, EL, CUP home, SGR ignored) to check what the line editor draws.
export class FakeScreen {
  /** Rows scrolled off the top, oldest first. */
  readonly scrollback: string[] = [];
  private grid: string[][];
  /** Column; x === cols means "pending wrap", as in xterm.js. */
  x = 0;
  y = 0;

  constructor(readonly cols = 80, readonly rows = 24) {
    this.grid = Array.from({ length: rows }, () => this.blank());
  }

  private blank(): string[] {
    return Array.from({ length: this.cols }, () => ' ');
  }

  private lineFeed(): void {
    if (this.y === this.rows - 1) {
      this.scrollback.push(this.grid.shift()!.join('').trimEnd());
      this.grid.push(this.blank());
    } else this.y++;
  }

  private restrict(): void {
    if (this.x >= this.cols) this.x = this.cols - 1;
  }

  write(data: string): this {
    let i = 0;
    while (i < data.length) {
      const c = data[i]!;
      if (c === '\x1b') {
        if (data[i + 1] !== '[') throw new Error(`FakeScreen: unsupported escape at ${JSON.stringify(data.slice(i, i + 6))}`);
        let j = i + 2;
        while (j < data.length && /[0-9;?]/.test(data[j]!)) j++;
        const params = data.slice(i + 2, j);
        const final = data[j];
        const n = Math.max(1, Number(params.split(';')[0]) || 1);
        switch (final) {
          case 'A': this.restrict(); this.y = Math.max(0, this.y - n); break;
          case 'B': this.restrict(); this.y = Math.min(this.rows - 1, this.y + n); break;
          case 'C': this.restrict(); this.x = Math.min(this.cols - 1, this.x + n); break;
          case 'D': this.restrict(); this.x = Math.max(0, this.x - n); break;
          case 'H': this.x = 0; this.y = 0; break;
          case 'J': {
            const mode = params === '' ? 0 : Number(params);
            if (mode === 0) {
              this.restrict();
              for (let x = this.x; x < this.cols; x++) this.grid[this.y]![x] = ' ';
              for (let y = this.y + 1; y < this.rows; y++) this.grid[y] = this.blank();
            } else if (mode === 2) {
              this.grid = Array.from({ length: this.rows }, () => this.blank());
            } else if (mode === 3) {
              this.scrollback.length = 0;
            }
            break;
          }
          case 'K': this.restrict(); for (let x = this.x; x < this.cols; x++) this.grid[this.y]![x] = ' '; break;
          case 'm': break;
          default: throw new Error(`FakeScreen: unsupported CSI ${JSON.stringify(params + (final ?? ''))}`);
        }
        i = j + 1;
        continue;
      }
      if (c === '\r') this.x = 0;
      else if (c === '\n') this.lineFeed();
      else if (c === '\b') {
        this.restrict();
        if (this.x > 0) this.x--;
      } else if (c === '\t') {
        this.restrict();
        this.x = Math.min(this.cols - 1, (Math.floor(this.x / 8) + 1) * 8);
      } else if (c === '\x07') {
        // bell
      } else {
        const cp = data.codePointAt(i)!;
        const ch = String.fromCodePoint(cp);
        if (this.x >= this.cols) {
          this.x = 0;
          this.lineFeed();
        }
        this.grid[this.y]![this.x] = ch;
        this.x++;
        i += ch.length;
        continue;
      }
      i++;
    }
    return this;
  }

  /** A width change as xterm.js makes it for the line holding the cursor (reflowCursorLine off):
   *  rows are cut or padded, not reflowed; the cursor keeps its row. */
  resize(cols: number): void {
    (this as { cols: number }).cols = cols;
    this.grid = this.grid.map((r) => (r.length >= cols ? r.slice(0, cols) : [...r, ...Array.from({ length: cols - r.length }, () => ' ')]));
    if (this.x > cols) this.x = cols;
  }

  /** Visible rows, right-trimmed. */
  get lines(): string[] {
    return this.grid.map((r) => r.join('').trimEnd());
  }

  /** Scrollback and visible rows, trailing blank rows dropped. */
  get text(): string {
    const all = [...this.scrollback, ...this.lines];
    while (all.length > 0 && all.at(-1) === '') all.pop();
    return all.join('\n');
  }

  /** The row the cursor is on. */
  get cursorLine(): string {
    return this.lines[this.y] ?? '';
  }

  /** The cursor as (column, row), with a pending wrap shown at the last column. */
  get cursor(): { x: number; y: number } {
    return { x: Math.min(this.x, this.cols - 1), y: this.y };
  }
}
