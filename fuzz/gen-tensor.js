'use strict';
/**
 * Library-API cases: tensors of wrong dtypes, shapes and devices, disposed handles, fake tensor
 * objects and plain junk passed to tensor(), the native ops, streams and a module's forward.
 * A case is data (specs); exec-tensor.js builds the values and makes the one call.
 */
const DTYPES = ['float32', 'float32', 'float64', 'int32', 'int64', 'uint8'];
const DEVICES = [
  'cpu',
  'cpu',
  'cpu',
  'cuda',
  'cuda:0',
  'cuda:7',
  'meta',
  'mps',
  'tpu',
  '',
  'cpu:1',
  'CPU',
  'cuda:-1',
  'cuda:x',
  '🙂',
  null,
  7,
];
const OPS = [
  'eulerStep',
  'heunCombine',
  'ddimStep',
  'topk',
  'tournamentSelect',
  'resample',
  'mutateGaussian',
  'mutateAdditive',
  'sphereNeighbours',
  'renoise',
  'randn',
  'uniform',
];

function shape(r, rows = r.int(0, 5), cols = 2) {
  return r.weighted([
    [8, [rows, cols]],
    [2, [rows]],
    [1, []],
    [1, [rows, cols, r.int(0, 3)]],
    [1, [r.pick([-1, -5, 1.5, NaN, Infinity, 2 ** 40, 2 ** 62, '2', null]), cols]],
    [1, Array.from({ length: r.int(9, 70) }, () => 1)],
  ]);
}

/** A tensor (by spec), or something that is not one. */
function value(r, base) {
  return r.weighted([
    [12, () => tensorSpec(r, base)],
    [
      1,
      () => ({
        junk: r.pick([
          'number',
          'string',
          'null',
          'undefined',
          'object',
          'array',
          'fake',
          'typed',
          'bigint',
          'function',
        ]),
      }),
    ],
  ])();
}

function tensorSpec(r, base = shape(r)) {
  const s = r.chance(0.8) ? base : shape(r);
  const n =
    Array.isArray(s) && s.every((d) => Number.isInteger(d) && d >= 0 && d < 1e4)
      ? s.reduce((a, b) => a * b, 1)
      : r.int(0, 8);
  return {
    dtype: r.pick(DTYPES),
    shape: r.chance(0.9) ? s : undefined,
    len: r.chance(0.9) ? n : r.int(0, 12),
    device: r.chance(0.9) ? 'cpu' : r.pick(DEVICES),
    fill: r.pick(['randn', 'randn', 'nan', 'inf', 'zero', 'huge']),
    dispose: r.chance(0.1),
  };
}

const num = (r) =>
  r.pick([0, 1, 2, 3, -1, 0.5, 1.5, NaN, Infinity, -Infinity, 2 ** 45, 2 ** 53, 1e300, -0, '2', null, undefined]);
const seed = (r) => r.pick([0, 1, 42, -1, 2 ** 64, NaN, 1.5, 'x', 10n, -1n, 2n ** 70n, undefined]);

function genTensor(r) {
  const kind = r.weighted([
    [3, 'create'],
    [10, 'op'],
    [2, 'module'],
    [1, 'stream'],
    [1, 'threads'],
  ]);
  const base = shape(r);
  const rows = Array.isArray(base) && Number.isInteger(base[0]) ? base[0] : 2;
  switch (kind) {
    case 'create':
      return {
        kind: 'tensor',
        call: 'create',
        spec: tensorSpec(r, base),
        // biome-ignore lint/suspicious/noThenProperty: the follow-up call's name (a string), not a thenable
        then: r.pick(['toArray', 'to', 'dispose2', 'props', 'none']),
        device: r.pick(DEVICES),
      };
    case 'module':
      return {
        kind: 'tensor',
        call: 'module',
        method: r.pick(['forward', 'forward', 'nope', '', 'params', '__init__']),
        args: Array.from(
          {
            length: r.weighted([
              [1, 0],
              [1, 1],
              [6, 3],
              [1, 4],
            ]),
          },
          () =>
            r.chance(0.1)
              ? { junk: r.pick(['number', 'string', 'null', 'array', 'bigint', 'fake']) }
              : tensorSpec(r, base),
        ),
        disposeModule: r.chance(0.1),
      };
    case 'stream':
      return {
        kind: 'tensor',
        call: 'stream',
        device: r.pick(DEVICES),
        closeFirst: r.chance(0.6),
        op: r.pick(['randn', 'eulerStep', 'topk']),
      };
    case 'threads':
      return { kind: 'tensor', call: 'threads', n: r.pick([0, -1, NaN, 1.5, 'x', null, 2 ** 40]) };
    default: {
      const op = r.pick(OPS);
      return {
        kind: 'tensor',
        call: 'op',
        op,
        a: value(r, base),
        b: value(r, base),
        c: value(r, base),
        s1: r.chance(0.7) ? r.int(0, 2) : num(r),
        s2: r.chance(0.5) ? r.float() : num(r),
        k: r.chance(0.6) ? r.int(0, rows + 1) : num(r),
        seed: r.chance(0.7) ? r.int(0, 99) : seed(r),
        path: r.pick(['rectified_flow', 'vp', 'nope', 3]),
        idx: r.pick([null, [0], [0, 1], [-1], [99], [0.5], 'x']),
        shape: shape(r),
        device: r.chance(0.8) ? 'cpu' : r.pick(DEVICES),
      };
    }
  }
}

module.exports = { genTensor };
