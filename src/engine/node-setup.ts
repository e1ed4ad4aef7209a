/**
 * Runs before @jax-js/jax is evaluated (engine/index.ts imports it first): jax-js decides at load time
 * whether wasm memory is shared (it needs a global Worker), so the Worker polyfill and the relaxed-SIMD flag
 * must be in place before then. Threads: HEED_THREADS, else all cores (initEngine may lower it before start).
 */
import v8 from 'node:v8';
import os from 'node:os';
import { installNodeWorkers } from './node-workers.js';

export const RELAXED_SIMD_PROBE = '0061736d0100000001080160037b7b7b017b030201000a0d010b00200020012002fd85020b';

export function wasmValidates(hex: string): boolean {
  try {
    return WebAssembly.validate(Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16))));
  } catch {
    return false;
  }
}

export const isNode = typeof process !== 'undefined' && !!process.versions?.node;

export let relaxedSimd = wasmValidates(RELAXED_SIMD_PROBE);
if (!relaxedSimd && isNode) {
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  relaxedSimd = wasmValidates(RELAXED_SIMD_PROBE);
}

const envThreads = Number(process.env.HEED_THREADS);
export const startupThreads = Number.isInteger(envThreads) && envThreads > 0 ? envThreads : Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
if (isNode) installNodeWorkers(startupThreads);
