/**
 * A data file through the whole pipeline, streamed: load → prepare (template, tokens, weights) →
 * truncate. Bad rows (including rows the template cannot render) go to the BadRowLog; truncation
 * outcomes go to the TruncationLog. Nothing is dropped without being counted.
 */
import { basename } from 'node:path';
import { HeedError } from '../errors.js';
import { BadRowLog, loadConversations, type HintStyle, type LoadInfo, type LoadOptions, type OnBadRow } from './load.js';
import type { DataPipeline, Prepared } from './pipeline.js';
import { TruncationLog, truncateExample, type TruncateStatus, type TruncationPolicy } from './truncate.js';
import type { Example } from './types.js';

export interface DatasetOptions extends LoadOptions {
  onBadRow?: OnBadRow;
  maxLength?: number;
  truncation?: TruncationPolicy;
  /** name config keys (heed train) or CLI flags (heed data …) in the fixes of bad-row errors */
  hints?: HintStyle;
}

export interface DatasetReport {
  file: string;
  load: LoadInfo;
  bad: BadRowLog;
  truncation: TruncationLog;
}

export function newReport(path: string, onBadRow: OnBadRow = 'fail', hints: HintStyle = 'cli'): DatasetReport {
  return { file: path, load: { file: path, rows: 0, blankLines: 0, lastLine: 0 }, bad: new BadRowLog(onBadRow, basename(path), 20, hints), truncation: new TruncationLog() };
}

export interface StreamItem {
  prepared: Prepared;
  status: TruncateStatus;
  /** the row to train on (absent when dropped or vanished) */
  example?: Example;
}

/**
 * Every good row of the file, prepared and truncated. Throws the bad-row error at the end when the
 * policy is `fail` and any bad row was seen (after the first bad row only validation continues).
 */
export async function* streamDataset(path: string, pipeline: DataPipeline, opts: DatasetOptions, report: DatasetReport): AsyncGenerator<StreamItem> {
  const trunc = opts.truncation ?? 'truncate-right';
  for await (const conv of loadConversations(path, opts, report.bad, report.load)) {
    if (report.bad.policy === 'fail' && report.bad.count > 0) continue;
    let prepared: Prepared;
    try {
      prepared = pipeline.prepare(conv);
    } catch (e) {
      if (!(e instanceof HeedError)) throw e;
      report.bad.add({ line: conv.line, id: conv.id, reason: 'template', message: e.message });
      if (report.bad.full) break;
      continue;
    }
    const { status, example } = truncateExample(prepared.example, opts.maxLength, trunc);
    report.truncation.add(conv.id, status);
    yield { prepared, status, example };
  }
  report.bad.check(report.load.lastLine);
}

/** All training rows of a file in memory (for packing). */
export async function loadExamples(path: string, pipeline: DataPipeline, opts: DatasetOptions = {}): Promise<{ examples: Example[]; report: DatasetReport }> {
  const report = newReport(path, opts.onBadRow, opts.hints);
  const examples: Example[] = [];
  for await (const it of streamDataset(path, pipeline, opts, report)) if (it.example) examples.push(it.example);
  return { examples, report };
}
