import { HeedError } from '../errors.js';
import { initEngine, type DeviceName } from '../engine/index.js';
import { num } from './args.js';

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

export async function startEngine(device: unknown, threads?: unknown) {
  const d = (device ?? 'wasm') as string;
  if (!['wasm', 'webgpu', 'cpu'].includes(d)) throw new HeedError(`--device must be wasm, webgpu or cpu, got "${d}"`, 'use --device wasm (CPU, default) or --device webgpu');
  return initEngine({ device: d as DeviceName, threads: num(threads, 'threads', { int: true, min: 1 }) });
}
