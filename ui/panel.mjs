// One run on the page: its live view over the SSE stream (progress, best reward over NFE, the
// current best samples), then its result, numbers and downloads. Cancel closes the stream.
import { streamGenerate } from './api.mjs';
import { decodeFloats, drawChart, drawScatter, imageCanvas, imageShape, isPoint } from './draw.mjs';
import { commandLine, downloadLink, gridCanvas, jsonBlob, npy, textBlob } from './files.mjs';

const el = (tag, props = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
};
const secs = (s) => (s < 10 ? `${s.toFixed(1)} s` : `${Math.round(s)} s`);

export class RunPanel {
  constructor(request, { schema, model }) {
    this.request = request;
    this.schema = schema;
    this.model = model;
    this.points = new Map();
    this.chart = new Map();
    this.previews = 0;
    this.root = el('article', { className: 'panel' });
    this.root.dataset.algorithm = request.algorithm;
    this.state = el('span', { className: 'state' });
    this.cancel = el('button', { type: 'button', className: 'secondary', textContent: 'Cancel' });
    this.cancel.addEventListener('click', () => this.ctl.abort());
    const label = request.algorithm === 'baseline' ? 'plain sampling (baseline)' : request.algorithm;
    this.root.append(el('h3', {}, el('span', { textContent: label }), this.state, this.cancel));
    this.bar = el('div');
    this.numbers = el('div', { className: 'numbers' });
    this.canvas = el('canvas', { className: 'chart', title: 'best reward against NFE, one line per sample' });
    this.caption = el('div', {
      className: 'numbers',
      textContent: 'best reward so far against NFE, a line per sample',
    });
    this.live = el('div', { className: 'tiles live' });
    this.final = el('div', { className: 'final' });
    this.summary = el('div', { className: 'summary' });
    this.downloads = el('div', { className: 'downloads' });
    this.root.append(el('div', { className: 'bar' }, this.bar), this.numbers, this.canvas, this.caption, this.live);
    this.root.append(this.final, this.summary, this.downloads);
  }

  setState(name, text) {
    this.root.dataset.state = name;
    this.state.className = `state ${name}`;
    this.state.textContent = text;
  }

  async run() {
    this.ctl = new AbortController();
    this.started = performance.now();
    this.setState('running', 'starting…');
    // Until the first progress event (the model loading, a first round of rollouts), the clock still moves.
    const tick = setInterval(() => {
      if (!this.progressed && this.root.dataset.state === 'running')
        this.numbers.textContent = `elapsed ${secs((performance.now() - this.started) / 1000)} · first round running`;
    }, 250);
    try {
      const result = await streamGenerate(this.request, {
        signal: this.ctl.signal,
        onProgress: (p) => this.progress(p),
      });
      this.showResult(result);
    } catch (e) {
      if (e.name === 'AbortError') this.setState('cancelled', 'cancelled');
      else {
        this.setState('failed', 'failed');
        this.final.append(el('p', { className: 'error', textContent: `${e.code ?? 'ERROR'}: ${e.message}` }));
      }
    } finally {
      clearInterval(tick);
      this.cancel.disabled = true;
    }
  }

  progress(p) {
    this.progressed = true;
    const elapsed = (performance.now() - this.started) / 1000;
    const frac = Math.min(1, p.nfe / p.budget);
    this.bar.style.width = `${(100 * frac).toFixed(1)}%`;
    const left = p.nfe > 0 ? (elapsed * (p.budget - p.nfe)) / p.nfe : NaN;
    this.numbers.textContent =
      `NFE ${p.nfe} / ${p.budget} · elapsed ${secs(elapsed)}` +
      (Number.isFinite(left) ? ` · about ${secs(left)} left` : '') +
      ` · sample ${p.sample + 1} of ${p.samples}`;
    this.setState('running', 'searching');
    if (Number.isFinite(p.best)) {
      const line = this.chart.get(p.sample) ?? [];
      line.push([p.sample_nfe, p.best]);
      this.chart.set(p.sample, line);
      const hue = this.request.algorithm === 'baseline' ? null : 220;
      const color = (k) => (hue === null ? '#8a94a3' : `hsl(${hue + 25 * k}, 65%, ${40 + (k % 4) * 8}%)`);
      drawChart(
        this.canvas,
        [...this.chart].map(([k, points]) => ({ points, color: color(k) })),
      );
    }
    if (p.preview) this.showPreview(p.sample, p.preview);
  }

  showPreview(k, pv) {
    this.previews++;
    this.root.dataset.previews = String(this.previews);
    if (pv.png) {
      let tile = this.live.querySelector(`[data-sample="${k}"]`);
      if (!tile) {
        tile = el('div', { className: 'tile' }, el('img', { alt: `current best of sample ${k + 1}` }), el('span'));
        tile.dataset.sample = String(k);
        this.live.append(tile);
        [...this.live.children].sort((a, b) => a.dataset.sample - b.dataset.sample).forEach((t) => this.live.append(t));
      }
      tile.querySelector('img').src = `data:image/png;base64,${pv.png}`;
      tile.querySelector('span').textContent = `#${k + 1} ${pv.reward.toFixed(3)}`;
    } else if (pv.values && pv.values.length === 2) {
      this.points.set(k, pv.values);
      this.scatter(this.live, [...this.points.values()]);
    } else this.noPreview(this.live, pv.shape);
  }

  scatter(box, points, faded = []) {
    let canvas = box.querySelector('canvas.scatter');
    if (!canvas) {
      canvas = el('canvas', { className: 'scatter', width: 300, height: 300 });
      const note = this.model.target ? 'blue: the model’s prior · orange: the target the reward tilts it to' : '';
      box.replaceChildren(canvas, el('div', { className: 'numbers', textContent: note }));
    }
    const m = this.model;
    drawScatter(canvas, { points, faded, prior: m.prior, target: m.target, centre: m.reward?.c });
  }

  noPreview(box, shape) {
    if (box.querySelector('.nopreview')) return;
    box.replaceChildren(
      el('p', { className: 'nopreview', textContent: `no preview for this shape [${shape.join(', ')}]` }),
    );
  }

  showResult(r) {
    const rep = r.report;
    this.setState(r.complete ? 'done' : 'partial', r.complete ? 'done' : 'partial (cancelled)');
    this.bar.style.width = '100%';
    const total = (this.request.budget ?? this.schema.defaults.budget) * r.report.n;
    this.numbers.textContent = `NFE ${rep.nfe_used} / ${total} · ${secs(rep.wall_seconds)} · done`;
    const data = decodeFloats(r.samples);
    const per = r.shape.slice(1);
    const size = per.reduce((a, b) => a * b, 1);
    this.final.replaceChildren();
    const img = imageShape(per);
    if (img) {
      const tiles = el('div', { className: 'tiles result' });
      for (let i = 0; i < r.shape[0]; i++) {
        const c = imageCanvas(data.subarray(i * size, (i + 1) * size), img, r.value_range);
        tiles.append(el('div', { className: 'tile' }, c, el('span', { textContent: r.rewards[i].toFixed(3) })));
      }
      this.live.replaceChildren();
      this.final.append(tiles);
    } else if (isPoint(per)) {
      const pts = Array.from({ length: r.shape[0] }, (_, i) => [data[2 * i], data[2 * i + 1]]);
      this.scatter(this.live, pts);
    } else this.noPreview(this.final, per);
    this.showSummary(r, rep);
    this.showDownloads(r, data);
  }

  showSummary(r, rep) {
    const best = Math.max(...r.rewards);
    const mean = r.rewards.reduce((a, b) => a + b, 0) / r.rewards.length;
    const ev = rep.eval ? ` · eval accuracy ${(100 * rep.eval.accuracy).toFixed(0)} %` : '';
    this.summary.textContent =
      `reward best ${best.toFixed(3)}, mean ${mean.toFixed(3)} · NFE ${rep.nfe_used} · ` +
      `${secs(rep.wall_seconds)}${ev}`;
    this.root.dataset.reward = String(mean);
  }

  showDownloads(r, data) {
    const d = this.downloads;
    const grid = gridCanvas(data, r.shape, r.value_range);
    if (grid) grid.toBlob((b) => d.prepend(downloadLink('grid.png', b)));
    else if (this.live.querySelector('canvas.scatter'))
      this.live.querySelector('canvas.scatter').toBlob((b) => d.prepend(downloadLink('scatter.png', b)));
    d.append(downloadLink('samples.npy', npy(data, r.shape)), downloadLink('report.json', jsonBlob(r.report)));
    d.append(downloadLink('config.json', jsonBlob(r.report.config)));
    const line = commandLine(this.request, this.schema);
    d.append(downloadLink('command.sh', textBlob(line)), el('code', { className: 'cli', textContent: line }));
  }
}
