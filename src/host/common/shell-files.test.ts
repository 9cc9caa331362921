import { describe, expect, it } from 'vitest';
import { SAMPLE_FILES } from '../../kernel/process/sample-files.ts';
import { ShellFiles } from './shell-files.ts';

const dec = new TextDecoder();

describe('ShellFiles', () => {
  const files = new ShellFiles();

  it('lists the sample files: directories and files with their sizes, by name', async () => {
    const root = await files.ls('/');
    expect(root).toEqual([
      { name: 'README.txt', kind: 'file', size: new TextEncoder().encode(SAMPLE_FILES['README.txt'] as string).length },
      { name: 'texts', kind: 'dir' },
      { name: 'tmp', kind: 'dir' },
    ]);
    expect((await files.ls('/texts/')).map((e) => e.name)).toEqual(['numbers.txt', 'ozymandias.txt']);
    expect(await files.ls('/tmp')).toEqual([]);
    expect(await files.ls('/texts/../texts/numbers.txt')).toEqual([{ name: 'numbers.txt', kind: 'file', size: 292 }]);
  });

  it('reads a file', async () => {
    expect(dec.decode(await files.cat('/texts/ozymandias.txt'))).toMatch(/^I met a traveller from an antique land,\n/);
    expect(dec.decode(await files.cat('texts/numbers.txt')).split('\n')[99]).toBe('100');
  });

  it('says what is wrong', async () => {
    await expect(files.cat('/x')).rejects.toThrow('no such file: /x');
    await expect(files.cat('/README.txt/x')).rejects.toThrow('no such file: /README.txt/x');
    await expect(files.ls('/nope')).rejects.toThrow('no such file: /nope');
    await expect(files.cat('/texts')).rejects.toThrow('/texts: is a directory');
  });
});
