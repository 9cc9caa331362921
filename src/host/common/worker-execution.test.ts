import { describe, expect, it } from 'vitest';
import type { FromExecutor, ToExecutor } from '../../kernel/process/protocol.ts';
import { WorkerExecution, type ExecWorker } from './worker-execution.ts';

/** Fake workers that record what they are sent and can be made to die. */
function fakes() {
  const made: { posted: ToExecutor[]; die: (reason: string) => void; emit: (m: FromExecutor) => void }[] = [];
  const create = (): ExecWorker => {
    const w = { posted: [] as ToExecutor[], die: (_: string) => {}, emit: (_: FromExecutor) => {} };
    made.push(w);
    return {
      post: (msg) => w.posted.push(msg),
      listen: (onMessage, onError) => {
        w.emit = onMessage;
        w.die = onError;
      },
      terminate: () => {},
    };
  };
  return { made, create };
}

describe('WorkerExecution', () => {
  it('tells every worker it starts, a replacement too, the cluster filesystem root first', () => {
    const { made, create } = fakes();
    const exec = new WorkerExecution(2, create, { clusterRoot: 'root' });
    exec.attach(() => {});
    expect(made.map((w) => w.posted)).toEqual([[{ t: 'files', root: 'root' }], [{ t: 'files', root: 'root' }]]);
    exec.post(1, { t: 'stdin.end', pid: 'a.1' });
    expect(made[1]!.posted.at(-1)).toEqual({ t: 'stdin.end', pid: 'a.1' });
    made[1]!.die('out of memory');
    expect(made).toHaveLength(3);
    expect(made[2]!.posted).toEqual([{ t: 'files', root: 'root' }]);
  });

  it('sends nothing first without a cluster filesystem', () => {
    const { made, create } = fakes();
    new WorkerExecution(1, create);
    expect(made[0]!.posted).toEqual([]);
  });
});
