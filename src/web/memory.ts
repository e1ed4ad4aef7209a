/**
 * Will a model fit the tab? An estimate from config.json alone, made before any weight is read: what LoRA
 * training in the tab holds at once, against a stated budget.
 *
 *   weights in the engine (f32)                 P × 4 B
 *   the picked weight files (the tab's file system) their size on disk
 *   the merged checkpoint the trainer writes     P × 4 B
 *   LoRA training state                          T × 4 B × 4 (adapters, gradients, Adam m and v)
 *
 * P = the model's parameters (parameterCount, the shapes heed checks), T = the LoRA parameters (r × (in + out)
 * per adapted matrix). Activations are not counted (small at the page's batch 2 × max length). Budget: 2 GiB —
 * the safe bound of one wasm32 heap and of what a tab may allocate — or half of navigator.deviceMemory if less.
 */
import { expectedShapes, parameterCount, type ModelConfig } from '../models/config.js';
import { loraModules, type LoraTarget } from '../train/lora.js';

export const TAB_BUDGET_BYTES = 2 * 2 ** 30;

export interface MemoryEstimate {
  params: number;
  loraParams: number;
  bytes: number;
  budget: number;
  fits: boolean;
  /** the sum in words, for the page */
  text: string;
}

export function tabBudget(deviceMemoryGiB?: number): number {
  return deviceMemoryGiB && deviceMemoryGiB > 0 ? Math.min(TAB_BUDGET_BYTES, (deviceMemoryGiB * 2 ** 30) / 2) : TAB_BUDGET_BYTES;
}

export function estimateTabMemory(c: ModelConfig, o: { fileBytes: number; r?: number; targets?: LoraTarget[]; budget?: number }): MemoryEstimate {
  const r = o.r ?? 8;
  const shapes = expectedShapes(c);
  const params = parameterCount(c);
  // the trainer's own module list (src/train/lora.ts): r × (in + out) per adapted matrix
  const loraParams = loraModules(c, o.targets ?? ['q', 'k', 'v', 'o'], (n) => shapes.get(n) ?? [0, 0]).reduce((s, m) => s + r * (m.inDim + m.outDim), 0);
  const bytes = params * 4 + o.fileBytes + params * 4 + loraParams * 16;
  const budget = o.budget ?? TAB_BUDGET_BYTES;
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  const text = `${(params / 1e6).toFixed(1)}M parameters need about ${gib(bytes)} in this tab (f32 weights ${gib(params * 4)}, the picked files ${gib(o.fileBytes)}, the merged checkpoint ${gib(params * 4)}, LoRA r ${r} training state ${gib(loraParams * 16)}); the budget is ${gib(budget)}`;
  return { params, loraParams, bytes, budget, fits: bytes <= budget, text };
}
