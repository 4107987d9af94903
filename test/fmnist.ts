/** Fashion-MNIST test split from Debian's dataset-fashion-mnist (IDX, gzip), scaled to [-1, 1]. */
import fs from 'node:fs';
import zlib from 'node:zlib';

export const FMNIST_DIR = '/usr/share/datasets/fashion-mnist';

export function loadTestSplit(limit: number): { images: Float32Array; labels: number[] } {
  const img = zlib.gunzipSync(fs.readFileSync(`${FMNIST_DIR}/t10k-images-idx3-ubyte.gz`));
  const lab = zlib.gunzipSync(fs.readFileSync(`${FMNIST_DIR}/t10k-labels-idx1-ubyte.gz`));
  if (img.readUInt32BE(0) !== 2051 || lab.readUInt32BE(0) !== 2049) throw new Error('not IDX files');
  const n = Math.min(limit, img.readUInt32BE(4));
  const images = new Float32Array(n * 784);
  for (let i = 0; i < n * 784; i++) images[i] = img[16 + i] / 127.5 - 1;
  return { images, labels: Array.from(lab.subarray(8, 8 + n)) };
}
