/**
 * `heed difficulty`: every input row out again with its id and a numeric `difficulty`, by one scorer:
 *   judge:<model spec>   the 1–5 judge prompt (src/eval/judges/difficulty.ts), K samples averaged
 *   loss:<model folder>  mean NLL (nats/token) of the output given the instruction (Alpaca wrapper)
 *   ifd:<model folder>   loss with the instruction ÷ loss without it (Li et al. 2023, IFD)
 *   heuristic            the lexical/length heuristic (src/phased/heuristic.ts)
 * Resumable: each finished row is appended to `<out>.partial` (one JSON line, written whole); a re-run with the
 * same --out reads it and scores only the rows not finished there (failed rows are asked again; their judge
 * answers that did parse come from the answer cache). On completion `<out>` is written in input order and the
 * journal removed. A row without an output is a counted skip for loss and ifd (difficulty null, `skipped`).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { HeedError } from '../errors.js';
import type { InstructionRow } from './rows.js';
import { heuristicDifficulty } from './heuristic.js';
import type { ModelBackend } from '../backends/types.js';

export type ScorerSpec = { kind: 'judge'; model: string } | { kind: 'loss' | 'ifd'; model: string } | { kind: 'heuristic' };

export const SCORER_FIX = 'use --scorer judge:<model spec> (e.g. judge:openai:http://127.0.0.1:8000/v1#m?api=chat), loss:<model folder>, ifd:<model folder> or heuristic';

export function parseScorer(s: string): ScorerSpec {
  if (s === 'heuristic') return { kind: 'heuristic' };
  const m = /^(judge|loss|ifd):(.+)$/.exec(s);
  if (!m) throw new HeedError(`unknown scorer "${s}"`, SCORER_FIX);
  return { kind: m[1] as 'judge', model: m[2] };
}

export interface ScoredRow {
  id: string;
  difficulty: number | null;
  scorer: string;
  judgements?: Array<{ score?: number; reply?: string; error?: string; attempts: number }>;
  loss?: number;
  loss_no_instruction?: number;
  tokens?: number;
  truncated?: boolean;
  features?: Record<string, number>;
  failed?: string;
  skipped?: string;
  [k: string]: unknown;
}

export interface ScoreRunOptions {
  out: string;
  samples?: number;
  concurrency?: number;
  temperature?: number;
  retries?: number;
  maxTokens?: number;
  /** judge: an opened backend; loss/ifd: an NLL scorer (injected so that the CLI opens models) */
  backend?: ModelBackend;
  nll?: { score(items: Array<{ prompt: string; response: string }>, o?: { onProgress?: (d: number, t: number) => void }): Promise<Array<{ nll: number; tokens: number; truncated: boolean }>> };
  wrap?: (instruction: string) => string;
  onProgress?: (done: number, total: number) => void;
}

export interface ScoreRunResult {
  rows: ScoredRow[];
  scored: number;
  failed: number;
  skipped: number;
  /** rows taken from the journal of an earlier, interrupted run */
  resumed: number;
  /** rows scored in this run */
  fresh: number;
}

function readJournal(path: string, ids: Set<string>, scorer: string): Map<string, ScoredRow> {
  const m = new Map<string, ScoredRow>();
  if (!existsSync(path)) return m;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as ScoredRow;
      if (ids.has(r.id) && r.scorer === scorer && !r.failed) m.set(r.id, r); // another scorer's journal is not this run's
    } catch {
      /* a line cut by a kill: that row is scored again */
    }
  }
  return m;
}

export async function runScoring(rows: InstructionRow[], scorer: ScorerSpec, name: string, o: ScoreRunOptions): Promise<ScoreRunResult> {
  const journal = `${o.out}.partial`;
  mkdirSync(dirname(o.out), { recursive: true });
  const done = readJournal(journal, new Set(rows.map((r) => r.id)), name);
  const resumed = done.size;
  const todo = rows.filter((r) => !done.has(r.id));
  const base = (r: InstructionRow): Pick<ScoredRow, 'id' | 'scorer'> => ({ id: r.id, scorer: name });
  const record = (r: ScoredRow) => {
    appendFileSync(journal, JSON.stringify(r) + '\n');
    done.set(r.id, r);
  };
  let finished = resumed;
  const tick = () => o.onProgress?.(++finished, rows.length);
  o.onProgress?.(finished, rows.length);

  if (scorer.kind === 'heuristic') {
    for (const r of todo) {
      const h = heuristicDifficulty(r.instruction, r.output);
      record({ ...base(r), difficulty: h.difficulty, features: h.features, ...(r.output === undefined ? { note: 'no output: instruction features only' } : {}) });
      tick();
    }
  } else if (scorer.kind === 'loss' || scorer.kind === 'ifd') {
    if (!o.nll || !o.wrap) throw new Error('runScoring: loss/ifd need an NLL scorer');
    const withOut = todo.filter((r) => r.output !== undefined && r.output.trim() !== '');
    for (const r of todo) if (!withOut.includes(r)) {
      record({ ...base(r), difficulty: null, skipped: 'no output: the loss needs a response' });
      tick();
    }
    const CHUNK = 64;
    for (let s = 0; s < withOut.length; s += CHUNK) {
      const part = withOut.slice(s, s + CHUNK);
      const a = await o.nll.score(part.map((r) => ({ prompt: o.wrap!(r.instruction), response: r.output! })));
      const b = scorer.kind === 'ifd' ? await o.nll.score(part.map((r) => ({ prompt: '', response: r.output! }))) : undefined;
      part.forEach((r, i) => {
        const loss = a[i].nll;
        const d = b ? loss / b[i].nll : loss;
        record({ ...base(r), difficulty: Number.isFinite(d) ? Math.round(d * 1e6) / 1e6 : null, loss: Math.round(loss * 1e6) / 1e6, ...(b ? { loss_no_instruction: Math.round(b[i].nll * 1e6) / 1e6 } : {}), tokens: a[i].tokens, ...(a[i].truncated ? { truncated: true } : {}) });
        tick();
      });
    }
  } else {
    const b = o.backend;
    if (!b) throw new Error('runScoring: judge needs a backend');
    const { askStrict } = await import('../eval/judges/ask.js');
    const { semaphore } = await import('../backends/semaphore.js');
    const { difficultyPrompt, parseDifficulty } = await import('../eval/judges/difficulty.js');
    const K = o.samples ?? 1;
    const temperature = o.temperature ?? (K > 1 ? 0.7 : 0);
    const limit = semaphore(o.concurrency ?? 4);
    await Promise.all(
      todo.map((r) =>
        limit(async () => {
          const judgements: NonNullable<ScoredRow['judgements']> = [];
          for (let k = 0; k < K; k++) {
            const res = await askStrict(b, difficultyPrompt(r.instruction), parseDifficulty, { maxTokens: o.maxTokens ?? 16, temperature, seed: k, retries: o.retries ?? 2 });
            judgements.push(res.ok ? { score: res.value, reply: res.reply, attempts: res.attempts.length } : { error: res.error, attempts: res.attempts.length });
          }
          const good = judgements.filter((j) => j.score !== undefined).map((j) => j.score!);
          // every sample must parse: a mean over fewer samples than asked would be a different measurement
          if (good.length < K) record({ ...base(r), difficulty: null, judgements, failed: judgements.find((j) => j.error)!.error! });
          else record({ ...base(r), difficulty: good.reduce((x, y) => x + y, 0) / K, judgements });
          tick();
        }),
      ),
    );
  }
  const out = rows.map((r) => ({ ...r.raw, ...done.get(r.id)! }));
  const failed = out.filter((r) => r.failed).length;
  const skipped = out.filter((r) => r.skipped).length;
  const tmp = `${o.out}.tmp`;
  writeFileSync(tmp, out.map((r) => JSON.stringify(r)).join('\n') + '\n');
  renameSync(tmp, o.out);
  if (!failed) rmSync(journal, { force: true });
  return { rows: out, scored: out.length - failed - skipped, failed, skipped, resumed, fresh: todo.length };
}
