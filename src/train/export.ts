/**
 * The tuned folder remembers how it was trained.
 *
 *  - every saved folder (checkpoints and exports) holds the chat/prompt template the run trained with as
 *    `chat_template` in tokenizer_config.json, so `heed generate --chat` (and transformers'
 *    apply_chat_template) prompt the model exactly as in training;
 *  - `heed_training.json` records the base model by name and by a path relative to the folder (never an
 *    absolute path of the machine), the template, mask and data format; adapter_config.json's
 *    `base_model_name_or_path` is that relative path too;
 *  - `runs/<name>/final/` and `runs/<name>/best/` are plain model folders for use and sharing: the
 *    checkpoint's files without `optimizer.safetensors`, `trainer_state.json` and the checkpoint
 *    `manifest.json` (resumable checkpoints `step-N/` keep all of them).
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';
import { MANIFEST } from './checkpoint.js';

/** Files that only resuming needs: left out of final/best exports. */
export const RESUME_ONLY = ['optimizer.safetensors', 'trainer_state.json', MANIFEST];

export interface TrainingRecord {
  base_model: { name: string; path: string };
  template: string;
  mask: string;
  format: string | null;
  step?: number;
}

/** `to` relative to `from`, with "/" separators (portable across machines and systems). */
export const relPath = (from: string, to: string) => relative(from, to).split(sep).join('/') || '.';

/** The base model's name: the `_name_or_path` of its config.json when that is a hub-style name, else its folder name. */
export function baseModelName(baseDir: string): string {
  try {
    const n = JSON.parse(readFileSync(join(baseDir, 'config.json'), 'utf8'))._name_or_path;
    if (typeof n === 'string' && /^[\w.-]+\/[\w.-]+$/.test(n)) return n;
  } catch {
    // no readable config.json: the folder name
  }
  return basename(baseDir);
}

/**
 * Write what a saved folder needs to remember. `dir` may be a temporary folder that is renamed to
 * `finalDir` (paths are made relative to `finalDir`).
 */
export function recordTraining(dir: string, finalDir: string, baseDir: string, rec: Omit<TrainingRecord, 'base_model'> & { chatTemplate: string }): void {
  const tcPath = join(dir, 'tokenizer_config.json');
  const tc = existsSync(tcPath) ? JSON.parse(readFileSync(tcPath, 'utf8')) : {};
  tc.chat_template = rec.chatTemplate;
  writeFileSync(tcPath, JSON.stringify(tc, null, 2) + '\n');
  // a chat_template.jinja copied from the base would take precedence in other tools: it must say the same
  if (existsSync(join(dir, 'chat_template.jinja'))) writeFileSync(join(dir, 'chat_template.jinja'), rec.chatTemplate);
  const base = { name: baseModelName(baseDir), path: relPath(finalDir, baseDir) };
  const record: TrainingRecord = { base_model: base, template: rec.template, mask: rec.mask, format: rec.format, ...(rec.step !== undefined ? { step: rec.step } : {}) };
  writeFileSync(join(dir, 'heed_training.json'), JSON.stringify(record, null, 2) + '\n');
  const ac = join(dir, 'adapter_config.json');
  if (existsSync(ac)) {
    const a = JSON.parse(readFileSync(ac, 'utf8'));
    a.base_model_name_or_path = base.path;
    writeFileSync(ac, JSON.stringify(a, null, 2) + '\n');
  }
}

/**
 * Export a checkpoint as a model folder (`runs/<name>/final`, `…/best`): every file except the
 * resume-only ones, written to a temporary folder and renamed into place. Returns the folder.
 */
export function exportCheckpoint(checkpointDir: string, outDir: string, baseDir: string): string {
  const tmp = `${outDir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (const f of readdirSync(checkpointDir)) {
    if (RESUME_ONLY.includes(f) || !statSync(join(checkpointDir, f)).isFile()) continue;
    copyFileSync(join(checkpointDir, f), join(tmp, f));
  }
  // the relative base path from the export folder (one level up from step-N's is the same depth: recompute)
  const hr = join(tmp, 'heed_training.json');
  if (existsSync(hr)) {
    const r = JSON.parse(readFileSync(hr, 'utf8')) as TrainingRecord;
    r.base_model.path = relPath(outDir, baseDir);
    writeFileSync(hr, JSON.stringify(r, null, 2) + '\n');
  }
  const ac = join(tmp, 'adapter_config.json');
  if (existsSync(ac)) {
    const a = JSON.parse(readFileSync(ac, 'utf8'));
    a.base_model_name_or_path = relPath(outDir, baseDir);
    writeFileSync(ac, JSON.stringify(a, null, 2) + '\n');
  }
  rmSync(outDir, { recursive: true, force: true });
  renameSync(tmp, outDir);
  return outDir;
}
