/**
 * A model folder as a ModelBackend: the in-process engine (openGenerator over the EngineGenerator; the
 * evaluation code re-exports openGenerator from src/eval/generator.ts). The rule adapter, when asked for, is
 * applied to every generation (its logits processor runs before any the caller passes); chat conversations go
 * through the model's chat template.
 */
import { basename, resolve } from 'node:path';
import { HeedError } from '../errors.js';
import { initEngine, type DeviceName } from '../engine/index.js';
import { EngineGenerator, type GenerateOptions, type Generation, type LogitsProcessor, type TextGenerator } from '../decode/generate.js';
import { compileRules, loadRules, type RuleTokenizer } from '../decode/rules.js';
import { disposeParams, loadModel } from '../models/load.js';
import type { OpenModelOptions } from './spec.js';
import type { ChatTurn, ModelBackend } from './types.js';

export interface EvalGenerator {
  gen: EngineGenerator;
  /** whether a prompt plus maxTokens new tokens fits the context */
  fits: (prompt: string) => boolean;
  logitsProcessors: LogitsProcessor[];
  context: number;
  tokenizer: RuleTokenizer;
  /** free the weights and the compiled programs */
  dispose(): void;
}

/** `rules` (a rules file path, a preset name, or '' for the default preset) adds the rule adapter. */
export async function openGenerator(dir: string, o: { rules?: string; maxTokens: number; warn?: (s: string) => void }): Promise<EvalGenerator> {
  const rules = o.rules === undefined ? undefined : loadRules(o.rules);
  const model = await loadModel(dir);
  const logitsProcessors: LogitsProcessor[] = [];
  if (rules) {
    const compiled = compileRules(rules, model.tokenizer);
    const unmapped = compiled.tokens.filter((t) => t.ids.length === 0).map((t) => JSON.stringify(t.string));
    if (unmapped.length) (o.warn ?? console.error)(`[rules: ${unmapped.length} token rule(s) match no single token of this tokenizer: ${unmapped.join(', ')}; see heed rules explain]`);
    logitsProcessors.push(compiled.processor);
  }
  const ctx = model.config.maxPositions;
  if (o.maxTokens >= ctx) {
    disposeParams(model.params);
    throw new HeedError(`--max-tokens ${o.maxTokens} leaves no room for a prompt in the model's context of ${ctx}`, `lower --max-tokens below ${ctx}`);
  }
  const fits = (p: string) => model.tokenizer.encode(p, { addSpecialTokens: true }).length + o.maxTokens <= ctx;
  const gen = new EngineGenerator(model);
  return {
    gen,
    fits,
    logitsProcessors,
    context: ctx,
    tokenizer: model.tokenizer,
    dispose() {
      gen.dispose();
      disposeParams(model.params);
    },
  };
}

export async function openEngine(dir: string, o: OpenModelOptions = {}): Promise<ModelBackend> {
  const device = (o.device ?? 'wasm') as string;
  if (!['wasm', 'webgpu', 'cpu'].includes(device)) throw new HeedError(`--device must be wasm, webgpu or cpu, got "${device}"`, 'use --device wasm (CPU, default) or --device webgpu');
  await initEngine({ device: device as DeviceName, threads: o.threads });
  const ev = await openGenerator(dir, { rules: o.rules, maxTokens: o.maxTokens ?? 0, warn: o.warn });
  const tok = ev.gen.model.tokenizer;
  const adapter = ev.logitsProcessors;
  const withAdapter = (opts: GenerateOptions = {}): GenerateOptions => (adapter.length ? { ...opts, logitsProcessors: [...adapter, ...(opts.logitsProcessors ?? [])] } : opts);
  const gen: TextGenerator = {
    name: basename(resolve(dir)),
    generate: (prompts: string[], opts?: GenerateOptions) => ev.gen.generate(prompts, withAdapter(opts)),
  };
  const hasChat = tok.chatTemplate !== undefined;
  const context = ev.context;
  return {
    spec: dir,
    kind: 'engine',
    capabilities: { tokenIds: true, logits: true, logprobs: false, chat: hasChat },
    gen,
    context,
    fits: (prompt: string, maxTokens: number) => tok.encode(prompt, { addSpecialTokens: true }).length + maxTokens <= context,
    tokenizer: tok,
    /** layer 1: the engine's KV-cache logits session (the rule adapter, if asked for, is applied by the caller's loop) */
    session: async () => ev.gen.session(),
    async chat(conversations: ChatTurn[][], opts?: GenerateOptions): Promise<Generation[]> {
      const texts = conversations.map((m) => tok.applyChatTemplate(m, { addGenerationPrompt: true }));
      // the template already holds BOS where the model wants it
      return gen.generate(texts, { ...opts, addSpecialTokens: false });
    },
    dispose: () => ev.dispose(),
  };
}
