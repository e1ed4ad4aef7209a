/**
 * GGUF v3 files (ggml's single-file model format, as llama.cpp reads it): a writer and a reader, written from the
 * specification (ggml docs/gguf.md), little-endian only.
 *
 *   header   magic "GGUF" · u32 version (3) · u64 tensor count · u64 metadata count
 *   metadata key (gguf string: u64 length + UTF-8) · u32 value type · value (arrays: u32 item type · u64 count · items)
 *   tensors  name · u32 n_dims · u64 ne[n_dims] (ne[0] is the fastest axis: a row-major [rows, cols] is ne = [cols, rows])
 *            · u32 ggml type · u64 offset (from the start of the data section, a multiple of general.alignment)
 *   padding to general.alignment (32), then the tensor data, each tensor padded to the alignment.
 *
 * Tensor types written: F32, F16 and Q8_0 (blocks of 32: an f16 scale d = max|x|/127 then 32 int8 round(x/d), as
 * ggml's quantize_row_q8_0_ref).
 */
import { closeSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { HeedError } from '../errors.js';
import { f16ToF32, f32BitsToF16Bits, f32ToF16 } from './dtype.js';
import { writeFileAtomic } from './safetensors.js';

if (endianness() !== 'LE') throw new Error('heed GGUF IO supports little-endian hosts only');

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** metadata value types */
export const enum VT {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}

/** ggml tensor types heed writes and reads */
export const GGML_TYPE = { F32: 0, F16: 1, Q8_0: 8 } as const;
export type GgmlTypeName = keyof typeof GGML_TYPE;
const TYPE_NAME = new Map<number, GgmlTypeName>(Object.entries(GGML_TYPE).map(([k, v]) => [v, k as GgmlTypeName]));
const QK8_0 = 32;

/** A typed metadata value. Plain JS values are typed by `meta*` helpers; arrays hold one item type. */
export type MetaValue =
  | { type: VT.UINT8 | VT.INT8 | VT.UINT16 | VT.INT16 | VT.UINT32 | VT.INT32 | VT.FLOAT32 | VT.FLOAT64; value: number }
  | { type: VT.UINT64 | VT.INT64; value: bigint }
  | { type: VT.BOOL; value: boolean }
  | { type: VT.STRING; value: string }
  | { type: VT.ARRAY; itemType: VT; value: Array<number | bigint | boolean | string> };

export const meta = {
  u32: (value: number): MetaValue => ({ type: VT.UINT32, value }),
  i32: (value: number): MetaValue => ({ type: VT.INT32, value }),
  f32: (value: number): MetaValue => ({ type: VT.FLOAT32, value }),
  bool: (value: boolean): MetaValue => ({ type: VT.BOOL, value }),
  str: (value: string): MetaValue => ({ type: VT.STRING, value }),
  strs: (value: string[]): MetaValue => ({ type: VT.ARRAY, itemType: VT.STRING, value }),
  i32s: (value: number[]): MetaValue => ({ type: VT.ARRAY, itemType: VT.INT32, value }),
  f32s: (value: number[]): MetaValue => ({ type: VT.ARRAY, itemType: VT.FLOAT32, value }),
};

export interface GgufTensorIn {
  name: string;
  /** row-major shape as numpy/safetensors write it (the file stores it reversed) */
  shape: number[];
  type: GgmlTypeName;
  /** produces the f32 values (row-major) when the tensor is written; called once */
  data: () => Float32Array;
}

/** bytes of one tensor of `type` with `n` elements (rows of ne[0]) */
export function tensorBytes(type: GgmlTypeName, shape: readonly number[]): number {
  const n = shape.reduce((a, b) => a * b, 1);
  if (type === 'F32') return 4 * n;
  if (type === 'F16') return 2 * n;
  const row = shape[shape.length - 1] ?? 1;
  if (row % QK8_0) throw new HeedError(`Q8_0 needs rows that are a multiple of ${QK8_0} values, got ${row}`, 'write this tensor as f16 or f32');
  return (n / QK8_0) * (2 + QK8_0);
}

/** Q8_0 blocks of `x` (length a multiple of 32), as ggml's quantize_row_q8_0_ref. */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const nb = x.length / QK8_0;
  const out = new Uint8Array(nb * (2 + QK8_0));
  const q = new Int8Array(out.buffer);
  const f = new Float32Array(1);
  const bits = new Uint32Array(f.buffer);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    const base = b * QK8_0;
    for (let j = 0; j < QK8_0; j++) {
      const a = Math.abs(x[base + j]);
      if (a > amax) amax = a;
    }
    f[0] = amax / 127;
    const d = f[0];
    const id = d ? 1 / d : 0;
    const h = f32BitsToF16Bits(bits[0]);
    const o = b * (2 + QK8_0);
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < QK8_0; j++) {
      const v = Math.fround(x[base + j] * id);
      q[o + 2 + j] = v < 0 ? -Math.round(-v) : Math.round(v); // roundf: halves away from zero
    }
  }
  return out;
}

export function dequantizeQ8_0(bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < n / QK8_0; b++) {
    const o = b * (2 + QK8_0);
    const d = f16ToF32(Uint16Array.of(dv.getUint16(o, true)))[0];
    for (let j = 0; j < QK8_0; j++) out[b * QK8_0 + j] = d * dv.getInt8(o + 2 + j);
  }
  return out;
}

function encodeTensor(type: GgmlTypeName, x: Float32Array): Uint8Array {
  if (type === 'F32') return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  if (type === 'F16') {
    const h = f32ToF16(x);
    return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
  }
  return quantizeQ8_0(x);
}

class Bytes {
  private chunks: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array) {
    this.chunks.push(b);
    this.length += b.length;
  }
  num(size: number, set: (dv: DataView) => void) {
    const b = new Uint8Array(size);
    set(new DataView(b.buffer));
    this.push(b);
  }
  u32(v: number) { this.num(4, (d) => d.setUint32(0, v, true)); }
  u64(v: number | bigint) { this.num(8, (d) => d.setBigUint64(0, BigInt(v), true)); }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  scalar(t: VT, v: number | bigint | boolean | string) {
    switch (t) {
      case VT.UINT8: return this.num(1, (d) => d.setUint8(0, v as number));
      case VT.INT8: return this.num(1, (d) => d.setInt8(0, v as number));
      case VT.UINT16: return this.num(2, (d) => d.setUint16(0, v as number, true));
      case VT.INT16: return this.num(2, (d) => d.setInt16(0, v as number, true));
      case VT.UINT32: return this.num(4, (d) => d.setUint32(0, v as number, true));
      case VT.INT32: return this.num(4, (d) => d.setInt32(0, v as number, true));
      case VT.FLOAT32: return this.num(4, (d) => d.setFloat32(0, v as number, true));
      case VT.FLOAT64: return this.num(8, (d) => d.setFloat64(0, v as number, true));
      case VT.UINT64: return this.num(8, (d) => d.setBigUint64(0, BigInt(v as bigint), true));
      case VT.INT64: return this.num(8, (d) => d.setBigInt64(0, BigInt(v as bigint), true));
      case VT.BOOL: return this.num(1, (d) => d.setUint8(0, v ? 1 : 0));
      case VT.STRING: return this.str(v as string);
      default: throw new Error(`GGUF: cannot write a scalar of type ${t}`);
    }
  }
  concat(): Uint8Array { return Buffer.concat(this.chunks); }
}

const align = (n: number, a: number) => Math.ceil(n / a) * a;

/** Write a GGUF v3 file (atomically: a temporary file renamed into place). Returns the file size in bytes. */
/** Where the writer's bytes go, in file order: a file descriptor in Node (writeGguf), a list of chunks for a Blob in a browser. */
export type GgufSink = (chunk: Uint8Array) => void;

/**
 * The writer's core: the GGUF bytes of `metadata` and `tensors`, in file order, to `sink` (no file system: it runs
 * in a browser tab too). Tensors are encoded one at a time. Returns the byte count.
 */
export function encodeGguf(metadata: Array<[string, MetaValue]>, tensors: GgufTensorIn[], sink: GgufSink): number {
  const alignment = GGUF_DEFAULT_ALIGNMENT;
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`GGUF: duplicate tensor ${t.name}`);
    names.add(t.name);
  }
  const h = new Bytes();
  h.u32(GGUF_MAGIC);
  h.u32(GGUF_VERSION);
  h.u64(tensors.length);
  h.u64(metadata.length);
  for (const [key, v] of metadata) {
    h.str(key);
    h.u32(v.type);
    if (v.type === VT.ARRAY) {
      h.u32(v.itemType);
      h.u64(v.value.length);
      for (const x of v.value) h.scalar(v.itemType, x);
    } else h.scalar(v.type, v.value);
  }
  let offset = 0;
  const sizes: number[] = [];
  for (const t of tensors) {
    h.str(t.name);
    h.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) h.u64(d);
    h.u32(GGML_TYPE[t.type]);
    h.u64(offset);
    const size = tensorBytes(t.type, t.shape);
    sizes.push(size);
    offset = align(offset + size, alignment);
  }
  const header = h.concat();
  const dataStart = align(header.length, alignment);
  sink(header);
  sink(new Uint8Array(dataStart - header.length));
  for (const [i, t] of tensors.entries()) {
    const x = t.data();
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (x.length !== n) throw new Error(`GGUF: tensor ${t.name} has ${x.length} values, shape [${t.shape}] needs ${n}`);
    sink(encodeTensor(t.type, x));
    sink(new Uint8Array(align(sizes[i], alignment) - sizes[i]));
  }
  return dataStart + offset;
}

/** Write a GGUF file atomically (a temporary file renamed into place). Returns the byte count. */
export function writeGguf(path: string, metadata: Array<[string, MetaValue]>, tensors: GgufTensorIn[]): number {
  let bytes = 0;
  writeFileAtomic(path, (fd) => {
    bytes = encodeGguf(metadata, tensors, (b) => {
      writeSync(fd, b);
    });
  });
  return bytes;
}

// ---------------------------------------------------------------- reader

export interface GgufTensorInfo {
  name: string;
  /** row-major shape (ne reversed) */
  shape: number[];
  type: number;
  typeName: GgmlTypeName | undefined;
  /** absolute offset in the file */
  offset: number;
}

export interface GgufFile {
  version: number;
  alignment: number;
  metadata: Map<string, unknown>;
  /** metadata value types (ARRAY: `[9, itemType]`) */
  types: Map<string, VT | [VT, VT]>;
  tensors: GgufTensorInfo[];
  dataStart: number;
}

class Reader {
  private pos = 0;
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  constructor(private fd: number, private size: number, private path: string) {}
  private need(n: number): Buffer {
    if (this.pos + n > this.size) throw new HeedError(`${this.path}: not a valid GGUF file (truncated at byte ${this.pos})`, 'export the model again with `heed export gguf`');
    if (this.pos < this.bufStart || this.pos + n > this.bufStart + this.buf.length) {
      const len = Math.max(n, 1 << 20);
      this.buf = Buffer.alloc(Math.min(len, this.size - this.pos));
      readSync(this.fd, this.buf, 0, this.buf.length, this.pos);
      this.bufStart = this.pos;
    }
    const o = this.pos - this.bufStart;
    this.pos += n;
    return this.buf.subarray(o, o + n);
  }
  get offset() { return this.pos; }
  u8() { return this.need(1).readUInt8(0); }
  u32() { return this.need(4).readUInt32LE(0); }
  u64(): number {
    const v = this.need(8).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new HeedError(`${this.path}: not a valid GGUF file (a length of ${v})`, 'export the model again with `heed export gguf`');
    return Number(v);
  }
  str(): string { const n = this.u64(); return this.need(n).toString('utf8'); }
  scalar(t: VT): number | bigint | boolean | string {
    switch (t) {
      case VT.UINT8: return this.need(1).readUInt8(0);
      case VT.INT8: return this.need(1).readInt8(0);
      case VT.UINT16: return this.need(2).readUInt16LE(0);
      case VT.INT16: return this.need(2).readInt16LE(0);
      case VT.UINT32: return this.need(4).readUInt32LE(0);
      case VT.INT32: return this.need(4).readInt32LE(0);
      case VT.FLOAT32: return this.need(4).readFloatLE(0);
      case VT.FLOAT64: return this.need(8).readDoubleLE(0);
      case VT.UINT64: return this.need(8).readBigUInt64LE(0);
      case VT.INT64: return this.need(8).readBigInt64LE(0);
      case VT.BOOL: return this.need(1).readUInt8(0) !== 0;
      case VT.STRING: return this.str();
      default: throw new HeedError(`${this.path}: not a valid GGUF file (metadata value type ${t})`, 'export the model again with `heed export gguf`');
    }
  }
}

/** Read a GGUF file's header, metadata and tensor table (not the tensor data; see readGgufTensor). */
export function readGguf(path: string): GgufFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    throw new HeedError(`${path}: GGUF file not found`, 'check the path (export one with `heed export gguf <model-dir> <out.gguf>`)');
  }
  try {
    const size = statSync(path).size;
    const r = new Reader(fd, size, path);
    if (size < 24 || r.u32() !== GGUF_MAGIC) throw new HeedError(`${path}: not a GGUF file (no "GGUF" magic)`, 'pass a .gguf file');
    const version = r.u32();
    if (version !== 2 && version !== 3) throw new HeedError(`${path}: GGUF version ${version} is not supported`, 'heed reads GGUF v2 and v3');
    const nTensors = r.u64();
    const nMeta = r.u64();
    const metadata = new Map<string, unknown>();
    const types = new Map<string, VT | [VT, VT]>();
    for (let i = 0; i < nMeta; i++) {
      const key = r.str();
      const t = r.u32() as VT;
      if (t === VT.ARRAY) {
        const it = r.u32() as VT;
        const n = r.u64();
        const arr: unknown[] = new Array(n);
        for (let j = 0; j < n; j++) arr[j] = r.scalar(it);
        metadata.set(key, arr);
        types.set(key, [t, it]);
      } else {
        metadata.set(key, r.scalar(t));
        types.set(key, t);
      }
    }
    const alignment = typeof metadata.get('general.alignment') === 'number' ? (metadata.get('general.alignment') as number) : GGUF_DEFAULT_ALIGNMENT;
    const tensors: GgufTensorInfo[] = [];
    for (let i = 0; i < nTensors; i++) {
      const name = r.str();
      const nd = r.u32();
      const ne: number[] = [];
      for (let j = 0; j < nd; j++) ne.push(r.u64());
      const type = r.u32();
      const off = r.u64();
      tensors.push({ name, shape: ne.reverse(), type, typeName: TYPE_NAME.get(type), offset: off });
    }
    const dataStart = align(r.offset, alignment);
    for (const t of tensors) {
      t.offset += dataStart;
      if (t.typeName && t.offset + tensorBytes(t.typeName, t.shape) > size) throw new HeedError(`${path}: tensor ${t.name} runs past the end of the file`, 'the file is truncated: export it again');
    }
    return { version, alignment, metadata, types, tensors, dataStart };
  } finally {
    closeSync(fd);
  }
}

/** One tensor's values as f32 (F32, F16, Q8_0 dequantised). */
export function readGgufTensor(path: string, t: GgufTensorInfo): Float32Array {
  if (!t.typeName) throw new HeedError(`${path}: tensor ${t.name} has ggml type ${t.type}, which heed does not read`, 'heed reads F32, F16 and Q8_0 tensors');
  const n = t.shape.reduce((a, b) => a * b, 1);
  const bytes = Buffer.alloc(tensorBytes(t.typeName, t.shape));
  const fd = openSync(path, 'r');
  try {
    readSync(fd, bytes, 0, bytes.length, t.offset);
  } finally {
    closeSync(fd);
  }
  if (t.typeName === 'F32') return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  if (t.typeName === 'F16') return f16ToF32(new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)));
  return dequantizeQ8_0(bytes, n);
}

