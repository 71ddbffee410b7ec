/**
 * `rtl deploy` and `rtl tasks` as users run them (`node packages/cli/bin/rtl.js`), against a
 * real relay and tasknodes, with the module file in a temp dir outside the repository.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import getPort from 'get-port';
import { describe, expect, it } from 'vitest';
import { tempDir, world } from './helpers.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(repo, 'packages/cli/bin/rtl.js');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function rtl(args: readonly string[], recv: string): Promise<Ran> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RTL_')) env[k] = v;
  const port = /:(\d+)$/.exec(recv)?.[1] ?? '';
  Object.assign(env, {
    RTL_RELAY_ADDR: '127.0.0.1',
    RTL_RELAY_RECV: port,
    RTL_RUN_DIR: tempDir('rtl-run-'),
  });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: tempDir('rtl-cwd-'), env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const MODULE = `import { defineTableTask, defineFunctionTask, p } from '@rtl/tasks';
export const passOn = defineTableTask({ name: 'passOn', summary: 'returns its input', params: p.object({ note: p.optional(p.string(), '') }), run: (t) => t });
export const cube = defineFunctionTask({ name: 'cube', summary: 'x cubed', run: (x) => x ** 3 });
`;

describe('rtl deploy, rtl tasks', () => {
  it('deploys a module file, prints name, version, hash, tasks and nodes; rtl tasks lists them with their origin', async () => {
    const w = await world(2);
    const dir = tempDir('rtl-modules-');
    const file = join(dir, 'passing.mjs');
    writeFileSync(file, MODULE);
    const ran = await rtl(['deploy', file], w.relay.endpoints.recv);
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    const sha = createHash('sha256').update(MODULE).digest('hex');
    expect(ran.stdout.split('\n')).toEqual([
      'deployed passing@1',
      `  sha256   ${sha}`,
      '  added    cube (function), passOn (table)',
      '  nodes    2 of 2 tasknodes run it: node-0, node-1',
      '',
    ]);

    const listed = await rtl(['tasks'], w.relay.endpoints.recv);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^passOn\s+passing@1\s+table\s+returns its input$/m);
    expect(listed.stdout).toMatch(/^cube\s+passing@1\s+function\s+x cubed$/m);
    expect(listed.stdout).toMatch(/^add\s+bundled\s+table\s+\S/m);
    expect(listed.stdout).toMatch(/^add\s+bundled\s+function\s+a \+ b$/m);
    const one = await rtl(['tasks', 'task_pass_on'], w.relay.endpoints.recv);
    expect(one.stdout).toContain('passOn: returns its input');
    expect(one.stdout).toContain('origin      passing@1');
    expect(one.stdout).toContain('parameters  { note?: string }');

    // Under another name, a second version with --name; then a module that does not load.
    writeFileSync(file, `${MODULE}// v2\n`);
    const v2 = await rtl(['deploy', file, '--name', 'passing'], w.relay.endpoints.recv);
    expect(v2.stdout).toMatch(/^deployed passing@2$/m);
    expect(v2.stdout).toMatch(/^ {2}replaced cube \(function\), passOn \(table\)$/m);
    const bad = join(dir, 'broken.mjs');
    writeFileSync(bad, "import { p } from '@rtl/tasks';\nexport const x = p.object(;\n");
    const refused = await rtl(['deploy', bad], w.relay.endpoints.recv);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^rtl deploy: RTL_ERR_BAD_MODULE: module "broken" failed to load: SyntaxError: .* at line 2, column \d+: export const x = p\.object\(;$/m,
    );
  });

  it('rtl deploy without a relay says rtl is not running; rtl tasks lists the bundled tasks and says so', async () => {
    const port = await getPort({ host: '127.0.0.1' });
    const recv = `tcp://127.0.0.1:${String(port)}`;
    const dir = tempDir('rtl-modules-');
    const file = join(dir, 'passing.mjs');
    writeFileSync(file, MODULE);
    const ran = await rtl(['deploy', file, '--timeout', '300'], recv);
    expect(ran.code).toBe(1);
    expect(ran.stderr.trim()).toBe(
      `rtl is not running: no relay answered at ${recv} within 300 ms; start it with \`rtl start\``,
    );
    const listed = await rtl(['tasks', '--timeout', '300'], recv);
    expect(listed.code).toBe(0);
    expect(listed.stderr).toContain(
      `(no relay answered at ${recv}: these are the bundled tasks of this installation`,
    );
    expect(listed.stdout).toMatch(/^xsum\s+bundled\s+function\s+/m);
    const odd = await rtl(['deploy', join(dir, 'my module.mjs')], recv);
    expect(odd.code).toBe(2);
    expect(odd.stderr).toContain('my module.mjs does not make a module name');
  });
});
