/** File tasks: open (openArray), write (array write). */
import type { TableTaskDef } from '../define.js';
import { open } from '../table/open.js';
import { write } from '../table/write.js';

export const ioTasks: readonly TableTaskDef[] = [open, write];
