// Writes the generated docs from the built core package (run `tsc -b` first):
// docs/config.md and config/default.json from SETTINGS, docs/errors.md from ERROR_CODES,
// docs/tasks.md from the bundled task registry (examples are run to produce their output).
// `--check` writes nothing and exits 1 when a file differs from its rendering.
import { readFile, writeFile } from 'node:fs/promises';
import { renderConfigDoc, renderDefaultConfig, renderErrorsDoc } from '@rtl/core';
import { createBundledRegistry, renderTasksDoc } from '@rtl/tasks';

const root = new URL('../', import.meta.url);
const outputs = [
  ['docs/config.md', renderConfigDoc()],
  ['docs/errors.md', renderErrorsDoc()],
  ['config/default.json', renderDefaultConfig()],
  ['docs/tasks.md', await renderTasksDoc(createBundledRegistry())],
];
const check = process.argv.includes('--check');
let stale = 0;
for (const [path, text] of outputs) {
  const url = new URL(path, root);
  const current = await readFile(url, 'utf8').catch(() => undefined);
  if (current === text) continue;
  if (check) {
    console.error(`${path} is out of date; run npm run docs`);
    stale++;
  } else {
    await writeFile(url, text);
    console.log(`wrote ${path}`);
  }
}
process.exitCode = stale > 0 ? 1 : 0;
