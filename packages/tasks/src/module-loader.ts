/**
 * Loading task modules (deployed or given with `--module`): a resolve hook that lets a module
 * import `@rtl/tasks`, `@rtl/core` and `apache-arrow` by bare name from any directory (so it
 * shares this process's classes: an RtlError it throws keeps its code), and load errors that
 * name the module, the error and the line and column where it happened. Used by tasknodes
 * (every worker thread) and by the relay's module check (a child process).
 *
 * ```ts
 * allowModuleImports(dirname(file));
 * const ns = await import(pathToFileURL(file).href);   // or importTaskExports(file, 'scale@2')
 * ```
 * Gotcha: the hook is per thread (Node 20); call it in the thread that imports the module.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { register } from 'node:module';
import { basename, dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RtlError } from '@rtl/core';
import { taskExports, type TaskExport } from './define.js';

/** Bare names a task module may import; they resolve to the packages of the process loading it. */
export const MODULE_IMPORTS: readonly string[] = ['@rtl/tasks', '@rtl/core', 'apache-arrow'];

/** The resolve hook, as source: re-resolves MODULE_IMPORTS from `base` for importers under `scope`. */
const HOOK = `let scope = ''; let base = ''; let names = [];
export async function initialize(data) { scope = data.scope; base = data.base; names = data.names; }
export async function resolve(specifier, context, next) {
  if (typeof context.parentURL === 'string' && context.parentURL.startsWith(scope) &&
      names.some((n) => specifier === n || specifier.startsWith(n + '/')))
    return next(specifier, { ...context, parentURL: base });
  return next(specifier, context);
}`;

const hooked = new Set<string>();

/** Let modules under `dir` import MODULE_IMPORTS by bare name (once per directory and thread). */
export function allowModuleImports(dir: string): void {
  const scope = pathToFileURL(resolve(dir)).href.replace(/\/?$/, '/');
  if (hooked.has(scope)) return;
  register(`data:text/javascript,${encodeURIComponent(HOOK)}`, {
    data: { scope, base: import.meta.url, names: MODULE_IMPORTS },
  });
  hooked.add(scope);
}

/**
 * Import a module and return its task exports (possibly none). A module that fails to load
 * throws RtlError RTL_ERR_BAD_MODULE naming `label`, the error and where it happened.
 */
export async function importTaskExports(file: string, label: string): Promise<TaskExport[]> {
  allowModuleImports(dirname(file));
  let ns: Record<string, unknown>;
  try {
    ns = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw moduleLoadError(label, file, err);
  }
  return taskExports(ns);
}

/** Where an error happened in `file`: line, column and the source line, when that can be found. */
export interface SourceLocation {
  readonly line: number;
  readonly column: number;
  readonly text?: string;
}

/** The location of a load error in `file`: the first stack frame in it, or for a syntax error, `node --check`'s. */
export function locateError(file: string, err: unknown): SourceLocation | undefined {
  const stack = err instanceof Error ? (err.stack ?? '') : '';
  for (const prefix of [pathToFileURL(file).href, file]) {
    const at = stack.indexOf(`${prefix}:`);
    if (at < 0) continue;
    const m = /^:(\d+):(\d+)/.exec(stack.slice(at + prefix.length));
    if (m) return withText(file, Number(m[1]), Number(m[2]));
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

function withText(file: string, line: number, column: number): SourceLocation {
  try {
    const text = readFileSync(file, 'utf8').split('\n')[line - 1]?.trim();
    return text === undefined ? { line, column } : { line, column, text };
  } catch {
    return { line, column };
  }
}

/** `module "scale@2" failed to load: TypeError: x is not a function at line 3, column 9: run(x)`. */
export function moduleLoadError(label: string, file: string, err: unknown): RtlError {
  const e = err instanceof Error ? err : new Error(String(err));
  const where = locateError(file, err);
  // Messages name the cache file by path (`imported from /cache/modules/scale@2.3f2a.mjs`): name the module instead.
  const shown = `${label}.mjs`;
  const message = e.message.split(pathToFileURL(file).href).join(shown).split(file).join(shown);
  const at =
    where === undefined
      ? ''
      : ` at line ${String(where.line)}, column ${String(where.column)}${where.text ? `: ${where.text.slice(0, 120)}` : ''}`;
  return new RtlError(
    'RTL_ERR_BAD_MODULE',
    `module "${label}" failed to load: ${e.name}: ${message}${at}`,
    {
      module: label,
      ...(where === undefined ? {} : { line: where.line, column: where.column }),
      remoteStack: e.stack ?? '',
    },
    { cause: err },
  );
}
