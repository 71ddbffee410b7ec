/**
 * The task registry: resolves any accepted spelling of a task name, validates parameters
 * (it is core's `TaskCatalog`), and runs a stage's task calls in order over one table.
 *
 * ```ts
 * const tasks = createBundledRegistry();
 * const job = parseDocument(doc, tasks);                        // relay: names + params checked
 * const { table, timings } = await tasks.runStage(input, job.stages[0].tasks, { stage: '0' });
 * ```
 * Gotcha: a name belongs to one task in all its spellings, so registering `fooBar` also
 * claims `foo_bar`, `task_foo_bar` and `task_fooBar`.
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
  /** `'bundled'`, or where the task came from (a deployed module's name or hash). */
  readonly origin: string;
}

export interface RegisterOptions {
  /** Default `'user'`; the bundled library registers with `'bundled'`. */
  readonly origin?: string;
  /** Replace a task of the same canonical name (a redeployed module). Default false. */
  readonly replace?: boolean;
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
}

export class TaskRegistry implements TaskCatalog {
  readonly #byName = new Map<string, Entry>();
  readonly #bySpelling = new Map<string, Entry>();
  /** Parameter objects this registry produced by validation; runStage trusts them. */
  readonly #validated = new WeakSet<object>();

  /** Add a task; throws when one of its spellings already names another task. */
  register(def: TaskDef, opts: RegisterOptions = {}): this {
    const { origin = 'user', replace = false } = opts;
    const names = [def.name, ...def.aliases];
    for (const n of names) checkTaskName(n);
    const spellings = [...new Set(names.flatMap(spellingsOf))];
    const previous = this.#byName.get(def.name);
    for (const s of spellings) {
      const owner = this.#bySpelling.get(s);
      if (owner === undefined || (replace && owner === previous)) continue;
      throw new RtlError(
        'RTL_ERR_INTERNAL',
        `cannot register task "${def.name}": the name "${s}" already belongs to task "${owner.def.name}" (${owner.origin})` +
          (owner === previous ? '; register with { replace: true } to replace it' : ''),
        { task: def.name },
      );
    }
    if (previous !== undefined) this.unregister(def.name);
    const entry: Entry = { def, origin, spellings, catalog: this.#catalogTask(def) };
    this.#byName.set(def.name, entry);
    for (const s of spellings) this.#bySpelling.set(s, entry);
    return this;
  }

  /** Remove a task by any spelling; returns whether it was there. */
  unregister(name: string): boolean {
    const entry = this.#bySpelling.get(name);
    if (entry === undefined) return false;
    this.#byName.delete(entry.def.name);
    for (const s of entry.spellings) this.#bySpelling.delete(s);
    return true;
  }

  /** The task named by any accepted spelling or alias. */
  get(name: string): TaskDef | undefined {
    return this.#bySpelling.get(name)?.def;
  }

  /** TaskCatalog: the task's canonical name and parameter validation. */
  resolve(name: string): CatalogTask | undefined {
    return this.#bySpelling.get(name)?.catalog;
  }

  /** TaskCatalog: canonical names, sorted. */
  names(): string[] {
    return [...this.#byName.keys()].sort();
  }

  list(): TaskInfo[] {
    return this.names().map((n) => {
      const { def, origin } = this.#byName.get(n) as Entry;
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
    return new RtlError(err.code, err.message, { stage: where.stage, task: where.task, ...err.detail, remoteStack: err.stack ?? '' }, { cause: err });
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return new RtlError(
    'RTL_ERR_STAGE_FAILED',
    `stage "${where.stage}", task "${where.task}" threw ${e.name}: ${e.message}`,
    { stage: where.stage, task: where.task, remoteStack: e.stack ?? '' },
    { cause: err },
  );
}
