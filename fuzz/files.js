'use strict';
/**
 * A case's files and paths: '@TMP/' (the case's own temp dir), '@FIX/' (test/fixtures) and
 * '@ROOT/' (the repo) in argv, and the files a case lists plus a stock set (odd prompt files,
 * .npy files right and wrong) written into its dir. Used by the runner and by the real-CLI pass.
 */
const fs = require('node:fs');
const path = require('node:path');
const { Rng } = require('./rng');

const ROOT = path.resolve(__dirname, '..');
const FIX = path.join(ROOT, 'test', 'fixtures');

function resolveTokens(list, dir) {
  return list.map((a) =>
    typeof a === 'string' ? a.replaceAll('@TMP', dir).replaceAll('@FIX', FIX).replaceAll('@ROOT', ROOT) : a,
  );
}

function npy(descr, shape, payload) {
  let header =
    `{'descr': '${descr}', 'fortran_order': False, 'shape': ` +
    `(${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((header.length + 10) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(pre);
  pre[6] = 1;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), payload]);
}

const STOCK = {
  'a-file': () => 'just a file\n',
  empty: () => '',
  'random.bin': () => new Rng(5, 5).bytes(3000),
  'ok.npy': () => npy('<f4', [2, 1, 28, 28], Buffer.alloc(2 * 784 * 4)),
  'small.npy': () => npy('<f4', [2, 2], Buffer.alloc(16)),
  'huge-shape.npy': () => npy('<f4', [100000000, 1, 28, 28], Buffer.alloc(64)),
  'int.npy': () => npy('<i4', [1, 1, 28, 28], Buffer.alloc(784 * 4)),
  'bad-header.npy': () =>
    Buffer.concat([Buffer.from('\x93NUMPY\x01\x00\xff\x7f', 'latin1'), Buffer.from("{'descr': '<f4', 'shape': (")]),
};

/** Writes one listed file spec (see gen-model.js) into dir. */
function writeSpec(dir, spec) {
  let bytes;
  if (spec.text !== undefined) bytes = Buffer.from(spec.text, 'utf8');
  else if (spec.random !== undefined)
    bytes = Buffer.concat([Buffer.from(spec.prefix ?? '', 'latin1'), new Rng(spec.seed, 0).bytes(spec.random)]);
  else {
    bytes = Buffer.from(fs.readFileSync(resolveTokens([spec.from], dir)[0]));
    if (spec.truncate !== undefined) bytes = bytes.subarray(0, spec.truncate);
    for (const [at, b] of spec.flips ?? []) bytes[at] = b;
    if (spec.append) bytes = Buffer.concat([bytes, new Rng(spec.seed, 1).bytes(spec.append)]);
  }
  fs.writeFileSync(path.join(dir, spec.name), bytes);
}

/** Makes the case dir with its files; returns the argv with tokens resolved. */
function prepare(c, dir) {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, make] of Object.entries(STOCK)) fs.writeFileSync(path.join(dir, name), make());
  for (const spec of Array.isArray(c.files) ? c.files : []) writeSpec(dir, spec);
  return c.argv ? resolveTokens(c.argv, dir) : undefined;
}

module.exports = { prepare, resolveTokens, writeSpec, ROOT, FIX };
