/** A fake OpenAI-compatible chat server for the judge tests (127.0.0.1, a free port; close() stops it). */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The reply depends on the judged instruction (a marker word in it). */
export async function fakeJudge(reply: (instruction: string, body: Record<string, unknown>) => string | { delayMs: number; text: string }, onRequest?: (instruction: string, n: number) => void) {
  const asked = new Map<string, number>();
  const answered = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const body = JSON.parse(raw) as { messages: Array<{ content: string }> };
      const user = body.messages.at(-1)!.content;
      const m = /\[Instruction\]\n([\s\S]*?)\n\[End of Instruction\]/.exec(user) ?? /\[Question\]\n([\s\S]*?)\n\n\[The Start/.exec(user);
      const ins = m ? m[1] : user;
      const n = (asked.get(ins) ?? 0) + 1;
      asked.set(ins, n);
      onRequest?.(ins, [...asked.values()].reduce((a, b) => a + b, 0));
      const r = reply(ins, body as unknown as Record<string, unknown>);
      const send = (text: string) => {
        if (res.destroyed) return;
        answered.set(ins, (answered.get(ins) ?? 0) + 1);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }], usage: { prompt_tokens: 10, completion_tokens: 2 } }));
      };
      if (typeof r === 'string') send(r);
      else if (r.delayMs >= 0) setTimeout(() => send(r.text), r.delayMs);
      // delayMs < 0: never answered (the client is killed while waiting)
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    asked,
    answered,
    close: () => new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    }),
  };
}

