import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { plateauStop, firstStop, IfsEarlyStopping, DEFAULT_PLATEAU } from '../src/eval/early-stop.js';
import type { GenerateOptions, Generation, TextGenerator } from '../src/decode/generate.js';
import type { CallbackContext } from '../src/train/callbacks.js';
import { tmp } from './helpers.js';

const R = { patience: 3, minDelta: 0.01, minIfs: 0.9 };

test('plateau rule on synthetic curves: stops exactly where it should', () => {
  // rises to 0.93 at index 4, then flat: indices 5,6,7 bring no gain over max(h[0..4]) → stop at 7
  assert.equal(firstStop([0.3, 0.5, 0.7, 0.85, 0.93, 0.93, 0.935, 0.932, 0.94], R), 7);
  // flat below min_ifs never stops
  assert.equal(firstStop([0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6], R), -1);
  // plateau then a jump: the jump resets the window
  assert.equal(firstStop([0.9, 0.91, 0.91, 0.912, 0.95, 0.951, 0.95, 0.95], R), 7);
  assert.equal(firstStop([0.88, 0.9, 0.905, 0.95, 0.951, 0.95, 0.95], R), 6);
  // a drop after the peak counts as no improvement, but IFS must still be ≥ min_ifs
  assert.equal(firstStop([0.92, 0.95, 0.8, 0.8, 0.8, 0.91], R), 5);
  // exactly min_delta of gain is enough to continue
  assert.equal(firstStop([0.9, 0.91, 0.9, 0.9, 0.91], { ...R, patience: 2 }), 3);
  const d = plateauStop([0.95, 0.95, 0.95, 0.95], R);
  assert.equal(d.stop, true);
  assert.equal(d.gain, 0);
  assert.match(d.reason!, /IFS plateau/);
  assert.deepEqual(plateauStop([0.95, 0.95, 0.95], R), { stop: false, gain: null }); // needs patience + 1 points
  assert.deepEqual(DEFAULT_PLATEAU, R);
});

test('plateau rule never stops a still-rising curve (random rising curves, many settings)', () => {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let trial = 0; trial < 500; trial++) {
    const patience = 1 + Math.floor(rnd() * 5);
    const minDelta = 0.001 + rnd() * 0.05;
    // rises by at least minDelta within every window of `patience` evaluations (steps ≥ minDelta/patience·1.01)
    const curve = [0.85 + rnd() * 0.1];
    for (let i = 1; i < 40; i++) curve.push(curve[i - 1] + (minDelta / patience) * (1.01 + rnd()));
    assert.equal(firstStop(curve, { patience, minDelta, minIfs: 0 }), -1, `patience ${patience} minDelta ${minDelta}`);
  }
});

class Stub implements TextGenerator {
  readonly name = 'stub';
  constructor(public answerShare: number) {}
  async generate(prompts: string[], _o?: GenerateOptions): Promise<Generation[]> {
    return prompts.map((p, i) => ({ prompt: p, promptIds: [], text: i / prompts.length < this.answerShare ? 'The capital of France is Paris, a large city in Europe.' : 'of the following cities is the capital of France?', ids: [1], finishReason: 'eos' as const }));
  }
}

test('IfsEarlyStopping against a stub context: metrics each eval, stop at the plateau, best checkpoint, responses saved', async () => {
  const runDir = tmp();
  const cb = new IfsEarlyStopping({ budget: 20, variant: 'C', maxTokens: 8, batchSize: 10, objecqa: 4, patience: 2, minDelta: 0.05, minIfs: 0.5 });
  const gen = new Stub(0);
  const ctx = (step: number): CallbackContext => ({ step, epoch: 0, stage: 0, stageName: 'main', metrics: {}, generator: gen, runDir });
  const shares = [0.2, 0.6, 0.9, 0.9, 0.9, 0.9];
  const results = [];
  for (let i = 0; i < shares.length; i++) {
    gen.answerShare = shares[i];
    const r = await cb.onEval(ctx((i + 1) * 10));
    results.push(r);
    if (r.stop) break;
  }
  assert.equal(results.length, 5, 'stops at the 5th evaluation (two evaluations without a 0.05 gain)');
  assert.equal(results[0].metrics!.ifs, 0.2);
  assert.ok(results[2].metrics!.ifs >= 0.9);
  for (const r of results) for (const k of ['ifs', 'ifs_partial', 'ifs_full', 'objecqa']) assert.equal(typeof r.metrics![k], 'number', k);
  assert.equal(results[4].stop, true);
  assert.match(results[4].reason!, /plateau/);
  const end = await cb.onEnd();
  assert.equal((end.ifs_best as { step: number }).step, 30);
  assert.equal((end.ifs_history as unknown[]).length, 5);
  assert.ok(existsSync(join(runDir, 'ifs', 'step-10.jsonl')));
  assert.equal(readFileSync(join(runDir, 'ifs', 'step-50.jsonl'), 'utf8').trim().split('\n').length, 20);
  // measureOnly never stops
  const m = new IfsEarlyStopping({ budget: 4, variant: 'C', patience: 1, minDelta: 1, minIfs: 0, measureOnly: true, saveResponses: false });
  for (let i = 0; i < 3; i++) assert.equal((await m.onEval(ctx(i))).stop, undefined);
});
