/* global process, console */
// The rho-flow agent session API: one sandbox, several prompts, files in and out.
//
//   npm run build
//   OPENAI_API_KEY=sk-... node examples/session.js
//   # or any OpenAI-compatible server: OPENAI_BASE_URL=http://127.0.0.1:11434/v1 OPENAI_MODEL=qwen3 node examples/session.js
//
// The sandbox is a local bubblewrap jail (backend: 'local'); pass backend: 'daytona' to run it in Daytona.
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createAgent } from 'rho-flow';

const agent = createAgent({
  profile: 'developer', // readonly | developer | developer-bash-only | unrestricted | ./my-profile.yaml
  model: { name: process.env.OPENAI_MODEL ?? 'gpt-5-mini' }, // key and base URL from OPENAI_API_KEY / OPENAI_BASE_URL
  onEvent: (e) => {
    if (e.type === 'agent' && e.reason === 'tool-call') console.error(`  ↳ ${e.summary}`);
  },
});

// In TypeScript (or on Node ≥ 24), `await using session = await agent.openSession();` disposes it for you.
const session = await agent.openSession(); // creates the sandbox
try {
  const first = await session.run('Write fib.py that prints the first 10 Fibonacci numbers, then run it.');
  console.log('1>', first.text);

  const second = await session.run('Now make it print them comma-separated on one line, and run it again.');
  console.log('2>', second.text);

  const out = await mkdtemp(path.join(os.tmpdir(), 'rho-flow-example-'));
  await session.sandbox.download('fib.py', out); // direct file transfer from the sandbox
  console.log(`fib.py (${out}):\n${await readFile(path.join(out, 'fib.py'), 'utf8')}`);
  console.log('tokens:', session.usage);
} finally {
  await session.close(); // deletes the sandbox
}
