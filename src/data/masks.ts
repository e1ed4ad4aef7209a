/**
 * Mask policies: a loss weight in [0, 1] for every piece, hence for every token (docs/data.md, "Masks").
 *
 *   policy          user content   system content        assistant content + end   markers
 *   output (IT)     0              0                     1                         0
 *   instruction(IM) 1              1 if includeSystem    1                         0 (quirk: see below)
 *   weighted:λ      λ              λ if includeSystem    1                         0 (quirk: λ)
 *   response-only   "" (emptied)   (dropped)             1                         0
 *   last-turn       0              0                     1 on the final turn only  0
 *
 * IM-paper marker quirk (markerQuirk): the Instruction Modelling paper's released code masked role
 * markers by searching the token stream for ["wa\n", "<|system|>\n", "<|user|>\n"]; "wa\n" is a typo
 * for "<|assistant|>\n", so the assistant marker (and the "\n" before it) carried loss. With the switch,
 * the template text between a user content and the following assistant content gets the prompt weight
 * (1 for instruction, λ for weighted), reproducing that behaviour for comparison.
 *
 * The first token of a sequence always has weight 0 (nothing predicts it).
 */
import { HeedError } from '../errors.js';
import { KIND, type Conversation, type KindCode, type Piece } from './types.js';

export type MaskPolicy = 'output' | 'instruction' | 'weighted' | 'response-only' | 'last-turn';
export const MASK_POLICIES: readonly string[] = ['output', 'instruction', 'weighted:λ', 'response-only', 'last-turn'];

export interface MaskSpec {
  policy: MaskPolicy;
  /** weight of prompt content (user, and system with includeSystem): 0 for output, 1 for instruction, λ for weighted */
  lambda: number;
  /** prompt-side policies: also put the prompt weight on system content (default off) */
  includeSystem: boolean;
  /** prompt-side policies: reproduce the IM paper code's loss on the assistant marker */
  markerQuirk: boolean;
}

/** Parse `output`, `instruction`, `im` (alias), `it` (alias), `response-only`, `weighted:0.3`, `last-turn`. */
export function parseMask(s: string, opts: { includeSystem?: boolean; markerQuirk?: boolean } = {}): MaskSpec {
  const base = { includeSystem: opts.includeSystem ?? false, markerQuirk: opts.markerQuirk ?? false };
  let spec: MaskSpec;
  const t = s.trim().toLowerCase();
  if (t === 'output' || t === 'it') spec = { policy: 'output', lambda: 0, ...base };
  else if (t === 'instruction' || t === 'im') spec = { policy: 'instruction', lambda: 1, ...base };
  else if (t === 'response-only') spec = { policy: 'response-only', lambda: 0, ...base };
  else if (t === 'last-turn') spec = { policy: 'last-turn', lambda: 0, ...base };
  else if (t.startsWith('weighted:')) {
    const v = t.slice('weighted:'.length);
    const lambda = Number(v);
    if (v === '' || !Number.isFinite(lambda) || lambda < 0 || lambda > 1) throw new HeedError(`--mask ${s}: λ must be a number in [0, 1], got "${v}"`, 'e.g. --mask weighted:0.1');
    spec = { policy: 'weighted', lambda, ...base };
  } else throw new HeedError(`unknown mask policy "${s}"`, `use one of ${MASK_POLICIES.join(', ')}`);
  const promptSide = spec.policy === 'instruction' || spec.policy === 'weighted';
  if (spec.markerQuirk && !promptSide) throw new HeedError(`--im-marker-quirk applies to --mask instruction or weighted:λ, not ${spec.policy}`, 'drop --im-marker-quirk');
  if (spec.includeSystem && !promptSide) throw new HeedError(`--include-system applies to --mask instruction or weighted:λ, not ${spec.policy}`, 'drop --include-system');
  return spec;
}

export function maskName(m: MaskSpec): string {
  const base = m.policy === 'weighted' ? `weighted:${m.lambda}` : m.policy;
  return base + (m.includeSystem ? '+system' : '') + (m.markerQuirk ? '+im-marker-quirk' : '');
}

/** The conversation actually rendered: response-only empties every user turn and drops system turns. */
export function transformForMask(conv: Conversation, m: MaskSpec): Conversation {
  if (m.policy !== 'response-only') return conv;
  return {
    ...conv,
    messages: conv.messages.filter((x) => x.role !== 'system').map((x) => (x.role === 'user' ? { role: 'user' as const, content: '' } : x)),
  };
}

/** Weight of each piece. */
export function pieceWeights(pieces: Piece[], m: MaskSpec): Float32Array {
  const w = new Float32Array(pieces.length);
  let lastAssistant = -1;
  for (const p of pieces) if (p.role === 'assistant' && p.msg > lastAssistant) lastAssistant = p.msg;
  const promptSide = m.policy === 'instruction' || m.policy === 'weighted';
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i];
    if (p.kind === 'content' || p.kind === 'end') {
      if (p.role === 'assistant') w[i] = m.policy === 'last-turn' && p.msg !== lastAssistant ? 0 : 1;
      else if (p.role === 'user') w[i] = promptSide ? m.lambda : 0;
      else if (p.role === 'system') w[i] = promptSide && m.includeSystem ? m.lambda : 0;
    }
  }
  if (m.markerQuirk && m.lambda > 0) {
    // marker runs between a user content and the next assistant content
    for (let i = 0; i < pieces.length; i++) {
      if (pieces[i].kind !== 'marker') continue;
      let a = i - 1;
      while (a >= 0 && pieces[a].kind === 'marker') a--;
      let b = i + 1;
      while (b < pieces.length && pieces[b].kind === 'marker') b++;
      const prev = pieces[a];
      const next = pieces[b];
      if (prev?.kind === 'content' && prev.role === 'user' && next?.kind === 'content' && next.role === 'assistant') w[i] = m.lambda;
    }
  }
  return w;
}

export function pieceKind(p: Piece): KindCode {
  if (p.kind === 'end') return KIND.end;
  if (p.kind === 'content') return p.role === 'system' ? KIND.system : p.role === 'user' ? KIND.user : KIND.assistant;
  return KIND.marker;
}
