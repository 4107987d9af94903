'use strict';
/**
 * --config cases: `generate --config <file>` where the file starts as a cheap valid run and gets
 * entries of the wrong type, huge/NaN/negative numbers, unicode, deep nesting or broken JSON text.
 */
const { jsonValue, RAW_JSON_NUMBERS, STRINGS, tame } = require('./values');
const { GENERATE_FLAGS } = require('./gen-cli');

// The keys collectOptions reads (camelCase, as commander names them).
const KEYS = Object.keys(GENERATE_FLAGS).map((f) => f.slice(2).replace(/-(\w)/g, (_, c) => c.toUpperCase()));
KEYS.push('model', 'eval', 'prompts', 'scaleSteps', 'json', 'config', 'tpm');

function base(r) {
  return {
    model: r.pick(['gmm2d', 'vp2d']),
    verifier: 'gmm2d-reward',
    budget: r.int(16, 64),
    n: 1,
    steps: r.int(2, 6),
    eval: false,
    algorithm: r.pick(['best-of-n', 'evosearch', 'zero-order', 'beam', 'particles', 'paths', 'baseline']),
  };
}

/** The config text: usually JSON.stringify of a mutated object, sometimes hand-broken text. */
function configText(r) {
  const c = base(r);
  const edits = r.int(1, 4);
  for (let i = 0; i < edits; i++) {
    const key = r.chance(0.85) ? r.pick(KEYS) : r.pick(STRINGS);
    if (r.chance(0.15)) delete c[key];
    else c[key] = tame(key, jsonValue(r));
  }
  const text = JSON.stringify(c);
  switch (r.int(0, 9)) {
    case 0: // a literal JSON cannot hold, in place of one number
      return text.replace(/:(\d+)/, `:${r.pick(RAW_JSON_NUMBERS)}`);
    case 1: // not an object at the top
      return r.pick(['[]', 'null', '1', '"x"', 'true', '', ' ', '\ufeff{}', '{}'.repeat(2), '[' + text + ']']);
    case 2: // cut short
      return text.slice(0, r.int(0, text.length - 1));
    case 3: // deep nesting as one entry's value (text, not recursion in the generator)
      {
        const d = r.pick([100, 5000, 100000]);
        return text.replace(/}$/, `,"${r.pick(KEYS)}":${'['.repeat(d)}${']'.repeat(d)}}`);
      }
    case 4: // a byte-order mark, comments, trailing commas, invalid UTF-8
      return r.pick([
        '\ufeff' + text,
        '// c\n' + text,
        text.replace(/}$/, ',}'),
        text.replace(/"model"/, '"mo\udc00del"'),
        text + '\u0000',
      ]);
    case 5: // a big file: one long string entry
      return text.replace(/}$/, `,"prompt":"${'a '.repeat(r.pick([1000, 200000]))}"}`);
    default:
      return text;
  }
}

function genConfig(r) {
  const argv = ['generate', '--config', '@TMP/config.json', '--out', '@TMP/out'];
  if (r.chance(0.7)) argv.push('--json');
  // Flags override the file: sometimes one flag to check the merge.
  if (r.chance(0.3)) {
    const f = r.pick(Object.keys(GENERATE_FLAGS));
    argv.push(f, GENERATE_FLAGS[f](r));
  }
  return { kind: 'config', argv, files: [{ name: 'config.json', text: configText(r) }] };
}

module.exports = { genConfig };
