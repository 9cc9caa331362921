// `checkpoint`: the process image as for a freeze, but the process goes on where it is; the image
// thaws elsewhere and continues from the checkpoint (output offsets included). Real programs
// (cat) on two in-process executors; a speculating process is checkpointed once its speculation
// settled (quiesce.test.ts).
import { beforeAll, describe, expect, it } from 'vitest';
import { buildPrograms, program } from '../wasi/test-programs.ts';
import { decodeImage } from './image.ts';
import { InProcessExecution } from './in-process.ts';
import type { FromExecutor, Pid, ProcessSpec } from './protocol.ts';
import { PEER, sha256hex } from './test-scheduler.ts';

beforeAll(() => buildPrograms(), 600_000);

const A = 0;
const B = 1;
const enc = new TextEncoder();
const dec = new TextDecoder();

class Two {
  readonly driver = new InProcessExecution(2, { maxMemoryBytes: 16 << 20 });
  readonly log: { from: number; msg: FromExecutor }[] = [];
  constructor() {
    this.driver.attach((from, msg) => this.log.push({ from, msg }));
  }
  spec(pid: Pid): ProcessSpec {
    const module = program('cat');
    return { pid, peer: PEER, name: 'cat', hash: sha256hex(module), module, args: ['cat'], env: {}, hasParent: false, interactiveStdin: true };
  }
  outs(pid: Pid, from: number): { text: string; at: number }[] {
    return this.log.flatMap((m) => (m.from === from && m.msg.t === 'out' && m.msg.pid === pid ? [{ text: dec.decode(m.msg.data), at: m.msg.at }] : []));
  }
  async until<T>(f: () => T | undefined): Promise<T> {
    for (let i = 0; i < 1000; i++) {
      const v = f();
      if (v !== undefined) return v;
      await new Promise((r) => setTimeout(r, 2));
    }
    throw new Error('timed out');
  }
  answer<T extends 'checkpointed' | 'checkpoint.failed'>(pid: Pid, t: T): Promise<Extract<FromExecutor, { t: T }>> {
    return this.until(() => this.log.map((m) => m.msg).find((m): m is Extract<FromExecutor, { t: T }> => m.t === t && m.pid === pid));
  }
}

describe('checkpoint', () => {
  it('the process goes on here; the image thaws elsewhere and goes on from the checkpoint, output offsets continuing', async () => {
    const c = new Two();
    const pid = 'cccccc.1';
    c.driver.post(A, { t: 'start', spec: c.spec(pid) });
    c.driver.post(A, { t: 'stdin', pid, data: enc.encode('one\n') });
    await c.until(() => (c.outs(pid, A).length ? true : undefined));
    c.driver.post(A, { t: 'checkpoint', pid });
    const { image } = await c.answer(pid, 'checkpointed');
    expect(decodeImage(image).outAt).toBe(4);
    // still running here
    c.driver.post(A, { t: 'stdin', pid, data: enc.encode('two\n') });
    await c.until(() => (c.outs(pid, A).length === 2 ? true : undefined));
    expect(c.outs(pid, A)).toEqual([
      { text: 'one\n', at: 0 },
      { text: 'two\n', at: 4 },
    ]);
    // and the checkpoint continues from "one" elsewhere
    c.driver.post(B, { t: 'thaw', spec: c.spec(pid), image });
    c.driver.post(B, { t: 'stdin', pid, data: enc.encode('three\n') });
    c.driver.post(B, { t: 'stdin.end', pid });
    c.driver.post(A, { t: 'stdin.end', pid });
    const exits = await c.until(() => {
      const e = c.log.filter((m) => m.msg.t === 'exit');
      return e.length === 2 ? e : undefined;
    });
    expect(exits.map((e) => (e.msg as { code: number }).code)).toEqual([0, 0]);
    expect(c.outs(pid, B)).toEqual([{ text: 'three\n', at: 4 }]);
  }, 30_000);

  it('refused for an unknown pid', async () => {
    const c = new Two();
    c.driver.post(A, { t: 'checkpoint', pid: 'cccccc.9' });
    expect((await c.answer('cccccc.9', 'checkpoint.failed')).reason).toBe('no such process here');
  });

  it('waits while the process depends on a speculation: checkpointed once it committed', async () => {
    const c = new Two();
    const pid = 'cccccc.2';
    const module = program('journal');
    c.driver.post(A, {
      t: 'start',
      spec: { pid, peer: PEER, name: 'journal', hash: sha256hex(module), module, args: ['journal', '--replica', '2'], env: {}, hasParent: false, interactiveStdin: false },
    });
    await c.until(() => c.log.find((m) => m.msg.t === 'state'));
    c.driver.post(A, { t: 'deliver', pid, port: 'rec', from: 'dddddd.1', token: 0, data: new Uint8Array(10), seq: 1, deps: ['dddddd.1~1'] });
    await c.until(() => (c.driver.executors[A]!.speculation(pid)!.rollbacks === 0 && c.driver.executors[A]!.twinBytes > 0 ? true : undefined));
    c.driver.post(A, { t: 'checkpoint', pid });
    c.driver.post(A, { t: 'spec.resolved', id: 'dddddd.1~1', ok: true });
    await c.answer(pid, 'checkpointed');
    expect(c.log.some((m) => m.msg.t === 'checkpoint.failed')).toBe(false);
    expect(c.driver.executors[A]!.twinBytes).toBe(0);
    c.driver.post(A, { t: 'kill', pid, reason: 'done' });
  }, 30_000);
});
