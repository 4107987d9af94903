#!/usr/bin/env node
// The README's picture of the playground mid-search: the page's defaults (EvoSearch on "Shirt"
// beside plain sampling), shot once the plain run is done and the search has shown previews.
//   node scripts/dev/playground-screenshot.js [out.png]   (needs lib/ built and chromium)
'use strict';
const path = require('node:path');
const puppeteer = require('puppeteer-core');
const { createEngine, createServer } = require('../../lib');

const out = process.argv[2] ?? path.join(__dirname, '..', '..', 'docs', 'playground.png');

async function main() {
  const server = createServer(createEngine(), { ui: true });
  const { port } = await server.listen(0, '127.0.0.1');
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1180, height: 640 });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.click('#run');
    await page.waitForFunction(
      () =>
        document.querySelector('.panel[data-algorithm="baseline"]')?.getAttribute('data-state') === 'done' &&
        document.querySelectorAll('.panel[data-algorithm="evosearch"] .live img').length >= 3 &&
        Number(document.querySelector('.panel[data-algorithm="evosearch"]')?.getAttribute('data-previews')) >= 6,
      { timeout: 120_000 },
    );
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: out });
    console.log(`wrote ${out}`);
  } finally {
    await browser.close();
    await server.close(0);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
