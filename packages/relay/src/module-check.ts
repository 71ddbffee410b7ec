/**
 * Child process entry: `node module-check.js <file> <label>` imports one task module and
 * reports, over the IPC channel, the tasks it exports (or why it does not load). The relay
 * runs it in a process of its own, with a timeout, so a module that hangs, exits or crashes
 * at import never touches the relay. [P-8.2]
 *
 * The module imports `@rtl/tasks` (and `@rtl/core`, `apache-arrow`) by bare name; the resolve
 * hook of @rtl/tasks (module-loader.ts, shared with tasknodes) maps those to this process's copies.
 */
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { allowModuleImports, locateError, taskExports } from '@rtl/tasks';
import type { CheckReply, CheckedTask } from './modules.js';

async function check(file: string, label: string): Promise<CheckReply> {
  allowModuleImports(dirname(file));
  let ns: Record<string, unknown>;
  try {
    ns = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    // Messages name the temp file by path (`imported from /tmp/.../scale@2.mjs`): name the module.
    const shown = `${label}.mjs`;
    const message = e.message.split(pathToFileURL(file).href).join(shown).split(file).join(shown);
    const where = locateError(file, err);
    return {
      ok: false,
      name: e.name,
      message,
      stack: e.stack ?? '',
      ...(where === undefined ? {} : { where }),
    };
  }
  const tasks: CheckedTask[] = taskExports(ns).map(({ exportName, def }) => {
    let params: unknown;
    try {
      params = def.kind === 'table' ? def.params.describe() : undefined;
    } catch {
      params = undefined;
    }
    return {
      exportName,
      name: def.name,
      kind: def.kind,
      aliases: [...def.aliases],
      summary: def.summary,
      ...(params === undefined ? {} : { params }),
    };
  });
  return { ok: true, tasks };
}

const [file, label] = process.argv.slice(2);
if (file === undefined || label === undefined || process.send === undefined) {
  process.stderr.write('usage: node module-check.js <file> <label> (with an IPC channel)\n');
  process.exit(2);
}
const reply = await check(file, label);
// The module may have left timers or sockets open: exit once the answer is out.
process.send(reply, () => process.exit(0));
