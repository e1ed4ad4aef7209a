import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, tmp } from './helpers.js';

const EVIL = 'ok \u001b]52;c;aGVsbG8=\u0007 \u001b[31mred\u001b[0m\nline two';

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin/heed.js'), ...args], { env });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => res({ status, stdout, stderr }));
  });
}

test('heed generate shows model output with control sequences escaped (no OSC 52 / colour injection); --json keeps the exact text', async () => {
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const asked = JSON.parse(body).prompt as string[] | string;
      const prompts = Array.isArray(asked) ? asked.length : 1;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ id: 'x', object: 'text_completion', created: 0, model: 'm', choices: Array.from({ length: prompts }, (_, index) => ({ index, text: EVIL, finish_reason: 'stop' })), usage: { prompt_tokens: 1, completion_tokens: 5, total_tokens: 6 } }));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  const env = { ...process.env, HEED_CACHE_DIR: tmp('gen-safe-cache') };
  try {
    const spec = `openai:http://127.0.0.1:${port}/v1#m?cache=off`;
    for (const prompts of [['a'], ['a', 'b']]) {
      const r = await run(['generate', '--model', spec, ...prompts.flatMap((p) => ['--prompt', p]), '--max-tokens', '5'], env);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(!r.stdout.includes('\u001b') && !r.stdout.includes('\u0007'), JSON.stringify(r.stdout));
      assert.match(r.stdout, /ok \\u001b\]52;c;aGVsbG8=\\u0007 \\u001b\[31mred/);
      assert.match(r.stdout, /\nline two/);
    }
    const j = await run(['generate', '--model', spec, '--prompt', 'a', '--max-tokens', '5', '--json'], env);
    assert.equal(j.status, 0, j.stderr);
    assert.equal(JSON.parse(j.stdout)[0].text, EVIL);
  } finally {
    srv.close();
  }
});
