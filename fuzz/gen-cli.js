'use strict';
/**
 * CLI cases: argv for generate, models, eval, info, sweep and bench, built from a cheap valid
 * command and then broken 0–3 ways (a bad value, an unknown option, a missing value, junk).
 * '@TMP/', '@FIX/' and '@ROOT/' in argv are replaced by the runner (temp dir, test/fixtures, repo).
 */
const { BAD_NUMBER_STRINGS, STRINGS, tame } = require('./values');

const ALGORITHMS = ['evosearch', 'best-of-n', 'zero-order', 'paths', 'particles', 'beam', 'baseline'];

/** Flags of generate with a sampler of valid-but-cheap values, and of plausible wrong ones. */
const GENERATE_FLAGS = {
  '--budget': (r) => String(r.int(16, 80)),
  '--n': (r) => String(r.int(1, 2)),
  '--keep': (r) => String(r.int(1, 2)),
  '--seed': (r) => String(r.int(0, 2 ** 31)),
  '--steps': (r) => String(r.int(2, 6)),
  '--class': (r) => r.pick(['0', '1', 'Shirt', 'Bag', '9']),
  '--algorithm': (r) => r.pick(ALGORITHMS),
  '--schedule': (r) => r.pick(['uniform', 'shifted', 'karras']),
  '--shift': (r) => String(r.float() * 3),
  '--sampler': (r) => r.pick(['euler', 'heun', 'sde']),
  '--eta': (r) => String(r.float()),
  '--guidance': (r) => String(r.float() * 3),
  '--device': (r) => r.pick(['cpu', 'cpu', 'cuda', 'cuda:3', 'meta', 'cpu:0']),
  '--max-batch': (r) => String(r.int(1, 64)),
  '--population': (r) => Array.from({ length: r.int(1, 4) }, () => r.int(2, 6)).join(','),
  '--levels': (r) => Array.from({ length: r.int(1, 4) }, () => r.int(0, 12)).join(','),
  '--elites': (r) => String(r.int(0, 3)),
  '--beta': (r) => String(r.float()),
  '--tournament': (r) => String(r.float()),
  '--mutation': (r) => r.pick(['sde', 'additive']),
  '--score-by': (r) => r.pick(['rollout', 'x0']),
  '--neighbours': (r) => String(r.int(1, 4)),
  '--tau': (r) => String(r.float()),
  '--candidates': (r) => String(r.int(1, 3)),
  '--copies': (r) => String(r.int(1, 3)),
  '--forward': (r) => String(r.int(1, 3)),
  '--backward': (r) => String(r.int(1, 6)),
  '--particles': (r) => String(r.int(1, 4)),
  '--potential': (r) => r.pick(['max', 'add', 'diff']),
  '--lambda': (r) => String(r.float() * 4),
  '--resample-every': (r) => String(r.int(1, 3)),
  '--ess-threshold': (r) => String(r.float()),
  '--beams': (r) => String(r.int(1, 3)),
  '--children': (r) => String(r.int(1, 3)),
  '--tpm-solver': (r) => r.pick(['euler', 'ab2']),
  '--max-steps': (r) => String(r.int(1, 12)),
  '--negative-prompt': (r) => r.pick(['a shirt', '', 'bag']),
  '--prompt': (r) => r.pick(['a shirt', 'a red bag', '', 'zzz qqq']),
  '--verifier': (r) =>
    r.pick([
      'gmm2d-reward',
      '@FIX/fuzz/ok-verifier.pt',
      '@FIX/fuzz/verifier-nan.pt',
      '@FIX/fuzz/verifier-shape.pt',
      '@FIX/fuzz/verifier-rows.pt',
      'self',
    ]),
};
const SWITCHES = ['--json', '--no-eval', '--scale-steps', '--verbose', '--help', '-h', '--version', '-V'];

/** A model and the verifier that fits it; costly models get a small budget below. */
function baseModel(r) {
  return r.weighted([
    [12, ['gmm2d', 'gmm2d-reward']],
    [3, ['vp2d', 'gmm2d-reward']],
    [3, ['@FIX/fuzz/ok.pt', '@FIX/fuzz/ok-verifier.pt']],
    [0.5, ['fashion-flow', 'classifier']],
    [0.5, ['fashion-t2i', null]],
    [1, ['@FIX/tiny.pt', 'self']],
  ]);
}

function badValue(r) {
  return r.weighted([
    [4, () => r.pick(BAD_NUMBER_STRINGS)],
    [3, () => r.pick(STRINGS)],
    [1, () => '-' + r.int(1, 1e6)],
    [1, () => String(r.pick([1e15, 2 ** 53 + 1, 1e21, 3e9, 2 ** 32]))],
  ])();
}

function generateArgv(r) {
  const [model, verifier] = baseModel(r);
  const argv = [
    'generate',
    '--model',
    model,
    '--out',
    '@TMP/out',
    '--budget',
    String(r.int(16, 64)),
    '--n',
    '1',
    '--steps',
    String(r.int(2, 6)),
  ];
  if (verifier) argv.push('--verifier', verifier);
  if (model === 'fashion-t2i') argv.push('--prompt', r.pick(['a shirt', 'a red bag', 'zzz']));
  if (r.chance(0.7)) argv.push('--algorithm', r.pick(ALGORITHMS));
  if (r.chance(0.8)) argv.push('--no-eval');
  if (r.chance(0.8)) argv.push('--json');
  const extra = r.int(0, 4);
  const names = Object.keys(GENERATE_FLAGS);
  for (let i = 0; i < extra; i++) {
    const f = r.pick(names);
    argv.push(f, GENERATE_FLAGS[f](r));
  }
  return argv;
}

/** One way of breaking argv. */
function mutate(r, argv) {
  const names = [...Object.keys(GENERATE_FLAGS), '--model', '--out', '--config', '--prompts'];
  switch (r.int(0, 9)) {
    case 0: // a bad value for a known flag
    case 1:
    case 2: {
      const f = r.pick(names.filter((n) => n !== '--out'));
      argv.push(f, tame(f, badValue(r)));
      return argv;
    }
    case 3: // a flag with its value missing, at the end
      argv.push(r.pick(names));
      return argv;
    case 4: // an unknown option or a typo
      argv.push(
        r.pick([
          '--budgte',
          '--nn',
          '--x',
          '-z',
          '--model=',
          '--budget=',
          '---budget',
          '--no-json',
          '--seed=-1',
          '--',
          '-',
        ]),
        badValue(r),
      );
      return argv;
    case 5: // a stray positional
      argv.splice(r.int(1, argv.length), 0, badValue(r));
      return argv;
    case 6: // --out somewhere that cannot be a directory (never the repo or /)
      argv.push(
        '--out',
        r.pick(['/dev/null', '/proc/fuzz/out', '@TMP/a-file', '@TMP/a-file/sub', '', '@TMP/ok dir/ü']),
      );
      return argv;
    case 7: // --prompts from an unreadable or odd file
      argv.push(
        '--prompts',
        r.pick(['@TMP/missing.txt', '@TMP', '/dev/null', '@TMP/a-file', '@TMP/random.bin', '@TMP/empty']),
      );
      return argv;
    case 8: // a switch, maybe with a value
      argv.push(r.pick(SWITCHES));
      if (r.chance(0.3)) argv.push(badValue(r));
      return argv;
    default: // drop a token
      if (argv.length > 2) argv.splice(r.int(1, argv.length - 1), 1);
      return argv;
  }
}

function otherArgv(r) {
  return r.pick([
    () => ['models', ...(r.chance(0.5) ? ['--json'] : []), ...(r.chance(0.3) ? [badValue(r)] : [])],
    () => ['info', ...(r.chance(0.5) ? ['--json'] : []), ...(r.chance(0.3) ? ['--' + r.pick(STRINGS)] : [])],
    () => [
      'eval',
      r.pick([
        '@TMP/random.bin',
        '@TMP/empty',
        '@TMP/missing.npy',
        '@TMP/ok.npy',
        '@TMP/small.npy',
        '@TMP/bad-header.npy',
        '@TMP/huge-shape.npy',
        '@TMP/int.npy',
        '@TMP',
      ]),
      '--class',
      r.pick(['0', 'Shirt', '-1', '10', 'nope', '1e3', '']),
      ...(r.chance(0.5) ? ['--json'] : []),
    ],
    () => ['eval', ...(r.chance(0.5) ? ['@TMP/ok.npy'] : []), ...(r.chance(0.5) ? ['--class'] : [])],
    () => [
      'sweep',
      '--model',
      'gmm2d',
      '--verifier',
      'gmm2d-reward',
      '--out',
      '@TMP/sweep',
      '--algorithms',
      r.pick(['best-of-n', 'nope', '', 'baseline,,', 'evosearch,beam']),
      '--budgets',
      r.pick(['30', '0', '-1', 'a,b', '1e20', '30,', '']),
      '--n',
      r.pick(['1', '0', 'x']),
      '--steps',
      r.pick(['4', '0', '1e9', 'NaN']),
      '--json',
    ],
    () => [
      'bench',
      r.pick(['kernels', 'search', 'model', 'nope']),
      r.pick(['--sizes', '--budget', '--steps', '--batches', '--threads', '--min-seconds']),
      r.pick(['abc', '0', '-1', '1e400', '', 'NaN', '-0.5']),
    ],
    () => [r.pick(['nope', 'Generate', 'generat', '', '-', '--', 'help', '🙂', 'serve --port -1'])],
    () => [r.pick(['--help', '-h', '--version', '-V', '--verbose'])],
  ])();
}

function genCli(r) {
  if (r.chance(0.25)) return { kind: 'cli-other', argv: otherArgv(r) };
  let argv = generateArgv(r);
  const breaks = r.weighted([
    [1, 0],
    [4, 1],
    [2, 2],
    [1, 3],
  ]);
  for (let i = 0; i < breaks; i++) argv = mutate(r, argv);
  return { kind: 'cli-generate', argv };
}

module.exports = { genCli, generateArgv, badValue, GENERATE_FLAGS };
