/**
 * TensorBoard event files, written from the documented format (no npm library writes them without
 * TensorFlow or native code):
 *
 *  - the file `events.out.tfevents.<unix seconds>.<host>` is a TFRecord stream: each record is
 *    uint64 length (little-endian), uint32 masked CRC32C of those 8 bytes, the data, uint32 masked CRC32C of
 *    the data; masked(c) = ((c >>> 15) | (c << 17)) + 0xa282ead8 (mod 2^32); CRC32C is the Castagnoli
 *    polynomial (reflected 0x82f63b78);
 *  - each record's data is a serialized `tensorflow.Event` protobuf: wall_time (1, double), step (2, int64),
 *    file_version (3, string; "brain.Event:2" in the first event) or summary (5, Summary); a Summary is
 *    repeated Value (1), a Value is tag (1, string) and simple_value (2, float) — TensorBoard shows each tag
 *    as a scalar chart.
 *
 * Plain bytes in, plain bytes out: no tensors.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32c(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export const maskedCrc32c = (b: Uint8Array) => {
  const c = crc32c(b);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
};

/** One TFRecord frame around `data`. */
export function tfrecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + data.length);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(data.length), true);
  dv.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  dv.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

// --- protobuf encoding (the few wire types an Event needs)
const varint = (n: number | bigint): number[] => {
  let v = BigInt(n);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
};
const bytesField = (field: number, b: Uint8Array): number[] => [...varint((field << 3) | 2), ...varint(b.length), ...b];
const utf8 = (s: string) => new TextEncoder().encode(s);

function scalarValue(tag: string, value: number): Uint8Array {
  const f = new Uint8Array(4);
  new DataView(f.buffer).setFloat32(0, value, true);
  return Uint8Array.from([...bytesField(1, utf8(tag)), (2 << 3) | 5, ...f]);
}

/** A serialized Event: wall time, step and either the file version or scalar summary values. */
export function encodeEvent(e: { wallTime: number; step: number; fileVersion?: string; scalars?: Array<[string, number]> }): Uint8Array {
  const wt = new Uint8Array(8);
  new DataView(wt.buffer).setFloat64(0, e.wallTime, true);
  const out: number[] = [(1 << 3) | 1, ...wt, ...varint((2 << 3) | 0), ...varint(Math.max(0, Math.trunc(e.step)))];
  if (e.fileVersion !== undefined) out.push(...bytesField(3, utf8(e.fileVersion)));
  if (e.scalars?.length) {
    const summary: number[] = [];
    for (const [tag, v] of e.scalars) summary.push(...bytesField(1, scalarValue(tag, v)));
    out.push(...bytesField(5, Uint8Array.from(summary)));
  }
  return Uint8Array.from(out);
}

export const eventFileName = (wallTime: number, host = hostname()) => `events.out.tfevents.${Math.floor(wallTime)}.${host.replace(/[^\w.-]/g, '_') || 'localhost'}`;

/** An open event file: the version event on creation, then one event per `scalars` call, appended (readable live). */
export class EventFileWriter {
  readonly file: string;
  constructor(dir: string, wallTime = Date.now() / 1000) {
    this.file = join(dir, eventFileName(wallTime));
    writeFileSync(this.file, tfrecord(encodeEvent({ wallTime, step: 0, fileVersion: 'brain.Event:2' })));
  }
  scalars(step: number, values: Array<[string, number]>, wallTime = Date.now() / 1000): void {
    const finite = values.filter(([, v]) => Number.isFinite(v));
    if (finite.length) appendFileSync(this.file, tfrecord(encodeEvent({ wallTime, step, scalars: finite })));
  }
}
