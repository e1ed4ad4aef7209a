/**
 * A model folder as a ModelBackend: the in-process engine (src/eval/generator.ts openGenerator over the
 * EngineGenerator). The rule adapter, when asked for, is applied to every generation (its logits processor
 * runs before any the caller passes); chat conversations go through the model's chat template.
 */
import { basename, resolve } from 'node:path';
import { HeedError } from '../errors.js';
import { initEngine, type DeviceName } from '../engine/index.js';
import type { GenerateOptions, Generation, TextGenerator } from '../decode/generate.js';
import { openGenerator } from '../eval/generator.js';
import type { OpenModelOptions } from './spec.js';
import type { ChatTurn, ModelBackend } from './types.js';

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
    async chat(conversations: ChatTurn[][], opts?: GenerateOptions): Promise<Generation[]> {
      const texts = conversations.map((m) => tok.applyChatTemplate(m, { addGenerationPrompt: true }));
      // the template already holds BOS where the model wants it
      return gen.generate(texts, { ...opts, addSpecialTokens: false });
    },
    dispose: () => ev.dispose(),
  };
}
