/**
 * filter (alias filterRows):
 *   { operations: [{ column, value: number, method: 'eq'|'ne'|'lt'|'gt'|'le'|'ge' }] }
 * Keeps the rows where every operation holds (`lt`: the row's value < `value`). A null never
 * matches. All columns are kept; each batch is filtered on its own (batches left empty are
 * dropped).
 */
import { RecordBatch, Table, makeData } from 'apache-arrow';
import type { Data, Struct } from 'apache-arrow';
import { clearInvalid } from '../columns/bitmap.js';
import { ColumnSet } from '../columns/column-set.js';
import { gather } from '../columns/gather.js';
import { toFloat64 } from '../columns/numeric.js';
import { defineTableTask } from '../define.js';
import { p } from '../schema.js';

const METHODS = ['eq', 'ne', 'lt', 'gt', 'le', 'ge'] as const;
export type CompareMethod = (typeof METHODS)[number];

const filterParams = p.object({
  operations: p.array(
    p.object({ column: p.column(), value: p.number(), method: p.oneOf(METHODS) }),
    { min: 1 },
  ),
});

/** mask[i] &= (v[i] method x) */
function andCompare(method: CompareMethod, v: Float64Array, x: number, mask: Uint8Array): void {
  const n = mask.length;
  switch (method) {
    case 'eq':
      for (let i = 0; i < n; i++) mask[i] = (mask[i] as number) & +((v[i] as number) === x);
      return;
    case 'ne':
      for (let i = 0; i < n; i++) mask[i] = (mask[i] as number) & +((v[i] as number) !== x);
      return;
    case 'lt':
      for (let i = 0; i < n; i++) mask[i] = (mask[i] as number) & +((v[i] as number) < x);
      return;
    case 'gt':
      for (let i = 0; i < n; i++) mask[i] = (mask[i] as number) & +((v[i] as number) > x);
      return;
    case 'le':
      for (let i = 0; i < n; i++) mask[i] = (mask[i] as number) & +((v[i] as number) <= x);
      return;
    case 'ge':
      for (let i = 0; i < n; i++) mask[i] = (mask[i] as number) & +((v[i] as number) >= x);
      return;
  }
}

/** Indices of the set entries of `mask` (each 0 or 1), or null when every entry is set. */
function selection(mask: Uint8Array): Uint32Array | null {
  const n = mask.length;
  let count = 0;
  for (let i = 0; i < n; i++) count += mask[i] as number;
  if (count === n) return null;
  // Branch-free: always write i, advance only when it is selected (one spare slot at the end).
  const idx = new Uint32Array(count + 1);
  for (let i = 0, k = 0; i < n; i++) {
    idx[k] = i;
    k += mask[i] as number;
  }
  return idx.subarray(0, count);
}

export const filter = defineTableTask({
  name: 'filter',
  aliases: ['filterRows'],
  summary: 'Keep the rows where every comparison holds (nulls never match)',
  params: filterParams,
  run(table, { operations }, ctx) {
    const set = ColumnSet.fromTable(table);
    const tests = operations.map((o, i) => ({
      ...o,
      chunks: set.numeric(o.column, `operations[${i}].column`, ctx),
    }));
    const batches: RecordBatch[] = [];
    table.batches.forEach((batch, b) => {
      const mask = new Uint8Array(batch.numRows).fill(1);
      for (const t of tests) {
        const chunk = t.chunks[b] as Data;
        andCompare(t.method, toFloat64(chunk), t.value, mask);
        clearInvalid(mask, chunk);
      }
      const idx = selection(mask);
      if (idx === null) batches.push(batch);
      else if (idx.length > 0)
        batches.push(new RecordBatch(table.schema, gatherStruct(batch.data, idx)));
    });
    return new Table(table.schema, batches);
  },
});

function gatherStruct(data: Data<Struct>, idx: Uint32Array): Data<Struct> {
  const children = data.children.map((c) => gather(c, idx));
  return makeData({ type: data.type, length: idx.length, nullCount: 0, children });
}
