// The files every process (and the shell) sees at `/`: a few texts for cat, wc, grep and
// sha256sum. Read-only, and one copy is shared by every process of an executor. Below it the
// executor mounts `/tmp` (each process its own, empty, writable) and `/cluster` (the cluster
// filesystem, shared by the whole cluster): the empty `tmp` and `cluster` directories here are
// their mount points, so `ls /` shows them.
import type { MemFsTree } from '../wasi/memfs.ts';

export const SAMPLE_FILES: MemFsTree = {
  'README.txt':
    'Welcome to LSHAPES.\n' +
    "Every peer sees these files at /; /cluster is the cluster's filesystem. Try:\n" +
    '  run cat /README.txt\n' +
    '  run wc /texts/ozymandias.txt\n' +
    '  run grep -n sand /texts/ozymandias.txt\n' +
    '  run sha256sum /texts/ozymandias.txt\n' +
    '  run primes 2000000 4\n',
  texts: {
    'ozymandias.txt':
      'I met a traveller from an antique land,\n' +
      'Who said—"Two vast and trunkless legs of stone\n' +
      'Stand in the desert. . . . Near them, on the sand,\n' +
      'Half sunk a shattered visage lies, whose frown,\n' +
      'And wrinkled lip, and sneer of cold command,\n' +
      'Tell that its sculptor well those passions read\n' +
      'Which yet survive, stamped on these lifeless things,\n' +
      'The hand that mocked them, and the heart that fed;\n' +
      'And on the pedestal, these words appear:\n' +
      'My name is Ozymandias, King of Kings;\n' +
      'Look on my Works, ye Mighty, and despair!\n' +
      'Nothing beside remains. Round the decay\n' +
      'Of that colossal Wreck, boundless and bare\n' +
      'The lone and level sands stretch far away."\n',
    'numbers.txt': Array.from({ length: 100 }, (_, i) => `${i + 1}\n`).join(''),
  },
  cluster: {},
  tmp: {},
};
