/**
 * A tiny parameter-schema combinator library: each schema parses an unknown value into a
 * typed one, or throws RtlError RTL_ERR_BAD_PARAM naming the stage, the task and the
 * parameter path (`operations[0].b`).
 *
 * ```ts
 * const params = p.object({ operations: p.array(p.object({ a: p.column(), b: p.or(p.column(), p.number()) }), { min: 1 }) });
 * const ok = params.parse({ operations: [{ a: 'x', b: 2 }] }, { stage: '1', task: 'task_add' }); // typed
 * ```
 * Gotcha: unknown keys of an object are an error, never ignored (a typo must not pass silently).
 */
import { RtlError, closest, describeValue } from '@rtl/core';

/** Where parameters are being checked: the stage key and the task name as written. */
export interface ParamWhere {
  readonly stage: string;
  readonly task: string;
}

/** A JSON-able description of a schema, for task listings and generated docs. */
export interface ParamDoc {
  readonly type: string;
  readonly expected: string;
  readonly optional?: boolean;
  readonly default?: unknown;
  readonly items?: ParamDoc;
  readonly fields?: Readonly<Record<string, ParamDoc>>;
  readonly anyOf?: readonly ParamDoc[];
  readonly values?: readonly (string | number | boolean)[];
  readonly min?: number;
  readonly max?: number;
}

export interface Schema<T> {
  /** What a good value looks like, in words ("a column name or a number"). */
  readonly expected: string;
  /** Whether the value may be absent from its object. */
  readonly optional: boolean;
  /** Parse `value` found at `path` (`''` for the top level); throws RTL_ERR_BAD_PARAM. */
  parse(value: unknown, where: ParamWhere, path?: string): T;
  describe(): ParamDoc;
  /** For leaf schemas: true exactly when `parse` would accept the value (no throw needed). */
  readonly accepts?: (value: unknown) => boolean;
}

/** The type a schema produces. */
export type Infer<S> = S extends Schema<infer T> ? T : never;

type Shape = Readonly<Record<string, Schema<unknown>>>;
type Prettify<T> = { [K in keyof T]: T[K] } & {};
export type ObjectOf<S extends Shape> = Prettify<{ -readonly [K in keyof S]: Infer<S[K]> }>;

/**
 * Build the RTL_ERR_BAD_PARAM error every parameter problem throws (also used by tasks at
 * run time, e.g. for a column that is not in the table).
 */
export function paramError(
  where: ParamWhere,
  param: string,
  problem: string,
  detail: Record<string, unknown> = {},
): RtlError {
  const at = param === '' ? '' : `, param "${param}"`;
  return new RtlError(
    'RTL_ERR_BAD_PARAM',
    `stage "${where.stage}", task "${where.task}"${at}: ${problem}`,
    {
      stage: where.stage,
      task: where.task,
      param,
      ...detail,
    },
  );
}

const MAX_LISTED_COLUMNS = 40;

/**
 * The RTL_ERR_BAD_PARAM a task throws at run time for a column that is not in its table,
 * naming the parameter and the columns that exist (the first 40).
 */
export function missingColumn(
  where: ParamWhere,
  param: string,
  name: string,
  names: readonly string[],
): RtlError {
  const shown = names
    .slice(0, MAX_LISTED_COLUMNS)
    .map((n) => JSON.stringify(n))
    .join(', ');
  const more =
    names.length > MAX_LISTED_COLUMNS
      ? ` and ${String(names.length - MAX_LISTED_COLUMNS)} more`
      : '';
  return paramError(
    where,
    param,
    `column ${JSON.stringify(name)} is not in the table; columns: ${names.length === 0 ? '(none)' : shown + more}`,
    { expected: 'a column of the table', got: JSON.stringify(name), columns: [...names] },
  );
}

function mismatch(where: ParamWhere, path: string, expected: string, got: unknown): RtlError {
  const shown = describeValue(got);
  const problem =
    got === undefined ? `missing; expected ${expected}` : `expected ${expected}, got ${shown}`;
  return paramError(where, path, problem, { expected, got: shown });
}

function keyPath(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v))
    return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function make<T>(
  expected: string,
  doc: Omit<ParamDoc, 'expected'>,
  check: (value: unknown, where: ParamWhere, path: string) => T,
  accepts?: (value: unknown) => boolean,
): Schema<T> {
  return {
    expected,
    optional: false,
    parse: (value, where, path = '') => check(value, where, path),
    describe: () => ({ ...doc, expected }),
    ...(accepts === undefined ? {} : { accepts }),
  };
}

export interface NumberOptions {
  readonly min?: number;
  readonly max?: number;
  readonly integer?: boolean;
  /** Reject NaN and the infinities (default true). */
  readonly finite?: boolean;
}

function number(opts: NumberOptions = {}): Schema<number> {
  const { min, max, integer = false, finite = true } = opts;
  let expected = integer ? 'an integer' : finite ? 'a number' : 'a number (or NaN, Infinity)';
  if (min !== undefined && max !== undefined) expected += ` from ${min} to ${max}`;
  else if (min !== undefined) expected += ` >= ${min}`;
  else if (max !== undefined) expected += ` <= ${max}`;
  const accepts = (v: unknown): v is number =>
    typeof v === 'number' &&
    (!finite || Number.isFinite(v)) &&
    (!integer || Number.isSafeInteger(v)) &&
    (min === undefined || v >= min) &&
    (max === undefined || v <= max);
  return make(
    expected,
    { type: integer ? 'integer' : 'number', min, max },
    (v, where, path) => {
      if (!accepts(v)) throw mismatch(where, path, expected, v);
      return v;
    },
    accepts,
  );
}

export interface StringOptions {
  readonly minLength?: number;
  readonly maxLength?: number;
}

function string(opts: StringOptions = {}): Schema<string> {
  const { minLength = 0, maxLength = Infinity } = opts;
  const expected = minLength > 0 ? 'a non-empty string' : 'a string';
  const accepts = (v: unknown): v is string =>
    typeof v === 'string' && v.length >= minLength && v.length <= maxLength;
  return make(
    expected,
    { type: 'string', min: minLength || undefined },
    (v, where, path) => {
      if (!accepts(v)) throw mismatch(where, path, expected, v);
      return v;
    },
    accepts,
  );
}

/** The name of a column of the input table (checked against the table when the task runs). */
function column(): Schema<string> {
  const expected = 'a column name';
  const accepts = (v: unknown): v is string => typeof v === 'string' && v !== '';
  return make(
    expected,
    { type: 'column' },
    (v, where, path) => {
      if (!accepts(v)) throw mismatch(where, path, expected, v);
      return v;
    },
    accepts,
  );
}

function boolean(): Schema<boolean> {
  return make('true or false', { type: 'boolean' }, (v, where, path) => {
    if (typeof v !== 'boolean') throw mismatch(where, path, 'true or false', v);
    return v;
  });
}

/** One of a fixed set of strings or numbers. */
function oneOf<const V extends readonly (string | number)[]>(values: V): Schema<V[number]> {
  const expected = `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`;
  return make(expected, { type: 'enum', values }, (v, where, path) => {
    if ((typeof v === 'string' || typeof v === 'number') && values.includes(v)) return v;
    const near = typeof v === 'string' ? closest(v, values.map(String)) : undefined;
    if (near === undefined) throw mismatch(where, path, expected, v);
    const got = describeValue(v);
    throw paramError(where, path, `expected ${expected}, got ${got}; did you mean "${near}"?`, {
      expected,
      got,
    });
  });
}

export interface ArrayOptions {
  readonly min?: number;
  readonly max?: number;
}

function array<T>(item: Schema<T>, opts: ArrayOptions = {}): Schema<T[]> {
  const { min = 0, max = Infinity } = opts;
  let expected = `a list of ${item.expected}`;
  if (min > 0) expected = `a list of at least ${min} (each ${item.expected})`;
  return make(
    expected,
    {
      type: 'array',
      items: item.describe(),
      min: min || undefined,
      max: Number.isFinite(max) ? max : undefined,
    },
    (v, where, path) => {
      if (!Array.isArray(v)) throw mismatch(where, path, expected, v);
      if (v.length < min)
        throw paramError(
          where,
          path,
          `expected at least ${min} item${min === 1 ? '' : 's'}, got ${v.length}`,
          {
            expected,
            got: describeValue(v),
          },
        );
      if (v.length > max)
        throw paramError(where, path, `expected at most ${max} items, got ${v.length}`, {
          expected,
          got: describeValue(v),
        });
      const out = new Array<T>(v.length);
      for (let i = 0; i < v.length; i++) out[i] = item.parse(v[i], where, `${path}[${i}]`);
      return out;
    },
  );
}

/** An object with exactly these keys (absent optional keys allowed, unknown keys rejected). */
function object<S extends Shape>(shape: S): Schema<ObjectOf<S>> {
  const keys = Object.keys(shape);
  const expected =
    keys.length === 0
      ? 'no parameters ({})'
      : `an object with ${keys.map((k) => `"${k}"`).join(', ')}`;
  const fields: Record<string, ParamDoc> = {};
  for (const k of keys) fields[k] = (shape[k] as Schema<unknown>).describe();
  return make(expected, { type: 'object', fields }, (v, where, path) => {
    if (!isPlainObject(v)) throw mismatch(where, path, expected, v);
    for (const k of Object.keys(v)) {
      if (Object.hasOwn(shape, k)) continue;
      const near = closest(k, keys);
      const hint =
        keys.length === 0
          ? `; task "${where.task}" takes no parameters`
          : `${near === undefined ? '' : `; did you mean "${near}"?`} Parameters are ${keys.join(', ')}`;
      throw paramError(where, keyPath(path, k), `unknown parameter "${k}"${hint}`, { known: keys });
    }
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      const s = shape[k] as Schema<unknown>;
      const raw = v[k];
      if (raw === undefined && !s.optional)
        throw mismatch(where, keyPath(path, k), s.expected, raw);
      const parsed = s.parse(raw, where, keyPath(path, k));
      if (parsed !== undefined) out[k] = parsed;
    }
    return out as ObjectOf<S>;
  });
}

/**
 * The first alternative that accepts the value. When every alternative fails and one of them
 * failed deeper inside the value (say at `x.y` of an object), that more precise error wins.
 */
function or<const A extends readonly Schema<unknown>[]>(...alts: A): Schema<Infer<A[number]>> {
  const expected = alts.map((a) => a.expected).join(' or ');
  return make(expected, { type: 'or', anyOf: alts.map((a) => a.describe()) }, (v, where, path) => {
    // Fast path: a leaf alternative that accepts the value, without building errors.
    for (const alt of alts)
      if (alt.accepts?.(v) === true) return alt.parse(v, where, path) as Infer<A[number]>;
    let deeper: RtlError | undefined;
    for (const alt of alts) {
      try {
        return alt.parse(v, where, path) as Infer<A[number]>;
      } catch (err) {
        if (!(err instanceof RtlError) || err.code !== 'RTL_ERR_BAD_PARAM') throw err;
        if (deeper === undefined && err.detail.param !== path) deeper = err;
      }
    }
    throw deeper ?? mismatch(where, path, expected, v);
  });
}

/** Any value, unchecked (for tasks whose parameters cannot be described ahead). */
function unknown(): Schema<unknown> {
  return make('any value', { type: 'unknown' }, (v) => v);
}

/** May be absent; with a default, an absent value parses to the default. */
function optional<T>(schema: Schema<T>): Schema<T | undefined>;
function optional<T>(schema: Schema<T>, defaultValue: T): Schema<T>;
function optional<T>(schema: Schema<T>, ...dflt: [] | [T]): Schema<T | undefined> {
  const hasDefault = dflt.length > 0;
  const value = dflt[0];
  return {
    expected: schema.expected,
    optional: true,
    parse: (v, where, path = '') => (v === undefined ? value : schema.parse(v, where, path)),
    describe: () => ({
      ...schema.describe(),
      optional: true,
      ...(hasDefault ? { default: value } : {}),
    }),
  };
}

/** The schema combinators. */
export const p = {
  number,
  string,
  column,
  boolean,
  oneOf,
  array,
  object,
  or,
  optional,
  unknown,
} as const;
