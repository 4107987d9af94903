'use strict';
/** The case of (seed, index): its category from a fixed mix, the rest from its own seeded stream. */
const { Rng } = require('./rng');
const { genCli } = require('./gen-cli');
const { genConfig } = require('./gen-config');
const { genModel } = require('./gen-model');
const { genTensor } = require('./gen-tensor');
const { genHttp } = require('./gen-http');

const CATEGORIES = { cli: genCli, config: genConfig, model: genModel, tensor: genTensor, http: genHttp };
// Of every 20 cases: cheap library calls most, CLI and model files next, HTTP the fewest (each a search).
const MIX = [
  'tensor',
  'tensor',
  'tensor',
  'tensor',
  'tensor',
  'cli',
  'cli',
  'cli',
  'cli',
  'config',
  'config',
  'config',
  'model',
  'model',
  'model',
  'model',
  'http',
  'http',
  'http',
  'http',
];

function makeCase(seed, index) {
  const r = new Rng(seed, index);
  const category = MIX[(index + (seed % MIX.length)) % MIX.length];
  return { index, fuzzSeed: seed, category, ...CATEGORIES[category](r) };
}

/** A case as JSON for reports: NaN, Infinity, bigint and undefined kept readable. */
function describe(c) {
  return JSON.stringify(c, (_k, v) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
    if (v === undefined) return 'undefined';
    if (typeof v === 'string' && v.length > 300) return `${v.slice(0, 60)}…(${v.length} chars)`;
    return v;
  });
}

module.exports = { makeCase, describe, CATEGORIES };
