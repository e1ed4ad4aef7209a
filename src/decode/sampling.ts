/** Host-side token selection: repetition penalty, then greedy, or temperature, top-k, top-p (nucleus), min-p, seeded. Order as in transformers. */

export interface SamplingOptions {
  /** 0 (or undefined) = greedy */
  temperature?: number;
  topK?: number;
  topP?: number;
  /**
   * min-p (Nguyen et al. 2024; transformers' min_p, llama.cpp's --min-p): keep the tokens whose probability is at
   * least minP × the top token's (after temperature). Cuts the unlikely tail where the model is sure — inside a
   * word — and keeps choice where it is not.
   */
  minP?: number;
  /**
   * transformers' repetition_penalty (CTRL, Keskar et al. 2019): the logit of every distinct token already in the
   * sequence (prompt and generated) is divided by it when positive and multiplied by it when negative. 1 = off.
   */
  repetitionPenalty?: number;
}

/** Apply `repetitionPenalty` in place to the logits of the distinct ids in `ids`; returns `logits`. */
export function applyRepetitionPenalty(logits: Float32Array, ids: readonly number[], penalty: number): Float32Array {
  if (!(penalty > 0)) throw new RangeError(`repetition penalty must be > 0, got ${penalty}`);
  if (penalty === 1) return logits;
  for (const id of new Set(ids)) {
    if (id < 0 || id >= logits.length) continue;
    const x = logits[id];
    logits[id] = x > 0 ? x / penalty : x * penalty;
  }
  return logits;
}

export function argmax(x: Float32Array): number {
  let best = 0;
  let bv = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > bv) { bv = x[i]; best = i; }
  return best;
}

export function logSoftmax(x: Float32Array): Float32Array {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > m) m = x[i];
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - m);
  const lse = m + Math.log(s);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] - lse;
  return out;
}

/** Pick the next token from logits (after any logits processors). `rand` returns floats in [0,1). */
export function sampleToken(logits: Float32Array, o: SamplingOptions, rand: () => number): number {
  const t = o.temperature ?? 0;
  if (!(t > 0)) return argmax(logits);
  const n = logits.length;
  let idx = Array.from({ length: n }, (_, i) => i).filter((i) => logits[i] > -Infinity);
  if (idx.length === 0) return argmax(logits);
  idx.sort((a, b) => logits[b] - logits[a] || a - b);
  if (o.topK && o.topK > 0 && o.topK < idx.length) idx = idx.slice(0, o.topK);
  const m = logits[idx[0]] / t;
  let probs = idx.map((i) => Math.exp(logits[i] / t - m));
  let z = probs.reduce((a, b) => a + b, 0);
  if (o.topP !== undefined && o.topP < 1) {
    // keep the smallest prefix whose mass reaches topP (always at least one token)
    let acc = 0;
    let keep = 0;
    while (keep < probs.length) {
      acc += probs[keep] / z;
      keep++;
      if (acc >= o.topP) break;
    }
    idx = idx.slice(0, keep);
    probs = probs.slice(0, keep);
    z = probs.reduce((a, b) => a + b, 0);
  }
  if (o.minP !== undefined && o.minP > 0) {
    // probs are relative to the top token's (probs[0] = 1), so the cut is a prefix
    const cut = probs.findIndex((q) => q < o.minP!);
    if (cut > 0) {
      idx = idx.slice(0, cut);
      probs = probs.slice(0, cut);
      z = probs.reduce((a, b) => a + b, 0);
    }
  }
  let r = rand() * z;
  for (let k = 0; k < idx.length; k++) {
    r -= probs[k];
    if (r < 0) return idx[k];
  }
  return idx[idx.length - 1];
}

/** SamplingOptions fields and their generation_config.json keys (transformers' names). */
const CONFIG_KEYS = [['temperature', 'temperature'], ['topK', 'top_k'], ['topP', 'top_p'], ['minP', 'min_p'], ['repetitionPenalty', 'repetition_penalty']] as const;

/**
 * Sampling settings: the flags given, else the model's generation_config.json (as transformers' generate does:
 * do_sample, temperature, top_k, top_p, min_p, repetition_penalty), else `fallback` (default: greedy). When the
 * file does not ask for sampling only its repetition_penalty counts, after the fallback's. `from` says which
 * settings came from the file.
 */
export function samplingDefaults(flags: SamplingOptions, gc: Record<string, unknown>, fallback: SamplingOptions = {}): { options: SamplingOptions; from?: string } {
  const sample = gc.do_sample === true;
  const options: SamplingOptions = {};
  const used: string[] = [];
  for (const [k, key] of CONFIG_KEYS) {
    const inFile = typeof gc[key] === 'number' ? (gc[key] as number) : undefined;
    const file = sample ? (k === 'temperature' ? inFile ?? 1 : inFile) : k === 'repetitionPenalty' ? inFile : undefined;
    const own = flags[k] ?? (sample ? undefined : fallback[k]);
    options[k] = own ?? file;
    if (own === undefined && file !== undefined) used.push(`${k} ${file}`);
  }
  options.temperature ??= 0;
  return { options, from: used.length ? `generation_config.json: ${used.join(', ')} (flags override; --temperature 0 is greedy)` : undefined };
}

/** The generation_config.json keys for sampling settings (the inverse of samplingDefaults); settings that are off are left out. */
export function samplingConfig(o: SamplingOptions): Record<string, unknown> {
  const off: SamplingOptions = { topK: 0, minP: 0, repetitionPenalty: 1 };
  const g: Record<string, unknown> = {};
  const sample = (o.temperature ?? 0) > 0;
  if (sample) g.do_sample = true;
  for (const [k, key] of CONFIG_KEYS) {
    const v = o[k];
    if (v !== undefined && v !== off[k] && (sample || k === 'repetitionPenalty')) g[key] = v;
  }
  return g;
}
