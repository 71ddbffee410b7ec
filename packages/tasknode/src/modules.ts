/**
 * Task modules loaded at tasknode start (`--module file.mjs`): every export that is a task
 * definition (made with `defineTableTask`) is registered beside the bundled tasks.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { RtlError } from '@rtl/core';
import type { TaskDef, TaskRegistry } from '@rtl/tasks';

function isTaskDef(value: unknown): value is TaskDef {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<TaskDef>;
  return (v.kind === 'table' || v.kind === 'function') && typeof v.name === 'string' && typeof v.run === 'function';
}

/** Import each module and register its task exports; returns the names registered. */
export async function loadTaskModules(registry: TaskRegistry, paths: readonly string[]): Promise<string[]> {
  const names: string[] = [];
  for (const path of paths) {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>;
    } catch (err) {
      throw new RtlError('RTL_ERR_CONFIG', `task module ${path} failed to load: ${err instanceof Error ? err.message : String(err)}`, { file: path }, { cause: err });
    }
    const defs = Object.values(mod).filter(isTaskDef);
    if (defs.length === 0)
      throw new RtlError('RTL_ERR_CONFIG', `task module ${path} exports no task (export the result of defineTableTask(...))`, { file: path });
    for (const def of defs) {
      registry.register(def, { origin: `module:${path}`, replace: true });
      names.push(def.name);
    }
  }
  return names;
}
