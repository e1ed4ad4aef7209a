import { HeedError } from '../errors.js';
import { initEngine, type DeviceName } from '../engine/index.js';
import { num } from './args.js';
import type { SamplingOptions } from '../decode/sampling.js';

export const deviceOption = { device: { type: 'string' as const } };

/** Options of the commands that generate from a model and score the responses (ifs, objecqa, rules ablate). */
export const evalModelOptions = {
  model: { type: 'string' as const, short: 'm' },
  variant: { type: 'string' as const },
  limit: { type: 'string' as const },
  'max-tokens': { type: 'string' as const },
  batch: { type: 'string' as const },
  out: { type: 'string' as const },
  threads: { type: 'string' as const },
  json: { type: 'boolean' as const },
  ...deviceOption,
};

/** Sampling flags of the commands that sample text (generate, pretrain samples). */
export const samplingOptions = {
  temperature: { type: 'string' as const },
  'top-p': { type: 'string' as const },
  'top-k': { type: 'string' as const },
  'min-p': { type: 'string' as const },
  'repetition-penalty': { type: 'string' as const },
};

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
