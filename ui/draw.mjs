// Drawing on canvases: samples as images, 2-D points over a model's prior density, and the
// best reward over NFE.

/** Float32 samples from the API's base64 (little-endian, as every browser's typed arrays are here). */
export function decodeFloats(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

/** [C, H, W] of a shape this page draws as an image (a clip: its first frame), else null. */
export function imageShape(s) {
  if (s.length === 2) return [1, s[0], s[1]];
  if (s.length === 3 && (s[0] === 1 || s[0] === 3)) return s;
  if (s.length === 4 && (s[1] === 1 || s[1] === 3)) return s.slice(1);
  return null;
}

/** True for one 2-D point per sample (gmm2d and other toy models): drawn as a scatter. */
export const isPoint = (s) => s.length === 1 && s[0] === 2;

function extent(d) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of d)
    if (Number.isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  return lo <= hi ? [lo, hi] : [0, 1];
}

/** Draws one sample (its first C·H·W values) at `scale` pixels per value into ctx at (ox, oy). */
export function paintImage(ctx, data, [c, h, w], range, scale, ox = 0, oy = 0) {
  const [lo, hi] = range ?? extent(data.subarray(0, c * h * w));
  const img = ctx.createImageData(w * scale, h * scale);
  for (let y = 0; y < h * scale; y++)
    for (let x = 0; x < w * scale; x++) {
      const at = (y * w * scale + x) * 4;
      for (let k = 0; k < 3; k++) {
        const v = data[((c === 3 ? k : 0) * h + Math.floor(y / scale)) * w + Math.floor(x / scale)];
        const u = Math.round((255 * (v - lo)) / (hi - lo || 1));
        img.data[at + k] = Number.isFinite(u) ? Math.max(0, Math.min(255, u)) : 0;
      }
      img.data[at + 3] = 255;
    }
  ctx.putImageData(img, ox, oy);
}

/** A canvas with one sample on it. */
export function imageCanvas(data, shape, range, scale = 4) {
  const [c, h, w] = shape;
  const canvas = document.createElement('canvas');
  canvas.width = w * scale;
  canvas.height = h * scale;
  paintImage(canvas.getContext('2d'), data, [c, h, w], range, scale);
  return canvas;
}

const EXTENT = 4.5;

/** The density of an isotropic Gaussian mixture ({ weights, means, stds }, as cards give them) at (x, y). */
function density(mix, x, y) {
  let p = 0;
  mix.weights.forEach((w, i) => {
    const [mx, my] = mix.means[i];
    const s = mix.stds[i];
    p += (w / (2 * Math.PI * s * s)) * Math.exp(-((x - mx) ** 2 + (y - my) ** 2) / (2 * s * s));
  });
  return p;
}

const isMixture = (m) => Array.isArray(m?.weights) && Array.isArray(m?.means) && Array.isArray(m?.stds);

/** A mixture's density on the canvas' pixels, scaled to 0..1 (square root: faint modes stay visible). */
function shade(mix, size) {
  const grid = new Float64Array(size * size);
  if (!isMixture(mix)) return grid;
  const at = (p) => (p / (size - 1)) * 2 * EXTENT - EXTENT;
  for (let py = 0; py < size; py++)
    for (let px = 0; px < size; px++) grid[py * size + px] = density(mix, at(px), -at(py));
  let top = 0;
  for (const d of grid) top = Math.max(top, d);
  return top > 0 ? grid.map((d) => Math.sqrt(d / top)) : grid;
}

/**
 * Points (arrays of [x, y]) over the model's prior (blue) and, when the card gives it, the target
 * the reward tilts it to (orange), with the reward's centre circled; `faded` points drawn lighter.
 */
export function drawScatter(canvas, { points, faded = [], prior, target, centre }) {
  const size = canvas.width;
  const ctx = canvas.getContext('2d');
  const toPx = (v) => ((v + EXTENT) / (2 * EXTENT)) * (size - 1);
  const img = ctx.createImageData(size, size);
  const [p, q] = [shade(prior, size), shade(target, size)];
  for (let i = 0; i < size * size; i++)
    img.data.set([255 - 70 * p[i] - 5 * q[i], 255 - 40 * p[i] - 70 * q[i], 255 - 5 * p[i] - 150 * q[i], 255], i * 4);
  ctx.putImageData(img, 0, 0);
  ctx.strokeStyle = '#c8ccd2';
  ctx.beginPath();
  ctx.moveTo(toPx(0), 0);
  ctx.lineTo(toPx(0), size);
  ctx.moveTo(0, toPx(0));
  ctx.lineTo(size, toPx(0));
  ctx.stroke();
  if (centre) {
    ctx.strokeStyle = '#d9822b';
    ctx.beginPath();
    ctx.arc(toPx(centre[0]), size - 1 - toPx(centre[1]), 6, 0, 2 * Math.PI);
    ctx.stroke();
  }
  const dot =
    (color, r) =>
    ([x, y]) => {
      ctx.fillStyle = color;
      ctx.beginPath();
      ctx.arc(toPx(x), size - 1 - toPx(y), r, 0, 2 * Math.PI);
      ctx.fill();
    };
  faded.forEach(dot('rgba(40,40,40,0.25)', 2));
  points.forEach(dot('#1d232b', 3));
}

/** Lines of [nfe, reward] points, each { points, color, label }, on shared axes. */
export function drawChart(canvas, series) {
  const ratio = window.devicePixelRatio || 1;
  const W = canvas.clientWidth || 300;
  const H = canvas.clientHeight || 110;
  canvas.width = W * ratio;
  canvas.height = H * ratio;
  const ctx = canvas.getContext('2d');
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, W, H);
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return;
  const [x0, x1] = [0, Math.max(1, ...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (y1 - y0 < 1e-6) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const L = 44;
  const B = 16;
  const px = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - 6);
  const py = (y) => 4 + (1 - (y - y0) / (y1 - y0)) * (H - B - 8);
  ctx.fillStyle = '#5d6875';
  ctx.font = '10px system-ui, sans-serif';
  ctx.fillText(y1.toFixed(3), 2, 12);
  ctx.fillText(y0.toFixed(3), 2, H - B);
  ctx.textAlign = 'right';
  ctx.fillText(`${Math.round(x1)} NFE`, W - 4, H - 3);
  ctx.textAlign = 'left';
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    s.points.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
    ctx.stroke();
    for (const [x, y] of s.points) ctx.fillRect(px(x) - 1.5, py(y) - 1.5, 3, 3);
  }
}
