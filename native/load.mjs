// Loader of the optional native GEMM addon (native/build/Release/heed_gemm.node, `npm run build:native`).
// loadNativeGemm() returns the addon, or null when it is not built or does not load; in that case it prints
// one line (once per process, unless quiet) saying heed uses the wasm engine, and lastReason() says why.
// HEED_NATIVE=0 disables the addon even when it is built (not for an explicit `file`).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ADDON_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), 'build', 'Release', 'heed_gemm.node');

let cached; // undefined = not tried yet
let reason = '';
let told = false;

/** Load one addon file: the module, or null and why (HEED_NATIVE=0 honoured when `obeyEnv`). */
function loadAddon(file, obeyEnv) {
  if (obeyEnv && process.env.HEED_NATIVE === '0') return { mod: null, reason: 'HEED_NATIVE=0' };
  if (!existsSync(file)) return { mod: null, reason: `${path.relative(process.cwd(), file) || file} is not built (npm run build:native)` };
  try {
    return { mod: createRequire(import.meta.url)(file), reason: '' };
  } catch (e) {
    return { mod: null, reason: `the addon does not load (${e instanceof Error ? e.message.split('\n')[0] : e}); rebuild it with npm run build:native` };
  }
}

/**
 * @param {{ file?: string, quiet?: boolean }} [opts] file: another addon path (tests); quiet: no message
 * @returns {null | { gemm(ta: boolean, tb: boolean, M: number, N: number, K: number, A: Float32Array, B: Float32Array, C: Float32Array, threads?: number): void, gemmLd(ta: boolean, tb: boolean, M: number, N: number, K: number, A: Float32Array, lda: number, B: Float32Array, ldb: number, C: Float32Array, ldc: number, threads: number): void, info(): { isa: string, hardwareThreads: number }, setIsa(name: string): string, fmaPeak(iters?: number): number }}
 */
export function loadNativeGemm(opts = {}) {
  const file = opts.file ?? ADDON_PATH;
  if (opts.file === undefined && cached !== undefined) return cached;
  let mod;
  ({ mod, reason } = loadAddon(file, opts.file === undefined));
  if (!mod && !opts.quiet && !told) {
    told = true;
    console.error(`heed: native GEMM kernels not available: ${reason}; using the wasm engine`);
  }
  if (opts.file === undefined) cached = mod;
  return mod;
}

/** why the last loadNativeGemm() returned null ('' after a successful load) */
export function lastReason() {
  return reason;
}

// The optional native AdamW addon (native/build/Release/heed_adamw.node, built by the same `npm run build:native`):
// the host optimizer's update loop (src/train/host-optimizer.ts). Quiet: without it heed runs the same update as
// a JS loop. HEED_NATIVE=0 disables it too.
export const ADAMW_ADDON_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), 'build', 'Release', 'heed_adamw.node');
let adamwCached; // undefined = not tried yet
let adamwReason = '';

/**
 * @returns {null | { adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, scalars: Float32Array, decay: boolean, threads: number): void }}
 */
export function loadNativeAdamw() {
  if (adamwCached !== undefined) return adamwCached;
  ({ mod: adamwCached, reason: adamwReason } = loadAddon(ADAMW_ADDON_PATH, true));
  return adamwCached;
}

/** why loadNativeAdamw() returned null ('' after a successful load) */
export function lastAdamwReason() {
  return adamwReason;
}
