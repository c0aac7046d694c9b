// report.html's own script: draws every plot with the inlined Vega-Lite runtime and sorts the
// job table by the column whose header is clicked.
(function () {
  'use strict';

  // A cell's sort key: in a numeric column (one with data-sort attributes) that number, else the
  // cell's text; null for none, which sorts last.
  function sortKey(row, column, numeric) {
    const cell = row.cells[column];
    if (!cell) return null;
    if (numeric) return cell.dataset.sort === undefined ? null : Number(cell.dataset.sort);
    const text = cell.textContent.trim();
    return text === '' ? null : text;
  }

  function compareKeys(a, b) {
    if (a === null || b === null) return (a === null) - (b === null);
    if (typeof a === 'number' && typeof b === 'number') return a - b;
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  }

  function sortBy(table, header) {
    const column = header.cellIndex;
    const ascending = header.getAttribute('aria-sort') !== 'ascending';
    for (const other of table.tHead.rows[0].cells) other.removeAttribute('aria-sort');
    header.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    const numeric = rows.some((row) => row.cells[column] && row.cells[column].dataset.sort !== undefined);
    rows.sort((r1, r2) => {
      const a = sortKey(r1, column, numeric);
      const b = sortKey(r2, column, numeric);
      if (a === null || b === null) return compareKeys(a, b);  // empty last either way
      return ascending ? compareKeys(a, b) : compareKeys(b, a);
    });
    for (const row of rows) body.appendChild(row);
  }

  function makeSortable(table) {
    for (const header of table.tHead.rows[0].cells) {
      header.tabIndex = 0;
      header.addEventListener('click', () => sortBy(table, header));
      header.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') sortBy(table, header);
      });
    }
  }

  // Every plot, drawn as SVG; body[data-plots] says when all are done ("rendered" or "failed").
  // ast: expressions are interpreted, not compiled with eval, which the page's security policy forbids.
  async function drawPlots() {
    const plots = JSON.parse(document.getElementById('sweep-plots').textContent);
    const drawn = await Promise.allSettled(plots.map((plot) =>
      vegaEmbed('#' + plot.id, plot.spec, { mode: 'vega-lite', renderer: 'svg', actions: false, ast: true })));
    let failed = 0;
    drawn.forEach((outcome, i) => {
      if (outcome.status === 'fulfilled') return;
      failed += 1;
      const message = 'plot ' + plots[i].id + ' could not be drawn: ' + outcome.reason;
      console.error(message);
      document.getElementById(plots[i].id).textContent = message;
    });
    document.body.dataset.plots = failed ? 'failed' : 'rendered';
  }

  document.querySelectorAll('table.sortable').forEach(makeSortable);
  drawPlots();
})();
