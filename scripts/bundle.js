#!/usr/bin/env node
/**
 * Bundles the compiled CLI (`dist/cli/main.js`, from `tsc`) into
 * `dist/bundle/`, which `bin/rho-flow.js` runs. Why: node resolves, reads and
 * compiles each ES module file on its own, and an ES module importing a
 * CommonJS package (yaml, ajv's runtime) has every file of it lexed again;
 * ~200 files cost ~200 ms at the start of every command (issue 7, targets 1
 * and 6). Dynamic `import()`s stay separate chunks, so `--version` and
 * `validate` still load only what they use. The packages loaded lazily at
 * the edge (the Daytona and OpenAI SDKs, listr2, tar) stay in node_modules.
 *
 * The chunks sit two directories below the package root like every file of
 * `dist/`, so paths made from `import.meta.url` (`../../schemas/…`) hold.
 * `dist/bundle/chunks.json` lists the packages whose code each chunk holds
 * (the startup test reads it to tell which packages a command loaded).
 */
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'dist', 'bundle');
rmSync(outDir, { recursive: true, force: true });
const result = await build({
  // local-copier: the copy thread's module (copy-thread.ts starts it from `./local-copier.js`).
  input: {
    main: path.join(root, 'dist', 'cli', 'main.js'),
    'local-copier': path.join(root, 'dist', 'sandbox', 'local-copier.js'),
  },
  platform: 'node',
  external: [/^@daytonaio\//, /^openai(\/|$)/, /^listr2(\/|$)/, /^tar(\/|$)/],
  logLevel: 'warn',
  output: { dir: outDir, format: 'esm', entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js' },
});

/** `…/node_modules/@scope/name/…` -> `@scope/name`; our own files -> `rho-flow`. */
const packageOf = (id) => {
  const m = /[\\/]node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(id);
  return m ? m[1].replace('\\', '/') : 'rho-flow';
};
const chunks = {};
for (const out of result.output) {
  if (out.type !== 'chunk') continue;
  chunks[out.fileName] = [...new Set(out.moduleIds.map(packageOf))].sort();
}
writeFileSync(path.join(outDir, 'chunks.json'), `${JSON.stringify(chunks, null, 2)}\n`);
