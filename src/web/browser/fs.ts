/**
 * node:fs for the browser page: an in-memory file system. The page puts the files the user picked into it
 * (nothing leaves the tab), heed's modules read and write it exactly as they do the disk in Node (the trainer
 * writes its run folder here), and the page reads results back (metrics.jsonl, checkpoint folders).
 */
import { dirname, resolve } from './path.js';
import { BrowserBuffer } from './globals.js';

const files = new Map<string, Uint8Array>();
const mtimes = new Map<string, number>();
const dirs = new Set<string>(['/']);
const enc = new TextEncoder();

const err = (code: string, op: string, p: string) => Object.assign(new Error(`${code}: ${op} '${p}'`), { code, path: p });
const norm = (p: string | URL) => resolve(String(p));
const toBytes = (d: string | ArrayBufferView | ArrayBuffer) => (typeof d === 'string' ? enc.encode(d) : d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer as ArrayBuffer, d.byteOffset, d.byteLength).slice());
function ensureParent(p: string) {
  const d = dirname(p);
  if (!dirs.has(d)) throw err('ENOENT', 'open', p);
}
const asBuffer = (u: Uint8Array) => new BrowserBuffer(u.buffer as ArrayBuffer, u.byteOffset, u.length);

/** The page's entry points: put a picked file, list and read what heed wrote, drop a tree. */
export function putFile(path: string, data: Uint8Array | string): void {
  const p = norm(path);
  mkdirSync(dirname(p), { recursive: true });
  files.set(p, toBytes(data));
  mtimes.set(p, Date.now());
}
export function listFiles(prefix: string): string[] {
  const p = norm(prefix);
  return [...files.keys()].filter((f) => f === p || f.startsWith(p + '/')).sort();
}
export function fileBytes(path: string): Uint8Array | undefined {
  return files.get(norm(path));
}
export function totalBytes(): number {
  let n = 0;
  for (const f of files.values()) n += f.length;
  return n;
}

export function existsSync(path: string | URL): boolean {
  const p = norm(path);
  return files.has(p) || dirs.has(p);
}
class Stats {
  constructor(private readonly dir: boolean, readonly size: number, readonly mtimeMs: number) {}
  isDirectory() {
    return this.dir;
  }
  isFile() {
    return !this.dir;
  }
  get mtime() {
    return new Date(this.mtimeMs);
  }
}
export function statSync(path: string | URL): Stats {
  const p = norm(path);
  if (dirs.has(p)) return new Stats(true, 0, mtimes.get(p) ?? 0);
  const f = files.get(p);
  if (!f) throw err('ENOENT', 'stat', p);
  return new Stats(false, f.length, mtimes.get(p) ?? 0);
}
export const lstatSync = statSync;
export function readdirSync(path: string | URL): string[] {
  const p = norm(path);
  if (!dirs.has(p)) throw err('ENOENT', 'scandir', p);
  const pre = p === '/' ? '/' : p + '/';
  const out = new Set<string>();
  for (const k of [...files.keys(), ...dirs]) if (k.startsWith(pre) && k !== p) out.add(k.slice(pre.length).split('/')[0]);
  return [...out].sort();
}
export function mkdirSync(path: string | URL, o: { recursive?: boolean } = {}): void {
  const p = norm(path);
  if (dirs.has(p)) {
    if (!o.recursive) throw err('EEXIST', 'mkdir', p);
    return;
  }
  if (!dirs.has(dirname(p))) {
    if (!o.recursive) throw err('ENOENT', 'mkdir', p);
    mkdirSync(dirname(p), o);
  }
  dirs.add(p);
}
export function readFileSync(path: string | URL, o?: string | { encoding?: string }): string | BrowserBuffer {
  const p = norm(path);
  const f = files.get(p);
  if (!f) throw err(dirs.has(p) ? 'EISDIR' : 'ENOENT', 'open', p);
  const encoding = typeof o === 'string' ? o : o?.encoding;
  return encoding ? new TextDecoder().decode(f) : asBuffer(f);
}
export function writeFileSync(path: string | URL, data: string | ArrayBufferView): void {
  const p = norm(path);
  ensureParent(p);
  files.set(p, toBytes(data));
  mtimes.set(p, Date.now());
}
export function appendFileSync(path: string | URL, data: string | ArrayBufferView): void {
  const p = norm(path);
  const old = files.get(p);
  if (!old) return writeFileSync(p, data);
  const add = toBytes(data);
  const n = new Uint8Array(old.length + add.length);
  n.set(old);
  n.set(add, old.length);
  files.set(p, n);
  mtimes.set(p, Date.now());
}
export function copyFileSync(a: string, b: string): void {
  const f = files.get(norm(a));
  if (!f) throw err('ENOENT', 'copyfile', a);
  writeFileSync(b, f);
}
export function rmSync(path: string | URL, o: { recursive?: boolean; force?: boolean } = {}): void {
  const p = norm(path);
  if (files.delete(p)) return;
  if (!dirs.has(p)) {
    if (o.force) return;
    throw err('ENOENT', 'rm', p);
  }
  if (!o.recursive && readdirSync(p).length) throw err('ENOTEMPTY', 'rm', p);
  for (const k of [...files.keys()]) if (k.startsWith(p + '/')) files.delete(k);
  for (const k of [...dirs]) if (k === p || k.startsWith(p + '/')) dirs.delete(k);
}
export const unlinkSync = (p: string) => rmSync(p);
export function renameSync(a: string, b: string): void {
  const pa = norm(a);
  const pb = norm(b);
  if (files.has(pa)) {
    ensureParent(pb);
    files.set(pb, files.get(pa)!);
    files.delete(pa);
    mtimes.set(pb, Date.now());
    return;
  }
  if (!dirs.has(pa)) throw err('ENOENT', 'rename', pa);
  if (dirs.has(pb)) rmSync(pb, { recursive: true });
  for (const k of [...files.keys()]) if (k.startsWith(pa + '/')) {
    files.set(pb + k.slice(pa.length), files.get(k)!);
    files.delete(k);
  }
  for (const k of [...dirs]) if (k === pa || k.startsWith(pa + '/')) {
    dirs.delete(k);
    dirs.add(pb + k.slice(pa.length));
  }
}

let tmpCount = 0;
export function mkdtempSync(prefix: string): string {
  let p: string;
  do p = norm(`${prefix}${(++tmpCount).toString(36).padStart(6, '0')}`);
  while (existsSync(p));
  mkdirSync(p, { recursive: true });
  return p;
}

// file descriptors: whole-file buffers; writes grow the file
const fds = new Map<number, { path: string; dir: boolean }>();
let nextFd = 10;
export function openSync(path: string | URL, flags = 'r'): number {
  const p = norm(path);
  if (dirs.has(p)) {
    fds.set(nextFd, { path: p, dir: true });
    return nextFd++;
  }
  if (flags.startsWith('w')) writeFileSync(p, new Uint8Array(0));
  else if (!files.has(p)) throw err('ENOENT', 'open', p);
  fds.set(nextFd, { path: p, dir: false });
  return nextFd++;
}
const fdFile = (fd: number) => {
  const e = fds.get(fd);
  if (!e) throw err('EBADF', 'fd', String(fd));
  return e;
};
export function closeSync(fd: number): void {
  fds.delete(fd);
}
export function fsyncSync(fd: number): void {
  fdFile(fd);
}
export function fstatSync(fd: number): Stats {
  return statSync(fdFile(fd).path);
}
export function readSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): number {
  const f = files.get(fdFile(fd).path)!;
  const pos = position ?? 0;
  const n = Math.max(0, Math.min(length, f.length - pos));
  buf.set(f.subarray(pos, pos + n), offset);
  return n;
}
export function writeSync(fd: number, data: Uint8Array | string, offset = 0, length?: number): number {
  const e = fdFile(fd);
  const bytes = typeof data === 'string' ? enc.encode(data) : data.subarray(offset, offset + (length ?? data.length - offset));
  appendFileSync(e.path, bytes);
  return bytes.length;
}
export function createReadStream(path: string, o: { highWaterMark?: number } = {}): AsyncIterable<BrowserBuffer> {
  const f = files.get(norm(path));
  if (!f) throw err('ENOENT', 'open', path);
  const step = o.highWaterMark ?? 1 << 16;
  return {
    async *[Symbol.asyncIterator]() {
      for (let i = 0; i < f.length; i += step) yield asBuffer(f.subarray(i, Math.min(f.length, i + step)));
    },
  };
}
export default { mkdtempSync, existsSync, statSync, lstatSync, readdirSync, mkdirSync, readFileSync, writeFileSync, appendFileSync, copyFileSync, rmSync, unlinkSync, renameSync, openSync, closeSync, fsyncSync, fstatSync, readSync, writeSync, createReadStream };
