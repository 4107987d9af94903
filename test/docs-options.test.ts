/**
 * The docs' option tables are the schemas' (src/request/markdown.ts): docs/algorithms.md's per-algorithm
 * tables and docs/library.md's request keys must be exactly what the generators print, so a schema
 * changed without `npm run docs:options -- --write` fails here.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fieldsMarkdown, optionsMarkdown } from '../src/request/markdown';

const root = path.join(__dirname, '..');
const script = path.join(root, 'scripts', 'dev', 'docs-options.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { BLOCKS, between, replaceBlock, staleBlocks } = require(script) as {
  BLOCKS: Array<{ file: string; name: string; generator: string }>;
  between(text: string, name: string, file?: string): { body: string };
  replaceBlock(text: string, name: string, body: string, file?: string): string;
  staleBlocks(markdown: Record<string, () => string>, dir?: string): Array<{ file: string; name: string }>;
};
const markdown = { optionsMarkdown, fieldsMarkdown };

describe('docs option tables', () => {
  it('match the schemas (fix: npm run docs:options -- --write)', () => {
    expect(BLOCKS.map((b) => b.generator).sort()).toEqual(Object.keys(markdown).sort());
    expect(staleBlocks(markdown)).toEqual([]);
  });

  it('a schema change makes its block stale', () => {
    const changed = { ...markdown, optionsMarkdown: () => optionsMarkdown().replace('| 0.95 |', '| 0.9 |') };
    expect(staleBlocks(changed).map((s) => `${s.file}#${s.name}`)).toEqual(['docs/algorithms.md#options']);
    const more = { ...markdown, fieldsMarkdown: () => `${fieldsMarkdown()}\n| \`extra\` | | | | |` };
    expect(staleBlocks(more).map((s) => `${s.file}#${s.name}`)).toEqual(['docs/library.md#fields']);
  });

  it('rewrites only between the markers, and needs both', () => {
    const text = 'a\n<!-- t:start -->\nold\n<!-- t:end -->\nb\n';
    expect(replaceBlock(text, 't', 'new\nrows\n')).toBe('a\n<!-- t:start -->\nnew\nrows\n<!-- t:end -->\nb\n');
    expect(between(replaceBlock(text, 't', 'x'), 't').body).toBe('x');
    expect(() => between('a\n<!-- t:start -->\nold\n', 't', 'f.md')).toThrow(/f\.md.*t:end/);
    expect(() => between(`${text}${text}`, 't')).toThrow(/exactly one/);
  });
});
