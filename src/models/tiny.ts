/**
 * Tiny random checkpoints for every supported architecture, written as Hugging Face folders by project code.
 * They exercise every code path (GQA, biases, tied/untied heads, RoPE scaling, sliding window, GPT-2 Conv1D)
 * at a size that makes tests fast and fixtures small.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { byteLevelTokenizerJson } from '../io/byte-tokenizer.js';
import { parseModelConfig } from './config.js';
import { saveHostModel } from './load.js';
import { randomParams } from './random.js';

const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
const CHATML = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
export const TINY_VOCAB = 259 + 0; // 3 specials + 256 bytes

const llamaBase = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 272, hidden_size: 32, intermediate_size: 64,
  num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128,
  rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false, hidden_act: 'silu', bos_token_id: 0, eos_token_id: 0,
};

/** name → config.json of each tiny checkpoint */
export const TINY_CONFIGS: Record<string, Record<string, unknown>> = {
  'llama-gqa': { ...llamaBase },
  'llama-tied-llama3rope': {
    ...llamaBase, num_key_value_heads: 4, tie_word_embeddings: true, attention_bias: true, mlp_bias: true, rope_theta: 500000,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 },
  },
  'qwen2': { ...llamaBase, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', num_key_value_heads: 1, tie_word_embeddings: true, rope_theta: 1000000, rms_norm_eps: 1e-6, use_sliding_window: false },
  'mistral-window': { ...llamaBase, architectures: ['MistralForCausalLM'], model_type: 'mistral', head_dim: 16, sliding_window: 6 },
  'gpt2': {
    architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: 272, n_embd: 32, n_head: 4, n_layer: 2, n_positions: 128, n_ctx: 128,
    layer_norm_epsilon: 1e-5, activation_function: 'gelu_new', bos_token_id: 0, eos_token_id: 0,
  },
};

/** Write one tiny checkpoint folder (config, weights, byte-level tokenizer with a ChatML template). */
export function writeTinyModel(dir: string, name: string, seed = 1): void {
  const raw = TINY_CONFIGS[name];
  if (!raw) throw new Error(`unknown tiny model ${name}`);
  const config = parseModelConfig(raw);
  mkdirSync(dir, { recursive: true });
  const tensors = randomParams(config, seed, { std: 0.2 });
  saveHostModel(dir, { raw, tensors, namePrefix: config.arch === 'gpt2' ? 'transformer.' : '' }, { dtype: 'F32' });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(byteLevelTokenizerJson({ specials: SPECIALS })));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: null, eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', chat_template: CHATML, model_max_length: 128 }, null, 2));
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: 0 }, null, 2));
}
