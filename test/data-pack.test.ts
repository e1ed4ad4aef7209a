/** Truncation, packing and batching: masks survive, rows never see each other, zero-loss batches are errors. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HeedError } from '../src/errors.js';
import { truncateExample, TruncationLog } from '../src/data/truncate.js';
import { blockCausalMask, makeBatch, packExamples, single, batches } from '../src/data/pack.js';
import { Prng } from '../src/data/prng.js';
import type { Example } from '../src/data/types.js';

function ex(id: string, weights: number[]): Example {
  const n = weights.length;
  return { id, line: 1, ids: Int32Array.from({ length: n }, (_, i) => 100 + i), weights: Float32Array.from(weights), kinds: new Uint8Array(n) };
}

describe('truncation', () => {
  // prompt of 4 tokens (weight 0), answer of 3 tokens (weight 1)
  const row = () => ex('r', [0, 0, 0, 0, 1, 1, 1]);

  test('rows within the limit are untouched', () => {
    assert.equal(truncateExample(row(), 7, 'drop').status, 'ok');
    assert.equal(truncateExample(row(), undefined, 'drop').status, 'ok');
  });

  test('drop', () => {
    assert.deepEqual(truncateExample(row(), 6, 'drop'), { status: 'dropped' });
  });

  test('truncate-right keeps the head; the loss can vanish', () => {
    const r = truncateExample(row(), 5, 'truncate-right');
    assert.equal(r.status, 'truncated');
    assert.deepEqual([...r.example!.weights], [0, 0, 0, 0, 1]);
    assert.deepEqual([...r.example!.ids], [100, 101, 102, 103, 104]);
    assert.equal(truncateExample(row(), 4, 'truncate-right').status, 'vanished');
  });

  test('truncate-left keeps the tail and zeroes the new first token', () => {
    const r = truncateExample(row(), 3, 'truncate-left');
    assert.equal(r.status, 'truncated');
    assert.deepEqual([...r.example!.ids], [104, 105, 106]);
    assert.deepEqual([...r.example!.weights], [0, 1, 1]);
    assert.equal(truncateExample(ex('x', [0, 0, 1, 0]), 2, 'truncate-left').status, 'vanished');
  });

  test('a row without any loss is vanished, and the log lists ids', () => {
    const log = new TruncationLog();
    log.add('a', truncateExample(ex('a', [0, 0, 0]), 10, 'drop').status);
    log.add('b', truncateExample(row(), 6, 'drop').status);
    log.add('c', truncateExample(row(), 6, 'truncate-right').status);
    assert.deepEqual(log.vanished, ['a']);
    assert.deepEqual(log.dropped, ['b']);
    assert.equal(log.truncated, 1);
  });
});

describe('packing', () => {
  const r = new Prng(7);
  const rows = Array.from({ length: 60 }, (_, i) => {
    const n = r.int(2, 40);
    return ex(`row${i}`, Array.from({ length: n }, (_, t) => (t === 0 ? 0 : r.chance(0.5) ? 1 : r.pick([0, 0.5]))));
  });

  for (const strategy of ['best-fit-decreasing', 'sequential'] as const) {
    test(`${strategy}: every row lands once, intact, with reset positions and its own segment`, () => {
      const packs = packExamples(rows, { seqLen: 64, padId: 0, strategy });
      const seen = new Map<string, number>();
      for (const p of packs) {
        assert.equal(p.ids.length, 64);
        let o = 0;
        p.rows.forEach((id, s) => {
          seen.set(id, (seen.get(id) ?? 0) + 1);
          const src = rows.find((x) => x.id === id)!;
          const n = src.ids.length;
          assert.deepEqual([...p.ids.subarray(o, o + n)], [...src.ids]);
          assert.deepEqual([...p.weights.subarray(o, o + n)], [...src.weights], 'weights preserved');
          assert.equal(p.weights[o], 0, 'row start carries no loss');
          assert.deepEqual([...p.positions.subarray(o, o + n)], Array.from({ length: n }, (_, t) => t));
          assert.ok(p.segments.subarray(o, o + n).every((x) => x === s));
          o += n;
        });
        assert.equal(o, p.length);
        assert.ok(p.segments.subarray(o).every((x) => x === -1), 'padding segment -1');
        assert.ok(p.weights.subarray(o).every((x) => x === 0), 'padding has no loss');
      }
      assert.equal(seen.size, rows.length);
      assert.ok([...seen.values()].every((v) => v === 1));
      // total weight is preserved
      const sum = (w: Float32Array) => w.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(packs.reduce((a, p) => a + sum(p.weights), 0) - rows.reduce((a, x) => a + sum(x.weights), 0)) < 1e-6);
      if (strategy === 'sequential') assert.deepEqual(packs.flatMap((p) => p.rows), rows.map((x) => x.id), 'file order kept');
    });
  }

  test('best-fit-decreasing is at least as tight as sequential, and deterministic', () => {
    const a = packExamples(rows, { seqLen: 64, padId: 0 });
    const b = packExamples(rows, { seqLen: 64, padId: 0, strategy: 'sequential' });
    assert.ok(a.length <= b.length);
    assert.deepEqual(packExamples(rows, { seqLen: 64, padId: 0 }).map((p) => p.rows), a.map((p) => p.rows));
  });

  test('a row longer than the pack is an error naming it', () => {
    assert.throws(() => packExamples([ex('long', [0, 1, 1, 1])], { seqLen: 3, padId: 0 }), (e: unknown) => e instanceof HeedError && /row long has 4 tokens/.test(e.message));
  });

  test('block-diagonal causal mask', () => {
    const m = blockCausalMask(Int32Array.from([0, 0, 1, 1, 1, -1]));
    const T = 6;
    const allowed = (i: number, j: number) => m[i * T + j] === 1;
    assert.ok(allowed(1, 0) && allowed(1, 1) && !allowed(0, 1));
    assert.ok(!allowed(2, 1) && allowed(4, 2) && allowed(3, 3));
    assert.ok([0, 1, 2, 3, 4, 5].every((j) => !allowed(5, j)), 'padding attends to nothing');
  });
});

describe('batches', () => {
  test('pads to the longest, keeps rows, sums the loss weight', () => {
    const b = makeBatch([single(ex('a', [0, 1, 1])), single(ex('b', [0, 0.5]))], 9);
    assert.equal(b.B, 2);
    assert.equal(b.T, 3);
    assert.deepEqual([...b.ids], [100, 101, 102, 100, 101, 9]);
    assert.deepEqual([...b.segments], [0, 0, 0, 0, 0, -1]);
    assert.equal(b.lossWeight, 2.5);
    assert.deepEqual(b.rows, [['a'], ['b']]);
  });

  test('a batch with zero loss weight is an error, not a NaN', () => {
    assert.throws(() => makeBatch([single(ex('z1', [0, 0])), single(ex('z2', [0, 0, 0]))], 0), (e: unknown) => e instanceof HeedError && /zero loss weight.*z1, z2/.test(e.message));
    assert.throws(() => [...batches([single(ex('ok', [0, 1])), single(ex('z', [0, 0]))], 1, 0)], /zero loss weight \(rows: z\)/);
  });
});
