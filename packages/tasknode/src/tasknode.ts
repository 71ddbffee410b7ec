/**
 * A tasknode: connects a DEALER to the relay's SEND port, announces itself (HELLO: name,
 * queues, tasks, credit = worker threads x TASK_PREFETCH), and runs STAGE work in worker threads, so a task
 * that computes for a long time never stops its heartbeats.
 *
 * Deployed modules (DEPLOY from the relay, P-8.4) are written to CACHE_PATH/modules/ and
 * loaded into every worker thread; the node then announces its new task list with a HELLO
 * that names the module versions it runs.
 */
import { hostname } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { randomUUID } from 'node:crypto';
import * as zmq from 'zeromq';
import {
  DEFAULT_LIMITS,
  HandshakeWatch,
  Outbox,
  RtlError,
  curveSocketOptions,
  decodeMessage,
  peerCurve,
  decodeValue,
  encodeMessage,
  receiveLoop,
  unbatch,
  silentLogger,
  type CurveClientKeys,
  type Logger,
  type Message,
  type ModuleFailure,
  type Outgoing,
  type ProtocolLimits,
  type WireError,
} from '@rtl/core';
import { createBundledRegistry, registerBundledFunctions, type TaskRegistry } from '@rtl/tasks';
import { WorkerPool } from './pool.js';
import { executeStage, StoreCache } from './execute.js';
import { sourceHash, writeModuleFile } from './modules.js';
import type { ControlReply, ModuleSpec, WorkRequest } from './work.js';

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
  /** The relay's CURVE public key; with CURVE_KEY_FILE, the node connects with CURVE. */
  readonly CURVE_SERVER_PUBLIC?: string;
  /** This node's CURVE secret key file. */
  readonly CURVE_KEY_FILE?: string;
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
  /** CURVE keys (default: from CURVE_SERVER_PUBLIC and CURVE_KEY_FILE); `false` = plain TCP. */
  readonly curve?: CurveClientKeys | false;
}

/** A deployed module this node runs. */
interface LoadedModule {
  readonly version: number;
  readonly sha256: string;
  readonly spec: ModuleSpec;
  readonly tables: readonly string[];
  readonly functions: readonly string[];
}

/** Task names of one or more modules, by kind. */
interface TaskNames {
  readonly tables: readonly string[];
  readonly functions: readonly string[];
}

export class Tasknode implements AsyncDisposable {
  readonly name: string;
  readonly relay: string;
  readonly threads: number;
  readonly closed: Promise<void>;

  readonly #settings: TasknodeSettings;
  readonly #log: Logger;
  readonly #queues: readonly string[];
  /** Tasks of the bundled library and of --module modules. */
  readonly #base: TaskNames;
  readonly #startupModules: readonly ModuleSpec[];
  /** Deployed modules by name. */
  readonly #deployed = new Map<string, LoadedModule>();
  /** Deployed modules this node could not load, by name. */
  readonly #failed = new Map<string, ModuleFailure>();
  /** DEPLOYs are handled one after another. */
  #deploying: Promise<void> = Promise.resolve();
  readonly #pool: WorkerPool;
  readonly #limits: ProtocolLimits;
  readonly #store: string;
  readonly #storePath: string;
  readonly #curve: CurveClientKeys | undefined;
  /** Why the relay refused the last handshake; cleared by a successful one. */
  #authError: RtlError | undefined;
  /** A refusal was logged since the last successful handshake. */
  #authLogged = false;
  #sock!: zmq.Dealer;
  #out!: Outbox;
  #seq = 0;
  #running = 0;
  #lastHeard = Date.now();
  #timer: NodeJS.Timeout;
  #closing: Promise<void> | undefined;
  #resolveClosed!: () => void;

  /** The main thread's registry: bundled tasks only, for small stages run inline. */
  readonly #bundled: TaskRegistry;
  readonly #stores = new StoreCache();

  /** Table tasks that came from modules (never run inline). */
  #moduleTables = new Set<string>();

  private constructor(
    settings: TasknodeSettings,
    opts: TasknodeOptions,
    pool: WorkerPool,
    base: TaskNames,
    startupModules: readonly ModuleSpec[],
    bundled: TaskRegistry,
    curve: CurveClientKeys | undefined,
  ) {
    this.#settings = settings;
    this.#curve = curve;
    this.#log = opts.logger ?? silentLogger();
    this.name = opts.name ?? defaultName();
    this.relay = opts.relay ?? `tcp://${settings.RELAY_ADDR}:${String(settings.RELAY_SEND)}`;
    this.threads = pool.size;
    this.#queues = opts.queues ?? [];
    this.#base = base;
    this.#startupModules = startupModules;
    this.#bundled = bundled;
    this.#moduleTables = new Set(base.tables.filter((t) => bundled.get(t, 'table') === undefined));
    this.#storePath = resolvePath(settings.CACHE_PATH);
    this.#store = opts.noStore ? '' : `${hostname()}:${this.#storePath}`;
    this.#limits = { ...DEFAULT_LIMITS, maxMessageBytes: settings.MAX_MESSAGE_BYTES };
    this.#pool = pool;
    this.closed = new Promise((r) => (this.#resolveClosed = r));
    this.#connect();
    this.#timer = setInterval(() => this.#beat(), settings.HEARTBEAT_MS);
  }

  /**
   * Start a tasknode and connect it; it keeps reconnecting until closed. Modules given in
   * `modules` are loaded into every worker thread first: one that fails to load or exports
   * no task stops the start with RTL_ERR_CONFIG naming the file.
   */
  static async start(settings: TasknodeSettings, opts: TasknodeOptions = {}): Promise<Tasknode> {
    const curve =
      opts.curve === false ? undefined : (opts.curve ?? peerCurve(settings, 'this tasknode'));
    const bundled = registerBundledFunctions(createBundledRegistry());
    const pool = new WorkerPool(Math.max(1, opts.threads ?? 1));
    const startup: ModuleSpec[] = [];
    const tables = new Set(bundled.names('table'));
    const functions = new Set(bundled.names('function'));
    try {
      for (const path of opts.modules ?? []) {
        const file = resolvePath(path);
        const spec: ModuleSpec = { name: `file:${file}`, origin: `file:${file}`, file };
        const replies = await pool.broadcast({ op: 'load', module: spec });
        const names = agree(replies);
        if ('error' in names)
          throw new RtlError(
            'RTL_ERR_CONFIG',
            `task module ${path} failed to load: ${names.error.message}`,
            { file: path, ...names.error.detail },
          );
        if (names.tables.length + names.functions.length === 0)
          throw new RtlError(
            'RTL_ERR_CONFIG',
            `task module ${path} exports no task (export the result of defineTableTask(...) or defineFunctionTask(...))`,
            { file: path },
          );
        for (const t of names.tables) tables.add(t);
        for (const f of names.functions) functions.add(f);
        startup.push(spec);
      }
    } catch (err) {
      await pool.close();
      throw err;
    }
    pool.setModules(startup);
    return new Tasknode(
      settings,
      opts,
      pool,
      { tables: [...tables].sort(), functions: [...functions].sort() },
      startup,
      bundled,
      curve,
    );
  }

  /**
   * Why the relay refused this node's last handshake (RTL_ERR_AUTH), or undefined. The node
   * keeps trying (a new connection every HEARTBEAT_MS x HEARTBEAT_LIVENESS), so a key added to
   * the allow-list later lets it join.
   */
  get authError(): RtlError | undefined {
    return this.#authError;
  }

  /** Deployed modules this node runs, as `name@version`. */
  get modules(): string[] {
    return [...this.#deployed.entries()].map(([name, m]) => `${name}@${String(m.version)}`).sort();
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
      ...(this.#curve === undefined ? {} : curveSocketOptions(this.#curve)),
      routingId: `${this.name}.${randomUUID().slice(0, 8)}`,
      maxMessageSize: this.#settings.MAX_MESSAGE_BYTES,
      linger: 0,
      sendHighWaterMark: 0,
      receiveHighWaterMark: 0,
      reconnectInterval: 100,
      reconnectMaxInterval: 2000,
    });
    this.#watchHandshakes(sock);
    sock.connect(this.relay);
    this.#sock = sock;
    this.#out = new Outbox(sock, (err) => this.#log.debug({ err }, 'send failed'), { batch: true });
    this.#lastHeard = Date.now();
    this.#hello();
    void receiveLoop(
      sock,
      (frames) => this.#onMessage(frames),
      (err) => this.#log.error({ err }, 'receive failed'),
    );
    this.#log.info(
      { node: this.name, relay: this.relay, threads: this.threads },
      'tasknode connecting',
    );
  }

  /** A refused handshake is kept in `authError` and logged once until a handshake succeeds. */
  #watchHandshakes(sock: zmq.Dealer): void {
    const watch = new HandshakeWatch({
      who: 'tasknode',
      relay: this.relay,
      keys: this.#curve,
      name: this.#curve?.name ?? this.name,
    });
    void (async () => {
      try {
        for await (const ev of sock.events) {
          if (ev.type === 'handshake') {
            this.#authError = undefined;
            this.#authLogged = false;
            continue;
          }
          const err = watch.onEvent(ev);
          if (err === undefined) continue;
          this.#authError = err;
          if (this.#authLogged) continue;
          this.#authLogged = true;
          this.#log.error(
            { node: this.name, relay: this.relay, code: err.code, key: this.#curve?.publicKey },
            `${err.message} (this node keeps trying)`,
          );
        }
      } catch {
        // The socket closed: its events end.
      }
    })();
  }

  #hello(): void {
    const tables = new Set(this.#base.tables);
    const functions = new Set(this.#base.functions);
    for (const m of this.#deployed.values()) {
      for (const t of m.tables) tables.add(t);
      for (const f of m.functions) functions.add(f);
    }
    this.#send({
      t: 'HELLO',
      node: this.name,
      queues: this.#queues,
      tasks: [...tables].sort(),
      credit: this.threads * this.#settings.TASK_PREFETCH,
      host: hostname(),
      store: this.#store,
      pid: process.pid,
      functions: [...functions].sort(),
      modules: this.modules,
      failed: [...this.#failed.values()],
    });
  }

  /** DEPLOY from the relay [P-8.4]: write the module, load it into every worker, announce. */
  async #deploy(msg: Extract<Message, { t: 'DEPLOY' }>, payload: readonly Buffer[]): Promise<void> {
    const { name, version, sha256 } = msg;
    const label = `${name}@${String(version)}`;
    if (
      version === undefined ||
      sha256 === undefined ||
      msg.data.kind !== 'cbor' ||
      payload[0] === undefined
    ) {
      this.#log.warn(
        { module: name },
        'dropped a DEPLOY without version, sha256 or source (P-8.4)',
      );
      return;
    }
    const current = this.#deployed.get(name);
    if (current?.version === version && current.sha256 === sha256) {
      this.#hello();
      return;
    }
    let source: unknown;
    try {
      source = decodeValue(payload[0], this.#limits);
    } catch (err) {
      this.#moduleFailed(name, label, toError(err));
      return;
    }
    if (typeof source !== 'string' || sourceHash(source) !== sha256) {
      this.#moduleFailed(name, label, {
        code: 'RTL_ERR_PROTOCOL',
        message: `DEPLOY ${label}: the source is not a text string whose sha256 is ${sha256}`,
      });
      return;
    }
    let file: string;
    try {
      file = writeModuleFile(join(this.#storePath, 'modules'), name, version, sha256, source);
    } catch (err) {
      this.#moduleFailed(name, label, toError(err));
      return;
    }
    const spec: ModuleSpec = { name, origin: label, file };
    const names = agree(await this.#pool.broadcast({ op: 'load', module: spec }));
    if ('error' in names) {
      // Some workers may run it, others not: drop it everywhere, so every worker agrees.
      await this.#pool.broadcast({ op: 'unload', name });
      this.#deployed.delete(name);
      this.#moduleFailed(name, label, names.error);
      return;
    }
    this.#deployed.set(name, {
      version,
      sha256,
      spec,
      tables: names.tables,
      functions: names.functions,
    });
    this.#failed.delete(name);
    this.#modulesChanged();
    this.#log.info(
      { node: this.name, module: label, tables: names.tables, functions: names.functions },
      'module loaded',
    );
    this.#hello();
  }

  #moduleFailed(name: string, label: string, error: WireError): void {
    this.#log.error(
      { node: this.name, module: label, code: error.code },
      `module could not be loaded: ${error.message}`,
    );
    this.#failed.set(name, { module: label, error });
    this.#modulesChanged();
    this.#hello();
  }

  /** Keep the pool's start list and the inline check in step with the deployed modules. */
  #modulesChanged(): void {
    this.#pool.setModules([
      ...this.#startupModules,
      ...[...this.#deployed.values()].map((m) => m.spec),
    ]);
    const tables = new Set(
      this.#base.tables.filter((t) => this.#bundled.get(t, 'table') === undefined),
    );
    for (const m of this.#deployed.values()) for (const t of m.tables) tables.add(t);
    this.#moduleTables = tables;
  }

  #beat(): void {
    const silence = this.#settings.HEARTBEAT_MS * this.#settings.HEARTBEAT_LIVENESS;
    if (Date.now() - this.#lastHeard > silence) {
      // The relay went silent: drop the socket and connect afresh (a restarted relay gets a HELLO).
      this.#log.warn(
        { node: this.name, relay: this.relay, silentMs: Date.now() - this.#lastHeard },
        'relay silent past liveness: reconnecting',
      );
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
      this.#log.warn(
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
    switch (msg.t) {
      case 'HEARTBEAT':
        return;
      case 'STAGE':
        this.#runStage(msg, decoded.payload);
        return;
      case 'DEPLOY': {
        const payload = decoded.payload;
        this.#deploying = this.#deploying
          .then(() => this.#deploy(msg, payload))
          .catch((err: unknown) => {
            this.#log.error({ err, module: msg.name }, 'deploy failed');
          });
        return;
      }
      case 'REJECTED':
        if (msg.error.detail?.rule === 'P-5.2') this.#hello();
        else
          this.#log.warn(
            { code: msg.error.code },
            `relay rejected a message: ${msg.error.message}`,
          );
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
      ...(msg.kind === 'function' ? { kind: 'function' as const } : {}),
      data: msg.data,
      frames: payload,
      resultStore: msg.store === this.#store ? msg.store : '',
      refBytes: this.#settings.CHUNKING_SIZE,
      chunked: this.#settings.CHUNKING,
      mapSize: this.#settings.CACHE_MAP_SIZE,
      profile: this.#settings.PROFILE,
    };
    this.#running++;
    const run = this.#inline(msg, payload)
      ? executeStage(this.#bundled, this.#stores, req)
      : this.#pool.run(req);
    void run.then((reply) => {
      this.#running--;
      if (reply.ok) {
        this.#send(
          {
            t: 'STAGE_DONE',
            id: msg.id,
            stage: msg.stage,
            attempt: msg.attempt,
            data: reply.data,
            ms: reply.ms,
            tasks: reply.tasks,
          },
          reply.frames,
        );
      } else {
        this.#log.info(
          { job: msg.id, stage: msg.stage, code: reply.error.code },
          `stage failed: ${reply.error.message}`,
        );
        this.#send({
          t: 'STAGE_FAILED',
          id: msg.id,
          stage: msg.stage,
          attempt: msg.attempt,
          error: reply.error,
        });
      }
    });
  }

  /** Small input, bundled kernels only: run on this thread (microseconds), skipping the worker hop. */
  #inline(msg: Extract<Message, { t: 'STAGE' }>, payload: readonly Buffer[]): boolean {
    const limit = this.#settings.TASK_INLINE_BYTES;
    if (limit === 0) return false;
    let bytes = 0;
    for (const f of payload) bytes += f.length;
    if (bytes > limit) return false;
    // Bundled function tasks (add, mul, tsum, ...): deployed ones may run long, so they never inline.
    if (msg.kind === 'function')
      return msg.tasks.every((t) => this.#bundled.get(t.task, 'function') !== undefined);
    if (msg.data.kind !== 'arrow' && msg.data.kind !== 'none') return false;
    return msg.tasks.every((t) => {
      if (this.#moduleTables.has(t.task)) return false;
      const def = this.#bundled.get(t.task, 'table');
      // Bundled kernels only; tasks whose cost is not bounded by the input (files) never inline.
      return def?.kind === 'table' && !def.worker;
    });
  }

  #send(msg: Outgoing, payload: readonly Uint8Array[] = []): void {
    this.#out.push(encodeMessage(msg, payload));
  }
}

function defaultName(): string {
  return `tasknode-${hostname()}-${String(process.pid)}`;
}

function toError(err: unknown): WireError {
  if (err instanceof RtlError) return err.toJSON();
  return { code: 'RTL_ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/** The workers' replies to one load: the module's task names, or the first error. */
function agree(replies: readonly ControlReply[]): TaskNames | { readonly error: WireError } {
  let names: TaskNames | undefined;
  for (const r of replies) {
    if (!r.ok) return { error: r.error };
    names ??= { tables: r.tables, functions: r.functions };
  }
  return names ?? { tables: [], functions: [] };
}
