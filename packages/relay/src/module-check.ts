/**
 * Child process entry: `node module-check.js <file> <label>` imports one task module and
 * reports, over the IPC channel, the tasks it exports (or why it does not load). The relay
 * runs it in a process of its own, with a timeout, so a module that hangs, exits or crashes
 * at import never touches the relay. [P-8.2]
 *
 * The module imports `@rtl/tasks` (and `@rtl/core`, `apache-arrow`) by bare name; a resolve
 * hook maps those to the relay's own copies, as the tasknode does
 * (packages/tasknode/src/modules.ts has the twin of this hook).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { register } from 'node:module';
import { basename, dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { taskExports } from '@rtl/tasks';
import type { CheckReply, CheckedTask } from './modules.js';

const NAMES = ['@rtl/tasks', '@rtl/core', 'apache-arrow'];
const HOOK = `let scope = ''; let base = ''; let names = [];
export async function initialize(data) { scope = data.scope; base = data.base; names = data.names; }
export async function resolve(specifier, context, next) {
  if (typeof context.parentURL === 'string' && context.parentURL.startsWith(scope) &&
      names.some((n) => specifier === n || specifier.startsWith(n + '/')))
    return next(specifier, { ...context, parentURL: base });
  return next(specifier, context);
}`;

interface Location {
  readonly line: number;
  readonly column: number;
  readonly text?: string;
}

/** The first stack frame in `file`, or for a syntax error the position `node --check` prints. */
function locate(file: string, err: unknown): Location | undefined {
  const stack = err instanceof Error ? (err.stack ?? '') : '';
  for (const prefix of [pathToFileURL(file).href, file]) {
    const at = stack.indexOf(`${prefix}:`);
    if (at < 0) continue;
    const m = /^:(\d+):(\d+)/.exec(stack.slice(at + prefix.length));
    if (m) {
      const line = Number(m[1]);
      const text = readFileSync(file, 'utf8').split('\n')[line - 1]?.trim();
      return { line, column: Number(m[2]), ...(text === undefined ? {} : { text }) };
    }
  }
  if (!(err instanceof SyntaxError)) return undefined;
  // V8 keeps a module's syntax error position out of the error object; `node --check` prints it.
  const check = spawnSync(process.execPath, ['--check', file], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  const lines = (check.stderr || '').split('\n');
  for (let i = 0; i + 2 < lines.length; i++) {
    const head = /:(\d+)$/.exec(lines[i] ?? '');
    const caret = /^(\s*)\^/.exec(lines[i + 2] ?? '');
    if (head && caret && (lines[i] ?? '').includes(basename(file)))
      return {
        line: Number(head[1]),
        column: (caret[1] ?? '').length + 1,
        text: (lines[i + 1] ?? '').trim(),
      };
  }
  return undefined;
}

async function check(file: string, label: string): Promise<CheckReply> {
  const scope = pathToFileURL(dirname(file)).href.replace(/\/?$/, '/');
  register(`data:text/javascript,${encodeURIComponent(HOOK)}`, {
    data: { scope, base: import.meta.url, names: NAMES },
  });
  let ns: Record<string, unknown>;
  try {
    ns = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    // Messages name the temp file by path (`imported from /tmp/.../scale@2.mjs`): name the module.
    const shown = `${label}.mjs`;
    const message = e.message.split(pathToFileURL(file).href).join(shown).split(file).join(shown);
    const where = locate(file, err);
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
