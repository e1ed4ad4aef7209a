/**
 * The browser training page: the user's model folder and JSONL file go into the tab's in-memory file system
 * (src/web/browser/fs.ts; nothing is uploaded), and then the same modules as the CLI run on them: DataPipeline +
 * computeStats (`heed data stats`), streamDataset + rowJson (`heed data inspect`), train() with LoRA (`heed
 * train`), EngineGenerator (`heed generate`). WebGPU when the browser has it, else wasm, said on the page.
 */
import './browser/globals.js'; // must stay the first import: process/Buffer before heed's modules load
import { putFile, listFiles, fileBytes, existsSync, rmSync } from './browser/fs.js';
import { readMetrics } from '../train/metrics.js';
import { initEngine, type EngineInfo } from '../engine/index.js';
import { HeedError } from '../errors.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { readModelConfig, parameterCount } from '../models/config.js';
import { loadModel, disposeParams } from '../models/load.js';
import { DataPipeline } from '../data/pipeline.js';
import { computeStats } from '../data/stats.js';
import { newReport, streamDataset } from '../data/dataset.js';
import { rowJson } from '../data/inspect.js';
import { parseTruncation } from '../data/truncate.js';
import { validateTrainConfig } from '../train/config.js';
import { train } from '../train/trainer.js';
import { EngineGenerator } from '../decode/generate.js';
import { lineChart } from '../report/svg.js';
import { DEFAULT_CLASSIFIER_PATH } from '../eval/ifs/classifier.js';
import { DEFAULT_PROMPTS_PATH } from '../eval/ifs/prompts.js';
import { exportGguf } from '../export/gguf.js';
import { verifyManifest } from '../train/checkpoint.js';
import { estimateTabMemory, tabBudget } from './memory.js';
import { zip } from './zip.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const MODEL = '/model';
const DATA = '/data.jsonl';
const RUNS = '/runs';

let engine: EngineInfo | undefined;
let checkpoint: string | undefined;
/** a run is in progress: closing the tab asks first (the run lives only in this tab; nothing of it is downloadable until it stops) */
let running = false;
const interrupt = { stop: false };

function say(id: string, text: string, cls = '') {
  const el = $(id);
  el.textContent = text;
  el.className = cls;
}
function clearError() {
  say('error', '');
  delete document.body.dataset.error;
}
function fail(e: unknown) {
  const msg = e instanceof HeedError ? e.oneLine() : (e as Error).message;
  say('error', msg, 'error');
  document.body.dataset.error = msg;
}
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

async function startEngine(): Promise<EngineInfo> {
  if (engine) return engine;
  try {
    engine = await initEngine({ device: 'webgpu', threads: 1 });
    say('device', 'training on WebGPU', 'ok');
  } catch (e) {
    engine = await initEngine({ device: 'wasm', threads: 1 });
    say('device', `WebGPU is not available in this browser (${e instanceof HeedError ? e.message : (e as Error).message}): training on wasm (CPU), slower`, 'warn');
  }
  document.body.dataset.device = engine.device;
  return engine;
}

async function loadModelFiles(list: FileList | File[]) {
  const files = [...list];
  if (!files.length) return;
  // a picked folder: "name/config.json"; dropped or multi-selected files: "config.json"
  const rel = (f: File) => ((f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name).split('/').slice(-1)[0];
  const weights = files.filter((f) => rel(f).endsWith('.safetensors')).reduce((s, f) => s + f.size, 0);
  const names = files.map(rel);
  if (!names.includes('config.json')) throw new HeedError('the model folder has no config.json', 'pick a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)');
  if (!names.includes('tokenizer.json')) throw new HeedError('the model folder has no tokenizer.json', 'pick a Hugging Face model folder with its tokenizer (tokenizer.json)');
  rmSync(MODEL, { recursive: true, force: true }); // a new pick replaces the old folder, files and all
  delete document.body.dataset.model;
  // config.json first: an unsupported architecture (heed's own config check) or a model too big for the tab is
  // refused before any weight is read
  putFile(`${MODEL}/config.json`, new Uint8Array(await files.find((f) => rel(f) === 'config.json')!.arrayBuffer()));
  const { config } = readModelConfig(MODEL);
  const mem = estimateTabMemory(config, { fileBytes: weights, budget: tabBudget((navigator as Navigator & { deviceMemory?: number }).deviceMemory) });
  if (!mem.fits) {
    rmSync(MODEL, { recursive: true, force: true });
    throw new HeedError(`too big for this browser tab, nothing loaded: ${mem.text}`, 'pick a smaller model, or train it with heed train on the command line');
  }
  for (const f of files) if (rel(f) !== 'config.json' && !/\.(bin|pt|pth|gguf)$/.test(rel(f))) putFile(`${MODEL}/${rel(f)}`, new Uint8Array(await f.arrayBuffer()));
  loadTokenizer(MODEL);
  say('model-info', `${config.modelType} · ${(parameterCount(config) / 1e6).toFixed(2)}M parameters · ${(weights / 2 ** 20).toFixed(1)} MiB of weights · about ${(mem.bytes / 2 ** 20).toFixed(1)} MiB of the tab's ${(mem.budget / 2 ** 30).toFixed(1)} GiB budget`, 'ok');
  document.body.dataset.model = 'loaded';
  await maybeInspect();
}

async function loadDataFile(f: File | undefined) {
  if (!f) return;
  putFile(DATA, new Uint8Array(await f.arrayBuffer()));
  say('data-info', `${f.name}: ${(f.size / 1024).toFixed(1)} KiB`, 'ok');
  document.body.dataset.data = 'loaded';
  await maybeInspect();
}

function pipeline() {
  const tok = loadTokenizer(MODEL);
  return new DataPipeline(tok, { template: ($('template') as HTMLSelectElement).value, mask: ($('mask') as HTMLSelectElement).value });
}
const dataOpts = () => ({ onBadRow: 'fail' as const, maxLength: Number(($('max-length') as HTMLInputElement).value), truncation: parseTruncation('drop') });

/** data stats and the mask preview: the code behind heed data stats / heed data inspect */
async function maybeInspect() {
  if (!existsSync(`${MODEL}/config.json`) || !existsSync(DATA)) return;
  clearError();
  const p = pipeline();
  const s = await computeStats(DATA, p, dataOpts());
  $('stats').innerHTML = `<table><tr><th>rows</th><td>${s.rows.good} good, ${s.rows.kept} kept, ${s.rows.dropped} dropped (longer than ${s.maxLength})</td></tr><tr><th>tokens</th><td>${s.tokens.total} (mean ${s.tokens.perRow.mean.toFixed(1)}/row, max ${s.tokens.perRow.max})</td></tr><tr><th>loss-bearing</th><td>${s.loss.keptTokens} tokens</td></tr><tr><th>instruction/output</th><td>${Number.isFinite(s.ratio.ratio) ? s.ratio.ratio.toFixed(2) : '—'}: ${esc(s.ratio.reading)}</td></tr><tr><th>template · mask</th><td>${esc(s.template)} · ${esc(s.mask)}</td></tr></table>`;
  const rows: string[] = [];
  const report = newReport(DATA, 'fail');
  for await (const it of streamDataset(DATA, p, dataOpts(), report)) {
    const r = rowJson(it.example ?? it.prepared.example, p.enc);
    rows.push(`<div class="row"><span class="id">${esc(r.id)}</span>${r.runs.map((x) => `<span class="w" style="background:rgba(22,163,74,${(0.15 + 0.6 * x.weight) * (x.weight > 0 ? 1 : 0)})" title="weight ${x.weight}">${esc(x.text)}</span>`).join('')}</div>`);
    if (rows.length >= 3) break;
  }
  $('preview').innerHTML = rows.join('');
  document.body.dataset.inspected = String(s.rows.kept);
  ($('start') as HTMLButtonElement).disabled = s.rows.kept === 0;
}

function drawLoss() {
  // the one metrics.jsonl reader (src/train/metrics.ts; a missing file is no records, a torn last line left out)
  const ms = readMetrics(`${RUNS}/web/metrics.jsonl`).records as Array<Record<string, number>>;
  if (!ms.length) return 0;
  $('loss').innerHTML = lineChart({ id: 'web-loss', title: 'Training loss (LoRA)', xLabel: 'step', yLabel: 'loss', series: [{ name: 'loss', points: ms.map((m) => [m.step, m.loss] as [number, number]) }], width: 530, height: 260 });
  $('loss').dataset.points = String(ms.length);
  drawIfs(ms);
  return ms.length;
}

/** IFS at the evaluation points (the trainer's IFS callback writes ifs / ifs_partial / ifs_full into metrics.jsonl). */
function drawIfs(ms: Array<Record<string, number>>) {
  const ev = ms.filter((m) => typeof m.ifs === 'number');
  if (!ev.length) return;
  const series = (['ifs', 'ifs_partial', 'ifs_full'] as const).map((k) => ({ name: k.replace('_', ' '), points: ev.map((m) => [m.step, m[k]] as [number, number]) }));
  $('ifs').innerHTML = lineChart({ id: 'web-ifs', title: ifsTitle, xLabel: 'step', yLabel: 'IFS', series, yMin: 0, yMax: 1, width: 530, height: 260 });
  $('ifs').dataset.points = String(ev.length);
  $('ifs').dataset.last = String(ev[ev.length - 1].ifs);
}
let ifsTitle = 'IFS';
const ifsEvery = () => Number(($('ifs-every') as HTMLInputElement).value);
const ifsBudget = () => Number(($('ifs-budget') as HTMLInputElement).value);
const ifsVariant = () => ($('ifs-variant') as HTMLSelectElement).value as 'A' | 'B' | 'C';

/**
 * The IFS classifier and prompt set are files of the heed package: fetched from beside the page (heed ui serves
 * them; npm run build:web copies them into the static build) into the in-memory file system, at the paths where
 * the CLI's modules (src/eval/ifs) look for them.
 */
async function loadIfsFiles() {
  for (const [path, name] of [[DEFAULT_CLASSIFIER_PATH, 'classifier.safetensors'], [DEFAULT_PROMPTS_PATH, 'prompts.jsonl']] as const) {
    if (existsSync(path)) continue;
    const url = new URL(`data/ifs/${name}`, document.baseURI);
    const r = await fetch(url);
    if (!r.ok) throw new HeedError(`${url.pathname}: HTTP ${r.status}: the IFS ${name.endsWith('.jsonl') ? 'prompt set' : 'classifier'} could not be loaded`, 'serve the page with heed ui, or host the static build of npm run build:web (it carries data/ifs/); or set "IFS every" to 0');
    putFile(path, new Uint8Array(await r.arrayBuffer()));
  }
}

async function startTraining() {
  ($('start') as HTMLButtonElement).disabled = true;
  ($('stop') as HTMLButtonElement).disabled = false;
  ($('download') as HTMLButtonElement).disabled = true;
  ($('download-gguf') as HTMLButtonElement).disabled = true;
  checkpoint = undefined;
  interrupt.stop = false;
  clearError();
  const info = await startEngine();
  const steps = Number(($('steps') as HTMLInputElement).value);
  const every = ifsEvery();
  if (!Number.isInteger(every) || every < 0) throw new HeedError(`IFS every ${($('ifs-every') as HTMLInputElement).value}: not a whole number of steps`, 'enter 0 (no IFS) or a step interval');
  if (every > 0) await loadIfsFiles();
  $('ifs').innerHTML = '';
  delete $('ifs').dataset.points;
  ifsTitle = `IFS every ${every} steps (variant ${ifsVariant()}, ${ifsBudget()} prompts)`;
  // IFS at every evaluation, measured only: the page's step budget ends the run (the CLI's plateau rule needs min_ifs 0.9)
  const ifs = every > 0 ? { early_stopping: { ifs: { budget: ifsBudget(), variant: ifsVariant(), max_tokens: 24, batch_size: 16, measure_only: true } } } : {};
  const cfg = validateTrainConfig({
    model: MODEL, data: DATA, template: ($('template') as HTMLSelectElement).value, mask: ($('mask') as HTMLSelectElement).value,
    max_length: Number(($('max-length') as HTMLInputElement).value), truncation: 'drop', batch_size: 2, steps, lr: Number(($('lr') as HTMLInputElement).value),
    warmup_steps: Math.min(5, steps - 1), eval_every: every > 0 ? every : steps + 1, save_every: steps + 1, ...ifs, seed: 1, out: RUNS, name: 'web', device: info.device,
    lora: { r: 8, alpha: 16, targets: ['q', 'k', 'v', 'o'] }, // attention only, as src/web/memory.ts estimates (the CLI's default adapts every linear layer)
  });
  const timer = setInterval(drawLoss, 250);
  running = true;
  say('status', 'training…');
  try {
    const s = await train(cfg, { quiet: true, interrupt });
    checkpoint = s.last_checkpoint ?? undefined;
    say('status', `${s.interrupted ? 'stopped' : 'done'} at step ${s.steps} (${Number(s.tokens_per_s).toFixed(0)} tokens/s on ${info.device})`, 'ok');
    document.body.dataset.trained = String(s.steps);
    ($('download') as HTMLButtonElement).disabled = !checkpoint;
    ($('download-gguf') as HTMLButtonElement).disabled = !checkpoint;
    ($('generate') as HTMLButtonElement).disabled = !checkpoint;
  } finally {
    running = false;
    clearInterval(timer);
    drawLoss();
    ($('stop') as HTMLButtonElement).disabled = true;
    ($('start') as HTMLButtonElement).disabled = false;
  }
}

async function generateBoth() {
  if (!checkpoint) return;
  await startEngine();
  const prompt = ($('prompt') as HTMLInputElement).value;
  for (const [dir, out] of [[MODEL, 'gen-base'], [checkpoint, 'gen-tuned']] as const) {
    const m = await loadModel(dir);
    const g = new EngineGenerator(m);
    const [r] = await g.generate([prompt], { maxTokens: 24, temperature: 0 });
    $(out).textContent = r.text;
    g.dispose();
    disposeParams(m.params);
  }
  document.body.dataset.generated = '1';
}

/**
 * The checkpoint to download, or an error: only a checkpoint the trainer finished (its SHA-256 manifest is
 * written last and every file matches it), never the files of a run in progress.
 */
function finishedCheckpoint(): string {
  if (!checkpoint) throw new HeedError('no finished checkpoint to download yet', 'train first, and wait until the run has stopped');
  const why = verifyManifest(checkpoint);
  if (why) throw new HeedError(`the checkpoint ${checkpoint} is not complete (${why})`, 'train again; nothing half-written is downloaded');
  return checkpoint;
}

function save(blob: Blob, name: string) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

/** The tuned model as one GGUF file (f32, heed export gguf's writer; the bytes go straight into a Blob). */
function downloadGguf() {
  const dir = finishedCheckpoint();
  const parts: Uint8Array[] = [];
  const r = exportGguf(dir, (b) => parts.push(b), { dtype: 'f32', name: 'heed-lora-tuned' });
  say('download-info', `GGUF: ${r.arch}, ${r.tensors} tensors, ${(r.bytes / 2 ** 20).toFixed(2)} MiB${r.notes.length ? ` (${r.notes.join('; ')})` : ''}`, 'ok');
  save(new Blob(parts as BlobPart[], { type: 'application/octet-stream' }), 'heed-lora-tuned.gguf');
}

/** The tuned checkpoint as a Hugging Face folder (zip): weights, config, tokenizer, PEFT adapter; no trainer state. */
function download() {
  const checkpoint = finishedCheckpoint();
  const files = listFiles(checkpoint).filter((f) => !/\/(optimizer\.safetensors|trainer_state\.json)$/.test(f));
  const name = 'heed-lora-tuned';
  const blob = new Blob([zip(files.map((f) => ({ name: `${name}/${f.slice(checkpoint.length + 1)}`, data: fileBytes(f)! })))  as BlobPart], { type: 'application/zip' });
  save(blob, `${name}.zip`);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const guard = (f: (...a: any[]) => Promise<void> | void) => async (...a: any[]) => {
  try {
    await f(...a);
  } catch (e) {
    fail(e);
  }
};
$('model-files').addEventListener('change', guard(() => loadModelFiles(($('model-files') as HTMLInputElement).files!)));
$('model-dir').addEventListener('change', guard(() => loadModelFiles(($('model-dir') as HTMLInputElement).files!)));
$('data-file').addEventListener('change', guard(() => loadDataFile(($('data-file') as HTMLInputElement).files![0])));
for (const id of ['template', 'mask', 'max-length']) $(id).addEventListener('change', guard(maybeInspect));
$('start').addEventListener('click', guard(startTraining));
$('stop').addEventListener('click', () => {
  interrupt.stop = true;
  say('status', 'stopping after this step…');
});
$('generate').addEventListener('click', guard(generateBoth));
$('download').addEventListener('click', guard(download));
$('download-gguf').addEventListener('click', guard(downloadGguf));
window.addEventListener('beforeunload', (e) => {
  if (running) e.preventDefault();
});
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', guard(async (e: DragEvent) => {
  e.preventDefault();
  const files = [...(e.dataTransfer?.files ?? [])];
  const data = files.find((f) => /\.jsonl?$/.test(f.name));
  const model = files.filter((f) => f !== data);
  if (model.length) await loadModelFiles(model);
  if (data) await loadDataFile(data);
}));
void guard(async () => {
  await startEngine();
  document.body.dataset.ready = '1';
})();
