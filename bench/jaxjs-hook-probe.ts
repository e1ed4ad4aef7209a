/**
 * Probe (not a benchmark, not a test): can heed route a jax-js 0.1.25 wasm matmul kernel to its own code
 * without editing node_modules? It checks the three things a native GEMM path needs (bench/README.md, "Where the
 * kernel, the memory and the pointers are"):
 *   (a) what a kernel computes — the live wasm backend's dispatch(exe, inputs, outputs), wrapped on the instance:
 *       exe.source is the Kernel (its AluExp names the operands' shapes and strides), exe.data.program.kernelHash;
 *   (b) the memory — the shared WebAssembly.Memory the worker pool sends each worker in its `init` message,
 *       which passes through heed's Worker polyfill (src/engine/node-workers.ts);
 *   (c) the buffers' pointers — every `kernel` message carries {kernelHash, ptrs: [...inputs, ...outputs], begin, end}.
 * It runs one jitted x·Wᵀ and checks that the pointers address x, W and the result.
 *
 *   node --import tsx bench/jaxjs-hook-probe.ts        (exit 0: all three hold)
 */
process.env.HEED_THREADS ??= '2'; // the worker pool only exists with ≥ 2 threads
const { initEngine, jit, np, fromHost, toHost, ENGINE_VERSION } = await import('../src/engine/index.js');
await initEngine();
// the internal chunk that holds getBackend, imported by path: the same module instance the package uses
const chunk = (await import(new URL('../node_modules/@jax-js/jax/dist/backend-CnjgxpXq.js', import.meta.url).href)) as { s: (d: string) => { dispatch: (...a: unknown[]) => void } };
const backend = chunk.s('wasm');
type Exe = { source?: { exp?: unknown; reduction?: { op: string; size: number }; size?: number }; data?: { program?: { kernelHash?: string } } };
const kernels = new Map<string, string>();
const dispatch = backend.dispatch.bind(backend);
backend.dispatch = (exe: unknown, inputs: unknown, outputs: unknown) => {
  const e = exe as Exe;
  const h = e.data?.program?.kernelHash;
  if (h && e.source?.reduction) kernels.set(h, `${e.source.exp} reduce ${e.source.reduction.op}:${e.source.reduction.size}, ${e.source.size} outputs`);
  return dispatch(exe, inputs, outputs);
};
let memory: WebAssembly.Memory | undefined;
const messages: Array<{ kernelHash: string; ptrs: number[]; begin: number; end: number }> = [];
const proto = (globalThis as unknown as { Worker: { prototype: { postMessage: (m: unknown) => void } } }).Worker.prototype;
const post = proto.postMessage;
proto.postMessage = function (this: unknown, m: unknown) {
  const msg = m as { type?: string; memory?: WebAssembly.Memory; kernelHash?: string; ptrs?: number[]; begin?: number; end?: number };
  if (msg?.type === 'init') memory = msg.memory;
  if (msg?.type === 'kernel' && kernels.has(msg.kernelHash!)) messages.push({ kernelHash: msg.kernelHash!, ptrs: msg.ptrs!, begin: msg.begin!, end: msg.end! });
  return post.call(this, m);
};

const M = 8, K = 16, N = 12;
const x = Float32Array.from({ length: M * K }, (_, i) => ((i * 7) % 13) / 13 - 0.5);
const w = Float32Array.from({ length: N * K }, (_, i) => ((i * 5) % 11) / 11 - 0.5);
const f = jit((a: ReturnType<typeof fromHost>, b: ReturnType<typeof fromHost>) => np.matmul(a, b.transpose()));
const y = await toHost(f(fromHost(x, [M, K]), fromHost(w, [N, K])));
console.log(`jax-js ${ENGINE_VERSION}; reduction kernels seen by the wrapped dispatch:\n  ${[...kernels.values()].join('\n  ')}`);
const ok: Record<string, boolean> = { 'kernel described': kernels.size === 1, 'shared memory from the init message': memory instanceof WebAssembly.Memory && memory.buffer instanceof SharedArrayBuffer };
const m0 = messages[0];
ok['kernel message with pointers'] = messages.length >= 1 && m0.ptrs.length === 3;
if (ok['kernel message with pointers'] && memory) {
  const [pa, pb, pc] = m0.ptrs;
  const view = (p: number, n: number) => new Float32Array(memory!.buffer, p, n);
  const A = view(pa, M * K), B = view(pb, N * K), C = view(pc, M * N);
  ok['ptrs[0], ptrs[1] hold x and W'] = A.every((v, i) => v === x[i]) && B.every((v, i) => v === w[i]);
  ok['ptrs[2] holds x·Wᵀ'] = C.every((v, i) => v === y[i]);
  console.log(`kernel message: ptrs ${m0.ptrs.join(', ')}, work [${m0.begin}, ${m0.end}) of ${M * N} outputs`);
}
for (const [k, v] of Object.entries(ok)) console.log(`${v ? 'PASS' : 'FAIL'} ${k}`);
process.exit(Object.values(ok).every(Boolean) ? 0 : 1);
