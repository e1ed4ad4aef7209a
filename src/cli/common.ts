import { HeedError } from '../errors.js';
import { initEngine, type DeviceName } from '../engine/index.js';
import { num } from './args.js';

export const deviceOption = { device: { type: 'string' as const } };

export async function startEngine(device: unknown, threads?: unknown) {
  const d = (device ?? 'wasm') as string;
  if (!['wasm', 'webgpu', 'cpu'].includes(d)) throw new HeedError(`--device must be wasm, webgpu or cpu, got "${d}"`, 'use --device wasm (CPU, default) or --device webgpu');
  return initEngine({ device: d as DeviceName, threads: num(threads, 'threads', { int: true, min: 1 }) });
}
