/** Seeded random initialisation of a model's parameters on the host (for tiny test checkpoints and benchmarks). */
import type { HostTensor } from '../io/safetensors.js';
import { expectedShapes, type ModelConfig } from './config.js';

/** mulberry32: small, fast, seedable PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function gaussian(rand: () => number): () => number {
  return () => {
    const u = 1 - rand();
    const v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

/**
 * Normal(0, std) weights, norm weights near 1 and biases near 0 (randomised a little so that tests
 * exercise every parameter; pass `exactNorms` for the textbook ones/zeros).
 */
export function randomParams(c: ModelConfig, seed = 0, opts: { std?: number; exactNorms?: boolean; prefix?: string } = {}): Map<string, HostTensor> {
  const std = opts.std ?? 0.02;
  const g = gaussian(mulberry32(seed));
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of expectedShapes(c, opts.prefix ?? '')) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isNorm = /norm|ln_/.test(name) && name.endsWith('.weight');
    const isBias = name.endsWith('.bias');
    if (isNorm) for (let i = 0; i < n; i++) data[i] = opts.exactNorms ? 1 : 1 + 0.1 * g();
    else if (isBias) for (let i = 0; i < n; i++) data[i] = opts.exactNorms ? 0 : 0.02 * g();
    else for (let i = 0; i < n; i++) data[i] = std * g();
    out.set(name, { shape, data });
  }
  return out;
}
