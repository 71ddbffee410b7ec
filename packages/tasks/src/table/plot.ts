/**
 * plot (alias simplePlot):
 *   { kind: 'line' | 'scatter' | 'histogram', x?: column, y: column, title?, xlabel?, ylabel? }
 * The table passes through unchanged (same batches, same buffers); the plot description is
 * appended to the JSON list in the table's schema metadata under `rtl.plot` (PLOT_METADATA_KEY),
 * so several plot tasks in one stage add several plots. The plotnode draws them:
 * `line`/`scatter` draw y over x (over the row index when x is absent); `histogram` draws bars
 * of y over x when x is given (e.g. the histogram task's bin table, x "upper", y "count"),
 * else the distribution of y. `y` must be a numeric column; `x` any column of the table.
 * `xlabel` defaults to x (or "row"), `ylabel` to y.
 */
import { RecordBatch, Schema, Table } from 'apache-arrow';
import { RtlError } from '@rtl/core';
import { ColumnSet } from '../columns/column-set.js';
import { defineTableTask } from '../define.js';
import { p, paramError } from '../schema.js';
import type { Infer, ParamWhere } from '../schema.js';

/** Schema metadata key of the JSON list of plot descriptions. */
export const PLOT_METADATA_KEY = 'rtl.plot';

const PLOT_KINDS = ['line', 'scatter', 'histogram'] as const;
export type PlotKind = (typeof PLOT_KINDS)[number];

const plotParams = p.object({
  kind: p.oneOf(PLOT_KINDS),
  x: p.optional(p.column()),
  y: p.column(),
  title: p.optional(p.string()),
  xlabel: p.optional(p.string()),
  ylabel: p.optional(p.string()),
});

export type PlotParams = Infer<typeof plotParams>;

/** One entry of the `rtl.plot` list. */
export interface PlotDescription {
  readonly kind: PlotKind;
  /** Absent: the row index. */
  readonly x?: string;
  readonly y: string;
  readonly title?: string;
  readonly xlabel: string;
  readonly ylabel: string;
}

/**
 * The same table (same batches and buffers) with schema metadata entries set; the input table
 * is not changed.
 *
 * ```ts
 * const out = withMetadata(table, { 'rtl.regression.fit': JSON.stringify(fit) });
 * out.schema.metadata.get('rtl.regression.fit');
 * ```
 */
export function withMetadata(table: Table, entries: Readonly<Record<string, string>>): Table {
  const old = table.schema;
  const metadata = new Map(old.metadata);
  for (const [k, v] of Object.entries(entries)) metadata.set(k, v);
  const schema = new Schema(old.fields, metadata, old.dictionaries, old.metadataVersion);
  return new Table(
    schema,
    table.batches.map((b) => new RecordBatch(schema, b.data)),
  );
}

/** The plot descriptions a table carries (an empty list when it has none). */
export function plotsOf(table: Table, where?: ParamWhere): PlotDescription[] {
  const raw = table.schema.metadata.get(PLOT_METADATA_KEY);
  if (raw === undefined) return [];
  let list: unknown;
  try {
    list = JSON.parse(raw);
  } catch {
    list = undefined;
  }
  if (!Array.isArray(list))
    throw new RtlError(
      'RTL_ERR_BAD_DATA',
      `${where === undefined ? '' : `stage "${where.stage}", task "${where.task}": `}schema metadata "${PLOT_METADATA_KEY}" is not a JSON list of plots`,
      where === undefined ? {} : { stage: where.stage, task: where.task },
    );
  return list as PlotDescription[];
}

function listColumns(names: readonly string[]): string {
  if (names.length === 0) return '(none)';
  const shown = names.slice(0, 40).map((n) => JSON.stringify(n));
  return shown.join(', ') + (names.length > 40 ? ` and ${names.length - 40} more` : '');
}

export const plot = defineTableTask({
  name: 'plot',
  aliases: ['simplePlot'],
  summary:
    'Pass the table through and attach a plot description ({ kind: line | scatter | histogram, x, y, title, xlabel, ylabel }) to schema metadata "rtl.plot" (a JSON list) for the plotnode',
  params: plotParams,
  run(table, params, ctx) {
    const set = ColumnSet.fromTable(table);
    set.numeric(params.y, 'y', ctx);
    if (params.x !== undefined && set.indexOf(params.x) < 0)
      throw paramError(
        ctx,
        'x',
        `column ${JSON.stringify(params.x)} is not in the table; columns: ${listColumns(set.names())}`,
        { expected: 'a column of the table', got: JSON.stringify(params.x) },
      );
    const { kind, x, y, title } = params;
    const description: PlotDescription = {
      kind,
      ...(x === undefined ? {} : { x }),
      y,
      ...(title === undefined ? {} : { title }),
      xlabel: params.xlabel ?? x ?? 'row',
      ylabel: params.ylabel ?? y,
    };
    const plots = [...plotsOf(table, ctx), description];
    return withMetadata(table, { [PLOT_METADATA_KEY]: JSON.stringify(plots) });
  },
});
