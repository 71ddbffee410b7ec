/**
 * The bridge toward the relay: every live ESP node is a tasknode of its own at the relay's
 * SEND port, named `esp32/<id>`, serving the queue `esp32` with the tasks the node announced.
 * A stage routed to `esp32` runs on any such node; one routed to `esp32/<id>` on that node
 * (a route matches a queue or a tasknode's name, docs/dsdsl.md). Each runs one stage at a time
 * (credit 1: a microcontroller runs one command at a time).
 *
 * When an ESP node goes offline (its last will) or falls silent, its tasknode stops at once:
 * the relay notices the silence after HEARTBEAT_MS x HEARTBEAT_LIVENESS and gives the stage
 * it held to another node, within the stage's retries, as for any tasknode that dies.
 *
 * ```ts
 * const link = new RelayLink(cluster, { relay: 'tcp://127.0.0.1:19001', settings, log });
 * // ... later
 * await link.close();
 * ```
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import * as zmq from 'zeromq';
import {
  DEFAULT_LIMITS,
  Outbox,
  RtlError,
  curveSocketOptions,
  decodeMessage,
  decodeTable,
  decodeValue,
  encodeMessage,
  encodeTable,
  encodeValue,
  receiveLoop,
  toTable,
  toWireError,
  unbatch,
  type CurveClientKeys,
  type DataRef,
  type Logger,
  type Message,
  type Outgoing,
  type ProtocolLimits,
  type TaskCallWire,
} from '@rtl/core';

/** What the link needs to know of the ESP nodes (the bridge's registry and commands). */
export interface EspCluster {
  /** Every node heard of; the link serves those that are alive. */
  nodes(): readonly EspNodeView[];
  /**
   * Called whenever a node joins, leaves, or changes what it announces, with that node's id
   * when the change is about one node; returns an unsubscribe.
   */
  onChange(listener: (id?: string) => void): () => void;
  /** One node, when the cluster can look it up (else every change re-reads `nodes()`). */
  node?(id: string): EspNodeView | undefined;
  /** Run `task` on node `id`: the node calls it with `input` first when given, then `args`. */
  runTask(
    id: string,
    task: string,
    args: readonly unknown[],
    input: unknown,
    opts?: { readonly timeoutMs?: number },
  ): Promise<unknown>;
}

export interface EspNodeView {
  readonly id: string;
  readonly alive: boolean;
  readonly tasks: readonly string[];
  /** Largest stage input the node takes, in bytes of its JSON form. */
  readonly maxInput: number;
}

export interface RelayLinkSettings {
  readonly HEARTBEAT_MS: number;
  readonly HEARTBEAT_LIVENESS: number;
  readonly MAX_MESSAGE_BYTES: number;
}

export interface RelayLinkOptions {
  /** The relay's SEND endpoint, `tcp://host:19001`. */
  readonly relay: string;
  readonly settings: RelayLinkSettings;
  readonly log: Logger;
  readonly curve?: CurveClientKeys;
  /** Per-task command timeout (ms); default 30 s. */
  readonly taskTimeoutMs?: number;
  /**
   * The bridge's own name at the relay: a tasknode of that name with no credit and no tasks
   * stands for the bridge itself (`rtl status` lists it; `rtl start` waits for it).
   */
  readonly presence?: string;
}

/** The queue every ESP node serves. */
export const ESP_QUEUE = 'esp32';

/** The relay-side name of the tasknode standing for ESP node `id`. */
export function espTasknodeName(id: string): string {
  return `${ESP_QUEUE}/${id}`;
}

export class RelayLink {
  readonly #cluster: EspCluster;
  readonly #opts: RelayLinkOptions;
  readonly #agents = new Map<string, EspTasknode>();
  readonly #unsubscribe: () => void;
  readonly #presence: EspTasknode | undefined;
  #closed = false;

  constructor(cluster: EspCluster, opts: RelayLinkOptions) {
    this.#cluster = cluster;
    this.#opts = opts;
    this.#presence =
      opts.presence === undefined
        ? undefined
        : new EspTasknode(cluster, { id: '', alive: true, tasks: [], maxInput: 0 }, opts, {
            name: opts.presence,
            credit: 0,
            queues: [],
          });
    this.#unsubscribe = cluster.onChange((id) => {
      if (id === undefined || cluster.node === undefined) this.#sync();
      else this.#syncNode(id, cluster.node(id));
    });
    this.#sync();
  }

  /** The ESP nodes that are tasknodes at the relay right now. */
  serving(): string[] {
    return [...this.#agents.keys()].sort();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    await this.#presence?.close();
    await Promise.all([...this.#agents.values()].map((a) => a.close()));
    this.#agents.clear();
  }

  #sync(): void {
    if (this.#closed) return;
    const alive = new Map<string, EspNodeView>();
    for (const n of this.#cluster.nodes()) if (n.alive) alive.set(n.id, n);
    for (const [id, agent] of this.#agents)
      if (!alive.has(id)) {
        this.#agents.delete(id);
        void agent.close();
      }
    for (const [id, node] of alive) this.#syncNode(id, node);
  }

  /** One node changed: it joins (alive), leaves (not alive or gone), or re-announces. */
  #syncNode(id: string, node: EspNodeView | undefined): void {
    if (this.#closed) return;
    const agent = this.#agents.get(id);
    if (node === undefined || !node.alive) {
      if (agent === undefined) return;
      this.#agents.delete(id);
      void agent.close();
    } else if (agent === undefined)
      this.#agents.set(id, new EspTasknode(this.#cluster, node, this.#opts));
    else agent.update(node);
  }
}

/** One ESP node as a tasknode at the relay. */
class EspTasknode {
  readonly #cluster: EspCluster;
  readonly #opts: RelayLinkOptions;
  readonly #limits: ProtocolLimits;
  readonly #sock: zmq.Dealer;
  readonly #out: Outbox;
  readonly #timer: NodeJS.Timeout;
  readonly #as: { readonly name: string; readonly credit: number; readonly queues: string[] };
  #node: EspNodeView;
  #announced = '';
  #lastHeard = Date.now();
  #closed = false;

  constructor(
    cluster: EspCluster,
    node: EspNodeView,
    opts: RelayLinkOptions,
    as = { name: espTasknodeName(node.id), credit: 1, queues: [ESP_QUEUE] },
  ) {
    this.#cluster = cluster;
    this.#opts = opts;
    this.#node = node;
    this.#as = as;
    this.#limits = { ...DEFAULT_LIMITS, maxMessageBytes: opts.settings.MAX_MESSAGE_BYTES };
    this.#sock = new zmq.Dealer({
      ...(opts.curve === undefined ? {} : curveSocketOptions(opts.curve)),
      routingId: `${as.name}.${randomUUID().slice(0, 8)}`,
      maxMessageSize: opts.settings.MAX_MESSAGE_BYTES,
      linger: 0,
      sendHighWaterMark: 0,
      receiveHighWaterMark: 0,
      reconnectInterval: 100,
      reconnectMaxInterval: 2000,
    });
    this.#sock.connect(opts.relay);
    this.#out = new Outbox(this.#sock, (err) => opts.log.debug({ err }, 'send failed'));
    this.#hello();
    this.#timer = setInterval(() => this.#beat(), opts.settings.HEARTBEAT_MS);
    void receiveLoop(
      this.#sock,
      (frames) => this.#onMessage(frames),
      (err) => opts.log.error({ err, node: node.id }, 'receive failed'),
    );
    opts.log.info(
      { node: espTasknodeName(node.id), tasks: node.tasks },
      'ESP node joins the relay',
    );
  }

  /** The node announced other tasks: tell the relay. */
  update(node: EspNodeView): void {
    this.#node = node;
    if (this.#announcement() !== this.#announced) this.#hello();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#sock.close();
    this.#opts.log.info({ node: this.#as.name }, 'left the relay');
    await Promise.resolve();
  }

  #announcement(): string {
    return [...this.#node.tasks].sort().join(',');
  }

  #hello(): void {
    this.#announced = this.#announcement();
    const tasks = [...this.#node.tasks].sort();
    this.#send({
      t: 'HELLO',
      node: this.#as.name,
      queues: this.#as.queues,
      tasks,
      credit: this.#as.credit,
      host: hostname(),
      store: '',
      pid: process.pid,
      functions: tasks,
    });
  }

  #beat(): void {
    const silence = this.#opts.settings.HEARTBEAT_MS * this.#opts.settings.HEARTBEAT_LIVENESS;
    // A relay that restarted forgets us: a fresh HELLO after its silence.
    if (Date.now() - this.#lastHeard > silence) {
      this.#lastHeard = Date.now();
      this.#hello();
      return;
    }
    this.#send({ t: 'HEARTBEAT' });
  }

  #onMessage(frames: Buffer[], inBatch = false): void {
    this.#lastHeard = Date.now();
    const decoded = decodeMessage(frames, this.#limits);
    if (!decoded.ok) {
      this.#opts.log.warn(
        { code: decoded.error.code },
        `dropped a bad message from the relay: ${decoded.error.message}`,
      );
      return;
    }
    const msg = decoded.msg;
    if (msg.t === 'BATCH' && !inBatch) {
      for (const inner of unbatch(msg, decoded.payload)) this.#onMessage(inner, true);
      return;
    }
    if (msg.t === 'STAGE') void this.#runStage(msg, decoded.payload);
    else if (msg.t === 'REJECTED' && msg.error.detail?.rule === 'P-5.2') this.#hello();
  }

  async #runStage(msg: Extract<Message, { t: 'STAGE' }>, payload: Buffer[]): Promise<void> {
    const t0 = performance.now();
    try {
      const { data, frames, tasks } =
        msg.kind === 'function'
          ? await this.#runCalls(msg, payload)
          : await this.#runTable(msg, payload);
      if (this.#closed) return;
      this.#send(
        {
          t: 'STAGE_DONE',
          id: msg.id,
          stage: msg.stage,
          attempt: msg.attempt,
          data,
          ms: performance.now() - t0,
          tasks,
        },
        frames,
      );
    } catch (err) {
      // The node went away mid-stage: say nothing; the relay hands the stage on when this
      // tasknode falls silent (it is closed already or about to be).
      if (this.#closed || (err instanceof RtlError && err.code === 'RTL_ERR_ESP_OFFLINE')) return;
      this.#send({
        t: 'STAGE_FAILED',
        id: msg.id,
        stage: msg.stage,
        attempt: msg.attempt,
        error: toWireError(err),
      });
    }
  }

  /** A document stage: the input table's columns go to the node as a JSON object of arrays. */
  async #runTable(msg: Extract<Message, { t: 'STAGE' }>, payload: Buffer[]): Promise<StageOutput> {
    let value: unknown = {};
    if (msg.data.kind === 'arrow') value = columnsOf(decodeTable(payload));
    else if (msg.data.kind !== 'none')
      throw new RtlError(
        'RTL_ERR_BAD_DATA',
        `stage "${msg.stage}": an ESP node takes its input inline (Arrow frames), not ${msg.data.kind} data`,
        { job: msg.id, stage: msg.stage },
      );
    const timings: { task: string; ms: number }[] = [];
    for (const call of msg.tasks) {
      this.#checkSize(msg, call, value);
      const t = performance.now();
      value = await this.#run(call.task, [call.params], value);
      timings.push({ task: call.task, ms: performance.now() - t });
    }
    const table = toTable(value);
    const frames = encodeTable(table);
    const data: DataRef = { kind: 'arrow', frames: frames.length };
    return { data, frames, tasks: timings };
  }

  /** A function stage (canvas calls), by the rules of P-6.6. */
  async #runCalls(msg: Extract<Message, { t: 'STAGE' }>, payload: Buffer[]): Promise<StageOutput> {
    let value: unknown;
    let has = false;
    if (msg.data.kind === 'cbor') {
      value = decodeValue(payload[0] as Buffer, this.#limits);
      has = true;
    }
    const timings: { task: string; ms: number }[] = [];
    for (const call of msg.tasks) {
      const p = call.params;
      const args = Array.isArray(p.args) ? (p.args as unknown[]) : [];
      const t = performance.now();
      if (p.map === 'map' || p.map === 'starmap') {
        const items = Array.isArray(p.items) ? (p.items as unknown[]) : [];
        const out: unknown[] = [];
        for (const item of items) {
          const itemArgs =
            p.map === 'starmap' && Array.isArray(item) ? (item as unknown[]) : [item];
          this.#checkSize(msg, call, itemArgs);
          out.push(await this.#run(call.task, itemArgs, undefined));
        }
        value = out;
      } else {
        const callArgs = p.pass === true && has ? [value, ...args] : args;
        this.#checkSize(msg, call, callArgs);
        value = await this.#run(call.task, callArgs, undefined);
      }
      has = true;
      timings.push({ task: call.task, ms: performance.now() - t });
    }
    return { data: { kind: 'cbor', frames: 1 }, frames: [encodeValue(value)], tasks: timings };
  }

  #run(task: string, args: readonly unknown[], input: unknown): Promise<unknown> {
    return this.#cluster.runTask(this.#node.id, task, args, input, {
      timeoutMs: this.#opts.taskTimeoutMs ?? 30_000,
    });
  }

  /** Payloads to nodes stay small: refuse what the node said it cannot take. */
  #checkSize(msg: Extract<Message, { t: 'STAGE' }>, call: TaskCallWire, value: unknown): void {
    const bytes = Buffer.byteLength(JSON.stringify(value === undefined ? null : value));
    const limit = this.#node.maxInput;
    if (limit > 0 && bytes > limit)
      throw new RtlError(
        'RTL_ERR_TOO_LARGE',
        `stage "${msg.stage}", task "${call.as ?? call.task}": its input is ${String(bytes)} bytes as JSON, more than ESP node ${this.#node.id} takes (max_input ${String(limit)}); split the input (a split stage or a chunks canvas) or raise max_input in the node's /rtl.json`,
        { job: msg.id, stage: msg.stage, task: call.task, node: this.#node.id, limit },
      );
  }

  #send(msg: Outgoing, payload: readonly Uint8Array[] = []): void {
    if (!this.#closed) this.#out.push(encodeMessage(msg, payload));
  }
}

interface StageOutput {
  readonly data: DataRef;
  readonly frames: Uint8Array[];
  readonly tasks: { task: string; ms: number }[];
}

/** A table as a JSON object of column arrays (64-bit integers as numbers). */
function columnsOf(table: ReturnType<typeof decodeTable>): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const field of table.schema.fields) {
    const col = table.getChild(field.name);
    const values: unknown[] = [];
    if (col !== null)
      for (const v of col) values.push(typeof v === 'bigint' ? Number(v) : (v as unknown));
    out[field.name] = values;
  }
  return out;
}
