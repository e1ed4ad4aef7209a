/**
 * Chaos test: `heed train` is killed with SIGKILL at seeded random moments — while starting, mid-step, and
 * while a checkpoint is being written — and resumed with `heed train --resume` until it finishes, for full
 * fine-tuning, LoRA with clipping active, packing and a 2-stage run. Each must end bit-identical to an
 * uninterrupted run: every metrics.jsonl field (timings aside), the final weights, optimizer state and adapter.
 * Coverage: every config is killed once at each moment type (start, mid-step, mid-checkpoint), in an order that
 * rotates with the config, so that a start kill hits a fresh run in some configs and a resumed one in others;
 * the exact moment within each type is seeded random. (It was 6 kills per config with the type drawn at random:
 * twice the processes for no moment type more.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initEngine } from '../src/engine/index.js';
import { validateTrainConfig } from '../src/train/config.js';
import { train } from '../src/train/trainer.js';
import { mulberry32 } from '../src/models/random.js';
import { ROOT, TINY, tmp } from './helpers.js';

await initEngine();

const SMALL = join(ROOT, 'test/fixtures/bad-input/small.jsonl');
const common = { model: join(TINY, 'llama-gqa'), data: SMALL, template: 'chatml', max_length: 128, batch_size: 2, steps: 8, lr: 3e-3, eval_every: 4, save_every: 2, eval_max_rows: 2, eval: { split: 0.1 }, seed: 11 };
const CONFIGS: Array<[string, Record<string, unknown>]> = [
  ['full', {}],
  ['lora-clip', { model: join(TINY, 'qwen2'), lora: { r: 4, alpha: 8, targets: ['q', 'v', 'down'] }, grad_clip: 0.01, lr: 1e-2 }],
  ['packing', { packing: true }],
  ['stages', { steps: undefined, data: undefined, stages: [{ name: 'a', data: SMALL, steps: 4 }, { name: 'b', data: SMALL, steps: 4, lr: 1e-3 }] }],
];
type Moment = 'start' | 'step' | 'checkpoint';
const MOMENTS: Moment[] = ['start', 'step', 'checkpoint'];
/** the kill order of config i: every moment type once, rotated by i */
const planFor = (i: number): Moment[] => MOMENTS.map((_, j) => MOMENTS[(i + j) % MOMENTS.length]);
const KILLS_PER_CONFIG = MOMENTS.length; // 12 in all

const metrics = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
    const { tokens_per_s: _t, ...rest } = JSON.parse(l);
    return rest;
  });
const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').length - 1 : 0);
const finalFiles = (runDir: string) => {
  const ck = join(runDir, 'step-8');
  return Object.fromEntries(readdirSync(ck).filter((f) => f.endsWith('.safetensors')).map((f) => [f, readFileSync(join(ck, f))]));
};

/** Run one `heed train` process; kill it at `moment` (undefined: let it finish). Resolves with the exit code and whether a checkpoint write was under way. */
function runOnce(args: string[], runDir: string, rand: () => number, moment: Moment | undefined, totalSteps: number): Promise<{ code: number | null; signal: string | null; midCheckpoint: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/heed.js'), 'train', ...args, '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const timers: NodeJS.Timeout[] = [];
    let watcher: ReturnType<typeof watch> | undefined;
    const kill = () => child.kill('SIGKILL');
    if (moment === 'start') timers.push(setTimeout(kill, 100 + rand() * 1500));
    if (moment === 'step') {
      const done = lines(join(runDir, 'metrics.jsonl'));
      const target = Math.min(totalSteps - 1, done + 1 + Math.floor(rand() * Math.max(1, totalSteps - 1 - done)));
      const delay = rand() * 40;
      const poll = setInterval(() => {
        if (lines(join(runDir, 'metrics.jsonl')) >= target) {
          clearInterval(poll);
          timers.push(setTimeout(kill, delay));
        }
      }, 3);
      timers.push(poll);
    }
    if (moment === 'checkpoint') {
      // kill as soon as a checkpoint's temp folder appears (the write is under way); a random later one of them
      let skip = Math.floor(rand() * 2);
      const arm = () => {
        watcher = watch(runDir, (_e, f) => {
          if (f && String(f).startsWith('.tmp-step-') && skip-- <= 0) kill();
        });
      };
      if (existsSync(runDir)) arm();
      else {
        const p = setInterval(() => existsSync(runDir) && (clearInterval(p), arm()), 2);
        timers.push(p);
      }
    }
    child.on('exit', (code, signal) => {
      timers.forEach((t) => clearInterval(t));
      watcher?.close();
      const midCheckpoint = existsSync(runDir) && readdirSync(runDir).some((f) => f.startsWith('.tmp-step-'));
      if (code !== 0 && signal === null) console.error(stderr);
      resolve({ code, signal, midCheckpoint });
    });
  });
}

test(`SIGKILL at ${CONFIGS.length * KILLS_PER_CONFIG} seeded random moments (each config at start, mid-step and mid-checkpoint) → resumed runs are bit-identical to uninterrupted ones`, async () => {
  const rand = mulberry32(20261201);
  let kills = 0;
  let midCheckpoint = 0;
  const byMoment: Record<Moment, number> = { start: 0, step: 0, checkpoint: 0 };
  const startKills = { fresh: 0, resumed: 0 };
  for (const [ci, [name, over]] of CONFIGS.entries()) {
    const plan = planFor(ci);
    const mine: Record<Moment, number> = { start: 0, step: 0, checkpoint: 0 };
    const cfg = { ...common, ...over };
    const ref = await train(validateTrainConfig({ ...cfg, out: tmp('heed-chaos-ref-'), name: 'ref' }), { quiet: true });
    const want = finalFiles(ref.run_dir);
    const check = (runDir: string) => {
      assert.deepEqual(metrics(runDir), metrics(ref.run_dir), `${name}: metrics`);
      const got = finalFiles(runDir);
      assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
      for (const f of Object.keys(want)) assert.ok(got[f].equals(want[f]), `${name}: ${f} of the final checkpoint is bit-identical`);
      const sum = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8'));
      assert.equal(sum.steps, 8);
      assert.deepEqual(sum.final, ref.final);
    };
    let k = 0;
    let episodes = 0;
    // an episode: a fresh run folder, killed and resumed until it finishes; a run that finishes before its
    // planned kill is checked too, and the remaining kills go to a new episode
    while (k < KILLS_PER_CONFIG || episodes === 0) {
      episodes++;
      assert.ok(episodes <= 8, `${name}: ${episodes - 1} runs finished before their planned kill`);
      const dir = tmp('heed-chaos-');
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, JSON.stringify({ ...cfg, out: dir }));
      const runDir = join(dir, name);
      for (;;) {
        const fresh = !existsSync(join(runDir, 'config.yaml'));
        const moment: Moment | undefined = k < KILLS_PER_CONFIG ? plan[k] : undefined;
        const r = await runOnce(fresh ? [file] : ['--resume', runDir], runDir, rand, moment, 8);
        if (r.signal === 'SIGKILL') {
          k++;
          byMoment[moment!]++;
          mine[moment!]++;
          if (moment === 'start') startKills[fresh ? 'fresh' : 'resumed']++;
          if (r.midCheckpoint) midCheckpoint++;
          continue;
        }
        assert.equal(r.code, 0, `${name}: a run exited with ${r.code}`);
        check(runDir);
        break;
      }
    }
    kills += k;
    assert.deepEqual(mine, { start: 1, step: 1, checkpoint: 1 }, `${name}: killed once at each moment type`);
  }
  console.error(`chaos: ${kills} kills (${Object.entries(byMoment).map(([m, n]) => `${m} ${n}`).join(', ')}; start kills: ${startKills.fresh} of a fresh run, ${startKills.resumed} of a resumed one), ${midCheckpoint} while a checkpoint was being written`);
  assert.equal(kills, CONFIGS.length * KILLS_PER_CONFIG);
  assert.ok(startKills.fresh >= 1 && startKills.resumed >= 1, 'a start kill of a fresh run and of a resumed run');
  assert.ok(midCheckpoint >= 1, 'at least one kill landed during a checkpoint write');
});
