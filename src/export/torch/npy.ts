/** NumPy .npy files (format 1.0, little-endian, C order): what the PyTorch job reads without heed. */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { HeedError } from '../../errors.js';

export type NpyArray = Int32Array | Float32Array | BigInt64Array;

const DESCR = (a: NpyArray) => (a instanceof Int32Array ? '<i4' : a instanceof Float32Array ? '<f4' : '<i8');

export function writeNpy(path: string, a: NpyArray, shape: number[] = [a.length]): void {
  const n = shape.reduce((x, y) => x * y, 1);
  if (n !== a.length) throw new HeedError(`${path}: shape ${shape} does not hold ${a.length} values`, 'this is a bug in heed export');
  const shp = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${DESCR(a)}', 'fortran_order': False, 'shape': ${shp}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, pre);
    writeSync(fd, Buffer.from(header, 'latin1'));
    writeSync(fd, Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  } finally {
    closeSync(fd);
  }
}

export function readNpy(path: string): { data: NpyArray; shape: number[] } {
  const b = readFileSync(path);
  if (b.toString('latin1', 0, 6) !== '\x93NUMPY') throw new HeedError(`${path}: not a .npy file`, 're-export the job with heed export torch');
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + hlen;
  const header = b.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '').split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new HeedError(`${path}: Fortran-ordered arrays are not supported`, 're-export the job with heed export torch');
  const body = b.subarray(start);
  const copy = (bytes: number) => body.buffer.slice(body.byteOffset, body.byteOffset + bytes);
  const n = shape.reduce((x, y) => x * y, 1);
  if (descr === '<i4') return { data: new Int32Array(copy(n * 4)), shape };
  if (descr === '<f4') return { data: new Float32Array(copy(n * 4)), shape };
  if (descr === '<i8') return { data: new BigInt64Array(copy(n * 8)), shape };
  throw new HeedError(`${path}: dtype ${descr} is not supported`, 're-export the job with heed export torch');
}
