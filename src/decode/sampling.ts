/** Host-side token selection: greedy, temperature, top-k, top-p (nucleus), seeded. Order as in transformers. */

export interface SamplingOptions {
  /** 0 (or undefined) = greedy */
  temperature?: number;
  topK?: number;
  topP?: number;
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
  let r = rand() * z;
  for (let k = 0; k < idx.length; k++) {
    r -= probs[k];
    if (r < 0) return idx[k];
  }
  return idx[idx.length - 1];
}
