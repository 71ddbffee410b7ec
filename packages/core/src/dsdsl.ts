/**
 * The transform document (DSDSL): parse and validate before a job is ACCEPTED.
 *
 * Accepted forms (docs/dsdsl.md):
 *   { "0": { "tasks": { "task_open_array": { ... } } }, "1": { "tasks": { "task_add": { ... } } } }
 *   { "0": { "tasks": [ { "task": "add", ...params }, { "task": "add", ...params } ] } }
 * Stage keys run in key order (numeric keys numerically); per-stage options: route,
 * retries, timeout_ms, split: { chunks }, after: [keys].
 */
import { RtlError, describeValue } from './errors.js';
import { closest } from './suggest.js';

/** What the validator needs to know about tasks; implemented by @rtl/tasks. */
export interface TaskCatalog {
  /** Resolve any accepted spelling (`task_square_root`, `square_root`, `squareRoot`). */
  resolve(name: string): CatalogTask | undefined;
  /** Canonical names of every known task, for "tasks that exist" messages. */
  names(): readonly string[];
}

export interface CatalogTask {
  /** Canonical name. */
  readonly name: string;
  /**
   * Validate and normalise parameters; throw RtlError RTL_ERR_BAD_PARAM naming the
   * parameter. Absent for tasks whose parameters cannot be checked ahead (deployed modules).
   */
  validate?(
    params: Record<string, unknown>,
    where: { stage: string; task: string },
  ): Record<string, unknown>;
}

export interface TaskCall {
  /** Canonical task name. */
  readonly task: string;
  /** The name as written in the document (for messages). */
  readonly as: string;
  readonly params: Record<string, unknown>;
}

export interface StageSpec {
  readonly key: string;
  readonly tasks: readonly TaskCall[];
  readonly route?: string;
  readonly retries: number;
  /** A task that throws is retried too (up to `retries`); by default only a lost tasknode is. */
  readonly retryOnError?: boolean;
  readonly timeoutMs?: number;
  readonly split?: { readonly chunks: number };
  /** Stage keys this stage waits for (default: the previous key). */
  readonly after: readonly string[];
}

export interface JobSpec {
  /** Stages in run order (a topological order of `after`). */
  readonly stages: readonly StageSpec[];
}

export const DEFAULT_STAGE_RETRIES = 3;
/** The longest timer Node can set (2^31 - 1 ms); longer ones would fire at once. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;
const STAGE_OPTIONS = new Set([
  'tasks',
  'route',
  'retries',
  'retry_on_error',
  'timeout_ms',
  'split',
  'after',
]);

/** Compare stage keys: numeric keys numerically, then the rest as written. */
export function compareStageKeys(a: string, b: string): number {
  const na = numericKey(a);
  const nb = numericKey(b);
  if (na !== undefined && nb !== undefined) return na - nb;
  if (na !== undefined) return -1;
  if (nb !== undefined) return 1;
  return 0;
}

function numericKey(k: string): number | undefined {
  if (!/^-?\d+(\.\d+)?$/.test(k)) return undefined;
  return Number(k);
}

/** Parse and validate a document. Throws RtlError naming the stage, task and parameter. */
export function parseDocument(doc: unknown, catalog: TaskCatalog): JobSpec {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new RtlError(
      'RTL_ERR_BAD_DOCUMENT',
      `document is ${describeValue(doc)}, expected an object of stages like { "0": { "tasks": { ... } } }`,
    );
  const keys = Object.keys(doc).sort(compareStageKeys);
  if (keys.length === 0)
    throw new RtlError(
      'RTL_ERR_EMPTY_DOCUMENT',
      'document has no stages; expected at least one like { "0": { "tasks": { "task_null": {} } } }',
    );
  const stages: StageSpec[] = [];
  let previous: string | undefined;
  for (const key of keys) {
    stages.push(parseStage(key, (doc as Record<string, unknown>)[key], previous, catalog));
    previous = key;
  }
  return { stages: topoOrder(stages) };
}

function parseStage(
  key: string,
  raw: unknown,
  previous: string | undefined,
  catalog: TaskCatalog,
): StageSpec {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new RtlError(
      'RTL_ERR_BAD_DOCUMENT',
      `stage "${key}" is ${describeValue(raw)}, expected an object with "tasks"`,
      { stage: key },
    );
  const s = raw as Record<string, unknown>;
  for (const opt of Object.keys(s)) {
    if (!STAGE_OPTIONS.has(opt))
      throw new RtlError(
        'RTL_ERR_BAD_DOCUMENT',
        `stage "${key}": unknown option "${opt}"; stage options are ${[...STAGE_OPTIONS].join(', ')}`,
        { stage: key, param: opt },
      );
  }
  const tasks = parseTasks(key, s.tasks, catalog);
  const out: { -readonly [K in keyof StageSpec]: StageSpec[K] } = {
    key,
    tasks,
    retries: DEFAULT_STAGE_RETRIES,
    after: previous === undefined ? [] : [previous],
  };
  if (s.route !== undefined) {
    if (typeof s.route !== 'string' || s.route === '')
      throw badOption(key, 'route', 'a queue or node name', s.route);
    out.route = s.route;
  }
  if (s.retries !== undefined) {
    if (!Number.isSafeInteger(s.retries) || (s.retries as number) < 0)
      throw badOption(key, 'retries', 'an integer >= 0', s.retries);
    out.retries = s.retries as number;
  }
  if (s.retry_on_error !== undefined) {
    if (typeof s.retry_on_error !== 'boolean')
      throw badOption(key, 'retry_on_error', 'true or false', s.retry_on_error);
    if (s.retry_on_error) out.retryOnError = true;
  }
  if (s.timeout_ms !== undefined) {
    if (typeof s.timeout_ms !== 'number' || !(s.timeout_ms > 0) || s.timeout_ms > MAX_TIMEOUT_MS)
      throw badOption(
        key,
        'timeout_ms',
        `a number of milliseconds from 1 to ${String(MAX_TIMEOUT_MS)} (about 24.8 days)`,
        s.timeout_ms,
      );
    out.timeoutMs = s.timeout_ms;
  }
  if (s.split !== undefined) {
    const sp = s.split as { chunks?: unknown } | null | undefined;
    if (
      typeof sp !== 'object' ||
      sp === null ||
      !Number.isSafeInteger(sp.chunks) ||
      (sp.chunks as number) < 1
    )
      throw badOption(key, 'split', '{ "chunks": N } with N >= 1', s.split);
    out.split = { chunks: sp.chunks as number };
  }
  if (s.after !== undefined) {
    const after = Array.isArray(s.after) ? s.after.map(String) : undefined;
    if (
      after === undefined ||
      !Array.isArray(s.after) ||
      !s.after.every((k) => typeof k === 'string' || typeof k === 'number')
    )
      throw badOption(key, 'after', 'an array of stage keys', s.after);
    out.after = after;
  }
  return out;
}

function badOption(stage: string, param: string, expected: string, got: unknown): RtlError {
  return new RtlError(
    'RTL_ERR_BAD_DOCUMENT',
    `stage "${stage}": option "${param}" expected ${expected}, got ${describeValue(got)}`,
    {
      stage,
      param,
      expected,
      got: describeValue(got),
    },
  );
}

function parseTasks(stage: string, raw: unknown, catalog: TaskCatalog): TaskCall[] {
  const calls: [string, unknown][] = [];
  if (Array.isArray(raw)) {
    raw.forEach((entry, i) => {
      if (
        typeof entry !== 'object' ||
        entry === null ||
        Array.isArray(entry) ||
        typeof (entry as { task?: unknown }).task !== 'string'
      )
        throw new RtlError(
          'RTL_ERR_BAD_DOCUMENT',
          `stage "${stage}": tasks[${i}] is ${describeValue(entry)}, expected { "task": "<name>", ...params }`,
          { stage, index: i },
        );
      const { task, ...params } = entry as Record<string, unknown>;
      calls.push([task as string, params]);
    });
  } else if (typeof raw === 'object' && raw !== null) {
    for (const [name, params] of Object.entries(raw)) calls.push([name, params]);
  } else {
    throw new RtlError(
      'RTL_ERR_BAD_DOCUMENT',
      `stage "${stage}": "tasks" is ${describeValue(raw)}, expected an object { "task_name": { params } } or an array [{ "task": "name", ...params }]`,
      { stage },
    );
  }
  if (calls.length === 0)
    throw new RtlError('RTL_ERR_EMPTY_DOCUMENT', `stage "${stage}" has no tasks`, { stage });
  return calls.map(([as, params]) => {
    const def = catalog.resolve(as);
    if (def === undefined) {
      const names = catalog.names();
      const near = closest(as, names);
      throw new RtlError(
        'RTL_ERR_UNKNOWN_TASK',
        `stage "${stage}": unknown task "${as}"${near ? `; did you mean "${near}"?` : '.'} Tasks that exist: ${names.join(', ')}`,
        { stage, task: as, known: [...names] },
      );
    }
    if (params === null || params === undefined) params = {};
    if (typeof params !== 'object' || Array.isArray(params))
      throw new RtlError(
        'RTL_ERR_BAD_PARAM',
        `stage "${stage}", task "${as}": parameters are ${describeValue(params)}, expected an object`,
        { stage, task: as },
      );
    const checked = def.validate
      ? def.validate(params as Record<string, unknown>, { stage, task: as })
      : (params as Record<string, unknown>);
    return { task: def.name, as, params: checked };
  });
}

/** Order stages so every stage comes after those it waits for; reject unknown keys and cycles. */
function topoOrder(stages: StageSpec[]): StageSpec[] {
  const byKey = new Map(stages.map((s) => [s.key, s]));
  for (const s of stages)
    for (const dep of s.after) {
      if (!byKey.has(dep))
        throw new RtlError(
          'RTL_ERR_BAD_DOCUMENT',
          `stage "${s.key}": "after" names stage "${dep}", which the document does not have`,
          { stage: s.key, param: 'after' },
        );
      if (dep === s.key)
        throw new RtlError('RTL_ERR_CYCLE', `stage "${s.key}" waits for itself ("after")`, {
          stage: s.key,
          cycle: [s.key],
        });
    }
  const out: StageSpec[] = [];
  const state = new Map<string, 1 | 2>(); // 1 = on the path, 2 = done
  const visit = (s: StageSpec, path: string[]): void => {
    const st = state.get(s.key);
    if (st === 2) return;
    if (st === 1) {
      const cycle = [...path.slice(path.indexOf(s.key)), s.key];
      throw new RtlError(
        'RTL_ERR_CYCLE',
        `stages wait for each other in a cycle: ${cycle.join(' -> ')}`,
        { stage: s.key, cycle },
      );
    }
    state.set(s.key, 1);
    for (const dep of s.after) visit(byKey.get(dep) as StageSpec, [...path, s.key]);
    state.set(s.key, 2);
    out.push(s);
  };
  for (const s of stages) visit(s, []);
  return out;
}
