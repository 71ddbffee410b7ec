import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TASK_DOCS, createBundledRegistry, renderTasksDoc } from '@rtl/tasks';

const page = new URL('../../../docs/tasks.md', import.meta.url);

describe('docs/tasks.md', () => {
  it('matches what the registry renders (run `npm run docs` after changing a task)', async () => {
    expect(readFileSync(page, 'utf8')).toBe(await renderTasksDoc(createBundledRegistry()));
  });

  it('has a formula and an example for every bundled table task', () => {
    const tasks = createBundledRegistry()
      .list()
      .filter((t) => t.kind === 'table')
      .map((t) => t.name);
    expect(tasks.filter((t) => TASK_DOCS[t] === undefined)).toEqual([]);
  });

  it('shows example outputs computed by the tasks (add: 1 + 2 = 3, a null stays null)', async () => {
    const text = await renderTasksDoc(createBundledRegistry());
    const add = text.slice(text.indexOf('## add'), text.indexOf('## ', text.indexOf('## add') + 3));
    expect(add).toContain('| x | y | s |');
    expect(add).toContain('| 1 | 2 | 3 |');
    expect(add).toContain('| null | 3 | null |');
  });
});
