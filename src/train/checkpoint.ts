/**
 * Run folders and checkpoints. A checkpoint `step-N/` is a Hugging Face model folder (merged weights when
 * training LoRA) plus, for resuming: `trainer_state.json`, `optimizer.safetensors` (AdamW moments, and the
 * exact f32 trainable parameters) and, with LoRA, the PEFT adapter. It is written to `.tmp-step-N/`, every
 * file fsynced, then renamed into place, so a crash at any moment leaves either the old set of checkpoints
 * or the new one — never a half-written `step-N/`.
 */
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, statSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { HostTensor } from '../io/safetensors.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';

export interface TrainerState {
  version: 1;
  /** optimizer steps done (global) */
  step: number;
  stage: number;
  /** epoch within the stage and the next micro-batch index within that epoch */
  epoch: number;
  micro: number;
  /** steps done within the current stage */
  stageStep: number;
  tokens: number;
  best: { metric: string; value: number; step: number; checkpoint: string } | null;
  stopped: { reason: string } | null;
  /** true once the whole run finished */
  done: boolean;
}

function fsyncPath(p: string): void {
  try {
    const fd = openSync(p, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* some filesystems refuse fsync on directories */
  }
}

function fsyncTree(dir: string): void {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) fsyncTree(p);
    else fsyncPath(p);
  }
  fsyncPath(dir);
}

export const stepDir = (runDir: string, step: number) => join(runDir, `step-${step}`);

/** Write a checkpoint atomically: `fill(tmpDir)` writes the files, then fsync + rename. */
export function writeCheckpoint(runDir: string, step: number, fill: (dir: string) => void): string {
  const final = stepDir(runDir, step);
  const tmp = join(runDir, `.tmp-step-${step}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  fill(tmp);
  fsyncTree(tmp);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  fsyncPath(runDir);
  return final;
}

export function saveTrainerFiles(dir: string, state: TrainerState, opt: Map<string, HostTensor>): void {
  writeSafetensors(join(dir, 'optimizer.safetensors'), opt, { dtype: 'F32', metadata: { format: 'heed-optimizer' } });
  writeFileSync(join(dir, 'trainer_state.json'), JSON.stringify(state, null, 2) + '\n');
}

/** Complete checkpoints of a run, oldest first. */
export function listCheckpoints(runDir: string): Array<{ step: number; dir: string }> {
  if (!existsSync(runDir)) return [];
  return readdirSync(runDir)
    .map((f) => /^step-(\d+)$/.exec(f))
    .filter((m): m is RegExpExecArray => !!m && existsSync(join(runDir, m[0], 'trainer_state.json')))
    .map((m) => ({ step: Number(m[1]), dir: join(runDir, m[0]) }))
    .sort((a, b) => a.step - b.step);
}

export function readCheckpoint(dir: string): { state: TrainerState; opt: Map<string, HostTensor> } {
  const state = JSON.parse(readFileSync(join(dir, 'trainer_state.json'), 'utf8')) as TrainerState;
  const opt = readSafetensors(join(dir, 'optimizer.safetensors')).tensors;
  return { state, opt };
}

/** Keep the last `keep` checkpoints and the best one; remove stale temp folders. */
export function pruneCheckpoints(runDir: string, keep: number, bestStep: number | undefined): void {
  const all = listCheckpoints(runDir);
  const keepSet = new Set(all.slice(-keep).map((c) => c.step));
  if (bestStep !== undefined) keepSet.add(bestStep);
  for (const c of all) if (!keepSet.has(c.step)) rmSync(c.dir, { recursive: true, force: true });
  for (const f of readdirSync(runDir)) if (f.startsWith('.tmp-step-')) rmSync(join(runDir, f), { recursive: true, force: true });
}
