/**
 * Values that flow along a job graph's edges, as the relay holds them: a DataRef and its
 * payload frames. Function values are CBOR frames the relay never decodes (a group's list is
 * built by joining its members' encodings under one array head); tables are Arrow frames or
 * store references, decoded only to cut (split), join (split parts) or merge (several inputs).
 */
import { Table } from 'apache-arrow';
import {
  RtlError,
  decodeTable,
  emptyTable,
  encodeTable,
  getTable,
  putTableSync,
  tableByteLength,
  type DataRef,
  type Store,
} from '@rtl/core';

export interface Value {
  readonly data: DataRef;
  readonly payload: Buffer[];
}

export const NO_VALUE: Value = { data: { kind: 'none' }, payload: [] };

/** The CBOR head of an array of `n` items (major type 4). */
function arrayHead(n: number): Buffer {
  if (n < 24) return Buffer.from([0x80 + n]);
  if (n < 0x100) return Buffer.from([0x98, n]);
  if (n < 0x10000) return Buffer.from([0x99, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0x9a;
  b.writeUInt32BE(n, 1);
  return b;
}

const CBOR_UNDEFINED = Buffer.from([0xf7]);

/**
 * A list of CBOR values as one CBOR array, without decoding them: the array head, then each
 * item's bytes as they are. A member with no value counts as `undefined`.
 */
export function joinValues(items: readonly Value[]): Value {
  const parts: Buffer[] = [arrayHead(items.length)];
  for (const v of items) {
    const frame = v.data.kind === 'cbor' ? v.payload[0] : undefined;
    parts.push(frame ?? CBOR_UNDEFINED);
  }
  return { data: { kind: 'cbor', frames: 1 }, payload: [Buffer.concat(parts)] };
}

/** A table value as a Table (a view of its frames or of the store where possible). */
export function readTable(v: Value, store: Store | undefined): Table {
  switch (v.data.kind) {
    case 'arrow':
      return decodeTable(v.payload);
    case 'none':
      return emptyTable();
    case 'ref':
      if (store === undefined)
        throw new RtlError(
          'RTL_ERR_STORE',
          `table ${v.data.key} is in a store this relay has not opened`,
          {
            key: v.data.key,
          },
        );
      return getTable(store, v.data);
    case 'cbor':
      throw new RtlError('RTL_ERR_BAD_DATA', 'a table stage got a CBOR value, not a table');
  }
}

/** A table as a value: by reference when the store is there and the table is large, else frames. */
export function tableValue(table: Table, store: Store | undefined, refBytes: number): Value {
  if (store !== undefined && tableByteLength(table) >= refBytes) {
    return { data: putTableSync(store, table), payload: [] };
  }
  const payload = encodeTable(table) as Buffer[];
  return { data: { kind: 'arrow', frames: payload.length }, payload };
}

/** Row ranges [begin, end) cutting `rows` into at most `n` near-equal parts (at least one row each). */
export function rowRanges(rows: number, n: number): [number, number][] {
  const parts = Math.max(1, Math.min(n, rows));
  const out: [number, number][] = [];
  for (let i = 0; i < parts; i++)
    out.push([Math.floor((i * rows) / parts), Math.floor(((i + 1) * rows) / parts)]);
  return out;
}

/** Split parts joined in order: their record batches, one after another (no copy). */
export function concatTables(parts: readonly Table[], stage: string): Table {
  const first = parts[0];
  if (first === undefined) return emptyTable();
  const names = first.schema.fields.map((f) => f.name).join(', ');
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i] as Table;
    const other = p.schema.fields.map((f) => f.name).join(', ');
    if (
      other !== names ||
      !p.schema.fields.every((f, k) => String(f.type) === String(first.schema.fields[k]?.type))
    )
      throw new RtlError(
        'RTL_ERR_BAD_DATA',
        `stage "${stage}": split part ${String(i)} has columns (${other}), part 0 has (${names}); a split stage must give every part the same columns`,
        { stage, index: i },
      );
  }
  return new Table(
    first.schema,
    parts.flatMap((p) => p.batches),
  );
}

/**
 * Several inputs of one stage (DSDSL `after` with several keys) or several final stages, as
 * one table: the columns of each in order; a column name already taken keeps its first one.
 */
export function mergeTables(
  tables: readonly { from: string; table: Table }[],
  where: string,
): Table {
  const first = tables[0];
  if (first === undefined) return emptyTable();
  if (tables.length === 1) return first.table;
  const columns: Record<string, NonNullable<ReturnType<Table['getChildAt']>>> = {};
  for (const { from, table } of tables) {
    if (table.numRows !== first.table.numRows && table.numCols > 0 && first.table.numCols > 0)
      throw new RtlError(
        'RTL_ERR_BAD_DATA',
        `${where}: the tables of stage "${first.from}" (${String(first.table.numRows)} rows) and stage "${from}" (${String(table.numRows)} rows) have different row counts, so their columns cannot be put side by side`,
        { stage: from },
      );
    table.schema.fields.forEach((f, i) => {
      const col = table.getChildAt(i);
      if (col !== null && !(f.name in columns)) columns[f.name] = col;
    });
  }
  return new Table(columns);
}
