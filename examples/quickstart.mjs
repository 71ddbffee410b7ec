// The quickstart through the client API: run examples/quickstart.json's transform on its data
// and print the result. Start rtl first (`npx rtl start`); then `node examples/quickstart.mjs`.
// The relay address and CURVE keys come from the same settings `rtl` reads (RTL_RELAY_ADDR,
// RTL_RELAY_RECV, RTL_STARTING_PORT, RTL_CURVE_*, RTL_CONFIG; default tcp://127.0.0.1:19000).
import { readFile } from 'node:fs/promises';
import { loadConfig, peerCurve, relayEndpoints } from '@rtl/core';
import { Transform } from '@rtl/client';

const { transform, data } = JSON.parse(
  await readFile(new URL('./quickstart.json', import.meta.url), 'utf8'),
);

const print = (line) => process.stdout.write(`${line}\n`);

const config = loadConfig();
const rtl = Transform({ relay: relayEndpoints(config).recv, curve: peerCurve(config) ?? false });
try {
  const job = rtl.execute(transform, { data, timeoutMs: 10_000 });
  const table = await job.result(); // an Apache Arrow Table
  const names = table.schema.fields.map((f) => f.name);
  print(names.join('\t'));
  for (const row of table.toArray()) print(names.map((n) => row[n]).join('\t'));
  for (const stage of job.stages) {
    print(`stage ${stage.stage} on ${stage.node}: ${stage.ms.toFixed(2)} ms`);
    for (const t of stage.tasks) print(`  Completed: ${t.ms.toFixed(2)} ms ${t.task}`);
  }
} catch (err) {
  // An RtlError: a stable code, a message naming the stage/task/param, and detail.
  process.stderr.write(`${err.code ?? 'error'}: ${err.message}\n`);
  process.exitCode = 1;
} finally {
  await rtl.close();
}
