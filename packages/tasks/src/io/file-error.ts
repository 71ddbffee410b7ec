/**
 * Errors about files: every message names the file and, where it helps, the line or the byte
 * offset of the problem. Readers throw these without a stage; the open/write tasks add the
 * stage and the task name (`inTask`).
 *
 * ```ts
 * throw badFile('/data/x.npy', 'expected the magic "\\x93NUMPY"', { offset: 0 });
 * // file "/data/x.npy", byte 0: expected the magic "\x93NUMPY"
 * ```
 */
import { RtlError } from '@rtl/core';
import type { ErrorCode } from '@rtl/core';
import type { ParamWhere } from '../schema.js';

/** Where in a file a problem is (1-based line, 0-based byte offset). */
export interface FileSpot {
  readonly line?: number;
  readonly offset?: number;
}

function spotText(spot: FileSpot): string {
  let s = '';
  if (spot.line !== undefined) s += `, line ${spot.line}`;
  if (spot.offset !== undefined) s += `, byte ${spot.offset}`;
  return s;
}

/** RTL_ERR_BAD_DATA: the contents of `file` are not what its format requires. */
export function badFile(file: string, problem: string, spot: FileSpot = {}): RtlError {
  return new RtlError('RTL_ERR_BAD_DATA', `file "${file}"${spotText(spot)}: ${problem}`, {
    file,
    ...(spot.offset === undefined ? {} : { offset: spot.offset }),
    ...(spot.line === undefined ? {} : { line: spot.line }),
  });
}

/**
 * An error that a parameter has to fix (a missing file is the `filename`'s fault), before the
 * stage and task are known: `inTask` completes the message.
 */
export function fileParamError(
  code: ErrorCode,
  param: string,
  file: string,
  problem: string,
): RtlError {
  return new RtlError(code, `file "${file}": ${problem}`, { file, param });
}

/**
 * The error a task throws: RtlErrors without a stage get `stage "s", task "t"[, param "p"]: `
 * in front of their message (and stage and task in detail); anything else passes unchanged
 * (the registry reports it as RTL_ERR_STAGE_FAILED).
 */
export function inTask(err: unknown, where: ParamWhere): unknown {
  if (!(err instanceof RtlError) || err.detail.stage !== undefined) return err;
  const { param } = err.detail;
  const at = param === undefined ? '' : `, param "${param}"`;
  return new RtlError(
    err.code,
    `stage "${where.stage}", task "${where.task}"${at}: ${err.message}`,
    { ...err.detail, stage: where.stage, task: where.task },
    { cause: err },
  );
}
