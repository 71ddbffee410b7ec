/** `rtl deploy <file.mjs> [--name n]`: deploy a task module to the running cluster. */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { RtlError, relayEndpoints } from '@rtl/core';
import { Client, type DeployResult } from '@rtl/client';
import { MODULE_NAME } from '@rtl/relay';
import { notRunningMessage, relayClient } from '../cluster-status.js';
import { CliError, boolFlag, stringFlag, type Command, type CommandContext } from '../command.js';
import { plural } from '../format.js';
import { timeoutFlag } from './status.js';

/** `scale.mjs` → `scale`; undefined when the file name does not make a module name. */
export function moduleNameOf(file: string): string | undefined {
  const name = basename(file).replace(/\.(mjs|js)$/, '');
  return MODULE_NAME.test(name) ? name : undefined;
}

/** What `rtl deploy` prints for a deploy. */
export function deployLines(r: DeployResult): string[] {
  const label = `${r.name}@${String(r.version)}`;
  const lines = [
    r.unchanged
      ? `${label} is deployed already with this source; nothing changed`
      : `deployed ${label}`,
    `  sha256   ${r.sha256}`,
  ];
  const kinds = (change: string): string[] =>
    r.tasks.filter((t) => t.change === change).map((t) => `${t.name} (${t.kind})`);
  for (const [change, word] of [
    ['added', 'added'],
    ['replaced', 'replaced'],
    ['unchanged', 'tasks'],
  ] as const) {
    const names = kinds(change);
    if (names.length > 0) lines.push(`  ${word.padEnd(9)}${names.join(', ')}`);
  }
  if (r.removed.length > 0) lines.push(`  removed  ${r.removed.join(', ')}`);
  const loaded = r.nodes.filter((n) => n.ok);
  const failed = r.nodes.filter((n) => !n.ok);
  lines.push(
    r.nodes.length === 0
      ? '  nodes    no tasknode is connected; each loads it when it joins'
      : `  nodes    ${String(loaded.length)} of ${plural(r.nodes.length, 'tasknode')} run it${loaded.length > 0 ? `: ${loaded.map((n) => n.node).join(', ')}` : ''}`,
  );
  for (const n of failed)
    lines.push(`  ${n.node} did not load it: ${n.message ?? 'no reason given'}`);
  return lines;
}

export const deploy: Command = {
  name: 'deploy',
  summary: 'Deploy a task module (an ES module of tasks) to every tasknode',
  usage: 'rtl deploy <file.mjs> [--name n] [--timeout ms] [--json]',
  description: [
    "The file is an ES module whose exports made by defineTableTask(...) or defineFunctionTask(...) (imported from '@rtl/tasks') are tasks. The relay checks that it loads and exports at least one task, keeps it (version 1, 2, ... per name, by sha256) so a relay restart keeps it, and hands it to every tasknode connected now and to each one that joins later. Table tasks can then be used in documents under any spelling (scaleBy, scale_by, task_scale_by); function tasks in canvas calls.",
    'The module name is the file name without .mjs, or --name. Deploying a changed source under the same name makes a new version, which replaces the old one on each tasknode at once: stages already running finish on the old version.',
    'A module that fails to load, exports no task, or whose task names are taken is refused: the message names the module, the error and its line, and nothing changes. Prints the version, the sha256, the tasks, and which tasknodes loaded it.',
  ],
  flags: [
    { name: 'name', value: 'name', doc: 'Module name (default: the file name without .mjs)' },
    { name: 'timeout', value: 'ms', doc: 'How long to wait for the relay (default RESPONSE_TIME)' },
    { name: 'json', doc: "Print the relay's answer as JSON" },
  ],
  examples: ['rtl deploy scale.mjs', 'rtl deploy ./tasks/v2.mjs --name scale'],
  args: { min: 1, max: 1 },
  async run(ctx: CommandContext): Promise<number> {
    const file = ctx.args[0] ?? '';
    const name = stringFlag(ctx, 'name') ?? moduleNameOf(file);
    if (name === undefined)
      throw new CliError(
        `${basename(file)} does not make a module name (a letter, then letters, digits, "_" or "-"); give one with --name`,
        { exitCode: 2 },
      );
    let source: string;
    try {
      source = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new CliError(
        code === 'ENOENT'
          ? `module ${file} does not exist`
          : `cannot read module ${file}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const timeoutMs = timeoutFlag(ctx, ctx.config.RESPONSE_TIME);
    const endpoint = relayEndpoints(ctx.config).recv;
    const client = new Client({ ...relayClient(ctx.config), store: false, timeoutMs });
    try {
      // Ask first, so that no relay gives the not-running line instead of a deploy timeout.
      await client.status({ timeoutMs: Math.min(timeoutMs, 2000) });
      const result = await client.deploy({ name, source, timeoutMs });
      if (boolFlag(ctx, 'json')) console.log(JSON.stringify(result, null, 2));
      else for (const line of deployLines(result)) console.log(line);
      return result.nodes.every((n) => n.ok) ? 0 : 1;
    } catch (err) {
      if (err instanceof RtlError && err.code === 'RTL_ERR_RELAY_UNREACHABLE')
        throw new CliError(notRunningMessage(endpoint, Math.min(timeoutMs, 2000)), { bare: true });
      throw err;
    } finally {
      await client.close();
    }
  },
};
