/**
 * Task modules: ES modules whose exports made by defineTableTask / defineFunctionTask become
 * tasks. They come from `--module file.mjs` at start, or from the relay (DEPLOY), which this
 * node writes to CACHE_PATH/modules/ and loads into every worker thread.
 *
 * A module imports `@rtl/tasks` (and may import `@rtl/core` and `apache-arrow`) by bare name,
 * wherever its file lies: a resolve hook (node:module `register`) maps those names, imported
 * from the module's directory, to this tasknode's own copies, so the module shares their
 * classes (an RtlError it throws is the tasknode's RtlError).
 *
 * ```ts
 * const defs = await importTaskModule('/var/cache/rtl/modules/scale@2.3f2a.mjs', 'scale@2');
 * registry.registerModule({ name: 'scale', origin: 'scale@2' }, defs);
 * ```
 * Gotcha: the hook is per thread (Node 20); call this in the thread that will run the tasks.
 * The hook and load errors live in @rtl/tasks (module-loader.ts), shared with the relay's check.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  MODULE_IMPORTS,
  allowModuleImports,
  importTaskExports,
  locateError,
  moduleLoadError,
  type SourceLocation,
  type TaskDef,
} from '@rtl/tasks';

/** sha256 of a module's source (its UTF-8 bytes), lower-case hex. */
export function sourceHash(source: string): string {
  return createHash('sha256').update(source, 'utf8').digest('hex');
}

/**
 * Write a deployed module's source to `dir` as `<name>@<version>.<sha12>.mjs` (atomically:
 * a temp file renamed, so nodes sharing the directory never see half a file); returns the path.
 */
export function writeModuleFile(
  dir: string,
  name: string,
  version: number,
  sha256: string,
  source: string,
): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}@${String(version)}.${sha256.slice(0, 12)}.mjs`);
  if (existsSync(file) && sourceHash(readFileSync(file, 'utf8')) === sha256) return file;
  const tmp = `${file}.${randomUUID().slice(0, 8)}.tmp`;
  writeFileSync(tmp, source);
  renameSync(tmp, file);
  return file;
}

/**
 * Import a module and return the task definitions it exports (possibly none). A module that
 * fails to load throws RtlError RTL_ERR_BAD_MODULE naming `label`, the error and where
 * (line and column) it happened.
 */
export async function importTaskModule(file: string, label: string): Promise<TaskDef[]> {
  return (await importTaskExports(file, label)).map((e) => e.def);
}

export { allowModuleImports, locateError, moduleLoadError, MODULE_IMPORTS, type SourceLocation };
