/** `rtl tasks [name]`: the bundled tasks, or one task's parameters and spellings. */
import { createBundledRegistry, spellingsOf, type ParamDoc } from '@rtl/tasks';
import { CliError, boolFlag, type Command, type CommandContext } from '../command.js';
import { renderTable, suggest } from '../format.js';

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

export const tasks: Command = {
  name: 'tasks',
  summary: 'List the tasks a transform can use, or show one task',
  usage: 'rtl tasks [name] [--json]',
  description: [
    'Lists every bundled task with its origin and summary. With a name (any spelling: squareRoot, square_root, task_square_root), shows its parameters and the spellings a document may use.',
  ],
  flags: [{ name: 'json', doc: 'Print the list as JSON (with parameter shapes)' }],
  examples: ['rtl tasks', 'rtl tasks add', 'rtl tasks task_filter'],
  args: { min: 0, max: 1 },
  run(ctx: CommandContext): Promise<number> {
    const registry = createBundledRegistry();
    const list = registry.list();
    const params = (name: string): ParamDoc | undefined => {
      const def = registry.get(name);
      return def?.kind === 'table' ? def.params.describe() : undefined;
    };
    const wanted = ctx.args[0];
    if (wanted !== undefined) {
      const def = registry.get(wanted);
      if (def === undefined) {
        const near = suggest(wanted.replace(/^task_/, ''), registry.names());
        throw new CliError(
          `unknown task "${wanted}"${near === undefined ? '' : `; did you mean "${near}"?`} Tasks: ${registry.names().join(', ')}`,
        );
      }
      const info = list.find((t) => t.name === def.name);
      const shape = params(def.name);
      console.log(`${def.name}: ${def.summary}`);
      console.log(`  origin      ${info?.origin ?? '?'}`);
      console.log(`  kind        ${def.kind}`);
      if (shape !== undefined) console.log(`  parameters  ${describeParams(shape)}`);
      const names = [def.name, ...def.aliases].flatMap(spellingsOf);
      console.log(`  spellings   ${[...new Set(names)].join(', ')}`);
      return Promise.resolve(0);
    }
    if (boolFlag(ctx, 'json')) {
      const out = list.map((t) => ({ ...t, params: params(t.name) }));
      console.log(JSON.stringify(out, null, 2));
      return Promise.resolve(0);
    }
    const rows = list.map((t) => [
      t.name,
      t.origin,
      t.summary + (t.aliases.length > 0 ? ` (also: ${t.aliases.join(', ')})` : ''),
    ]);
    for (const line of renderTable(['NAME', 'ORIGIN', 'SUMMARY'], rows)) console.log(line);
    console.log('');
    console.log(
      "`rtl tasks <name>` shows a task's parameters. In a document, write a name as is, in snake_case, or with the task_ prefix (task_square_root).",
    );
    return Promise.resolve(0);
  },
};
