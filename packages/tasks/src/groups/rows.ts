/** Row-wise and table-shaping tasks: aggregate, crossAverage, crossMax, classifyStatic, columnSpace, unique, sort. */
import type { TableTaskDef } from '../define.js';

export const rowTasks: readonly TableTaskDef[] = [];
