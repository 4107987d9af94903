#!/usr/bin/env node
// The docs' option tables are generated from the schemas (src/request/markdown.ts):
//   docs/algorithms.md between <!-- options:start --> and <!-- options:end -->: optionsMarkdown(),
//   the per-algorithm tables (src/search/<algorithm>.options.ts);
//   docs/library.md between <!-- fields:start --> and <!-- fields:end -->: fieldsMarkdown(),
//   the request's top-level keys (src/request/fields.ts).
//   node scripts/dev/docs-options.js           checks: exit 1 naming each stale block
//   node scripts/dev/docs-options.js --write   rewrites the blocks
// Reads the compiled lib/ (run `npx tsc -p .` first); test/docs-options.test.ts runs the same
// check against src/ directly.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
/** Each generated block: the file, the marker name, the generator in src/request/markdown.ts. */
const BLOCKS = [
  { file: 'docs/algorithms.md', name: 'options', generator: 'optionsMarkdown' },
  { file: 'docs/library.md', name: 'fields', generator: 'fieldsMarkdown' },
];

/** The text between a block's markers (without the newlines next to them); throws when they are missing. */
function between(text, name, file = '<text>') {
  const start = `<!-- ${name}:start -->\n`;
  const end = `\n<!-- ${name}:end -->`;
  const i = text.indexOf(start);
  const j = i < 0 ? -1 : text.indexOf(end, i + start.length - 1);
  if (i < 0 || j < 0 || text.indexOf(start, i + 1) >= 0)
    throw new Error(`${file}: needs exactly one '<!-- ${name}:start -->' line, then a '<!-- ${name}:end -->' line`);
  return { from: i + start.length, to: j, body: text.slice(i + start.length, j) };
}

/** The text with a block's body replaced. */
function replaceBlock(text, name, body, file) {
  const b = between(text, name, file);
  return text.slice(0, b.from) + body.replace(/\n+$/, '') + text.slice(b.to);
}

/**
 * Each block whose text differs from its generator's: [{ file, name, expected, actual }].
 * `markdown` holds the generators (lib/request/markdown, or src/ from a test).
 */
function staleBlocks(markdown, dir = root) {
  return BLOCKS.flatMap(({ file, name, generator }) => {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    const expected = markdown[generator]().replace(/\n+$/, '');
    const actual = between(text, name, file).body;
    return actual === expected ? [] : [{ file, name, expected, actual }];
  });
}

function main() {
  let markdown;
  try {
    markdown = require(path.join(root, 'lib', 'request', 'markdown.js'));
  } catch (e) {
    console.error(`docs-options: cannot load lib/request/markdown.js (build with \`npx tsc -p .\`): ${e.message}`);
    process.exit(2);
  }
  const stale = staleBlocks(markdown);
  if (process.argv.includes('--write')) {
    for (const s of stale) {
      const file = path.join(root, s.file);
      fs.writeFileSync(file, replaceBlock(fs.readFileSync(file, 'utf8'), s.name, s.expected, s.file));
      console.log(`docs-options: rewrote the ${s.name} block of ${s.file}`);
    }
    if (!stale.length) console.log('docs-options: every block is up to date');
    return;
  }
  for (const s of stale)
    console.error(
      `docs-options: the ${s.name} block of ${s.file} differs from the schemas; run: npm run docs:options -- --write`,
    );
  if (stale.length) process.exit(1);
  console.log(`docs-options: ${BLOCKS.length} blocks match the schemas`);
}

module.exports = { BLOCKS, between, replaceBlock, staleBlocks };
if (require.main === module) main();
