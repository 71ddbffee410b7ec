/**
 * A protocol-level ESP node for tests, written from docs/esp32-protocol.md alone (a plain
 * MQTT.js client): retained hello, status with a last will, beats, and an answer on `reply`
 * for every `cmd`. Not the firmware (that one runs in the virtual node).
 */
import { connectAsync, type MqttClient } from 'mqtt';

const P = 'rtl/v1/nodes/';

export type Reply =
  { value: unknown } | { error: { type: string; message: string; traceback: string } };
/** What a node answers: a reply, nothing, or a reply after `late` ms. */
export type Handler = (
  cmd: Record<string, unknown>,
) => Reply | 'ignore' | { late: number; value: unknown };

export interface FakeNode {
  readonly id: string;
  readonly client: MqttClient;
  /** Leave cleanly: publish offline, then disconnect. */
  stop(): Promise<void>;
  /** Stop beating but stay connected. */
  silence(): void;
  /** Vanish without DISCONNECT: the broker publishes the last will. */
  drop(): void;
  batch(stream: string, payload: Buffer): void;
  received: Record<string, unknown>[];
}

export interface FakeNodeOptions {
  readonly tasks?: readonly string[];
  readonly beatMs?: number;
  readonly maxInput?: number;
}

/** A node per E-1 to E-3 at `url`. */
export async function startFakeNode(
  url: string,
  id: string,
  handler: Handler,
  opts: FakeNodeOptions = {},
): Promise<FakeNode> {
  const client = await connectAsync(url, {
    clientId: `rtl-${id}`,
    clean: true,
    keepalive: 15,
    reconnectPeriod: 0,
    protocolVersion: 4,
    will: {
      topic: `${P}${id}/status`,
      payload: Buffer.from('{"v":1,"state":"offline"}'),
      qos: 1,
      retain: true,
    },
  });
  const hello = {
    v: 1,
    id,
    fw: '0.1.0',
    platform: 'fake',
    mem_free: 100_000,
    tasks: opts.tasks ?? ['add', 'mean'],
    modules: [],
    pins: { in: [0, 4], out: [2, 4], adc: [32] },
    streams: [{ name: 'temp', pin: 32, hz: 10, type: 'f32' }],
    max_input: opts.maxInput ?? 4096,
  };
  const received: Record<string, unknown>[] = [];
  await client.subscribeAsync(`${P}${id}/cmd`, { qos: 1 });
  client.on('message', (_topic, payload) => {
    const cmd = JSON.parse(payload.toString()) as Record<string, unknown>;
    received.push(cmd);
    const r = handler(cmd);
    if (r === 'ignore') return;
    const send = (body: object): void => {
      client.publish(`${P}${id}/reply`, JSON.stringify({ v: 1, rid: cmd.rid, ...body }), {
        qos: 1,
      });
    };
    if ('late' in r) setTimeout(() => send({ ok: true, value: r.value }), r.late);
    else if ('value' in r) send({ ok: true, value: r.value });
    else send({ ok: false, error: r.error });
  });
  await client.publishAsync(`${P}${id}/hello`, JSON.stringify(hello), { qos: 1, retain: true });
  await client.publishAsync(`${P}${id}/status`, '{"v":1,"state":"online","boot":1}', {
    qos: 1,
    retain: true,
  });
  const beat = setInterval(() => {
    if (client.connected)
      client.publish(
        `${P}${id}/beat`,
        JSON.stringify({ v: 1, up_ms: 1, mem_free: 99_000, busy: false }),
      );
  }, opts.beatMs ?? 200);
  let stopped = false;
  return {
    id,
    client,
    received,
    async stop() {
      clearInterval(beat);
      if (stopped) return;
      stopped = true;
      if (client.connected)
        await client.publishAsync(`${P}${id}/status`, '{"v":1,"state":"offline"}', {
          qos: 1,
          retain: true,
        });
      await client.endAsync(true);
    },
    silence() {
      clearInterval(beat);
    },
    drop() {
      clearInterval(beat);
      stopped = true;
      client.stream.destroy();
    },
    batch(stream, payload) {
      client.publish(`rtl/v1/sensors/${id}/${stream}`, payload, { qos: 0 });
    },
  };
}

/** Clear the retained hello and status of these nodes (they persist in Mosquitto). */
export async function clearRetained(
  url: string,
  run: string,
  ids: readonly string[],
): Promise<void> {
  const janitor = await connectAsync(url, { clientId: `rtl-janitor-${run}`, reconnectPeriod: 0 });
  for (const id of ids)
    for (const kind of ['hello', 'status'])
      await janitor.publishAsync(`${P}${id}/${kind}`, '', { qos: 1, retain: true });
  await janitor.endAsync();
}
