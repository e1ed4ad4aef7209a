/**
 * The engine: the only module that imports @jax-js/jax (pinned in package.json).
 *
 * Node set-up: a Web Worker polyfill over worker_threads starts jax-js's wasm thread pool (all cores by
 * default, HEED_THREADS overrides), relaxed SIMD is switched on before the first wasm compile where the
 * runtime allows, and WebGPU is used when asked for and present.
 *
 * Ownership: jax-js arrays are reference counted by hand. Every op consumes its array arguments; pass
 * `x.ref` to keep using x afterwards. The same holds inside jit-traced functions.
 */
import { isNode, relaxedSimd, startupThreads } from './node-setup.js'; // must stay the first import
import * as jax from '@jax-js/jax';
import { HeedError } from '../errors.js';
import { installNodeWorkers, kernelChannelFromEnv, setKernelChannel, type KernelChannel } from './node-workers.js';

export const np = jax.numpy;
export const nn = jax.nn;
export const lax = jax.lax;
export const random = jax.random;
export const tree = jax.tree;
// jit, valueAndGrad and grad typed by reference: their inferred types are too long for a declaration file (tsconfig.lib.json)
export const jit: typeof jax.jit = jax.jit;
export const valueAndGrad: typeof jax.valueAndGrad = jax.valueAndGrad;
export const grad: typeof jax.grad = jax.grad;
export const { vjp, blockUntilReady, makeJaxpr } = jax;
export type Tensor = jax.Array;
export type DType = jax.DType;
export const f32 = np.float32;
export const f16 = np.float16;
export const i32 = np.int32;

export type DeviceName = 'wasm' | 'webgpu' | 'cpu';

export interface EngineInfo {
  device: DeviceName;
  threads: number;
  relaxedSimd: boolean;
  available: string[];
  version: string;
  /**
   * Matmul kernels: 'native' when jax-js's wasm matmul kernels run on the native GEMM addon (src/engine/native.ts),
   * else 'wasm'. `native` holds the addon's ISA, why the route is off, and live counts of kernels claimed / left to wasm.
   */
  kernels: 'native' | 'wasm';
  native?: import('./native.js').NativeStatus;
  /**
   * How kernels reach the wasm workers (HEED_KERNEL_CHANNEL, src/engine/node-workers.ts): 'main' (the default: the
   * main thread runs worker 0's slice, the others go by postMessage), 'shared' (the main thread's slice, the others
   * through shared-memory mailboxes), 'mailbox' (every slice through the mailboxes), 'message' (every slice by postMessage, jax-js's own way); 'none' without a
   * worker pool (one thread, WebGPU, the browser).
   */
  channel: KernelChannel | 'none';
}

let current: EngineInfo | undefined;

/** Threads for the wasm pool: HEED_THREADS, else all cores. */
export function defaultThreads(): number {
  const env = process.env.HEED_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new HeedError(`HEED_THREADS must be a positive integer, got "${env}"`, 'unset it or set e.g. HEED_THREADS=2');
    return n;
  }
  return startupThreads;
}

/** Where Debian's `chromium` package puts SwiftShader's Vulkan ICD (a CPU Vulkan driver Dawn accepts). */
export const SWIFTSHADER_ICDS = ['/usr/lib/chromium/vk_swiftshader_icd.json', '/usr/lib64/chromium/vk_swiftshader_icd.json', '/opt/google/chrome/vk_swiftshader_icd.json'];

/**
 * Give this runtime a navigator.gpu. Browsers have one. Node gets one from the `webgpu` package (Dawn bindings,
 * prebuilt, no install script needed), which is loaded only when WebGPU is asked for. HEED_WEBGPU_ADAPTER=swiftshader
 * points the Vulkan loader at SwiftShader (CPU) before Dawn starts: for correctness checks on a machine without a GPU.
 * Node 20 has no global `navigator`, and jax-js reads `navigator.userAgent` when it builds kernels: give it one.
 */
async function provideWebGpu(): Promise<{ ok: true } | { ok: false; why: string }> {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator?.gpu) return { ok: true };
  if (!isNode) return { ok: false, why: 'this browser has no navigator.gpu (WebGPU is off, or the page is not a secure context)' };
  if (process.env.HEED_WEBGPU_ADAPTER === 'swiftshader' && !process.env.VK_ICD_FILENAMES) {
    const { existsSync } = await import('node:fs');
    const icd = SWIFTSHADER_ICDS.find((f) => existsSync(f));
    if (!icd) return { ok: false, why: `HEED_WEBGPU_ADAPTER=swiftshader but no vk_swiftshader_icd.json found (looked in ${SWIFTSHADER_ICDS.join(', ')})` };
    process.env.VK_ICD_FILENAMES = icd;
  }
  let mod: { create: (o: string[]) => unknown; globals: object };
  let url: string;
  try {
    url = import.meta.resolve('webgpu');
    mod = (await import(url)) as typeof mod;
  } catch (e) {
    return { ok: false, why: `the \`webgpu\` npm package (Dawn bindings for Node) could not be loaded: ${(e as Error).message.split('\n')[0]}` };
  }
  // Ask for an adapter in a child process first: where there is none, Dawn and the Vulkan drivers it tries print
  // their complaints straight to stderr (no way to silence them in-process); the child's become the one-line reason.
  const { spawnSync } = await import('node:child_process');
  const probe = spawnSync(process.execPath, ['--input-type=module', '-e', `const { create } = await import(${JSON.stringify(url)}); const a = await create([]).requestAdapter({ powerPreference: 'high-performance' }); process.stdout.write(a ? 'adapter' : 'none'); process.exit(0);`], { encoding: 'utf8', env: process.env, timeout: 120_000 });
  if (probe.stdout !== 'adapter') {
    const said = (probe.stderr ?? '').split('\n').map((l) => l.trim()).filter((l) => l && !/XDG_RUNTIME_DIR|^at |^- While/.test(l));
    return { ok: false, why: `Dawn found no WebGPU adapter (no GPU with a Vulkan driver here${said.length ? `; Dawn said: ${said.slice(0, 2).join(' ')}` : ''})` };
  }
  Object.assign(globalThis, mod.globals);
  const gpu = mod.create([]) as { requestAdapter: (o?: object) => Promise<unknown> };
  const nav: Record<string, unknown> = g.navigator ?? {};
  if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true });
  if (typeof nav.userAgent !== 'string') Object.defineProperty(nav, 'userAgent', { value: `Node.js/${process.versions.node}`, configurable: true });
  Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  if (!(await gpu.requestAdapter({ powerPreference: 'high-performance' }))) {
    return { ok: false, why: 'Dawn found no WebGPU adapter (no GPU with a Vulkan driver here)' };
  }
  return { ok: true };
}

/** Start the engine once. Later calls return the running engine (and refuse a different device). */
export async function initEngine(opts: { device?: DeviceName; threads?: number } = {}): Promise<EngineInfo> {
  const device = opts.device ?? 'wasm';
  if (current) {
    if (current.device !== device) throw new HeedError(`the engine already runs on ${current.device}; cannot switch to ${device} in one process`, 'start a new process for the other device');
    return current;
  }
  const threads = opts.threads ?? defaultThreads();
  const channel = isNode ? kernelChannelFromEnv() : undefined; // a bad HEED_KERNEL_CHANNEL is refused before anything starts
  if (channel) setKernelChannel(channel);
  if (isNode) installNodeWorkers(threads); // sets the pool size; the pool starts with the first kernel
  if (device === 'webgpu') {
    const gpu = await provideWebGpu();
    if (!gpu.ok) {
      throw new HeedError(`WebGPU is not available here: ${gpu.why}`, 'use --device wasm (the CPU default); without a GPU, HEED_WEBGPU_ADAPTER=swiftshader runs WebGPU on the CPU (needs libvulkan1 and Debian\'s chromium, for checks only: slow)');
    }
  }
  const available = await jax.init(device);
  if (!available.includes(device)) {
    throw new HeedError(`device ${device} could not be started (available: ${available.join(', ') || 'none'})`, device === 'webgpu' ? 'use --device wasm' : 'report this with --debug output');
  }
  jax.defaultDevice(device);
  let native: import('./native.js').NativeStatus | undefined;
  if (isNode && device === 'wasm') {
    const { startNative } = await import('./native.js');
    native = await startNative(threads, { jit: jit as never, np: np as never, fromHost: fromHost as never, toHost: toHost as never });
  }
  const pooled = isNode && device === 'wasm' && typeof (globalThis as { Worker?: unknown }).Worker !== 'undefined' && threads > 1;
  current = { device, threads, relaxedSimd, available, version: ENGINE_VERSION, kernels: native?.active ? 'native' : 'wasm', native, channel: pooled && channel ? channel : 'none' };
  return current;
}

export function engineInfo(): EngineInfo | undefined {
  return current;
}

/** Version of @jax-js/jax this build pins (kept in sync with package.json by a test). */
export const ENGINE_VERSION = '0.1.25';

/** Host Float32Array/Int32Array → device array of the given shape. */
export function fromHost(data: Float32Array | Int32Array, shape: number[], dtype?: DType): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new Error(`fromHost: ${data.length} values for shape [${shape}]`);
  const isInt = data instanceof Int32Array;
  let a = np.array(data, { dtype: isInt ? i32 : f32 }).reshape(shape);
  if (dtype && dtype !== (isInt ? i32 : f32)) a = a.astype(dtype);
  return a;
}

/** Device array → host Float32Array (consumes the array). */
export async function toHost(t: Tensor): Promise<Float32Array> {
  const x = t.dtype === f32 ? t : t.astype(f32);
  const d = await x.data();
  return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
}

/** Device array → host Int32Array (consumes the array). */
export async function toHostInt(t: Tensor): Promise<Int32Array> {
  const x = t.dtype === i32 ? t : t.astype(i32);
  const d = await x.data();
  return d instanceof Int32Array ? d : Int32Array.from(d as ArrayLike<number>);
}

/**
 * Embedding lookup table[ids] (gather along axis 0), safe to differentiate under jit.
 * jax-js 0.1.25 fails with "jit: routine primitive scatter input is not imm" when the cotangent that reaches
 * the gather's transpose (a scatter routine) is a view (e.g. a reshape of a broadcast). Multiplying the
 * gathered rows by a constant ones-vector makes that cotangent the output of an elementwise kernel, which jit
 * materialises, so the scatter gets a concrete buffer. Cost: one elementwise multiply of the gathered rows.
 */
export function embedLookup(table: Tensor, ids: Tensor): Tensor {
  const d = table.shape[table.shape.length - 1];
  return np.take(table, ids, 0).mul(np.ones([d], { dtype: table.dtype }));
}

/**
 * Force a materialised copy of a (view) array. jax-js runs a matmul whose input is a transposed view without
 * its fast path (measured: 76% of a SmolLM2 layer's forward went to the o_proj matmul on the attention output);
 * a double negation makes the input a plain kernel output (`mul(1)` is optimised away and does not help).
 */
export function materialize(x: Tensor): Tensor {
  return x.neg().neg();
}

/** Bytes held by a tree of arrays. */
export function treeBytes(t: Record<string, Tensor>): number {
  let n = 0;
  for (const v of Object.values(t)) n += v.size * (v.dtype === f16 ? 2 : 4);
  return n;
}
