/**
 * WebGPU parity on a machine without a GPU: Node + the `webgpu` package (Dawn) on SwiftShader (the CPU Vulkan
 * driver Debian's chromium ships) against the wasm backend, for every tiny architecture. The two devices run in
 * two processes at once (test/webgpu-probe.ts); this file compares what they wrote.
 *
 * Tolerances (absolute): logits 3e-3, gradients 2e-3, the 10-step loss curves 3e-3, greedy tokens identical.
 * Measured: GPT-2 agrees to 3e-6; the Llama family to ~1e-3 on logits because WGSL's sin/cos (RoPE) are
 * approximate: on SwiftShader |sin x - Math.sin x| reaches 1.9e-4 for x in [0, 8] (wasm: 2.6e-7).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SWIFTSHADER_ICDS } from '../src/engine/index.js';
import { ROOT, TINY_NAMES, tmp, maxAbsDiff } from './helpers.js';

const TOL = { logits: 3e-3, grads: 2e-3, curve: 3e-3 };
const icd = SWIFTSHADER_ICDS.find((f) => existsSync(f));
const vulkan = spawnSync('sh', ['-c', 'ldconfig -p | grep -q libvulkan.so.1']).status === 0;

function probe(device: 'wasm' | 'webgpu', out: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env, HEED_THREADS: '1', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? tmp('heed-xdg-') };
    if (device === 'webgpu') env.HEED_WEBGPU_ADAPTER = 'swiftshader';
    const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/webgpu-probe.ts'), device, out], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code, stderr }));
  });
}

type Arch = { logits: number[][]; loss: number; grads: Record<string, number[]>; greedy: number[][]; ruled: number[][]; curves: Record<string, number[]> };

test('WebGPU (SwiftShader) = wasm on every tiny architecture: logits, gradients, 10 steps of full FT and LoRA, greedy KV-cache generation, the rule adapter', async (t) => {
  if (!icd || !vulkan) {
    if (process.env.HEED_REQUIRE_BROWSER) assert.fail('SwiftShader ICD or libvulkan1 missing and HEED_REQUIRE_BROWSER is set (apt-get install chromium libvulkan1)');
    t.skip('no SwiftShader Vulkan ICD or libvulkan1 (apt-get install chromium libvulkan1)');
    return;
  }
  const dir = tmp('heed-webgpu-');
  const [w, g] = await Promise.all([probe('wasm', join(dir, 'wasm.json')), probe('webgpu', join(dir, 'webgpu.json'))]);
  assert.equal(w.code, 0, w.stderr);
  assert.equal(g.code, 0, g.stderr);
  const a = JSON.parse(readFileSync(join(dir, 'wasm.json'), 'utf8'));
  const b = JSON.parse(readFileSync(join(dir, 'webgpu.json'), 'utf8'));
  assert.equal(a.device, 'wasm');
  assert.equal(b.device, 'webgpu');
  assert.deepEqual(Object.keys(b.archs), TINY_NAMES);
  const lines: string[] = [];
  for (const name of TINY_NAMES) {
    const x = a.archs[name] as Arch, y = b.archs[name] as Arch;
    const dl = Math.max(...x.logits.map((l, i) => maxAbsDiff(l, y.logits[i])));
    const dg = Math.max(...Object.keys(x.grads).map((k) => maxAbsDiff(x.grads[k], y.grads[k])));
    const gnorm = Math.max(...Object.values(y.grads).map((v) => Math.max(...v.map(Math.abs))));
    const dc = Math.max(...['full', 'lora'].map((m) => maxAbsDiff(x.curves[m], y.curves[m])));
    lines.push(`${name}: logits ${dl.toExponential(1)}, grads ${dg.toExponential(1)}, curves ${dc.toExponential(1)}`);
    assert.ok(dl <= TOL.logits, `${name}: max |Δlogit| ${dl}`);
    assert.ok(gnorm > 0.1, `${name}: gradients are not all ~0 (${gnorm})`);
    assert.ok(dg <= TOL.grads, `${name}: max |Δgrad| ${dg}`);
    assert.deepEqual(Object.keys(y.grads), Object.keys(x.grads));
    for (const m of ['full', 'lora']) {
      assert.equal(y.curves[m].length, 10, `${name} ${m}: 10 steps`);
      assert.ok(y.curves[m].every(Number.isFinite));
    }
    assert.ok(dc <= TOL.curve, `${name}: loss curves differ by ${dc}`);
    assert.notDeepEqual(y.curves.full, y.curves.lora, 'LoRA is not full fine-tuning');
    assert.deepEqual(y.greedy, x.greedy, `${name}: greedy tokens`);
    assert.deepEqual(y.ruled, x.ruled, `${name}: greedy tokens with the rule adapter`);
    assert.notDeepEqual(y.ruled, y.greedy, `${name}: the rule adapter changes the output`);
  }
  t.diagnostic(lines.join('; '));
});

test('--device webgpu without an adapter is a one-line error naming the fix', { skip: !vulkan }, () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), 'generate', '--model', join(ROOT, 'test/fixtures/tiny/gpt2'), '--prompt', 'Hi', '--max-tokens', '2', '--device', 'webgpu'], {
    encoding: 'utf8',
    env: { ...process.env, HEED_WEBGPU_ADAPTER: '', VK_ICD_FILENAMES: join(tmp(), 'none.json') },
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /WebGPU is not available here: Dawn found no WebGPU adapter/);
  assert.match(r.stderr, /--device wasm/);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
});
