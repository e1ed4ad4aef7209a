import type { Command } from './main.js';
import { flags, hint, parse, num } from './args.js';
import { HeedError } from '../errors.js';

const usage = 'heed stages --scores scored.jsonl --out DIR [--stages 3] [--by quantiles|thresholds:2.5,3.5] [--seed S] [--steps-per-stage N | --epochs-per-stage E] [--base-config train.yaml] [--json]';

const options = flags({
  scores: { type: 'string', arg: 'FILE', help: 'rows scored by heed difficulty (required)' },
  out: { type: 'string', arg: 'DIR', help: 'folder for the stage files and configs (required)' },
  stages: { type: 'string', arg: 'N', default: '3', help: 'how many stages' },
  by: { type: 'string', arg: 'quantiles|thresholds:a,b', default: 'quantiles', help: 'equal-sized stages, or cut at these difficulty scores' },
  seed: { type: 'string', arg: 'S', default: '0', help: 'seed of the random order' },
  'steps-per-stage': { type: 'string', arg: 'N', help: 'steps of each stage in the config fragments' },
  'epochs-per-stage': { type: 'string', arg: 'E', help: 'epochs of each stage in the config fragments (instead of steps)' },
  'base-config': { type: 'string', arg: 'FILE', help: 'also write complete heed train configs from this one (needs --steps-per-stage)' },
  json: { type: 'boolean', help: 'print the report as JSON' },
});

export const command: Command = {
  path: ['stages'],
  summary: 'split scored rows into curriculum stages: easy→hard, hard→easy and random orders over the same rows, with heed train config fragments',
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    if (positionals.length) throw new HeedError(`unknown argument "${positionals[0]}"`, `usage: ${usage}`);
    if (!values.scores) throw new HeedError('missing --scores', `usage: ${usage}`);
    if (!values.out) throw new HeedError('missing --out', `usage: ${usage}`);
    const n = num(values.stages, 'stages', { int: true, min: 1, max: 20 }) ?? 3;
    const seed = num(values.seed, 'seed', { int: true, min: 0 }) ?? 0;
    const steps = num(values['steps-per-stage'], 'steps-per-stage', { int: true, min: 1 });
    const epochs = num(values['epochs-per-stage'], 'epochs-per-stage', { min: 0.01 });
    if (steps !== undefined && epochs !== undefined) throw new HeedError('both --steps-per-stage and --epochs-per-stage are set', 'set one of them');
    const { parseSplit, splitStages, orderStages, ORDERS } = await import('../phased/stages.js');
    const split = parseSplit(values.by, n);
    const { readJsonlRows } = await import('../eval/jsonl.js');
    const rows = [];
    let unscored = 0;
    const seen = new Set<string>();
    for (const r of readJsonlRows(values.scores)) {
      if (r.error) throw new HeedError(`${values.scores}:${r.line}: ${r.error}`, 'pass a file written by heed difficulty');
      const v = r.value!;
      const id = String(v.id);
      if (seen.has(id)) throw new HeedError(`${values.scores}:${r.line}: duplicate id "${id}"`, 'stages are keyed by id: give every row a unique id');
      seen.add(id);
      if (typeof v.difficulty === 'number' && Number.isFinite(v.difficulty)) rows.push({ id, difficulty: v.difficulty, row: v });
      else unscored++;
    }
    if (rows.length < n) throw new HeedError(`${values.scores}: ${rows.length} scored row(s) for ${n} stages`, 'score more rows or ask for fewer --stages');
    const easyHard = splitStages(rows, n, split);
    const empty = easyHard.filter((s) => !s.rows.length);
    if (empty.length) throw new HeedError(`stage(s) ${empty.map((s) => s.name).join(', ')} would be empty with --by ${values.by ?? 'quantiles'}`, 'choose thresholds inside the score range, or --by quantiles');
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    mkdirSync(values.out, { recursive: true });
    const strip = (row: Record<string, unknown>) => {
      const { judgements: _j, features: _f, ...rest } = row;
      return rest;
    };
    const orders: Record<string, Array<{ name: string; file: string; rows: number; min: number; max: number }>> = {};
    for (const o of ORDERS) {
      const st = orderStages(easyHard, o, seed);
      orders[o] = st.map((s, k) => {
        const file = join(values.out!, `${o}-${k + 1}.jsonl`);
        writeFileSync(file, s.rows.map((r) => JSON.stringify(strip(r.row))).join('\n') + '\n');
        return { name: `${o}-${k + 1}`, file, rows: s.rows.length, min: s.min, max: s.max };
      });
      const yaml = ['# heed train config fragment: ' + o + ' stages over ' + rows.length + ' rows (heed stages ' + argv.join(' ') + ')', 'stages:', ...orders[o].flatMap((s) => [`  - name: ${s.name}`, `    data: ${s.file.split('/').pop()}`, ...(steps ? [`    steps: ${steps}`] : epochs ? [`    epochs: ${epochs}`] : [])])];
      writeFileSync(join(values.out!, `${o}.stages.yaml`), yaml.join('\n') + '\n');
    }
    const union = join(values.out, 'union.jsonl');
    // --base-config: complete heed train configs for the comparison, same settings and seed, same total steps
    const configs: string[] = [];
    if (values['base-config']) {
      if (!steps) throw new HeedError('--base-config needs --steps-per-stage', 'the one-off baseline gets stages × steps-per-stage steps: the same total as the phased runs');
      const YAML = (await import('yaml')).default;
      const { readFileSync } = await import('node:fs');
      const { resolve, dirname, isAbsolute } = await import('node:path');
      let base: Record<string, unknown>;
      try {
        base = YAML.parse(readFileSync(values['base-config'], 'utf8')) as Record<string, unknown>;
      } catch (e) {
        throw new HeedError(`--base-config ${values['base-config']}: ${(e as Error).message.split('\n')[0]}`, 'pass a heed train YAML config');
      }
      if (!base || typeof base !== 'object' || typeof base.model !== 'string') throw new HeedError(`--base-config ${values['base-config']}: no "model"`, 'pass a heed train YAML config with model: …');
      for (const k of ['data', 'stages', 'steps', 'epochs', 'name']) delete base[k];
      // paths in the base config were relative to its folder; the new configs live in --out
      const baseDir = dirname(resolve(values['base-config']));
      const rel = (p: unknown) => (typeof p === 'string' && !isAbsolute(p) && !/^[a-z]+:/.test(p) ? resolve(baseDir, p) : p);
      base.model = rel(base.model);
      if (base.out !== undefined) base.out = rel(base.out);
      for (const o of ORDERS) {
        const c = { ...base, name: o, stages: orders[o].map((s) => ({ name: s.name, data: s.file.split('/').pop(), steps })) };
        writeFileSync(join(values.out, `${o}.yaml`), YAML.stringify(c));
        configs.push(join(values.out, `${o}.yaml`));
      }
      writeFileSync(join(values.out, 'one-off.yaml'), YAML.stringify({ ...base, name: 'one-off', data: 'union.jsonl', steps: steps * n }));
      configs.push(join(values.out, 'one-off.yaml'));
    }
    writeFileSync(union, easyHard.flatMap((s) => s.rows).map((r) => JSON.stringify(strip(r.row))).join('\n') + '\n');
    const report = { scores: values.scores, stages: n, by: values.by ?? 'quantiles', rows: rows.length, unscored, orders, union, ...(configs.length ? { configs } : {}) };
    writeFileSync(join(values.out, 'stages.json'), JSON.stringify(report, null, 2) + '\n');
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else {
      console.log(`${rows.length} scored rows → ${n} stages (${report.by})${unscored ? `; ${unscored} row(s) without a score left out` : ''}`);
      for (const o of ORDERS) console.log(`  ${o.padEnd(9)} ${orders[o].map((s) => `${s.rows} rows [${s.min.toFixed(3)}, ${s.max.toFixed(3)}]`).join('  →  ')}`);
      console.log(`wrote ${values.out}/{easy-hard,hard-easy,random}-K.jsonl, *.stages.yaml (heed train "stages"), union.jsonl (the one-off baseline), stages.json`);
      if (configs.length) console.log(`train configs (same settings and seed, ${steps! * n} steps each): ${configs.map((c) => hint(`train ${c}`)).join('; ')}`);
    }
    return 0;
  },
};
