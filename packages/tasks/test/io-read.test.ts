/**
 * open: files produced by an independent writer (the bytes of .npy, .dat/.meta and Arrow IPC
 * are built here from the formats' specs, not with rtl's writers) read back right, and the
 * same data as .npy, .dat, .csv, .arrow and .feather gives the same table.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Table } from 'apache-arrow';
import { Float64, Int64, tableFromArrays, tableToIPC } from 'apache-arrow';
import { emptyTable, parseDocument } from '@rtl/core';
import { createBundledRegistry, tableFromDat, tableFromNpy } from '@rtl/tasks';
import { cellsOf, firstMismatch, rng } from './helpers.js';
import type { Cell } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rtl-io-read-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const registry = createBundledRegistry();

async function open(filename: string, extension: string, extra: Record<string, unknown> = {}) {
  const params = { filename, path: dir, extension, ...extra };
  const { table } = await registry.runStage(emptyTable(), [{ task: 'task_open_array', params }], {
    stage: '0',
  });
  return table;
}

// ---- An independent .npy / .dat writer, from the NumPy format spec ----

type Kind = 'f8' | 'f4' | 'f2' | 'i1' | 'i2' | 'i4' | 'i8' | 'u1' | 'u2' | 'u4' | 'u8' | 'b1';
const SIZE: Record<Kind, number> = {
  f8: 8,
  f4: 4,
  f2: 2,
  i1: 1,
  i2: 2,
  i4: 4,
  i8: 8,
  u1: 1,
  u2: 2,
  u4: 4,
  u8: 8,
  b1: 1,
};

/** Half-precision bits of a value that is exactly representable (small ints / 4). */
function halfBits(v: number): number {
  if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
  const sign = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  const e = Math.floor(Math.log2(a));
  const mant = Math.round((a / 2 ** e - 1) * 1024);
  return sign | ((e + 15) << 10) | mant;
}

function put(view: DataView, at: number, kind: Kind, v: number | bigint | boolean, le: boolean) {
  switch (kind) {
    case 'f8': {
      view.setFloat64(at, v as number, le);
      return;
    }
    case 'f4': {
      view.setFloat32(at, v as number, le);
      return;
    }
    case 'f2': {
      view.setUint16(at, halfBits(v as number), le);
      return;
    }
    case 'i1': {
      view.setInt8(at, v as number);
      return;
    }
    case 'i2': {
      view.setInt16(at, v as number, le);
      return;
    }
    case 'i4': {
      view.setInt32(at, v as number, le);
      return;
    }
    case 'i8': {
      view.setBigInt64(at, v as bigint, le);
      return;
    }
    case 'u1': {
      view.setUint8(at, v as number);
      return;
    }
    case 'u2': {
      view.setUint16(at, v as number, le);
      return;
    }
    case 'u4': {
      view.setUint32(at, v as number, le);
      return;
    }
    case 'u8': {
      view.setBigUint64(at, v as bigint, le);
      return;
    }
    case 'b1': {
      view.setUint8(at, v === true ? 1 : 0);
      return;
    }
  }
}

interface Spec {
  readonly name: string;
  readonly kind: Kind;
  readonly values: (number | bigint | boolean)[];
}

/** Packed records (field after field, no padding unless `pad` bytes after each field). */
function records(fields: readonly Spec[], le = true, pad = 0): Uint8Array {
  const rows = fields[0]?.values.length ?? 0;
  const item = fields.reduce((s, f) => s + SIZE[f.kind] + pad, 0);
  const out = new Uint8Array(rows * item);
  const view = new DataView(out.buffer);
  for (let r = 0; r < rows; r++) {
    let at = r * item;
    for (const f of fields) {
      put(view, at, f.kind, f.values[r] as number, le);
      at += SIZE[f.kind] + pad;
    }
  }
  return out;
}

function npy(header: string, data: Uint8Array, version = 1, align = 64): Uint8Array {
  const pre = version === 1 ? 10 : 12;
  const text = Buffer.from(header, version === 3 ? 'utf8' : 'latin1');
  const total = Math.ceil((pre + text.length + 1) / align) * align;
  const out = Buffer.alloc(total + data.length, 0x20);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  if (version === 1) out.writeUInt16LE(total - pre, 8);
  else out.writeUInt32LE(total - pre, 8);
  out.set(text, pre);
  out[total - 1] = 0x0a;
  out.set(data, total);
  return out;
}

function descrOf(fields: readonly Spec[], order = '<'): string {
  return `[${fields.map((f) => `('${f.name}', '${SIZE[f.kind] === 1 ? '|' : order}${f.kind}')`).join(', ')}]`;
}

const ROWS = 5000;
const r = rng(11);
const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const FIELDS: Spec[] = [
  { name: 'x', kind: 'f8', values: Array.from({ length: ROWS }, () => (r() - 0.5) * 1e6) },
  {
    name: 'n',
    kind: 'i8',
    values: Array.from({ length: ROWS }, () => BigInt(int(-1e9, 1e9)) * 1000003n),
  },
  {
    name: 'f',
    kind: 'f4',
    values: Array.from({ length: ROWS }, () => Math.fround((r() - 0.5) * 100)),
  },
  { name: 'h', kind: 'f2', values: Array.from({ length: ROWS }, () => int(-2000, 2000) / 4) },
  { name: 'b', kind: 'i1', values: Array.from({ length: ROWS }, () => int(-128, 127)) },
  { name: 's', kind: 'i2', values: Array.from({ length: ROWS }, () => int(-32768, 32767)) },
  {
    name: 'i',
    kind: 'i4',
    values: Array.from({ length: ROWS }, () => int(-(2 ** 31), 2 ** 31 - 1)),
  },
  { name: 'ub', kind: 'u1', values: Array.from({ length: ROWS }, () => int(0, 255)) },
  { name: 'us', kind: 'u2', values: Array.from({ length: ROWS }, () => int(0, 65535)) },
  { name: 'ui', kind: 'u4', values: Array.from({ length: ROWS }, () => int(0, 2 ** 32 - 1)) },
  {
    name: 'ul',
    kind: 'u8',
    values: Array.from({ length: ROWS }, () => BigInt(int(0, 2 ** 40)) * 4099n),
  },
  { name: 'flag', kind: 'b1', values: Array.from({ length: ROWS }, () => r() < 0.5) },
];
const TYPES: Record<Kind, string> = {
  f8: 'Float64',
  f4: 'Float32',
  f2: 'Float16',
  i1: 'Int8',
  i2: 'Int16',
  i4: 'Int32',
  i8: 'Int64',
  u1: 'Uint8',
  u2: 'Uint16',
  u4: 'Uint32',
  u8: 'Uint64',
  b1: 'Bool',
};

function expectFields(t: Table, fields: readonly Spec[], names = fields.map((f) => f.name)) {
  expect(t.numRows).toBe(fields[0]?.values.length);
  expect(t.schema.fields.map((f) => f.name)).toEqual(names);
  fields.forEach((f, i) => {
    const name = names[i] as string;
    expect(String(t.schema.fields[i]?.type), name).toBe(TYPES[f.kind]);
    expect(firstMismatch(cellsOf(t, name), f.values as Cell[]), name).toBeUndefined();
  });
}

describe('open .npy written by hand from the format spec', () => {
  it('a structured array of every supported type, v1.0 header', async () => {
    writeFileSync(
      join(dir, 'all.npy'),
      npy(
        `{'descr': ${descrOf(FIELDS)}, 'fortran_order': False, 'shape': (${ROWS},), }`,
        records(FIELDS),
      ),
    );
    expectFields(await open('all', 'npy'), FIELDS);
  });

  it('big-endian fields (byte-swapped on reading)', () => {
    const fields = FIELDS.filter((f) => f.kind !== 'f2');
    const bytes = npy(
      `{'descr': ${descrOf(fields, '>')}, 'fortran_order': False, 'shape': (${ROWS},), }`,
      records(fields, false),
    );
    expectFields(tableFromNpy(bytes, 'be.npy'), fields);
  });

  it.each([1, 2, 3])('a plain 1-D float64 array, format v%i.0 (one column "value")', (version) => {
    const f: Spec = { name: 'value', kind: 'f8', values: FIELDS[0]?.values ?? [] };
    const bytes = npy(
      `{'descr': '<f8', 'fortran_order': False, 'shape': (${ROWS},), }`,
      records([f]),
      version,
    );
    expectFields(tableFromNpy(bytes, 'v.npy'), [f]);
  });

  it('a v3.0 header with a non-latin1 field name (UTF-8)', () => {
    const f: Spec = { name: 'température', kind: 'f8', values: [1.5, -2, 3e300] };
    const g: Spec = { name: '温度', kind: 'i4', values: [1, 2, 3] };
    const bytes = npy(
      `{'descr': [('${f.name}', '<f8'), ('${g.name}', '<i4')], 'fortran_order': False, 'shape': (3,), }`,
      records([f, g]),
      3,
    );
    expectFields(tableFromNpy(bytes, 'u.npy'), [f, g]);
  });

  it('a 2-D C-order array: columns c0..c2', () => {
    const rows = 7;
    const vals = Array.from({ length: rows * 3 }, (_, k) => k * 1.5 - 4);
    const flat: Spec = { name: 'v', kind: 'f8', values: vals };
    const t = tableFromNpy(
      npy(`{'descr': '<f8', 'fortran_order': False, 'shape': (${rows}, 3), }`, records([flat])),
      'c.npy',
    );
    const cols = [0, 1, 2].map((j): Spec => ({
      name: `c${j}`,
      kind: 'f8',
      values: vals.filter((_, k) => k % 3 === j),
    }));
    expectFields(t, cols);
  });

  it('a 2-D Fortran-order int64 array: each column is contiguous', () => {
    const rows = 9;
    const vals = Array.from({ length: rows * 2 }, (_, k) => BigInt(k * 7 - 50));
    const flat: Spec = { name: 'v', kind: 'i8', values: vals };
    const t = tableFromNpy(
      npy(`{'descr': '<i8', 'fortran_order': True, 'shape': (${rows}, 2), }`, records([flat])),
      'f.npy',
    );
    expectFields(t, [
      { name: 'c0', kind: 'i8', values: vals.slice(0, rows) },
      { name: 'c1', kind: 'i8', values: vals.slice(rows) },
    ]);
  });

  it("an aligned struct (NumPy's dict form with offsets and padding)", () => {
    const a: Spec = { name: 'a', kind: 'u1', values: [7, 8, 255] };
    const b: Spec = { name: 'b', kind: 'f8', values: [1.25, -2.5, 1e-300] };
    // itemsize 16: a at 0, 7 bytes of padding, b at 8.
    const data = new Uint8Array(48);
    const view = new DataView(data.buffer);
    for (let k = 0; k < 3; k++) {
      view.setUint8(k * 16, a.values[k] as number);
      view.setFloat64(k * 16 + 8, b.values[k] as number, true);
    }
    const dict = `{'names': ['a', 'b'], 'formats': ['u1', '<f8'], 'offsets': [0, 8], 'itemsize': 16}`;
    expectFields(
      tableFromNpy(
        npy(`{'descr': ${dict}, 'fortran_order': False, 'shape': (3,), }`, data),
        'al.npy',
      ),
      [a, b],
    );
    // The same layout as NumPy's descr list with a void padding field.
    const listed = `[('a', '|u1'), ('', '|V7'), ('b', '<f8')]`;
    expectFields(
      tableFromNpy(
        npy(`{'descr': ${listed}, 'fortran_order': False, 'shape': (3,), }`, data),
        'al.npy',
      ),
      [a, b],
    );
  });

  it('a 0-D array is one row; an empty array is zero rows; a header not padded to 64 bytes', () => {
    const one = tableFromNpy(
      npy(
        `{'descr': '<f8', 'fortran_order': False, 'shape': (), }`,
        new Uint8Array(new Float64Array([3.5]).buffer),
        1,
        16,
      ),
      's.npy',
    );
    expect(cellsOf(one, 'value')).toEqual([3.5]);
    const none = tableFromNpy(
      npy(
        `{'descr': [('x', '<f8')], 'fortran_order': False, 'shape': (0,), }`,
        new Uint8Array(0),
        1,
        16,
      ),
      'e.npy',
    );
    expect(none.numRows).toBe(0);
    expect(none.schema.fields.map((f) => f.name)).toEqual(['x']);
  });

  it('reads from a file and from memory alike (file: straight into the columns)', async () => {
    const fields = FIELDS.slice(0, 3);
    const bytes = npy(
      `{'descr': ${descrOf(fields)}, 'fortran_order': False, 'shape': (${ROWS},), }`,
      records(fields),
    );
    writeFileSync(join(dir, 'three.npy'), bytes);
    expectFields(await open('three', 'npy'), fields);
    expectFields(tableFromNpy(bytes, 'three.npy'), fields);
  });
});

describe('open .dat + .meta written by hand', () => {
  const fields = FIELDS;

  it.each([
    ['a NumPy descr list', descrOf(fields)],
    ['the descr wrapped as dtype(...)', `dtype(${descrOf(fields)})`],
    [
      'the dict form',
      `{'names': [${fields.map((f) => `'${f.name}'`).join(', ')}], 'formats': [${fields.map((f) => `'${f.kind}'`).join(', ')}]}`,
    ],
    [
      "raspi-rtl's base64 encoding with <@ @> for parentheses",
      Buffer.from(descrOf(fields).replace(/\(/g, '<@').replace(/\)/g, '@>')).toString('base64'),
    ],
  ])('meta as %s', async (_, meta) => {
    writeFileSync(join(dir, 'd.dat'), records(fields));
    writeFileSync(join(dir, 'd.meta'), meta);
    expectFields(await open('d', 'dat'), fields);
  });

  it.each([['<f8'], ["'<f8'"], ['float64'], ['np.dtype("float64")']])(
    'a plain dtype %s: one column named value',
    (meta) => {
      const f: Spec = { name: 'value', kind: 'f8', values: [0.5, -1, 1e10, NaN] };
      expectFields(tableFromDat(records([f]), meta, 'p.dat'), [f]);
    },
  );

  it('a big-endian record', () => {
    const a: Spec = { name: 'a', kind: 'i4', values: [1, -2, 2 ** 31 - 1] };
    const b: Spec = { name: 'b', kind: 'f8', values: [0.1, -0, Infinity] };
    expectFields(tableFromDat(records([a, b], false), "[('a', '>i4'), ('b', '>f8')]", 'be.dat'), [
      a,
      b,
    ]);
  });

  it('an empty .dat is a table of zero rows with the meta columns', () => {
    const t = tableFromDat(new Uint8Array(0), "[('x', '<f8'), ('y', '<i8')]", 'z.dat');
    expect(t.numRows).toBe(0);
    expect(t.schema.fields.map((f) => `${f.name}:${String(f.type)}`)).toEqual([
      'x:Float64',
      'y:Int64',
    ]);
  });
});

describe('open .arrow / .feather written by arrow-js', () => {
  const x = Float64Array.from({ length: ROWS }, () => (r() - 0.5) * 10);
  const n = BigInt64Array.from({ length: ROWS }, () => BigInt(int(-1e6, 1e6)));
  const source = tableFromArrays({ x, n });

  it.each([
    ['arrow', 'file'],
    ['feather', 'file'],
    ['arrow', 'stream'],
  ] as const)('.%s in the IPC %s format', async (ext, format) => {
    writeFileSync(join(dir, `ipc-${format}.${ext}`), tableToIPC(source, format));
    const t = await open(`ipc-${format}`, ext);
    expect(t.schema.fields.map((f) => `${f.name}:${String(f.type)}`)).toEqual([
      'x:Float64',
      'n:Int64',
    ]);
    expect(firstMismatch(cellsOf(t, 'x'), [...x])).toBeUndefined();
    expect(firstMismatch(cellsOf(t, 'n'), [...n])).toBeUndefined();
  });
});

describe('the same data in every format gives the same table', () => {
  const rows = 20_000;
  const x = Array.from({ length: rows }, () => (r() - 0.5) * 1e4);
  const y = Array.from({ length: rows }, () => int(-1e6, 1e6));
  const z = Array.from({ length: rows }, () => r() * 1e-3);
  const fields: Spec[] = [
    { name: 'x', kind: 'f8', values: x },
    { name: 'y', kind: 'f8', values: y },
    { name: 'z', kind: 'f8', values: z },
  ];

  function writeAll(): void {
    writeFileSync(
      join(dir, 'same.npy'),
      npy(
        `{'descr': ${descrOf(fields)}, 'fortran_order': False, 'shape': (${rows},), }`,
        records(fields),
      ),
    );
    writeFileSync(join(dir, 'same.dat'), records(fields));
    writeFileSync(join(dir, 'same.meta'), descrOf(fields));
    // CSV as NumPy's savetxt would (18 significant digits) and as pandas does (repr).
    const lines = ['x,y,z'];
    for (let k = 0; k < rows; k++)
      lines.push(`${(x[k] as number).toExponential(17)},${y[k] as number},${String(z[k])}`);
    writeFileSync(join(dir, 'same.csv'), lines.join('\r\n'));
    const t = tableFromArrays({
      x: Float64Array.from(x),
      y: Float64Array.from(y),
      z: Float64Array.from(z),
    });
    writeFileSync(join(dir, 'same.arrow'), tableToIPC(t, 'file'));
    writeFileSync(join(dir, 'same.feather'), tableToIPC(t, 'file'));
  }

  it('.npy, .dat, .csv, .arrow, .feather', async () => {
    writeAll();
    for (const ext of ['npy', 'dat', 'csv', 'arrow', 'feather']) {
      const t = await open('same', ext);
      expectFields(t, fields);
    }
  });
});

describe('a raspi-rtl document runs unchanged', () => {
  it('openArray .dat, then add, multiply, subtract, average', async () => {
    const rows = 10_000;
    const a = Array.from({ length: rows }, () => (r() - 0.5) * 100);
    const b = Array.from({ length: rows }, () => BigInt(int(-1000, 1000)));
    const fields: Spec[] = [
      { name: 'a', kind: 'f8', values: a },
      { name: 'b', kind: 'i8', values: b },
    ];
    writeFileSync(join(dir, 'raspi.dat'), records(fields));
    writeFileSync(
      join(dir, 'raspi.meta'),
      Buffer.from(descrOf(fields).replace(/\(/g, '<@').replace(/\)/g, '@>')).toString('base64'),
    );
    const doc = {
      0: {
        tasks: {
          task_open_array: { filename: 'raspi', path: dir, extension: 'dat', delimiter: null },
        },
      },
      1: {
        tasks: {
          task_add: { operations: [{ a: 'a', b: 'b', column: 'sum' }] },
          task_multiply: { operations: [{ a: 'sum', b: 2, column: 'twice' }] },
          task_subtract: { operations: [{ a: 'twice', b: 'a', column: 'diff' }] },
          task_average: { operations: [{ a: 'diff', column: 'mean' }] },
        },
      },
    };
    const job = parseDocument(doc, registry);
    let table: Table = emptyTable();
    for (const stage of job.stages)
      table = (await registry.runStage(table, stage.tasks, { stage: stage.key })).table;
    const sum = a.map((v, k) => v + Number(b[k]));
    const diff = sum.map((v, k) => v * 2 - (a[k] as number));
    const mean = diff.reduce((s, v) => s + v, 0) / rows;
    expect(String(table.schema.fields[1]?.type)).toBe(String(new Int64()));
    expect(String(table.schema.fields[2]?.type)).toBe(String(new Float64()));
    expect(firstMismatch(cellsOf(table, 'sum'), sum)).toBeUndefined();
    expect(firstMismatch(cellsOf(table, 'diff'), diff)).toBeUndefined();
    const means = cellsOf(table, 'mean') as number[];
    expect(means[0]).toBeCloseTo(mean, 9);
    expect(new Set(means).size).toBe(1);
  });
});
