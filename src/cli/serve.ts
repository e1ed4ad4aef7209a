import type { Command } from './main.js';
import { flags, parse, num } from './args.js';
import { deviceOption, threadsOption } from './common.js';
import { HeedError } from '../errors.js';

const usage = 'heed serve --model <spec> [--adapter rules[:preset|:file.json]] [--port P (8000; 0 = free)] [--host H (127.0.0.1)] [--name ID] [--api-key-env VAR] [--max-tokens-limit N] [--max-prompt-chars N] [--max-body-bytes N] [--queue N] [--batch N] [--verbose] [--device wasm|webgpu]';

const options = flags({
  model: { type: 'string', short: 'm', arg: 'SPEC', help: 'the model: a folder, gguf:<file> or openai:<base-url>#<model> (required)' },
  adapter: { type: 'string', arg: 'rules[:preset|:file.json]', default: 'none', help: 'the rule adapter on every request (docs/rules.md)' },
  port: { type: 'string', arg: 'P', default: '8000', help: 'TCP port (0 = a free one)' },
  host: { type: 'string', arg: 'H', default: '127.0.0.1', help: 'address to listen on (another than localhost: use --api-key-env)' },
  name: { type: 'string', arg: 'ID', default: "the model's name", help: 'the model id clients send and /v1/models lists' },
  'api-key-env': { type: 'string', arg: 'VAR', default: 'no key', help: 'require the key held in this environment variable (Authorization: Bearer)' },
  'max-tokens-limit': { type: 'string', arg: 'N', default: '1024', help: 'largest max_tokens a request may ask' },
  'max-prompt-chars': { type: 'string', arg: 'N', default: '100000', help: 'longest prompt in characters' },
  'max-body-bytes': { type: 'string', arg: 'N', default: '1048576', help: 'largest request body' },
  queue: { type: 'string', arg: 'N', default: '64', help: 'requests waiting at most; more get 503 + Retry-After' },
  batch: { type: 'string', arg: 'N', default: '16', help: 'requests generated together at most' },
  ...threadsOption,
  verbose: { type: 'boolean', help: 'log every request' },
  ...deviceOption,
});

export const command: Command = {
  path: ['serve'],
  summary: 'an OpenAI-compatible HTTP server (/v1/models, /v1/completions, /v1/chat/completions, streaming) over any model spec',
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    if (positionals.length) throw new HeedError(`unexpected argument "${positionals[0]}"`, `usage: ${usage}`);
    if (!values.model) throw new HeedError('missing --model', `usage: ${usage}`);
    const { checkAdapter } = await import('./ifs-common.js');
    checkAdapter(values.adapter);
    let apiKey: string | undefined;
    const keyEnv = values['api-key-env'];
    if (keyEnv !== undefined) {
      apiKey = process.env[keyEnv];
      if (!apiKey) throw new HeedError(`--api-key-env ${keyEnv}: the environment variable ${keyEnv} is not set`, `export ${keyEnv}=<a key clients must send>, or drop --api-key-env`);
    }
    const o = {
      port: num(values.port, 'port', { int: true, min: 0, max: 65535 }),
      host: values.host,
      name: values.name,
      apiKey,
      maxTokensLimit: num(values['max-tokens-limit'], 'max-tokens-limit', { int: true, min: 1 }),
      maxPromptChars: num(values['max-prompt-chars'], 'max-prompt-chars', { int: true, min: 1 }),
      maxBodyBytes: num(values['max-body-bytes'], 'max-body-bytes', { int: true, min: 64 }),
      queueSize: num(values.queue, 'queue', { int: true, min: 0 }),
      maxBatch: num(values.batch, 'batch', { int: true, min: 1 }),
      log: (s: string) => console.error(s),
      verbose: values.verbose,
    };
    if (o.host && o.host !== '127.0.0.1' && o.host !== 'localhost' && o.host !== '::1' && !apiKey) console.error(`[serve: listening on ${o.host} without an API key: anyone who can reach this address can use the model (--api-key-env VAR requires one)]`);
    const { openModel } = await import('../backends/spec.js');
    const backend = await openModel(values.model, { rules: values.adapter === undefined ? undefined : values.adapter.slice('rules:'.length), device: values.device, threads: num(values.threads, 'threads', { int: true, min: 1 }), maxTokens: 1 });
    const { startServer } = await import('../serve/server.js');
    const srv = await startServer(backend, o);
    console.log(`heed serve: ${backend.spec} (${backend.kind}${values.adapter ? `, adapter ${values.adapter}` : ''}) as model "${srv.name}" at ${srv.url}${apiKey ? ' (API key required)' : ''}`);
    console.log(`try: curl ${srv.url}/completions -H 'content-type: application/json' -d '{"model": "${srv.name}", "prompt": "Hello", "max_tokens": 16}'`);
    await new Promise<void>((ok) => {
      const stop = () => ok();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await srv.close();
    await backend.dispose();
    console.error(`[serve: stopped after ${srv.stats.requests} requests (${srv.stats.completed} answered, ${srv.stats.errors} errors, ${srv.stats.rejected_queue_full} refused with a full queue)]`);
    return 0;
  },
};
