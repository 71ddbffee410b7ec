/**
 * The task registry: resolves any accepted spelling of a task name, validates parameters
 * (it is core's `TaskCatalog`), runs a stage's task calls in order over one table, and calls
 * function tasks.
 *
 * ```ts
 * const tasks = createBundledRegistry();
 * const job = parseDocument(doc, tasks);                        // relay: names + params checked
 * const { table, timings } = await tasks.runStage(input, job.stages[0].tasks, { stage: '0' });
 * await tasks.callFunction('add', [2, 3]);                      // a function task: 5
 * ```
 * Table tasks and function tasks have separate names: `get('add', 'table')` and
 * `get('add', 'function')` are two tasks. Documents (the TaskCatalog side: `resolve`,
 * `names`) see table tasks only.
 * Gotcha: a name belongs to one task of its kind in all its spellings, so registering
 * `fooBar` also claims `foo_bar`, `task_foo_bar` and `task_fooBar`.
 */
import { Table } from 'apache-arrow';
import { RtlError } from '@rtl/core';
import type { CatalogTask, TaskCatalog } from '@rtl/core';
import type { TaskContext, TaskDef, TaskKind, TableTaskDef } from './define.js';
import { checkTaskName } from './define.js';
import { spellingsOf } from './names.js';
import type { ParamWhere } from './schema.js';

/** One row of `TaskRegistry.list()`. */
export interface TaskInfo {
  readonly name: string;
  readonly kind: TaskKind;
  readonly summary: string;
  readonly aliases: readonly string[];
  /** `'bundled'`, or where the task came from: a deployed module as `name@version`. */
  readonly origin: string;
}

export interface RegisterOptions {
  /** Default `'user'`; the bundled library registers with `'bundled'`. */
  readonly origin?: string;
  /** Replace a task of the same kind and canonical name (a redeployed module). Default false. */
  readonly replace?: boolean;
}

/** A module whose tasks the registry holds (see `registerModule`). */
export interface ModuleInfo {
  /** The module's name (`scale`). */
  readonly name: string;
  /** The origin its tasks carry: `scale@2` for a deployed module. */
  readonly origin: string;
  readonly tasks: readonly { readonly name: string; readonly kind: TaskKind }[];
}

/** One task call of a stage; core's `TaskCall` is one. */
export interface StageCall {
  /** Any accepted spelling; the canonical name is cheapest. */
  readonly task: string;
  /** The name as written in the document, for messages (default: `task`). */
  readonly as?: string;
  readonly params: Readonly<Record<string, unknown>>;
}

export interface StageContext {
  readonly stage: string;
  readonly signal?: AbortSignal;
}

/** Where a function task is called, for messages. */
export interface CallContext {
  /** The canvas node (stage) key, when the call is part of a job. */
  readonly stage?: string;
  /** The name as the caller wrote it (default: the name passed to callFunction). */
  readonly as?: string;
}

export interface TaskTiming {
  /** Canonical task name. */
  readonly task: string;
  readonly ms: number;
}

export interface StageRun {
  readonly table: Table;
  readonly timings: TaskTiming[];
}

interface Entry {
  readonly def: TaskDef;
  readonly origin: string;
  readonly spellings: readonly string[];
  readonly catalog: CatalogTask;
  /** The module the task came from (registerModule), if any. */
  readonly module?: string;
}

/** Map key of a name in its kind's namespace. */
function keyOf(kind: TaskKind, name: string): string {
  return `${kind}:${name}`;
}

const KINDS: readonly TaskKind[] = ['table', 'function'];

export class TaskRegistry implements TaskCatalog {
  /** By `kind:canonical name`. */
  readonly #byName = new Map<string, Entry>();
  /** By `kind:spelling`. */
  readonly #bySpelling = new Map<string, Entry>();
  /** Modules by name: their origin and the `kind:name` keys of their tasks. */
  readonly #modules = new Map<string, { origin: string; keys: string[] }>();
  /** Parameter objects this registry produced by validation; runStage trusts them. */
  readonly #validated = new WeakSet<object>();

  /** Add a task; throws when one of its spellings already names another task of its kind. */
  register(def: TaskDef, opts: RegisterOptions = {}): this {
    const { origin = 'user', replace = false } = opts;
    const spellings = spellingsOfDef(def);
    const previous = this.#byName.get(keyOf(def.kind, def.name));
    for (const s of spellings) {
      const owner = this.#bySpelling.get(keyOf(def.kind, s));
      if (owner === undefined || (replace && owner === previous)) continue;
      throw new RtlError(
        'RTL_ERR_INTERNAL',
        `cannot register task "${def.name}": the name "${s}" already belongs to task "${owner.def.name}" (${owner.origin})` +
          (owner === previous ? '; register with { replace: true } to replace it' : ''),
        { task: def.name },
      );
    }
    if (previous !== undefined) this.#remove(previous);
    this.#add(def, origin, spellings, undefined);
    return this;
  }

  /**
   * Add (or replace) a module's tasks in one step: every task the module registered before
   * goes, the new ones come, or, when a name clashes with a task from elsewhere, nothing
   * changes and RtlError RTL_ERR_BAD_MODULE names the task and its owner.
   *
   * ```ts
   * registry.registerModule({ name: 'scale', origin: 'scale@2' }, taskExports(ns).map((e) => e.def));
   * ```
   */
  registerModule(
    module: { readonly name: string; readonly origin: string },
    defs: readonly TaskDef[],
  ): ModuleInfo {
    const claimed = new Map<string, TaskDef>();
    for (const def of defs) {
      for (const s of spellingsOfDef(def)) {
        const key = keyOf(def.kind, s);
        const mine = claimed.get(key);
        if (mine !== undefined)
          throw new RtlError(
            'RTL_ERR_BAD_MODULE',
            `module "${module.name}": ${def.kind} tasks "${mine.name}" and "${def.name}" both claim the name "${s}"`,
            { module: module.name, task: def.name },
          );
        claimed.set(key, def);
        const owner = this.#bySpelling.get(key);
        if (owner !== undefined && owner.module !== module.name)
          throw new RtlError(
            'RTL_ERR_BAD_MODULE',
            `module "${module.name}": ${def.kind} task "${def.name}" clashes with ${owner.def.kind} task "${owner.def.name}" (${owner.origin}) over the name "${s}"; rename it`,
            { module: module.name, task: def.name },
          );
      }
    }
    this.unregisterModule(module.name);
    const keys: string[] = [];
    for (const def of defs) {
      this.#add(def, module.origin, spellingsOfDef(def), module.name);
      keys.push(keyOf(def.kind, def.name));
    }
    this.#modules.set(module.name, { origin: module.origin, keys });
    return {
      name: module.name,
      origin: module.origin,
      tasks: defs.map((d) => ({ name: d.name, kind: d.kind })),
    };
  }

  /** Remove every task a module registered; returns whether the module was there. */
  unregisterModule(name: string): boolean {
    const mod = this.#modules.get(name);
    if (mod === undefined) return false;
    for (const key of mod.keys) {
      const entry = this.#byName.get(key);
      if (entry !== undefined) this.#remove(entry);
    }
    this.#modules.delete(name);
    return true;
  }

  /** The modules registered with registerModule, by name. */
  modules(): ModuleInfo[] {
    return [...this.#modules.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, m]) => ({
        name,
        origin: m.origin,
        tasks: m.keys.flatMap((k) => {
          const def = this.#byName.get(k)?.def;
          return def === undefined ? [] : [{ name: def.name, kind: def.kind }];
        }),
      }));
  }

  /** Remove a task by any spelling (a table task first, unless `kind` says); returns whether it was there. */
  unregister(name: string, kind?: TaskKind): boolean {
    const entry = this.#lookup(name, kind);
    if (entry === undefined) return false;
    this.#remove(entry);
    return true;
  }

  /** The task named by any accepted spelling or alias: of `kind`, or a table task first, then a function task. */
  get(name: string, kind?: TaskKind): TaskDef | undefined {
    return this.#lookup(name, kind)?.def;
  }

  /** Where a task came from (`bundled`, `scale@2`, ...), or undefined when it is not here. */
  originOf(name: string, kind?: TaskKind): string | undefined {
    return this.#lookup(name, kind)?.origin;
  }

  /**
   * TaskCatalog: the table task's canonical name and parameter validation. A name that only
   * a function task has resolves too, and its validation says a stage runs table tasks.
   */
  resolve(name: string): CatalogTask | undefined {
    return this.#lookup(name, undefined)?.catalog;
  }

  /** Canonical names of one kind (TaskCatalog: table tasks), sorted. */
  names(kind: TaskKind = 'table'): string[] {
    const out: string[] = [];
    for (const e of this.#byName.values()) if (e.def.kind === kind) out.push(e.def.name);
    return out.sort();
  }

  /** Every task of both kinds, by name (a table task before a function task of the same name). */
  list(): TaskInfo[] {
    return [...this.#byName.values()]
      .sort((a, b) =>
        a.def.name < b.def.name
          ? -1
          : a.def.name > b.def.name
            ? 1
            : KINDS.indexOf(a.def.kind) - KINDS.indexOf(b.def.kind),
      )
      .map(({ def, origin }) => {
        const { name, kind, summary, aliases } = def;
        return { name, kind, summary, aliases, origin };
      });
  }

  /**
   * Run a stage's calls in order, each on the previous one's output table. Parameters this
   * registry validated are trusted; any others (e.g. received over the wire) are validated
   * first. A task's RtlError keeps its code (with stage and task added); any other throw becomes
   * RTL_ERR_STAGE_FAILED naming stage and task, with the task's stack in `detail.remoteStack`.
   */
  async runStage(table: Table, calls: readonly StageCall[], ctx: StageContext): Promise<StageRun> {
    const signal = ctx.signal ?? new AbortController().signal;
    const timings: TaskTiming[] = [];
    let current = table;
    for (const call of calls) {
      const written = call.as ?? call.task;
      const where: TaskContext = { stage: ctx.stage, task: written, signal };
      if (signal.aborted) throw abortError(signal, where);
      const def = this.#tableTask(call.task, where);
      const params = this.#validated.has(call.params)
        ? call.params
        : def.params.parse(call.params, where);
      const started = performance.now();
      let out: unknown;
      try {
        out = await def.run(current, params, where);
      } catch (err) {
        throw taskThrew(err, where);
      }
      timings.push({ task: def.name, ms: performance.now() - started });
      if (!(out instanceof Table))
        throw new RtlError(
          'RTL_ERR_STAGE_FAILED',
          `stage "${ctx.stage}", task "${written}": returned ${typeof out}, expected an Arrow Table`,
          { stage: ctx.stage, task: written },
        );
      current = out;
    }
    return { table: current, timings };
  }

  /**
   * Call a function task with decoded arguments. An RtlError it throws keeps its code (gaining
   * the task name); any other throw becomes RTL_ERR_STAGE_FAILED naming the task, with its
   * stack. An unknown name is RTL_ERR_UNKNOWN_TASK listing the function tasks.
   *
   * ```ts
   * await registry.callFunction('tsum', [[1, 2, 3]]); // 6
   * ```
   */
  async callFunction(
    name: string,
    args: readonly unknown[],
    ctx: CallContext = {},
  ): Promise<unknown> {
    const written = ctx.as ?? name;
    const where =
      ctx.stage === undefined
        ? `function task "${written}"`
        : `stage "${ctx.stage}", function task "${written}"`;
    const found = this.get(name, 'function');
    const def = found?.kind === 'function' ? found : undefined;
    if (def === undefined) {
      const known = this.names('function');
      const table = this.get(name, 'table');
      throw new RtlError(
        table === undefined ? 'RTL_ERR_UNKNOWN_TASK' : 'RTL_ERR_BAD_DOCUMENT',
        table === undefined
          ? `unknown ${where}. Function tasks that exist: ${known.join(', ')}`
          : `${where}: "${table.name}" is a table task (for documents); a call runs function tasks: ${known.join(', ')}`,
        { ...(ctx.stage === undefined ? {} : { stage: ctx.stage }), task: written, known },
      );
    }
    try {
      return await def.run(...args);
    } catch (err) {
      throw functionThrew(err, written, ctx.stage);
    }
  }

  #lookup(name: string, kind: TaskKind | undefined): Entry | undefined {
    if (kind !== undefined) return this.#bySpelling.get(keyOf(kind, name));
    return (
      this.#bySpelling.get(keyOf('table', name)) ?? this.#bySpelling.get(keyOf('function', name))
    );
  }

  #add(
    def: TaskDef,
    origin: string,
    spellings: readonly string[],
    module: string | undefined,
  ): void {
    const entry: Entry = {
      def,
      origin,
      spellings,
      catalog: this.#catalogTask(def),
      ...(module === undefined ? {} : { module }),
    };
    this.#byName.set(keyOf(def.kind, def.name), entry);
    for (const s of spellings) this.#bySpelling.set(keyOf(def.kind, s), entry);
  }

  #remove(entry: Entry): void {
    this.#byName.delete(keyOf(entry.def.kind, entry.def.name));
    for (const s of entry.spellings) {
      const key = keyOf(entry.def.kind, s);
      if (this.#bySpelling.get(key) === entry) this.#bySpelling.delete(key);
    }
  }

  #tableTask(name: string, where: ParamWhere): TableTaskDef {
    const def = this.get(name);
    if (def === undefined)
      throw new RtlError(
        'RTL_ERR_UNKNOWN_TASK',
        `stage "${where.stage}": unknown task "${where.task}". Tasks that exist: ${this.names().join(', ')}`,
        { stage: where.stage, task: where.task, known: this.names() },
      );
    if (def.kind !== 'table') throw notATableTask(def, where);
    return def;
  }

  #catalogTask(def: TaskDef): CatalogTask {
    const validate = (
      params: Record<string, unknown>,
      where: ParamWhere,
    ): Record<string, unknown> => {
      if (def.kind !== 'table') throw notATableTask(def, where);
      const out = def.params.parse(params, where);
      if (typeof out === 'object' && out !== null) this.#validated.add(out);
      return out as Record<string, unknown>;
    };
    return Object.freeze({ name: def.name, validate });
  }
}

/** Every spelling of a definition's name and aliases (the names are checked first). */
function spellingsOfDef(def: TaskDef): string[] {
  const names = [def.name, ...def.aliases];
  for (const n of names) checkTaskName(n);
  return [...new Set(names.flatMap(spellingsOf))];
}

function notATableTask(def: TaskDef, where: ParamWhere): RtlError {
  return new RtlError(
    'RTL_ERR_BAD_DOCUMENT',
    `stage "${where.stage}", task "${where.task}": "${def.name}" is a ${def.kind} task (for canvas calls); a stage runs table tasks`,
    { stage: where.stage, task: where.task },
  );
}

function abortError(signal: AbortSignal, where: ParamWhere): RtlError {
  const reason: unknown = signal.reason;
  if (reason instanceof RtlError) return reason;
  return new RtlError(
    'RTL_ERR_CANCELLED',
    `stage "${where.stage}" cancelled before task "${where.task}"`,
    {
      stage: where.stage,
      task: where.task,
    },
  );
}

/**
 * A task's own RtlError keeps its code and gains the stage and task where missing; any other
 * throw becomes RTL_ERR_STAGE_FAILED naming the task, with the original stack.
 */
function taskThrew(err: unknown, where: TaskContext): RtlError {
  if (err instanceof RtlError) {
    if (err.detail.stage !== undefined && err.detail.task !== undefined) return err;
    return new RtlError(
      err.code,
      err.message,
      { stage: where.stage, task: where.task, ...err.detail, remoteStack: err.stack ?? '' },
      { cause: err },
    );
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return new RtlError(
    'RTL_ERR_STAGE_FAILED',
    `stage "${where.stage}", task "${where.task}" threw ${e.name}: ${e.message}`,
    { stage: where.stage, task: where.task, remoteStack: e.stack ?? '' },
    { cause: err },
  );
}

/** A function task's throw: its RtlError keeps the code, any other becomes RTL_ERR_STAGE_FAILED. */
function functionThrew(err: unknown, task: string, stage: string | undefined): RtlError {
  const at = stage === undefined ? {} : { stage };
  if (err instanceof RtlError) {
    if (err.detail.task !== undefined && (stage === undefined || err.detail.stage !== undefined))
      return err;
    return new RtlError(
      err.code,
      err.message,
      { ...at, task, ...err.detail, remoteStack: err.stack ?? '' },
      { cause: err },
    );
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return new RtlError(
    'RTL_ERR_STAGE_FAILED',
    `${stage === undefined ? '' : `stage "${stage}", `}function task "${task}" threw ${e.name}: ${e.message}`,
    { ...at, task, remoteStack: e.stack ?? '' },
    { cause: err },
  );
}
