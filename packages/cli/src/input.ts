/**
 * Reading what `rtl run` is given: a document or an envelope `{ transform, data }` from a
 * JSON file, and input data from a JSON file (columns or rows) or an Arrow IPC file.
 * Every problem names the file (and, for JSON, the line and column).
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { tableFromIPC, type Table } from 'apache-arrow';
import { CliError } from './command.js';

/** Keys an envelope may have. */
const ENVELOPE_KEYS = ['transform', 'data', 'description'];

export interface RunInput {
  /** The transform document (DSDSL). */
  readonly doc: Record<string, unknown>;
  /** Columns or a table, when the file carries data. */
  readonly data?: unknown;
}

function readBytes(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CliError(`${what} ${file} does not exist`);
    if (code === 'EISDIR') throw new CliError(`${what} ${file} is a directory, expected a file`);
    throw new CliError(
      `cannot read ${what} ${file}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

/** Line and column (1-based) of a character offset. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/** Parse JSON text; a syntax error names the file, line and column. */
export function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const pos = /at position (\d+)/.exec(message);
    let where = '';
    if (pos?.[1] !== undefined && !/line \d+/.test(message)) {
      const { line, column } = lineColumn(text, Number(pos[1]));
      where = ` (line ${String(line)}, column ${String(column)})`;
    }
    throw new CliError(`${file} is not valid JSON: ${message}${where}`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Rows `[{ x: 1, y: 2 }, ...]` become columns `{ x: [1, ...], y: [2, ...] }`. */
function rowsToColumns(rows: unknown[], file: string): Record<string, unknown[]> {
  const names: string[] = [];
  for (const [i, row] of rows.entries()) {
    if (!isPlainObject(row))
      throw new CliError(
        `${file}: data row ${String(i)} is not an object; rows look like { "x": 1, "y": 2 }`,
      );
    for (const k of Object.keys(row)) if (!names.includes(k)) names.push(k);
  }
  const columns: Record<string, unknown[]> = {};
  for (const name of names)
    columns[name] = rows.map((r) => (r as Record<string, unknown>)[name] ?? null);
  return columns;
}

/** JSON data: an object of columns, or an array of row objects. */
function jsonData(value: unknown, file: string, where: string): unknown {
  if (Array.isArray(value)) return rowsToColumns(value, file);
  if (isPlainObject(value)) return value;
  throw new CliError(
    `${file}: ${where} must be an object of columns like { "x": [1, 2], "y": [3, 4] } or an array of rows`,
  );
}

/** Read a document file: a DSDSL document, or an envelope `{ transform, data }`. */
export function readRunInput(file: string): RunInput {
  const value = parseJson(readBytes(file, 'document').toString('utf8'), file);
  if (!isPlainObject(value))
    throw new CliError(
      `${file} holds ${Array.isArray(value) ? 'an array' : typeof value}; expected a transform document { "0": { "tasks": { ... } } } or { "transform": { ... }, "data": { ... } }`,
    );
  if (!Object.hasOwn(value, 'transform')) return { doc: value };
  const extra = Object.keys(value).filter((k) => !ENVELOPE_KEYS.includes(k));
  if (extra.length > 0)
    throw new CliError(
      `${file}: an envelope has the keys ${ENVELOPE_KEYS.join(', ')}; "${extra.join('", "')}" does not belong (stages go inside "transform")`,
    );
  if (!isPlainObject(value.transform))
    throw new CliError(
      `${file}: "transform" must be a transform document { "0": { "tasks": { ... } } }`,
    );
  const data = value.data === undefined ? undefined : jsonData(value.data, file, '"data"');
  return { doc: value.transform, data };
}

const ARROW_MAGIC = Buffer.from('ARROW1');
const ARROW_EXTENSIONS = ['.arrow', '.feather', '.arrows', '.ipc'];

/** Read `--data`: a JSON file of columns or rows, or an Arrow IPC file or stream. */
export function readDataFile(file: string): unknown {
  const bytes = readBytes(file, 'data file');
  const ext = extname(file).toLowerCase();
  const looksArrow =
    bytes.subarray(0, 6).equals(ARROW_MAGIC) ||
    (bytes.length >= 4 && bytes.readUInt32LE(0) === 0xffffffff);
  if (ext === '.json' || (!looksArrow && !ARROW_EXTENSIONS.includes(ext)))
    return jsonData(parseJson(bytes.toString('utf8'), file), file, 'the data');
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (err) {
    throw new CliError(
      `${file} is not a readable Arrow IPC file (${err instanceof Error ? err.message : String(err)}); expected the IPC file format (.arrow, .feather v2) or stream format (.arrows)`,
    );
  }
  if (table.schema.fields.length === 0)
    throw new CliError(`${file} is not a readable Arrow IPC file: it holds no columns`);
  return table;
}
