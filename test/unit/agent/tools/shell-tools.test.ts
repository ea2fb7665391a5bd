/** bash / grep / glob / run_code against a real local sandbox. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOOLS } from '../../../../src/agent/tools/index.js';
import { grepCommand } from '../../../../src/agent/tools/grep.js';
import { ctx, openSandbox, PROFILES, type SandboxRig } from './sandbox-rig.js';

let rig: SandboxRig;
beforeAll(async () => {
  rig = await openSandbox();
});
afterAll(async () => {
  await rig.close();
});

interface ShellJson {
  output: string;
  metadata: { exit_code: number; duration_seconds: number; timed_out?: boolean };
}
const parse = (s: string): ShellJson => JSON.parse(s) as ShellJson;

describe('bash', () => {
  it("returns rho-agent's JSON with stdout, stderr and the exit code", async () => {
    const r = await TOOLS.bash.run({ command: 'echo out; echo err >&2; exit 3' }, ctx(rig.sandbox));
    expect(r.status).toBe('error');
    const j = parse(r.output);
    expect(j.output).toBe('out\nerr\n');
    expect(j.metadata.exit_code).toBe(3);
    expect(j.metadata.duration_seconds).toBeGreaterThanOrEqual(0);
    const okRun = await TOOLS.bash.run({ command: 'pwd' }, ctx(rig.sandbox));
    expect(okRun.status).toBe('ok');
    expect(parse(okRun.output).output).toBe('/work\n');
  });

  it('runs in working_dir and reports a missing one', async () => {
    await rig.sandbox.writeFile('sub/f.txt', 'x');
    expect(
      parse((await TOOLS.bash.run({ command: 'ls', working_dir: 'sub' }, ctx(rig.sandbox))).output).output,
    ).toBe('f.txt\n');
    expect((await TOOLS.bash.run({ command: 'ls', working_dir: 'nope' }, ctx(rig.sandbox))).output).toBe(
      'Working directory not found: /work/nope',
    );
  });

  it('kills a command at its timeout and says so', async () => {
    const started = Date.now();
    const r = await TOOLS.bash.run({ command: 'echo before; sleep 30', timeout: 1 }, ctx(rig.sandbox));
    expect(Date.now() - started).toBeLessThan(10_000);
    const j = parse(r.output);
    expect(j.metadata.timed_out).toBe(true);
    expect(j.output).toContain('before');
    expect(j.output).toContain('[Command timed out after 1s and was killed]');
  });

  it('truncates huge output, keeping the head and the tail', async () => {
    const r = await TOOLS.bash.run({ command: 'seq 1 100000' }, ctx(rig.sandbox));
    const out = parse(r.output).output;
    expect(out.startsWith('1\n2\n3\n')).toBe(true);
    expect(out.trimEnd().endsWith('99999\n100000')).toBe(true);
    expect(out).toMatch(/\[… truncated: \d+ lines omitted …\]/);
    expect(Buffer.byteLength(out)).toBeLessThan(60 * 1024);
  });

  it('runs with the workspace read-only when the profile has file_write: off', async () => {
    const r = await TOOLS.bash.run(
      { command: 'echo x > ro-marker.txt' },
      ctx(rig.sandbox, PROFILES.bashOnly),
    );
    expect(parse(r.output).metadata.exit_code).not.toBe(0);
    expect(await rig.sandbox.stat('ro-marker.txt')).toBeUndefined();
    // …while a profile that may write can
    await TOOLS.bash.run({ command: 'echo x > rw-marker.txt' }, ctx(rig.sandbox, PROFILES.developer));
    expect(await rig.sandbox.stat('rw-marker.txt')).toBeDefined();
  });

  it('rejects with the abort reason when the signal aborts', async () => {
    const ac = new AbortController();
    const reason = new Error('stop now');
    setTimeout(() => ac.abort(reason), 200);
    const started = Date.now();
    await expect(
      TOOLS.bash.run({ command: 'sleep 30' }, ctx(rig.sandbox, PROFILES.developer, ac.signal)),
    ).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('grep', () => {
  beforeAll(async () => {
    await rig.sandbox.writeFile('g/src/a.ts', 'const alpha = 1;\nconst Beta = 2;\n// TODO: fix alpha\n');
    await rig.sandbox.writeFile('g/src/b.py', 'alpha = 3\n');
    await rig.sandbox.writeFile('g/node_modules/x/index.js', 'alpha\n');
    await rig.sandbox.writeFile('g/weird name: 1.txt', "it's $(touch /work/pwned) alpha\n");
  });

  it('finds matches as path:line:text, skipping noise directories', async () => {
    const r = await TOOLS.grep.run({ pattern: 'alpha', path: 'g' }, ctx(rig.sandbox));
    expect(r.status).toBe('ok');
    const lines = r.output.split('\n');
    expect(lines).toContain('g/src/a.ts:1:const alpha = 1;');
    expect(lines).toContain('g/src/a.ts:3:// TODO: fix alpha');
    expect(lines).toContain('g/src/b.py:1:alpha = 3');
    expect(lines).toContain("g/weird name: 1.txt:1:it's $(touch /work/pwned) alpha");
    expect(r.output).not.toContain('node_modules');
    expect(r.output).toContain('[4 matches]');
  });

  it('handles extended regex, ignore_case, glob and context', async () => {
    const c = ctx(rig.sandbox);
    expect((await TOOLS.grep.run({ pattern: 'beta', path: 'g', ignore_case: true }, c)).output).toContain(
      'g/src/a.ts:2:const Beta = 2;',
    );
    expect((await TOOLS.grep.run({ pattern: 'beta', path: 'g' }, c)).output).toBe('No matches found');
    const globbed = await TOOLS.grep.run({ pattern: 'al(ph)a', path: 'g', glob: '*.py' }, c);
    expect(globbed.output).toBe('g/src/b.py:1:alpha = 3\n\n[1 match]');
    const context = await TOOLS.grep.run({ pattern: 'Beta', path: 'g/src/a.ts', context_lines: 1 }, c);
    expect(context.output).toBe(
      'g/src/a.ts-1-const alpha = 1;\ng/src/a.ts:2:const Beta = 2;\ng/src/a.ts-3-// TODO: fix alpha\n\n[1 match]',
    );
  });

  it('quotes hostile patterns and paths (nothing runs)', async () => {
    const c = ctx(rig.sandbox);
    const r = await TOOLS.grep.run(
      { pattern: "'; touch /work/pwned2; echo '", path: 'g/weird name: 1.txt' },
      c,
    );
    expect(r.output).toBe('No matches found');
    expect(await rig.sandbox.stat('pwned')).toBeUndefined();
    expect(await rig.sandbox.stat('pwned2')).toBeUndefined();
    expect(grepCommand({ pattern: '$(id)' }, 10)).not.toMatch(/[^']\$\(id\)/);
  });

  it('caps matches at max_matches and says more exist', async () => {
    await rig.sandbox.exec('mkdir -p big && seq 1 5000 | sed "s/^/hit /" > big/many.txt');
    const r = await TOOLS.grep.run({ pattern: '^hit', path: 'big', max_matches: 7 }, ctx(rig.sandbox));
    expect(r.output.split('\n').filter((l) => l.includes(':hit '))).toHaveLength(7);
    expect(r.output).toContain('[Showing 7 matches; more exist');
  });

  it('reports a bad regex and a missing path as errors', async () => {
    const bad = await TOOLS.grep.run({ pattern: 'a(b', path: 'g' }, ctx(rig.sandbox));
    expect(bad.status).toBe('error');
    expect(bad.output).toMatch(/^Search failed: .*(Unmatched|parenthes)/i);
    expect((await TOOLS.grep.run({ pattern: 'x', path: 'nope' }, ctx(rig.sandbox))).output).toBe(
      'Path not found: /work/nope',
    );
  });
});

describe('glob', () => {
  beforeAll(async () => {
    await rig.sandbox.writeFile('gl/one.md', '1');
    await rig.sandbox.writeFile('gl/docs/two.md', '2');
    await rig.sandbox.writeFile('gl/docs/deep/three.md', '3');
    await rig.sandbox.writeFile('gl/node_modules/pkg/readme.md', 'x');
    await rig.sandbox.writeFile('gl/docs/a.txt', 'x');
  });

  it('matches names at any depth when the pattern has no slash', async () => {
    const r = await TOOLS.glob.run({ pattern: '*.md', path: 'gl' }, ctx(rig.sandbox));
    expect(r.output).toBe('gl/docs/deep/three.md\ngl/docs/two.md\ngl/one.md\n\n[3 paths found]');
  });

  it('honours path patterns, absolute patterns and max_results', async () => {
    const c = ctx(rig.sandbox);
    expect((await TOOLS.glob.run({ pattern: 'docs/*.md', path: '/work/gl' }, c)).output).toBe(
      'gl/docs/two.md\n\n[1 path found]',
    );
    expect((await TOOLS.glob.run({ pattern: '/work/gl/docs/**/*.md' }, c)).output).toContain(
      'gl/docs/deep/three.md',
    );
    const capped = await TOOLS.glob.run({ pattern: '*.md', path: 'gl', max_results: 2 }, c);
    expect(capped.output).toMatch(/^gl\/docs\/deep\/three\.md\ngl\/docs\/two\.md\n\n\[Showing 2 of 3/);
    expect((await TOOLS.glob.run({ pattern: 'node_modules/**/*.md', path: 'gl' }, c)).output).toContain(
      'readme.md',
    );
  });

  it('says when nothing matches or the directory is missing', async () => {
    expect((await TOOLS.glob.run({ pattern: '*.rs', path: 'gl' }, ctx(rig.sandbox))).output).toBe(
      'No files found matching pattern',
    );
    expect((await TOOLS.glob.run({ pattern: '*', path: 'nope' }, ctx(rig.sandbox))).output).toBe(
      'Directory not found: /work/nope',
    );
  });
});

describe('run_code', () => {
  it('runs python', async () => {
    const r = await TOOLS.run_code.run(
      {
        language: 'python',
        code: "import os\nprint('py', 6 * 7, os.getcwd())\nopen('from-python.txt', 'w').write('hi')",
      },
      ctx(rig.sandbox, PROFILES.unrestricted),
    );
    expect(r.status).toBe('ok');
    expect(parse(r.output).output).toBe('py 42 /work\n');
    expect((await rig.sandbox.readFile('from-python.txt')).toString()).toBe('hi');
  });

  it('runs javascript, including import syntax, and reports failures with their exit code', async () => {
    const c = ctx(rig.sandbox, PROFILES.unrestricted);
    const r = await TOOLS.run_code.run(
      { language: 'javascript', code: "import os from 'node:os';\nconsole.log('js', typeof os.cpus);" },
      c,
    );
    expect(parse(r.output).output).toBe('js function\n');
    const bad = await TOOLS.run_code.run({ language: 'javascript', code: "throw new Error('kaboom')" }, c);
    expect(bad.status).toBe('error');
    expect(parse(bad.output).metadata.exit_code).toBe(1);
    expect(parse(bad.output).output).toContain('kaboom');
  });

  it('runs typescript where the sandbox can, and says clearly when it cannot', async () => {
    const r = await TOOLS.run_code.run(
      { language: 'typescript', code: 'const n: number = 5;\nconsole.log(n * 2);' },
      ctx(rig.sandbox, PROFILES.unrestricted),
    );
    const j = parse(r.output);
    if (j.metadata.exit_code === 0) expect(j.output).toBe('10\n');
    else expect(j.output).toContain('no TypeScript runtime in this sandbox');
  });

  it('is refused under a restricted shell and leaves no files in the workspace', async () => {
    const before = await rig.sandbox.list('.', { recursive: true });
    const r = await TOOLS.run_code.run(
      { language: 'python', code: "open('x','w')" },
      ctx(rig.sandbox, PROFILES.readonly),
    );
    expect(r.status).toBe('refused');
    expect(await rig.sandbox.list('.', { recursive: true })).toHaveLength(before.length);
  });
});
