import type { Command } from './main.js';
import { parse, num } from './args.js';
import { HeedError } from '../errors.js';

const usage = 'heed ifs train-classifier [--data F ...] [--out data/ifs/classifier.safetensors] [--seed S] [--epochs N] [--lr X] [--no-noise] [--no-stats] [--json]';

export const command: Command = {
  path: ['ifs', 'train-classifier'],
  summary: 'train the IFS response classifier from conversation files and print its held-out accuracy/precision/recall',
  usage,
  async run(argv) {
    const { values } = parse(argv, { data: { type: 'string', multiple: true }, out: { type: 'string', short: 'o' }, seed: { type: 'string' }, epochs: { type: 'string' }, lr: { type: 'string' }, threads: { type: 'string' }, 'no-noise': { type: 'boolean' }, 'no-stats': { type: 'boolean' }, json: { type: 'boolean' } }, usage, false);
    const { readSources, ifsSplit, evaluateIfsClassifier, evaluateNoise, ifsFeatures, gateFeatures, DEFAULT_TRAIN_FILES, DEFAULT_CLASSIFIER_PATH, IFS_FEATURES, IFS_LABELS } = await import('../eval/ifs/classifier.js');
    const GATE_TRAIN = { epochs: 2, lr: 0.01 };
    const IFS_FEATURES_PLAIN = { ...IFS_FEATURES, stats: false };
    const { TextClassifier } = await import('../eval/text-classifier.js');
    const { trainClassifier, DEFAULT_TRAIN } = await import('../eval/train-classifier.js');
    const { startEngine } = await import('./common.js');
    const files = values.data ?? DEFAULT_TRAIN_FILES;
    const { existsSync } = await import('node:fs');
    const missing = files.filter((f) => !existsSync(f));
    if (missing.length) throw new HeedError(`training data not found: ${missing.join(', ')}`, 'pass --data <conversations.jsonl> (messages rows); the defaults are ../shared/data/{lima,dolly_3k,alpaca_5k}.jsonl beside the checkout');
    const seed = num(values.seed, 'seed', { int: true, min: 0 }) ?? 0;
    const o = { ...DEFAULT_TRAIN, seed, epochs: num(values.epochs, 'epochs', { int: true, min: 1 }) ?? DEFAULT_TRAIN.epochs, lr: num(values.lr, 'lr', { min: 0 }) ?? DEFAULT_TRAIN.lr };
    await startEngine('wasm', values.threads);
    const { rows, bad } = readSources(files);
    const split = ifsSplit(rows, seed, { noise: !values['no-noise'] });
    // the noise set is always measured (built even when training without it)
    const noiseTest = values['no-noise'] ? ifsSplit(rows, seed).noiseTest : split.noiseTest;
    const features = values['no-stats'] ? IFS_FEATURES_PLAIN : ifsFeatures(split.dict);
    const nNoise = split.train.filter((e) => e.label === 0 && e.kind !== 'Ic' && e.kind !== 'Ic+R').length;
    console.error(`[${rows.length} rows (${bad.length} bad) → train ${split.train.length} examples from ${split.sources.train} rows (with cut copies; ${nNoise} project-generated negatives), held-out ${split.test.length} examples from ${split.sources.test} rows + noise set ${noiseTest.length}]`);
    const t0 = performance.now();
    const meta = { labels: IFS_LABELS, task: 'ifs-response', data: files.map((f) => f.split('/').pop()).join(','), seed, epochs: o.epochs, lr: o.lr, model: 'hashed-feature logistic regression with structure features (main) and a language gate', negatives: values['no-noise'] ? 'none' : 'echo → main; synthetic noise, truncated slices, data/ifs/negatives/tiny-dolly*.jsonl → gate' };
    const main = await trainClassifier(split.train, features, meta, { ...o, onEpoch: (e, l) => console.error(`[epoch ${e}: loss ${l.toFixed(4)}, ${((performance.now() - t0) / 1000).toFixed(1)} s]`) });
    let clf = main;
    if (!values['no-noise'] && !values['no-stats']) {
      const g = await trainClassifier(split.gateTrain, gateFeatures(split.dict, split.bigrams), meta, { ...o, ...GATE_TRAIN, onEpoch: (e, l) => console.error(`[gate epoch ${e}: loss ${l.toFixed(4)}, ${((performance.now() - t0) / 1000).toFixed(1)} s]`) });
      clf = new TextClassifier(main.w, main.b, main.cfg, { ...meta, gate: 'language gate: logistic regression on the main features + text statistics (language = the paper-style texts; noise = generated negatives except echo), p = min(p_answer, p_language)' }, 0.5, { w: g.w, b: g.b, cfg: g.cfg });
    }
    const out = values.out ?? DEFAULT_CLASSIFIER_PATH;
    // metrics are measured on the weights as stored (F16), so save, load back, evaluate, save with the metrics
    clf.save(out);
    const stored = TextClassifier.load(out);
    const rep = evaluateIfsClassifier(stored, split.test);
    const noise = evaluateNoise(stored, noiseTest);
    new TextClassifier(stored.w, stored.b, stored.cfg, { ...stored.meta, held_out: rep, noise_held_out: noise, split: { train_examples: split.train.length, test_examples: split.test.length, train_rows: split.sources.train, test_rows: split.sources.test, noise_test_examples: noiseTest.length } }, stored.threshold, stored.gate).save(out);
    if (values.json) console.log(JSON.stringify({ out, held_out: rep, noise_held_out: noise, split: split.sources, train_examples: split.train.length, test_examples: split.test.length }, null, 2));
    else {
      const f = (m: typeof rep.full) => `accuracy ${m.accuracy.toFixed(4)}  precision ${m.precision.toFixed(4)}  recall ${m.recall.toFixed(4)}  (n=${m.n}, tp ${m.tp}, fp ${m.fp}, tn ${m.tn}, fn ${m.fn})`;
      console.log(`held-out (full texts):       ${f(rep.full)}`);
      console.log(`held-out (first 200 chars):  ${f(rep.cut200)}`);
      console.log(`held-out noise set (label 0): accuracy ${noise.accuracy.toFixed(4)} (n=${noise.n}; ${Object.entries(noise.by_kind).map(([k, v]) => `${k} ${v.accuracy.toFixed(3)}/${v.n}`).join(', ')})`);
      console.log(`wrote ${out}`);
    }
    return 0;
  },
};
