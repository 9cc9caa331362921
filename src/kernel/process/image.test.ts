// Process images: the wire format (round trip; truncated, corrupt, other-version and malformed
// input refused with an ImageError) and /tmp as data (tree, hard links, symlinks, times, open
// but unlinked files, fd remapping).
import { Packr } from 'msgpackr';
import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { MemFs } from '../wasi/memfs.ts';
import type { WasiSnapshot } from '../wasi/preview1.ts';
import type { ThreadSnapshot } from '../wasm/snapshot.ts';
import {
  IMAGE_FORMAT_VERSION,
  ImageError,
  captureTmp,
  decodeImage,
  encodeImage,
  openTmpNodes,
  rebuildTmp,
  remapTmpFds,
  type ProcessImage,
} from './image.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
const HASH = 'ab'.repeat(32);

function thread(fds: WasiSnapshot['fds'] = []): ThreadSnapshot {
  return {
    moduleHash: HASH,
    abi: 1,
    status: 'yielded',
    entries: ['_start'],
    entryIndex: 0,
    memory: { pages: 1, runs: [{ offset: 4096, bytes: new Uint8Array([1, 2, 3]) }] },
    globals: { __stack_pointer: 65536, big: 1n << 60n },
    asyncify: new Uint8Array([9, 9]),
    hostState: { wasi_snapshot_preview1: { version: 1, args: ['p'], env: [], fds } satisfies WasiSnapshot },
    pending: null,
    fuelUsed: 12,
  };
}

function tmpFixture(): { fs: MemFs; open: number[] } {
  const fs = new MemFs();
  const d = fs.mkdir(fs.root, 'd') as number;
  const sub = fs.mkdir(d, 'sub') as number;
  const f = fs.createFile(sub, 'f') as number;
  fs.write(f, 0, enc.encode('deep file'));
  fs.link(f, fs.root, 'hard');
  fs.symlink(fs.root, 'ln', 'd/sub/f');
  fs.setTimes(f, 5n, 7n);
  const gone = fs.createFile(fs.root, 'gone') as number;
  fs.write(gone, 0, enc.encode('unlinked but open'));
  fs.retain(gone);
  fs.unlink(fs.root, 'gone');
  return { fs, open: [f, gone] };
}

function image(extra: Partial<ProcessImage> = {}): ProcessImage {
  const { fs, open } = tmpFixture();
  return {
    pid: 'abcdef.1',
    moduleHash: HASH,
    thread: thread(),
    tmp: captureTmp(fs, open),
    stdin: { data: enc.encode('unread'), ended: true },
    unacked: 4096,
    cpuMs: 12.5,
    outAt: 77,
    specNext: 3,
    ...extra,
  };
}

function read(fs: MemFs, path: string): string {
  let node = fs.root;
  for (const c of path.split('/')) node = fs.lookup(node, c).node;
  return dec.decode(fs.read(node, 0, 1 << 20));
}

describe('process image encoding', () => {
  it('round-trips every part', () => {
    const img = image();
    const back = decodeImage(encodeImage(img));
    expect(back).toEqual(img);
    expect(back.thread.globals.big).toBe(1n << 60n);
  });

  it('refuses truncated, corrupt, other-version, foreign and malformed input with an ImageError', () => {
    const bytes = encodeImage(image());
    const refused = (b: unknown): string => {
      try {
        decodeImage(b as Uint8Array);
      } catch (e) {
        expect(e).toBeInstanceOf(ImageError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refused(bytes.slice(0, 10))).toMatch(/truncated/);
    expect(refused(bytes.slice(0, bytes.length - 1))).toMatch(/checksum/);
    const flipped = bytes.slice();
    flipped[60]! ^= 1;
    expect(refused(flipped)).toMatch(/checksum/);
    const v2 = bytes.slice();
    new DataView(v2.buffer).setUint32(8, IMAGE_FORMAT_VERSION + 1, true);
    expect(refused(v2)).toMatch(/version 2/);
    const snap = bytes.slice();
    snap.set(enc.encode('LSHSNAP\0'), 0);
    expect(refused(snap)).toMatch(/bad magic/);
    expect(refused('text')).toMatch(/must be bytes/);

    // well-formed envelopes around bad payloads
    const packr = new Packr({ structuredClone: true, useBigIntExtension: true, moreTypes: true });
    const wrap = (payload: unknown, raw = false): Uint8Array => {
      const p = raw ? (payload as Uint8Array) : packr.pack(payload);
      const out = new Uint8Array(44 + p.length);
      out.set(bytes.subarray(0, 12));
      out.set(sha256(p), 12);
      out.set(p, 44);
      return out;
    };
    expect(refused(wrap(new Uint8Array([0xdb, 0xff, 0xff, 0xff, 0xff, 0x41]), true))).toMatch(/cannot be decoded/);
    expect(refused(wrap([1, 2, 3]))).toMatch(/malformed process image: image is not an object/);
    const good = packr.unpack(bytes.subarray(44)) as Record<string, unknown>;
    expect(refused(wrap({ ...good, pid: 7 }))).toMatch(/malformed process image: pid/);
    expect(refused(wrap({ ...good, thread: new Uint8Array(3) }))).toMatch(/its thread malformed snapshot/);
    expect(refused(wrap({ ...good, moduleHash: 'cd'.repeat(32) }))).toMatch(/another module/);
    expect(refused(wrap({ ...good, unacked: -1 }))).toMatch(/unacked/);
    expect(refused(wrap({ ...good, stdin: { data: 'x', ended: false } }))).toMatch(/stdin/);
    expect(refused(wrap({ ...good, tmp: { root: 1, nodes: [{ id: 2, kind: 'fifo' }], entries: [] } }))).toMatch(/tmp node 0/);
  });
});

describe('/tmp in an image', () => {
  it('rebuilds directories, files, hard links, symlinks and times; open-but-unlinked files only for their fds', () => {
    const { fs, open } = tmpFixture();
    const img = decodeImage(encodeImage(image({ tmp: captureTmp(fs, open) }))).tmp!;
    const r = rebuildTmp(img);
    expect(read(r.fs, 'd/sub/f')).toBe('deep file');
    const f = r.fs.lookup(r.fs.lookup(r.fs.lookup(r.fs.root, 'd').node, 'sub').node, 'f').node;
    expect(r.fs.lookup(r.fs.root, 'hard').node).toBe(f); // one inode, two names
    expect(r.fs.stat(f)).toMatchObject({ nlink: 2, atim: 5n, mtim: 7n });
    expect(r.fs.readlink(r.fs.lookup(r.fs.root, 'ln').node)).toBe('d/sub/f');
    expect(r.nodeMap.get(open[0]!)).toBe(f);

    // the unlinked file exists for its fd, then is unlinked again once the fd holds it
    const gone = r.nodeMap.get(open[1]!)!;
    r.fs.retain(gone);
    r.dropOrphans();
    expect(r.fs.readdir(r.fs.root, 0n).map((e) => e.name).sort()).toEqual(['.', '..', 'd', 'hard', 'ln']);
    expect(dec.decode(r.fs.read(gone, 0, 100))).toBe('unlinked but open');
    r.fs.release(gone);
    expect(() => r.fs.stat(gone)).toThrow();
  });

  it('remaps the /tmp fds of the WASI fd table to the rebuilt nodes, and only those', () => {
    const { fs, open } = tmpFixture();
    const t = thread([
      { fd: 3, kind: 'dir', filetype: 3, rightsBase: 0, rightsInheriting: 0, flags: 0, offset: 0, mount: '/', node: 1, path: '/', type: 'directory', preopen: '/' },
      { fd: 4, kind: 'file', filetype: 4, rightsBase: 0, rightsInheriting: 0, flags: 0, offset: 3, mount: '/tmp', node: open[0]!, path: '/tmp/d/sub/f', type: 'file' },
      { fd: 5, kind: 'file', filetype: 4, rightsBase: 0, rightsInheriting: 0, flags: 0, offset: 0, mount: '/cluster', node: open[0]!, path: '/cluster/x', type: 'file' },
    ]);
    expect(openTmpNodes(t)).toEqual([open[0]]);
    const r = rebuildTmp(captureTmp(fs, openTmpNodes(t)));
    const fds = (remapTmpFds(t, r.nodeMap).hostState.wasi_snapshot_preview1 as WasiSnapshot).fds;
    expect(fds.map((f) => f.node)).toEqual([1, r.nodeMap.get(open[0]!), open[0]]);
    expect(fds[1]!.offset).toBe(3);
    expect(() => remapTmpFds(t, new Map())).toThrow(ImageError);
  });
});
