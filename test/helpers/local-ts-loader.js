/**
 * Lets a plain `node` child process run this repository's TypeScript sources
 * in place (tests that need a real separate process, e.g. one they SIGKILL):
 *
 *   node --import ./test/helpers/local-ts-loader.js test/helpers/local-owner-child.ts
 *
 * `.ts` files are transpiled with the project's `typescript` (no type check);
 * relative `./x.js` imports fall back to `./x.ts`, as in the sources.
 */
import { readFile } from 'node:fs/promises';
import { register } from 'node:module';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) register(import.meta.url);

/** @type {import('node:module').ResolveHook} */
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (e) {
    if (specifier.endsWith('.js') && /^(\.|\/|file:)/.test(specifier)) {
      return next(`${specifier.slice(0, -3)}.ts`, context);
    }
    throw e;
  }
}

/** @type {import('node:module').LoadHook} */
export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context);
  const file = fileURLToPath(url);
  const { default: ts } = await import('typescript');
  const out = ts.transpileModule(await readFile(file, 'utf8'), {
    fileName: file,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
      sourceMap: false,
    },
  });
  return { format: 'module', source: out.outputText, shortCircuit: true };
}
