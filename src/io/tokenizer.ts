/**
 * Tokenizer and chat template of a Hugging Face folder.
 * tokenizer.json goes through @huggingface/tokenizers; special tokens come from tokenizer_config.json,
 * generation_config.json and config.json (in that order of precedence for EOS); the chat template from
 * tokenizer_config.json (string, or list of named templates) or chat_template.jinja, rendered with @huggingface/jinja.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { HeedError } from '../errors.js';
import { readJson, readJsonIfExists } from './json.js';

export interface ChatMessage {
  role: string;
  content: string;
}

type TokenSpec = string | { content: string } | null | undefined;
const tokenContent = (t: TokenSpec): string | undefined => (t == null ? undefined : typeof t === 'string' ? t : t.content);
const asIds = (v: unknown): number[] => (v == null ? [] : Array.isArray(v) ? v.map(Number) : [Number(v)]);

export class HeedTokenizer {
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  readonly padToken: string | undefined;
  readonly bosId: number | undefined;
  /** all ids that end generation (EOS from the tokenizer config, generation_config and config.json) */
  readonly eosIds: number[];
  readonly padId: number | undefined;
  readonly chatTemplate: string | undefined;
  readonly vocabSize: number;
  private compiledTemplate: Template | undefined;

  constructor(
    private readonly tok: Tokenizer,
    readonly config: Record<string, unknown>,
    opts: { chatTemplate?: string; modelConfig?: Record<string, unknown>; generationConfig?: Record<string, unknown> } = {},
  ) {
    const vocab = tok.get_vocab(true);
    this.vocabSize = Math.max(...vocab.values()) + 1;
    this.bosToken = tokenContent(config.bos_token as TokenSpec);
    this.eosToken = tokenContent(config.eos_token as TokenSpec);
    this.padToken = tokenContent(config.pad_token as TokenSpec);
    const id = (s: string | undefined) => (s === undefined ? undefined : tok.token_to_id(s));
    const mc = opts.modelConfig ?? {};
    const gc = opts.generationConfig ?? {};
    this.bosId = id(this.bosToken) ?? (asIds(gc.bos_token_id ?? mc.bos_token_id)[0] as number | undefined);
    const eos = new Set<number>();
    const e0 = id(this.eosToken);
    if (e0 !== undefined) eos.add(e0);
    for (const x of [...asIds(gc.eos_token_id), ...asIds(mc.eos_token_id)]) if (Number.isInteger(x)) eos.add(x);
    this.eosIds = [...eos];
    this.padId = id(this.padToken) ?? (asIds(gc.pad_token_id ?? mc.pad_token_id)[0] as number | undefined);
    this.chatTemplate = opts.chatTemplate;
  }

  /** Encode text. addSpecialTokens follows the tokenizer's post-processor (e.g. Llama's BOS). */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false }).ids;
  }

  /** The token strings (pieces) of an encoding, for display. */
  tokens(text: string, opts: { addSpecialTokens?: boolean } = {}): string[] {
    return this.tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false }).tokens;
  }

  /** Decode ids to text, exactly (no clean-up of spaces before punctuation unless cleanUpSpaces is set). */
  decode(ids: number[], opts: { skipSpecialTokens?: boolean; cleanUpSpaces?: boolean } = {}): string {
    return this.tok.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? false, clean_up_tokenization_spaces: opts.cleanUpSpaces ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /** Ids of the added special tokens (e.g. <s>, <|im_start|>). */
  specialIds(): number[] {
    return [...this.tok.get_added_tokens_decoder().entries()].filter(([, t]) => (t as unknown as { special?: boolean }).special !== false).map(([i]) => i);
  }

  /** Render the model's chat template. */
  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean; template?: string; extra?: Record<string, unknown> } = {}): string {
    const src = opts.template ?? this.chatTemplate;
    if (!src) throw new HeedError('this model has no chat template (tokenizer_config.json has no "chat_template")', 'omit --chat (the prompt is then sent as written), or add a "chat_template" to tokenizer_config.json (folders made by heed train have the template they were trained with)');
    let tpl = opts.template ? new Template(src) : this.compiledTemplate;
    if (!tpl) tpl = this.compiledTemplate = new Template(src);
    try {
      return tpl.render({
        messages,
        add_generation_prompt: opts.addGenerationPrompt ?? true,
        bos_token: this.bosToken ?? '',
        eos_token: this.eosToken ?? '',
        pad_token: this.padToken ?? '',
        ...opts.extra,
      });
    } catch (e) {
      if (e instanceof HeedError) throw e;
      throw new HeedError(`chat template failed to render: ${(e as Error).message}`, 'check the roles and order of the messages, or the "chat_template" of tokenizer_config.json');
    }
  }
}

/** Load tokenizer.json (+ tokenizer_config.json, generation_config.json, config.json) from a folder. */
export function loadTokenizer(dir: string): HeedTokenizer {
  const tjPath = join(dir, 'tokenizer.json');
  if (!existsSync(tjPath)) {
    const hint = existsSync(join(dir, 'tokenizer.model')) ? 'this folder has only a sentencepiece tokenizer.model; convert it to tokenizer.json with Hugging Face transformers (AutoTokenizer.from_pretrained(...).save_pretrained(...))' : 'copy tokenizer.json of the model into the folder';
    throw new HeedError(`${tjPath}: tokenizer.json not found`, hint);
  }
  const tj = readJson<Record<string, unknown>>(tjPath, 'tokenizer.json');
  const tc = readJsonIfExists<Record<string, unknown>>(join(dir, 'tokenizer_config.json')) ?? {};
  const mc = readJsonIfExists<Record<string, unknown>>(join(dir, 'config.json'));
  const gc = readJsonIfExists<Record<string, unknown>>(join(dir, 'generation_config.json'));
  let chat: string | undefined;
  const ct = tc.chat_template as unknown;
  if (typeof ct === 'string') chat = ct;
  else if (Array.isArray(ct)) chat = (ct.find((t) => t?.name === 'default') ?? ct[0])?.template;
  const jinjaPath = join(dir, 'chat_template.jinja');
  if (!chat && existsSync(jinjaPath)) chat = readFileSync(jinjaPath, 'utf8');
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tj, tc);
  } catch (e) {
    throw new HeedError(`${tjPath}: cannot build tokenizer (${(e as Error).message})`, 'use a tokenizer.json saved by Hugging Face tokenizers');
  }
  return new HeedTokenizer(tok, tc, { chatTemplate: chat, modelConfig: mc, generationConfig: gc });
}
