/**
 * Documents as job graphs on a real relay and tasknodes: `after` stages run in parallel and
 * their tables meet side by side; `split` cuts a stage's rows into parts run on several
 * tasknodes and joined in order. Expected values come from plain loops in the test.
 */
import { describe, expect, it } from 'vitest';
import type { Table } from 'apache-arrow';
import { RtlError } from '@rtl/core';
import { world } from './helpers.js';

/** A table task `heavy`: y = sum over k < rounds of sin(x * k), a CPU-heavy per-row loop. */
const HEAVY = `import { defineTableTask, p, ColumnSet, toFloat64, float64Data, andValidity } from '@rtl/tasks';
export const heavy = defineTableTask({
  name: 'heavy',
  summary: 'y = sum of sin(x * k) for k < rounds',
  params: p.object({ a: p.column(), rounds: p.number(), column: p.string() }),
  run(table, { a, rounds, column }, ctx) {
    const set = ColumnSet.fromTable(table);
    set.setFloat64(column, set.numeric(a, 'a', ctx).map((d) => {
      const x = toFloat64(d);
      const out = new Float64Array(d.length);
      for (let i = 0; i < out.length; i++) {
        let s = 0;
        for (let k = 0; k < rounds; k++) s += Math.sin(x[i] * k);
        out[i] = s;
      }
      return float64Data(out, andValidity(d.length, [d]));
    }));
    return set.toTable();
  },
});
export const failOver = defineTableTask({
  name: 'failOver',
  summary: 'throws when a value of a is above limit',
  params: p.object({ a: p.column(), limit: p.number() }),
  run(table, { a, limit }, ctx) {
    const set = ColumnSet.fromTable(table);
    for (const d of set.numeric(a, 'a', ctx)) {
      const x = toFloat64(d);
      for (let i = 0; i < x.length; i++) if (x[i] > limit) throw new Error('value ' + x[i] + ' is over ' + limit);
    }
    return table;
  },
});
`;

function col(t: Table, name: string): Float64Array {
  const c = t.getChild(name);
  if (c === null) throw new Error(`no column ${name}`);
  return c.toArray() as Float64Array;
}

describe('after: parallel stages', () => {
  it('two stages after the same one run on two tasknodes; a stage after both gets their columns side by side', async () => {
    const w = await world(3);
    const x = Float64Array.from({ length: 1000 }, (_, i) => i - 500);
    const doc = {
      '0': { tasks: { task_add: { operations: [{ a: 'x', b: 1, column: 'x1' }] } } },
      '1': { tasks: { task_multiply: { operations: [{ a: 'x1', b: 3, column: 'm' }] } } },
      '2': { tasks: { task_add: { operations: [{ a: 'x1', b: 10, column: 'p' }] } }, after: ['0'] },
      '3': {
        tasks: { task_subtract: { operations: [{ a: 'p', b: 'm', column: 'd' }] } },
        after: ['1', '2'],
      },
    };
    const job = w.client.execute(doc, { data: { x } });
    const out = await job.result();
    expect(out.schema.fields.map((f) => f.name)).toEqual(['x', 'x1', 'm', 'p', 'd']);
    const d = col(out, 'd');
    for (let i = 0; i < x.length; i++) {
      const x1 = (x[i] as number) + 1;
      expect(d[i]).toBe(x1 + 10 - x1 * 3);
    }
    const stages = job.stages.map((s) => s.stage).sort();
    expect(stages).toEqual(['0', '1', '2', '3']);
    const on = new Map(job.stages.map((s) => [s.stage, s.node]));
    expect(on.get('1')).not.toBe(on.get('2'));
  });

  it('stages nobody waits for make the result together; unequal row counts are an error naming both stages', async () => {
    const w = await world(2);
    const v = [1, 2, 3, 4];
    const both = {
      '0': { tasks: { task_add: { operations: [{ a: 'v', b: 1, column: 'a' }] } }, after: [] },
      '1': { tasks: { task_multiply: { operations: [{ a: 'v', b: 2, column: 'b' }] } }, after: [] },
    };
    const out = await w.client.execute(both, { data: { v } }).result();
    expect(Array.from(col(out, 'a'))).toEqual([2, 3, 4, 5]);
    expect(Array.from(col(out, 'b'))).toEqual([2, 4, 6, 8]);

    const unequal = {
      '0': { tasks: { task_filter: { operations: [{ column: 'v', value: 2, method: 'gt' }] } } },
      '1': { tasks: { task_null: {} }, after: [] },
      '2': { tasks: { task_null: {} }, after: ['0', '1'] },
    };
    const err = await w.client
      .execute(unequal, { data: { v } })
      .result()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RtlError);
    expect((err as RtlError).code).toBe('RTL_ERR_BAD_DATA');
    expect((err as RtlError).message).toMatch(/stage "0" \(2 rows\) and stage "1" \(4 rows\)/);
    expect((err as RtlError).detail.stage).toBe('2');
  });
});

describe('split: { chunks: N }', () => {
  it('a split CPU-heavy stage over 4e6 rows gives exactly the rows of the unsplit run, its parts on both tasknodes', async () => {
    // The relay and both tasknodes share this test's event loop, which the 4e6-row tables
    // block for a while: a long liveness window keeps an idle tasknode from being dropped
    // as silent meanwhile (it would rejoin, but after the parts were placed).
    const w = await world(2, { HEARTBEAT_LIVENESS: 50 });
    await w.client.deploy({ name: 'heavy', source: HEAVY });
    const n = 4_000_000;
    const x = new Float64Array(n);
    for (let i = 0; i < n; i++) x[i] = (i % 1000) * 0.001 + Math.floor(i / 1000);
    const stage = { tasks: { task_heavy: { a: 'x', rounds: 3, column: 'y' } } };
    const plain = w.client.execute({ '0': stage }, { data: { x } });
    const whole = await plain.result();
    const splitJob = w.client.execute({ '0': { ...stage, split: { chunks: 4 } } }, { data: { x } });
    const parts = await splitJob.result();
    expect(parts.numRows).toBe(n);
    const a = col(whole, 'y');
    const b = col(parts, 'y');
    const xs = col(parts, 'x');
    let same = true;
    for (let i = 0; i < n; i++) if (a[i] !== b[i] || xs[i] !== x[i]) same = false;
    expect(same).toBe(true);
    // An independent check of a few rows.
    for (const i of [0, 1, 999_999, 2_000_001, n - 1]) {
      const xi = x[i] as number;
      expect(b[i]).toBe(Math.sin(0) + Math.sin(xi) + Math.sin(xi * 2));
    }
    const labels = splitJob.stages.map((s) => s.stage).sort();
    expect(labels).toEqual(['0[0/4]', '0[1/4]', '0[2/4]', '0[3/4]']);
    expect(new Set(splitJob.stages.map((s) => s.node)).size).toBe(2);
  });

  it('more chunks than rows gives one part per row; an empty input runs once; a failing part fails the job naming it', async () => {
    const w = await world(2);
    await w.client.deploy({ name: 'heavy', source: HEAVY });
    const few = w.client.execute(
      {
        '0': {
          tasks: { task_add: { operations: [{ a: 'v', b: 1, column: 'w' }] } },
          split: { chunks: 8 },
        },
      },
      { data: { v: [10, 20, 30] } },
    );
    expect(Array.from(col(await few.result(), 'w'))).toEqual([11, 21, 31]);
    expect(few.stages).toHaveLength(3);

    const empty = w.client.execute({ '0': { tasks: { task_null: {} }, split: { chunks: 4 } } });
    expect((await empty.result()).numRows).toBe(0);

    const v = Float64Array.from({ length: 100 }, (_, i) => i);
    const err = await w.client
      .execute(
        { '0': { tasks: { task_fail_over: { a: 'v', limit: 80 } }, split: { chunks: 4 } } },
        { data: { v } },
      )
      .result()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RtlError);
    expect((err as RtlError).code).toBe('RTL_ERR_STAGE_FAILED');
    expect((err as RtlError).detail.stage).toBe('0[3/4]');
    expect((err as RtlError).message).toMatch(/value 81 is over 80/);
  });
});
