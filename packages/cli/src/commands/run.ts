/** `rtl run <doc.json>`: run a transform on the relay and print the result and timings. */
import type { Table } from 'apache-arrow';
import { RtlError, toTable, type StageTiming } from '@rtl/core';
import { Client } from '@rtl/client';
import { STATUS_TIMEOUT_MS, fetchStatus, relayClient } from '../cluster-status.js';
import { CliError, boolFlag, stringFlag, type Command, type CommandContext } from '../command.js';
import { formatCell, formatMs, plural, renderTable, toJsonValue } from '../format.js';
import { readDataFile, readRunInput } from '../input.js';
import { timeoutFlag } from './status.js';

export const DEFAULT_PREVIEW_ROWS = 10;

function rowsFlag(ctx: CommandContext): number | undefined {
  const raw = stringFlag(ctx, 'rows');
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new CliError(`--rows ${raw}: expected a whole number >= 0`, { exitCode: 2 });
  return n;
}

/** The rows `[0, count)` of a table as arrays of cell values, in schema order. */
function tableRows(table: Table, count: number): { names: string[]; rows: unknown[][] } {
  const names = table.schema.fields.map((f) => f.name);
  const columns = names.map((_, i) => table.getChildAt(i));
  const rows: unknown[][] = [];
  const n = Math.min(count, table.numRows);
  for (let r = 0; r < n; r++)
    rows.push(columns.map((c) => (c === null ? null : (c.get(r) as unknown))));
  return { names, rows };
}

/** `Stage 0 on tasknode-1: 1.20 ms` and, under it, `Completed: 0.40 ms add` per task. */
export function timingLines(stages: readonly StageTiming[]): string[] {
  const lines: string[] = [];
  for (const s of stages) {
    lines.push(`Stage ${s.stage} on ${s.node}: ${formatMs(s.ms)}`);
    for (const t of s.tasks) lines.push(`  Completed: ${formatMs(t.ms)} ${t.task}`);
  }
  return lines;
}

function printPreview(table: Table, limit: number): void {
  const { names, rows } = tableRows(table, limit);
  const cells = rows.map((r) => r.map(formatCell));
  const right = names
    .map((_, i) => i)
    .filter((i) =>
      rows.every((r) => typeof r[i] === 'number' || typeof r[i] === 'bigint' || r[i] === null),
    );
  if (names.length > 0) for (const line of renderTable(names, cells, { right })) console.log(line);
  const more = table.numRows - rows.length;
  const shape = `${plural(table.numRows, 'row')}, ${plural(names.length, 'column')}`;
  console.log(
    more > 0 ? `... ${plural(more, 'more row')} (${shape}; --rows N shows more)` : `(${shape})`,
  );
}

function inputData(ctx: CommandContext, fromEnvelope: unknown, docFile: string): Table | undefined {
  const dataFile = stringFlag(ctx, 'data');
  const source = dataFile ?? docFile;
  const data = dataFile === undefined ? fromEnvelope : readDataFile(dataFile);
  if (data === undefined) return undefined;
  try {
    return toTable(data);
  } catch (err) {
    if (err instanceof RtlError) throw new CliError(`${source}: ${err.code}: ${err.message}`);
    throw err;
  }
}

export const run: Command = {
  name: 'run',
  summary: 'Run a transform document and print the result table and timings',
  usage: 'rtl run <doc.json> [--data file] [--timeout ms] [--rows N] [--json] [--debug]',
  description: [
    'The file holds a transform document (DSDSL), e.g. { "0": { "tasks": { "task_add": { ... } } } }, or an envelope { "transform": { ...document... }, "data": { "x": [1, 2], "y": [3, 4] } }.',
    '--data gives the input table instead: a .json file (an object of columns, or an array of row objects) or an Arrow IPC file (.arrow, .feather, .arrows).',
    "Prints the first rows of the result, its size, and per stage the tasknode that ran it with each task's time. On failure prints the error code and message (which stage, task and parameter), and exits 1; --debug adds the remote stack.",
  ],
  flags: [
    {
      name: 'data',
      value: 'file',
      doc: 'Input table: .json columns or rows, or Arrow IPC (.arrow, .feather)',
    },
    {
      name: 'timeout',
      value: 'ms',
      doc: 'How long to wait for the result (default RESPONSE_TIME, 60000)',
    },
    {
      name: 'rows',
      value: 'N',
      doc: `Rows to print (default ${String(DEFAULT_PREVIEW_ROWS)}; with --json, all)`,
    },
    { name: 'json', doc: 'Print { columns, rows, numRows, stages } as JSON' },
  ],
  examples: [
    'rtl run examples/quickstart.json',
    'rtl run doc.json --data points.arrow --rows 20',
    'rtl run examples/quickstart.json --json',
  ],
  args: { min: 1, max: 1 },
  async run(ctx: CommandContext): Promise<number> {
    const file = ctx.args[0] ?? '';
    const input = readRunInput(file);
    const data = inputData(ctx, input.data, file);
    const limit = rowsFlag(ctx);
    const timeoutMs = timeoutFlag(ctx, ctx.config.RESPONSE_TIME);
    const { config } = ctx;
    const client = new Client({
      ...relayClient(config),
      timeoutMs,
      store: config.CACHE_PATH,
      storeMapSize: config.CACHE_MAP_SIZE,
      refBytes: config.CHUNKING_SIZE,
      chunked: config.CHUNKING,
      maxMessageBytes: config.MAX_MESSAGE_BYTES,
    });
    try {
      // Fail at once (not after RESPONSE_TIME) when nothing runs.
      await fetchStatus(client, config, Math.min(STATUS_TIMEOUT_MS, timeoutMs));
      const job = client.execute(input.doc, { data, timeoutMs });
      const table = await job.result();
      if (boolFlag(ctx, 'json')) {
        const { names, rows } = tableRows(table, limit ?? table.numRows);
        const objects = rows.map((r) =>
          Object.fromEntries(names.map((n, i) => [n, toJsonValue(r[i])])),
        );
        const out = { columns: names, rows: objects, numRows: table.numRows, stages: job.stages };
        console.log(JSON.stringify(out, null, 2));
        return 0;
      }
      printPreview(table, limit ?? DEFAULT_PREVIEW_ROWS);
      for (const line of timingLines(job.stages)) console.log(line);
      return 0;
    } finally {
      await client.close();
    }
  },
};
