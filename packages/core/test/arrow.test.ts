import {
  Dictionary,
  Field,
  Float64,
  Int32,
  Schema,
  Table,
  Utf8,
  makeData,
  makeVector,
  vectorFromArray,
} from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import {
  RtlError,
  decodeTable,
  emptyTable,
  encodeTable,
  tableByteLength,
  toTable,
} from '@rtl/core';

/** Deterministic PRNG (mulberry32), so a failing split can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function concat(frames: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((n, f) => n + f.byteLength, 0));
  let at = 0;
  for (const f of frames) {
    out.set(f, at);
    at += f.byteLength;
  }
  return out;
}

/** Cut bytes at random points into copies (so frames start at arbitrary alignments). */
function splitAtRandom(bytes: Uint8Array, seed: number, maxPiece: number): Uint8Array[] {
  const rand = prng(seed);
  const parts: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.byteLength) {
    const n = 1 + Math.floor(rand() * maxPiece);
    // A copy into a buffer with a random leading gap: frames start at any address.
    const gap = Math.floor(rand() * 8);
    const piece = bytes.subarray(at, Math.min(bytes.byteLength, at + n));
    const holder = new Uint8Array(gap + piece.byteLength);
    holder.set(piece, gap);
    parts.push(holder.subarray(gap));
    at += piece.byteLength;
  }
  return parts;
}

/** Call fn once; it must throw an RtlError, which is returned for further checks. */
function rtlErrorOf(fn: () => unknown): RtlError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(RtlError);
  return thrown as RtlError;
}

/** How many positions differ (Object.is, so NaN equals NaN); lengths must match. */
function mismatches(a: ArrayLike<unknown>, b: ArrayLike<unknown>): number {
  if (a.length !== b.length) return Math.max(a.length, b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) n++;
  return n;
}

/** Rows as plain values, for comparing tables independently of their chunking. */
function rows(table: Table): unknown[] {
  return table.toArray().map((r: { toJSON(): unknown }) => r.toJSON());
}

const N = 1000;
const numericColumns = () => ({
  i8: Int8Array.from({ length: N }, (_, i) => ((i * 37) % 256) - 128),
  i16: Int16Array.from({ length: N }, (_, i) => ((i * 7919) % 65536) - 32768),
  i32: Int32Array.from({ length: N }, (_, i) => (i * 2654435761) | 0),
  u8: Uint8Array.from({ length: N }, (_, i) => (i * 13) % 256),
  u16: Uint16Array.from({ length: N }, (_, i) => (i * 7919) % 65536),
  u32: Uint32Array.from({ length: N }, (_, i) => (i * 2654435761) >>> 0),
  f32: Float32Array.from({ length: N }, (_, i) => i / 3 - 100),
  f64: Float64Array.from({ length: N }, (_, i) => (i % 10 === 0 ? NaN : Math.sin(i) * 1e300)),
  i64: BigInt64Array.from(
    { length: N },
    (_, i) => BigInt(i) * 9_000_000_000_000n - 4_000_000_000_000_000_000n,
  ),
  u64: BigUint64Array.from({ length: N }, (_, i) => BigInt(i) * 18_000_000_000_000_000n),
});

describe('encodeTable / decodeTable', () => {
  it.each([true, false])('round-trips every numeric type (chunked: %s)', (chunked) => {
    const cols = numericColumns();
    const frames = encodeTable(toTable(cols), { chunked });
    if (!chunked) expect(frames).toHaveLength(1);
    const back = decodeTable(frames);
    expect(back.numRows).toBe(N);
    for (const [name, src] of Object.entries(cols)) {
      const col = back.getChild(name);
      expect(col, name).not.toBeNull();
      expect(Array.from(col?.toArray() as ArrayLike<unknown>), name).toEqual(
        Array.from(src as ArrayLike<unknown>),
      );
    }
    expect(String(back.getChild('i64')?.type)).toBe('Int64');
    expect(String(back.getChild('u16')?.type)).toBe('Uint16');
  });

  it('round-trips nulls in number arrays, and NaN as a value', () => {
    const src = Array.from({ length: 100 }, (_, i) =>
      i % 3 === 0 ? null : i % 7 === 0 ? undefined : i === 50 ? NaN : i * 1.5,
    );
    const back = decodeTable(encodeTable(toTable({ x: src })));
    const x = back.getChild('x');
    expect(x?.nullCount).toBe(src.filter((v) => v === null || v === undefined).length);
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      expect(x?.get(i), `row ${i}`).toEqual(v === undefined ? null : v);
    }
  });

  it('round-trips utf8 with nulls, empty strings and non-ASCII text', () => {
    const src = ['héllo', null, '', '日本語', 'a'.repeat(1000), undefined, '🙂'];
    const back = decodeTable(encodeTable(toTable({ s: src })));
    expect(String(back.getChild('s')?.type)).toBe('Utf8');
    expect(
      Array.from({ length: src.length }, (_, i): unknown => back.getChild('s')?.get(i)),
    ).toEqual(src.map((v) => v ?? null));
  });

  it('round-trips a table of several record batches, keeping the batches', () => {
    const a = toTable({ x: Float64Array.of(1, 2, 3), s: ['a', 'b', null] });
    const b = toTable({ x: Float64Array.of(4, 5), s: ['d', 'e'] });
    const table = a.concat(b);
    expect(table.batches).toHaveLength(2);
    const back = decodeTable(encodeTable(table));
    expect(back.batches).toHaveLength(2);
    expect(rows(back)).toEqual([
      { x: 1, s: 'a' },
      { x: 2, s: 'b' },
      { x: 3, s: null },
      { x: 4, s: 'd' },
      { x: 5, s: 'e' },
    ]);
  });

  it('round-trips dictionary-encoded columns, including a replaced dictionary', () => {
    const type = () => new Dictionary(new Utf8(), new Int32());
    const a = new Table({ d: vectorFromArray(['a', 'b', 'a', null], type()) });
    const b = new Table({ d: vectorFromArray(['x', 'y', 'x', 'z'], type()) });
    const back = decodeTable(splitAtRandom(concat(encodeTable(a.concat(b))), 7, 13));
    expect(rows(back).map((r) => (r as { d: unknown }).d)).toEqual([
      'a',
      'b',
      'a',
      null,
      'x',
      'y',
      'x',
      'z',
    ]);
  });

  it('round-trips 0 rows, a schema-only stream and a table without columns', () => {
    const zero = decodeTable(encodeTable(toTable({ a: new Float64Array(0), s: [] as string[] })));
    expect(zero.numRows).toBe(0);
    expect(zero.schema.fields.map((f) => `${f.name}:${String(f.type)}`)).toEqual([
      'a:Float64',
      's:Float64',
    ]);

    const schemaOnly = new Table(new Schema([new Field('a', new Int32(), true)]));
    const back = decodeTable(encodeTable(schemaOnly, { chunked: false }));
    expect(back.numRows).toBe(0);
    expect(back.schema.fields.map((f) => `${f.name}:${String(f.type)}`)).toEqual(['a:Int32']);

    const none = decodeTable(encodeTable(emptyTable()));
    expect([none.numRows, none.numCols]).toEqual([0, 0]);
  });

  it('decodes a stream split at random boundaries', () => {
    const n = 50_000;
    const x = Float64Array.from({ length: n }, (_, i) => i * 0.25);
    const y = Int32Array.from({ length: n }, (_, i) => i * 3 - 7);
    const s = Array.from({ length: n }, (_, i) => (i % 11 === 0 ? null : `r${i}`));
    const bytes = concat(encodeTable(toTable({ x, y, s })));
    for (const [seed, maxPiece] of [
      [1, 7],
      [2, 1000],
      [3, 100_000],
      [4, 1_000_000],
    ] as const) {
      const back = decodeTable(splitAtRandom(bytes, seed, maxPiece));
      expect(back.numRows, `seed ${seed}`).toBe(n);
      const bs = back.getChild('s');
      const strings = Array.from({ length: n }, (_, i): unknown => bs?.get(i));
      expect(mismatches(back.getChild('x')?.toArray() as Float64Array, x), `seed ${seed}`).toBe(0);
      expect(mismatches(back.getChild('y')?.toArray() as Int32Array, y), `seed ${seed}`).toBe(0);
      expect(mismatches(strings, s), `seed ${seed}`).toBe(0);
    }
  });

  it('sends large columns as frames of their own that view the table (no copy either way)', () => {
    const x = Float64Array.from({ length: 100_000 }, (_, i) => i);
    const y = Float64Array.from({ length: 100_000 }, (_, i) => -i);
    const frames = encodeTable(toTable({ x, y }));
    const viewsOf = (a: Float64Array) =>
      frames.filter(
        (f) =>
          f.buffer === a.buffer && f.byteOffset === a.byteOffset && f.byteLength === a.byteLength,
      );
    expect(viewsOf(x)).toHaveLength(1);
    expect(viewsOf(y)).toHaveLength(1);
    expect(frames.length).toBeLessThanOrEqual(4);

    const back = decodeTable(frames);
    const values = back.getChild('y')?.data[0]?.values as Float64Array;
    expect(values.buffer === y.buffer).toBe(true);
    expect(back.getChild('y')?.get(99_999)).toBe(-99_999);

    const [one] = encodeTable(toTable({ x, y }), { chunked: false });
    const fromOne = decodeTable([one as Uint8Array]);
    const oneValues = fromOne.getChild('x')?.data[0]?.values as Float64Array;
    expect(oneValues.buffer === one?.buffer).toBe(true);
    expect(fromOne.getChild('x')?.get(4321)).toBe(4321);
  });

  it('is read by apache-arrow itself, and reads what apache-arrow writes', async () => {
    const { tableFromIPC, tableToIPC } = await import('apache-arrow');
    const table = toTable({ x: Float64Array.of(1.5, 2.5), s: ['p', null] });
    expect(rows(tableFromIPC(encodeTable(table)))).toEqual(rows(table));
    expect(rows(decodeTable([tableToIPC(table, 'stream')]))).toEqual(rows(table));
  });

  describe('bad bytes throw RTL_ERR_BAD_DATA with the byte offset', () => {
    const good = concat(encodeTable(toTable({ x: Float64Array.of(1, 2, 3, 4) })));

    it.each([10, 100, good.byteLength - 20, good.byteLength - 9])('truncated at byte %i', (cut) => {
      const err = rtlErrorOf(() => decodeTable([good.subarray(0, cut)]));
      expect(err.code).toBe('RTL_ERR_BAD_DATA');
      expect(err.message).toMatch(/byte \d+/);
      expect(typeof err.detail.offset).toBe('number');
    });

    it('garbage', () => {
      const garbage = Uint8Array.from({ length: 64 }, (_, i) => (i * 151 + 7) % 256);
      expect(rtlErrorOf(() => decodeTable([garbage])).code).toBe('RTL_ERR_BAD_DATA');
    });

    it('a metadata length past the end', () => {
      const bad = good.slice();
      new DataView(bad.buffer).setInt32(4, 1_000_000, true);
      expect(() => decodeTable([bad])).toThrow(
        /message at byte 0: metadata length 1000000, but \d+ bytes are left/,
      );
    });

    it('undecodable metadata', () => {
      const bad = good.slice();
      bad.fill(0xee, 8, 40);
      const err = rtlErrorOf(() => decodeTable([bad]));
      expect(err.code).toBe('RTL_ERR_BAD_DATA');
      expect(err.message).toMatch(/^Arrow IPC stream: message at byte 0: undecodable metadata/);
      expect(err.detail).toEqual({ offset: 0 });
    });

    it('a column whose buffer is shorter than its length', () => {
      const short = makeVector(
        makeData({ type: new Float64(), length: 10, data: new Float64Array(2) }),
      );
      const frames = encodeTable(new Table({ ok: makeVector(new Float64Array(10)), short }));
      const err = rtlErrorOf(() => decodeTable(frames));
      expect(err.code).toBe('RTL_ERR_BAD_DATA');
      expect(err.message).toMatch(
        /record batch at byte \d+: column "short": the values buffer is too short for 10 rows/,
      );
    });

    it('bytes after the end-of-stream marker', () => {
      expect(() => decodeTable([good, Uint8Array.of(1, 2, 3)])).toThrow(
        /3 bytes after the end-of-stream marker/,
      );
    });

    it('a record batch before the schema', () => {
      const schemaLength =
        concat(encodeTable(new Table(toTable({ x: Float64Array.of(1) }).schema))).byteLength - 8;
      expect(() => decodeTable([good.subarray(schemaLength)])).toThrow(
        /comes before the schema message/,
      );
    });

    it('no bytes at all, and a frame that is not bytes', () => {
      expect(() => decodeTable([])).toThrow(/empty input/);
      expect(() => decodeTable([new Uint8Array(0)])).toThrow(/empty input/);
      const err = rtlErrorOf(() => decodeTable(['abc' as unknown as Uint8Array]));
      expect(err.code).toBe('RTL_ERR_BAD_DATA');
      expect(err.message).toMatch(/frame 0 is "abc"/);
    });
  });
});

describe('toTable', () => {
  it('returns an Arrow Table as is', () => {
    const table = toTable({ x: Float64Array.of(1) });
    expect(toTable(table)).toBe(table);
  });

  it('uses typed arrays without a copy, and makes Float64 of numbers and Utf8 of strings', () => {
    const x = Int32Array.of(1, 2, 3);
    const table = toTable({ x, y: [1, 2, null], s: ['a', null, 'c'] });
    expect(table.getChild('x')?.data[0]?.values === x).toBe(true);
    expect(table.schema.fields.map((f) => `${f.name}:${String(f.type)}`)).toEqual([
      'x:Int32',
      'y:Float64',
      's:Utf8',
    ]);
    expect(table.getChild('y')?.get(2)).toBeNull();
  });

  it('gives an empty table for an object without columns', () => {
    expect([toTable({}).numRows, toTable({}).numCols]).toEqual([0, 0]);
  });

  it('names the column whose length differs', () => {
    const err = rtlErrorOf(() => toTable({ a: [1, 2, 3], b: Float64Array.of(1, 2) }));
    expect(err.code).toBe('RTL_ERR_BAD_DATA');
    expect(err.message).toBe('column "b" has 2 rows, but column "a" has 3');
    expect(err.detail.param).toBe('b');
  });

  it.each([
    ['a string', 'abc', /column "bad" is "abc", expected a typed array or an array/],
    ['a number', 5, /column "bad" is 5, expected/],
    ['an object', { 0: 1 }, /column "bad" is an object, expected/],
    [
      'a DataView',
      new DataView(new ArrayBuffer(8)),
      /column "bad" is a DataView, expected a numeric typed array/,
    ],
  ])('names a column that is %s', (_, value, message) => {
    const err = rtlErrorOf(() => toTable({ ok: [1], bad: value }));
    expect(err.code).toBe('RTL_ERR_BAD_DATA');
    expect(err.message).toMatch(message);
    expect(err.detail.param).toBe('bad');
  });

  it('names the column and row of mixed or unsupported types', () => {
    expect(() => toTable({ m: [1, 'two', 3] })).toThrow(
      /column "m" mixes types: row 1 is a string \("two"\), earlier rows are numbers/,
    );
    expect(() => toTable({ m: ['one', null, 2] })).toThrow(
      /column "m" mixes types: row 2 is a number/,
    );
    expect(() => toTable({ b: [true] })).toThrow(
      /column "b", row 0: true is a boolean, expected a number or a string/,
    );
  });

  it.each([null, 42, 'text', [1, 2], Float64Array.of(1)])('rejects %s as data', (data) => {
    const err = rtlErrorOf(() => toTable(data));
    expect(err.code).toBe('RTL_ERR_BAD_DATA');
    expect(err.message).toMatch(/expected an Arrow Table or an object of columns/);
  });
});

describe('tableByteLength', () => {
  it('sums the buffers of every column and batch', () => {
    const table = toTable({ x: new Float64Array(1000), y: new Int32Array(1000) });
    expect(tableByteLength(table)).toBe(8000 + 4000);
    const twoBatches = table.concat(toTable({ x: new Float64Array(10), y: new Int32Array(10) }));
    expect(tableByteLength(twoBatches)).toBe(8000 + 4000 + 80 + 40);
  });

  it('counts validity bitmaps, offsets and dictionaries', () => {
    // 100 values + a bitmap padded to 64 bits: 800 + 16.
    expect(
      tableByteLength(toTable({ x: Array.from({ length: 100 }, (_, i) => (i === 5 ? null : i)) })),
    ).toBe(816);
    const words = makeVector(
      makeData({
        type: new Utf8(),
        length: 2,
        valueOffsets: Int32Array.of(0, 2, 3),
        data: new TextEncoder().encode('abc'),
      }),
    );
    const dict = makeVector(
      makeData({
        type: new Dictionary(new Utf8(), new Int32()),
        length: 3,
        data: Int32Array.of(0, 1, 0),
        dictionary: words,
      }),
    );
    expect(rows(new Table({ d: dict }))).toEqual([{ d: 'ab' }, { d: 'c' }, { d: 'ab' }]);
    // indices 3 * 4, dictionary offsets 3 * 4, dictionary bytes 3; the dictionary counted once.
    expect(tableByteLength(new Table({ d: dict, e: dict }))).toBe(12 + 12 + 12 + 3);
  });

  it('is 0 for an empty table', () => {
    expect(tableByteLength(emptyTable())).toBe(0);
    expect(emptyTable().schema.fields).toHaveLength(0);
  });
});
