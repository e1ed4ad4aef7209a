/**
 * The compute layer of the offline difficulty scorers and the loss proxy judge: the mean negative
 * log-likelihood (nats per token) of a response under a model folder, with its instruction in the Alpaca
 * wrapper before it, or with nothing but BOS before it. Rows are sorted by length and run in batches padded
 * to a multiple of 64 tokens (few compiled shapes); a pair longer than the context keeps the response's first
 * tokens (at most half the context) and the end of the prompt, and is flagged `truncated`.
 * Callers get numbers only (no tensors leave this file).
 */
import { jit, fromHost, toHost, tree, type Tensor } from '../engine/index.js';
import { loadModel, type Model } from '../models/load.js';
import { tokenNll } from '../train/loss.js';
import { invFreqFor } from '../models/run.js';
import type { Params } from '../models/transformer.js';

export interface NllItem {
  prompt: string;
  response: string;
}
export interface NllResult {
  nll: number;
  tokens: number;
  truncated: boolean;
}

export class NllScorer {
  private fn = jit((p: Params, ids: Tensor, targets: Tensor, positions: Tensor, segments: Tensor, slots: Tensor, inv: Tensor) => tokenNll(this.model.config, p, { ids, targets, positions, segments, slots }, inv));
  readonly maxLen: number;
  constructor(readonly model: Model, o: { maxLen?: number } = {}) {
    this.maxLen = Math.min(o.maxLen ?? 512, model.config.maxPositions ?? 512);
  }

  static async open(dir: string, o: { maxLen?: number } = {}): Promise<NllScorer> {
    return new NllScorer(await loadModel(dir), o);
  }

  private encode(it: NllItem): { ids: number[]; start: number; truncated: boolean } {
    const tok = this.model.tokenizer;
    let p = tok.encode(it.prompt, { addSpecialTokens: true });
    if (!it.prompt && !p.length && tok.bosId !== undefined) p = [tok.bosId];
    if (!p.length) p = [tok.bosId ?? tok.eosIds[0] ?? 0];
    let r = tok.encode(it.response, { addSpecialTokens: false });
    let truncated = false;
    if (p.length + r.length > this.maxLen) {
      truncated = true;
      r = r.slice(0, Math.max(1, Math.min(r.length, Math.floor(this.maxLen / 2), this.maxLen - p.length)));
      if (p.length + r.length > this.maxLen) p = [p[0], ...p.slice(-(this.maxLen - r.length - 1))];
    }
    return { ids: [...p, ...r], start: p.length, truncated };
  }

  /** Mean NLL of each response (items with an empty response give NaN with 0 tokens). */
  async score(items: readonly NllItem[], o: { batch?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<NllResult[]> {
    const B = o.batch ?? 8;
    const enc = items.map((it) => this.encode(it));
    const order = enc.map((_, i) => i).sort((a, b) => enc[a].ids.length - enc[b].ids.length);
    const out = new Array<NllResult>(items.length);
    const inv = () => invFreqFor(this.model.config);
    let done = 0;
    for (let s = 0; s < order.length; s += B) {
      const rows = order.slice(s, s + B);
      const T = Math.min(this.maxLen, Math.ceil(Math.max(...rows.map((i) => enc[i].ids.length)) / 64) * 64);
      const ids = new Int32Array(B * T), targets = new Int32Array(B * T), positions = new Int32Array(B * T), segments = new Int32Array(B * T).fill(-1);
      rows.forEach((ri, b) => {
        const e = enc[ri];
        for (let t = 0; t < e.ids.length; t++) {
          ids[b * T + t] = e.ids[t];
          targets[b * T + t] = t + 1 < e.ids.length ? e.ids[t + 1] : 0;
          positions[b * T + t] = t;
          segments[b * T + t] = 0;
        }
      });
      const slots = Int32Array.from({ length: T }, (_, i) => i);
      const nll = await toHost(
        this.fn(tree.ref(this.model.params), fromHost(ids, [B, T]), fromHost(targets, [B, T]), fromHost(positions, [B, T]), fromHost(segments, [B, T]), fromHost(slots, [T]), inv()) as Tensor,
      );
      rows.forEach((ri, b) => {
        const e = enc[ri];
        let sum = 0, n = 0;
        // response token t (t >= start) is predicted at position t - 1
        for (let t = e.start; t < e.ids.length; t++) {
          sum += nll[b * T + t - 1];
          n++;
        }
        out[ri] = { nll: n ? sum / n : NaN, tokens: n, truncated: e.truncated };
      });
      done += rows.length;
      o.onProgress?.(done, items.length);
    }
    return out;
  }

  dispose(): void {
    this.fn.dispose();
  }
}
