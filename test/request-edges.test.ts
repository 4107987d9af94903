/**
 * Small edges of a request: a negative prompt that guidance 1 would
 * ignore, loadVerifier given a plain string, and a failed generate leaving no empty --out.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generate } from '../src/generate';
import { loadVerifier } from '../src/models/registry';
import { createPolicy } from '../src/request/policy';
import { expectCode } from './helpers';

const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');

describe('request edges', () => {
  it('a negative prompt at guidance 1 is ARGUMENT naming guidance > 1; with guidance it runs', async () => {
    const base = {
      model: 'fashion-t2i',
      prompt: 'a shirt',
      negativePrompt: 'a blurry picture',
      algorithm: 'best-of-n' as const,
      budget: 8,
      steps: 4,
      eval: false,
    };
    const e = await expectCode(() => generate(base), 'ARGUMENT');
    expect(e.message).toMatch(/set guidance above 1/);
    await expectCode(() => generate({ ...base, guidance: 1 }), 'ARGUMENT');
    const r = await generate({ ...base, budget: 16, guidance: 2 });
    expect(r.report.negative_prompt).toBe('a blurry picture');
  });

  it("loadVerifier('classifier') (a string, not a list) is a coded ARGUMENT error, not a TypeError", async () => {
    const e = await expectCode(() => loadVerifier('classifier' as never), 'ARGUMENT');
    expect(e.message).toContain(`loadVerifier(["classifier"])`);
  });

  it('a generate that fails leaves no --out directory it created (an existing one stays)', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-edges-'));
    const out = path.join(root, 'new', 'deeper');
    const r = spawnSync(
      process.execPath,
      [cli, 'generate', '--model', 'gmm2d', '--class', '7', '--budget', '50', '--steps', '5', '--out', out],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/unknown class/);
    expect(fs.existsSync(path.join(root, 'new'))).toBe(false);
    expect(fs.existsSync(root)).toBe(true);
    fs.rmSync(root, { recursive: true });
  });

  it(
    'a models directory that is missing or a file is ARGUMENT naming it (library policy, not a raw ' + 'ENOENT)',
    async () => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-policy-'));
      const file = path.join(root, 'file.pt');
      fs.writeFileSync(file, '');
      for (const dir of [path.join(root, 'missing'), file]) {
        const e = await expectCode(() => createPolicy({ modelsDir: dir }), 'ARGUMENT');
        expect(e.message).toContain(dir);
      }
      expect(createPolicy({ modelsDir: root }).modelsDir).toBe(fs.realpathSync(root));
      fs.rmSync(root, { recursive: true });
    },
  );
});
