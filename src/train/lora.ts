/**
 * LoRA (Hu et al. 2021) as PEFT does it: for each targeted projection W, y = x·Wᵀ + (alpha/r)·(x·Aᵀ)·Bᵀ with
 * A [r, in] ~ U(-1/√in, 1/√in) (kaiming-uniform, a=√5) and B [out, r] = 0, so training starts at the base
 * model. Only A and B get gradients and optimizer state. Saved two ways: merged into the base weights (a
 * plain Hugging Face folder) and as a PEFT adapter (adapter_model.safetensors + adapter_config.json).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeedError } from '../errors.js';
import type { HostTensor } from '../io/safetensors.js';
import { writeSafetensors } from '../io/safetensors.js';
import type { ModelConfig } from '../models/config.js';
import { mulberry32 } from '../models/random.js';

export type LoraTarget = 'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down';

/** every projection name a LoRA config may target (the Llama family's seven linear layers) */
export const LORA_TARGETS: readonly LoraTarget[] = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];

export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  /** unset: every linear layer of the model's family (defaultLoraTargets) */
  targets?: LoraTarget[];
}

/**
 * The default `lora.targets`: every linear layer of the architecture's blocks. Llama family (llama, qwen2,
 * mistral): q, k, v, o, gate, up, down (q_proj … down_proj); GPT-2: q, k, v (one fused c_attn), o (attn.c_proj),
 * up (mlp.c_fc), down (mlp.c_proj) — it has no gate. On a 2M-parameter model adapters on every linear layer
 * learned ~3x as much per step as attention-only ones (docs/train.md, "LoRA defaults").
 */
export function defaultLoraTargets(arch: ModelConfig['arch']): LoraTarget[] {
  return arch === 'gpt2' ? ['q', 'k', 'v', 'o', 'up', 'down'] : [...LORA_TARGETS];
}

const LLAMA: Record<LoraTarget, string> = { q: 'self_attn.q_proj', k: 'self_attn.k_proj', v: 'self_attn.v_proj', o: 'self_attn.o_proj', gate: 'mlp.gate_proj', up: 'mlp.up_proj', down: 'mlp.down_proj' };
const GPT2: Partial<Record<LoraTarget, string>> = { q: 'attn.c_attn', k: 'attn.c_attn', v: 'attn.c_attn', o: 'attn.c_proj', up: 'mlp.c_fc', down: 'mlp.c_proj' };

export interface LoraModule {
  /** internal module name, e.g. model.layers.0.self_attn.q_proj */
  name: string;
  inDim: number;
  outDim: number;
  /** GPT-2 Conv1D weight layout [in, out] */
  conv1d: boolean;
}

/**
 * The modules a LoRA config targets (GPT-2: q/k/v share the fused c_attn; gate does not exist); `targets`
 * unset: every linear layer of the model's family (defaultLoraTargets).
 */
export function loraModules(c: ModelConfig, targets: LoraTarget[] | undefined, weightShape: (name: string) => number[]): LoraModule[] {
  targets ??= defaultLoraTargets(c.arch);
  const out: LoraModule[] = [];
  const seen = new Set<string>();
  for (let l = 0; l < c.layers; l++) {
    for (const t of targets) {
      const sub = c.arch === 'gpt2' ? GPT2[t] : LLAMA[t];
      if (!sub) throw new HeedError(`lora.targets: "${t}" does not exist in GPT-2 models`, 'use q, k, v (the fused c_attn), o, up, down');
      const name = c.arch === 'gpt2' ? `h.${l}.${sub}` : `model.layers.${l}.${sub}`;
      if (seen.has(name)) continue;
      seen.add(name);
      const s = weightShape(`${name}.weight`);
      const conv1d = c.arch === 'gpt2';
      out.push({ name, inDim: conv1d ? s[0] : s[1], outDim: conv1d ? s[1] : s[0], conv1d });
    }
  }
  return out;
}

export function initLora(mods: LoraModule[], r: number, seed: number): Map<string, HostTensor> {
  const rand = mulberry32(seed ^ 0x10a4);
  const out = new Map<string, HostTensor>();
  for (const m of mods) {
    const bound = 1 / Math.sqrt(m.inDim);
    out.set(`${m.name}.lora_A`, { shape: [r, m.inDim], data: Float32Array.from({ length: r * m.inDim }, () => (2 * rand() - 1) * bound) });
    out.set(`${m.name}.lora_B`, { shape: [m.outDim, r], data: new Float32Array(m.outDim * r) });
  }
  return out;
}

/** Base weights with scale·B·A added (host, f32). Returns a new map; the base map is not modified. */
export function mergeLora(base: Map<string, HostTensor>, adapters: Map<string, HostTensor>, mods: LoraModule[], scale: number): Map<string, HostTensor> {
  const out = new Map(base);
  for (const m of mods) {
    const A = adapters.get(`${m.name}.lora_A`)!;
    const B = adapters.get(`${m.name}.lora_B`)!;
    const W = base.get(`${m.name}.weight`)!;
    const r = A.shape[0];
    const w = Float32Array.from(W.data);
    for (let o = 0; o < m.outDim; o++) {
      for (let k = 0; k < r; k++) {
        const b = scale * B.data[o * r + k];
        if (b === 0) continue;
        const arow = k * m.inDim;
        if (m.conv1d) for (let i = 0; i < m.inDim; i++) w[i * m.outDim + o] += b * A.data[arow + i];
        else {
          const wrow = o * m.inDim;
          for (let i = 0; i < m.inDim; i++) w[wrow + i] += b * A.data[arow + i];
        }
      }
    }
    out.set(`${m.name}.weight`, { shape: W.shape, data: w });
  }
  return out;
}

/**
 * PEFT `target_modules` for the adapted modules: the module's own name (q_proj, c_attn …), which PEFT matches
 * as a suffix of every module path; where that name also belongs to an unadapted module (GPT-2's c_proj is both
 * attn.c_proj, target o, and mlp.c_proj, target down) the parent is kept (attn.c_proj), so PEFT adapts exactly
 * the modules the adapter file holds.
 */
export function peftTargetModules(moduleNames: string[]): string[] {
  const parentsOf = new Map<string, Set<string>>();
  for (const n of moduleNames) {
    const parts = n.split('.');
    const leaf = parts.at(-1)!;
    if (!parentsOf.has(leaf)) parentsOf.set(leaf, new Set());
    parentsOf.get(leaf)!.add(parts.at(-2) ?? '');
  }
  const out: string[] = [];
  for (const [leaf, parents] of parentsOf) {
    if (leaf === 'c_proj' && parents.size === 1) out.push(`${[...parents][0]}.c_proj`);
    else out.push(leaf);
  }
  return out;
}

/** Save adapters in PEFT's layout so `PeftModel.from_pretrained(base, dir)` loads them. */
export function savePeftAdapter(dir: string, adapters: Map<string, HostTensor>, lc: LoraConfig, c: ModelConfig, namePrefix: string, baseModel: string): void {
  const named = new Map<string, HostTensor>();
  for (const [k, t] of adapters) {
    const m = /^(.*)\.lora_([AB])$/.exec(k)!;
    named.set(`base_model.model.${namePrefix}${m[1]}.lora_${m[2]}.weight`, t);
  }
  writeSafetensors(join(dir, 'adapter_model.safetensors'), named, { dtype: 'F32' });
  const targetModules = peftTargetModules([...adapters.keys()].filter((k) => k.endsWith('.lora_A')).map((k) => k.slice(0, -'.lora_A'.length)));
  writeFileSync(
    join(dir, 'adapter_config.json'),
    JSON.stringify({ peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: baseModel, r: lc.r, lora_alpha: lc.alpha, lora_dropout: lc.dropout, target_modules: targetModules, bias: 'none', fan_in_fan_out: c.arch === 'gpt2', inference_mode: true }, null, 2) + '\n',
  );
}

/**
 * Merge the adapters held in one tensor map (base `<module>.weight` next to `<module>.lora_A` [r, in] and
 * `<module>.lora_B` [out, r], as a LoRA model's params hold them) into a copy of the base weights:
 * W + scale·B·A (GPT-2 Conv1D: W [in, out] + scale·(B·A)ᵀ), the weight of heed's LoRA forward
 * y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ. Returns the merged map without the lora_ tensors; `tensors` is not modified.
 */
export function mergeLoraTensors(c: ModelConfig, tensors: Map<string, HostTensor>, scale: number): Map<string, HostTensor> {
  const base = new Map<string, HostTensor>();
  const adapters = new Map<string, HostTensor>();
  for (const [k, t] of tensors) (/\.lora_[AB]$/.test(k) ? adapters : base).set(k, t);
  const mods: LoraModule[] = [];
  for (const [k, A] of adapters) {
    if (!k.endsWith('.lora_A')) continue;
    const name = k.slice(0, -'.lora_A'.length);
    const B = adapters.get(`${name}.lora_B`);
    const W = base.get(`${name}.weight`);
    const conv1d = c.arch === 'gpt2';
    const [r, inDim] = A.shape;
    const outDim = B?.shape[0] ?? -1;
    const want = conv1d ? [inDim, outDim] : [outDim, inDim];
    if (!B || !W || B.shape[1] !== r || W.shape.join() !== want.join()) throw new HeedError(`LoRA module ${name}: ${!W ? 'no base weight' : !B ? 'lora_A without lora_B' : `lora_A [${A.shape}] / lora_B [${B.shape}] do not fit the weight [${W.shape}]`}`, 'the adapters come from another model');
    mods.push({ name, inDim, outDim, conv1d });
  }
  for (const k of adapters.keys()) if (k.endsWith('.lora_B') && !adapters.has(k.replace(/_B$/, '_A'))) throw new HeedError(`LoRA module ${k.slice(0, -7)}: lora_B without lora_A`, 'the adapters come from another model');
  return mergeLora(base, adapters, mods, scale);
}
