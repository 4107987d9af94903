'use strict';
/**
 * HTTP cases for `serve` (createServer over createEngine, 127.0.0.1, port 0): request bodies that
 * start as a cheap valid search and get wrong types, unknown keys, huge or NaN numbers, models
 * outside the models directory, broken JSON, oversize bodies; odd methods, routes and queries.
 */
const { jsonValue, RAW_JSON_NUMBERS, STRINGS, tame } = require('./values');

const KEYS = [
  'model',
  'class',
  'prompt',
  'negativePrompt',
  'algorithm',
  'budget',
  'n',
  'seed',
  'verifier',
  'steps',
  'schedule',
  'tpm',
  'maxSteps',
  'tpmSolver',
  'shift',
  'sampler',
  'eta',
  'guidance',
  'device',
  'algorithmOptions',
  'keep',
  'eval',
];
// Files the runner copies into the server's models directory (names requests may use).
const DIR_MODELS = [
  'ok.pt',
  'ok-verifier.pt',
  'nan.pt',
  'throws.pt',
  'wrong-shape.pt',
  'arity1.pt',
  'card-missing.pt',
  'verifier-nan.pt',
  'verifier-shape.pt',
  'truncated.pt',
  'empty.pt',
];
const ALG_OPTIONS = [
  'population',
  'levels',
  'elites',
  'beta',
  'tournament',
  'n',
  'm',
  'tau',
  'particles',
  'lambda',
  'beams',
  'children',
  'forward',
  'backward',
  'threshold',
  'interval',
  'potential',
  'scoreBy',
  'mutation',
];

function base(r) {
  return {
    model: r.pick(['gmm2d', 'gmm2d', 'vp2d', 'ok.pt']),
    verifier: [r.pick(['gmm2d-reward', 'ok-verifier.pt'])],
    budget: r.int(16, 64),
    n: 1,
    steps: r.int(2, 6),
    algorithm: r.pick(['best-of-n', 'evosearch', 'zero-order', 'beam', 'particles', 'paths', 'baseline']),
  };
}

function value(r) {
  return r.weighted([
    [5, () => jsonValue(r)],
    [2, () => r.pick(DIR_MODELS)],
    [
      1,
      () =>
        r.pick([
          '/work/main/models/gmm2d.pt',
          '../ok.pt',
          'sub/../ok.pt',
          'ok.pt\u0000',
          '.',
          'link.pt',
          'http://127.0.0.1:9/v',
        ]),
    ],
    [1, () => Object.fromEntries(Array.from({ length: r.int(1, 3) }, () => [r.pick(ALG_OPTIONS), jsonValue(r)]))],
  ])();
}

function body(r) {
  const b = base(r);
  for (let i = r.int(1, 4); i > 0; i--) {
    const key = r.chance(0.9) ? r.pick(KEYS) : r.pick(STRINGS);
    if (r.chance(0.15)) delete b[key];
    else b[key] = tame(key, value(r));
  }
  const text = JSON.stringify(b);
  switch (r.int(0, 11)) {
    case 0:
      return text.replace(/:(\d+)/, `:${r.pick(RAW_JSON_NUMBERS)}`);
    case 1:
      return r.pick(['', ' ', '[]', 'null', '1', '"x"', '{', 'not json', '\ufeff{}', '{"model":"gmm2d"}{}', '\u0000']);
    case 2:
      return text.slice(0, r.int(0, text.length - 1));
    case 3: {
      const d = r.pick([100, 5000, 100000]);
      return text.replace(/}$/, `,"${r.pick(KEYS)}":${'['.repeat(d)}${']'.repeat(d)}}`);
    }
    case 4: // over the 1 MiB body limit
      return text.replace(/}$/, `,"prompt":"${'x'.repeat(r.pick([1100000, 3000000]))}"}`);
    default:
      return text;
  }
}

function genHttp(r) {
  const route = r.weighted([
    [12, ['POST', '/v1/generate']],
    [3, ['POST', '/v1/generate/stream']],
    [2, ['GET', '/v1/generate/stream']],
    [1, ['GET', r.pick(['/v1/models', '/healthz', '/metrics'])]],
    [
      1,
      [
        r.pick(['PUT', 'DELETE', 'GET', 'PATCH', 'OPTIONS']),
        r.pick(['/v1/generate', '/', '/v1/../healthz', '/%zz', '/v1/generate?x=%', '//v1/generate']),
      ],
    ],
  ]);
  const [method, path] = route;
  const headers = {};
  if (r.chance(0.2))
    headers['content-type'] = r.pick([
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/json; charset=latin1',
    ]);
  if (r.chance(0.2)) headers.accept = r.pick(['image/png', 'text/event-stream', '*/*']);
  if (method === 'GET' && path === '/v1/generate/stream') {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(base(r))) q.append(k, Array.isArray(v) ? v[0] : String(v));
    for (let i = r.int(1, 3); i > 0; i--)
      q.append(
        r.chance(0.9) ? r.pick(KEYS) : r.pick(STRINGS),
        r.pick([...STRINGS, 'NaN', '1e999', '{"a":', '[1,2]', '-5', '{}']).slice(0, 200),
      );
    return { kind: 'http', method, path: `${path}?${q}` + (r.chance(0.1) ? '&%zz' : ''), headers };
  }
  // chunked: no content-length, so the server finds an oversize body only while reading it.
  return {
    kind: 'http',
    method,
    path,
    headers,
    chunked: r.chance(0.3),
    body: method === 'POST' || r.chance(0.3) ? body(r) : undefined,
  };
}

module.exports = { genHttp, DIR_MODELS };
