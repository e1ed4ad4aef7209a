/**
 * What cannot run here (GPUs, several nodes, Accelerate, DeepSpeed, TRL) is checked on paper: the generated
 * launcher is valid bash and builds the right torchrun command lines (one node, several nodes, FSDP, resume),
 * every torchrun flag it documents is one torchrun accepts (when torch is installed), the Accelerate configs are
 * valid YAML with the right keys, the DeepSpeed config is ZeRO-3 with heed's clipping, every train.py flag
 * named anywhere exists, the Python files compile, and the exported arrays agree with the TRL JSONL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { validateTrainConfig } from '../src/train/config.js';
import { exportTorchJob } from '../src/export/torch/export.js';
import { readNpy } from '../src/export/torch/npy.js';
import { ROOT, TINY, tmp } from './helpers.js';
import { PYTHON } from './export-torch-helpers.js';

const cfg = validateTrainConfig(
  { model: join(TINY, 'llama-gqa'), data: join(ROOT, 'data/demo/dolly-train.jsonl'), template: 'chatml', max_length: 96, batch_size: 4, grad_accum: 3, steps: 7, grad_clip: 0.7, eval_every: 3, name: 'paper', out: tmp() },
  'config',
);
const jobDir = join(tmp('heed-job-'), 'job');
const { job } = await exportTorchJob(cfg, { out: jobDir });
const read = (f: string) => readFileSync(join(jobDir, f), 'utf8');
const trainFlags = new Set([...read('train.py').matchAll(/add_argument\("(--[a-z-]+)"/g)].map((m) => m[1]));
const hasPython = spawnSync(PYTHON, ['-c', 'pass']).status === 0;
const hasTorch = hasPython && spawnSync(PYTHON, ['-c', 'import torch']).status === 0;

/** launch.sh with TORCHRUN=echo: the command line it would run. */
function dry(args: string[]): string[] {
  const r = spawnSync('bash', [join(jobDir, 'launch.sh'), ...args], { encoding: 'utf8', env: { ...process.env, TORCHRUN: 'echo' } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split(/\s+/);
}

test('launch.sh is valid bash and builds the torchrun lines for one node, several nodes, FSDP and resume', () => {
  assert.equal(spawnSync('bash', ['-n', join(jobDir, 'launch.sh')]).status, 0);
  const one = dry(['--nproc_per_node', '2']);
  const local = ['--nnodes', '1', '--node_rank', '0', '--master_addr', '127.0.0.1', '--master_port'];
  assert.deepEqual(one.slice(0, 7), local);
  assert.match(one[7], /^\d+$/);
  assert.deepEqual(one.slice(8, 10), ['--nproc_per_node', '2']);
  assert.equal(one.filter((a) => a.startsWith('--nproc')).length, 1);
  assert.deepEqual(one.slice(-3), [join(jobDir, 'train.py'), '--job', jobDir]);
  if (spawnSync('bash', ['-c', 'command -v nvidia-smi']).status !== 0) assert.deepEqual(dry([]).slice(8, 10), ['--nproc_per_node', '1']);
  const multi = dry(['--nnodes', '4', '--nproc_per_node', '8', '--rdzv_backend', 'c10d', '--rdzv_endpoint', 'HOST:29500', '--rdzv_id', 'x', '--', '--fsdp', '--resume']);
  assert.ok(!multi.includes('--master_addr') && !multi.includes('--standalone'), 'several nodes: the rendezvous given');
  assert.deepEqual(multi.slice(0, 10), ['--nnodes', '4', '--nproc_per_node', '8', '--rdzv_backend', 'c10d', '--rdzv_endpoint', 'HOST:29500', '--rdzv_id', 'x']);
  assert.deepEqual(multi.slice(-5), [join(jobDir, 'train.py'), '--job', jobDir, '--fsdp', '--resume']);
  // without TORCHRUN, launch.sh runs torch.distributed.run through _torchrun.py with torchrun's own Python
  assert.match(read('launch.sh'), /_torchrun\.py/);
  assert.ok(existsSync(join(jobDir, '_torchrun.py')));
});

test('every launch line in the README and launch.sh uses real torchrun flags and real train.py flags', () => {
  const text = read('README.md') + '\n' + read('launch.sh') + '\n' + Object.keys(job.files).map(() => '').join('');
  const launchLines = [...text.matchAll(/bash launch\.sh ([^\n`#]*)/g)].map((m) => m[1].trim().split(/\s+/));
  assert.ok(launchLines.length >= 5, `${launchLines.length} launch lines`);
  const torchrunLines = [...text.matchAll(/torchrun ([^\n`]*?) train\.py([^\n`]*)/g)].map((m) => ({ tr: m[1].trim().split(/\s+/), py: m[2].trim().split(/\s+/).filter(Boolean) }));
  assert.ok(torchrunLines.some((l) => l.tr.includes('--nnodes') && l.tr.includes('--rdzv_endpoint')), 'a multi-node torchrun line');
  const all = [...launchLines.map((l) => ({ tr: l.includes('--') ? l.slice(0, l.indexOf('--')) : l, py: l.includes('--') ? l.slice(l.indexOf('--') + 1) : [] })), ...torchrunLines];
  for (const l of all) for (const f of l.py.filter((a) => a.startsWith('--'))) assert.ok(trainFlags.has(f), `train.py has no flag ${f}`);
  for (const l of launchLines) dry(l); // the launcher accepts every documented line
  if (hasTorch) {
    // torchrun's own argument parser accepts every documented torchrun flag set
    const code = 'import json, sys\nfrom torch.distributed.run import get_args_parser\nfor args in json.loads(sys.argv[1]):\n    print(" ".join(args), flush=True)\n    get_args_parser().parse_args(args + ["train.py"])';
    const r = spawnSync(PYTHON, ['-c', code, JSON.stringify(all.map((l) => l.tr))], { encoding: 'utf8' });
    assert.equal(r.status, 0, `torchrun rejects the last of these lines:\n${r.stdout}${r.stderr}`);
  }
});

test('the Accelerate configs are valid YAML (multi-GPU, multi-node, DeepSpeed ZeRO-3) and name real files and flags', () => {
  const known = new Set(['compute_environment', 'distributed_type', 'num_machines', 'num_processes', 'machine_rank', 'gpu_ids', 'mixed_precision', 'same_network', 'use_cpu', 'main_process_ip', 'main_process_port', 'rdzv_backend', 'deepspeed_config', 'main_training_function', 'downcast_bf16', 'tpu_env', 'tpu_use_cluster', 'tpu_use_sudo']);
  const y = (f: string) => YAML.parse(read(`accelerate/${f}`)) as Record<string, unknown>;
  const mg = y('multi-gpu.yaml');
  const mn = y('multi-node.yaml');
  const ds = y('deepspeed-zero3.yaml');
  for (const c of [mg, mn, ds]) for (const k of Object.keys(c)) assert.ok(known.has(k), `unknown accelerate key ${k}`);
  assert.equal(mg.distributed_type, 'MULTI_GPU');
  assert.equal(mg.num_machines, 1);
  assert.equal(mn.distributed_type, 'MULTI_GPU');
  assert.equal(mn.num_machines, 4);
  assert.equal(mn.num_processes, 32);
  assert.ok(mn.main_process_ip && mn.main_process_port);
  assert.equal(ds.distributed_type, 'DEEPSPEED');
  const dsFile = (ds.deepspeed_config as { deepspeed_config_file: string }).deepspeed_config_file;
  assert.ok(existsSync(join(jobDir, dsFile)), dsFile);
  const z = JSON.parse(read(dsFile));
  assert.equal(z.zero_optimization.stage, 3);
  assert.equal(z.gradient_clipping, 0.7);
  assert.equal(z.train_micro_batch_size_per_gpu, 4);
  for (const f of ['multi-gpu.yaml', 'multi-node.yaml', 'deepspeed-zero3.yaml']) {
    const cmd = /accelerate launch (.*)/.exec(read(`accelerate/${f}`))![1].split(/\s+/);
    assert.equal(cmd[cmd.indexOf('--config_file') + 1], `accelerate/${f}`);
    for (const a of cmd.slice(cmd.indexOf('train.py') + 1).filter((x) => x.startsWith('--'))) assert.ok(trainFlags.has(a), `train.py has no flag ${a} (${f})`);
  }
  assert.ok(trainFlags.has('--deepspeed') && trainFlags.has('--fsdp') && trainFlags.has('--model-impl') && trainFlags.has('--resume'));
});

test('the Python files compile; the versions are stamped; the TRL JSONL agrees with the .npy rows', () => {
  if (hasPython) {
    const r = spawnSync(PYTHON, ['-c', 'import ast, sys; [ast.parse(open(f).read(), f) for f in sys.argv[1:]]', ...['train.py', 'heed_model.py', 'trl_sft.py', '_torchrun.py'].map((f) => join(jobDir, f))], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
  const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
  assert.equal(job.heed_version, version);
  assert.match(read('train.py'), new RegExp(`HEED_VERSION = "${version.replace(/\./g, '\\.')}"`));
  assert.match(read('trl_sft.py'), /SFTTrainer/);
  assert.match(read('trl_sft.py'), /loss weights other than 0\/1/);
  const dir = join(jobDir, 'data/stage-0');
  const idx = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  const ids = readNpy(join(dir, idx.shards[0].ids)).data as Int32Array;
  const w = readNpy(join(dir, idx.shards[0].weights)).data as Float32Array;
  const off = readNpy(join(dir, idx.shards[0].offsets)).data as BigInt64Array;
  const sft = read('data/sft-stage-0.jsonl').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(sft.length, idx.rows);
  for (const r of [0, 1, sft.length - 1]) {
    const a = Number(off[r]);
    const b = Number(off[r + 1]);
    assert.deepEqual(sft[r].input_ids, Array.from(ids.subarray(a, b)));
    assert.deepEqual(sft[r].labels, Array.from(ids.subarray(a, b), (id, t) => (w[a + t] > 0 ? id : -100)));
    assert.equal(w[a], 0, 'no loss on a row start');
  }
  const steps = readNpy(join(dir, 'steps.npy'));
  assert.deepEqual(steps.shape, [7, 5]);
  // grad_accum 3 × batch 4: 12 sequences per step
  assert.equal(Number((steps.data as BigInt64Array)[2]) - Number((steps.data as BigInt64Array)[1]), 12);
});

test('heed export torch and heed watch on the command line: refusals are one line with exit code 2', () => {
  const heed = (args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { encoding: 'utf8' });
  const dir = tmp();
  writeFileSync(join(dir, 'c.yaml'), `model: ${join(TINY, 'llama-gqa')}\ndata: ${join(ROOT, 'data/demo/dolly-train.jsonl')}\nlora: {r: 4}\n`);
  const r = heed(['export', 'torch', join(dir, 'c.yaml'), '--out', join(dir, 'job')]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^error: the PyTorch export cannot carry "lora"/);
  const ok = heed(['export', 'torch', join(dir, 'c.yaml'), '--set', 'lora=null', '--set', 'steps=3', '--out', join(dir, 'job'), '--quiet']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.ok(existsSync(join(dir, 'job', 'launch.sh')));
  const w = heed(['watch', join(dir, 'job')]);
  assert.equal(w.status, 2);
  assert.match(w.stderr, /is the job folder, not its run folder/);
  const w2 = heed(['watch', dir]);
  assert.equal(w2.status, 2);
  assert.match(w2.stderr, /not the run folder of a heed torch job \(no job\.json\)/);
});
