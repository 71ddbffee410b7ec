/** null: returns its input table unchanged (takes no parameters). */
import { defineTableTask } from '../define.js';
import { p } from '../schema.js';

export const nullTask = defineTableTask({
  name: 'null',
  summary: 'Return the input table unchanged',
  params: p.object({}),
  run: (table) => table,
});
