/**
 * Run folders and checkpoints. A checkpoint `step-N/` is a Hugging Face model folder (merged weights when
 * training LoRA) plus, for resuming: `trainer_state.json`, `optimizer.safetensors` (AdamW moments, and the
 * exact f32 trainable parameters) and, with LoRA, the PEFT adapter. It is written to `.tmp-step-N/`, every
 * file fsynced, then renamed into place, so a crash at any moment leaves either the old set of checkpoints
 * or the new one — never a half-written `step-N/`.
 *
 * `manifest.json` is written last (inside the temp folder, before the rename): the size and SHA-256 of every
 * other file. On resume the newest checkpoint whose manifest verifies, whose trainer state agrees with its
 * folder name and with metrics.jsonl, and whose parameters are finite is used; a damaged newer one is moved
 * aside to `damaged-step-N/` (never deleted) and the fallback is said out loud.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readSync, readdirSync, renameSync, rmSync, statSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { HeedError } from '../errors.js';
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
  /** training wall time of all sessions up to this step (s; absent in checkpoints of an older heed) */
  seconds?: number;
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
  writeManifest(tmp, step);
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

export const MANIFEST = 'manifest.json';

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

/** SHA-256 of a file, read in 16 MiB chunks (checkpoints of larger models exceed one Buffer). */
function sha256(p: string): string {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 24);
  const fd = openSync(p, 'r');
  try {
    for (let pos = 0; ; ) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** The manifest: every file's size and SHA-256 (written last, so its presence means the rest is complete). */
export function writeManifest(dir: string, step: number): void {
  const files: Record<string, { bytes: number; sha256: string }> = {};
  for (const p of filesUnder(dir)) {
    const rel = relative(dir, p).split('\\').join('/');
    if (rel === MANIFEST) continue;
    files[rel] = { bytes: statSync(p).size, sha256: sha256(p) };
  }
  writeFileSync(join(dir, MANIFEST), JSON.stringify({ format: 'heed-checkpoint', version: 1, step, files }, null, 2) + '\n');
}

/** Why a checkpoint cannot be trusted, or null when every file matches its manifest. */
export function verifyManifest(dir: string): string | null {
  const mf = join(dir, MANIFEST);
  if (!existsSync(mf)) return `no ${MANIFEST}`;
  let m: { step?: unknown; files?: Record<string, { bytes: number; sha256: string }> };
  try {
    m = JSON.parse(readFileSync(mf, 'utf8'));
  } catch {
    return `${MANIFEST} is not valid JSON`;
  }
  if (typeof m.files !== 'object' || m.files === null) return `${MANIFEST} lists no files`;
  for (const [rel, want] of Object.entries(m.files)) {
    const p = join(dir, rel);
    if (!existsSync(p)) return `${rel} is missing`;
    const bytes = statSync(p).size;
    if (bytes !== want.bytes) return `${rel} is ${bytes} bytes, the manifest says ${want.bytes}`;
    if (sha256(p) !== want.sha256) return `${rel} does not match its SHA-256 in ${MANIFEST} (the file was changed or damaged)`;
  }
  for (const p of filesUnder(dir)) {
    const rel = relative(dir, p).split('\\').join('/');
    if (rel !== MANIFEST && !(rel in m.files)) return `${rel} is not in ${MANIFEST}`;
  }
  return null;
}

const STATE_KEYS: Array<keyof TrainerState> = ['step', 'stage', 'epoch', 'micro', 'stageStep', 'tokens'];

/**
 * Load a checkpoint for resuming and check everything that can be checked: the manifest, the trainer state
 * (its step equals the folder's, counters are non-negative integers), metrics.jsonl has the step's record with
 * the same token count, and every optimizer tensor (parameters and moments) is finite.
 */
export function loadVerifiedCheckpoint(dir: string, step: number, metrics: Array<Record<string, unknown>> | undefined): { state: TrainerState; opt: Map<string, HostTensor>; unverified?: boolean } | { damaged: string } {
  // a checkpoint of an older heed has no manifest: its other checks still apply, and the caller says so
  const legacy = !existsSync(join(dir, MANIFEST)) && existsSync(join(dir, 'trainer_state.json'));
  const why = legacy ? null : verifyManifest(dir);
  if (why) return { damaged: why };
  let state: TrainerState;
  let opt: Map<string, HostTensor>;
  try {
    ({ state, opt } = readCheckpoint(dir));
  } catch (e) {
    return { damaged: e instanceof HeedError ? e.message : `cannot read it (${(e as Error).message})` };
  }
  for (const k of STATE_KEYS) if (!Number.isSafeInteger(state[k]) || (state[k] as number) < 0) return { damaged: `trainer_state.json: "${k}" is ${JSON.stringify(state[k])}` };
  if (state.step !== step) return { damaged: `trainer_state.json says step ${state.step}, but the folder is step-${step}` };
  if (metrics) {
    const rec = metrics.find((r) => r.step === step);
    if (step > 0 && !rec) return { damaged: `metrics.jsonl has no record of step ${step}` };
    if (rec && rec.tokens !== state.tokens) return { damaged: `trainer_state.json counts ${state.tokens} tokens at step ${step}, metrics.jsonl ${String(rec.tokens)}` };
  }
  for (const [k, t] of opt) {
    for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i])) return { damaged: `optimizer.safetensors: "${k}" holds a non-finite value (${t.data[i]}) at index ${i}; training diverged before this checkpoint` };
  }
  return legacy ? { state, opt, unverified: true } : { state, opt };
}

/** Move a damaged checkpoint aside (kept for inspection, no longer listed). Returns the new folder. */
export function setAside(dir: string): string {
  let to = dir.replace(/step-(\d+)$/, 'damaged-step-$1');
  for (let k = 2; existsSync(to); k++) to = dir.replace(/step-(\d+)$/, `damaged-step-$1-${k}`);
  renameSync(dir, to);
  return to;
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
