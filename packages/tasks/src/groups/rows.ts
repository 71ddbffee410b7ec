/** Row-wise and table-shaping tasks: aggregate, crossAverage, crossMax, classifyStatic, columnSpace, unique, sort. */
import type { TableTaskDef } from '../define.js';
import { classifyStatic } from '../table/classify.js';
import { columnSpace } from '../table/column-space.js';
import { aggregate, crossAverage, crossMax } from '../table/cross.js';
import { sort } from '../table/sort.js';
import { unique } from '../table/unique.js';

export const rowTasks: readonly TableTaskDef[] = [
  aggregate,
  crossAverage,
  crossMax,
  classifyStatic,
  columnSpace,
  unique,
  sort,
] as readonly TableTaskDef[];
