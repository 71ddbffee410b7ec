/** File tasks: open (openArray), write (array write). */
import type { TableTaskDef } from '../define.js';

export const ioTasks: readonly TableTaskDef[] = [];
