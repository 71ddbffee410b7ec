/**
 * docs/tasks.md, generated: every bundled task with its spellings, its parameters (rendered
 * from the task's own schema), what it computes, and an example whose output is produced by
 * running the example through the registry, so the page cannot drift from the code.
 *
 * `scripts/gen-docs.mjs` writes the file; a test checks that it matches `renderTasksDoc()`.
 */
import type { Table } from 'apache-arrow';
import { toTable } from '@rtl/core';
import type { TableTaskDef } from './define.js';
import { spellingsOf } from './names.js';
import type { TaskRegistry } from './registry.js';
import type { ParamDoc } from './schema.js';

/** What the schema cannot say: the formula and an example to run. */
export interface TaskDocEntry {
  /** What the task computes, as a formula or a precise sentence (Markdown). */
  readonly computes: string;
  /** Example parameters (the task's entry in a document). */
  readonly params: Record<string, unknown>;
  /** Example input columns; `null` is a null value. */
  readonly input: Record<string, readonly (number | string | null)[]>;
  /** Further notes (Markdown). */
  readonly notes?: string;
  /** false: show the example document only (the task reads or writes files). Default true. */
  readonly run?: boolean;
}

const ops = (o: Record<string, unknown>): Record<string, unknown> => ({ operations: [o] });
const XY = { x: [1, 4, null, -2], y: [2, 0.5, 3, 8] };

/** Entries for the bundled tasks; a task without one is listed with its parameters only. */
export const TASK_DOCS: Readonly<Record<string, TaskDocEntry>> = {
  null: {
    computes: 'The input table, unchanged.',
    params: {},
    input: { x: [1, 2, 3] },
  },
  add: {
    computes: '`column = a + b` on every row (`b` a column or a number); Float64.',
    params: ops({ a: 'x', b: 'y', column: 's' }),
    input: XY,
  },
  subtract: {
    computes: '`column = a - b` on every row; Float64.',
    params: ops({ a: 'x', b: 'y', column: 'd' }),
    input: XY,
  },
  multiply: {
    computes: '`column = a × b` on every row; Float64.',
    params: ops({ a: 'x', b: 10, column: 'm' }),
    input: XY,
  },
  divide: {
    computes:
      '`column = a / b` on every row (IEEE division: `x / 0` is ±Infinity or NaN); Float64.',
    params: ops({ a: 'x', b: 'y', column: 'q' }),
    input: XY,
  },
  power: {
    computes: '`column = a ** b` on every row; Float64.',
    params: ops({ a: 'y', b: 2, column: 'p' }),
    input: XY,
  },
  squareRoot: {
    computes: '`column = √a` on every row (NaN for a negative `a`); Float64.',
    params: ops({ a: 'y', column: 'r' }),
    input: XY,
  },
  log: {
    computes:
      '`column = ln(a)` (natural log) on every row (NaN for a negative `a`, -Infinity for 0); Float64.',
    params: ops({ a: 'y', column: 'l' }),
    input: XY,
  },
  average: {
    computes: '`column = (Σ a) / n` over the non-null values of `a`, on every row; Float64.',
    params: ops({ a: 'x', column: 'mean' }),
    input: XY,
  },
  aggregate: {
    computes:
      '`column = (c1 + c2 + … + ck) / k` over the listed columns, row by row (a column listed twice counts once); Float64. Same as `crossAverage`.',
    params: { operations: [{ columns: ['x', 'y'], column: 'mean' }] },
    input: XY,
  },
  crossAverage: {
    computes: '`column = (c1 + c2 + … + ck) / k` over the listed columns, row by row; Float64.',
    params: { operations: [{ columns: ['x', 'y'], column: 'mean' }] },
    input: XY,
  },
  crossMax: {
    computes: '`column = max(c1, …, ck)` over the listed columns, row by row; Float64.',
    params: { operations: [{ columns: ['x', 'y'], column: 'top' }] },
    input: XY,
  },
  classifyStatic: {
    computes:
      "Adds `<column>Class`: the index (from 0, in order of first appearance) of the row's combination of values of the `a` columns, and `<column>ClassCount`: how many rows share that combination (both Int32). A null is a value of its own.",
    params: { operations: [{ a: ['x', 'y'], column: 'k' }] },
    input: { x: [1, 2, 1, null, 2], y: [0, 0, 0, 0, 1] },
  },
  columnSpace: {
    computes:
      "Adds `<column>Space` with n = the row count: `linear` n evenly spaced values from min to max (numpy linspace), `log` n values evenly spaced in log10 from min to max (numpy geomspace; min must be > 0), `sorted` the column's values ascending (NaN, then nulls, last).",
    params: { column: 'x', space: 'linear' },
    input: { x: [4, 1, 3, 2, 5] },
  },
  unique: {
    computes:
      'One row per distinct value of `a`, in order of first appearance, with `<a>Count` (Int32) the number of rows holding it; a null gets one row.',
    params: { a: 'x' },
    input: { x: [3, 1, 3, null, 1, 3] },
  },
  sort: {
    computes:
      'Every row, stably sorted by `column` (ascending, or descending with `descending: true`); NaN rows, then null rows, last in both directions.',
    params: { column: 'x', descending: true },
    input: { x: [2, null, 5, 2, -1], y: [1, 2, 3, 4, 5] },
  },
  histogram: {
    computes:
      'Equal-width bins over the finite values of `a`: `w = (max − min) / bins`, `edge[k] = min + k·w` (the last edge is `max`); bin k holds `edge[k] ≤ v < edge[k+1]`, and `max` goes in the last bin. Mode `rows` (default): each row gets the upper edge of its bin (NaN for NaN or ±Infinity). Mode `table`: the result is the bin table instead, columns `lower`, `upper`, `count`, one row per bin (one operation only).',
    params: { operations: [{ a: 'x', bins: 2, column: 'bin' }] },
    input: { x: [0, 1, 2, 3, null, 4] },
  },
  normalize: {
    computes:
      'Adds `<col>Normal` for each listed column, statistics over its non-null values (population std): `Squash` clips `v` to `2·mean`, then `(v − lo) / (hi − lo) · 100` with `lo`, `hi` the min and max after clipping; `PercentOfMax` `v / max · 100`; `DistanceFromMean` `(v − mean) / std`. Each is multiplied by `weight` (default 1). A degenerate denominator (`hi = lo`, `max = 0`, `std = 0`) gives 0.',
    params: { model: 'PercentOfMax', columns: ['x'], weight: 1 },
    input: { x: [1, 2, null, 4] },
  },
  regression: {
    computes:
      'Least-squares polynomial fit of `y` on `x` over the rows where both are finite (degree 1 for `Linear`, `d` for `Poly`; Householder QR on a centred, scaled basis), adding the predicted `column` (null where `x` is null). The coefficients `[c0, c1, …]` (c0 the constant term) are in the schema metadata `rtl.regression.<column>` as JSON `{ model, degree, x, y, rows, coefficients }`.',
    params: { operations: [{ x: 'x', y: 'y', model: 'Linear', column: 'fit' }] },
    input: { x: [0, 1, 2, 3], y: [1, 3, 5, 7] },
  },
  plot: {
    computes:
      'The data passes through unchanged; a plot description `{ kind, x, y, title, xlabel, ylabel }` is appended to the JSON list in the schema metadata `rtl.plot`, for the plotnode to draw. `xlabel` defaults to `x` (or "row"), `ylabel` to `y`.',
    params: { kind: 'line', x: 'x', y: 'y', title: 'y over x' },
    input: { x: [0, 1, 2], y: [1, 4, 9] },
  },
  open: {
    computes:
      "Replaces the stage's table with the file `<path>/<filename>.<extension>`: `dat` raw little-endian records described by the numpy dtype in `<filename>.meta` beside it (e.g. `[('x', '<f8'), ('y', '<i8')]`), `npy` NumPy's format (plain or structured dtypes), `csv` with a header row (`delimiter`, default `,`; numeric columns become Float64, an empty field null), `arrow` / `feather` the Arrow IPC file format. Errors name the file and the byte offset or line.",
    params: { filename: 'samples', path: 'raw_data', extension: 'dat' },
    input: {},
    run: false,
  },
  write: {
    computes:
      "Writes the stage's table to `<path>/<filename>.<extension>` (the name exactly as given; the directory is created) in the same formats as `open`, and passes the table on unchanged.",
    params: { filename: 'result', path: 'out', extension: 'csv' },
    input: {},
    run: false,
  },
  filter: {
    computes:
      'Keeps the rows where every operation holds: `column <method> value`, with `eq` =, `ne` ≠, `lt` <, `gt` >, `le` ≤, `ge` ≥ (all ANDed). A null never matches.',
    params: ops({ column: 'x', value: 0, method: 'gt' }),
    input: XY,
  },
};

/** The page, for the tasks the registry holds (table tasks, in name order). */
export async function renderTasksDoc(registry: TaskRegistry): Promise<string> {
  const lines: string[] = [
    '# Tasks',
    '',
    '<!-- Generated by `npm run docs` from the task registry; edit packages/tasks/src/task-docs.ts. -->',
    '',
    'Every task of a stage runs on one tasknode, in order, over the same in-memory table. A task',
    "is named in any of its spellings: camelCase (raspi-rtl's module name), snake_case, and either",
    "with the `task_` prefix. Columns named in `a`, `b`, `columns` must exist in the stage's table",
    '(the error names the columns that do); an output `column` replaces a column of that name or',
    'is appended. A null in an input row gives null in that output row.',
    '',
  ];
  const tasks = registry
    .list()
    .filter((t) => t.kind === 'table')
    .map((t) => registry.get(t.name) as TableTaskDef);
  lines.push('| Task | Does |', '| ---- | ---- |');
  for (const t of tasks) lines.push(`| [\`${t.name}\`](#${t.name.toLowerCase()}) | ${t.summary} |`);
  lines.push('');
  for (const t of tasks) lines.push(...(await renderTask(registry, t)));
  return lines.join('\n');
}

async function renderTask(registry: TaskRegistry, t: TableTaskDef): Promise<string[]> {
  const names = [...new Set([t.name, ...t.aliases].flatMap(spellingsOf))];
  const out = [
    `## ${t.name}`,
    '',
    t.summary,
    '',
    `Spellings: ${names.map((n) => `\`${n}\``).join(', ')}.`,
    '',
    '**Parameters**',
    '',
    ...renderParams(t.params.describe()),
    '',
  ];
  const doc = TASK_DOCS[t.name];
  if (doc === undefined) return out;
  out.push('**Computes**', '', doc.computes, '');
  if (doc.notes !== undefined) out.push(doc.notes, '');
  const example = JSON.stringify({ '0': { tasks: { [`task_${snake(t.name)}`]: doc.params } } });
  if (doc.run === false) {
    out.push('**Example**', '', '```json', example, '```', '');
    return out;
  }
  const input = toTable(doc.input);
  const { table } = await registry.runStage(input, [{ task: t.name, params: doc.params }], {
    stage: '0',
  });
  out.push(
    '**Example**',
    '',
    '```json',
    example,
    '```',
    '',
    'Input:',
    '',
    ...renderTable(input),
    '',
    'Output:',
    '',
    ...renderTable(table),
    '',
  );
  return out;
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** A Markdown table of every row. */
function renderTable(table: Table): string[] {
  const names = table.schema.fields.map((f) => f.name);
  const rows: string[] = [`| ${names.join(' | ')} |`, `| ${names.map(() => '---').join(' | ')} |`];
  for (let r = 0; r < table.numRows; r++) {
    const cells = names.map((n) => cell(table.getChild(n)?.get(r)));
    rows.push(`| ${cells.join(' | ')} |`);
  }
  return rows;
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number')
    return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  if (typeof v === 'bigint') return String(v);
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function renderParams(doc: ParamDoc, path = '', depth = 0): string[] {
  if (doc.type === 'object' && doc.fields !== undefined) {
    const keys = Object.keys(doc.fields);
    if (keys.length === 0) return depth === 0 ? ['None: `{}`.'] : [];
    const rows = depth === 0 ? ['| Parameter | Expected |', '| --- | --- |'] : [];
    for (const k of keys) {
      const f = doc.fields[k] as ParamDoc;
      const name = path === '' ? k : `${path}.${k}`;
      const extra =
        f.optional === true
          ? ` (optional${f.default !== undefined ? `, default \`${JSON.stringify(f.default)}\`` : ''})`
          : '';
      rows.push(`| \`${name}\` | ${f.expected}${extra} |`);
      rows.push(...renderParams(f, name, depth + 1));
    }
    return rows;
  }
  if (doc.type === 'array' && doc.items !== undefined)
    return renderParams(doc.items, `${path}[]`, depth + 1);
  return [];
}
