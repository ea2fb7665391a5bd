import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Absolute path of a file shipped with the package (`package.json`,
 * `schemas/…`). Works from `src/cli/` (tests) and `dist/cli/` alike: both sit
 * two levels below the package root.
 */
export function packagePath(relative: string): string {
  return fileURLToPath(new URL(`../../${relative}`, import.meta.url));
}

let cached: string | undefined;

/** The version from package.json (read once; no JSON import so startup stays small). */
export function version(): string {
  if (cached === undefined) {
    const pkg = JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version?: unknown };
    cached = typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  }
  return cached;
}
