import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash as nodeHash } from 'node:crypto';
import { createHash } from '../src/web/browser/crypto.js';
import { NODE_SHIMS } from '../src/web/train-page.js';

test('the browser page\'s node:crypto shim: SHA-256 equal to node:crypto at every padding boundary, fed in pieces', () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70000]) {
    const b = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 255);
    const h = createHash('sha256');
    h.update(b.subarray(0, n >> 1));
    h.update(b.subarray(n >> 1));
    assert.equal(h.digest('hex'), nodeHash('sha256').update(b).digest('hex'), `length ${n}`);
  }
  assert.equal(createHash('sha256').update('abc').digest('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.throws(() => createHash('md5'), /only sha256/);
  assert.ok(NODE_SHIMS.includes('crypto'));
});

test('the browser page\'s Buffer: latin1/ascii decoding (file-type sniffing), base64 (the IFS classifier) and allocUnsafe (checkpoint hashing)', async () => {
  const { BrowserBuffer } = await import('../src/web/browser/globals.js');
  const b = BrowserBuffer.from(new Uint8Array([0x50, 0x41, 0x52, 0x31, 0xe9]));
  assert.equal(b.subarray(0, 4).toString('latin1'), 'PAR1');
  assert.equal(b.toString('latin1'), 'PAR1\u00e9');
  assert.equal(BrowserBuffer.allocUnsafe(16).length, 16);
  // base64: the IFS classifier's bigram bitset (src/eval/text-classifier.ts), same bytes as Node's Buffer
  const bytes = new Uint8Array(70001).map((_, i) => (i * 131 + 17) & 255);
  const b64 = Buffer.from(bytes).toString('base64');
  assert.equal(BrowserBuffer.from(bytes).toString('base64'), b64);
  assert.deepEqual(new Uint8Array(BrowserBuffer.from(b64, 'base64')), bytes);
  assert.throws(() => b.toString('hex'), /not supported in the browser/);
});
