// What a finished run offers to download: the grid (as the CLI's grid.png lays it out),
// samples.npy, report.json, the config and the equivalent command line.
import { imageShape, paintImage } from './draw.mjs';

/** NumPy's .npy (version 1.0) of float32 samples. */
export function npy(data, shape) {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += `${' '.repeat(pad % 64)}\n`;
  const head = new Uint8Array(10 + header.length);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  head[8] = header.length & 0xff;
  head[9] = header.length >> 8;
  for (let i = 0; i < header.length; i++) head[10 + i] = header.charCodeAt(i);
  return new Blob([head, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)]);
}

/** The samples in a grid: ⌈√n⌉ columns, each value `scale`×`scale` pixels, 1-pixel white gaps. */
export function gridCanvas(data, shape, range, scale = 4) {
  const img = imageShape(shape.slice(1));
  if (!img) return null;
  const [c, h, w] = img;
  const n = shape[0];
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const canvas = document.createElement('canvas');
  canvas.width = cols * (w * scale + 1) + 1;
  canvas.height = rows * (h * scale + 1) + 1;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < n; i++) {
    const sample = data.subarray(i * per, (i + 1) * per);
    paintImage(
      ctx,
      sample,
      [c, h, w],
      range,
      scale,
      1 + (i % cols) * (w * scale + 1),
      1 + Math.floor(i / cols) * (h * scale + 1),
    );
  }
  return canvas;
}

const quote = (v) => (/^[\w./:,=@+-]+$/.test(String(v)) ? String(v) : `'${String(v).replace(/'/g, "'\\''")}'`);

/** The `diffusion-search generate` line that runs the same request (flags from the API's schema). */
export function commandLine(request, schema) {
  const parts = ['diffusion-search', 'generate'];
  for (const [key, value] of Object.entries(request)) {
    if (key === 'preview' || key === 'algorithmOptions' || value === undefined) continue;
    const flag = schema.fields[key]?.flag ?? key;
    for (const v of Array.isArray(value) ? value : [value]) parts.push(`--${flag}`, quote(v));
  }
  const specs = schema.algorithms[request.algorithm]?.options ?? {};
  for (const [key, value] of Object.entries(request.algorithmOptions ?? {})) {
    const flag = specs[key]?.flag ?? key;
    if (value === true) parts.push(`--${flag}`);
    else if (value !== false) parts.push(`--${flag}`, quote(Array.isArray(value) ? value.join(',') : value));
  }
  parts.push('--out', quote(`out/${request.algorithm}-seed${request.seed ?? 0}`));
  return parts.join(' ');
}

/** A download link for a blob (or a canvas, as PNG). */
export function downloadLink(name, blob) {
  const a = document.createElement('a');
  a.textContent = name;
  a.download = name;
  a.href = URL.createObjectURL(blob);
  return a;
}

export const jsonBlob = (v) => new Blob([`${JSON.stringify(v, null, 2)}\n`], { type: 'application/json' });
export const textBlob = (s) => new Blob([`${s}\n`], { type: 'text/plain' });
