import type { Command } from './main.js';
import { flags, num, parse } from './args.js';
import { HeedError, safeText } from '../errors.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { DataPipeline } from '../data/pipeline.js';
import { DEFAULT_FIELDS, FORMATS, type FieldMap, type Format, type OnBadRow } from '../data/load.js';
import { parseTruncation } from '../data/truncate.js';
import { computeStats, formatStats } from '../data/stats.js';
import type { DatasetOptions } from '../data/dataset.js';
import { ROLES, type Role } from '../data/types.js';

/** Options shared by `heed data stats` and `heed data inspect`. */
export const dataOptions = flags({
  data: { type: 'string', arg: 'FILE', help: 'the data file (JSONL or JSON rows; required)' },
  model: { type: 'string', arg: 'DIR', help: 'a model folder with tokenizer.json (tokenizer files alone are enough; required)' },
  template: { type: 'string', arg: 'NAME|FILE', default: 'auto', help: "prompt template: auto (the model's chat template, else chatml), model, alpaca, tulu, chatml, plain, or a .json/.jinja file" },
  mask: { type: 'string', arg: 'POLICY', default: 'output', help: 'which tokens carry loss: output, instruction, weighted:λ, response-only, last-turn' },
  'include-system': { type: 'boolean', help: 'instruction / weighted masks: system text carries loss too' },
  'im-marker-quirk': { type: 'boolean', help: "instruction / weighted masks: reproduce the IM paper code's loss on the assistant marker" },
  format: { type: 'string', arg: 'FORMAT', default: 'detected from the first row', help: `row format: auto, ${FORMATS.join(', ')}` },
  fields: { type: 'string', arg: 'key=name,...', help: 'field names of your rows, e.g. messages=conversations,role=from,content=value' },
  roles: { type: 'string', arg: 'name=role,...', help: 'extra role names, e.g. human=user,gpt=assistant' },
  'on-bad-row': { type: 'string', arg: 'fail|skip', default: 'fail', help: 'a malformed row stops the command, or is skipped and counted' },
  'max-length': { type: 'string', arg: 'N', default: "the model's context", help: 'longest sequence in tokens' },
  truncation: { type: 'string', arg: 'MODE', default: 'truncate-right', help: 'rows longer than --max-length: drop, truncate-right or truncate-left' },
  json: { type: 'boolean', help: 'print the result as JSON' },
});

export const dataUsageTail =
  '[--template auto|model|alpaca|tulu|chatml|plain|FILE] [--mask output|instruction|weighted:λ|response-only|last-turn] [--include-system] [--im-marker-quirk] ' +
  `[--format ${FORMATS.join('|')}]` + ' [--fields key=name,...] [--roles name=role,...] [--on-bad-row fail|skip] [--max-length N] [--truncation drop|truncate-right|truncate-left] [--json]';

function pairs(s: string | undefined, flag: string): Array<[string, string]> {
  if (!s) return [];
  return s.split(',').map((kv) => {
    const i = kv.indexOf('=');
    if (i <= 0 || i === kv.length - 1) throw new HeedError(`--${flag}: "${kv}" is not key=value`, `e.g. --${flag} ${flag === 'roles' ? 'human=user,gpt=assistant' : 'messages=conversations,role=from,content=value'}`);
    return [kv.slice(0, i).trim(), kv.slice(i + 1).trim()];
  });
}

export function setupData(values: Record<string, unknown>, usage: string) {
  const data = values.data as string | undefined;
  const model = values.model as string | undefined;
  if (!data) throw new HeedError('missing --data FILE', `usage: ${usage}`);
  if (!model) throw new HeedError('missing --model DIR (a folder with tokenizer.json; tokenizer files alone are enough)', `usage: ${usage}`);
  const tok = loadTokenizer(model);
  const pipeline = new DataPipeline(tok, {
    template: (values.template as string | undefined) ?? 'auto',
    mask: (values.mask as string | undefined) ?? 'output',
    includeSystem: !!values['include-system'],
    markerQuirk: !!values['im-marker-quirk'],
  });
  const fields: Partial<FieldMap> = {};
  for (const [k, v] of pairs(values.fields as string | undefined, 'fields')) {
    if (!(k in DEFAULT_FIELDS)) throw new HeedError(`--fields: unknown key "${k}"`, `keys: ${Object.keys(DEFAULT_FIELDS).join(', ')}`);
    fields[k as keyof FieldMap] = v;
  }
  const roles: Record<string, Role> = {};
  for (const [k, v] of pairs(values.roles as string | undefined, 'roles')) {
    if (!(ROLES as readonly string[]).includes(v)) throw new HeedError(`--roles: "${k}=${v}": the role must be one of ${ROLES.join(', ')}`, 'e.g. --roles human=user,gpt=assistant');
    roles[k] = v as Role;
  }
  const format = values.format as string | undefined;
  if (format !== undefined && format !== 'auto' && !(FORMATS as readonly string[]).includes(format)) throw new HeedError(`--format must be auto, ${FORMATS.join(', ')}; got "${format}"`, 'omit --format to detect the format from the first row');
  const onBad = (values['on-bad-row'] as string | undefined) ?? 'fail';
  if (onBad !== 'fail' && onBad !== 'skip') throw new HeedError(`--on-bad-row must be fail or skip, got "${onBad}"`, 'use --on-bad-row skip to skip and count bad rows');
  const opts: DatasetOptions = {
    format: format && format !== 'auto' ? (format as Format) : undefined,
    fields,
    roles,
    onBadRow: onBad as OnBadRow,
    maxLength: num(values['max-length'], 'max-length', { int: true, min: 2 }),
    truncation: parseTruncation((values.truncation as string | undefined) ?? 'truncate-right'),
  };
  return { tok, pipeline, opts, data, model };
}

const usage = `heed data stats --data FILE --model DIR ${dataUsageTail}`;

export const command: Command = {
  path: ['data', 'stats'],
  summary: 'rows, tokens per role, loss-bearing tokens, instruction/output ratio, truncation, longest rows of a data file',
  usage,
  options: dataOptions,
  async run(argv) {
    const { values } = parse(argv, dataOptions, usage, false);
    const { pipeline, opts, data, model } = setupData(values, usage);
    const stats = await computeStats(data, pipeline, opts);
    if (values.json) console.log(JSON.stringify({ model, ...stats, ratio: { ...stats.ratio, ratio: Number.isFinite(stats.ratio.ratio) ? stats.ratio.ratio : null } }, null, 2));
    else console.log(safeText(formatStats(stats, model), { newlines: true }));
    return 0;
  },
};
