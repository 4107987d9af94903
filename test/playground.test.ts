/**
 * The playground page in a real browser (Debian's chromium via puppeteer-core) over a real server
 * on 127.0.0.1: the form follows the API's schema, a gmm2d and a fashion-flow search show progress,
 * previews and their results (checked pixel by pixel and value by value against the samples the
 * server returned, numpy and the CLI), a cancelled run is counted aborted by the server, a shape
 * with no picture says so, and a token guards the page.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../src/io/npy';
import { shipped } from '../src/models/shipped';
import { DEFAULTS } from '../src/request/defaults';
import { algorithms } from '../src/search';
import type { DiffusionServer } from '../src/server/server';
import {
  CHROMIUM,
  NO_BROWSER,
  download,
  finished,
  launch,
  openPage,
  requestsTotal,
  run,
  startServer,
} from './playground-helpers';

const SHOTS = path.join(__dirname, '..', 'out', 'playground');
const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
const SEARCH = '.group:first-child .panel[data-algorithm="evosearch"]';
if (!CHROMIUM) console.warn(NO_BROWSER);

describe.skipIf(!CHROMIUM)('playground in chromium', () => {
  let browser: Browser;
  let server: DiffusionServer;
  let base: string;
  const servers: DiffusionServer[] = [];
  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    browser = await launch();
    ({ server, base } = await startServer());
    servers.push(server);
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.all(servers.map((s) => s.close(0)));
  });

  it('builds its form from the API schema: models, algorithms, options with descriptions and defaults', async () => {
    const { page, errors } = await openPage(browser, base);
    const models = await page.$$eval('#model option', (o) => o.map((e) => (e as HTMLOptionElement).value));
    expect(models).toEqual(shipped.filter((m) => m.kind === 'denoiser').map((m) => m.name));
    expect(await page.$eval('#model', (e) => (e as HTMLSelectElement).value)).toBe(DEFAULTS.model);
    expect(await page.$eval('#condition select', (e) => (e as HTMLSelectElement).value)).toBe('Shirt');
    expect(await page.$$eval('#algorithm option', (o) => o.map((e) => e.textContent))).toEqual(Object.keys(algorithms));
    expect(await page.$eval('#algorithm', (e) => (e as HTMLSelectElement).value)).toBe(DEFAULTS.algorithm);
    for (const name of ['evosearch', 'paths']) {
      await page.select('#algorithm', name);
      const shown = await page.$$eval('#options label', (ls) =>
        ls.map((l) => {
          const c = l.querySelector('[name]') as HTMLInputElement;
          return [c.name, l.querySelector('small')?.textContent, c.getAttribute('placeholder')];
        }),
      );
      const specs = Object.entries(algorithms[name as keyof typeof algorithms].options);
      expect(shown.map((s) => s[0])).toEqual(specs.map(([k]) => k));
      for (const [k, spec] of specs) {
        const row = shown.find((s) => s[0] === k)!;
        expect(row[1]).toBe(spec.description);
        if (spec.type !== 'enum' && spec.type !== 'boolean') expect(row[2]).toBe(spec.default ?? '');
      }
    }
    expect(await page.$eval('#fields [name="budget"]', (e) => (e as HTMLInputElement).value)).toBe(
      String(DEFAULTS.budget),
    );
    // A text-conditioned model: a prompt box, its encoder's vocabulary as words to add, unknown words marked.
    await page.select('#model', 'fashion-t2i');
    await page.waitForSelector('#condition input[name="prompt"]');
    const vocab = await page.$$eval('#condition .vocab button', (bs) => bs.map((b) => b.textContent!));
    expect(vocab).toContain('shirt');
    expect(vocab.length).toBeGreaterThan(10);
    await page.$eval('#condition input[name="prompt"]', (e) => ((e as HTMLInputElement).value = ''));
    await page.type('#condition input[name="prompt"]', 'a dark zyzzyva');
    expect(await page.$eval('#condition .unknown', (e) => e.textContent)).toMatch(/: zyzzyva$/);
    await page.click('#condition .vocab button:first-child');
    expect(await page.$eval('#condition input[name="prompt"]', (e) => (e as HTMLInputElement).value)).toBe(
      `a dark zyzzyva ${vocab[0]}`,
    );
    expect(errors).toEqual([]);
    await page.close();
  });

  it('gmm2d: progress and point previews arrive, the scatter shows the samples the API and the CLI give', async () => {
    const { page, errors } = await openPage(browser, base);
    await run(page, {
      model: 'gmm2d',
      algorithm: 'best-of-n',
      fields: { budget: '100', n: '6', seed: '3' },
      compare: true,
    });
    expect(await page.$eval('#condition', (e) => e.textContent)).toContain('unconditional');
    expect(await finished(page)).toEqual({ 'best-of-n': 'done', baseline: 'done' });
    const panel = '.group:first-child .panel[data-algorithm="best-of-n"]';
    expect(Number(await page.$eval(panel, (e) => e.getAttribute('data-previews')))).toBeGreaterThan(0);
    expect(await page.$eval(panel, (e) => e.querySelector('.numbers')?.textContent)).toMatch(/NFE \d+ \/ 600/);
    const npy = await download(page, panel, 'samples.npy');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ds-pg-')), 'page.npy');
    fs.writeFileSync(file, npy);
    const mine = readNpy(file);
    expect(mine.shape).toEqual([6, 2]);
    // numpy reads the page's file as the same float32 values.
    const py = spawnSync(
      '/usr/bin/python3',
      ['-c', 'import numpy,sys,json; print(json.dumps(numpy.load(sys.argv[1]).tolist()))', file],
      {
        encoding: 'utf8',
      },
    );
    expect(py.status, py.stderr).toBe(0);
    expect(new Float32Array((JSON.parse(py.stdout) as number[][]).flat())).toEqual(mine.data);
    // The API answers the same request with the same samples.
    const body = { model: 'gmm2d', algorithm: 'best-of-n', budget: 100, n: 6, seed: 3, guidance: 1 };
    const api = await (
      await fetch(`${base}/v1/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    ).json();
    const b = Buffer.from(api.samples, 'base64');
    const apiSamples = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
    apiSamples.forEach((v, i) => expect(mine.data[i]).toBeCloseTo(v, 5));
    // Every point is drawn dark over the light density, where it lies.
    const pixels = await page.$eval(
      `${panel} canvas.scatter`,
      (c, pts) => {
        const ctx = (c as HTMLCanvasElement).getContext('2d')!;
        const at = (v: number) => ((v + 4.5) / 9) * 299;
        return (pts as number[][]).map(
          ([x, y]) => ctx.getImageData(Math.round(at(x)), Math.round(299 - at(y)), 1, 1).data[0],
        );
      },
      Array.from({ length: 6 }, (_, i) => [mine.data[2 * i], mine.data[2 * i + 1]]),
    );
    for (const p of pixels) expect(p).toBeLessThan(80);
    // The command line the page offers reproduces the run.
    const line = await page.$eval(`${panel} code.cli`, (e) => e.textContent!);
    expect(line).toMatch(
      /^diffusion-search generate --model gmm2d .*--algorithm best-of-n --budget 100 --n 6 --seed 3/,
    );
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-pg-cli-'));
    const r = spawnSync('bash', ['-c', line.replace(/^diffusion-search/, `'${process.execPath}' '${cli}'`)], {
      cwd,
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const fromCli = readNpy(path.join(cwd, 'out', 'best-of-n-seed3', 'samples.npy'));
    fromCli.data.forEach((v, i) => expect(mine.data[i]).toBeCloseTo(v, 5));
    await page.screenshot({ path: path.join(SHOTS, 'gmm2d.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('fashion-flow: image previews mid-search, final images as returned, repeat with another algorithm', async () => {
    const { page, errors } = await openPage(browser, base);
    await run(page, { fields: { budget: '200', n: '2' } });
    await page.waitForFunction(
      (p) => [...document.querySelectorAll(`${p} .live img`)].some((i) => (i as HTMLImageElement).naturalWidth > 0),
      { timeout: 60_000 },
      SEARCH,
    );
    await page.screenshot({ path: path.join(SHOTS, 'fashion-mid-search.png') });
    expect(await page.$eval(SEARCH, (e) => e.querySelector('.numbers')?.textContent)).toMatch(
      /NFE \d+ \/ 400 · elapsed .* sample \d of 2/,
    );
    expect(await finished(page)).toEqual({ evosearch: 'done', baseline: 'done' });
    const npy = await download(page, SEARCH, 'samples.npy');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ds-pg-')), 'page.npy');
    fs.writeFileSync(file, npy);
    const { data, shape } = readNpy(file);
    expect(shape).toEqual([2, 1, 28, 28]);
    // Each final image: value v at (y, x) is the gray round(255 (v + 1) / 2) on its 4×4 block.
    const grays = await page.$$eval(`${SEARCH} .result canvas`, (cs) =>
      cs.map((c) => {
        const d = (c as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, 112, 112).data;
        return Array.from({ length: 784 }, (_, i) => d[(Math.floor(i / 28) * 4 * 112 + (i % 28) * 4) * 4]);
      }),
    );
    expect(grays.length).toBe(2);
    grays.flat().forEach((g, i) => expect(g).toBe(Math.max(0, Math.min(255, Math.round((255 * (data[i] + 1)) / 2)))));
    await page.waitForSelector(`${SEARCH} a[download="grid.png"]`);
    const report = JSON.parse((await download(page, SEARCH, 'report.json')).toString());
    expect(report).toMatchObject({ algorithm: 'evosearch', class_name: 'Shirt', budget: 200, n: 2 });
    expect(await page.$eval(SEARCH, (e) => e.querySelector('.summary')?.textContent)).toContain(
      `NFE ${report.nfe_used}`,
    );
    await page.select('.group:first-child .repeat-algorithm', 'best-of-n');
    await page.click('.group:first-child .repeat-run');
    await page.waitForSelector('.group:first-child .panel[data-algorithm="best-of-n"]');
    expect(await finished(page)).toEqual({ evosearch: 'done', baseline: 'done', 'best-of-n': 'done' });
    const again = await page.$eval(
      '.group:first-child .panel[data-algorithm="best-of-n"] code.cli',
      (e) => e.textContent,
    );
    expect(again).toContain('--class Shirt --algorithm best-of-n --budget 200 --n 2 --seed 0');
    await page.screenshot({ path: path.join(SHOTS, 'fashion-done.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it("a refused request shows the server's message in its panel", async () => {
    const { page, errors } = await openPage(browser, base);
    await run(page, { fields: { budget: '5', n: '1' }, compare: false });
    expect(await finished(page)).toEqual({ evosearch: 'failed' });
    expect(await page.$eval('.group:first-child .panel .error', (e) => e.textContent)).toMatch(
      /^BUDGET: evosearch: a budget of 5 NFE is too small/,
    );
    expect(errors).toEqual([]);
    await page.close();
  });

  it('cancel closes the stream: the server counts the request aborted and frees it', async () => {
    const { page } = await openPage(browser, base);
    const before = await requestsTotal(base, 'aborted');
    await run(page, {
      algorithm: 'best-of-n',
      options: { batch: '4' },
      fields: { budget: '50000', n: '1' },
      compare: false,
    });
    const panel = '.group:first-child .panel[data-algorithm="best-of-n"]';
    await page.waitForFunction(
      (p) => /NFE [1-9]/.test(document.querySelector(`${p} .numbers`)?.textContent ?? ''),
      {},
      panel,
    );
    await page.click(`${panel} button`);
    expect(await finished(page)).toEqual({ 'best-of-n': 'cancelled' });
    const t = Date.now();
    while ((await requestsTotal(base, 'aborted')) === before && Date.now() - t < 15_000)
      await new Promise((r) => setTimeout(r, 100));
    expect(await requestsTotal(base, 'aborted')).toBe(before + 1);
    const health = await (await fetch(`${base}/healthz`)).json();
    expect(health.activeRequests).toBe(0);
    await page.close();
  });

  it('a shape it cannot draw says so (a 16-value model scored by a remote grader)', async () => {
    const grader = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const r = JSON.parse(body);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ ids: r.ids, scores: r.ids.map((id: number) => -id) }));
      });
    });
    await new Promise<void>((r) => grader.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(grader.address() as { port: number }).port}`;
    const modelsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-pg-models-'));
    fs.copyFileSync(path.join(__dirname, 'fixtures', 'tiny.pt'), path.join(modelsDir, 'tiny.pt'));
    const s = await startServer({ modelsDir, allowRemoteVerifiers: [origin] });
    servers.push(s.server);
    try {
      const { page, errors } = await openPage(browser, s.base);
      await page.$eval('#fields details', (d) => ((d as HTMLDetailsElement).open = true));
      await run(page, {
        model: 'tiny.pt',
        algorithm: 'best-of-n',
        fields: { budget: '40', n: '1', verifier: `${origin}/score` },
        compare: false,
      });
      expect(await finished(page)).toEqual({ 'best-of-n': 'done' });
      const panel = '.group:first-child .panel';
      expect(Number(await page.$eval(panel, (e) => e.getAttribute('data-previews')))).toBeGreaterThan(0);
      expect(await page.$$eval(`${panel} .nopreview`, (es) => es.map((e) => e.textContent))).toContain(
        'no preview for this shape [16]',
      );
      expect(await page.$$eval(`${panel} img`, (is) => is.length)).toBe(0);
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      grader.close();
    }
  });

  it('with a token: 401 without it, a wrong one refused, /?token= signs in and the page runs', async () => {
    const token = `t-${Math.random().toString(36).slice(2)}`;
    const s = await startServer({ token });
    servers.push(s.server);
    const page = await browser.newPage();
    expect((await page.goto(s.base))!.status()).toBe(401);
    expect((await page.goto(`${s.base}/ui/app.mjs`))!.status()).toBe(401);
    expect((await page.goto(`${s.base}/?token=nope`))!.status()).toBe(401);
    expect((await fetch(`${s.base}/v1/schema`)).status).toBe(401);
    await page.goto(`${s.base}/?token=${token}`);
    expect(page.url()).toBe(`${s.base}/`);
    await page.waitForSelector('body[data-ready="true"]');
    await run(page, { model: 'gmm2d', algorithm: 'best-of-n', fields: { budget: '40', n: '2' }, compare: false });
    expect(await finished(page)).toEqual({ 'best-of-n': 'done' });
    expect((await fetch(`${s.base}/v1/schema`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    await page.close();
  });
});
