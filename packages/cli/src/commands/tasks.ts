/**
 * `rtl tasks [name]`: every task the cluster knows (bundled and deployed, table and function
 * tasks) with its origin, or one task's parameters and spellings. Asks the relay; when none
 * answers, lists the bundled tasks of this installation and says so.
 */
import { relayEndpoints } from '@rtl/core';
import { Client, type TaskEntry } from '@rtl/client';
import {
  createBundledRegistry,
  registerBundledFunctions,
  spellingsOf,
  type ParamDoc,
} from '@rtl/tasks';
import { relayClient } from '../cluster-status.js';
import { CliError, boolFlag, type Command, type CommandContext } from '../command.js';
import { renderTable, suggest } from '../format.js';
import { timeoutFlag } from './status.js';

/** How long `rtl tasks` waits for the relay before listing the bundled tasks only. */
const TASKS_TIMEOUT_MS = 1000;

/** A parameter shape in one line: `{ operations: [{ a: column, b: column | number }] }`. */
export function describeParams(doc: ParamDoc): string {
  switch (doc.type) {
    case 'object': {
      const fields = Object.entries(doc.fields ?? {});
      if (fields.length === 0) return '{}';
      return `{ ${fields.map(([k, f]) => `${k}${f.optional === true ? '?' : ''}: ${describeParams(f)}`).join(', ')} }`;
    }
    case 'array':
      return doc.items === undefined ? '[...]' : `[${describeParams(doc.items)}, ...]`;
    case 'or':
      return (doc.anyOf ?? []).map(describeParams).join(' | ');
    case 'enum':
      return (doc.values ?? []).map((v) => JSON.stringify(v)).join(' | ');
    default:
      return doc.type;
  }
}

function isParamDoc(v: unknown): v is ParamDoc {
  return typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string';
}

/** The tasks of this installation: bundled table and function tasks. */
export function localTasks(): TaskEntry[] {
  const registry = registerBundledFunctions(createBundledRegistry());
  return registry.list().map((t) => {
    const def = registry.get(t.name, t.kind);
    const params = def?.kind === 'table' ? def.params.describe() : undefined;
    return { ...t, ...(params === undefined ? {} : { params }) };
  });
}

/** Ask the relay for its task list; undefined when no relay answers in time. */
async function relayTasks(ctx: CommandContext): Promise<TaskEntry[] | undefined> {
  const client = new Client({ ...relayClient(ctx.config), store: false });
  try {
    return await client.tasks({ timeoutMs: timeoutFlag(ctx, TASKS_TIMEOUT_MS) });
  } catch {
    return undefined;
  } finally {
    await client.close();
  }
}

/** The tasks a name (any spelling) names: a table task, a function task, or both. */
function findTasks(list: readonly TaskEntry[], wanted: string): TaskEntry[] {
  return list.filter((t) => [t.name, ...t.aliases].some((n) => spellingsOf(n).includes(wanted)));
}

export const tasks: Command = {
  name: 'tasks',
  summary: 'List the tasks (bundled and deployed) with their origin, or show one task',
  usage: 'rtl tasks [name] [--json] [--timeout ms]',
  description: [
    'Asks the relay for every task it knows: the bundled tasks, the tasks of deployed modules (origin name@version, see rtl deploy) and tasks only tasknodes announce. Table tasks run in documents (stages); function tasks in canvas calls. When no relay answers, lists the bundled tasks of this installation and says so on stderr.',
    'With a name (any spelling: squareRoot, square_root, task_square_root), shows its kind, origin, parameters and the spellings a document may use.',
  ],
  flags: [
    { name: 'json', doc: 'Print the list as JSON (with parameter shapes)' },
    {
      name: 'timeout',
      value: 'ms',
      doc: `How long to wait for the relay (default ${String(TASKS_TIMEOUT_MS)})`,
    },
  ],
  examples: ['rtl tasks', 'rtl tasks add', 'rtl tasks task_filter'],
  args: { min: 0, max: 1 },
  async run(ctx: CommandContext): Promise<number> {
    const fromRelay = await relayTasks(ctx);
    const list = fromRelay ?? localTasks();
    if (fromRelay === undefined)
      console.error(
        `(no relay answered at ${relayEndpoints(ctx.config).recv}: these are the bundled tasks of this installation; deployed modules are not listed)`,
      );
    const wanted = ctx.args[0];
    if (wanted !== undefined) {
      const found = findTasks(list, wanted);
      if (found.length === 0) {
        const names = [...new Set(list.map((t) => t.name))].sort();
        const near = suggest(wanted.replace(/^task_/, ''), names);
        throw new CliError(
          `unknown task "${wanted}"${near === undefined ? '' : `; did you mean "${near}"?`} Tasks: ${names.join(', ')}`,
        );
      }
      for (const [i, t] of found.entries()) {
        if (i > 0) console.log('');
        console.log(`${t.name}: ${t.summary}`);
        console.log(`  origin      ${t.origin}`);
        console.log(
          `  kind        ${t.kind}${t.kind === 'table' ? ' (a stage in a document)' : ' (a canvas call)'}`,
        );
        if (isParamDoc(t.params)) console.log(`  parameters  ${describeParams(t.params)}`);
        const names = [t.name, ...t.aliases].flatMap(spellingsOf);
        console.log(`  spellings   ${[...new Set(names)].join(', ')}`);
      }
      return 0;
    }
    if (boolFlag(ctx, 'json')) {
      console.log(JSON.stringify(list, null, 2));
      return 0;
    }
    const rows = list.map((t) => [
      t.name,
      t.origin,
      t.kind,
      t.summary + (t.aliases.length > 0 ? ` (also: ${t.aliases.join(', ')})` : ''),
    ]);
    for (const line of renderTable(['NAME', 'ORIGIN', 'KIND', 'SUMMARY'], rows)) console.log(line);
    console.log('');
    console.log(
      "`rtl tasks <name>` shows a task's parameters. In a document, write a table task's name as is, in snake_case, or with the task_ prefix (task_square_root).",
    );
    return 0;
  },
};
