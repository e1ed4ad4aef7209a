/**
 * heed as a library: the deliberate public surface (`import { ... } from 'heed'`), documented in docs/library.md.
 * Everything here is a re-export of the module the CLI itself uses, plus one convenience (`readConversations`).
 * Anything not exported here is internal and may change without notice.
 *
 *   engine      initEngine (wasm thread pool or WebGPU; call once before loading a model or training)
 *   models      loadModel / saveModel (Hugging Face folders), readModelConfig, parameterCount, loadTokenizer
 *   data        readConversations (any supported format → conversations), DataPipeline (template + mask →
 *               token ids and per-token loss weights)
 *   training    loadTrainConfig / validateTrainConfig (the YAML config of `heed train`), train() with callbacks
 *   generation  parseSpec / openModel (a folder, gguf:<file> or openai:<url>#<model>) → a text generator
 *   evaluation  scoreIfs with the shipped prompts and classifier, scoreObjecqa with the shipped judge, wilson
 */
import { basename } from 'node:path';
import { BadRowLog, loadConversations, type LoadInfo, type LoadOptions, type OnBadRow } from './data/load.js';
import type { BadRow, Conversation } from './data/types.js';

export { HeedError } from './errors.js';

// engine
export { initEngine, engineInfo, type DeviceName, type EngineInfo } from './engine/index.js';

// models and tokenizers
export { loadModel, saveModel, disposeParams, type Model } from './models/load.js';
export { readModelConfig, parameterCount, SUPPORTED_MODEL_TYPES, type ModelConfig } from './models/config.js';
export { loadTokenizer, HeedTokenizer, type ChatMessage } from './io/tokenizer.js';

// data
export { DataPipeline, lossTokens, type Prepared } from './data/pipeline.js';
export { FORMATS, type Format, type LoadOptions, type FieldMap, type OnBadRow } from './data/load.js';
export type { Conversation, Message, Role, Example, BadRow } from './data/types.js';

// training
export { train, type TrainOptions, type RunSummary } from './train/trainer.js';
export { loadTrainConfig, validateTrainConfig, type TrainConfig } from './train/config.js';
export type { TrainerCallback, CallbackContext, CallbackResult } from './train/callbacks.js';

// generation: model specs and backends
export { parseSpec, openModel, type ModelSpec, type OpenModelOptions } from './backends/spec.js';
export type { ModelBackend, BackendCapabilities, ChatTurn } from './backends/types.js';
export type { TextGenerator, GenerateOptions, Generation, FinishReason, LogitsProcessor } from './decode/generate.js';
export { loadRules, compileRules, PRESETS as RULE_PRESETS, type Rules } from './decode/rules.js';

// evaluation
export { scoreIfs, budgetSubset, formatTable as formatIfsTable, wilson, DEFAULT_MAX_TOKENS as IFS_MAX_TOKENS, type IfsScore, type IfsResponse, type ScoreOptions as IfsScoreOptions, type Variant } from './eval/ifs/score.js';
export { loadPromptSet, DEFAULT_PROMPTS_PATH as IFS_PROMPTS_PATH } from './eval/ifs/prompts.js';
export { loadIfsClassifier } from './eval/ifs/classifier.js';
export type { PromptRow } from './eval/ifs/fragments.js';
export { scoreObjecqa, loadQuestions as loadObjecqaQuestions, type Question as ObjecqaQuestion, type ObjecqaResult } from './eval/objecqa/score.js';
export { ClassifierJudge, type Judge } from './eval/objecqa/judge.js';

/** What `readConversations` read: the conversations, the bad rows it skipped (with on_bad_row 'skip') and the detected format. */
export interface ReadResult {
  conversations: Conversation[];
  /** rows read (good and bad) */
  rows: number;
  /** the first bad rows (up to 20) and how many there were */
  badRows: BadRow[];
  badCount: number;
  format?: string;
}

/**
 * Read a JSONL/JSON file of instruction data in any supported format (`messages`/`openai`, `sharegpt`,
 * `alpaca`, `prompt-completion`; detected from the first row unless `format` is given) into conversations.
 * A bad row throws a HeedError naming the line (`onBadRow: 'fail'`, the default) or is counted and skipped.
 */
export async function readConversations(path: string, opts: LoadOptions & { onBadRow?: OnBadRow } = {}): Promise<ReadResult> {
  const log = new BadRowLog(opts.onBadRow ?? 'fail', basename(path), 20, 'config');
  const info: LoadInfo = { file: path, rows: 0, blankLines: 0, lastLine: 0 };
  const conversations: Conversation[] = [];
  for await (const c of loadConversations(path, opts, log, info)) conversations.push(c);
  log.check(info.lastLine);
  return { conversations, rows: info.rows, badRows: log.first, badCount: log.count, format: info.format };
}
