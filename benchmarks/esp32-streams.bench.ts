/**
 * esp32-streams: 1,000 simulated ESP nodes at 10 samples/s each into windowed transforms
 * (opt-in: `npm run bench -- --only esp32-streams`). 60 s of load by default;
 * ESP_STREAMS_SECONDS=300 for the 5-minute run, --quick for 20 s.
 *
 * Layout: a relay and 3 tasknodes as separate processes (lib/cluster.ts); the bridge as
 * `rtl start` runs it (EspService: the MQTT side and a relay tasknode per live node) in this
 * process, with the client that runs the transforms; the broker is Mosquitto when
 * 127.0.0.1:1883 answers, else an embedded aedes broker on a free port (in this process); the
 * nodes are a protocol-level load generator in a child process (lib/esp32-load.ts), one MQTT
 * connection per node unless ESP_STREAMS_CONNECTIONS says fewer. Each node publishes one f32
 * batch of 10 samples a second on `temp`, retained hello and status, and a beat every 5 s.
 *
 * Every stream gets a transform with a count window of 10 samples (one per batch); every 4th
 * also one with a 1,000 ms time window (ESP_STREAMS_TIME_EVERY to change; 0 for none). The
 * transform is `task_multiply` (value x 2) on the cluster; each result is checked.
 *
 *   esp32-streams-count    ms from the send time of a window's last sample to its result at
 *                          the client: the latency beyond the window itself (its filling up
 *                          is not counted). Target p99 < 50 ms.
 *   esp32-streams-time     the same for the time windows
 *   esp32-streams-memory   this process's RSS slope after warm-up, MiB/min (the bridge and the
 *                          client that consumes the results; the load generator is apart)
 *
 * A sample's send time is known from the sample itself (lib/esp32-load.ts): the value of a
 * node's n-th sample is n, and its batch went out `(9 - n mod 10) * 100` ms after its
 * timestamp. The same values say whether a sample is missing: each window must continue where
 * the previous one ended. Samples sent but not in any window (the count windows) are lost and
 * make every result `ok: false`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Table } from 'apache-arrow';
import { Client } from '@rtl/client';
import { loadConfig } from '@rtl/core';
import {
  EspBridge,
  EspService,
  probeTcp,
  transformStream,
  type WindowSpec,
} from '@rtl/esp32-bridge';
import { freePort, startCluster } from './lib/cluster.js';
import {
  SAMPLE_DT_MS,
  SAMPLES_PER_BATCH,
  STREAM,
  nodeId,
  type LoadCommand,
  type LoadDone,
  type LoadReport,
} from './lib/esp32-load.js';
import {
  benchArgs,
  cpuPerJobUs,
  emit,
  latencyResult,
  note,
  processCpuMs,
  summarize,
  type Result,
} from './lib/measure.js';

const MOSQUITTO = { host: '127.0.0.1', port: 1883 };
const TARGET_P99_MS = 50;
const MEMORY_SAMPLE_MS = 5000;
const FLOOR_S = 30;
const BEAT_MS = 5000;
const DRAIN_MS = 30_000;
const STOP_WAIT_MS = 120_000;
const READY_MS = 120_000;
const TIME_WINDOW_MS = 1000;
/** Samples a time window stream may hold in its open window at the end (two windows' worth). */
const OPEN_TAIL = (TIME_WINDOW_MS / SAMPLE_DT_MS) * 2;

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${raw}: expected an integer >= 0`);
  return n;
}

/** Latencies of one kind of window, kept in a fixed buffer so that memory stays flat. */
class Latencies {
  readonly #ms: Float64Array;
  #n = 0;
  warmup = 0;
  constructor(capacity: number) {
    this.#ms = new Float64Array(capacity);
  }
  add(ms: number, warm: boolean): void {
    if (!warm) {
      this.warmup++;
      return;
    }
    if (this.#n < this.#ms.length) this.#ms[this.#n++] = ms;
  }
  values(): number[] {
    return Array.from(this.#ms.subarray(0, this.#n));
  }
}

/** What one stream's subscription saw: samples, continuity, wrong results. */
interface Seen {
  next: number;
  samples: number;
  windows: number;
  gaps: number;
  wrong: number;
}

interface Mem {
  readonly t: number;
  readonly rss: number;
  readonly heap: number;
}

function floats(t: Table, name: string): Float64Array | undefined {
  const v = t.getChild(name)?.toArray() as unknown;
  return v instanceof Float64Array ? v : undefined;
}

function slopePerMin(points: readonly Mem[], pick: (m: Mem) => number): number {
  if (points.length < 2) return Number.NaN;
  const xs = points.map((p) => p.t / 60);
  const ys = points.map(pick);
  const mx = xs.reduce((s, x) => s + x, 0) / xs.length;
  const my = ys.reduce((s, y) => s + y, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += ((xs[i] ?? 0) - mx) * ((ys[i] ?? 0) - my);
    den += ((xs[i] ?? 0) - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

/** The lowest sample (by `pick`) of each FLOOR_S-second stretch. */
function floors(points: readonly Mem[], pick: (m: Mem) => number): Mem[] {
  const out = new Map<number, Mem>();
  for (const p of points) {
    const k = Math.floor(p.t / FLOOR_S);
    const cur = out.get(k);
    if (cur === undefined || pick(p) < pick(cur)) out.set(k, p);
  }
  return [...out.values()];
}

function mem(t0: number): Mem {
  const m = process.memoryUsage();
  return { t: (Date.now() - t0) / 1000, rss: m.rss / 2 ** 20, heap: m.heapUsed / 2 ** 20 };
}

function startGenerator(): { child: ChildProcess; next: () => Promise<LoadReport> } {
  const file = fileURLToPath(new URL('./lib/esp32-load.js', import.meta.url));
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const queue: LoadReport[] = [];
  let waiter: ((r: LoadReport) => void) | undefined;
  child.on('message', (m: LoadReport) => {
    if (waiter !== undefined) {
      const w = waiter;
      waiter = undefined;
      w(m);
    } else queue.push(m);
  });
  child.on('exit', (code) => {
    waiter?.({ type: 'error', message: `load generator exited (code ${String(code)})` });
  });
  const next = (): Promise<LoadReport> => {
    const m = queue.shift();
    if (m !== undefined) return Promise.resolve(m);
    return new Promise((resolve) => (waiter = resolve));
  };
  return { child, next };
}

async function expect<T extends LoadReport['type']>(
  next: () => Promise<LoadReport>,
  type: T,
): Promise<Extract<LoadReport, { type: T }>> {
  const m = await next();
  if (m.type === 'error') throw new Error(`load generator: ${m.message}`);
  if (m.type !== type) throw new Error(`load generator: expected ${type}, got ${m.type}`);
  return m as Extract<LoadReport, { type: T }>;
}

async function main(): Promise<void> {
  const args = benchArgs();
  const seconds = envInt('ESP_STREAMS_SECONDS', args.quick ? 20 : 60);
  const nodes = envInt('ESP_STREAMS_NODES', 1000);
  const connections = Math.max(1, Math.min(nodes, envInt('ESP_STREAMS_CONNECTIONS', nodes)));
  const timeEvery = envInt('ESP_STREAMS_TIME_EVERY', 4);
  const tasknodes = envInt('ESP_STREAMS_TASKNODES', 3);
  // ESP_STREAMS_EVENTS=0|1: whether each window's job sends its progress events to the client
  // (transformStream's `events`); unset = transformStream's default.
  const eventsEnv = process.env.ESP_STREAMS_EVENTS;
  const events = eventsEnv === undefined || eventsEnv === '' ? undefined : eventsEnv !== '0';
  const warmupS = Math.min(60, Math.max(10, Math.round(seconds / 5)));

  const mosquitto = await probeTcp(MOSQUITTO.host, MOSQUITTO.port, 500);
  const url = mosquitto
    ? `mqtt://${MOSQUITTO.host}:${String(MOSQUITTO.port)}`
    : `mqtt://127.0.0.1:${String(await freePort())}`;
  const cluster = await startCluster({
    tasknodes,
    ...(args.cpuProf === undefined ? {} : { cpuProf: args.cpuProf }),
  });
  const settings = { ...loadConfig({ env: {} }), MQTT_URL: url, MQTT_EMBEDDED: 'auto' as const };
  // ESP_STREAMS_BRIDGE=bridge: the MQTT side alone (EspBridge), no relay tasknode per node.
  const serviceMode = process.env.ESP_STREAMS_BRIDGE !== 'bridge';
  // Each stream keeps its last maxSamples samples (16 bytes each): the default 10,000 takes
  // 1,000 s to fill at 10 samples/s, so memory would grow for the whole run by design. 100
  // (10 s) fills within the warm-up; ESP_STREAMS_MAX_SAMPLES to change. Room for streams of
  // other users of a shared broker, too.
  const window = { maxSamples: envInt('ESP_STREAMS_MAX_SAMPLES', 100), maxStreams: nodes + 1000 };
  const service = serviceMode
    ? await EspService.start(settings, { beatMs: BEAT_MS, relay: cluster.send, window })
    : undefined;
  const bridge =
    service?.bridge ?? (await EspBridge.start({ url, embedded: 'auto', beatMs: BEAT_MS, window }));
  const atRelay = (): number => (service === undefined ? nodes : service.link.serving().length);
  const client = new Client({ relay: cluster.recv, store: false, timeoutMs: 30_000 });
  const prefix = `bench${randomUUID().slice(0, 6)}`;
  const gen = startGenerator();
  const send = (c: LoadCommand): void => {
    gen.child.send(c);
  };
  note(
    `esp32-streams: ${String(nodes)} nodes over ${String(connections)} MQTT connections to ${mosquitto ? 'Mosquitto' : 'an embedded broker'}, ${String(seconds)} s`,
  );

  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    if (gen.child.exitCode === null) {
      const exited = new Promise((r) => gen.child.once('exit', r));
      send({ type: 'stop' });
      // Clearing 2,000 retained topics takes a while on a busy broker: killing the generator
      // before it is done leaves them behind, and every later bridge gets them at subscribe.
      const gone = await Promise.race([exited.then(() => true), sleep(STOP_WAIT_MS, false)]);
      if (!gone)
        note(
          `esp32-streams: the load generator did not clear its retained topics within ${String(STOP_WAIT_MS)} ms (prefix ${prefix})`,
        );
      gen.child.kill('SIGKILL');
    }
    await client.close();
    await (service ?? bridge).close();
    await cluster.close();
  };

  try {
    send({ type: 'start', url, prefix, nodes, connections, seconds, beatMs: BEAT_MS });
    const ready = await expect(gen.next, 'ready');
    const deadline = Date.now() + READY_MS;
    let polls = 0;
    const ours = (): number =>
      bridge.nodes().filter((n) => n.alive && n.id.startsWith(`${prefix}-`)).length;
    while (ours() < nodes || atRelay() < nodes) {
      if (Date.now() > deadline)
        throw new Error(
          `only ${String(ours())} of ${String(nodes)} nodes alive (${String(atRelay())} at the relay) after ${String(READY_MS)} ms`,
        );
      await sleep(100);
      if (++polls % 50 === 0)
        note(
          `esp32-streams: ${String(ours())} of ${String(nodes)} nodes alive, ${String(atRelay())} at the relay, ${String(bridge.nodes().length)} heard of`,
        );
    }
    note(
      `esp32-streams: ${String(nodes)} nodes connected and alive in ${String(ready.connectMs)} ms`,
    );

    const doc = {
      '0': { tasks: { task_multiply: { operations: [{ a: 'value', b: 2, column: 'twice' }] } } },
    };
    const windowsPerS = nodes + (timeEvery > 0 ? Math.ceil(nodes / timeEvery) : 0);
    const count = new Latencies(Math.ceil(windowsPerS * (seconds + 60)));
    const time = new Latencies(timeEvery > 0 ? Math.ceil((nodes / timeEvery) * (seconds + 60)) : 0);
    let goAt = Number.POSITIVE_INFINITY;
    const seen = new Map<string, Seen>();
    let firstError: string | undefined;
    const consumers: Promise<void>[] = [];
    const attach = (i: number, spec: WindowSpec, lat: Latencies, key: string): void => {
      const s: Seen = { next: 0, samples: 0, windows: 0, gaps: 0, wrong: 0 };
      seen.set(key, s);
      const stream = `${nodeId(prefix, i)}/${STREAM}`;
      const run = async (): Promise<void> => {
        for await (const r of transformStream(bridge, client, stream, spec, doc, {
          idPrefix: key,
          ...(events === undefined ? {} : { events }),
        })) {
          const arrived = Date.now();
          const ts = floats(r.window, 'timestamp');
          const vs = floats(r.window, 'value');
          const twice = floats(r.result, 'twice');
          const n = vs?.length ?? 0;
          const lastV = vs?.[n - 1];
          const lastT = ts?.[n - 1];
          if (vs === undefined || lastV === undefined || lastT === undefined) {
            s.wrong++;
            continue;
          }
          const first = vs[0] ?? 0;
          if (first > s.next) s.gaps += first - s.next;
          else if (first < s.next) s.wrong++;
          if (lastV - first !== n - 1 || twice?.length !== n || twice[n - 1] !== 2 * lastV) {
            s.wrong++;
            firstError ??= `${key} window ${String(r.index)}: values ${String(first)}..${String(lastV)} (${String(n)} rows), twice ${String(twice?.[n - 1])}`;
          }
          s.next = lastV + 1;
          s.samples += n;
          s.windows++;
          const sentAt =
            lastT + (SAMPLES_PER_BATCH - 1 - (lastV % SAMPLES_PER_BATCH)) * SAMPLE_DT_MS;
          lat.add(arrived - sentAt, sentAt >= goAt + warmupS * 1000);
        }
      };
      consumers.push(
        run().catch((err: unknown) => {
          firstError ??= `${key}: ${err instanceof Error ? err.message : String(err)}`;
        }),
      );
    };
    for (let i = 0; i < nodes; i++) {
      attach(i, { count: SAMPLES_PER_BATCH }, count, `c${String(i)}`);
      if (timeEvery > 0 && i % timeEvery === 0)
        attach(i, { ms: TIME_WINDOW_MS }, time, `t${String(i)}`);
    }

    const loadStart = os.loadavg().map((l) => +l.toFixed(2));
    const cpu0 = cluster.cpuMs();
    const genCpu0 = processCpuMs(gen.child.pid ?? 0);
    const t0 = Date.now();
    goAt = t0;
    const series: Mem[] = [mem(t0)];
    const sampler = setInterval(() => {
      const m = mem(t0);
      series.push(m);
      if (series.length % 6 === 1)
        note(
          `esp32-streams: ${m.t.toFixed(0)} s, rss ${m.rss.toFixed(0)} MiB, heap ${m.heap.toFixed(0)} MiB, ${String(count.values().length + count.warmup)} count windows`,
        );
    }, MEMORY_SAMPLE_MS);
    send({ type: 'go' });
    const done: LoadDone = await expect(gen.next, 'done');
    const windowsInLoad = count.values().length + count.warmup + time.values().length + time.warmup;
    const cpu1 = cluster.cpuMs();
    const genCpu1 = processCpuMs(gen.child.pid ?? 0);
    const loadMs = Date.now() - t0;

    // Let the windows of the last batches come through.
    const sentOf = (i: number): number => done.samples[i] ?? 0;
    const drainEnd = Date.now() + DRAIN_MS;
    const countDone = (): boolean => {
      for (let i = 0; i < nodes; i++) {
        if ((seen.get(`c${String(i)}`)?.next ?? 0) < sentOf(i)) return false;
        const t = seen.get(`t${String(i)}`);
        if (t !== undefined && sentOf(i) - t.next > OPEN_TAIL) return false;
      }
      return true;
    };
    while (!countDone() && Date.now() < drainEnd) await sleep(100);
    clearInterval(sampler);
    series.push(mem(t0));

    let sent = 0;
    let inWindows = 0;
    let lost = 0;
    let wrong = 0;
    let timeSamples = 0;
    let timeTail = 0;
    let timeLost = 0;
    for (let i = 0; i < nodes; i++) {
      const c = seen.get(`c${String(i)}`);
      sent += sentOf(i);
      inWindows += c?.samples ?? 0;
      lost += (c?.gaps ?? 0) + Math.max(0, sentOf(i) - (c?.next ?? 0));
      wrong += c?.wrong ?? 0;
      const t = seen.get(`t${String(i)}`);
      if (t !== undefined) {
        timeSamples += t.samples;
        timeLost += t.gaps;
        wrong += t.wrong;
        // The last time window is still open (it completes when a later sample comes).
        const tail = sentOf(i) - t.next;
        if (tail > OPEN_TAIL) timeLost += tail;
        else timeTail += Math.max(0, tail);
      }
    }
    const mine = bridge.streams().filter((s) => s.node.startsWith(`${prefix}-`));
    const bridgeCounts = {
      samples: mine.reduce((s, x) => s + x.samples, 0),
      lostBatches: mine.reduce((s, x) => s + x.lost, 0),
      dropped: mine.reduce((s, x) => s + x.dropped, 0),
      windowsDropped: mine.reduce((s, x) => s + x.windowsDropped, 0),
      streamsRefused: bridge.stats().streamsRefused,
    };
    const cpuPct: Record<string, number> = {};
    if (cpu0 !== undefined && cpu1 !== undefined)
      for (const [k, v] of Object.entries(cpu1))
        cpuPct[k === 'client' ? 'bridge+client' : k] = Math.round(
          ((v - (cpu0[k] ?? 0)) / loadMs) * 100,
        );
    if (genCpu0 !== undefined && genCpu1 !== undefined)
      cpuPct.generator = Math.round(((genCpu1 - genCpu0) / loadMs) * 100);
    // CPU per window result, by process: what a window costs, whatever else ran on the machine.
    const cpuPerWindowUs = cpuPerJobUs(cpu0, cpu1, windowsInLoad);

    const after = series.filter((m) => m.t >= warmupS);
    const rss = series.map((m) => m.rss);
    const memory = {
      rssStartMiB: +(series[0]?.rss ?? 0).toFixed(1),
      rssAfterWarmupMiB: +(after[0]?.rss ?? 0).toFixed(1),
      rssEndMiB: +(series[series.length - 1]?.rss ?? 0).toFixed(1),
      rssMaxMiB: +Math.max(...rss).toFixed(1),
      rssSlopeMiBPerMin: +slopePerMin(after, (m) => m.rss).toFixed(2),
      heapStartMiB: +(series[0]?.heap ?? 0).toFixed(1),
      heapEndMiB: +(series[series.length - 1]?.heap ?? 0).toFixed(1),
      heapMaxMiB: +Math.max(...series.map((m) => m.heap)).toFixed(1),
      heapSlopeMiBPerMin: +slopePerMin(after, (m) => m.heap).toFixed(2),
      // The heap saws up and down with each major GC: the slope of the lowest point of each
      // 30 s says whether what survives GC grows.
      rssFloorSlopeMiBPerMin: +slopePerMin(
        floors(after, (m) => m.rss),
        (m) => m.rss,
      ).toFixed(2),
      heapFloorSlopeMiBPerMin: +slopePerMin(
        floors(after, (m) => m.heap),
        (m) => m.heap,
      ).toFixed(2),
      series: series.map((m) => [Math.round(m.t), +m.rss.toFixed(1), +m.heap.toFixed(1)]),
    };
    const bad = lost + timeLost + wrong + bridgeCounts.windowsDropped + bridgeCounts.lostBatches;
    const ok = bad === 0 && firstError === undefined;
    const common = {
      broker: mosquitto ? 'mosquitto' : 'embedded',
      nodes,
      connections,
      tasknodes,
      bridgeAs: serviceMode ? 'EspService' : 'EspBridge',
      events: events ?? 'default',
      maxSamplesPerStream: window.maxSamples,
      seconds,
      warmupS,
      batchesPerNodePerS: 1,
      samplesPerBatch: SAMPLES_PER_BATCH,
      timeWindowStreams: timeEvery > 0 ? Math.ceil(nodes / timeEvery) : 0,
      timeWindowMs: TIME_WINDOW_MS,
      samples: {
        sent,
        inCountWindows: inWindows,
        lost,
        timeWindowSamples: timeSamples,
        timeLost,
        timeOpenTail: timeTail,
      },
      wrong,
      bridge: bridgeCounts,
      generator: { batches: done.batches, lateMs: done.lateMs, wallMs: done.wallMs },
      cpuPct,
      ...(cpuPerWindowUs === undefined ? {} : { cpuPerWindowUs }),
      windowsInLoad,
      loadavg: { start: loadStart, end: os.loadavg().map((l) => +l.toFixed(2)) },
      ...(firstError === undefined ? {} : { firstError }),
    };
    const latency = (name: string, lat: Latencies): Result => {
      const v = lat.values();
      const s = summarize(v);
      return latencyResult(name, v, {
        target: { p99Below: TARGET_P99_MS },
        ok,
        failures: bad,
        detail: { ...common, max: s.max, min: s.min, warmupWindows: lat.warmup },
      });
    };
    const results: Result[] = [latency('esp32-streams-count', count)];
    if (timeEvery > 0) results.push(latency('esp32-streams-time', time));
    results.push({
      name: 'esp32-streams-memory',
      unit: 'MiB/min',
      n: after.length,
      p50: memory.rssSlopeMiBPerMin,
      p99: memory.rssSlopeMiBPerMin,
      mean: memory.rssSlopeMiBPerMin,
      ok,
      failures: bad,
      detail: { ...common, ...memory },
    });
    for (const r of results)
      note(
        `${r.name}: p50 ${r.p50.toFixed(2)} ${r.unit}, p99 ${r.p99.toFixed(2)} ${r.unit}${typeof r.detail?.max === 'number' ? `, max ${r.detail.max.toFixed(1)}` : ''}`,
      );
    note(
      `esp32-streams: floors after GC: rss ${String(memory.rssFloorSlopeMiBPerMin)} MiB/min, heap ${String(memory.heapFloorSlopeMiBPerMin)} MiB/min`,
    );
    note(
      `esp32-streams: ${String(sent)} samples sent, ${String(bridgeCounts.samples)} taken in by the bridge, ${String(inWindows)} in count windows, ${String(lost)} lost (${String(bridgeCounts.windowsDropped)} windows dropped by the bridge: consumers behind), ${String(wrong)} wrong; rss ${String(memory.rssStartMiB)} -> ${String(memory.rssEndMiB)} MiB (max ${String(memory.rssMaxMiB)}, ${String(memory.rssSlopeMiBPerMin)} MiB/min after ${String(warmupS)} s); cpu ${JSON.stringify(cpuPct)}`,
    );
    await cleanup();
    await Promise.race([Promise.all(consumers), sleep(5000)]);
    emit(args, results);
  } finally {
    await cleanup();
  }
}

await main();
