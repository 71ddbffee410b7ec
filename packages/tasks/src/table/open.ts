/**
 * open (raspi-rtl's openArray; also task_open_array, open_array, task_open):
 *   { filename, path = '.', extension: 'dat' | 'csv' | 'npy' | 'arrow' | 'feather', delimiter? }
 * Reads `<path>/<filename>.<extension>`; a relative path is resolved against the tasknode's
 * working directory. The stage's input table is replaced by the file's table (whatever came
 * in is dropped), so `open` normally starts the first stage. Formats: io/dat.ts, io/npy.ts,
 * io/csv-read.ts, io/ipc.ts. `delimiter` (CSV only; default `,`; null means the default, as
 * raspi-rtl documents write `"delimiter": null`) is one ASCII character.
 */
import { resolve } from 'node:path';
import { describeValue } from '@rtl/core';
import { defineTableTask } from '../define.js';
import type { TableTaskDef } from '../define.js';
import { delimiterProblem } from '../io/csv-scan.js';
import { FILE_FORMATS, readTableFile } from '../io/file.js';
import type { FileFormat } from '../io/file.js';
import { inTask } from '../io/file-error.js';
import { p, paramError } from '../schema.js';
import type { Infer, Schema } from '../schema.js';

/** A CSV delimiter: one ASCII character, or absent / null for the default. */
function delimiter(): Schema<string | undefined> {
  const expected = 'one ASCII character such as ",", ";", "\\t" or "|" (or null for ",")';
  return {
    expected,
    optional: true,
    parse(v, where, path = '') {
      if (v === undefined || v === null) return undefined;
      const d = v === '\\t' ? '\t' : v;
      const problem = typeof d === 'string' ? delimiterProblem(d) : 'expected a string';
      if (typeof d !== 'string' || problem !== undefined)
        throw paramError(
          where,
          path,
          `expected ${expected}, got ${describeValue(v)}: ${problem ?? ''}`,
          {
            expected,
            got: describeValue(v),
          },
        );
      return d;
    },
    describe: () => ({ type: 'string', expected, optional: true, default: ',' }),
  };
}

export const fileParams = p.object({
  filename: p.string({ minLength: 1 }),
  path: p.optional(p.string(), '.'),
  extension: p.oneOf(FILE_FORMATS),
  delimiter: delimiter(),
});

export type FileParams = Infer<typeof fileParams>;

/** The file a task's params name: `<path>/<filename>.<extension>` from the working directory. */
export function fileOf(params: FileParams): string {
  return resolve(process.cwd(), params.path, `${params.filename}.${params.extension}`);
}

export const open: TableTaskDef<FileParams> = defineTableTask({
  worker: true,
  name: 'open',
  aliases: ['openArray'],
  summary:
    'Read a table from <path>/<filename>.<extension> (dat+meta, npy, csv, arrow, feather); replaces the input table',
  params: fileParams,
  run(_table, params, ctx) {
    const format: FileFormat = params.extension;
    try {
      return readTableFile(fileOf(params), format, {
        ...(params.delimiter === undefined ? {} : { delimiter: params.delimiter }),
      });
    } catch (err) {
      throw inTask(err, ctx);
    }
  },
});
