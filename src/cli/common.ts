import { HeedError } from '../errors.js';
import { initEngine, type DeviceName } from '../engine/index.js';
import { flags, num } from './args.js';
import type { SamplingOptions } from '../decode/sampling.js';

export const deviceOption = flags({ device: { type: 'string', arg: 'wasm|webgpu', default: 'wasm', help: 'where tensors run: wasm (CPU) or webgpu (a WebGPU adapter)' } });

/** --threads: the engine's worker threads. */
export const threadsOption = flags({ threads: { type: 'string', arg: 'N', default: 'all cores (HEED_THREADS)', help: 'engine worker threads' } });

/** Options of the commands that generate from a model and score the responses (ifs, objecqa, rules ablate). */
export const evalModelOptions = flags({
  model: { type: 'string', short: 'm', arg: 'SPEC', help: 'the model: a folder, gguf:<file> or openai:<base-url>#<model> (required)' },
  variant: { type: 'string', arg: 'A|B|C', help: 'prompt wrapper: A = Alpaca, B = "### Response:" suffix, C = the bare instruction' },
  limit: { type: 'string', arg: 'N', default: 'all', help: 'score at most N prompts (a balanced subset)' },
  'max-tokens': { type: 'string', arg: 'N', help: 'new tokens per response' },
  batch: { type: 'string', arg: 'N', help: 'prompts generated together' },
  out: { type: 'string', arg: 'FILE', help: 'write every response as JSONL here' },
  ...threadsOption,
  json: { type: 'boolean', help: 'print the result as JSON' },
  ...deviceOption,
});

/** Sampling flags of the commands that sample text (generate, pretrain samples). */
export const samplingOptions = flags({
  temperature: { type: 'string', arg: 'T', default: "the model's generation_config.json, else 0", help: 'sampling temperature; 0 = greedy' },
  'top-p': { type: 'string', arg: 'P', help: 'nucleus sampling: keep the smallest set of tokens with probability >= P' },
  'top-k': { type: 'string', arg: 'K', help: 'keep the K most likely tokens (0 = off)' },
  'min-p': { type: 'string', arg: 'P', help: 'drop tokens less likely than P × the most likely one' },
  'repetition-penalty': { type: 'string', arg: 'R', help: 'divide the logits of tokens already present by R (1 = off)' },
});

/** The sampling flags given (undefined where absent), checked. */
export function samplingFlags(values: Record<string, unknown>): SamplingOptions {
  return {
    temperature: num(values.temperature, 'temperature', { min: 0 }),
    topP: num(values['top-p'], 'top-p', { min: 0, max: 1 }),
    topK: num(values['top-k'], 'top-k', { int: true, min: 0 }),
    minP: num(values['min-p'], 'min-p', { min: 0, max: 1 }),
    repetitionPenalty: num(values['repetition-penalty'], 'repetition-penalty', { min: 0.01 }),
  };
}

export async function startEngine(device: unknown, threads?: unknown) {
  const d = (device ?? 'wasm') as string;
  if (!['wasm', 'webgpu', 'cpu'].includes(d)) throw new HeedError(`--device must be wasm, webgpu or cpu, got "${d}"`, 'use --device wasm (CPU, default) or --device webgpu');
  return initEngine({ device: d as DeviceName, threads: num(threads, 'threads', { int: true, min: 1 }) });
}

/**
 * After a run of a command that trains (train, pretrain, demo): one line on stderr when the optional native
 * matmul kernels are not built (they make training 2–2.5× faster). Said after the run, never before an error,
 * so that errors stay one line; other commands do not say it.
 */
export function nativeNote(info: Awaited<ReturnType<typeof initEngine>>): void {
  if (info.native?.unavailable) console.error(`heed: native GEMM kernels not available: ${info.native.reason}; the run used the wasm engine`);
}
