/** NumPy .npy (format 1.0) for float32 arrays: write and read. */
import fs from 'node:fs';
import { writeFileAtomic } from './atomic';
import { DiffusionSearchError } from '../errors';

export function encodeNpy(data: Float32Array, shape: number[]): Buffer {
  if (shape.reduce((a, b) => a * b, 1) !== data.length)
    throw new DiffusionSearchError(`npy: shape [${shape}] does not hold ${data.length} values`, 'SHAPE');
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  // Magic (6) + version (2) + length (2) + header + '\n' padded to a multiple of 64.
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

export function writeNpy(file: string, data: Float32Array, shape: number[]): void {
  writeFileAtomic(file, encodeNpy(data, shape));
}

export function readNpy(file: string): { data: Float32Array; shape: number[] } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new DiffusionSearchError(`cannot read '${file}': ${(e as Error).message}`, 'ARGUMENT', { cause: e });
  }
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY')
    throw new DiffusionSearchError(`'${file}' is not a .npy file`, 'ARGUMENT');
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined)
    throw new DiffusionSearchError(`'${file}': unreadable .npy header`, 'ARGUMENT');
  if (fortran === 'True')
    throw new DiffusionSearchError(`'${file}': Fortran-ordered arrays are not supported`, 'ARGUMENT');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const off = start + hlen;
  let data: Float32Array;
  if (descr === '<f4') data = new Float32Array(buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + off + 4 * n));
  else if (descr === '<f8')
    data = Float32Array.from(new Float64Array(buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + off + 8 * n)));
  else throw new DiffusionSearchError(`'${file}': dtype ${descr} is not supported (use float32)`, 'ARGUMENT');
  if (data.length !== n) throw new DiffusionSearchError(`'${file}': truncated data`, 'ARGUMENT');
  return { data, shape };
}
