/**
 * soak: a steady open-loop load of 1,000 jobs/s for 10 minutes (SOAK_MINUTES to change it;
 * --quick: 2 minutes) against a relay and 3 tasknodes started like `rtl start`, with the
 * journal on (JOURNAL_RETENTION 60 s, so that the journal reaches its steady size within the
 * run). Each job is a canvas call add(i, 1); every value is checked.
 *
 *   soak-rate             jobs/s completed per 10 s window
 *   soak-latency          submit-to-result ms of every job
 *   soak-memory-relay     RSS growth of the relay, %: median of the last minute against the
 *                         median of the first minute after warm-up (the first 90 s)
 *   soak-memory-tasknodes the same for the sum of the tasknodes' RSS
 *
 * Lost jobs (no result within 30 s), failed or wrong ones make every result `ok: false`.
 * Details hold the RSS series (MiB, every 5 s) with RssAnon / RssFile split, to tell heap growth
 * from the journal's file pages.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, task } from '@rtl/client';
import { startCluster } from './lib/cluster.js';
import {
  benchArgs,
  emit,
  latencyResult,
  note,
  percentile,
  rateResult,
  type Result,
} from './lib/measure.js';

const RATE = 1000;
const TICK_MS = 10;
const WARMUP_MS = 90_000;
const SAMPLE_MS = 5000;
const RATE_WINDOW_MS = 10_000;
const GET_TIMEOUT_MS = 30_000;
const TARGET_GROWTH_PCT = 10;

interface Mem {
  readonly rss: number;
  readonly anon: number;
  readonly file: number;
}

function memOf(pid: number): Mem | undefined {
  try {
    const s = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0);
    return { rss: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024, file: kb('RssFile') / 1024 };
  } catch {
    return undefined;
  }
}

function median(xs: readonly number[]): number {
  return percentile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );
}

async function main(): Promise<void> {
  const args = benchArgs();
  const minutes = Number(process.env.SOAK_MINUTES ?? (args.quick ? 2 : 10));
  const durationMs = minutes * 60_000;
  const cluster = await startCluster({
    tasknodes: 3,
    env: { RTL_JOURNAL_RETENTION: '60s' },
    ...(args.cpuProf === undefined ? {} : { cpuProf: args.cpuProf }),
  });
  const client = new Client({ relay: cluster.recv, store: false, timeoutMs: GET_TIMEOUT_MS });
  const add = task('add');
  const relayPid = cluster.services.find((s) => s.name === 'relay')?.pid ?? 0;
  const nodePids = cluster.services.filter((s) => s.name !== 'relay').map((s) => s.pid);
  const latencies: number[] = [];
  const done: number[] = [];
  let sent = 0;
  let verified = 0;
  let lost = 0;
  let failed = 0;
  let wrong = 0;
  let firstError: string | undefined;
  const series: { t: number; relay: Mem; tasknodes: Mem }[] = [];
  const inflight: Promise<void>[] = [];
  note(`soak: ${String(RATE)} jobs/s for ${String(minutes)} min against 3 tasknodes`);
  const t0 = Date.now();
  let nextSample = t0;
  while (Date.now() - t0 < durationMs) {
    const now = Date.now();
    // Open loop: catch up to the schedule (RATE per second since t0).
    const due = Math.floor(((now - t0) * RATE) / 1000);
    while (sent < due) {
      const i = sent++;
      const start = process.hrtime.bigint();
      inflight.push(
        add
          .applyAsync([i, 1], { client })
          .get({ timeoutMs: GET_TIMEOUT_MS })
          .then(
            (v) => {
              latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
              done.push(Date.now());
              if (v === i + 1) verified++;
              else {
                wrong++;
                firstError ??= `job ${String(i)}: got ${JSON.stringify(v)}, want ${String(i + 1)}`;
              }
            },
            (err: unknown) => {
              const code = (err as { code?: unknown }).code;
              if (code === 'RTL_ERR_TIMEOUT' || code === 'RTL_ERR_RELAY_UNREACHABLE') lost++;
              else failed++;
              firstError ??= err instanceof Error ? `${String(code)}: ${err.message}` : String(err);
            },
          ),
      );
    }
    if (inflight.length > 50_000) await Promise.all(inflight.splice(0, 25_000));
    if (now >= nextSample) {
      nextSample += SAMPLE_MS;
      const relay = memOf(relayPid);
      const nodes = nodePids.map(memOf);
      if (relay !== undefined && nodes.every((m) => m !== undefined)) {
        const sum = (k: keyof Mem): number => nodes.reduce((s, m) => s + m[k], 0);
        series.push({
          t: Math.round((now - t0) / 1000),
          relay,
          tasknodes: { rss: sum('rss'), anon: sum('anon'), file: sum('file') },
        });
        const last = series[series.length - 1];
        if (last !== undefined && series.length % 12 === 1)
          note(
            `soak: ${String(last.t)} s, ${String(verified)} ok, ${String(lost + failed + wrong)} bad, relay ${last.relay.rss.toFixed(0)} MiB, tasknodes ${last.tasknodes.rss.toFixed(0)} MiB`,
          );
      }
    }
    await sleep(TICK_MS);
  }
  await Promise.all(inflight);
  const wallMs = Date.now() - t0;
  await client.close();
  await cluster.close();

  const bad = lost + failed + wrong;
  const ok = bad === 0 && verified === sent;
  // Rate per 10 s window over the measured stretch (after warm-up).
  const rates: number[] = [];
  for (let w = t0 + WARMUP_MS; w + RATE_WINDOW_MS <= t0 + durationMs; w += RATE_WINDOW_MS) {
    const n = done.filter((d) => d >= w && d < w + RATE_WINDOW_MS).length;
    rates.push((n * 1000) / RATE_WINDOW_MS);
  }
  const after = series.filter((s) => s.t * 1000 >= WARMUP_MS);
  const first = after.filter((s) => s.t * 1000 < WARMUP_MS + 60_000);
  const lastMin = series.filter((s) => s.t * 1000 >= durationMs - 60_000);
  const growth = (pick: (s: (typeof series)[number]) => number): number => {
    const a = median(first.map(pick));
    const b = median(lastMin.map(pick));
    return a > 0 ? ((b - a) / a) * 100 : Number.NaN;
  };
  const common = {
    ok,
    failures: bad,
    detail: {
      minutes,
      rate: RATE,
      sent,
      verified,
      lost,
      failed,
      wrong,
      wallMs,
      ...(firstError === undefined ? {} : { firstError }),
    },
  };
  const memDetail = (key: 'relay' | 'tasknodes'): Record<string, unknown> => ({
    ...common.detail,
    rssMiB: series.map((s) => [s.t, +s[key].rss.toFixed(1)]),
    anonMiB: series.map((s) => [s.t, +s[key].anon.toFixed(1)]),
    fileMiB: series.map((s) => [s.t, +s[key].file.toFixed(1)]),
    anonGrowthPct: +growth((s) => s[key].anon).toFixed(2),
    fileGrowthPct: +growth((s) => s[key].file).toFixed(2),
  });
  const memResult = (name: string, key: 'relay' | 'tasknodes'): Result => {
    const g = growth((s) => s[key].rss);
    return {
      name,
      unit: '%',
      n: lastMin.length,
      p50: g,
      p99: g,
      mean: g,
      target: { p50Below: TARGET_GROWTH_PCT },
      ok,
      failures: bad,
      detail: memDetail(key),
    };
  };
  const results: Result[] = [
    rateResult('soak-rate', 'jobs/s', rates, { ...common, target: { p50AtLeast: RATE * 0.98 } }),
    latencyResult('soak-latency', latencies, common),
    memResult('soak-memory-relay', 'relay'),
    memResult('soak-memory-tasknodes', 'tasknodes'),
  ];
  for (const r of results)
    note(`${r.name}: p50 ${r.p50.toFixed(2)} ${r.unit}, p99 ${r.p99.toFixed(2)} ${r.unit}`);
  note(
    `soak: ${String(sent)} sent, ${String(verified)} verified, ${String(bad)} lost/failed/wrong`,
  );
  emit(args, results);
}

await main();
