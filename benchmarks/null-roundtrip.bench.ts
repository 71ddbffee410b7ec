/**
 * null-roundtrip: the fixed cost of one job. Sequential
 * `client.execute({ '0': { tasks: { task_null: {} } } }).result()` with no data, through a relay
 * process and one tasknode process (one worker thread): client → relay → tasknode → relay →
 * client, the same three processes and two hops as the zmq floor.
 */
import { Client } from '@rtl/client';
import { startCluster } from './lib/cluster.js';
import {
  benchArgs,
  cpuPerJobUs,
  emit,
  latencyResult,
  note,
  sample,
  summarize,
} from './lib/measure.js';

const DOC = { '0': { tasks: { task_null: {} } } };

async function main(): Promise<void> {
  const args = benchArgs();
  const samples = args.quick ? 500 : 3000;
  const warmup = args.quick ? 200 : 1000;
  const cluster = await startCluster({ tasknodes: 1, threads: 1, cpuProf: args.cpuProf });
  const client = new Client({ relay: cluster.recv, store: cluster.cachePath });
  try {
    note(`null-roundtrip: ${String(samples)} sequential jobs after ${String(warmup)} warm-up`);
    // The tasknode's own time per stage (worker thread: run the task, build the reply).
    const stageMs: number[] = [];
    const once = async (): Promise<void> => {
      const job = client.execute(DOC);
      await job.result({ timeoutMs: 10_000 });
      stageMs.push(job.stages[0]?.ms ?? Number.NaN);
    };
    await sample(once, { warmup, samples: 0 });
    stageMs.length = 0;
    const cpu0 = cluster.cpuMs();
    const times = await sample(once, { warmup: 0, samples });
    const cpu = cpuPerJobUs(cpu0, cluster.cpuMs(), samples);
    const stage = summarize(stageMs);
    emit(args, [
      latencyResult('null-roundtrip', times, {
        baseline: 'zmq-floor',
        target: { p50Below: 0.4, ratioAtMost: 3 },
        detail: {
          tasknodes: 1,
          threads: 1,
          processes: 3,
          stageP50: stage.p50,
          stageP99: stage.p99,
          cpuPerJobUs: cpu,
        },
      }),
    ]);
  } finally {
    await client.close();
    await cluster.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
