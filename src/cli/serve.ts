import type { Command } from './main.js';
import { parse, num } from './args.js';
import { deviceOption } from './common.js';
import { HeedError } from '../errors.js';

const usage = 'heed serve --model <spec> [--adapter rules[:preset|:file.json]] [--port P (8000; 0 = free)] [--host H (127.0.0.1)] [--name ID] [--api-key-env VAR] [--max-tokens-limit N] [--max-prompt-chars N] [--max-body-bytes N] [--queue N] [--batch N] [--verbose] [--device wasm|webgpu]';

export const command: Command = {
  path: ['serve'],
  summary: 'an OpenAI-compatible HTTP server (/v1/models, /v1/completions, /v1/chat/completions, streaming) over any model spec',
  usage,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      {
        model: { type: 'string', short: 'm' },
        adapter: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        name: { type: 'string' },
        'api-key-env': { type: 'string' },
        'max-tokens-limit': { type: 'string' },
        'max-prompt-chars': { type: 'string' },
        'max-body-bytes': { type: 'string' },
        queue: { type: 'string' },
        batch: { type: 'string' },
        threads: { type: 'string' },
        verbose: { type: 'boolean' },
        ...deviceOption,
      },
      usage,
    );
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
