/**
 * Hugging Face weight folders: `model.safetensors`, or shards `model-0000i-of-0000n.safetensors` listed in
 * `model.safetensors.index.json` ({"metadata": {"total_size": N}, "weight_map": {name: file}}).
 *
 * Choices:
 * - Loading prefers `model.safetensors` over the index when both exist, as transformers does. With an index, exactly
 *   the tensors in weight_map are loaded; extra tensors in a shard are ignored.
 * - Saving follows transformers' save_pretrained / huggingface_hub's split_torch_state_dict_into_shards: tensors are
 *   taken in the Map's insertion order, a new shard starts when the next tensor would push the current one over
 *   maxShardBytes (default 5 GB = 5e9 bytes), a tensor bigger than that gets a shard of its own; one shard is written
 *   as `model.safetensors`, more as shards + index (JSON with indent 2 and sorted keys, total_size = bytes of tensor
 *   data). Every file is written atomically; then weight files of an older save that this save did not produce are
 *   removed (`model.safetensors`, `model.safetensors.index.json`, `model-*-of-*.safetensors`).
 * - `files` are paths joined with `dir`.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { HeedError } from '../errors.js';
import { readJson } from './json.js';
import { ITEM_SIZE, readSafetensors, readSafetensorsHeader, writeFileAtomic, writeSafetensors, type HostTensor, type StDType } from './safetensors.js';

export const SAFE_WEIGHTS = 'model.safetensors';
export const SAFE_WEIGHTS_INDEX = 'model.safetensors.index.json';
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;
const SHARD_RE = /^model-\d{5}-of-\d{5}\.safetensors$/;

export function loadHfWeights(dir: string): { tensors: Map<string, HostTensor>; dtypes: Map<string, StDType>; files: string[] } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new HeedError(`${dir}: model folder not found`, 'check the path to the model folder');
  const single = join(dir, SAFE_WEIGHTS);
  if (existsSync(single)) {
    const { tensors, dtypes } = readSafetensors(single);
    return { tensors, dtypes, files: [single] };
  }
  const indexPath = join(dir, SAFE_WEIGHTS_INDEX);
  if (existsSync(indexPath)) return loadSharded(dir, indexPath);
  const bin = ['pytorch_model.bin', 'pytorch_model.bin.index.json'].find((f) => existsSync(join(dir, f)));
  if (bin)
    throw new HeedError(`${dir}: has ${bin} but no ${SAFE_WEIGHTS} or ${SAFE_WEIGHTS_INDEX}; PyTorch pickle weights are not supported`,
      'convert with transformers: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)');
  throw new HeedError(`${dir}: no ${SAFE_WEIGHTS} or ${SAFE_WEIGHTS_INDEX} in the model folder`, 'point to a Hugging Face model folder with safetensors weights');
}

function loadSharded(dir: string, indexPath: string) {
  const index = readJson<{ weight_map?: unknown }>(indexPath, 'safetensors index');
  const wm = index?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm) || !Object.values(wm).every((f) => typeof f === 'string'))
    throw new HeedError(`${indexPath}: "weight_map" is missing or not an object of {tensor: file}`, 'repair or re-download the index');
  const byFile = new Map<string, string[]>();
  for (const [name, file] of Object.entries(wm as Record<string, string>)) {
    if (!byFile.has(file)) byFile.set(file, []);
    byFile.get(file)!.push(name);
  }
  const tensors = new Map<string, HostTensor>();
  const dtypes = new Map<string, StDType>();
  const files: string[] = [];
  for (const file of [...byFile.keys()].sort()) {
    const path = join(dir, file);
    if (!existsSync(path)) throw new HeedError(`${indexPath}: shard "${file}" is listed but missing from ${dir}`, 'download the missing shard, or re-save the model');
    const names = byFile.get(file)!;
    const { header } = readSafetensorsHeader(path);
    const absent = names.find((n) => !(n in header));
    if (absent !== undefined)
      throw new HeedError(`${indexPath}: tensor "${absent}" is mapped to "${file}" but is not in that shard`, 'the index and shards come from different saves; re-download or re-save the model');
    const r = readSafetensors(path, { names });
    for (const [k, v] of r.tensors) tensors.set(k, v);
    for (const [k, v] of r.dtypes) dtypes.set(k, v);
    files.push(path);
  }
  return { tensors, dtypes, files };
}

export function saveHfWeights(dir: string, tensors: Map<string, HostTensor>, opts: { dtype?: 'F32' | 'F16' | 'BF16'; maxShardBytes?: number } = {}): { files: string[] } {
  const dtype = opts.dtype ?? 'F32';
  const max = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(max > 0)) throw new HeedError(`${dir}: maxShardBytes ${max} must be positive`, 'pass a positive shard size in bytes');
  const item = ITEM_SIZE[dtype];
  if (item === undefined || !['F32', 'F16', 'BF16'].includes(dtype)) throw new HeedError(`${dir}: cannot save dtype ${JSON.stringify(dtype)}`, 'use F32, F16 or BF16');
  mkdirSync(dir, { recursive: true });

  const shards: Array<Array<[string, HostTensor]>> = [];
  let cur: Array<[string, HostTensor]> = [];
  let curBytes = 0;
  let total = 0;
  for (const entry of tensors) {
    const bytes = entry[1].data.length * item;
    total += bytes;
    if (bytes > max) {
      shards.push([entry]);
      continue;
    }
    if (cur.length > 0 && curBytes + bytes > max) {
      shards.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(entry);
    curBytes += bytes;
  }
  if (cur.length > 0 || shards.length === 0) shards.push(cur);

  const produced: string[] = [];
  if (shards.length === 1) {
    writeSafetensors(join(dir, SAFE_WEIGHTS), shards[0]!, { dtype });
    produced.push(SAFE_WEIGHTS);
  } else {
    const n = shards.length;
    const pad = (i: number) => String(i).padStart(5, '0');
    const weightMap: Record<string, string> = {};
    shards.forEach((shard, i) => {
      const file = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
      writeSafetensors(join(dir, file), shard, { dtype });
      for (const [name] of shard) weightMap[name] = file;
      produced.push(file);
    });
    const sorted = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
    const text = JSON.stringify({ metadata: { total_size: total }, weight_map: sorted }, null, 2) + '\n';
    writeFileAtomic(join(dir, SAFE_WEIGHTS_INDEX), (fd) => void writeSync(fd, text));
  }
  const keep = new Set([...produced, ...(shards.length > 1 ? [SAFE_WEIGHTS_INDEX] : [])]);
  for (const f of readdirSync(dir)) {
    if (keep.has(f)) continue;
    if (f === SAFE_WEIGHTS || f === SAFE_WEIGHTS_INDEX || SHARD_RE.test(f)) rmSync(join(dir, f), { force: true });
  }
  return { files: produced.map((f) => join(dir, f)) };
}
