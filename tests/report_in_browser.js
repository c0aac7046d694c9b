// Opens a report.html in headless Chromium (playwright-core) with the network off, waits for its
// plots, sorts the job table by one column both ways, measures the page and its tables at window
// widths of 1400 and 1000 px, saves a screenshot at each and writes what it saw as JSON for
// test_report_browser to judge.
// Usage: NODE_PATH=report_assets/node_modules node report_in_browser.js CHROMIUM HTML SCREENSHOT OUT_JSON [COLUMN]
'use strict';
const fs = require('fs');
const path = require('path');
const { pathToFileURL } = require('url');
const { chromium } = require('playwright-core');

async function main() {
  const [chromiumPath, htmlPath, screenshotPath, outPath, column = 'EV'] = process.argv.slice(2);
  const pageUrl = pathToFileURL(path.resolve(htmlPath)).href;
  const seen = { consoleErrors: [], consoleWarnings: [], pageErrors: [], requests: [], plots: [], sorted: {} };

  const browser = await chromium.launch({ executablePath: chromiumPath });
  try {
    const context = await browser.newContext({ offline: true, viewport: { width: 1400, height: 1000 } });
    // Every request but the page itself is recorded and refused.
    await context.route('**/*', (route) => (route.request().url() === pageUrl ? route.continue() : route.abort()));
    const page = await context.newPage();
    page.on('request', (request) => {
      if (request.url() !== pageUrl) seen.requests.push(request.url());
    });
    page.on('console', (message) => {
      if (message.type() === 'error') seen.consoleErrors.push(message.text());
      if (message.type() === 'warning') seen.consoleWarnings.push(message.text());
    });
    page.on('pageerror', (error) => seen.pageErrors.push(String(error)));

    await page.goto(pageUrl);
    await page.waitForFunction(() => document.body.dataset.plots !== undefined, null, { timeout: 60000 });
    seen.plotsState = await page.evaluate(() => document.body.dataset.plots);
    seen.title = await page.title();
    seen.verdicts = await page.$$eval('ul.verdicts li', (items) => items.map((li) => li.textContent));
    seen.specIds = await page.evaluate(() =>
      JSON.parse(document.getElementById('sweep-plots').textContent).map((p) => p.id));
    // Per plot: its SVGs, canvases, and the items of each kind of data mark (Vega's g.role-mark groups).
    seen.plots = await page.$$eval('div.plot', (divs) => divs.map((div) => {
      const marks = {};
      for (const group of div.querySelectorAll('svg g.role-mark')) {
        const kind = Array.from(group.classList).find((c) => c.startsWith('mark-'));
        marks[kind] = (marks[kind] || 0) + group.childElementCount;
      }
      return { id: div.id, svgs: div.querySelectorAll('svg').length, canvases: div.querySelectorAll('canvas').length,
               marks };
    }));

    const header = page.locator('table.jobs thead th', { hasText: new RegExp('^' + column + '$') });
    const columnIndex = await header.evaluate((th) => th.cellIndex);
    const readColumn = () => page.$$eval('table.jobs tbody tr', (rows, i) =>
      rows.map((row) => (row.cells[i].dataset.sort === undefined ? null : Number(row.cells[i].dataset.sort))),
    columnIndex);
    await header.click();
    seen.sorted.ascending = await readColumn();
    await header.click();
    seen.sorted.descending = await readColumn();

    // Per window width: the page's width, and per table its box's and its own width and the most
    // lines of text any of its number cells takes.
    const measure = () => page.evaluate(() => ({
      pageWidth: document.documentElement.scrollWidth,
      tables: Array.from(document.querySelectorAll('div.table-box')).map((box) => {
        const table = box.querySelector('table');
        let maxLines = 0;
        for (const cell of table.querySelectorAll('tbody td:not(.text):not(.reason)')) {
          const range = document.createRange();
          range.selectNodeContents(cell);
          const tops = new Set(Array.from(range.getClientRects()).filter((r) => r.width > 0).map((r) => Math.round(r.top)));
          maxLines = Math.max(maxLines, tops.size);
        }
        return { name: table.classList[0], boxWidth: box.getBoundingClientRect().width, tableWidth: table.scrollWidth, maxLines };
      }),
    }));
    seen.layout = {};
    for (const width of [1400, 1000]) {
      await page.setViewportSize({ width, height: 1000 });
      seen.layout[width] = await measure();
      const shot = width === 1400 ? screenshotPath : screenshotPath.replace(/\.png$/, '_' + width + '.png');
      await page.screenshot({ path: shot, fullPage: true });
    }
  } finally {
    await browser.close();
  }
  fs.writeFileSync(outPath, JSON.stringify(seen, null, 2));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
