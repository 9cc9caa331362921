import { describe, expect, it } from 'vitest';
import { FakeScreen } from './fake-screen.ts';
import { LineEditor, type EditorAction, type LineEditorOptions } from './line-editor.ts';

const LEFT = '\x1b[D';
const RIGHT = '\x1b[C';
const UP = '\x1b[A';
const DOWN = '\x1b[B';
const HOME = '\x1b[H';
const END = '\x1b[F';
const DEL = '\x1b[3~';
const BS = '\x7f';
const CTRL = (c: string) => String.fromCharCode(c.toUpperCase().charCodeAt(0) - 64);

/** An editor drawing on a fake screen; `type` feeds keys and returns the actions. */
function setup(opts: LineEditorOptions = {}, cols = 40) {
  const screen = new FakeScreen(cols, 10);
  const ed = new LineEditor({ prompt: '$ ', cols, ...opts });
  screen.write(ed.showPrompt().output);
  const type = (data: string): EditorAction[] => {
    const r = ed.feed(data);
    screen.write(r.output);
    return r.actions;
  };
  const prompt = () => {
    const r = ed.showPrompt();
    screen.write(r.output);
    return r.actions;
  };
  const input = () => {
    const r = ed.beginInput();
    screen.write(r.output);
    return r.actions;
  };
  return { ed, screen, type, prompt, input };
}

describe('LineEditor, command mode', () => {
  it('shows the prompt and echoes what is typed', () => {
    const { ed, screen, type } = setup();
    expect(screen.cursorLine).toBe('$');
    expect(screen.cursor).toEqual({ x: 2, y: 0 });
    expect(type('ls /docs')).toEqual([]);
    expect(screen.cursorLine).toBe('$ ls /docs');
    expect(screen.cursor).toEqual({ x: 10, y: 0 });
    expect(ed.line).toBe('ls /docs');
  });

  it('colours in the prompt take no cells', () => {
    const { screen, type } = setup({ prompt: '\x1b[1;34mlshapes\x1b[0m $ ' });
    type('ps' + LEFT);
    expect(screen.cursorLine).toBe('lshapes $ ps');
    expect(screen.cursor).toEqual({ x: 11, y: 0 });
  });

  it('inserts in the middle of the line', () => {
    const { ed, screen, type } = setup();
    type('run helo');
    type(LEFT + 'l');
    expect(ed.line).toBe('run hello');
    expect(screen.cursorLine).toBe('$ run hello');
    expect(screen.cursor.x).toBe(2 + 8); // after the inserted l, before the o
    type(CTRL('a') + 'x');
    expect(screen.cursorLine).toBe('$ xrun hello');
    expect(screen.cursor.x).toBe(3);
  });

  it('Backspace and Delete remove around the cursor; Home/End and Ctrl-A/E move', () => {
    const { ed, screen, type } = setup();
    type('abcdef' + LEFT + LEFT + BS);
    expect(ed.line).toBe('abcef');
    expect(screen.cursor.x).toBe(2 + 3);
    type(DEL);
    expect(ed.line).toBe('abcf');
    expect(screen.cursorLine).toBe('$ abcf');
    type(HOME);
    expect(screen.cursor.x).toBe(2);
    type(BS); // nothing before the cursor
    expect(ed.line).toBe('abcf');
    type(END);
    expect(screen.cursor.x).toBe(6);
    type(DEL + RIGHT); // nothing after the cursor
    expect(ed.line).toBe('abcf');
    type(CTRL('a') + RIGHT + CTRL('e') + LEFT + 'X');
    expect(ed.line).toBe('abcXf');
  });

  it('Ctrl-U kills to the start, Ctrl-K to the end', () => {
    const { ed, screen, type } = setup();
    type('hello world' + LEFT.repeat(5) + CTRL('u'));
    expect(ed.line).toBe('world');
    expect(screen.cursorLine).toBe('$ world');
    expect(screen.cursor.x).toBe(2);
    type(RIGHT + RIGHT + CTRL('k'));
    expect(ed.line).toBe('wo');
    expect(screen.cursorLine).toBe('$ wo');
  });

  it('Ctrl-W and Alt-Backspace erase the word before the cursor', () => {
    const { ed, screen, type } = setup();
    type('run hello  world');
    type(CTRL('w'));
    expect(ed.line).toBe('run hello  ');
    expect(screen.cursorLine).toBe('$ run hello');
    type(CTRL('w'));
    expect(ed.line).toBe('run ');
    type('echo x' + LEFT + LEFT + '\x1b\x7f');
    expect(ed.line).toBe('run  x');
    expect(screen.cursor.x).toBe(2 + 4);
  });

  it('Ctrl-Left/Right move by words', () => {
    const { ed, type } = setup();
    type('one two three' + '\x1b[1;5D' + '\x1b[1;5D' + '_');
    expect(ed.line).toBe('one _two three');
    type('\x1b[1;5C' + '!');
    expect(ed.line).toBe('one _two! three');
  });

  it('Enter hands over the line, moves to a new line and keeps typeahead for later', () => {
    const { ed, screen, type, prompt } = setup();
    const actions = type('ps\rpeers');
    expect(actions).toEqual([{ type: 'line', line: 'ps' }]);
    expect(ed.mode).toBe('idle');
    expect(screen.lines[0]).toBe('$ ps');
    expect(screen.cursor).toEqual({ x: 0, y: 1 });
    expect(screen.lines[1]).toBe(''); // typeahead is not echoed yet
    expect(ed.pending).toBe('peers');
    // The next prompt replays it.
    expect(prompt()).toEqual([]);
    expect(screen.lines[1]).toBe('$ peers');
    expect(ed.line).toBe('peers');
  });

  it('Enter with the cursor mid-line hands over the whole line', () => {
    const { type } = setup();
    expect(type('kill 12' + HOME + '\r')).toEqual([{ type: 'line', line: 'kill 12' }]);
  });

  it('Up/Down walk the history and give back the line being typed', () => {
    const { ed, screen, type, prompt } = setup();
    for (const line of ['ps', 'peers', 'ls /docs']) {
      type(line + '\r');
      prompt();
    }
    type('draft');
    type(UP);
    expect(ed.line).toBe('ls /docs');
    expect(screen.cursorLine).toBe('$ ls /docs');
    type(UP + UP);
    expect(ed.line).toBe('ps');
    type(UP); // at the oldest: stays
    expect(ed.line).toBe('ps');
    expect(screen.cursorLine).toBe('$ ps');
    type(DOWN);
    expect(ed.line).toBe('peers');
    type(DOWN + DOWN);
    expect(ed.line).toBe('draft');
    expect(screen.cursorLine).toBe('$ draft');
    type(DOWN); // past the newest: stays
    expect(ed.line).toBe('draft');
    // Ctrl-P / Ctrl-N too.
    type(CTRL('p'));
    expect(ed.line).toBe('ls /docs');
    type(CTRL('n'));
    expect(ed.line).toBe('draft');
  });

  it('history is bounded, skips blanks and repeats', () => {
    const { ed, type, prompt } = setup({ historySize: 3 });
    for (const line of ['a', 'b', 'b', '   ', '', 'c', 'd']) {
      type(line + '\r');
      prompt();
    }
    expect(ed.history).toEqual(['b', 'c', 'd']);
    type(UP + UP + UP + UP);
    expect(ed.line).toBe('b');
  });

  it('Ctrl-C cancels the line and shows a fresh prompt', () => {
    const { ed, screen, type } = setup();
    type('run hello' + LEFT.repeat(3));
    expect(type(CTRL('c'))).toEqual([]);
    expect(ed.mode).toBe('command');
    expect(ed.line).toBe('');
    expect(screen.lines.slice(0, 2)).toEqual(['$ run hello^C', '$']);
    expect(screen.cursor).toEqual({ x: 2, y: 1 });
    expect(ed.history).toEqual([]);
  });

  it('Ctrl-D deletes under the cursor and is ignored on an empty line', () => {
    const { ed, type } = setup();
    expect(type(CTRL('d'))).toEqual([]);
    type('abc' + HOME + CTRL('d'));
    expect(ed.line).toBe('bc');
  });

  it('Ctrl-L clears the screen and redraws the line on top', () => {
    const { ed, screen, type } = setup();
    type('one\r');
    screen.write('some output\r\n');
    screen.write(ed.showPrompt().output);
    type('two' + LEFT + CTRL('l'));
    expect(screen.lines.slice(0, 2)).toEqual(['$ two', '']);
    expect(screen.cursor).toEqual({ x: 4, y: 0 });
    expect(ed.line).toBe('two');
  });

  it('ignores unknown control characters and escape sequences', () => {
    const { ed, screen, type } = setup();
    type('a\x1b[15~\x00\x1bxb\x1bOPc');
    expect(ed.line).toBe('abc');
    expect(screen.cursorLine).toBe('$ abc');
  });

  it('handles characters outside the BMP and wide characters', () => {
    const { ed, screen, type } = setup();
    type('😀x' + LEFT + LEFT + 'a');
    expect(ed.line).toBe('a😀x');
    expect(screen.cursor.x).toBe(3);
    type(END + BS + BS);
    expect(ed.line).toBe('a');
  });
});

describe('LineEditor, wrapping lines', () => {
  it('redraws a line longer than the terminal is wide, and edits across the wrap', () => {
    const { ed, screen, type } = setup({}, 10);
    type('abcdefghijklmnop'); // 2 + 16 = 18 cells: two rows
    expect(screen.lines.slice(0, 2)).toEqual(['$ abcdefgh', 'ijklmnop']);
    expect(screen.cursor).toEqual({ x: 8, y: 1 });
    type(HOME + 'X');
    expect(screen.lines.slice(0, 2)).toEqual(['$ Xabcdefg', 'hijklmnop']);
    expect(screen.cursor).toEqual({ x: 3, y: 0 });
    type(END + BS.repeat(10));
    expect(ed.line).toBe('Xabcdef');
    expect(screen.lines.slice(0, 2)).toEqual(['$ Xabcdef', '']);
    expect(screen.cursor).toEqual({ x: 9, y: 0 });
  });

  it('puts the cursor on the next row when the line fills the row exactly', () => {
    const { screen, type } = setup({}, 10);
    type('abcdefgh'); // exactly 10 cells
    expect(screen.lines.slice(0, 2)).toEqual(['$ abcdefgh', '']);
    expect(screen.cursor).toEqual({ x: 0, y: 1 });
    type('i');
    expect(screen.lines.slice(0, 2)).toEqual(['$ abcdefgh', 'i']);
    expect(screen.cursor).toEqual({ x: 1, y: 1 });
    type(BS + BS);
    expect(screen.lines.slice(0, 2)).toEqual(['$ abcdefg', '']);
    expect(screen.cursor).toEqual({ x: 9, y: 0 });
  });

  it('Enter after an exact fill starts the output right below, without a blank row', () => {
    const { screen, type } = setup({}, 10);
    type('abcdefgh\r');
    screen.write('out\r\n');
    expect(screen.lines.slice(0, 3)).toEqual(['$ abcdefgh', 'out', '']);
  });

  it('redraws for the new width when the terminal is resized', () => {
    const { ed, screen, type } = setup({}, 10);
    screen.write('\r\x1b[J'); // start again one row down, under a banner
    screen.write('banner\r\n');
    screen.write(ed.showPrompt().output);
    type('abcdefghijklmnopqrstu' + LEFT.repeat(3)); // 23 cells: three rows at 10
    expect(screen.lines.slice(0, 4)).toEqual(['banner', '$ abcdefgh', 'ijklmnopqr', 'stu']);
    screen.resize(16);
    screen.write(ed.setCols(16));
    expect(screen.lines.slice(0, 4)).toEqual(['banner', '$ abcdefghijklmn', 'opqrstu', '']);
    expect(screen.cursor).toEqual({ x: 4, y: 2 });
    screen.resize(8);
    screen.write(ed.setCols(8));
    expect(screen.lines.slice(0, 5)).toEqual(['banner', '$ abcdef', 'ghijklmn', 'opqrstu', '']);
    expect(screen.cursor).toEqual({ x: 4, y: 3 });
    type('X');
    expect(ed.line).toBe('abcdefghijklmnopqrXstu');
    expect(screen.lines.slice(0, 5)).toEqual(['banner', '$ abcdef', 'ghijklmn', 'opqrXstu', '']);
    expect(ed.setCols(8)).toBe(''); // same width: nothing to do
  });

  it('walks history between a long and a short line without leaving debris', () => {
    const { screen, type, prompt } = setup({}, 10);
    type('a very long command line\r');
    prompt();
    type('short\r');
    prompt();
    const top = screen.y;
    type(UP + UP);
    expect(screen.lines.slice(top, top + 3)).toEqual(['$ a very l', 'ong comman', 'd line']);
    type(DOWN);
    expect(screen.lines.slice(top, top + 3)).toEqual(['$ short', '', '']);
    expect(screen.cursor).toEqual({ x: 7, y: top });
  });
});

describe('LineEditor, Tab completion', () => {
  const words = ['help', 'hello', 'kill', 'ls'];
  const complete = (before: string) => (before.includes(' ') ? ['hello', 'helium', 'spin'] : words);

  it('completes a unique match and adds a space', () => {
    const { ed, screen, type } = setup({ complete });
    type('ki\t');
    expect(ed.line).toBe('kill ');
    expect(screen.cursorLine).toBe('$ kill');
    expect(screen.cursor.x).toBe(7);
    type('run sp\t');
    expect(ed.line).toBe('kill run spin ');
  });

  it('extends to the longest common prefix, then lists the candidates', () => {
    const { ed, screen, type } = setup({ complete });
    type('h\t');
    expect(ed.line).toBe('hel');
    type('\t');
    expect(ed.line).toBe('hel');
    expect(screen.lines.slice(0, 3)).toEqual(['$ hel', 'hello  help', '$ hel']);
    expect(screen.cursor).toEqual({ x: 5, y: 2 });
    type('p\r');
    expect(ed.history).toEqual(['help']);
  });

  it('completes in the middle of a line', () => {
    const { ed, type } = setup({ complete });
    type('run x' + LEFT + LEFT + ' sp\t');
    expect(ed.line).toBe('run spin x'); // a blank follows already: none added
    const b = setup({ complete });
    b.type('run x' + LEFT + 'sp\t');
    expect(b.ed.line).toBe('run spin x');
    expect(b.screen.cursor.x).toBe(2 + 9);
  });

  it('does nothing without candidates or a completer', () => {
    const a = setup({ complete });
    a.type('zz\t');
    expect(a.ed.line).toBe('zz');
    const b = setup();
    b.type('h\t');
    expect(b.ed.line).toBe('h');
  });
});

describe('LineEditor, input mode (a foreground process reads)', () => {
  it('echoes locally and sends whole lines', () => {
    const { ed, screen, type, input } = setup();
    type('run upper\r');
    expect(input()).toEqual([]);
    expect(ed.mode).toBe('input');
    expect(type('abc')).toEqual([]);
    expect(screen.cursorLine).toBe('abc');
    expect(type('\r')).toEqual([{ type: 'stdin', data: 'abc\n' }]);
    expect(screen.cursor).toEqual({ x: 0, y: 2 });
    expect(type('x\ry\r')).toEqual([
      { type: 'stdin', data: 'x\n' },
      { type: 'stdin', data: 'y\n' },
    ]);
  });

  it('erases with Backspace, Ctrl-W and Ctrl-U, and swallows cursor keys', () => {
    const { screen, type, input } = setup();
    type('\r');
    input();
    type('one two three');
    type(BS);
    expect(screen.cursorLine).toBe('one two thre');
    type(CTRL('w'));
    expect(screen.cursorLine).toBe('one two');
    type(LEFT + UP + HOME);
    expect(screen.cursorLine).toBe('one two');
    type(CTRL('u'));
    expect(screen.cursorLine).toBe('');
    expect(screen.cursor.x).toBe(0);
    expect(type('ok\r')).toEqual([{ type: 'stdin', data: 'ok\n' }]);
  });

  it('Ctrl-D sends the partial line, or EOF on an empty one', () => {
    const { type, input } = setup();
    type('\r');
    input();
    expect(type('abc' + CTRL('d'))).toEqual([{ type: 'stdin', data: 'abc' }]);
    expect(type(CTRL('d'))).toEqual([{ type: 'eof' }]);
  });

  it('Ctrl-C interrupts and drops the partial line', () => {
    const { screen, type, input } = setup();
    type('\r');
    input();
    expect(type('abc' + CTRL('c'))).toEqual([{ type: 'interrupt' }]);
    expect(screen.lines[1]).toBe('abc^C');
    expect(type('\r')).toEqual([{ type: 'stdin', data: '\n' }]);
  });

  it('typeahead typed before the process started stays for the shell', () => {
    const { ed, type, input, prompt } = setup();
    type('run echo 1\rrun echo 2\rpart');
    expect(input()).toEqual([]);
    expect(ed.pending).toBe('run echo 2\rpart');
    expect(type('typed\r')).toEqual([{ type: 'stdin', data: 'typed\n' }]);
    ed.end();
    expect(prompt()).toEqual([{ type: 'line', line: 'run echo 2' }]);
    expect(ed.pending).toBe('part');
  });

  it('a partial line left when the process ends goes back to the shell', () => {
    const { ed, screen, type, input, prompt } = setup();
    type('run x\r');
    input();
    type('ps');
    ed.end();
    expect(ed.mode).toBe('idle');
    screen.write('\r\n');
    prompt();
    expect(ed.line).toBe('ps');
    expect(screen.cursorLine).toBe('$ ps');
  });
});

describe('LineEditor, idle mode', () => {
  it('Ctrl-C while a command runs drops the typeahead and reports an interrupt', () => {
    const { ed, type } = setup();
    type('ls\r');
    expect(type('abc' + CTRL('c') + 'd')).toEqual([{ type: 'interrupt' }]);
    expect(ed.pending).toBe('d');
  });
});
