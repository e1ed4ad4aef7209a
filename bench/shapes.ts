/**
 * Benchmark shapes as Hugging Face config.json objects (random weights; no checkpoint is read).
 * The same objects go to the PyTorch side (bench/torch_bench.py), which implements the same math.
 */

export interface BenchShape {
  name: string;
  note: string;
  config: Record<string, unknown>;
  /** forward / training batch [B, T] */
  batch: [number, number];
}

/** The engine probe's GPT: vocab 4096, context 128, 4 layers, d 256, 4 heads, MLP 4x, tied (4.24M params). */
export const PROBE: BenchShape = {
  name: 'probe-4.2M',
  note: 'GPT-2: vocab 4096, n_positions 128, 4 layers, n_embd 256, 4 heads; batch 8x128 (its context is 128; same 1024 tokens as 4x256)',
  config: {
    model_type: 'gpt2', vocab_size: 4096, n_positions: 128, n_layer: 4, n_embd: 256, n_head: 4,
    activation_function: 'gelu_new', layer_norm_epsilon: 1e-5,
  },
  batch: [8, 128],
};

/** ~29.4M-parameter Llama. */
export const LLAMA_30M: BenchShape = {
  name: 'llama-30M',
  note: 'Llama: vocab 8192, hidden 512, 8 layers, 8 heads, 4 KV heads (GQA), intermediate 1536, tied, rope_theta 1e4',
  config: {
    model_type: 'llama', vocab_size: 8192, hidden_size: 512, num_hidden_layers: 8, num_attention_heads: 8,
    num_key_value_heads: 4, intermediate_size: 1536, max_position_embeddings: 2048, rms_norm_eps: 1e-5,
    rope_theta: 10000, tie_word_embeddings: true, hidden_act: 'silu',
  },
  batch: [4, 256],
};

/** SmolLM2-135M's shape with `layers` layers (30 = the real model); the full-fine-tuning search varies layers. */
export function smollm2Config(layers = 30): Record<string, unknown> {
  return {
    model_type: 'llama', vocab_size: 49152, hidden_size: 576, num_hidden_layers: layers, num_attention_heads: 9,
    num_key_value_heads: 3, intermediate_size: 1536, max_position_embeddings: 8192, rms_norm_eps: 1e-5,
    rope_theta: 100000, tie_word_embeddings: true, hidden_act: 'silu',
  };
}

export const SMOLLM2_135M: BenchShape = {
  name: 'smollm2-135M',
  note: 'SmolLM2-135M shape: vocab 49152, hidden 576, 30 layers, 9 heads, 3 KV heads, intermediate 1536, tied, rope_theta 1e5',
  config: smollm2Config(30),
  batch: [4, 256],
};

export const SHAPES: BenchShape[] = [PROBE, LLAMA_30M, SMOLLM2_135M];

/**
 * Qwen2.5-0.5B's shape (494.0M params, 136.1M of them the tied 151,936 x 896 embedding): q/k/v biases
 * (model_type qwen2), 14 heads / 2 KV heads (head_dim 64), rope_theta 1e6. Used by bench/train-bench.ts
 * (the largest LoRA shape); not part of `npm run bench`'s SHAPES.
 */
export function qwen25_05bConfig(layers = 24): Record<string, unknown> {
  return {
    model_type: 'qwen2', vocab_size: 151936, hidden_size: 896, num_hidden_layers: layers, num_attention_heads: 14,
    num_key_value_heads: 2, intermediate_size: 4864, max_position_embeddings: 32768, rms_norm_eps: 1e-6,
    rope_theta: 1000000, tie_word_embeddings: true, hidden_act: 'silu', use_sliding_window: false,
  };
}

export const QWEN25_05B: BenchShape = {
  name: 'qwen2.5-0.5B',
  note: 'Qwen2.5-0.5B shape: vocab 151936, hidden 896, 24 layers, 14 heads, 2 KV heads, intermediate 4864, tied, rope_theta 1e6, q/k/v biases',
  config: qwen25_05bConfig(24),
  batch: [1, 256],
};
