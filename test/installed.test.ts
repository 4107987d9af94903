/**
 * The README's and docs' snippets and commands, run as a new user runs them: from a fresh project that
 * installed the packed tarball, far from this repository's working directory.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const root = path.join(__dirname, '..');
const addon = path.join(root, 'build', 'Release', 'ds_native.node');
let project = '';

/** The code block that follows `marker` in `doc` (README.md, or a page of docs/). */
function snippet(marker: string, doc = 'README.md'): string {
  const text = fs.readFileSync(path.join(root, doc), 'utf8');
  const at = text.indexOf(marker);
  expect(at, `${doc} has no '${marker}'`).toBeGreaterThanOrEqual(0);
  const m = /```(?:ts|sh)\n([\s\S]*?)```/.exec(text.slice(at));
  return m![1];
}

describe.skipIf(!fs.existsSync(addon))('installed from the packed tarball', () => {
  beforeAll(() => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-installed-'));
    const tgz = execFileSync('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', work], {
      cwd: root,
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
      .pop()!;
    project = path.join(work, 'app');
    fs.mkdirSync(project);
    fs.writeFileSync(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'app', version: '1.0.0', private: true }),
    );
    // The install hook would compile or pick a prebuild; the test gives it this checkout's build instead.
    execFileSync(
      'npm',
      ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', path.join(work, tgz)],
      { cwd: project, stdio: 'pipe' },
    );
    const release = path.join(project, 'node_modules', 'diffusion-search', 'build', 'Release');
    fs.mkdirSync(release, { recursive: true });
    fs.copyFileSync(addon, path.join(release, 'ds_native.node'));
  }, 300_000);

  it("the library's building-blocks snippet runs as written (shipped models by name)", () => {
    const code = snippet('For your own loops:', path.join('docs', 'library.md'));
    fs.writeFileSync(path.join(project, 'pieces.mjs'), code);
    const r = spawnSync(process.execPath, ['pieces.mjs'], { cwd: project, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    // The snippet logs progress, then the reward, the NFE used and the trace of the search.
    expect(r.stdout).toMatch(/\d+ -?\d/);
  });

  it('package-relative shipped paths and exported registry work from the project', () => {
    const code = `
      const ds = require('diffusion-search');
      (async () => {
        const a = await ds.Denoiser.load('models/gmm2d.pt');
        const b = await ds.loadModule('fashion-flow');
        const shipped = ds.shipped.map((m) => m.name);
        const file = ds.resolveModel('gmm2d').file;
        console.log(JSON.stringify({ shape: a.sampleShape, flow: b.card.name, shipped, file }));
      })().catch((e) => { console.error(e); process.exit(3); });`;
    const r = spawnSync(process.execPath, ['-e', code], { cwd: project, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.shape).toEqual([2]);
    expect(out.shipped).toContain('fashion-flow');
    expect(out.file).toBe(path.join(project, 'node_modules', 'diffusion-search', 'models', 'gmm2d.pt'));
  });

  it('the CLI through npx: models lists the classes, generate writes its files', () => {
    const models = spawnSync('npx', ['diffusion-search', 'models'], { cwd: project, encoding: 'utf8' });
    expect(models.status, models.stderr).toBe(0);
    expect(models.stdout).toMatch(/fashion-flow.*node_modules\/diffusion-search\/models\/fashion-flow\.pt/);
    expect(models.stdout).toMatch(/classes: 0 T-shirt\/top, 1 Trouser.*6 Shirt/);
    const gen = spawnSync(
      'npx',
      [
        'diffusion-search',
        'generate',
        '--model',
        'gmm2d',
        '--budget',
        '100',
        '--n',
        '2',
        '--steps',
        '10',
        '--out',
        'out',
      ],
      { cwd: project, encoding: 'utf8' },
    );
    expect(gen.status, gen.stderr).toBe(0);
    for (const f of ['report.json', 'samples.npy', 'grid.png'])
      expect(fs.existsSync(path.join(project, 'out', f))).toBe(true);
  });
});
