/** A small SVG line chart: several series against a log-scale x axis, with axes, ticks and a legend. */

export interface Series {
  name: string;
  points: Array<[number, number]>;
  /** Half-heights of error bars, one per point (null: no bar). */
  errors?: Array<number | null>;
}

/** A series' finite points on the log axis with their error half-heights (0: none), sorted by x. */
function plotted(s: Series): Array<[number, number, number]> {
  return s.points
    .map(([x, y], i) => [x, y, s.errors?.[i] ?? 0] as [number, number, number])
    .filter(([x, y, e]) => x > 0 && Number.isFinite(y) && Number.isFinite(e))
    .sort((a, b) => a[0] - b[0]);
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? step0;
  const out: number[] = [];
  for (let i = Math.ceil(lo / step); i * step <= hi + 1e-9 * step; i++) out.push(+(i * step).toPrecision(12) || 0);
  return out;
}

/** A vertical bar with short caps from screen y `lo` to `hi` at screen x `x`. */
function errorBar(x: number, lo: number, hi: number, color: string): string {
  const [a, b, l, r] = [lo.toFixed(1), hi.toFixed(1), (x - 4).toFixed(1), (x + 4).toFixed(1)];
  const xs = x.toFixed(1);
  return (
    `<path class="error-bar" d="M${xs},${a}V${b}M${l},${a}H${r}M${l},${b}H${r}" stroke="${color}" ` +
    'stroke-width="1.5" fill="none"/>'
  );
}

/** One panel; `x` on a log axis. Returns the SVG elements (a <g>) for a panel at (ox, oy). */
function panel(
  series: Series[],
  o: { title: string; ylabel: string; xlabel: string; ox: number; oy: number; w: number; h: number },
): string {
  const pts = series.flatMap(plotted);
  const xs = pts.map((p) => Math.log10(p[0])),
    ys = pts.flatMap((p) => [p[1] - p[2], p[1] + p[2]]);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) (x0 -= 0.5), (x1 += 0.5);
  if (y0 === y1) (y0 -= 1), (y1 += 1);
  const pad = (y1 - y0) * 0.08;
  (y0 -= pad), (y1 += pad);
  const L = 70,
    R = 20,
    T = 40,
    B = 55;
  const pw = o.w - L - R,
    ph = o.h - T - B;
  const X = (x: number) => o.ox + L + ((Math.log10(x) - x0) / (x1 - x0)) * pw;
  const Y = (y: number) => o.oy + T + (1 - (y - y0) / (y1 - y0)) * ph;
  const parts: string[] = [];
  parts.push(
    `<text x="${o.ox + o.w / 2}" y="${o.oy + 24}" text-anchor="middle" font-size="16" ` +
      `font-weight="bold">${esc(o.title)}</text>`,
  );
  parts.push(`<rect x="${o.ox + L}" y="${o.oy + T}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  const decades = [];
  for (let e = Math.floor(x0); e <= Math.ceil(x1); e++) for (const m of [1, 2, 5]) decades.push(m * 10 ** e);
  for (const t of decades.filter((t) => Math.log10(t) >= x0 - 1e-9 && Math.log10(t) <= x1 + 1e-9)) {
    parts.push(`<line x1="${X(t)}" x2="${X(t)}" y1="${o.oy + T}" y2="${o.oy + T + ph}" stroke="#ddd"/>`);
    parts.push(`<text x="${X(t)}" y="${o.oy + T + ph + 18}" text-anchor="middle" font-size="12">${t}</text>`);
  }
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${o.ox + L}" x2="${o.ox + L + pw}" y1="${Y(t)}" y2="${Y(t)}" stroke="#eee"/>`);
    parts.push(
      `<text x="${o.ox + L - 6}" y="${Y(t) + 4}" text-anchor="end" font-size="12">${+t.toPrecision(4)}</text>`,
    );
  }
  parts.push(
    `<text x="${o.ox + L + pw / 2}" y="${o.oy + o.h - 12}" text-anchor="middle" font-size="13">${esc(o.xlabel)}</text>`,
  );
  parts.push(
    `<text transform="translate(${o.ox + 16},${o.oy + T + ph / 2}) rotate(-90)" text-anchor="middle" ` +
      `font-size="13">${esc(o.ylabel)}</text>`,
  );
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const p = plotted(s);
    if (p.length)
      parts.push(
        `<polyline fill="none" stroke="${c}" stroke-width="2" ` +
          `points="${p.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`,
      );
    for (const [x, y, e] of p) {
      parts.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3.5" fill="${c}"/>`);
      if (e > 0) parts.push(errorBar(X(x), Y(y - e), Y(y + e), c));
    }
  });
  return parts.join('\n');
}

/** Panels side by side, sharing one legend (the series names of the first panel). */
export function lineChartSvg(
  panels: Array<{ title: string; ylabel: string; series: Series[] }>,
  xlabel: string,
): string {
  const w = 520,
    h = 380,
    legendW = 170;
  const width = panels.length * w + legendW,
    height = h;
  const body = panels
    .map((p, i) => panel(p.series, { title: p.title, ylabel: p.ylabel, xlabel, ox: i * w, oy: 0, w, h }))
    .join('\n');
  const legend = (panels[0]?.series ?? [])
    .map((s, i) => {
      const y = 60 + i * 24,
        x = panels.length * w + 10;
      return (
        `<line x1="${x}" x2="${x + 24}" y1="${y}" y2="${y}" stroke="${COLORS[i % COLORS.length]}" ` +
        `stroke-width="3"/><text x="${x + 32}" y="${y + 4}" font-size="13">${esc(s.name)}</text>`
      );
    })
    .join('\n');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ` +
    `${height}" font-family="sans-serif">\n<rect width="100%" height="100%" ` +
    `fill="white"/>\n${body}\n${legend}\n</svg>\n`
  );
}
