/**
 * PLACEHOLDER (branch issue-13b): the llama.cpp backend (node-llama-cpp) is written on branch issue-13a and
 * replaces this file at merge. Here `gguf:` specs parse, and opening one fails with a clear one-line error.
 */
import { HeedError } from '../errors.js';
import type { OpenModelOptions } from './spec.js';
import type { ModelBackend } from './types.js';

export async function openLlamaCpp(path: string, _opts: OpenModelOptions = {}): Promise<ModelBackend> {
  throw new HeedError(`gguf:${path}: the llama.cpp backend is not available in this build`, 'run the model as a folder or through an OpenAI-compatible server (openai:<base-url>#<model>)');
}
