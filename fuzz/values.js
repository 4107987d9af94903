'use strict';
/** Pools of hostile values shared by the generators: numbers and strings that break naive parsing. */

const BAD_NUMBER_STRINGS = [
  '',
  ' ',
  '-1',
  '-0',
  '0',
  '1.5',
  '1e3',
  '1e20',
  '1e308',
  '1e309',
  '-1e309',
  'NaN',
  'Infinity',
  '-Infinity',
  '0x10',
  '0b11',
  '1_000',
  '9007199254740993',
  '18446744073709551616',
  '  7 ',
  '7abc',
  'abc',
  '½',
  '٣',
  '1,2',
  '--',
  '-',
  '+5',
  '.5',
  '5.',
  'null',
  'true',
  '[]',
  '{}',
  '🙂',
  '\u0000',
  '%s%n',
  '1'.repeat(400),
];

const STRINGS = [
  '',
  ' ',
  'a',
  'gmm2d',
  'fashion-flow',
  'tpm',
  'classifier',
  'self',
  'oracle',
  'realism',
  'gmm2d-reward',
  'nope',
  '../../etc/passwd',
  '/dev/null',
  '/proc/self/mem',
  '/',
  '.',
  '..',
  'models/gmm2d.pt',
  'http://127.0.0.1:1/x',
  'https://',
  'file:///etc/passwd',
  'モデル',
  '🙂🙂',
  'e\u0301',
  '\u202e',
  'a\u0000b',
  '\n',
  '\t\r',
  'x'.repeat(5000),
  '%00',
  '$(id)',
  '`id`',
  '-h',
  '--help',
  '--',
  'cuda',
  'cuda:0',
  'cuda:99',
  'cpu',
  'cpu:1',
  'tpu',
  'mps',
  'cuda:-1',
  'CPU',
  'Shirt',
  'T-shirt/top',
  '0',
  '9',
  '10',
  '-1',
  '1e3',
];

/** JSON values of every type, some nasty: used for config entries and HTTP bodies. */
function jsonValue(rng, depth = 0) {
  const kind = rng.int(0, depth > 3 ? 6 : 9);
  switch (kind) {
    case 0:
      return rng.pick([
        0,
        -1,
        1,
        2,
        3,
        7,
        1.5,
        -0.5,
        1e20,
        -1e20,
        1e308,
        5e-324,
        2 ** 53 + 2,
        2 ** 31,
        -(2 ** 31),
        123456789,
      ]);
    case 1:
      return rng.pick(STRINGS);
    case 2:
      return rng.pick(BAD_NUMBER_STRINGS);
    case 3:
      return rng.pick([true, false, null]);
    case 4:
      return rng.int(1, 64);
    case 5:
      return rng.float() * 4 - 2;
    case 6:
      return [];
    case 7:
      return Array.from({ length: rng.int(0, 5) }, () => jsonValue(rng, depth + 1));
    case 8:
      return Object.fromEntries(
        Array.from({ length: rng.int(0, 4) }, () => [rng.pick(STRINGS), jsonValue(rng, depth + 1)]),
      );
    default:
      return deeplyNested(rng.pick([50, 1000]), rng.chance(0.5));
  }
}

function deeplyNested(depth, arrays) {
  let v = 1;
  for (let i = 0; i < depth; i++) v = arrays ? [v] : { a: v };
  return v;
}

/** Raw JSON text that JSON.stringify cannot make: NaN, Infinity, huge exponents, bad escapes. */
const RAW_JSON_NUMBERS = [
  'NaN',
  'Infinity',
  '-Infinity',
  '1e999',
  '-1e999',
  '1e-999',
  '00',
  '-',
  '0x1F',
  '1.',
  '.1',
  '+1',
  '1e',
  '9'.repeat(400),
];

// Options that multiply the work of a run. A valid but large value there (n = 1e3, budget = 123456789)
// is a long run, not a bug: the fuzzer keeps runs cheap, so such a value is swapped for an invalid one.
const WORK_KEYS = new Set([
  'n',
  'budget',
  'budgets',
  'keep',
  'steps',
  'maxSteps',
  'population',
  'particles',
  'beams',
  'children',
  'candidates',
  'copies',
  'neighbours',
  'forward',
  'backward',
]);
const key = (flag) => flag.replace(/^--/, '').replace(/-(\w)/g, (_, c) => c.toUpperCase());

function tame(flagOrKey, v) {
  if (!WORK_KEYS.has(key(flagOrKey))) return v;
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isInteger(n) && n > 256 && n < 2 ** 31 ? (typeof v === 'number' ? n + 0.5 : `${v}.5x`) : v;
}

module.exports = { BAD_NUMBER_STRINGS, STRINGS, jsonValue, deeplyNested, RAW_JSON_NUMBERS, tame };
