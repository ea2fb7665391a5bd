import type { PromptFile } from '../workflow/types.js';

/**
 * Renders rho-agent `{{ var }}` placeholders (Jinja-style, variables only —
 * no filters, conditionals or loops). Declared defaults apply; a placeholder
 * for an undeclared, unset name is left as written so the text stays honest.
 */
export function renderPlaceholders(text: string, values: Readonly<Record<string, string>>): string {
  return text.replace(
    /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g,
    (whole, name: string) => values[name] ?? whole,
  );
}

/** The system prompt and first user message of a prompt file, rendered with `vars` over the file's defaults. */
export function renderPromptFile(
  file: PromptFile,
  vars: Readonly<Record<string, string>>,
): { system: string; initialPrompt: string | undefined } {
  const values: Record<string, string> = {};
  for (const [name, decl] of Object.entries(file.variables)) {
    if (decl.default !== undefined) values[name] = decl.default;
  }
  Object.assign(values, vars);
  return {
    system: renderPlaceholders(file.body, values).trim(),
    initialPrompt:
      file.initialPrompt === undefined ? undefined : renderPlaceholders(file.initialPrompt, values).trim(),
  };
}
