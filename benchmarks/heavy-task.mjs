// A CPU-heavy table task for the split benchmark: y = sum of sin(x * k) for k < rounds.
import { defineTableTask, p, ColumnSet, toFloat64, float64Data, andValidity } from '@rtl/tasks';

export const heavy = defineTableTask({
  name: 'heavy',
  summary: 'y = sum of sin(x * k) for k < rounds',
  params: p.object({ a: p.column(), rounds: p.number(), column: p.string() }),
  run(table, { a, rounds, column }, ctx) {
    const set = ColumnSet.fromTable(table);
    set.setFloat64(
      column,
      set.numeric(a, 'a', ctx).map((d) => {
        const x = toFloat64(d);
        const out = new Float64Array(d.length);
        for (let i = 0; i < out.length; i++) {
          let s = 0;
          for (let k = 0; k < rounds; k++) s += Math.sin(x[i] * k);
          out[i] = s;
        }
        return float64Data(out, andValidity(d.length, [d]));
      }),
    );
    return set.toTable();
  },
});
