/**
 * Globals heed's modules expect from Node, for the browser page: `process` (env, versions without `node`, so
 * the engine takes its browser path; stderr/stdout write to the console) and a small `Buffer` (the methods
 * heed's readers call; utf8, latin1, ascii and base64 — the IFS classifier's bigram bitset). Must be the page's first import, as node-setup.ts is the engine's.
 */
const enc = new TextEncoder();
const dec = new TextDecoder();

export class BrowserBuffer extends Uint8Array {
  static alloc(n: number, fill = 0): BrowserBuffer {
    const b = new BrowserBuffer(n);
    if (fill) b.fill(fill);
    return b;
  }
  static allocUnsafe(n: number): BrowserBuffer {
    return new BrowserBuffer(n);
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  static override from(x: any, enc2?: any): any {
    if (typeof x === 'string') {
      if (enc2 === 'base64') {
        const bin = atob(x);
        const b = new BrowserBuffer(bin.length);
        for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
        return b;
      }
      if (enc2 && enc2 !== 'utf8' && enc2 !== 'utf-8') throw new Error(`Buffer.from: encoding ${enc2} not supported in the browser`);
      const u = enc.encode(x);
      return new BrowserBuffer(u.buffer, u.byteOffset, u.length);
    }
    if (x instanceof ArrayBuffer) return new BrowserBuffer(x);
    const a = x as ArrayLike<number>;
    const b = new BrowserBuffer(a.length);
    b.set(a);
    return b;
  }
  static concat(list: Uint8Array[]): BrowserBuffer {
    const b = new BrowserBuffer(list.reduce((s, x) => s + x.length, 0));
    let o = 0;
    for (const x of list) {
      b.set(x, o);
      o += x.length;
    }
    return b;
  }
  static isBuffer(x: unknown): boolean {
    return x instanceof BrowserBuffer;
  }
  static byteLength(s: string): number {
    return enc.encode(s).length;
  }
  override subarray(a?: number, b?: number): BrowserBuffer {
    const u = super.subarray(a, b);
    return new BrowserBuffer(u.buffer, u.byteOffset, u.length);
  }
  override toString(encoding = 'utf8'): string {
    if (encoding === 'latin1' || encoding === 'binary') return Array.from(this, (c) => String.fromCharCode(c)).join('');
    if (encoding === 'base64') {
      let bin = '';
      for (let i = 0; i < this.length; i += 0x8000) bin += String.fromCharCode(...this.subarray(i, i + 0x8000));
      return btoa(bin);
    }
    if (encoding === 'ascii') return Array.from(this, (c) => String.fromCharCode(c & 0x7f)).join('');
    if (encoding !== 'utf8' && encoding !== 'utf-8') throw new Error(`Buffer.toString: encoding ${encoding} not supported in the browser`);
    return dec.decode(this);
  }
  readBigUInt64LE(o = 0): bigint {
    return new DataView(this.buffer, this.byteOffset, this.length).getBigUint64(o, true);
  }
  writeBigUInt64LE(v: bigint, o = 0): number {
    new DataView(this.buffer, this.byteOffset, this.length).setBigUint64(o, v, true);
    return o + 8;
  }
}

const g = globalThis as Record<string, unknown>;
if (!g.Buffer) g.Buffer = BrowserBuffer;
if (!g.process) {
  const stream = (log: (s: string) => void) => ({ isTTY: false, write: (s: string) => (log(String(s).replace(/\n$/, '')), true) });
  g.process = {
    env: {},
    versions: {},
    platform: 'browser',
    argv: [],
    cwd: () => '/',
    exit: () => {},
    on: () => {},
    once: () => {},
    memoryUsage: () => ({ rss: 0, heapUsed: 0 }),
    stderr: stream((s) => console.debug(s)),
    stdout: stream((s) => console.log(s)),
  };
}
export {};
