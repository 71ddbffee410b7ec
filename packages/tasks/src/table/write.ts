/**
 * write (raspi-rtl's "array write"; also arrayWrite, writeArray, task_write, task_array_write):
 *   { filename, path = '.', extension: 'dat' | 'csv' | 'npy' | 'arrow' | 'feather', delimiter? }
 * Writes the stage's table to `<path>/<filename>.<extension>` exactly (the directory is
 * created; a relative path is resolved against the tasknode's working directory; the file is
 * replaced atomically) and passes the table on unchanged. `.dat` also writes
 * `<filename>.meta`. Nulls: CSV writes an empty field, .arrow/.feather keep them, .npy/.dat
 * write NaN in float columns and refuse an integer or bool column holding a null (naming the
 * column and row). .npy/.dat take number and bool columns only.
 */
import { defineTableTask } from '../define.js';
import type { TableTaskDef } from '../define.js';
import { writeTableFile } from '../io/file.js';
import { inTask } from '../io/file-error.js';
import { fileOf, fileParams } from './open.js';
import type { FileParams } from './open.js';

export const write: TableTaskDef<FileParams> = defineTableTask({
  worker: true,
  name: 'write',
  aliases: ['arrayWrite', 'writeArray'],
  summary:
    'Write the table to <path>/<filename>.<extension> (dat+meta, npy, csv, arrow, feather) and pass it on unchanged',
  params: fileParams,
  run(table, params, ctx) {
    try {
      writeTableFile(table, fileOf(params), params.extension, {
        ...(params.delimiter === undefined ? {} : { delimiter: params.delimiter }),
      });
    } catch (err) {
      throw inTask(err, ctx);
    }
    return table;
  },
});
