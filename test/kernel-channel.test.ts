/**
 * The kernel channel between jax-js and its wasm workers (src/engine/node-workers.ts, HEED_KERNEL_CHANNEL): the
 * kernels and their slices are the same on every channel, so the results must be bit-identical. One child process
 * (one engine, 2 threads) runs, on each channel in turn (message, main, mailbox, shared, then message again), a few jitted
 * programs (products split in two slices — native GEMMs when the addon is built, the main thread's share included —
 * elementwise kernels, reductions, one-slice kernels) and (but the last) 4 training steps of test/fixtures/tiny/llama-gqa
 * (losses and gradient norms), and the parent compares the bits. The child ends by itself (idle workers parked in the
 * mailbox do not keep Node alive). With HEED_REQUIRE_NATIVE=1 the native GEMM kernels must have run on both sides
 * (main thread and worker). Bad HEED_KERNEL_CHANNEL values are refused with a one-line error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SHARED, TINY, tmp } from './helpers.js';

const SELF = fileURLToPath(import.meta.url);
const CHANNELS = ['message', 'main', 'mailbox', 'shared', 'message'] as const;

interface PerChannel {
  channel: string;
  values: Record<string, number[]>;
  losses: number[];
  gradNorms: number[];
  stats: Record<string, number>;
  gemmMs: number;
}
interface ChildOut {
  engineChannel: string;
  kernels: string;
  nativeReason: string;
  runs: PerChannel[];
}

async function child(outFile: string): Promise<void> {
  const { initEngine, jit, np, fromHost, toHost, engineInfo } = await import('../src/engine/index.js');
  const { channelStats, setKernelChannel, nativeGemmMs } = await import('../src/engine/node-workers.js');
  const { validateTrainConfig } = await import('../src/train/config.js');
  const { train } = await import('../src/train/trainer.js');
  const info = await initEngine();
  const data = (n: number, seed: number, scale = 1) => Float32Array.from({ length: n }, (_, i) => scale * Math.sin(seed * 12.9898 + i * 78.233) * Math.cos(i * 0.37 + seed));
  const rows = join(tmp('heed-channel-data-'), 'rows.jsonl');
  writeFileSync(rows, readFileSync(join(SHARED, 'data/dolly_3k.jsonl'), 'utf8').split('\n').slice(0, 64).join('\n') + '\n');
  const M = 96, K = 72, N = 80, Bt = 3;
  // each is jitted once and called on every channel: same kernels, same hashes
  const programs: [string, (...a: any[]) => any, () => any[]][] = [
    ['x·Wᵀ (2 slices)', (x, w) => np.matmul(x, w.transpose()), () => [fromHost(data(M * K, 1), [M, K]), fromHost(data(N * K, 2, 0.5), [N, K])]],
    ['dYᵀ·X', (dy, x) => np.matmul(dy.transpose(), x), () => [fromHost(data(M * N, 3), [M, N]), fromHost(data(M * K, 4), [M, K])]],
    ['batched Q·Kᵀ', (q, k) => np.matmul(q, k.transpose([0, 2, 1])), () => [fromHost(data(Bt * M * K, 5), [Bt, M, K]), fromHost(data(Bt * N * K, 6), [Bt, N, K])]],
    ['silu-like epilogue', (x, w, g) => np.multiply(np.exp(g), np.maximum(np.matmul(x, w.transpose()), 0)), () => [fromHost(data(M * K, 7), [M, K]), fromHost(data(N * K, 8, 0.3), [N, K]), fromHost(data(M * N, 9), [M, N])]],
    ['elementwise 200k', (x) => np.tanh(x.ref).mul(3).add(np.sin(x)), () => [fromHost(data(200_000, 10, 3), [200_000])]],
    ['row softmax', (x) => { const e = np.exp(x.sub(x.ref.max(-1, { keepdims: true }))); return e.ref.div(e.sum(-1, { keepdims: true })); }, () => [fromHost(data(512 * 300, 11, 4), [512, 300])]],
    ['one slice (tiny product)', (x, w) => np.matmul(x, w), () => [fromHost(data(4 * 16, 12), [4, 16]), fromHost(data(16 * 8, 13), [16, 8])]],
  ];
  const jitted = programs.map(([, f]) => jit(f as never) as (...a: unknown[]) => unknown);
  const metrics = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  const runs: PerChannel[] = [];
  for (const ch of CHANNELS) {
    setKernelChannel(ch);
    const s0 = { ...channelStats };
    const g0 = nativeGemmMs();
    const values: Record<string, number[]> = {};
    for (let i = 0; i < programs.length; i++) { values[programs[i][0]] = Array.from(await toHost(jitted[i](...programs[i][2]()) as never)); }
    // the training steps on each channel once (the last message pass, after the workers left the mailbox: programs only)
    let m: Record<string, number>[] = [];
    if (runs.length < CHANNELS.length - 1) {
      const cfg = { model: join(TINY, 'llama-gqa'), data: rows, template: 'chatml', max_length: 64, truncation: 'truncate-right', batch_size: 4, steps: 4, lr: 3e-3, warmup_steps: 1, eval: null, save_every: 1000, seed: 5, out: tmp('heed-channel-run-'), name: 'r' };
      const s = await train(validateTrainConfig(cfg), { quiet: true });
      m = metrics(s.run_dir).filter((r) => r.loss !== undefined);
    }
    const stats = Object.fromEntries(Object.entries(channelStats).map(([k, v]) => [k, v - s0[k as keyof typeof s0]]));
    runs.push({ channel: ch, values, losses: m.map((r) => r.loss), gradNorms: m.map((r) => r.grad_norm), stats, gemmMs: nativeGemmMs() - g0 });
  }
  const e = engineInfo()!;
  writeFileSync(outFile, JSON.stringify({ engineChannel: info.channel, kernels: e.kernels, nativeReason: e.native?.reason ?? '', runs } satisfies ChildOut));
  // no process.exit: the parent checks that the process ends by itself
}

const CHILD = process.env.HEED_CHANNEL_CHILD;
if (CHILD) await child(CHILD);

function runChild(env: Record<string, string>, timeoutMs: number): Promise<{ out: ChildOut | null; code: number | null; stderr: string; timedOut: boolean; ms: number }> {
  const outFile = join(tmp('heed-channel-out-'), 'out.json');
  const e: Record<string, string | undefined> = { ...process.env, HEED_CHANNEL_CHILD: outFile, HEED_THREADS: '2', ...env };
  delete e.NODE_TEST_CONTEXT;
  const t0 = performance.now();
  const p = spawn(process.execPath, ['--import', 'tsx', SELF], { env: e, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (d) => (stderr += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    p.kill('SIGKILL');
  }, timeoutMs);
  return new Promise((res) =>
    p.on('exit', (code) => {
      clearTimeout(timer);
      let out: ChildOut | null = null;
      try {
        out = JSON.parse(readFileSync(outFile, 'utf8')) as ChildOut;
      } catch {
        /* no result */
      }
      res({ out, code, stderr, timedOut, ms: performance.now() - t0 });
    }),
  );
}

const bits = (a: number[]) => Buffer.from(Float64Array.from(a).buffer).toString('base64');

test('kernel channels: jitted programs and training steps are bit-identical on message, main, mailbox and shared; the process exits by itself', { skip: !!CHILD }, async () => {
  const r = await runChild({}, 120_000);
  assert.equal(r.timedOut, false, `the child did not end by itself within 120 s (workers kept Node alive?): ${r.stderr.slice(-1500)}`);
  assert.ok(r.out, `the child wrote no result (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  assert.equal(r.out.engineChannel, 'main', 'the default channel');
  const [ref, ...rest] = r.out.runs;
  assert.equal(ref.channel, 'message');
  assert.equal(ref.losses.length, 4);
  assert.ok(ref.losses.every(Number.isFinite) && ref.gradNorms.every((g) => g > 0), JSON.stringify(ref));
  for (const [i, run] of rest.entries()) {
    for (const k of Object.keys(ref.values)) assert.equal(bits(run.values[k]), bits(ref.values[k]), `${k}: ${run.channel} differs from message`);
    if (i === rest.length - 1) continue; // the last pass ran the programs only
    assert.deepEqual(run.losses, ref.losses, `losses on ${run.channel}`);
    assert.deepEqual(run.gradNorms, ref.gradNorms, `gradient norms on ${run.channel}`);
  }
  const by = Object.fromEntries(r.out.runs.slice(0, 4).map((x) => [x.channel, x.stats]));
  // message: no main-thread share, no mailbox; main: the share, no mailbox; mailbox: no share; shared: both
  assert.equal(by.message.mainShare, 0);
  assert.equal(by.message.mailbox, 0);
  assert.ok(by.main.mainShare > 0 && by.main.mailbox === 0 && by.main.messages > 0, JSON.stringify(by.main));
  assert.ok(by.mailbox.mainShare === 0 && by.mailbox.mailbox > 0 && by.mailbox.messages === 0, JSON.stringify(by.mailbox));
  assert.ok(by.shared.mainShare > 0 && by.shared.mailbox > 0, JSON.stringify(by.shared));
  // the second message run after shared: the workers left the mailbox and answer by postMessage again
  assert.equal(r.out.runs[4].stats.mailbox, 0);
  assert.ok(r.out.runs[4].stats.messages > 0);
  const native = r.out.kernels === 'native';
  if (process.env.HEED_REQUIRE_NATIVE === '1') assert.ok(native, `HEED_REQUIRE_NATIVE=1 but the native route is off: ${r.out.nativeReason}`);
  if (native) {
    // native GEMM slices on the main thread and in the workers (the mailbox), bit-identical to the message run
    assert.ok(by.main.mainShareNative > 0 && by.shared.mainShareNative > 0, JSON.stringify(by));
    assert.ok(r.out.runs.every((x) => x.gemmMs > 0), JSON.stringify(r.out.runs.map((x) => x.gemmMs)));
  }
});

test('HEED_KERNEL_CHANNEL: a bad value is refused with a one-line error; engineInfo reports the channel that runs', { skip: !!CHILD }, async () => {
  const { kernelChannelFromEnv } = await import('../src/engine/node-workers.js');
  const { HeedError } = await import('../src/errors.js');
  assert.equal(kernelChannelFromEnv(undefined), 'main');
  assert.equal(kernelChannelFromEnv(''), 'main');
  assert.equal(kernelChannelFromEnv('message'), 'message');
  assert.throws(() => kernelChannelFromEnv('postmessage'), (e: unknown) => e instanceof HeedError && /HEED_KERNEL_CHANNEL must be one of message, main, mailbox, shared, got "postmessage"/.test(e.message) && !e.oneLine().includes('\n'));
  // initEngine refuses it before anything starts (a child: one engine per process)
  const childEnv: Record<string, string | undefined> = { ...process.env, HEED_KERNEL_CHANNEL: 'fast' };
  delete childEnv.NODE_TEST_CONTEXT;
  const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `const { initEngine, engineInfo } = await import(${JSON.stringify(join(SELF, '../../src/engine/index.ts'))}); try { await initEngine(); } catch (e) { console.log('refused: ' + e.oneLine()); process.exit(0); } console.log('channel ' + engineInfo().channel);`], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  await new Promise((res) => p.on('exit', res));
  assert.match(out, /^refused: HEED_KERNEL_CHANNEL must be one of message, main, mailbox, shared, got "fast" \(fix: .*\)\n$/);
});

test('mailbox errors: a trapping kernel answers ok: false with its error; a worker that exits mid-kernel is an error, not a hang', { skip: !!CHILD }, async () => {
  const { installNodeWorkers, setKernelChannel, kernelChannel } = await import('../src/engine/node-workers.js');
  installNodeWorkers(2);
  const W = (globalThis as unknown as { Worker: new (u: string) => { postMessage(m: unknown): void; onmessage: ((e: { data: any }) => void) | null; terminate(): void } }).Worker;
  // a stand-in for jax-js's worker source: answers init; kernels are run by the polyfill's own code
  const w = new W(URL.createObjectURL(new Blob([`self.onmessage = (e) => { if (e.data.type === 'init') postMessage({ type: 'ready' }); };`])));
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
  await new Promise((res) => {
    w.onmessage = res;
    w.postMessage({ type: 'init', memory });
  });
  const wasm = (body: number[]) => new WebAssembly.Module(Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 7, 10, 1, 6, ...Buffer.from('kernel'), 0, 0, 10, body.length + 2, 1, body.length, ...body]));
  const trap = wasm([0, 0x00, 0x0b]); // unreachable
  const spin = wasm([0, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b]); // loop br 0 end: never returns
  const before = kernelChannel();
  const post = (kernelHash: string, module: WebAssembly.Module) =>
    new Promise<any>((res) => {
      w.onmessage = (e) => res(e.data);
      w.postMessage({ type: 'kernel', kernelHash, module, ptrs: [0], begin: 0, end: 1 });
    });
  try {
    setKernelChannel('mailbox'); // slice 0 through worker 0's mailbox
    const r = await post('trap', trap);
    assert.equal(r.ok, false);
    assert.match(r.error, /unreachable/);
    setKernelChannel('shared'); // slice 0 on the main thread
    const m = await post('trap', trap);
    assert.equal(m.ok, false);
    assert.match(m.error, /unreachable/);
    setKernelChannel('mailbox');
    const t0 = performance.now();
    const stuck = post('spin', spin);
    setTimeout(() => w.terminate(), 300);
    const e = await stuck;
    assert.equal(e.ok, false);
    assert.match(e.error, /the wasm worker exited while running a kernel/);
    assert.ok(performance.now() - t0 < 10_000);
  } finally {
    setKernelChannel(before);
  }
});
