/**
 * The playground's browser tests: Debian's chromium driven by puppeteer-core over a real server on
 * 127.0.0.1. CHROMIUM_PATH names another binary; without one the tests skip and say why.
 */
import fs from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { createEngine } from '../src/engine/engine';
import { createServer, type DiffusionServer, type ServerOptions } from '../src/server/server';

export const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (p): p is string => !!p && fs.existsSync(p),
);
export const NO_BROWSER =
  'no chromium found (apt-get install -y chromium, or set CHROMIUM_PATH): the playground browser tests skip';

export function launch(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'],
  });
}

/** A server with the page on, on a free port of 127.0.0.1. */
export async function startServer(o: ServerOptions = {}): Promise<{ server: DiffusionServer; base: string }> {
  const server = createServer(createEngine({ searchesPerRequest: 8 }), { ui: true, ...o });
  const addr = await server.listen(0, '127.0.0.1');
  return { server, base: `http://127.0.0.1:${addr.port}` };
}

/** Opens the page and waits until its form is built; page errors fail the test that reads `errors`. */
export async function openPage(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.setViewport({ width: 1200, height: 820 });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  return { page, errors };
}

export interface FormSettings {
  model?: string;
  algorithm?: string;
  /** Request fields by name (budget, n, seed, guidance, steps, verifier, …). */
  fields?: Record<string, string>;
  /** The algorithm's options by name. */
  options?: Record<string, string>;
  compare?: boolean;
}

/** Fills the form as a user would and presses Run; the new group of panels is the first in #runs. */
export async function run(page: Page, s: FormSettings): Promise<void> {
  if (s.model) {
    await page.select('#model', s.model);
    await page.waitForFunction((m) => document.querySelector('#model')?.getAttribute('data-shown') === m, {}, s.model);
  }
  if (s.algorithm) await page.select('#algorithm', s.algorithm);
  for (const [name, value] of Object.entries(s.options ?? {}))
    await page.$eval(`#options [name="${name}"]`, (e, v) => ((e as HTMLInputElement).value = v), value);
  for (const [name, value] of Object.entries(s.fields ?? {}))
    await page.$eval(`#fields [name="${name}"]`, (e, v) => ((e as HTMLInputElement).value = v), value);
  if (s.compare !== undefined) await page.$eval('#compare', (e, v) => ((e as HTMLInputElement).checked = v), s.compare);
  const before = await page.$$eval('.group', (g) => g.length);
  await page.click('#run');
  await page.waitForFunction((n) => document.querySelectorAll('.group').length === n + 1, {}, before);
}

/** Waits until every panel of the newest group has left 'running'; their states by algorithm. */
export async function finished(page: Page, timeout = 60_000): Promise<Record<string, string>> {
  await page.waitForFunction(
    () =>
      [...document.querySelectorAll('.group:first-child .panel')].every(
        (p) => p.getAttribute('data-state') !== 'running',
      ),
    { timeout },
  );
  return page.$$eval('.group:first-child .panel', (ps) =>
    Object.fromEntries(ps.map((p) => [p.getAttribute('data-algorithm'), p.getAttribute('data-state')])),
  );
}

/** The bytes of a download link of a panel (by its file name). */
export async function download(page: Page, panel: string, name: string): Promise<Buffer> {
  const b64 = await page.$eval(`${panel} a[download="${name}"]`, async (a) => {
    const buf = new Uint8Array(await (await fetch((a as HTMLAnchorElement).href)).arrayBuffer());
    let s = '';
    for (const x of buf) s += String.fromCharCode(x);
    return btoa(s);
  });
  return Buffer.from(b64, 'base64');
}

/** The Prometheus counter of requests with this outcome (0 when absent). */
export async function requestsTotal(base: string, outcome: string, headers: Record<string, string> = {}) {
  const text = await (await fetch(`${base}/metrics`, { headers })).text();
  const m = new RegExp(`diffusion_search_requests_total\\{outcome="${outcome}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}
