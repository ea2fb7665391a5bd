#!/usr/bin/env node
/* global URL, process, console */
// Renders docs/workflow-reference.md from schemas/workflow.schema.json, so
// the reference can never drift from what the validator enforces.
//   node scripts/gen-workflow-reference.js          # write the file
//   node scripts/gen-workflow-reference.js --check  # exit 1 if it is stale
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const schema = JSON.parse(readFileSync(`${root}schemas/workflow.schema.json`, 'utf8'));
const target = `${root}docs/workflow-reference.md`;

const deref = (node) => {
  let n = node;
  for (let i = 0; i < 10 && n && n.$ref; i++) n = schema.definitions[n.$ref.replace('#/definitions/', '')];
  return n ?? {};
};
const refName = (node) => (node && node.$ref ? node.$ref.replace('#/definitions/', '') : undefined);

function typeOf(node) {
  const n = deref(node);
  const name = refName(node);
  const alts = n.oneOf ?? n.anyOf;
  if (alts) return [...new Set(alts.map(typeOf))].join(' or ');
  if (n.enum) return n.enum.map((v) => `\`${JSON.stringify(v)}\``).join(', ');
  if (n.const !== undefined) return `\`${JSON.stringify(n.const)}\``;
  const t = Array.isArray(n.type) ? n.type.join(' | ') : n.type;
  if (t === 'array') return `list of ${typeOf(n.items ?? {})}`;
  if (t === 'object' && name && n.properties) return `[${name}](#${name.toLowerCase()})`;
  if (t === 'object') return 'map';
  if (name === 'duration') return 'duration';
  return t ?? 'any';
}

const cell = (s) =>
  String(s ?? '')
    .replace(/\|/g, '\\|')
    .replace(/\n+/g, ' ');

function table(obj) {
  const required = new Set(obj.required ?? []);
  const rows = ['| key | type | default | description |', '|---|---|---|---|'];
  for (const [key, prop] of Object.entries(obj.properties ?? {})) {
    const p = deref(prop);
    const desc = prop.description ?? p.description ?? prop.title ?? p.title ?? '';
    const dflt = prop.default ?? p.default;
    const ex = prop.examples ?? p.examples;
    const example =
      ex && ex.length ? ` e.g. \`${cell(typeof ex[0] === 'string' ? ex[0] : JSON.stringify(ex[0]))}\`` : '';
    rows.push(
      `| \`${key}\`${required.has(key) ? ' (required)' : ''} | ${cell(typeOf(prop))} | ${
        dflt === undefined ? '' : `\`${cell(JSON.stringify(dflt))}\``
      } | ${cell(desc)}${cell(example)} |`,
    );
  }
  return rows.join('\n');
}

const sections = [
  '# Workflow file reference',
  '',
  '<!-- Generated from schemas/workflow.schema.json by scripts/gen-workflow-reference.js; do not edit by hand. -->',
  '',
  schema.description ?? '',
  '',
  'Durations are strings with a unit (`90s`, `5m`, `1h`). Strings may hold `${{ expr }}` expressions where noted.',
  '',
  '## Top level',
  '',
  table(schema),
];
const seen = new Set();
for (const [name, def] of Object.entries(schema.definitions)) {
  const d = deref(def);
  if (!d.properties || seen.has(name)) continue;
  seen.add(name);
  sections.push('', `## ${name}`, '', d.description ?? d.title ?? '', '', table(d));
}
const text = sections.join('\n').replace(/\n{3,}/g, '\n\n') + '\n';

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    /* missing */
  }
  if (current !== text) {
    console.error('docs/workflow-reference.md is stale: run node scripts/gen-workflow-reference.js');
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
}
