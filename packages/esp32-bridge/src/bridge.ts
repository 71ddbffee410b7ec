/**
 * The ESP32 bridge on the MQTT side: the registry of nodes, commands with replies, and the
 * sensor streams as bounded windows of Arrow tables (docs/esp32-protocol.md).
 */
import { hostname } from 'node:os';
import type { Table } from 'apache-arrow';
import type { IPublishPacket } from 'mqtt';
import { RtlError, silentLogger, type Logger } from '@rtl/core';
import { connectBroker, type BrokerConnection, type EmbeddedMode } from './broker.js';
import { decodeBatch } from './batch.js';
import { NodeRegistry, type EspNode, type NodeChange } from './node-registry.js';
import {
  StreamWindow,
  WindowSubscription,
  checkWindowSpec,
  windowTable,
  type StreamInfo,
  type WindowSpec,
} from './sensor-window.js';
import { BRIDGE_SUBSCRIPTIONS, isValidName, nodeTopic, parseTopic } from './topics.js';

export interface EspBridgeWindowOptions {
  /** Samples kept per stream (the window cap); default 10,000. */
  readonly maxSamples?: number;
  /** Streams kept at most; batches of further streams are dropped and counted. Default 1,000. */
  readonly maxStreams?: number;
  /** Complete windows a subscriber may leave untaken before the oldest is dropped; default 16. */
  readonly maxPending?: number;
}

export interface EspBridgeOptions {
  /** MQTT_URL. */
  readonly url: string;
  /** MQTT_EMBEDDED. */
  readonly embedded: EmbeddedMode;
  readonly log?: Logger;
  /** Beats a node may miss before it is not alive; default 3 (E-2.3). */
  readonly liveness?: number;
  /** The nodes' beat interval in ms; default 5,000. */
  readonly beatMs?: number;
  /** Default command timeout in ms; default 5,000 (deploy and script: 3x this, E-3.4). */
  readonly commandTimeoutMs?: number;
  readonly window?: EspBridgeWindowOptions;
  /** Take the nodes' sensor batches (default true); a management-only bridge (`rtl esp`) does not. */
  readonly sensors?: boolean;
}

/** A command (E-3.1): `op` and its fields; the bridge adds `v` and `rid`. */
export interface EspCommand {
  readonly op: string;
  readonly [field: string]: unknown;
}

export interface CommandOptions {
  readonly timeoutMs?: number;
  /**
   * Send to a node that its retained status calls online but that this bridge has not heard
   * live yet (a fresh `rtl esp` process); a node that is not there times out.
   */
  readonly retained?: boolean;
}

/** Counters of the bridge as a whole. */
export interface EspBridgeStats {
  /** Payloads dropped: not JSON, not an object, another `v` (E-1.3), or an unknown topic. */
  readonly badMessages: number;
  /** Replies that came after their command timed out (or with a rid never sent). */
  readonly lateReplies: number;
  /** Sensor batches of streams past `maxStreams`. */
  readonly streamsRefused: number;
  readonly commandsSent: number;
  readonly pending: number;
}

interface Pending {
  readonly node: string;
  readonly op: string;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: RtlError) => void;
  readonly timer: NodeJS.Timeout;
}

const LONG_OPS = new Set(['deploy', 'script']);

function parseJson(payload: Buffer): Record<string, unknown> | undefined {
  let msg: unknown;
  try {
    msg = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return undefined;
  const o = msg as Record<string, unknown>;
  return o.v === 1 ? o : undefined;
}

/**
 * The bridge between rtl and ESP32 nodes over MQTT.
 *
 * ```ts
 * const bridge = await EspBridge.start({ url: 'mqtt://127.0.0.1:1883', embedded: 'auto' });
 * await bridge.gpioWrite('esp32-a1b2c3', 2, 1);
 * const t = bridge.window('esp32-a1b2c3/temp', { count: 100 });   // Arrow: timestamp, value
 * ```
 * Gotcha: a node counts as alive only once a live message of it came (a retained hello from
 * before the bridge started does not); commands to a node not alive fail at once.
 */
export class EspBridge {
  readonly #conn: BrokerConnection;
  readonly #url: string;
  readonly #log: Logger;
  readonly #registry: NodeRegistry;
  readonly #listeners = new Set<(change: NodeChange) => void>();
  readonly #pending = new Map<string, Pending>();
  readonly #streams = new Map<string, StreamWindow>();
  readonly #timeoutMs: number;
  readonly #maxSamples: number;
  readonly #maxStreams: number;
  readonly #maxPending: number;
  readonly #ridPrefix: string;
  readonly #ticker: NodeJS.Timeout;
  #rid = 0;
  #badMessages = 0;
  #lateReplies = 0;
  #streamsRefused = 0;
  #commandsSent = 0;
  #closing: Promise<void> | undefined;

  private constructor(conn: BrokerConnection, opts: EspBridgeOptions, log: Logger) {
    this.#conn = conn;
    this.#url = opts.url;
    this.#log = log;
    const beatMs = opts.beatMs ?? 5000;
    this.#registry = new NodeRegistry((opts.liveness ?? 3) * beatMs);
    this.#timeoutMs = opts.commandTimeoutMs ?? 5000;
    this.#maxSamples = opts.window?.maxSamples ?? 10_000;
    this.#maxStreams = opts.window?.maxStreams ?? 1000;
    this.#maxPending = opts.window?.maxPending ?? 16;
    this.#ridPrefix = `${process.pid.toString(36)}${Date.now().toString(36)}`;
    this.#ticker = setInterval(() => this.#emit(this.#registry.tick()), Math.max(50, beatMs / 4));
    this.#ticker.unref();
    conn.client.on('message', (topic, payload, packet) => this.#onMessage(topic, payload, packet));
  }

  /** Connect (or start an embedded broker, per `embedded`) and subscribe to every node. */
  static async start(opts: EspBridgeOptions): Promise<EspBridge> {
    const log = (opts.log ?? silentLogger()).child({ component: 'esp32-bridge' });
    const conn = await connectBroker({
      url: opts.url,
      embedded: opts.embedded,
      clientId: `rtl-bridge-${hostname()}-${process.pid}-${Date.now().toString(36)}`.slice(0, 64),
      log,
    });
    const bridge = new EspBridge(conn, opts, log);
    try {
      await conn.client.subscribeAsync({
        [BRIDGE_SUBSCRIPTIONS.nodes]: { qos: 1 },
        ...(opts.sensors === false ? {} : { [BRIDGE_SUBSCRIPTIONS.sensors]: { qos: 0 } }),
      });
    } catch (err) {
      await bridge.close();
      throw err;
    }
    return bridge;
  }

  /** `embedded` when this bridge started the broker, `external` when one answered at the URL. */
  /** The broker URL this bridge is connected to. */
  get url(): string {
    return this.#url;
  }

  get broker(): 'external' | 'embedded' {
    return this.#conn.broker;
  }

  /** The port of the broker in use. */
  get port(): number {
    return this.#conn.port;
  }

  /** Every node heard of, sorted by id. */
  nodes(): EspNode[] {
    return this.#registry.list();
  }

  node(id: string): EspNode | undefined {
    return this.#registry.get(id);
  }

  /** Called on every change of a node (joined, hello, online/offline, alive/dead); returns an unsubscribe. */
  onChange(listener: (change: NodeChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  stats(): EspBridgeStats {
    return {
      badMessages: this.#badMessages,
      lateReplies: this.#lateReplies,
      streamsRefused: this.#streamsRefused,
      commandsSent: this.#commandsSent,
      pending: this.#pending.size,
    };
  }

  #emit(changes: readonly NodeChange[]): void {
    for (const change of changes) {
      if (change.type === 'offline' || change.type === 'dead') this.#failPending(change.id);
      if (change.type !== 'hello') this.#log.info({ node: change.id }, `node ${change.type}`);
      for (const l of this.#listeners) {
        try {
          l(change);
        } catch (err) {
          this.#log.error({ err }, 'onChange listener threw');
        }
      }
    }
  }

  #onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const t = parseTopic(topic);
    if (t === undefined) {
      this.#badMessages++;
      return;
    }
    if (t.type === 'sensor') {
      this.#onBatch(t.id, t.stream, payload);
      return;
    }
    if (payload.length === 0) return; // a retained message being cleared
    const msg = parseJson(payload);
    if (msg === undefined) {
      this.#badMessages++;
      return;
    }
    const live = !packet.retain;
    switch (t.kind) {
      case 'hello':
        this.#emit(this.#registry.hello(t.id, msg, live));
        return;
      case 'status':
        this.#emit(this.#registry.status(t.id, msg, live));
        return;
      case 'beat':
        this.#emit(this.#registry.beat(t.id, msg));
        return;
      case 'reply':
        this.#emit(this.#registry.touch(t.id));
        this.#onReply(t.id, msg);
        return;
      case 'cmd':
        return; // our own commands
    }
  }

  #onReply(node: string, msg: Record<string, unknown>): void {
    const rid = msg.rid;
    const p = typeof rid === 'string' ? this.#pending.get(rid) : undefined;
    if (p === undefined || p.node !== node) {
      this.#lateReplies++;
      this.#log.debug({ node, rid }, 'late or unknown reply dropped');
      return;
    }
    this.#pending.delete(rid as string);
    clearTimeout(p.timer);
    if (msg.ok === true) {
      p.resolve(msg.value ?? null);
      return;
    }
    const e = (typeof msg.error === 'object' && msg.error !== null ? msg.error : {}) as Record<
      string,
      unknown
    >;
    const type = typeof e.type === 'string' ? e.type : 'Exception';
    const message = typeof e.message === 'string' ? e.message : '';
    const traceback = typeof e.traceback === 'string' ? e.traceback : '';
    p.reject(
      new RtlError(
        'RTL_ERR_ESP_RAISED',
        type === 'BadCommand'
          ? `node ${node} refused the ${p.op} command (BadCommand): ${message}`
          : `node ${node} raised ${type}${message === '' ? '' : `: ${message}`} (op ${p.op})`,
        { node, op: p.op, type, message, traceback, remoteStack: traceback },
      ),
    );
  }

  #failPending(node: string): void {
    for (const [rid, p] of this.#pending) {
      if (p.node !== node) continue;
      this.#pending.delete(rid);
      clearTimeout(p.timer);
      p.reject(
        new RtlError(
          'RTL_ERR_ESP_OFFLINE',
          `node ${node} went away before it answered the ${p.op} command`,
          { node, op: p.op },
        ),
      );
    }
  }

  /**
   * Send a command and wait for its reply's `value` (E-3.1, E-3.2).
   *
   * ```ts
   * await bridge.command('esp32-a1b2c3', { op: 'eval', code: '1 + 1' }); // 2
   * ```
   * Rejects with RtlError RTL_ERR_ESP_OFFLINE (node not alive, or gone before answering),
   * RTL_ERR_ESP_TIMEOUT, or RTL_ERR_ESP_RAISED (detail: node, op, type, traceback).
   */
  command(id: string, cmd: EspCommand, opts: CommandOptions = {}): Promise<unknown> {
    const op = cmd.op;
    const node = this.#registry.get(id);
    if (this.#closing !== undefined)
      return Promise.reject(
        new RtlError(
          'RTL_ERR_SHUTTING_DOWN',
          `the bridge is closing; ${op} to node ${id} not sent`,
          {
            node: id,
            op,
          },
        ),
      );
    if (node === undefined || !(node.alive || (opts.retained === true && node.online))) {
      const why =
        node === undefined
          ? 'was never heard of (check its id, and that it uses the same broker)'
          : !node.online
            ? 'is offline'
            : `is silent (last heard ${node.lastSeen === null ? 'never' : `${Date.now() - node.lastSeen} ms ago`})`;
      return Promise.reject(
        new RtlError('RTL_ERR_ESP_OFFLINE', `node ${id} ${why}; ${op} not sent`, { node: id, op }),
      );
    }
    const timeoutMs = opts.timeoutMs ?? (LONG_OPS.has(op) ? this.#timeoutMs * 3 : this.#timeoutMs);
    const rid = `${this.#ridPrefix}-${(++this.#rid).toString(36)}`;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(rid);
        reject(
          new RtlError(
            'RTL_ERR_ESP_TIMEOUT',
            `node ${id} did not answer the ${op} command within ${timeoutMs} ms; raise timeoutMs or check the node`,
            { node: id, op, limit: timeoutMs },
          ),
        );
      }, timeoutMs);
      this.#pending.set(rid, { node: id, op, resolve, reject, timer });
      this.#commandsSent++;
      const body = JSON.stringify({ ...cmd, v: 1, rid, op });
      this.#conn.client.publish(nodeTopic(id, 'cmd'), body, { qos: 1 }, (err) => {
        // MQTT.js passes null (not undefined) when the publish went out.
        if (!(err instanceof Error) || !this.#pending.has(rid)) return;
        this.#pending.delete(rid);
        clearTimeout(timer);
        reject(
          new RtlError(
            'RTL_ERR_MQTT_UNREACHABLE',
            `cannot send ${op} to node ${id}: ${err.message}`,
            {
              node: id,
              op,
            },
            { cause: err },
          ),
        );
      });
    });
  }

  ping(id: string, opts?: CommandOptions): Promise<unknown> {
    return this.command(id, { op: 'ping' }, opts);
  }

  /** Read a pin: 0 or 1. */
  async gpioRead(
    id: string,
    pin: number,
    pull?: 'up' | 'down',
    opts?: CommandOptions,
  ): Promise<number> {
    return Number(
      await this.command(id, { op: 'gpio_read', pin, ...(pull ? { pull } : {}) }, opts),
    );
  }

  /** Write a pin; resolves to the value read back. */
  async gpioWrite(id: string, pin: number, value: 0 | 1, opts?: CommandOptions): Promise<number> {
    return Number(await this.command(id, { op: 'gpio_write', pin, value }, opts));
  }

  async adcRead(id: string, pin: number, opts?: CommandOptions): Promise<number> {
    return Number(await this.command(id, { op: 'adc_read', pin }, opts));
  }

  /** Evaluate a Python expression on the node; its value as JSON (E-3.3). */
  eval(id: string, code: string, opts?: CommandOptions): Promise<unknown> {
    return this.command(id, { op: 'eval', code }, opts);
  }

  /** Run Python statements on the node. */
  async exec(id: string, code: string, opts?: CommandOptions): Promise<void> {
    await this.command(id, { op: 'exec', code }, opts);
  }

  /** Save a script as /scripts/<name>.py; `run` runs it now, `persist` after every boot. */
  script(
    id: string,
    s: {
      readonly name: string;
      readonly code: string;
      readonly run?: boolean;
      readonly persist?: boolean;
    },
    opts?: CommandOptions,
  ): Promise<unknown> {
    return this.command(
      id,
      { op: 'script', name: s.name, code: s.code, run: s.run ?? true, persist: s.persist ?? false },
      opts,
    );
  }

  /** Deploy a MicroPython module; resolves to the task names it adds. */
  async deploy(id: string, module: string, code: string, opts?: CommandOptions): Promise<string[]> {
    const v = (await this.command(id, { op: 'deploy', module, code }, opts)) as { tasks?: unknown };
    return Array.isArray(v.tasks) ? v.tasks.filter((t): t is string => typeof t === 'string') : [];
  }

  async reboot(id: string, opts?: CommandOptions): Promise<void> {
    await this.command(id, { op: 'reboot' }, opts);
  }

  /** Run a task: the node calls it with `input` first when given, then `args`. */
  runTask(
    id: string,
    task: string,
    args: readonly unknown[],
    input?: unknown,
    opts?: CommandOptions,
  ): Promise<unknown> {
    return this.command(
      id,
      { op: 'task', task, args, ...(input === undefined ? {} : { input }) },
      opts,
    );
  }

  #onBatch(node: string, stream: string, payload: Buffer): void {
    this.#emit(this.#registry.touch(node));
    const name = `${node}/${stream}`;
    let w = this.#streams.get(name);
    if (w === undefined) {
      if (this.#streams.size >= this.#maxStreams) {
        this.#streamsRefused++;
        return;
      }
      w = new StreamWindow(node, stream, this.#maxSamples);
      this.#streams.set(name, w);
    }
    const r = decodeBatch(payload);
    if (!r.ok) {
      w.dropped++;
      if (w.dropped === 1)
        this.#log.warn({ stream: name, reason: r.reason }, 'bad sample batch dropped');
      return;
    }
    w.add(r.batch);
  }

  /** Every stream heard of, with its counters, sorted by name. */
  streams(): StreamInfo[] {
    return [...this.#streams.values()]
      .map((w) => w.info())
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /**
   * The most recent samples of `<node>/<stream>` as a table (columns `timestamp` in ms, `value`):
   * the last `count`, or those within `ms` of the newest sample's timestamp. Empty when the
   * stream has not been heard of.
   */
  window(stream: string, spec: WindowSpec): Table {
    checkWindowSpec(spec, this.#maxSamples);
    const w = this.#streams.get(stream);
    return w === undefined ? windowTable(new Float64Array(0), new Float64Array(0)) : w.window(spec);
  }

  /**
   * Each consecutive tumbling window of a stream, from now on: every `count` samples, or every
   * `ms` of sample time (aligned to multiples of `ms`; a window is complete when a later sample
   * comes, or when a batch ends and its next sample, last + dt, is due past the window). A slow consumer loses the oldest windows past `maxPending` (counted in
   * `streams()[].windowsDropped`). Ends when the bridge closes or the loop breaks.
   *
   * ```ts
   * for await (const t of bridge.subscribe('esp32-a1b2c3/temp', { count: 50 })) use(t);
   * ```
   */
  subscribe(stream: string, spec: WindowSpec): AsyncIterable<Table> {
    checkWindowSpec(spec, this.#maxSamples);
    const [node, name] = stream.split('/');
    if (node === undefined || name === undefined || !isValidName(node) || !isValidName(name))
      throw new RtlError(
        'RTL_ERR_BAD_PARAM',
        `stream ${JSON.stringify(stream)}: expected <node>/<stream>`,
        {
          param: 'stream',
          got: stream,
        },
      );
    let w = this.#streams.get(stream);
    if (w === undefined) {
      w = new StreamWindow(node, name, this.#maxSamples);
      this.#streams.set(stream, w);
    }
    const win = w;
    const sub: WindowSubscription = new WindowSubscription(
      spec,
      this.#maxSamples,
      this.#maxPending,
      () => win.windowsDropped++,
      () => win.subscribers.delete(sub),
    );
    win.subscribers.add(sub);
    return sub;
  }

  /** Fail open commands, end subscriptions, disconnect (and stop the embedded broker). Idempotent. */
  close(): Promise<void> {
    return (this.#closing ??= this.#shutdown());
  }

  async #shutdown(): Promise<void> {
    clearInterval(this.#ticker);
    for (const [rid, p] of this.#pending) {
      this.#pending.delete(rid);
      clearTimeout(p.timer);
      p.reject(
        new RtlError(
          'RTL_ERR_SHUTTING_DOWN',
          `the bridge closed before node ${p.node} answered ${p.op}`,
          { node: p.node, op: p.op },
        ),
      );
    }
    for (const w of this.#streams.values()) for (const s of [...w.subscribers]) s.end();
    this.#listeners.clear();
    await this.#conn.close();
  }
}
