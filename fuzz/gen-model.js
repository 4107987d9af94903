'use strict';
/**
 * Model-file cases: a file (broken fixture from test/fixtures/fuzz, or bytes made at run time:
 * truncated, zero-length, random, bit-flipped, junk-appended copies of valid archives) used as the
 * denoiser, the verifier or the TPM of a cheap generate, or loaded and called through the library.
 */
const fs = require('node:fs');
const path = require('node:path');

const FIXTURES = path.join(__dirname, '..', 'test', 'fixtures');
const BROKEN = fs
  .readdirSync(path.join(FIXTURES, 'fuzz'))
  .filter((f) => f.endsWith('.pt'))
  .sort()
  .map((f) => `@FIX/fuzz/${f}`);
const OTHER = [
  '@FIX/not-a-model.pt',
  '@FIX/nocard.pt',
  '@FIX/badcard.pt',
  '@FIX/tiny.pt',
  '@FIX/cond-tiny.pt',
  '@FIX/cond-verifier.pt',
];
// Valid archives whose bytes get broken; small ones, so a case stays cheap.
const VALID = [
  '@FIX/fuzz/ok.pt',
  '@FIX/fuzz/ok-verifier.pt',
  '@ROOT/models/gmm2d.pt',
  '@ROOT/models/gmm2d-reward.pt',
  '@ROOT/models/vp2d.pt',
];
const SIZE = (spec) => fs.statSync(spec.replace('@FIX', FIXTURES).replace('@ROOT', path.join(__dirname, '..'))).size;

/** A file spec the runner writes into the case's temp dir (see runner-files.js). */
function brokenBytes(r) {
  const from = r.pick(VALID);
  const size = SIZE(from);
  return r.weighted([
    [
      3,
      () => ({
        name: 'm.pt',
        from,
        truncate: r.weighted([
          [1, r.int(0, 64)],
          [3, r.int(0, size - 1)],
          [1, size - r.int(1, 30)],
        ]),
      }),
    ],
    [1, () => ({ name: 'm.pt', text: '' })],
    [2, () => ({ name: 'm.pt', random: r.int(1, 20000), seed: r.int(0, 2 ** 31) })],
    [1, () => ({ name: 'm.pt', random: r.int(1, 4000), seed: r.int(0, 2 ** 31), prefix: 'PK\u0003\u0004' })],
    [
      4,
      () => ({
        name: 'm.pt',
        from,
        flips: Array.from({ length: r.int(1, 8) }, () => [r.int(0, size - 1), r.int(0, 255)]),
      }),
    ],
    [1, () => ({ name: 'm.pt', from, append: r.int(1, 5000), seed: r.int(0, 2 ** 31) })],
  ])();
}

function genModel(r) {
  const source = r.weighted([
    [5, 'broken'],
    [6, 'fixture'],
    [1, 'other'],
  ]);
  let file, files;
  if (source === 'broken') (files = [brokenBytes(r)]), (file = '@TMP/m.pt');
  else file = r.pick(source === 'fixture' ? BROKEN : OTHER);
  const action = r.weighted([
    [5, 'denoiser'],
    [3, 'verifier'],
    [1, 'tpm'],
    [3, 'library'],
  ]);
  const common = [
    '--out',
    '@TMP/out',
    '--budget',
    String(r.int(20, 80)),
    '--n',
    '1',
    '--steps',
    String(r.int(2, 6)),
    '--no-eval',
    '--json',
  ];
  const algorithm = ['--algorithm', r.pick(['best-of-n', 'evosearch', 'beam', 'particles', 'zero-order', 'baseline'])];
  switch (action) {
    case 'denoiser':
      return {
        kind: 'model',
        action,
        files,
        argv: [
          'generate',
          '--model',
          file,
          '--verifier',
          r.pick(['gmm2d-reward', '@FIX/fuzz/ok-verifier.pt']),
          ...algorithm,
          ...common,
        ],
      };
    case 'verifier':
      return {
        kind: 'model',
        action,
        files,
        argv: ['generate', '--model', 'gmm2d', '--verifier', file, ...algorithm, ...common],
      };
    case 'tpm':
      return {
        kind: 'model',
        action,
        files,
        argv: [
          'generate',
          '--model',
          'fashion-flow',
          '--schedule',
          'adaptive',
          '--tpm',
          file,
          '--class',
          '1',
          '--algorithm',
          'best-of-n',
          ...common,
        ],
      };
    default:
      // Through the library: load, read the card, then call forward with the denoiser contract.
      return {
        kind: 'model',
        action,
        files,
        file,
        rows: r.pick([0, 1, 3]),
        method: r.pick(['forward', 'forward', 'nope', 'params']),
      };
  }
}

module.exports = { genModel };
