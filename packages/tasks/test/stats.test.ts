import { describe, expect, it } from 'vitest';
import type { Table } from 'apache-arrow';
import { RtlError, decodeTable, encodeTable, parseDocument } from '@rtl/core';
import {
  PLOT_METADATA_KEY,
  REGRESSION_METADATA_PREFIX,
  createBundledRegistry,
  plot,
  plotsOf,
  withMetadata,
} from '@rtl/tasks';
import type { PlotDescription, StageCall } from '@rtl/tasks';
import { ROWS, cellsOf, firstMismatch, thrown } from './helpers.js';
import { firstFar, numbers, run, source, table } from './stats-helpers.js';

const tasks = createBundledRegistry();

describe('names', () => {
  it.each([
    ['histogram', 'histogram'],
    ['task_histogram', 'histogram'],
    ['normalize', 'normalize'],
    ['task_normalize', 'normalize'],
    ['regression', 'regression'],
    ['task_regression', 'regression'],
    ['plot', 'plot'],
    ['task_plot', 'plot'],
    ['simplePlot', 'plot'],
    ['simple_plot', 'plot'],
    ['task_simple_plot', 'plot'],
    ['task_simplePlot', 'plot'],
  ])('%s resolves to %s', (spelling, name) => {
    expect(tasks.resolve(spelling)?.name).toBe(name);
    expect(tasks.get(spelling)?.name).toBe(name);
  });

  it('lists the four tasks as bundled, with plot aliased simplePlot', () => {
    const list = tasks.list();
    for (const name of ['histogram', 'normalize', 'regression', 'plot'])
      expect(list.find((t) => t.name === name)).toMatchObject({ kind: 'table', origin: 'bundled' });
    expect(list.find((t) => t.name === 'plot')?.aliases).toEqual(['simplePlot']);
  });
});

/** What parseDocument throws for a one-task document. */
function docError(stage: string, task: string, params: unknown): RtlError {
  const err = thrown(() => parseDocument({ [stage]: { tasks: { [task]: params } } }, tasks));
  expect(err).toBeInstanceOf(RtlError);
  return err as RtlError;
}

const op = { a: 'i32', bins: 10, column: 'h' };
const rop = { x: 'i16', y: 'g64', model: 'Linear', column: 'fit' };

describe('parameter errors name stage, task and parameter', () => {
  it.each([
    ['task_histogram', {}, 'operations', /missing; expected a list of at least 1/],
    ['task_histogram', { operations: [] }, 'operations', /at least 1 item/],
    [
      'task_histogram',
      { operations: [{ ...op, bins: 0 }] },
      'operations[0].bins',
      /integer from 1 to 1000000, got 0/,
    ],
    ['task_histogram', { operations: [{ ...op, bins: 2.5 }] }, 'operations[0].bins', /got 2.5/],
    ['task_histogram', { operations: [{ ...op, bins: 'ten' }] }, 'operations[0].bins', /got "ten"/],
    ['histogram', { operations: [{ ...op, bins: 2e6 }] }, 'operations[0].bins', /got 2000000/],
    [
      'histogram',
      { operations: [{ bins: 3, column: 'h' }] },
      'operations[0].a',
      /missing; expected a column name/,
    ],
    [
      'histogram',
      { operations: [{ ...op, column: '' }] },
      'operations[0].column',
      /non-empty string/,
    ],
    [
      'histogram',
      { operations: [{ ...op, bin: 3 }] },
      'operations[0].bin',
      /unknown parameter "bin"; did you mean "bins"/,
    ],
    ['histogram', { operations: [op], mode: 'tabel' }, 'mode', /did you mean "table"/],
    [
      'histogram',
      { operations: [op, op], mode: 'table' },
      'operations',
      /mode "table" returns one bin table, so it takes exactly 1 operation; got 2/,
    ],
    [
      'task_normalize',
      { columns: ['i32'] },
      'model',
      /missing; expected one of "Squash", "PercentOfMax", "DistanceFromMean"/,
    ],
    ['task_normalize', { model: 'squash', columns: ['i32'] }, 'model', /did you mean "Squash"/],
    ['task_normalize', { model: 'Squash', columns: [] }, 'columns', /at least 1 item/],
    [
      'task_normalize',
      { model: 'Squash', columns: ['i32', 3] },
      'columns[1]',
      /expected a column name, got 3/,
    ],
    ['task_normalize', { model: 'Squash', columns: 'i32' }, 'columns', /expected a list/],
    [
      'normalize',
      { model: 'Squash', columns: ['i32'], weight: 'x' },
      'weight',
      /expected a number/,
    ],
    [
      'normalize',
      { model: 'Squash', columns: ['i32'], column: 'x' },
      'column',
      /unknown parameter "column"; did you mean "columns"/,
    ],
    [
      'task_regression',
      { operations: [{ ...rop, model: 'Poly' }] },
      'operations[0].d',
      /model "Poly" needs the degree d/,
    ],
    [
      'task_regression',
      { operations: [{ ...rop, model: 'Poly', d: 0 }] },
      'operations[0].d',
      /integer from 1 to 20, got 0/,
    ],
    [
      'task_regression',
      { operations: [{ ...rop, model: 'Poly', d: 21 }] },
      'operations[0].d',
      /got 21/,
    ],
    [
      'task_regression',
      { operations: [{ ...rop, model: 'Poly', d: 2.5 }] },
      'operations[0].d',
      /got 2.5/,
    ],
    [
      'task_regression',
      { operations: [rop, { ...rop, d: 2 }] },
      'operations[1].d',
      /model "Linear" fits degree 1, got d = 2/,
    ],
    [
      'regression',
      { operations: [{ ...rop, model: 'Quadratic' }] },
      'operations[0].model',
      /expected one of "Linear", "Poly"/,
    ],
    ['regression', { operations: [{ ...rop, y: undefined }] }, 'operations[0].y', /missing/],
    [
      'regression',
      { operations: [{ ...rop, column: undefined }] },
      'operations[0].column',
      /missing/,
    ],
    [
      'regression',
      { operations: [{ ...rop, space: 'log' }] },
      'operations[0].space',
      /unknown parameter "space"/,
    ],
    [
      'task_simple_plot',
      { kind: 'bar', y: 'i32' },
      'kind',
      /expected one of "line", "scatter", "histogram", got "bar"/,
    ],
    ['task_simple_plot', { kind: 'line' }, 'y', /missing; expected a column name/],
    ['simplePlot', { kind: 'line', y: 'i32', x: 3 }, 'x', /expected a column name, got 3/],
    ['simple_plot', { kind: 'line', y: 'i32', title: 5 }, 'title', /expected a string, got 5/],
    ['plot', { kind: 'scatter', y: 'i32', xlabel: null }, 'xlabel', /expected a string, got null/],
    ['plot', { kind: 'scatter', y: 'i32', series: 'x' }, 'series', /unknown parameter "series"/],
  ])('%s %j: %s', (task, params, param, problem) => {
    const err = docError('7', task, params);
    expect(err).toMatchObject({ code: 'RTL_ERR_BAD_PARAM', detail: { stage: '7', task, param } });
    expect(err.message.startsWith(`stage "7", task "${task}", param "${param}": `)).toBe(true);
    expect(err.message).toMatch(problem);
  });
});

async function stage(t: Table, calls: StageCall[], key = '3'): Promise<Table> {
  return (await tasks.runStage(t, calls, { stage: key })).table;
}

describe('run-time errors name stage, task and parameter', () => {
  it.each([
    [
      'task_histogram',
      { operations: [{ a: 'nope', bins: 3, column: 'h' }] },
      'operations[0].a',
      /column "nope" is not in the table; columns: "f64"/,
    ],
    [
      'task_histogram',
      { operations: [op, { a: 'name', bins: 3, column: 'h' }] },
      'operations[1].a',
      /column "name" is Utf8, expected a numeric column/,
    ],
    [
      'task_normalize',
      { model: 'Squash', columns: ['i32', 'nope'] },
      'columns[1]',
      /column "nope" is not in the table/,
    ],
    [
      'task_regression',
      { operations: [{ ...rop, y: 'flag' }] },
      'operations[0].y',
      /column "flag" is Bool, expected a numeric column/,
    ],
    [
      'task_regression',
      { operations: [{ ...rop, x: 'nope' }] },
      'operations[0].x',
      /column "nope" is not in the table/,
    ],
    ['task_simple_plot', { kind: 'line', y: 'nope' }, 'y', /column "nope" is not in the table/],
    [
      'task_simple_plot',
      { kind: 'line', y: 'tag' },
      'y',
      /column "tag" is Dictionary.*expected a numeric column/,
    ],
    [
      'simplePlot',
      { kind: 'line', x: 'nope', y: 'i32' },
      'x',
      /column "nope" is not in the table; columns: "f64", "f32"/,
    ],
  ])('%s %j: %s', async (task, params, param, problem) => {
    const p = stage(table, [{ task, params }], '5');
    await expect(p).rejects.toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      detail: { stage: '5', task, param },
    });
    await expect(p).rejects.toThrow(problem);
    await expect(p).rejects.toThrow(`stage "5", task "${task}", param "${param}": `);
  });
});

describe('plot', () => {
  it('passes the table through with its buffers and adds one description', async () => {
    const out = await run(plot, table, { kind: 'scatter', x: 'i16', y: 'g64', title: 'g over i' });
    expect(out.numRows).toBe(ROWS);
    expect(out.batches.length).toBe(table.batches.length);
    out.batches.forEach((b, i) =>
      b.data.children.forEach((c, k) => expect(c).toBe(table.batches[i]?.data.children[k])),
    );
    expect(out.schema.fields).toEqual(table.schema.fields);
    const want: PlotDescription = {
      kind: 'scatter',
      x: 'i16',
      y: 'g64',
      title: 'g over i',
      xlabel: 'i16',
      ylabel: 'g64',
    };
    expect(plotsOf(out)).toEqual([want]);
    expect(JSON.parse(out.schema.metadata.get(PLOT_METADATA_KEY) as string)).toEqual([want]);
    // The input table is left as it was.
    expect(table.schema.metadata.has(PLOT_METADATA_KEY)).toBe(false);
    expect(plotsOf(table)).toEqual([]);
  });

  it('adds a plot per task in a stage, after metadata already there', async () => {
    const before = withMetadata(table, { source: 'sensor 4' });
    const out = await stage(before, [
      { task: 'task_simple_plot', params: { kind: 'line', y: 'i32' } },
      { task: 'simplePlot', params: { kind: 'histogram', y: 'u8', xlabel: 'u', ylabel: 'n' } },
      { task: 'plot', params: { kind: 'scatter', x: 'name', y: 'f32', title: 'by name' } },
    ]);
    expect(plotsOf(out)).toEqual([
      { kind: 'line', y: 'i32', xlabel: 'row', ylabel: 'i32' },
      { kind: 'histogram', y: 'u8', xlabel: 'u', ylabel: 'n' },
      { kind: 'scatter', x: 'name', y: 'f32', title: 'by name', xlabel: 'name', ylabel: 'f32' },
    ]);
    expect(out.schema.metadata.get('source')).toBe('sensor 4');
  });

  it('refuses a table whose rtl.plot metadata is not a list', async () => {
    const bad = withMetadata(table, { [PLOT_METADATA_KEY]: '{"kind":"line"}' });
    const p = stage(bad, [{ task: 'plot', params: { kind: 'line', y: 'i32' } }], '2');
    await expect(p).rejects.toMatchObject({
      code: 'RTL_ERR_BAD_DATA',
      detail: { stage: '2', task: 'plot' },
    });
    await expect(p).rejects.toThrow(/schema metadata "rtl.plot" is not a JSON list of plots/);
  });
});

describe('a raspi-rtl style document', () => {
  const doc = {
    '0': {
      tasks: {
        task_histogram: { operations: [{ a: 'g64', bins: 16, column: 'g64Bin' }] },
        task_normalize: { model: 'DistanceFromMean', columns: ['i16', 'g64'], weight: 2 },
        task_regression: {
          operations: [{ x: 'i16', y: 'g64', model: 'Poly', d: 2, column: 'g64Fit' }],
        },
        task_simple_plot: { kind: 'scatter', x: 'i16', y: 'g64Fit', title: 'fit' },
      },
    },
    '1': {
      tasks: {
        task_histogram: { mode: 'table', operations: [{ a: 'g64Fit', bins: 5, column: 'c' }] },
        simple_plot: { kind: 'histogram', x: 'upper', y: 'count' },
      },
    },
  };

  it('parses with the bundled registry and runs stage by stage', async () => {
    const job = parseDocument(doc, tasks);
    expect(job.stages.map((s) => s.tasks.map((t) => t.task))).toEqual([
      ['histogram', 'normalize', 'regression', 'plot'],
      ['histogram', 'plot'],
    ]);
    const [s0, s1] = job.stages;
    const mid = await stage(table, [...(s0?.tasks ?? [])], '0');
    expect(mid.schema.fields.map((f) => f.name).slice(-4)).toEqual([
      'g64Bin',
      'i16Normal',
      'g64Normal',
      'g64Fit',
    ]);
    // The normalized column against the formula, computed here.
    const g = numbers(source('g64')).filter((v): v is number => v !== null);
    const mean = g.reduce((s, v) => s + v, 0) / g.length;
    const std = Math.sqrt(g.reduce((s, v) => s + (v - mean) ** 2, 0) / g.length);
    const want = numbers(source('g64')).map((v) => (v === null ? null : ((v - mean) / std) * 2));
    expect(firstFar(cellsOf(mid, 'g64Normal'), want, 1e-9)).toBeUndefined();
    expect(
      JSON.parse(mid.schema.metadata.get(`${REGRESSION_METADATA_PREFIX}g64Fit`) ?? ''),
    ).toMatchObject({
      model: 'Poly',
      degree: 2,
    });
    expect(plotsOf(mid)).toHaveLength(1);

    const last = await stage(mid, [...(s1?.tasks ?? [])], '1');
    expect(last.schema.fields.map((f) => f.name)).toEqual(['lower', 'upper', 'count']);
    expect((cellsOf(last, 'count') as number[]).reduce((s, c) => s + c, 0)).toBe(
      cellsOf(mid, 'g64Fit').filter((v) => v !== null).length,
    );
    // The bin table starts without the input's metadata; its own plot is the only one.
    expect(plotsOf(last)).toEqual([
      { kind: 'histogram', x: 'upper', y: 'count', xlabel: 'upper', ylabel: 'count' },
    ]);
  });

  it('keeps every result and all metadata through encodeTable / decodeTable', async () => {
    const job = parseDocument(doc, tasks);
    const out = await stage(table, [...(job.stages[0]?.tasks ?? [])], '0');
    for (const chunked of [true, false]) {
      const back = decodeTable(encodeTable(out, { chunked }));
      expect(new Map(back.schema.metadata)).toEqual(new Map(out.schema.metadata));
      expect(plotsOf(back)).toEqual(plotsOf(out));
      expect(back.numRows).toBe(ROWS);
      for (const name of ['g64Bin', 'i16Normal', 'g64Fit', 'i32'])
        expect(firstMismatch(cellsOf(back, name), cellsOf(out, name)), name).toBeUndefined();
    }
  });
});
