import type { Command } from './main.js';
import { flags, num, parse } from './args.js';

const usage = 'heed ui [runs-dir] [--port N] [--host 127.0.0.1]';

const options = flags({
  port: { type: 'string', arg: 'N', default: '7860', help: 'TCP port (0 = a free one)' },
  host: { type: 'string', arg: 'H', default: '127.0.0.1', help: 'address to listen on' },
});

export const command: Command = {
  path: ['ui'],
  summary: 'a live dashboard of run folders on 127.0.0.1 (status, curves while training, IFS, checkpoints, overlays)',
  usage,
  options,
  async run(argv) {
    const { values, positionals } = parse(argv, options, usage);
    const root = positionals[0] ?? 'runs';
    const port = num(values.port, 'port', { int: true, min: 0, max: 65535 }) ?? 7860;
    const { startUi } = await import('../web/server.js');
    const ui = await startUi({ root, port, host: values.host ?? '127.0.0.1' });
    console.log(`heed ui: ${ui.url} (runs in ${root}; training page ${ui.url}train/ from ${ui.trainPage === 'modules' ? 'dist/ (import map)' : 'the static build dist-web/'}; Ctrl-C stops)`);
    await new Promise<void>((done) => {
      const stop = () => void ui.close().then(done);
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
};
