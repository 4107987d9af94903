'use strict';
/** Library-API cases (gen-tensor.js, and gen-model.js's 'library' action): build the values, make the one call. */
const path = require('node:path');
const lib = require('../lib/index');
const { FIX } = require('./files');

const { tensor, ops, loadModule, createStream, setNumThreads } = lib;

function typed(dtype, n, fill) {
  const v = (i) =>
    fill === 'nan'
      ? NaN
      : fill === 'inf'
        ? i % 2
          ? -Infinity
          : Infinity
        : fill === 'zero'
          ? 0
          : fill === 'huge'
            ? 3e38
            : Math.sin(i * 12.9898) * 2;
  switch (dtype) {
    case 'float64':
      return Float64Array.from({ length: n }, (_, i) => v(i));
    case 'int32':
      return Int32Array.from({ length: n }, (_, i) => (fill === 'huge' ? 2 ** 31 - 1 : i % 3));
    case 'int64':
      return BigInt64Array.from({ length: n }, (_, i) => BigInt(fill === 'huge' ? -(2 ** 60) : i % 3));
    case 'uint8':
      return Uint8Array.from({ length: n }, (_, i) => i % 256);
    default:
      return Float32Array.from({ length: n }, (_, i) => v(i));
  }
}

function junk(kind) {
  switch (kind) {
    case 'number':
      return 3;
    case 'string':
      return 'tensor';
    case 'null':
      return null;
    case 'undefined':
      return undefined;
    case 'array':
      return [1, 2, 3];
    case 'bigint':
      return 5n;
    case 'function':
      return () => 1;
    case 'typed':
      return new Float32Array(4);
    case 'fake': // passes a duck-typed isTensor(): the native side must still refuse it
      return {
        shape: [2, 2],
        dtype: 'float32',
        device: 'cpu',
        numel: 4,
        disposed: false,
        dispose() {},
        toArray: async () => new Float32Array(4),
        to: async () => null,
      };
    default:
      return {};
  }
}

function build(spec) {
  if (spec.junk) return junk(spec.junk);
  const t = tensor(typed(spec.dtype, spec.len, spec.fill), spec.shape, { device: spec.device });
  if (spec.dispose) t.dispose();
  return t;
}

/** Reads every tensor a call returned (proves the handles are sound), then frees them. */
async function drain(v) {
  if (v && typeof v === 'object') {
    if (typeof v.toArray === 'function' && typeof v.dispose === 'function') {
      const a = await v.toArray();
      if (a.length !== v.numel) throw new Error(`toArray gave ${a.length} values for numel ${v.numel}`);
      v.dispose();
      return;
    }
    for (const x of Array.isArray(v) ? v : Object.values(v)) await drain(x);
  }
}

let okModule;
async function runOp(c) {
  const a = build(c.a),
    b = build(c.b),
    cc = build(c.c);
  const o = { seed: c.seed };
  const sigma = (v) => (v && typeof v === 'object' ? cc : v);
  switch (c.op) {
    case 'eulerStep':
      return ops.eulerStep(a, b, sigma(c.s1 === 0 ? cc : c.s1), c.s2);
    case 'heunCombine':
      return ops.heunCombine(a, b, cc, c.s1, c.s2);
    case 'ddimStep':
      return ops.ddimStep(a, b, c.path, c.s1, c.s2, c.k, o);
    case 'topk':
      return ops.topk(a, c.k);
    case 'tournamentSelect':
      return ops.tournamentSelect(a, c.k, { size: c.s1, seed: c.seed });
    case 'resample':
      return ops.resample(a, c.k, {
        method: c.path === 'vp' ? 'multinomial' : c.path === 'nope' ? 'nope' : 'systematic',
        seed: c.seed,
      });
    case 'mutateGaussian':
      return ops.mutateGaussian(a, c.idx, c.s2, o);
    case 'mutateAdditive':
      return ops.mutateAdditive(a, c.idx, c.s1 === 0 ? b : c.s2, o);
    case 'sphereNeighbours':
      return ops.sphereNeighbours(a, c.s2, o);
    case 'renoise':
      return ops.renoise(a, c.path, c.s1, c.s2, o);
    case 'randn':
    case 'uniform':
      return ops[c.op](c.shape, { seed: c.seed, device: c.device });
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

async function runTensor(c) {
  switch (c.call) {
    case 'create': {
      const t = build(c.spec);
      if (c.then === 'toArray') return t.toArray();
      if (c.then === 'to') return t.to(c.device);
      if (c.then === 'dispose2') return (t.dispose(), t.dispose(), t.toArray());
      if (c.then === 'props') return [t.shape, t.dtype, t.device, t.numel, t.disposed];
      return t;
    }
    case 'module': {
      const file = path.join(FIX, 'fuzz', 'ok.pt');
      let m = okModule ?? (okModule = await loadModule(file));
      if (c.disposeModule) (m = await loadModule(file)), m.dispose();
      return m.call(c.method, c.args.map(build));
    }
    case 'stream': {
      const s = createStream({ device: c.device });
      if (c.closeFirst) await s.close();
      if (c.op === 'randn') return ops.randn([2, 2], { seed: 1, stream: s });
      const x = tensor(new Float32Array(4), [2, 2]);
      if (c.op === 'topk') return ops.topk(tensor(new Float32Array(4), [4]), 2, s);
      return ops.eulerStep(x, x, 1, 0.5, s);
    }
    case 'threads':
      return setNumThreads(c.n);
    default:
      return runOp(c);
  }
}

/** gen-model.js 'library': load a (maybe broken) file, read its card, call a method with denoiser inputs. */
async function runModelFile(c, file) {
  const m = await loadModule(file);
  try {
    void m.card, m.methods;
    if (m.hasMethod(c.method)) m.schema(c.method);
    const n = c.rows;
    const x = tensor(new Float32Array(n * 2).fill(0.5), [n, 2]),
      sigma = tensor(new Float32Array(n).fill(0.7), [n]),
      cond = tensor(new BigInt64Array(n), [n]);
    return await m.call(c.method, [x, sigma, cond]);
  } finally {
    m.dispose();
  }
}

module.exports = { runTensor, runModelFile, drain };
