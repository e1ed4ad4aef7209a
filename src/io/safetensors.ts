/**
 * safetensors reader/writer on plain typed arrays. Format: u64 little-endian header length N, N bytes of JSON
 * header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}}`, then the byte buffer
 * (offsets are relative to its start).
 *
 * Choices:
 * - Host tensors are always f32. Reading: F32 is bit-exact, F16/BF16 exact, F64 is rounded to f32. Integer and BOOL
 *   tensors are read into f32 only when every value is exactly representable (|v| <= 2^24 or a multiple of a power
 *   of two that fits); otherwise the read is refused with a HeedError. Other safetensors dtypes (U16/U32/U64/F8_*,
 *   ...) are refused at header parse time.
 * - Validation follows the Rust library: header length <= 100 MB and within the file, JSON object, known dtype,
 *   integer shape, offsets in range, non-overlapping, byte length == numel * itemsize. Gaps between tensors are
 *   tolerated on read (the Rust library refuses them); this writer never produces them.
 * - Each tensor is read with fs.readSync at its own offset into its own buffer, so files over 2 GiB work.
 * - Writing: tensors sorted by name (with one dtype this is also the Rust library's order), packed contiguously,
 *   header JSON padded with spaces to a multiple of 8 bytes, `__metadata__` = {"format": "pt", ...opts.metadata}
 *   so that transformers' loader accepts the file. The file is written to `<path>.tmp`, fsynced, then renamed.
 * - Little-endian hosts only (every platform Node ships for in practice); typed-array views are used directly.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { endianness } from 'node:os';
import { HeedError } from '../errors.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './dtype.js';

export type StDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
/** Always f32 on the host; `data.length` equals the product of `shape` (1 for a scalar, shape []). */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}
export interface TensorInfo {
  dtype: StDType;
  shape: number[];
  offsets: [number, number];
}

export const ITEM_SIZE: Record<StDType, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const MAX_HEADER_BYTES = 100_000_000; // as the Rust library
const IO_CHUNK = 1 << 30; // fs.readSync/writeSync are called with at most 1 GiB at a time
/** largest tensor heed reads: 2^30 values (4 GiB as f32, the engine's whole wasm heap); checked before allocating */
export const MAX_TENSOR_VALUES = 2 ** 30;

if (endianness() !== 'LE') throw new Error('heed safetensors IO supports little-endian hosts only');

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function bad(path: string, what: string, fix = 'the file is corrupt or not a safetensors file; re-download or re-save it'): never {
  throw new HeedError(`${path}: ${what}`, fix);
}

function readFully(fd: number, buf: Uint8Array, position: number, path: string, what: string): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, Math.min(IO_CHUNK, buf.length - done), position + done);
    if (n === 0) bad(path, `unexpected end of file while reading ${what}`);
    done += n;
  }
}

function writeFully(fd: number, buf: Uint8Array): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, Math.min(IO_CHUNK, buf.length - done));
}

function parseHeader(fd: number, path: string) {
  const size = fstatSync(fd).size;
  if (size < 8) bad(path, `file is ${size} bytes, too short for a safetensors header`);
  const lenBuf = Buffer.alloc(8);
  readFully(fd, lenBuf, 0, path, 'the header length');
  const n = lenBuf.readBigUInt64LE(0);
  if (n < 2n || n > BigInt(MAX_HEADER_BYTES)) bad(path, `header length ${n} is not in [2, ${MAX_HEADER_BYTES}]`);
  const headerLen = Number(n);
  if (8 + headerLen > size) bad(path, `header length ${headerLen} runs past the end of the ${size}-byte file`);
  const hb = Buffer.alloc(headerLen);
  readFully(fd, hb, 8, path, 'the header');
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(hb));
  } catch (e) {
    bad(path, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) bad(path, 'header JSON is not an object');
  const dataStart = 8 + headerLen;
  const dataLen = size - dataStart;
  const header: Record<string, TensorInfo> = {};
  const metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(path, '"__metadata__" is not an object of strings');
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== 'string') bad(path, `"__metadata__"."${k}" is not a string`);
        metadata[k] = s;
      }
      continue;
    }
    const t = `tensor "${name}"`;
    if (typeof v !== 'object' || v === null) bad(path, `${t}: entry is not an object`);
    const { dtype, shape, data_offsets: off } = v as Record<string, unknown>;
    if (typeof dtype !== 'string' || !(dtype in ITEM_SIZE))
      bad(path, `${t}: dtype ${JSON.stringify(dtype)} is not supported (supported: ${Object.keys(ITEM_SIZE).join(', ')})`,
        'convert the tensor to F32, F16 or BF16 before saving');
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      bad(path, `${t}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1])
      bad(path, `${t}: data_offsets ${JSON.stringify(off)} is not [begin, end] with 0 <= begin <= end`);
    if (off[1] > dataLen) bad(path, `${t}: data_offsets end ${off[1]} is past the ${dataLen}-byte data buffer (file truncated?)`);
    const want = numel(shape) * ITEM_SIZE[dtype as StDType];
    if (off[1] - off[0] !== want)
      bad(path, `${t}: data_offsets span ${off[1] - off[0]} bytes but shape ${JSON.stringify(shape)} x ${dtype} needs ${want}`);
    header[name] = { dtype: dtype as StDType, shape: shape as number[], offsets: [off[0], off[1]] };
  }
  const byBegin = Object.entries(header).sort((a, b) => a[1].offsets[0] - b[1].offsets[0] || a[1].offsets[1] - b[1].offsets[1]);
  for (let i = 1; i < byBegin.length; i++) {
    const [pn, p] = byBegin[i - 1]!;
    const [cn, c] = byBegin[i]!;
    if (c.offsets[0] < p.offsets[1]) bad(path, `tensor "${cn}" data_offsets ${JSON.stringify(c.offsets)} overlap tensor "${pn}" ${JSON.stringify(p.offsets)}`);
  }
  return { header, metadata, dataStart };
}

export function readSafetensorsHeader(path: string): { header: Record<string, TensorInfo>; metadata: Record<string, string>; dataStart: number } {
  const fd = openOrFail(path);
  try {
    return parseHeader(fd, path);
  } finally {
    closeSync(fd);
  }
}

function openOrFail(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (e) {
    throw new HeedError(`${path}: cannot open safetensors file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'check the path');
  }
}

/** Convert the raw little-endian bytes of one tensor to f32; integers must be exactly representable. */
function toF32(bytes: Uint8Array, info: TensorInfo, path: string, name: string): Float32Array {
  const n = numel(info.shape);
  const b = bytes.buffer, o = bytes.byteOffset;
  switch (info.dtype) {
    case 'F32': return new Float32Array(b, o, n);
    case 'F16': return f16ToF32(new Uint16Array(b, o, n));
    case 'BF16': return bf16ToF32(new Uint16Array(b, o, n));
    case 'F64': return Float32Array.from(new Float64Array(b, o, n));
    case 'I8': return Float32Array.from(new Int8Array(b, o, n));
    case 'U8': case 'BOOL': return Float32Array.from(bytes.subarray(0, n));
    case 'I16': return Float32Array.from(new Int16Array(b, o, n));
    case 'I32': case 'I64': {
      const src = info.dtype === 'I32' ? new Int32Array(b, o, n) : new BigInt64Array(b, o, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const v = src[i]!;
        out[i] = Number(v);
        if ((typeof v === 'bigint' ? BigInt(out[i]!) : out[i]) !== v)
          bad(path, `tensor "${name}": ${info.dtype} value ${v} at index ${i} is not exactly representable as f32`,
            'store this tensor as a float dtype, or read it with a tool that keeps integers');
      }
      return out;
    }
  }
}

/** Read the named tensors (all when `names` is omitted) as f32; `dtypes` gives each tensor's dtype in the file. */
export function readSafetensors(path: string, opts: { names?: string[] } = {}): { tensors: Map<string, HostTensor>; dtypes: Map<string, StDType>; metadata: Record<string, string> } {
  const fd = openOrFail(path);
  try {
    const { header, metadata, dataStart } = parseHeader(fd, path);
    const names = opts.names ?? Object.keys(header).sort();
    const tensors = new Map<string, HostTensor>();
    const dtypes = new Map<string, StDType>();
    for (const name of names) {
      const info = header[name];
      if (!info) bad(path, `tensor "${name}" is not in the file`, 'check the tensor name, or the index that points to this file');
      const n = numel(info.shape);
      if (n > MAX_TENSOR_VALUES)
        bad(path, `tensor "${name}" has ${n.toLocaleString('en-US')} values (shape ${JSON.stringify(info.shape)}), more than the ${MAX_TENSOR_VALUES.toLocaleString('en-US')} heed's engine can hold`, 'use a smaller model (heed trains and runs models up to about 1B parameters on CPU)');
      const bytes = new Uint8Array(info.offsets[1] - info.offsets[0]);
      readFully(fd, bytes, dataStart + info.offsets[0], path, `tensor "${name}"`);
      tensors.set(name, { shape: [...info.shape], data: toF32(bytes, info, path, name) });
      dtypes.set(name, info.dtype);
    }
    return { tensors, dtypes, metadata };
  } finally {
    closeSync(fd);
  }
}

/** Run `write` on `<path>.tmp`, fsync, rename over `path` (and best-effort fsync the folder). */
export function writeFileAtomic(path: string, write: (fd: number) => void): void {
  const tmp = `${path}.tmp`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'w');
    write(fd);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    if (e instanceof HeedError) throw e;
    throw new HeedError(`${path}: cannot write file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'check that the folder exists, is writable and has free space');
  }
  try {
    const dfd = openSync(dirname(path), 'r');
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
  } catch { /* not supported everywhere; the rename itself is already atomic */ }
}

/** Write f32 host tensors as one safetensors file stored in `opts.dtype` (default F32). */
export function writeSafetensors(path: string, tensors: Map<string, HostTensor> | Array<[string, HostTensor]>, opts: { dtype?: 'F32' | 'F16' | 'BF16'; metadata?: Record<string, string> } = {}): void {
  const dtype = opts.dtype ?? 'F32';
  if (!(dtype === 'F32' || dtype === 'F16' || dtype === 'BF16')) throw new HeedError(`${path}: cannot write dtype ${JSON.stringify(dtype)}`, 'use F32, F16 or BF16');
  const entries = [...tensors];
  const seen = new Set<string>();
  for (const [name, t] of entries) {
    if (name === '__metadata__' || name === '') throw new HeedError(`${path}: tensor name ${JSON.stringify(name)} is reserved`, 'rename the tensor');
    if (seen.has(name)) throw new HeedError(`${path}: tensor "${name}" is given twice`, 'give each tensor a unique name');
    seen.add(name);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || numel(t.shape) !== t.data.length)
      throw new HeedError(`${path}: tensor "${name}" has shape ${JSON.stringify(t.shape)} but ${t.data.length} values`, 'make data.length equal the product of the shape');
  }
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const meta: Record<string, string> = { format: 'pt', ...opts.metadata };
  for (const [k, v] of Object.entries(meta)) if (typeof v !== 'string') throw new HeedError(`${path}: metadata "${k}" is not a string`, 'metadata values must be strings');
  const header: Record<string, unknown> = { __metadata__: meta };
  let offset = 0;
  for (const [name, t] of entries) {
    const bytes = t.data.length * ITEM_SIZE[dtype];
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let hb = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (hb.length % 8)) % 8;
  if (pad) hb = Buffer.concat([hb, Buffer.alloc(pad, 0x20)]);
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(hb.length));
  writeFileAtomic(path, (fd) => {
    writeFully(fd, lenBuf);
    writeFully(fd, hb);
    for (const [, t] of entries) {
      const d = t.data;
      const out = dtype === 'F32' ? d : dtype === 'F16' ? f32ToF16(d) : f32ToBf16(d);
      writeFully(fd, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
    }
  });
}
