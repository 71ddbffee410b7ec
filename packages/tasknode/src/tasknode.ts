/**
 * A tasknode: connects a DEALER to the relay's SEND port, announces itself (HELLO: name,
 * queues, tasks, credit = worker threads x TASK_PREFETCH), and runs STAGE work in worker threads, so a task
 * that computes for a long time never stops its heartbeats.
 */
import { hostname } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { randomUUID } from 'node:crypto';
import * as zmq from 'zeromq';
import {
  DEFAULT_LIMITS,
  Outbox,
  decodeMessage,
  encodeMessage,
  receiveLoop,
  unbatch,
  silentLogger,
  type Logger,
  type Message,
  type Outgoing,
  type ProtocolLimits,
} from '@rtl/core';
import { createBundledRegistry, type TaskRegistry } from '@rtl/tasks';
import { WorkerPool } from './pool.js';
import { executeStage, StoreCache } from './execute.js';
import { loadTaskModules } from './modules.js';
import type { WorkRequest } from './work.js';

/** The settings a tasknode reads (a Config has them all). */
export interface TasknodeSettings {
  readonly RELAY_ADDR: string;
  readonly RELAY_SEND: number;
  readonly HEARTBEAT_MS: number;
  readonly HEARTBEAT_LIVENESS: number;
  readonly MAX_MESSAGE_BYTES: number;
  readonly CACHE_PATH: string;
  readonly CACHE_MAP_SIZE: number;
  readonly CHUNKING: boolean;
  readonly CHUNKING_SIZE: number;
  readonly PROFILE: boolean;
  readonly TASK_PREFETCH: number;
  readonly TASK_INLINE_BYTES: number;
}

export interface TasknodeOptions {
  /** Node name (default: `tasknode-<host>-<pid>`). */
  readonly name?: string;
  /** Queues (routes) this node serves, besides its own name. */
  readonly queues?: readonly string[];
  /** Worker threads (default 1). */
  readonly threads?: number;
  /** Relay SEND endpoint (default tcp://RELAY_ADDR:RELAY_SEND). */
  readonly relay?: string;
  readonly logger?: Logger;
  /** Announce no store: every table travels inline (for nodes on another host). */
  readonly noStore?: boolean;
  /** ES modules whose exported task definitions run here beside the bundled tasks. */
  readonly modules?: readonly string[];
}

export class Tasknode implements AsyncDisposable {
  readonly name: string;
  readonly relay: string;
  readonly threads: number;
  readonly closed: Promise<void>;

  readonly #settings: TasknodeSettings;
  readonly #log: Logger;
  readonly #queues: readonly string[];
  readonly #tasks: readonly string[];
  readonly #pool: WorkerPool;
  readonly #limits: ProtocolLimits;
  readonly #store: string;
  readonly #storePath: string;
  #sock!: zmq.Dealer;
  #out!: Outbox;
  #seq = 0;
  #running = 0;
  #lastHeard = Date.now();
  #timer: NodeJS.Timeout;
  #closing: Promise<void> | undefined;
  #resolveClosed!: () => void;

  readonly #bundled: TaskRegistry;
  readonly #stores = new StoreCache();

  readonly #moduleTasks: ReadonlySet<string>;

  private constructor(settings: TasknodeSettings, opts: TasknodeOptions, tasks: readonly string[], moduleTasks: ReadonlySet<string>) {
    this.#settings = settings;
    this.#log = opts.logger ?? silentLogger();
    this.name = opts.name ?? `tasknode-${hostname()}-${String(process.pid)}`;
    this.relay = opts.relay ?? `tcp://${settings.RELAY_ADDR}:${String(settings.RELAY_SEND)}`;
    this.threads = Math.max(1, opts.threads ?? 1);
    this.#queues = opts.queues ?? [];
    this.#tasks = tasks;
    this.#bundled = createBundledRegistry();
    this.#moduleTasks = moduleTasks;
    this.#storePath = resolvePath(settings.CACHE_PATH);
    this.#store = opts.noStore ? '' : `${hostname()}:${this.#storePath}`;
    this.#limits = { ...DEFAULT_LIMITS, maxMessageBytes: settings.MAX_MESSAGE_BYTES };
    this.#pool = new WorkerPool(this.threads, opts.modules ?? []);
    this.closed = new Promise((r) => (this.#resolveClosed = r));
    this.#connect();
    this.#timer = setInterval(() => this.#beat(), settings.HEARTBEAT_MS);
  }

  /** Start a tasknode and connect it; it keeps reconnecting until closed. */
  static async start(settings: TasknodeSettings, opts: TasknodeOptions = {}): Promise<Tasknode> {
    const registry = createBundledRegistry();
    const fromModules = await loadTaskModules(registry, opts.modules ?? []);
    return new Tasknode(settings, opts, registry.names(), new Set(fromModules));
  }

  /** Stages running in worker threads now. */
  get running(): number {
    return this.#running;
  }

  close(): Promise<void> {
    return (this.#closing ??= this.#shutdown());
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #shutdown(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.race([this.#out.flushed(), new Promise((r) => setTimeout(r, 200))]);
    this.#sock.close();
    await this.#pool.close();
    await this.#stores.close();
    this.#log.info({ node: this.name }, 'tasknode closed');
    this.#resolveClosed();
  }

  #connect(): void {
    const sock = new zmq.Dealer({
      routingId: `${this.name}.${randomUUID().slice(0, 8)}`,
      maxMessageSize: this.#settings.MAX_MESSAGE_BYTES,
      linger: 0,
      sendHighWaterMark: 0,
      receiveHighWaterMark: 0,
      reconnectInterval: 100,
      reconnectMaxInterval: 2000,
    });
    sock.connect(this.relay);
    this.#sock = sock;
    this.#out = new Outbox(sock, (err) => this.#log.debug({ err }, 'send failed'), { batch: true });
    this.#lastHeard = Date.now();
    this.#hello();
    void receiveLoop(sock, (frames) => this.#onMessage(frames), (err) => this.#log.error({ err }, 'receive failed'));
    this.#log.info({ node: this.name, relay: this.relay, threads: this.threads }, 'tasknode connecting');
  }

  #hello(): void {
    this.#send({
      t: 'HELLO',
      node: this.name,
      queues: this.#queues,
      tasks: this.#tasks,
      credit: this.threads * this.#settings.TASK_PREFETCH,
      host: hostname(),
      store: this.#store,
      pid: process.pid,
    });
  }

  #beat(): void {
    const silence = this.#settings.HEARTBEAT_MS * this.#settings.HEARTBEAT_LIVENESS;
    if (Date.now() - this.#lastHeard > silence) {
      // The relay went silent: drop the socket and connect afresh (a restarted relay gets a HELLO).
      this.#log.warn({ node: this.name, relay: this.relay, silentMs: Date.now() - this.#lastHeard }, 'relay silent past liveness: reconnecting');
      this.#sock.close();
      this.#connect();
      return;
    }
    this.#send({ t: 'HEARTBEAT' });
  }

  #onMessage(frames: Buffer[], inBatch = false): void {
    this.#lastHeard = Date.now();
    const decoded = decodeMessage(frames, this.#limits);
    if (!decoded.ok) {
      this.#log.warn({ code: decoded.error.code }, `dropped a bad message from the relay: ${decoded.error.message}`);
      return;
    }
    const msg = decoded.msg;
    if (msg.t === 'BATCH' && !inBatch) {
      for (const inner of unbatch(msg, decoded.payload)) this.#onMessage(inner, true);
      return;
    }
    switch (msg.t) {
      case 'HEARTBEAT':
        return;
      case 'STAGE':
        this.#runStage(msg, decoded.payload);
        return;
      case 'REJECTED':
        if (msg.error.detail?.rule === 'P-5.2') this.#hello();
        else this.#log.warn({ code: msg.error.code }, `relay rejected a message: ${msg.error.message}`);
        return;
      default:
        this.#log.warn({ type: msg.t }, 'unexpected message from the relay');
    }
  }

  #runStage(msg: Extract<Message, { t: 'STAGE' }>, payload: Buffer[]): void {
    const req: WorkRequest = {
      seq: ++this.#seq,
      job: msg.id,
      stage: msg.stage,
      tasks: msg.tasks,
      data: msg.data,
      frames: payload,
      resultStore: msg.store === this.#store ? msg.store : '',
      refBytes: this.#settings.CHUNKING_SIZE,
      chunked: this.#settings.CHUNKING,
      mapSize: this.#settings.CACHE_MAP_SIZE,
      profile: this.#settings.PROFILE,
    };
    this.#running++;
    const run = this.#inline(msg, payload) ? executeStage(this.#bundled, this.#stores, req) : this.#pool.run(req);
    void run.then((reply) => {
      this.#running--;
      if (reply.ok) {
        this.#send({ t: 'STAGE_DONE', id: msg.id, stage: msg.stage, attempt: msg.attempt, data: reply.data, ms: reply.ms, tasks: reply.tasks }, reply.frames);
      } else {
        this.#log.info({ job: msg.id, stage: msg.stage, code: reply.error.code }, `stage failed: ${reply.error.message}`);
        this.#send({ t: 'STAGE_FAILED', id: msg.id, stage: msg.stage, attempt: msg.attempt, error: reply.error });
      }
    });
  }

  /** Small input, bundled tasks only: run on this thread (microseconds), skipping the worker hop. */
  #inline(msg: Extract<Message, { t: 'STAGE' }>, payload: readonly Buffer[]): boolean {
    const limit = this.#settings.TASK_INLINE_BYTES;
    if (limit === 0 || (msg.data.kind !== 'arrow' && msg.data.kind !== 'none')) return false;
    let bytes = 0;
    for (const f of payload) bytes += f.length;
    if (bytes > limit) return false;
    return msg.tasks.every((t) => !this.#moduleTasks.has(t.task) && this.#bundled.get(t.task) !== undefined);
  }

  #send(msg: Outgoing, payload: readonly Uint8Array[] = []): void {
    this.#out.push(encodeMessage(msg, payload));
  }
}
