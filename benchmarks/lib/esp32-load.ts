/**
 * A protocol-level load generator of ESP nodes (docs/esp32-protocol.md), run as a child
 * process of the esp32-streams bench so that its CPU is not counted as the bridge's: each
 * node publishes a retained hello and status, beats every `beatMs` from then on, and one stream `temp`
 * sampled at 10 Hz, published as one f32 batch of 10 samples a second (E-4.1), as the
 * firmware batches by default.
 *
 * Samples carry what the bench needs to check them: the value of a node's n-th sample is n
 * (exact in f32 below 2^24), so a window's values must follow on from the previous window's,
 * and `n mod 10` is the sample's place in its batch. The batch goes out the moment its last
 * sample is taken: that sample's timestamp is the wall-clock time (Date.now()) of the publish,
 * the earlier ones 100 ms apart before it. So a sample's send time is
 * `timestamp + (9 - n mod 10) * 100` ms, on the clock the bench reads too.
 *
 * Nodes share `connections` MQTT connections (node i on connection i mod connections); with one
 * connection per node each has its own client id and last will, as a real node does.
 *
 * Protocol with the parent (IPC): parent `start` → child `ready` (every node connected and
 * announced) → parent `go` → child publishes for `seconds` → child `done` (counts) → parent
 * `stop` → child clears its retained topics and exits.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connectAsync, type MqttClient } from 'mqtt';

export interface LoadStart {
  readonly type: 'start';
  readonly url: string;
  readonly prefix: string;
  readonly nodes: number;
  readonly connections: number;
  readonly seconds: number;
  readonly beatMs: number;
}

export type LoadCommand = LoadStart | { readonly type: 'go' } | { readonly type: 'stop' };

export interface LoadDone {
  readonly type: 'done';
  /** Samples each node sent (index = node number). */
  readonly samples: readonly number[];
  readonly batches: number;
  /** How late the generator published a batch against its schedule, ms: p50, p99, max. */
  readonly lateMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly wallMs: number;
}

export type LoadReport =
  | { readonly type: 'ready'; readonly connectMs: number }
  | LoadDone
  | { readonly type: 'error'; readonly message: string };

export const SAMPLES_PER_BATCH = 10;
export const SAMPLE_DT_MS = 100;
export const STREAM = 'temp';
const CONNECT_PARALLEL = 50;
const TICK_MS = 5;
const BEAT_TICK_MS = 50;
const ANNOUNCE_GROUP = 50;
const ANNOUNCE_PAUSE_MS = 100;

export function nodeId(prefix: string, i: number): string {
  return `${prefix}-${String(i)}`;
}

function send(msg: LoadReport): void {
  process.send?.(msg);
}

function batch(seq: number, lastMs: number, first: number): Buffer {
  const buf = Buffer.alloc(24 + SAMPLES_PER_BATCH * 4);
  buf.writeUInt16LE(0x5352, 0); // 'R' 'S'
  buf.writeUInt8(1, 2); // version
  buf.writeUInt8(1, 3); // f32
  buf.writeUInt32LE(seq, 4);
  buf.writeBigUInt64LE(BigInt(lastMs - (SAMPLES_PER_BATCH - 1) * SAMPLE_DT_MS), 8);
  buf.writeUInt32LE(SAMPLE_DT_MS * 1000, 16);
  buf.writeUInt16LE(SAMPLES_PER_BATCH, 20);
  buf.writeUInt16LE(1, 22); // t0 is Unix time
  for (let k = 0; k < SAMPLES_PER_BATCH; k++) buf.writeFloatLE(first + k, 24 + k * 4);
  return buf;
}

async function connectAll(opts: LoadStart): Promise<MqttClient[]> {
  const clients: MqttClient[] = [];
  const one = (c: number): Promise<MqttClient> => {
    const own = opts.connections === opts.nodes;
    const id = own ? nodeId(opts.prefix, c) : `${opts.prefix}-conn-${String(c)}`;
    return connectAsync(opts.url, {
      clientId: `rtl-${id}`,
      clean: true,
      keepalive: 30,
      reconnectPeriod: 0,
      protocolVersion: 4,
      ...(own
        ? {
            will: {
              topic: `rtl/v1/nodes/${id}/status`,
              payload: Buffer.from('{"v":1,"state":"offline"}'),
              qos: 1 as const,
              retain: true,
            },
          }
        : {}),
    });
  };
  for (let c = 0; c < opts.connections; c += CONNECT_PARALLEL) {
    const n = Math.min(CONNECT_PARALLEL, opts.connections - c);
    clients.push(...(await Promise.all(Array.from({ length: n }, (_, k) => one(c + k)))));
  }
  return clients;
}

function hello(id: string): string {
  return JSON.stringify({
    v: 1,
    id,
    fw: '0.1.0',
    platform: 'load',
    mem_free: 100_000,
    tasks: ['add', 'mean'],
    modules: [],
    pins: { in: [0], out: [2], adc: [32] },
    streams: [{ name: STREAM, pin: 32, hz: 1000 / SAMPLE_DT_MS, type: 'f32' }],
    max_input: 4096,
  });
}

/**
 * Retained hello and status of every node, `ANNOUNCE_GROUP` nodes at a time with a pause
 * between groups (nodes that boot together still come up over a few seconds): a burst of
 * 2,000 QoS 1 messages at once overflows Mosquitto's default queue toward the bridge
 * (max_queued_messages 1000), which then drops announcements.
 */
async function announce(opts: LoadStart, clients: readonly MqttClient[]): Promise<void> {
  for (let g = 0; g < opts.nodes; g += ANNOUNCE_GROUP) {
    const jobs: Promise<unknown>[] = [];
    for (let i = g; i < Math.min(opts.nodes, g + ANNOUNCE_GROUP); i++) {
      const c = clients[i % clients.length];
      if (c === undefined) continue;
      const id = nodeId(opts.prefix, i);
      const p = `rtl/v1/nodes/${id}/`;
      jobs.push(
        c.publishAsync(`${p}hello`, hello(id), { qos: 1, retain: true }),
        c.publishAsync(`${p}status`, '{"v":1,"state":"online","boot":1}', {
          qos: 1,
          retain: true,
        }),
      );
    }
    await Promise.all(jobs);
    await sleep(ANNOUNCE_PAUSE_MS);
  }
}

/** A beat (E-2.3) of every node every `beatMs`, spread evenly; returns a stop. */
function beat(opts: LoadStart, clients: readonly MqttClient[]): () => void {
  const start = Date.now();
  const due = Float64Array.from(
    { length: opts.nodes },
    (_, i) => start + (i * opts.beatMs) / opts.nodes,
  );
  const topics = Array.from(
    { length: opts.nodes },
    (_, i) => `rtl/v1/nodes/${nodeId(opts.prefix, i)}/beat`,
  );
  const timer = setInterval(() => {
    const now = Date.now();
    for (let i = 0; i < opts.nodes; i++) {
      const d = due[i] ?? 0;
      const c = clients[i % clients.length];
      const t = topics[i];
      if (d > now || c === undefined || t === undefined) continue;
      c.publish(t, JSON.stringify({ v: 1, up_ms: now - start, mem_free: 99_000 }), { qos: 0 });
      due[i] = d + opts.beatMs;
    }
  }, BEAT_TICK_MS);
  return () => clearInterval(timer);
}

async function clearRetained(opts: LoadStart, clients: readonly MqttClient[]): Promise<void> {
  const jobs: Promise<unknown>[] = [];
  for (let i = 0; i < opts.nodes; i++) {
    const c = clients[i % clients.length];
    if (c === undefined || !c.connected) continue;
    const p = `rtl/v1/nodes/${nodeId(opts.prefix, i)}/`;
    for (const kind of ['hello', 'status'])
      jobs.push(c.publishAsync(`${p}${kind}`, '', { qos: 1, retain: true }));
  }
  await Promise.all(jobs);
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
}

/** Publish on schedule: node i's k-th batch is due at go + phase_i + k s. */
function run(opts: LoadStart, clients: readonly MqttClient[]): Promise<LoadDone> {
  const n = opts.nodes;
  const periodMs = SAMPLES_PER_BATCH * SAMPLE_DT_MS;
  const go = Date.now();
  const due = new Float64Array(n);
  for (let i = 0; i < n; i++) due[i] = go + (i * periodMs) / n;
  const seq = new Uint32Array(n);
  const end = go + opts.seconds * 1000;
  const late = new Float64Array(Math.ceil(opts.seconds * (1000 / periodMs) * n) + n);
  let batches = 0;
  const topics = Array.from({ length: n }, (_, i) => ({
    sensor: `rtl/v1/sensors/${nodeId(opts.prefix, i)}/${STREAM}`,
  }));
  return new Promise((resolve) => {
    const tick = (): void => {
      const now = Date.now();
      let pending = false;
      for (let i = 0; i < n; i++) {
        const c = clients[i % clients.length];
        const t = topics[i];
        if (c === undefined || t === undefined) continue;
        const d = due[i] ?? 0;
        if (d < end) pending = true;
        if (d <= now && d < end) {
          const s = seq[i] ?? 0;
          c.publish(t.sensor, batch(s, now, s * SAMPLES_PER_BATCH), { qos: 0 });
          seq[i] = s + 1;
          if (batches < late.length) late[batches] = now - d;
          batches++;
          due[i] = d + periodMs;
        }
      }
      if (pending) {
        setTimeout(tick, TICK_MS);
        return;
      }
      const sorted = late.slice(0, Math.min(batches, late.length)).sort();
      resolve({
        type: 'done',
        samples: Array.from(seq, (s) => s * SAMPLES_PER_BATCH),
        batches,
        lateMs: {
          p50: quantile(sorted, 0.5),
          p99: quantile(sorted, 0.99),
          max: sorted[sorted.length - 1] ?? 0,
        },
        wallMs: Date.now() - go,
      });
    };
    tick();
  });
}

async function main(): Promise<void> {
  let opts: LoadStart | undefined;
  let clients: MqttClient[] = [];
  let stopBeats = (): void => undefined;
  process.on('message', (raw: LoadCommand) => {
    const step = async (): Promise<void> => {
      if (raw.type === 'start') {
        opts = raw;
        const t0 = Date.now();
        clients = await connectAll(raw);
        await announce(raw, clients);
        stopBeats = beat(raw, clients);
        send({ type: 'ready', connectMs: Date.now() - t0 });
      } else if (raw.type === 'go') {
        if (opts === undefined) throw new Error('go before start');
        send(await run(opts, clients));
      } else {
        stopBeats();
        if (opts !== undefined) await clearRetained(opts, clients);
        const ended = clients;
        clients = [];
        opts = undefined;
        await Promise.all(ended.map((c) => c.endAsync().catch(() => undefined)));
        process.disconnect();
      }
    };
    step().catch((err: unknown) => {
      send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
    });
  });
  // The parent went away without `stop`: clear what we left in the broker, then go.
  process.on('disconnect', () => {
    stopBeats();
    const left = opts === undefined ? Promise.resolve() : clearRetained(opts, clients);
    void left
      .catch(() => undefined)
      .then(() => Promise.all(clients.map((c) => c.endAsync().catch(() => undefined))))
      .then(() => process.exit(0));
  });
  await Promise.resolve();
}

await main();
