/**
 * Arrow tables <-> frames (Arrow IPC stream format), and plain columns -> tables.
 *
 * encodeTable emits the large body buffers of a table as frames of their own, which are views
 * of the table's memory (no concatenation copy); decodeTable reads such frames, or any IPC
 * stream cut at arbitrary byte boundaries, and makes typed arrays that view the frame memory
 * wherever a buffer lies within one frame at an 8-byte aligned address.
 */
import {
  Float64,
  Message,
  MessageHeader,
  RecordBatch,
  RecordBatchStreamWriter,
  Struct,
  Table,
  Type,
  Utf8,
  Vector,
  makeData,
  makeVector,
  tableFromIPC,
  vectorFromArray,
} from 'apache-arrow';
import type {
  DictionaryBatch as DictionaryBatchHeader,
  RecordBatch as RecordBatchHeader,
} from 'apache-arrow/ipc/metadata/message';
import type { Data, DataType, Schema } from 'apache-arrow';
import type { ArrayBufferViewInput } from 'apache-arrow/util/buffer';
import { VectorLoader } from 'apache-arrow/visitor/vectorloader';
import { RtlError, describeValue } from './errors.js';

/** Writer pieces of at least this many bytes become frames of their own (views, no copy). */
const OWN_FRAME_BYTES = 64 * 1024;
/** Alignment that every typed array Arrow may build over a buffer needs (Float64, Int64). */
const ALIGN = 8;
const CONTINUATION = -1;

export interface EncodeTableOptions {
  /**
   * true (default): several frames; every writer piece of 64 KiB or more (a column's body
   * buffer) is its own frame viewing the table's memory, and the small pieces between them are
   * joined. false: one frame holding the whole stream (one copy of the table).
   */
  readonly chunked?: boolean;
}

/**
 * Encode a table as Arrow IPC stream bytes, as frames to send as they are.
 *
 * ```ts
 * const frames = encodeTable(table);             // [meta, col0 body, col1 body, eos]
 * const back = decodeTable(frames);
 * const one = encodeTable(table, { chunked: false })[0];
 * ```
 * Gotcha: chunked frames view the table's buffers; changing the table's typed arrays before
 * the frames are sent changes what is sent.
 */
export function encodeTable(table: Table, opts: EncodeTableOptions = {}): Uint8Array[] {
  const writer = new FrameCollector();
  writer.writeAll(table);
  const pieces = writer.pieces;
  if (opts.chunked === false) return [joinPieces(pieces)];
  const frames: Uint8Array[] = [];
  let small: Uint8Array[] = [];
  for (const piece of pieces) {
    if (piece.byteLength >= OWN_FRAME_BYTES) {
      if (small.length > 0) frames.push(joinPieces(small));
      small = [];
      frames.push(piece);
    } else {
      small.push(piece);
    }
  }
  if (small.length > 0) frames.push(joinPieces(small));
  return frames;
}

/** A stream writer that keeps each piece it writes, as a view, instead of queueing it. */
class FrameCollector extends RecordBatchStreamWriter {
  readonly pieces: Uint8Array[] = [];

  protected override _write(chunk: ArrayBufferViewInput): this {
    if (!this._started) return this;
    if (!ArrayBuffer.isView(chunk)) {
      throw new RtlError('RTL_ERR_INTERNAL', `Arrow writer produced ${describeValue(chunk)}`);
    }
    if (chunk.byteLength > 0) {
      this.pieces.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this._position += chunk.byteLength;
    }
    return this;
  }
}

function joinPieces(pieces: readonly Uint8Array[]): Uint8Array {
  if (pieces.length === 1 && pieces[0] !== undefined) return pieces[0];
  let total = 0;
  for (const p of pieces) total += p.byteLength;
  // Not zero-filled: every byte is written below. A fresh, unpooled ArrayBuffer is aligned.
  const buf = Buffer.allocUnsafeSlow(total);
  const out = new Uint8Array(buf.buffer, buf.byteOffset, total);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * Decode Arrow IPC stream bytes, given as frames cut anywhere, into a table.
 *
 * ```ts
 * const table = decodeTable(payloadFrames);
 * table.getChild('x')?.toArray();                // a Float64Array over the frame memory
 * decodeTable([schemaOnlyBytes]).numRows;         // 0
 * ```
 * Zero-copy: a buffer that lies within one frame at an 8-byte aligned address is viewed, not
 * copied, so the table shares memory with the frames (keep the frames unchanged while the
 * table is used). Other buffers are copied. Bad bytes throw RtlError RTL_ERR_BAD_DATA with the
 * byte offset in `detail.offset`.
 */
export function decodeTable(frames: readonly Uint8Array[]): Table {
  const stream = new FrameStream(frames);
  const total = stream.byteLength;
  if (total === 0) throw badData('empty input: no Arrow IPC stream bytes', 0);
  let schema: Schema | undefined;
  const batches: RecordBatch[] = [];
  const dictionaries = new Map<number, Vector>();
  let pos = 0;
  let ended = false;
  while (pos < total) {
    const start = pos;
    if (total - pos < 4) throw badData(`truncated message prefix at byte ${pos}`, pos);
    let metaLength = stream.int32(pos);
    pos += 4;
    if (metaLength === CONTINUATION) {
      if (total - pos < 4) throw badData(`truncated message prefix at byte ${start}`, start);
      metaLength = stream.int32(pos);
      pos += 4;
    }
    if (metaLength === 0) {
      ended = true;
      break;
    }
    if (metaLength < 0 || metaLength > total - pos) {
      throw badData(
        `message at byte ${start}: metadata length ${metaLength}, but ${total - pos} bytes are left`,
        start,
      );
    }
    const message = decodeMessage(stream.bytes(pos, pos + metaLength, false), start);
    pos += metaLength;
    const bodyLength = message.bodyLength;
    if (!Number.isSafeInteger(bodyLength) || bodyLength < 0 || bodyLength > total - pos) {
      throw badData(
        `message at byte ${start}: body length ${String(message.bodyLength)}, but ${total - pos} bytes are left`,
        start,
      );
    }
    const bodyStart = pos;
    pos += bodyLength;
    if (message.headerType === MessageHeader.Schema) {
      if (schema !== undefined) throw badData(`second schema message at byte ${start}`, start);
      schema = message.header() as Schema;
      continue;
    }
    if (schema === undefined) {
      throw badData(`message at byte ${start} comes before the schema message`, start);
    }
    if (message.headerType === MessageHeader.RecordBatch) {
      const header = message.header() as RecordBatchHeader;
      if (header.compression != null) return decodeWithArrow(frames, start);
      checkRegions(header, bodyLength, start);
      const body = stream.body(bodyStart, bodyLength);
      batches.push(loadBatch(schema, header, body, dictionaries, message.metadata, start));
    } else if (message.headerType === MessageHeader.DictionaryBatch) {
      const header = message.header() as DictionaryBatchHeader;
      if (header.data.compression != null) return decodeWithArrow(frames, start);
      checkRegions(header.data, bodyLength, start);
      const body = stream.body(bodyStart, bodyLength);
      loadDictionary(schema, header, body, dictionaries, start);
    } else {
      throw badData(
        `message at byte ${start} has header type ${String(message.headerType)}, expected a schema, record batch or dictionary batch`,
        start,
      );
    }
  }
  if (ended && pos < total) {
    throw badData(`${total - pos} bytes after the end-of-stream marker at byte ${pos - 8}`, pos);
  }
  if (schema === undefined) throw badData('the stream has no schema message', 0);
  return new Table(schema, batches);
}

function badData(message: string, offset: number, cause?: unknown): RtlError {
  return new RtlError(
    'RTL_ERR_BAD_DATA',
    `Arrow IPC stream: ${message}`,
    { offset },
    cause === undefined ? undefined : { cause },
  );
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function decodeMessage(meta: Uint8Array, start: number): Message {
  try {
    const message = Message.decode(meta);
    message.header(); // decode the header now, so that garbage fails here
    return message;
  } catch (err) {
    throw badData(`message at byte ${start}: undecodable metadata (${errorText(err)})`, start, err);
  }
}

function checkRegions(header: RecordBatchHeader, bodyLength: number, start: number): void {
  for (const { offset, length } of header.buffers) {
    if (offset < 0 || length < 0 || offset + length > bodyLength) {
      throw badData(
        `message at byte ${start}: buffer [${offset}, ${offset + length}) lies outside its body of ${bodyLength} bytes`,
        start,
      );
    }
  }
}

function loadBatch(
  schema: Schema,
  header: RecordBatchHeader,
  body: Uint8Array,
  dictionaries: Map<number, Vector>,
  metadata: Map<string, string>,
  start: number,
): RecordBatch {
  try {
    const loader = new VectorLoader(
      body,
      header.nodes,
      header.buffers,
      dictionaries,
      schema.metadataVersion,
      header.variadicBufferCounts,
    );
    const children = loader.visitMany(schema.fields) as Data[];
    for (const [i, child] of children.entries())
      checkData(child, schema.fields[i]?.name ?? '', header.length);
    const data = makeData({ type: new Struct(schema.fields), length: header.length, children });
    return new RecordBatch(schema, data, metadata);
  } catch (err) {
    if (err instanceof RtlError)
      throw badData(`record batch at byte ${start}: ${err.message}`, start, err);
    throw badData(
      `record batch at byte ${start}: cannot load columns (${errorText(err)})`,
      start,
      err,
    );
  }
}

function loadDictionary(
  schema: Schema,
  header: DictionaryBatchHeader,
  body: Uint8Array,
  dictionaries: Map<number, Vector>,
  start: number,
): void {
  const type = schema.dictionaries.get(header.id);
  if (type === undefined) {
    throw badData(`dictionary batch at byte ${start}: unknown dictionary id ${header.id}`, start);
  }
  try {
    const loader = new VectorLoader(
      body,
      header.nodes,
      header.buffers,
      dictionaries,
      schema.metadataVersion,
      header.data.variadicBufferCounts,
    );
    const data: Data[] = loader.visitMany<DataType>([type]);
    for (const d of data) checkData(d, `dictionary ${header.id}`, d.length);
    const previous = dictionaries.get(header.id);
    const vector = new Vector(data);
    dictionaries.set(
      header.id,
      (previous !== undefined && header.isDelta ? previous.concat(vector) : vector).memoize(),
    );
  } catch (err) {
    throw badData(`dictionary batch at byte ${start}: cannot load (${errorText(err)})`, start, err);
  }
}

/** Check that the buffers of a loaded column are large enough for its length. */
function checkData(data: Data, column: string, length: number): void {
  if (data.length !== length) {
    throw new RtlError(
      'RTL_ERR_BAD_DATA',
      `column "${column}" has ${data.length} rows, expected ${length}`,
    );
  }
  const end = data.offset + data.length;
  const fail = (what: string): never => {
    throw new RtlError(
      'RTL_ERR_BAD_DATA',
      `column "${column}": ${what} is too short for ${data.length} rows`,
    );
  };
  // arrow-js types these buffers as always present; they are absent where a type has none.
  const bitmap = data.nullBitmap as Uint8Array | undefined;
  const offsets = data.valueOffsets as ArrayLike<unknown> | undefined;
  const values = data.values as ArrayLike<unknown> | undefined;
  if (data.nullCount > 0 && bitmap !== undefined && bitmap.byteLength * 8 < end) {
    fail('the validity bitmap');
  }
  if (offsets !== undefined) {
    if (offsets.length < end + 1) fail('the offsets buffer');
  } else if (data.typeId === Type.Bool) {
    if (values !== undefined && values.length * 8 < end) fail('the values buffer');
  } else if (values !== undefined && data.typeId !== Type.Union) {
    if (values.length < end * data.stride) fail('the values buffer');
  }
  for (const child of data.children) checkData(child, column, child.length);
}

/** Fall back to arrow-js's reader (one joined copy) for compressed bodies. */
function decodeWithArrow(frames: readonly Uint8Array[], start: number): Table {
  try {
    return tableFromIPC(joinPieces(frames));
  } catch (err) {
    throw badData(`compressed message at byte ${start}: ${errorText(err)}`, start, err);
  }
}

/** A logical byte stream over frames. */
class FrameStream {
  readonly byteLength: number;
  readonly #frames: Uint8Array[];
  /** Stream offset of each frame's first byte. */
  readonly #starts: number[];

  constructor(frames: readonly Uint8Array[]) {
    this.#frames = [];
    this.#starts = [];
    let at = 0;
    for (const [i, f] of frames.entries()) {
      if (!(f instanceof Uint8Array)) {
        throw new RtlError(
          'RTL_ERR_BAD_DATA',
          `Arrow IPC stream: frame ${i} is ${describeValue(f)}, expected bytes`,
          { index: i },
        );
      }
      if (f.byteLength === 0) continue;
      this.#frames.push(f);
      this.#starts.push(at);
      at += f.byteLength;
    }
    this.byteLength = at;
  }

  /** Index of the frame holding stream byte `pos` (pos < byteLength). */
  #locate(pos: number): number {
    const starts = this.#starts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] ?? 0) <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  int32(pos: number): number {
    const b = this.bytes(pos, pos + 4, false);
    return new DataView(b.buffer, b.byteOffset, 4).getInt32(0, true);
  }

  /** Bytes [begin, end): a view when they lie in one frame (and, if `aligned`, start aligned). */
  bytes(begin: number, end: number, aligned: boolean): Uint8Array {
    const length = end - begin;
    if (length <= 0) return new Uint8Array(0);
    let i = this.#locate(begin);
    const frame = this.#frames[i] as Uint8Array;
    const inFrame = begin - (this.#starts[i] as number);
    if (inFrame + length <= frame.byteLength) {
      const byteOffset = frame.byteOffset + inFrame;
      if (!aligned || byteOffset % ALIGN === 0)
        return new Uint8Array(frame.buffer, byteOffset, length);
    }
    const out = new Uint8Array(length);
    let at = 0;
    let from = inFrame;
    while (at < length) {
      const f = this.#frames[i++] as Uint8Array;
      const n = Math.min(f.byteLength - from, length - at);
      out.set(f.subarray(from, from + n), at);
      at += n;
      from = 0;
    }
    return out;
  }

  /**
   * A message body for VectorLoader, which only calls `subarray(begin, end)`: the frame view
   * itself when the body lies in one aligned frame, else an object that resolves each buffer
   * region on its own (a view where possible, a copy where a region straddles frames).
   */
  body(start: number, length: number): Uint8Array {
    const whole = this.#viewIfAligned(start, length);
    if (whole !== undefined) return whole;
    const body = {
      byteLength: length,
      length,
      subarray: (begin = 0, end = length): Uint8Array =>
        this.bytes(start + begin, start + end, true),
    };
    return body as unknown as Uint8Array;
  }

  #viewIfAligned(start: number, length: number): Uint8Array | undefined {
    if (length === 0) return new Uint8Array(0);
    const i = this.#locate(start);
    const frame = this.#frames[i] as Uint8Array;
    const inFrame = start - (this.#starts[i] as number);
    const byteOffset = frame.byteOffset + inFrame;
    if (inFrame + length <= frame.byteLength && byteOffset % ALIGN === 0) {
      return new Uint8Array(frame.buffer, byteOffset, length);
    }
    return undefined;
  }
}

/** Typed arrays toTable accepts as columns, stored without a copy. */
type NumericArray =
  | Float64Array
  | Float32Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** Plain columns toTable accepts: typed arrays, or arrays of numbers or of strings. */
export type ColumnInput =
  | NumericArray
  | Uint8ClampedArray
  | readonly (number | null | undefined)[]
  | readonly (string | null | undefined)[];

/**
 * Make a table from an Arrow Table (returned as is) or an object of equal-length columns.
 *
 * ```ts
 * toTable({ x: new Float64Array([1, 2]), y: [3, null] });   // y: Float64 with a null
 * toTable({ name: ['a', 'b'], id: Int32Array.of(1, 2) });   // Utf8 and Int32
 * toTable(existingTable) === existingTable;                 // true
 * ```
 * Typed arrays are used without a copy (the table views them). Arrays of numbers become
 * Float64 (null and undefined become nulls; NaN stays a value); arrays of strings become Utf8.
 * Throws RtlError RTL_ERR_BAD_DATA naming the column: not an array, mixed types, or a length
 * that differs from the first column's.
 */
export function toTable(data: unknown): Table {
  if (data instanceof Table) return data;
  if (
    typeof data !== 'object' ||
    data === null ||
    Array.isArray(data) ||
    ArrayBuffer.isView(data)
  ) {
    throw new RtlError(
      'RTL_ERR_BAD_DATA',
      `data is ${describeValue(data)}, expected an Arrow Table or an object of columns like { x: Float64Array }`,
      { got: describeValue(data) },
    );
  }
  const names = Object.keys(data);
  if (names.length === 0) return emptyTable();
  const columns: Record<string, Vector> = {};
  let first: { name: string; length: number } | undefined;
  for (const name of names) {
    const column = (data as Record<string, unknown>)[name];
    const vector = toVector(name, column);
    if (first === undefined) first = { name, length: vector.length };
    else if (vector.length !== first.length) {
      throw new RtlError(
        'RTL_ERR_BAD_DATA',
        `column "${name}" has ${vector.length} rows, but column "${first.name}" has ${first.length}`,
        { param: name, expected: String(first.length), got: String(vector.length) },
      );
    }
    columns[name] = vector;
  }
  return new Table(columns);
}

function toVector(name: string, column: unknown): Vector {
  if (ArrayBuffer.isView(column)) {
    if (column instanceof Uint8ClampedArray) {
      return makeVector(new Uint8Array(column.buffer, column.byteOffset, column.length));
    }
    if (isNumericArray(column)) return makeVector(column);
    throw new RtlError(
      'RTL_ERR_BAD_DATA',
      `column "${name}" is ${describeValue(column)}, expected a numeric typed array`,
      { param: name, got: describeValue(column) },
    );
  }
  if (!Array.isArray(column)) {
    throw new RtlError(
      'RTL_ERR_BAD_DATA',
      `column "${name}" is ${describeValue(column)}, expected a typed array or an array of numbers or strings`,
      { param: name, got: describeValue(column) },
    );
  }
  const items = column as readonly unknown[];
  let kind: 'number' | 'string' | undefined;
  let nulls = 0;
  for (let i = 0; i < items.length; i++) {
    const v = items[i];
    if (v === null || v === undefined) {
      nulls++;
      continue;
    }
    const k = typeof v;
    if (k !== 'number' && k !== 'string') {
      throw new RtlError(
        'RTL_ERR_BAD_DATA',
        `column "${name}", row ${i}: ${describeValue(v)} is a ${k}, expected a number or a string`,
        { param: name, index: i, got: describeValue(v) },
      );
    }
    if (kind === undefined) kind = k;
    else if (k !== kind) {
      throw new RtlError(
        'RTL_ERR_BAD_DATA',
        `column "${name}" mixes types: row ${i} is a ${k} (${describeValue(v)}), earlier rows are ${kind}s`,
        { param: name, index: i, got: describeValue(v) },
      );
    }
  }
  if (kind === 'string') {
    // vectorFromArray would store undefined as ''.
    return vectorFromArray(
      nulls === 0 ? (items as string[]) : items.map((v) => v ?? null),
      new Utf8(),
    );
  }
  return numbersToFloat64(items as readonly (number | null | undefined)[], nulls);
}

function isNumericArray(v: ArrayBufferView): v is NumericArray {
  return (
    v instanceof Float64Array ||
    v instanceof Float32Array ||
    v instanceof Int8Array ||
    v instanceof Int16Array ||
    v instanceof Int32Array ||
    v instanceof Uint8Array ||
    v instanceof Uint16Array ||
    v instanceof Uint32Array ||
    v instanceof BigInt64Array ||
    v instanceof BigUint64Array
  );
}

function numbersToFloat64(items: readonly (number | null | undefined)[], nulls: number): Vector {
  const length = items.length;
  const values = new Float64Array(length);
  if (nulls === 0) {
    for (let i = 0; i < length; i++) values[i] = items[i] as number;
    return makeVector(values);
  }
  const nullBitmap = new Uint8Array(((length + 63) >> 6) << 3);
  for (let i = 0; i < length; i++) {
    const v = items[i];
    if (v === null || v === undefined) continue;
    values[i] = v;
    nullBitmap[i >> 3] = (nullBitmap[i >> 3] as number) | (1 << (i & 7));
  }
  return makeVector(
    makeData({ type: new Float64(), length, nullCount: nulls, nullBitmap, data: values }),
  );
}

/**
 * Bytes held by a table's buffers (values, offsets, validity, children, dictionaries), without
 * encoding it. Close to, and never more than slightly below, its IPC body size.
 *
 * ```ts
 * tableByteLength(toTable({ x: new Float64Array(1e6) }));   // 8_000_000
 * ```
 */
export function tableByteLength(table: Table): number {
  let bytes = 0;
  const seen = new Set<Vector>();
  const visitDictionaries = (data: Data): void => {
    const dictionary = data.dictionary;
    if (dictionary !== undefined && !seen.has(dictionary)) {
      seen.add(dictionary);
      for (const d of dictionary.data as Data[]) {
        bytes += d.byteLength;
        visitDictionaries(d);
      }
    }
    for (const child of data.children) visitDictionaries(child);
  };
  for (const batch of table.batches) {
    bytes += batch.data.byteLength; // Data.byteLength includes the children
    visitDictionaries(batch.data);
  }
  return bytes;
}

/**
 * A table with no columns and no rows.
 *
 * ```ts
 * emptyTable().numRows;   // 0
 * ```
 */
export function emptyTable(): Table {
  return new Table();
}
