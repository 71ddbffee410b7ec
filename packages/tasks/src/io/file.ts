/**
 * Tables from and to files, by format: `dat` (+ `.meta`), `npy`, `csv`, `arrow`, `feather`.
 * A file is read into one buffer, and `.dat`/`.npy`/`.arrow` columns are views into it where
 * the data is aligned and in this machine's byte order (no second copy). Writes go to a
 * temporary file in the same directory that is renamed over the target at the end, so a
 * reader never sees half a file.
 *
 * ```ts
 * const table = readTableFile('/data/x.npy', 'npy');
 * writeTableFile(table, '/data/out/x.csv', 'csv', { delimiter: ';' }); // creates /data/out
 * ```
 * Gotcha: errors are RtlErrors without a stage (RTL_ERR_BAD_DATA naming the file and the
 * line or byte; RTL_ERR_BAD_PARAM with `detail.param` for a missing file or a bad
 * delimiter); the open and write tasks add the stage and task.
 */
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, extname } from 'node:path';
import type { Table } from 'apache-arrow';
import { closest } from '@rtl/core';
import { tableFromCsv } from './csv-read.js';
import { delimiterProblem } from './csv-scan.js';
import { writeCsv } from './csv-write.js';
import { parseMeta, readDatFile, writeDat } from './dat.js';
import type { RecordLayout } from './dtype.js';
import { badFile, fileParamError } from './file-error.js';
import { tableFromArrowFile, writeArrowFile } from './ipc.js';
import { readNpyFile, writeNpy } from './npy.js';
import type { Sink } from './record-writer.js';

export const FILE_FORMATS = ['dat', 'csv', 'npy', 'arrow', 'feather'] as const;
export type FileFormat = (typeof FILE_FORMATS)[number];

export interface FileOptions {
  /** CSV field delimiter, one ASCII character (default `,`); ignored by other formats. */
  readonly delimiter?: string;
}

const LISTED = 12;

/** The errno code of a Node system error (ENOENT...), or undefined for anything else. */
function errnoOf(err: unknown): string | undefined {
  if (!(err instanceof Error) || !('syscall' in err)) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** The error for a file that is not there, saying where rtl looked and what is there. */
function missing(file: string, param: string): Error {
  const dir = dirname(file);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return fileParamError(
      'RTL_ERR_BAD_PARAM',
      'path',
      file,
      `no such file: the directory "${dir}" does not exist`,
    );
  }
  const ext = extname(file);
  const want = basename(file);
  const same = entries.filter((e) => extname(e) === ext).sort();
  const near = closest(want, same);
  const stem = want.slice(0, want.length - ext.length);
  let hint = '';
  if (ext !== '' && extname(stem) === ext && entries.includes(stem))
    hint = `; "${stem}" is there: the extension is added to the filename, so give it as "${stem.slice(0, stem.length - ext.length)}"`;
  else if (near !== undefined) hint = `; did you mean "${near}"?`;
  const listed =
    same.length === 0
      ? `it has no ${ext} files`
      : `its ${ext} files: ${same.slice(0, LISTED).join(', ')}${same.length > LISTED ? `, and ${same.length - LISTED} more` : ''}`;
  return fileParamError(
    'RTL_ERR_BAD_PARAM',
    param,
    file,
    `no such file in the directory "${dir}" (${listed})${hint}`,
  );
}

/** Run `fn` on the open file (a regular file; a missing one gets a helpful error). */
export function withFile<T>(file: string, param: string, fn: (fd: number, size: number) => T): T {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') throw missing(file, param);
    throw ioError(err, file, 'read');
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory())
      throw fileParamError('RTL_ERR_BAD_PARAM', param, file, 'is a directory, not a file');
    return fn(fd, st.size);
  } finally {
    closeSync(fd);
  }
}

/**
 * The whole file in one buffer that starts on an allocation of its own (so typed-array views
 * into it are aligned), with `spare` writable bytes after the contents.
 */
export function readFileBytes(file: string, param = 'filename', spare = 0): Buffer {
  return withFile(file, param, (fd, size) => {
    const buf = Buffer.allocUnsafeSlow(size + spare);
    let at = 0;
    while (at < size) {
      const got = readSync(fd, buf, at, size - at, at);
      if (got === 0) break;
      at += got;
    }
    return at === size ? buf : buf.subarray(0, at + spare);
  });
}

function ioError(err: unknown, file: string, doing: 'read' | 'write'): Error {
  const code = errnoOf(err);
  const why = err instanceof Error ? err.message : String(err);
  const pathProblem = [
    'EACCES',
    'EPERM',
    'EROFS',
    'ENOTDIR',
    'EISDIR',
    'ENAMETOOLONG',
    'ENOENT',
    'EEXIST',
  ];
  if (code !== undefined && pathProblem.includes(code))
    return fileParamError('RTL_ERR_BAD_PARAM', 'path', file, `cannot ${doing} it: ${why}`);
  return new Error(`cannot ${doing} file "${file}": ${why}`, { cause: err });
}

/** The `.meta` file beside a `.dat` or `.csv` file. */
export function metaFileOf(file: string): string {
  return file.slice(0, file.length - extname(file).length) + '.meta';
}

function exists(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Whether every field of the first non-blank line of `bytes` reads as a number. */
function firstLineIsNumbers(bytes: Uint8Array, delimiter: string): boolean {
  let s = 0;
  while (s < bytes.length && (bytes[s] === 10 || bytes[s] === 13)) s++;
  let e = s;
  while (e < bytes.length && bytes[e] !== 10 && bytes[e] !== 13) e++;
  const line = Buffer.from(bytes.buffer, bytes.byteOffset + s, e - s).toString('latin1');
  if (line.trim() === '') return false;
  return line
    .split(delimiter)
    .every(
      (f) =>
        /^\s*"?\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*"?\s*$/.test(f) ||
        /^\s*[+-]?(nan|inf)\s*$/i.test(f),
    );
}

/** Read the table of `file` in `format`. */
export function readTableFile(file: string, format: FileFormat, opts: FileOptions = {}): Table {
  switch (format) {
    case 'npy':
      return withFile(file, 'filename', (fd, size) => readNpyFile(fd, size, file));
    case 'arrow':
    case 'feather':
      return tableFromArrowFile(readFileBytes(file), file);
    case 'dat': {
      const metaFile = metaFileOf(file);
      if (!exists(file)) throw missing(file, 'filename');
      if (!exists(metaFile))
        throw badFile(
          metaFile,
          `not found: a .dat file is read with the NumPy dtype in the .meta file beside it, e.g. [('x', '<f8'), ('y', '<i8')]`,
        );
      const layout = parseMeta(readFileBytes(metaFile).toString('utf8'), metaFile);
      return withFile(file, 'filename', (fd, size) =>
        readDatFile(fd, size, layout, file, metaFile),
      );
    }
    case 'csv': {
      // One spare byte: the parser wants a line end after the last record, and gets it
      // without a copy of the file.
      const buf = readFileBytes(file, 'filename', 1);
      const size = buf.length - 1;
      const last = buf[size - 1];
      const bytes = size > 0 && last !== 10 && last !== 13 ? buf : buf.subarray(0, size);
      if (bytes === buf) buf[size] = 10;
      const delimiter = opts.delimiter ?? ',';
      const metaFile = metaFileOf(file);
      let layout: RecordLayout | undefined;
      if (exists(metaFile) && firstLineIsNumbers(bytes, delimiter))
        layout = parseMeta(readFileBytes(metaFile).toString('utf8'), metaFile);
      return tableFromCsv(bytes, file, { delimiter, ...(layout === undefined ? {} : { layout }) });
    }
  }
}

/** Write through `fill` to a temporary file beside `file`, then rename it to `file`. */
function writeAtomically(file: string, fill: (sink: Sink) => void): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`;
  let fd: number;
  try {
    mkdirSync(dirname(file), { recursive: true });
    fd = openSync(tmp, 'w');
  } catch (err) {
    throw ioError(err, file, 'write');
  }
  let ok = false;
  try {
    fill((bytes) => {
      let at = 0;
      while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
    });
    ok = true;
  } catch (err) {
    if (errnoOf(err) !== undefined) throw ioError(err, file, 'write');
    throw err;
  } finally {
    closeSync(fd);
    if (!ok) rmSync(tmp, { force: true });
  }
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw ioError(err, file, 'write');
  }
}

/** Write `table` to `file` in `format` (creating its directory; `.dat` also writes `.meta`). */
export function writeTableFile(
  table: Table,
  file: string,
  format: FileFormat,
  opts: FileOptions = {},
): void {
  switch (format) {
    case 'npy':
      writeAtomically(file, (sink) => writeNpy(table, file, sink));
      return;
    case 'arrow':
    case 'feather':
      writeAtomically(file, (sink) => writeArrowFile(table, sink));
      return;
    case 'csv': {
      const delimiter = opts.delimiter ?? ',';
      const problem = delimiterProblem(delimiter);
      if (problem !== undefined)
        throw fileParamError(
          'RTL_ERR_BAD_PARAM',
          'delimiter',
          file,
          `cannot separate fields with ${JSON.stringify(delimiter)}: ${problem}`,
        );
      writeAtomically(file, (sink) => writeCsv(table, delimiter, sink));
      return;
    }
    case 'dat': {
      let meta = '';
      writeAtomically(file, (sink) => (meta = writeDat(table, file, sink)));
      writeAtomically(metaFileOf(file), (sink) => sink(Buffer.from(meta, 'utf8')));
      return;
    }
  }
}
