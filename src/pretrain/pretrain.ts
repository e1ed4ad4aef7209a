/**
 * Pretraining a small Llama (tied embeddings) from scratch on plain text: BPE tokenizer (trained here or
 * reused), 5% of documents held out, random windows of the training token stream (documents joined by
 * <|endoftext|>), AdamW with linear warmup and cosine decay to 10% of the peak, held-out loss on fixed windows
 * every `evalEvery` steps. Writes a Hugging Face model folder plus training.json (the curve).
 */
import { mkdirSync, writeFileSync, existsSync, copyFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { toHost } from '../engine/index.js';
import { parseModelConfig, parameterCount, readModelConfig } from '../models/config.js';
import { randomParams, mulberry32 } from '../models/random.js';
import { toDevice, toHostTensors, saveHostModel, loadHostModel } from '../models/load.js';
import { readFileSync } from 'node:fs';
import { makeTrainer, toDeviceBatch } from '../train/step.js';
import { adamw, chain, decays } from '../train/adamw.js';
import { lrAt, type Schedule } from '../train/schedule.js';
import { loadTokenizer, type HeedTokenizer } from '../io/tokenizer.js';
import { HeedError } from '../errors.js';
import { trainBpe, bpeTokenizerJson, DEFAULT_SPECIALS, type BpeResult } from './bpe.js';
import { readCorpus, splitHeldOut } from './corpus.js';
import { SAMPLE_DEFAULTS, sampleFluency, samplePrompts, type SampleReport } from './samples.js';
import { EngineGenerator } from '../decode/generate.js';
import { samplingConfig, type SamplingOptions } from '../decode/sampling.js';

export interface PretrainOptions {
  data: string;
  out: string;
  /** reuse this folder's tokenizer instead of training a BPE */
  tokenizer?: string;
  /** continue from this model folder: its weights, config (shape flags are ignored) and tokenizer; a fresh optimizer and schedule */
  init?: string;
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  context: number;
  steps: number;
  batch: number;
  seq: number;
  lr: number;
  warmup: number;
  weightDecay: number;
  seed: number;
  evalEvery: number;
  /** windows (of batch × seq) of held-out text per evaluation */
  evalBatches: number;
  dtype: 'F32' | 'F16';
  heldOutFrac: number;
  /** save the folder at every evaluation (so a stopped run leaves a usable model) */
  saveEveryEval: boolean;
  /** continuations of held-out openings sampled at the end and measured (src/pretrain/samples.ts); 0 = none */
  samples: number;
}

export const PRETRAIN_DEFAULTS: Omit<PretrainOptions, 'data' | 'out'> = {
  vocab: 3072, hidden: 192, layers: 4, heads: 6, kvHeads: 2, intermediate: 512, context: 512,
  steps: 1000, batch: 8, seq: 256, lr: 2e-3, warmup: 100, weightDecay: 0.1, seed: 1234,
  evalEvery: 100, evalBatches: 8, dtype: 'F32', heldOutFrac: 0.05, saveEveryEval: true, samples: SAMPLE_DEFAULTS.samples,
};

export interface CurvePoint { step: number; loss: number; lr: number; tokens: number; seconds: number; heldOut?: number }

export interface PretrainResult {
  curve: CurvePoint[];
  heldOut: number;
  firstHeldOut: number;
  seconds: number;
  params: number;
  trainTokens: number;
  heldOutTokens: number;
  tokenizer: Record<string, unknown>;
  samples?: SampleReport;
}

export type PretrainProgress = (p: { step: number; steps: number; loss: number; heldOut?: number; tokensPerSec: number; lr: number; phase: 'train' | 'eval' }) => void;

/** Pretraining's schedule (src/train/schedule.ts): linear warmup, cosine decay to 10% of the peak. */
export function pretrainSchedule(o: Pick<PretrainOptions, 'lr' | 'warmup' | 'steps'>): Schedule {
  return { kind: 'cosine', lr: o.lr, warmupSteps: o.warmup, totalSteps: o.steps, minLrRatio: 0.1 };
}

function validate(o: PretrainOptions): void {
  if (o.hidden % o.heads !== 0) throw new HeedError(`--hidden ${o.hidden} is not divisible by --heads ${o.heads}`, 'pick heads that divide hidden (e.g. hidden 192, heads 6)');
  if (o.heads % o.kvHeads !== 0) throw new HeedError(`--heads ${o.heads} is not divisible by --kv-heads ${o.kvHeads}`, 'pick kv-heads that divide heads');
  if ((o.hidden / o.heads) % 2 !== 0) throw new HeedError(`head size ${o.hidden / o.heads} is odd; rotary embeddings need an even head size`, 'change --hidden or --heads');
  if (o.seq > o.context) throw new HeedError(`--seq ${o.seq} is longer than --context ${o.context}`, `pass --context ${o.seq} or more`);
  if (o.steps < 1) throw new HeedError('--steps must be at least 1', 'pass --steps 1000');
}

/** The tokenizer files of a pretrained base model: tokenizer.json, tokenizer_config.json, generation_config.json. */
function writeTokenizerFiles(dir: string, tj: Record<string, unknown>, context: number): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tj));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: null, eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', unk_token: null, model_max_length: context, tokenizer_class: 'PreTrainedTokenizerFast' }, null, 2) + '\n');
}

/** generation_config.json of a pretrained model: EOS = BOS = PAD, and the sampling its samples were measured with. */
export function generationConfigJson(eos: number, sampling: SamplingOptions = {}): Record<string, unknown> {
  return { bos_token_id: eos, eos_token_id: eos, pad_token_id: eos, ...samplingConfig(sampling) };
}

export async function pretrain(o: PretrainOptions, onProgress: PretrainProgress = () => {}, log: (s: string) => void = () => {}): Promise<PretrainResult> {
  validate(o);
  const t0 = performance.now();
  const docs = readCorpus(o.data);
  const { train, heldOut } = splitHeldOut(docs, o.heldOutFrac);
  let tokStats: Record<string, unknown>;
  let tok: HeedTokenizer;
  const tokDir = o.init ?? o.tokenizer;
  let previous: Record<string, unknown> | undefined;
  if (o.init && existsSync(join(o.init, 'training.json'))) previous = JSON.parse(readFileSync(join(o.init, 'training.json'), 'utf8'));
  // the global step of the weights in --init: the last curve point written with them (a run stopped before its
  // planned steps saved its folder at an evaluation), else the previous offset plus its planned steps
  const prevCurve = previous?.curve as Array<{ step: number }> | undefined;
  const stepOffset = previous ? Number(prevCurve?.at(-1)?.step ?? Number(previous.stepOffset ?? 0) + Number((previous.training as { steps?: number } | undefined)?.steps ?? 0)) : 0;
  if (tokDir) {
    tok = loadTokenizer(tokDir);
    mkdirSync(o.out, { recursive: true });
    if (tokDir !== o.out) for (const f of ['tokenizer.json', 'tokenizer_config.json']) if (existsSync(join(tokDir, f))) copyFileSync(join(tokDir, f), join(o.out, f));
    tokStats = (previous?.tokenizer as Record<string, unknown> | undefined) ?? { source: tokDir, vocabSize: tok.vocabSize };
  } else {
    const bpe: BpeResult = trainBpe(train, { vocabSize: o.vocab, specials: DEFAULT_SPECIALS });
    log(`BPE: ${bpe.vocabSize} tokens (${bpe.stats.merges} merges) from ${bpe.stats.distinctPieces} distinct pieces of ${bpe.stats.bytes} bytes in ${bpe.stats.seconds.toFixed(1)} s`);
    writeTokenizerFiles(o.out, bpeTokenizerJson(bpe), o.context);
    tok = loadTokenizer(o.out);
    tokStats = { trainedBy: 'heed pretrain (byte-level BPE, GPT-2 pre-tokenisation)', vocabSize: bpe.vocabSize, ...bpe.stats };
  }
  const eos = tok.tokenToId('<|endoftext|>');
  if (eos === undefined) throw new HeedError('the tokenizer has no <|endoftext|> token', 'train the BPE here (omit --tokenizer) or use a tokenizer with <|endoftext|>');
  writeFileSync(join(o.out, 'generation_config.json'), JSON.stringify(generationConfigJson(eos), null, 2) + '\n');

  const enc = (ds: string[]) => {
    const ids: number[] = [];
    for (const d of ds) {
      for (const x of tok.encode(d)) ids.push(x);
      ids.push(eos);
    }
    return Int32Array.from(ids);
  };
  const trainIds = enc(train);
  const heldIds = enc(heldOut);
  const trainBytes = train.reduce((s, d) => s + Buffer.byteLength(d) + 1, 0);
  const heldBytes = heldOut.reduce((s, d) => s + Buffer.byteLength(d) + 1, 0);
  tokStats.trainBytesPerToken = trainBytes / trainIds.length;
  const { batch: B, seq: T } = o;
  if (trainIds.length <= T + 1) throw new HeedError(`the training text has ${trainIds.length} tokens, fewer than one window of ${T}`, 'use a larger corpus or a smaller --seq');
  if (heldIds.length <= T + 1) throw new HeedError(`the held-out text has ${heldIds.length} tokens, fewer than one window of ${T}`, 'use a larger corpus or a smaller --seq');
  log(`corpus: ${docs.length} documents (${train.length} train, ${heldOut.length} held out), ${trainIds.length} train tokens, ${heldIds.length} held-out tokens (${(trainBytes / trainIds.length).toFixed(2)} bytes/token)`);

  const initModel = o.init ? loadHostModel(o.init) : undefined;
  if (initModel) {
    const c = readModelConfig(o.init!).raw as Record<string, number>;
    Object.assign(o, { hidden: c.hidden_size, layers: c.num_hidden_layers, heads: c.num_attention_heads, kvHeads: c.num_key_value_heads ?? c.num_attention_heads, intermediate: c.intermediate_size, context: c.max_position_embeddings });
    validate(o);
  }
  const raw = initModel ? { ...initModel.raw, torch_dtype: 'float32' } : {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: tok.vocabSize, hidden_size: o.hidden, intermediate_size: o.intermediate,
    num_hidden_layers: o.layers, num_attention_heads: o.heads, num_key_value_heads: o.kvHeads, max_position_embeddings: o.context, rms_norm_eps: 1e-5,
    rope_theta: 10000, tie_word_embeddings: true, hidden_act: 'silu', bos_token_id: eos, eos_token_id: eos, pad_token_id: eos, torch_dtype: 'float32',
  };
  const config = parseModelConfig(raw);
  const params = parameterCount(config);
  log(`model: Llama ${o.layers} layers, hidden ${o.hidden}, heads ${o.heads}/${o.kvHeads}, intermediate ${o.intermediate}, vocab ${tok.vocabSize}, ${(params / 1e6).toFixed(2)}M parameters`);

  const rand = mulberry32(o.seed);
  const window = (src: Int32Array) => {
    const ids = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const s = Math.floor(rand() * (src.length - T));
      ids.set(src.subarray(s, s + T), b * T);
    }
    return ids;
  };
  // fixed held-out windows, evenly spaced over the held-out stream
  const nWin = Math.min(o.evalBatches * B, Math.max(1, Math.floor(heldIds.length / T)));
  const nEvalBatches = Math.max(1, Math.ceil(nWin / B));
  const heldBatches = Array.from({ length: nEvalBatches }, (_, i) => {
    const ids = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const w = (i * B + b) % nWin;
      const s = Math.floor((w * (heldIds.length - T)) / Math.max(1, nWin));
      ids.set(heldIds.subarray(s, s + T), b * T);
    }
    return ids;
  });
  const weights = new Float32Array(B * T).fill(1);
  const optimizer = chain(adamw({ beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: o.weightDecay, decayMask: decays }));
  const tr = makeTrainer(config, optimizer);
  let p = toDevice(initModel ? initModel.tensors : randomParams(config, o.seed, { std: 0.02, exactNorms: true }));
  let ostate = optimizer.init(p);
  const heldLoss = async () => {
    let s = 0;
    for (const ids of heldBatches) s += (await toHost(tr.evalLoss(p, toDeviceBatch({ B, T, ids, weights }))))[0];
    return s / heldBatches.length;
  };

  const curve: CurvePoint[] = [];
  const tTrain = performance.now();
  const summary = (final: boolean) => ({
    corpus: o.data,
    documents: { total: docs.length, train: train.length, heldOut: heldOut.length },
    tokens: { train: trainIds.length, heldOut: heldIds.length, trainBytes, heldOutBytes: heldBytes },
    tokenizer: tokStats,
    model: { hidden: o.hidden, layers: o.layers, heads: o.heads, kvHeads: o.kvHeads, intermediate: o.intermediate, vocab: tok.vocabSize, context: o.context, params, tiedEmbeddings: true, dtype: o.dtype },
    training: { steps: o.steps, batch: B, seq: T, tokensPerStep: B * T, lr: o.lr, warmup: o.warmup, schedule: 'linear warmup, cosine decay to 10% (src/train/schedule.ts)', weightDecay: o.weightDecay, seed: o.seed, optimizer: 'AdamW (0.9, 0.95)' },
    finished: final,
    ...(o.init ? { init: o.init, stepOffset, previous } : {}),
    seconds: (performance.now() - tTrain) / 1000,
    curve,
  });
  const save = async (final: boolean) => {
    const tmp = join(o.out, '.saving');
    rmSync(tmp, { recursive: true, force: true });
    saveHostModel(tmp, { raw, tensors: await toHostTensors(p) }, { dtype: o.dtype });
    for (const f of ['config.json', 'model.safetensors']) renameSync(join(tmp, f), join(o.out, f));
    rmSync(tmp, { recursive: true, force: true });
    writeFileSync(join(o.out, 'training.json'), JSON.stringify(summary(final), null, 2) + '\n');
  };

  let lastLoss = NaN;
  const first = await heldLoss();
  curve.push({ step: stepOffset, loss: NaN, lr: 0, tokens: 0, seconds: 0, heldOut: first });
  onProgress({ step: 0, steps: o.steps, loss: NaN, heldOut: first, tokensPerSec: 0, lr: 0, phase: 'eval' });
  let heldNow = first;
  const sched = pretrainSchedule(o);
  for (let step = 1; step <= o.steps; step++) {
    const lr = lrAt(sched, step - 1);
    const out = tr.step(p, ostate, toDeviceBatch({ B, T, ids: window(trainIds), weights }), { lr, count: step });
    p = out.p; ostate = out.state;
    lastLoss = (await toHost(out.loss))[0];
    if (!Number.isFinite(lastLoss)) throw new HeedError(`loss became ${lastLoss} at step ${step}`, 'lower --lr (e.g. half of it) or raise --warmup');
    const el = (performance.now() - tTrain) / 1000;
    const tps = (step * B * T) / el;
    const point: CurvePoint = { step: stepOffset + step, loss: lastLoss, lr, tokens: step * B * T, seconds: el };
    if (step % o.evalEvery === 0 || step === o.steps) {
      heldNow = await heldLoss();
      point.heldOut = heldNow;
      curve.push(point);
      onProgress({ step, steps: o.steps, loss: lastLoss, heldOut: heldNow, tokensPerSec: tps, lr, phase: 'eval' });
      if (o.saveEveryEval || step === o.steps) await save(step === o.steps);
    } else {
      if (step % 10 === 0) curve.push(point);
      onProgress({ step, steps: o.steps, loss: lastLoss, heldOut: heldNow, tokensPerSec: tps, lr, phase: 'train' });
    }
  }
  const s = summary(true);
  let samples: SampleReport | undefined;
  if (o.samples > 0) {
    // what the model writes, measured against held-out text (training.json "samples"); the same sampling
    // settings become the folder's generation_config.json defaults for `heed generate`
    const longest = Math.max(0, ...samplePrompts(heldOut, o.samples, SAMPLE_DEFAULTS.promptWords).map((x) => tok.encode(x.prompt).length));
    const so = { ...SAMPLE_DEFAULTS, samples: o.samples, maxTokens: Math.min(SAMPLE_DEFAULTS.maxTokens, o.context - longest) };
    if (so.maxTokens < 8) log(`samples skipped: the context (${o.context}) leaves ${so.maxTokens} tokens after the longest prompt (${longest})`);
    else {
      const gen = new EngineGenerator({ config, params: p, tokenizer: tok });
      samples = await sampleFluency(gen, train, heldOut, so);
      gen.dispose();
      writeFileSync(join(o.out, 'training.json'), JSON.stringify({ ...s, samples }, null, 2) + '\n');
      writeFileSync(join(o.out, 'generation_config.json'), JSON.stringify(generationConfigJson(eos, so), null, 2) + '\n');
    }
  }
  return { curve, heldOut: heldNow, firstHeldOut: first, seconds: (performance.now() - t0) / 1000, params, trainTokens: trainIds.length, heldOutTokens: heldIds.length, tokenizer: s.tokenizer, samples };
}
