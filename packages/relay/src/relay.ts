/**
 * The relay: RECV (ROUTER, clients), SEND (ROUTER, tasknodes), PUBLISH (XPUB, events).
 * It validates documents before ACCEPTED, runs each job's stages on tasknodes with credit,
 * and sends the final RESULT to the submitting client over RECV. It keeps deployed task
 * modules (P-8): checks each in a child process, stores it in the LMDB store, and hands it
 * to every tasknode, now and when one joins later.
 */
import { hostname } from 'node:os';
import * as zmq from 'zeromq';
import {
  Outbox,
  RtlError,
  checkDeployProof,
  decodeMessage,
  decodeValue,
  encodeMessage,
  encodeValue,
  parseDocument,
  graphFromCanvas,
  graphFromSpec,
  parseCanvas,
  receiveLoop,
  relayCurve,
  MAX_TIMEOUT_MS,
  silentLogger,
  tcpEndpoint,
  toWireError,
  unbatch,
  type DeployedNode,
  type DeployedTask,
  type FunctionCatalog,
  type JobGraph,
  type Logger,
  type Message,
  type Outgoing,
  type ProtocolLimits,
  type Store,
  type TaskCatalog,
  type CatalogTask,
  type KeyFile,
  DEFAULT_LIMITS,
} from '@rtl/core';
import { bundledFunctionTasks, spellingsOf, toCamelCase, type TaskKind } from '@rtl/tasks';
import { Scheduler, type NodeState } from './scheduler.js';
import { Jobs, type Run } from './jobs.js';
import { Journal } from './journal.js';
import { MemberBook, compareMembers, memberKind, type Member } from './members.js';
import {
  MODULE_ERROR,
  MODULE_NAME,
  ModuleBook,
  checkModule,
  defaultModuleDir,
  sourceHash,
  type CheckedTask,
  type CurrentModule,
} from './modules.js';
import { AllowListFile, ZapHandler } from './zap.js';

/** The settings the relay reads (a Config has them all). */
export interface RelaySettings {
  readonly RELAY_LISTEN: string;
  readonly RELAY_RECV: number;
  readonly RELAY_SEND: number;
  readonly RELAY_PUBLISHER: number;
  readonly HEARTBEAT_MS: number;
  readonly HEARTBEAT_LIVENESS: number;
  readonly MAX_MESSAGE_BYTES: number;
  readonly MAX_WAITING_JOBS: number;
  readonly CHUNKING_SIZE: number;
  /** Keep the journal in the store (default true). */
  readonly JOURNAL?: boolean;
  /** How long finished jobs stay in the journal (default 1 h). */
  readonly JOURNAL_RETENTION?: number;
  /** The relay's CURVE key file; with CURVE_ALLOW, all three sockets use CURVE. */
  readonly CURVE_SERVER_KEY_FILE?: string;
  /** The allow-list file (`<public key> <name> [deployer]` lines). */
  readonly CURVE_ALLOW?: string;
  /** When set, it must be the public key of CURVE_SERVER_KEY_FILE (a shared config). */
  readonly CURVE_SERVER_PUBLIC?: string;
}

export interface RelayOptions {
  readonly logger?: Logger;
  /** Validates documents; tasks announced by tasknodes are added to it. */
  readonly catalog?: TaskCatalog;
  /**
   * The LMDB store for by-reference values (shared with same-host peers) and, unless
   * `journal` is false, the journal of jobs (a restarted relay resumes them).
   */
  readonly store?: Store;
  /** Keep the job journal in the store (default true when there is a store). */
  readonly journal?: boolean;
  /** Clock, for tests. */
  readonly now?: () => number;
  /** Where deployed modules are written to be checked (default: `<store>/modules`, or a temp dir). */
  readonly moduleDir?: string;
  /** How long a deployed module may take to load in the check process (default 20000 ms). */
  readonly moduleCheckMs?: number;
  /** How long a deploy waits for each tasknode to load the module (default 20000 ms). */
  readonly deployWaitMs?: number;
}

/** One task in a STATUS `{ what: 'tasks' }` answer. [P-8.5] */
export interface TaskListing {
  readonly name: string;
  readonly kind: TaskKind;
  readonly summary: string;
  readonly aliases: readonly string[];
  /** `bundled`, `name@version` (a deployed module), or `tasknode <names>` (known only from tasknodes). */
  readonly origin: string;
  /** A table task's parameters (a ParamDoc), when known. */
  readonly params?: unknown;
}

/** One deployed module in a STATUS `{ what: 'tasks' }` answer. */
export interface ModuleListing {
  readonly name: string;
  readonly version: number;
  readonly sha256: string;
  readonly bytes: number;
  readonly deployedAt: number;
  readonly tasks: readonly string[];
  /** Tasknodes that run this version. */
  readonly nodes: readonly string[];
}

export interface RelayEndpoints {
  readonly recv: string;
  readonly send: string;
  readonly publish: string;
}

export interface NodeStatus {
  readonly name: string;
  readonly host: string;
  readonly pid: number;
  readonly queues: readonly string[];
  readonly tasks: number;
  /** Function tasks it announced. */
  readonly functions: number;
  /** Deployed modules it runs (`name@version`). */
  readonly modules: readonly string[];
  readonly credit: number;
  readonly running: number;
  readonly lastSeenMs: number;
  readonly alive: boolean;
}

/** What a tasknode's HELLO says about function tasks and deployed modules. */
interface NodeModules {
  readonly functions: readonly string[];
  /** Modules it runs (`name@version`); undefined: it does not take DEPLOY. */
  readonly has: ReadonlySet<string> | undefined;
  /** Modules it could not load, with why. */
  readonly failed: ReadonlyMap<string, string>;
  /** Modules handed to it that it has not announced yet. */
  readonly sent: Set<string>;
}

export interface RelayStatus {
  readonly relay: {
    readonly pid: number;
    readonly host: string;
    readonly uptimeMs: number;
    readonly endpoints: RelayEndpoints;
    readonly store: string;
    /** The relay's CURVE public key; empty when it runs in plain text. */
    readonly curveKey: string;
  };
  readonly nodes: readonly NodeStatus[];
  readonly jobs: {
    readonly running: number;
    readonly waiting: number;
    readonly done: number;
    readonly failed: number;
    readonly cancelled: number;
  };
  readonly dropped: {
    readonly malformed: number;
    /** Handshakes refused by CURVE (key not allowed, no keys, wrong relay key). */
    readonly refused: number;
  };
}

const MODULE_CHECK_MS = 20_000;
const DEPLOY_WAIT_MS = 20_000;
const FINISHED_KEEP = 10_000;
/** Bytes of finished jobs' results kept for COLLECT and repeated SUBMITs. */
const FINISHED_KEEP_BYTES = 64 * 2 ** 20;
const TOPIC_NODE = 'node.';
/** Longest subscription (topic prefix) a subscriber may send to PUBLISH, in bytes. */
const MAX_SUBSCRIPTION_BYTES = 1024;
/** Distinct subscription prefixes the relay tracks before it publishes every event. */
const MAX_TRACKED_TOPICS = 1024;
const DEFAULT_RETENTION_MS = 3_600_000;
const PRUNE_EVERY_MS = 1000;
/**
 * Messages (each up to a BATCH of 2048 frames) ZeroMQ queues per peer before it stops
 * reading that peer's connection: a peer that sends faster than the relay reads is slowed by
 * TCP instead of growing the relay's memory.
 */
const RECEIVE_HWM = 1000;

/** The relay's CURVE state, when it uses CURVE. */
interface RelayCurveState {
  readonly pair: KeyFile;
  readonly allow: AllowListFile;
  readonly zap: ZapHandler;
}

/** The socket options of one relay socket (a ZAP domain names it in ZAP requests). */
function securityOptions(
  curve: { context: zmq.Context; pair: KeyFile } | undefined,
  domain: string,
): Partial<zmq.SocketOptions<zmq.Router>> {
  if (curve === undefined) return {};
  return {
    context: curve.context,
    curveServer: true,
    curveSecretKey: curve.pair.secretKey,
    zapDomain: domain,
  };
}

export class Relay implements AsyncDisposable {
  readonly endpoints: RelayEndpoints;
  readonly closed: Promise<void>;

  readonly #recv: zmq.Router;
  readonly #send: zmq.Router;
  readonly #pub: zmq.XPublisher;
  readonly #recvOut: Outbox;
  readonly #sendOut: Outbox;
  readonly #pubOut: Outbox;
  readonly #settings: RelaySettings;
  readonly #log: Logger;
  readonly #store: Store | undefined;
  readonly #baseCatalog: TaskCatalog | undefined;
  readonly #catalog: TaskCatalog;
  readonly #limits: ProtocolLimits;
  readonly #now: () => number;
  readonly #started: number;
  readonly #sched = new Scheduler<Run>();
  readonly #jobs: Jobs;
  readonly #functionCatalog: FunctionCatalog;
  /** Function task spellings resolved so far; cleared when modules or tasknodes change. */
  readonly #functionCache = new Map<string, string | undefined>();
  readonly #counts = { malformed: 0 };
  readonly #warned = new Set<string>();
  readonly #subscriptions = new Set<string>();
  #publishAll = false;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #journal: Journal | undefined;
  readonly #pruner: NodeJS.Timeout | undefined;
  readonly #book: ModuleBook;
  readonly #moduleDir: string;
  readonly #moduleCheckMs: number;
  readonly #deployWaitMs: number;
  /** Deploys run one after another. */
  #deployTurn: Promise<void> = Promise.resolve();
  /** Ends the module check running now (on shutdown). */
  #stopCheck: (() => void) | undefined;
  /** Per tasknode id. */
  readonly #nodeModules = new Map<string, NodeModules>();
  /** Deployed tasks by `kind:spelling`. */
  readonly #moduleSpellings = new Map<string, { module: CurrentModule; task: CheckedTask }>();
  /** Deploys waiting for a tasknode to load a module, by `<node id> <name@version>`. */
  readonly #acks = new Map<string, (r: Omit<DeployedNode, 'node'>) => void>();
  readonly #curve: RelayCurveState | undefined;
  /** Tasknodes that died (the live ones are the scheduler's). */
  readonly #members = new MemberBook();
  #accepting = true;
  #closing: Promise<void> | undefined;
  #resolveClosed!: () => void;

  private constructor(
    settings: RelaySettings,
    opts: RelayOptions,
    sockets: { recv: zmq.Router; send: zmq.Router; pub: zmq.XPublisher },
    endpoints: RelayEndpoints,
    curve: RelayCurveState | undefined,
  ) {
    this.#curve = curve;
    this.#settings = settings;
    this.#log = opts.logger ?? silentLogger();
    this.#store = opts.store;
    this.#baseCatalog = opts.catalog;
    this.#now = opts.now ?? Date.now;
    this.#started = this.#now();
    this.#limits = { ...DEFAULT_LIMITS, maxMessageBytes: settings.MAX_MESSAGE_BYTES };
    this.#recv = sockets.recv;
    this.#send = sockets.send;
    this.#pub = sockets.pub;
    this.endpoints = endpoints;
    const sendFail = (what: string) => (err: unknown) =>
      this.#log.debug({ err }, `${what} send failed`);
    this.#recvOut = new Outbox(this.#recv, sendFail('client'), { batch: true, routed: true });
    this.#sendOut = new Outbox(this.#send, sendFail('tasknode'), { batch: true, routed: true });
    this.#pubOut = new Outbox(this.#pub, sendFail('publish'));
    this.#catalog = {
      resolve: (name) => this.#resolveTask(name),
      names: () => this.#taskNames(),
    };
    this.#functionCatalog = {
      resolve: (name) => this.#resolveFunction(name),
      names: () => this.#functionNames(),
    };
    this.#journal =
      opts.store !== undefined && opts.journal !== false && settings.JOURNAL !== false
        ? new Journal(opts.store, this.#log, settings.JOURNAL_RETENTION ?? DEFAULT_RETENTION_MS)
        : undefined;
    this.#jobs = new Jobs(
      {
        sched: this.#sched,
        store: this.#store,
        journal: this.#journal,
        log: this.#log,
        now: this.#now,
        toClient: (identity, msg, payload) => this.#toClient(identity, msg, payload),
        toNode: (identity, msg, payload) => this.#toNode(identity, msg, payload),
        wants: (topic) => (this.#publishAll || this.#subscriptions.size > 0) && this.#wants(topic),
        publish: (topic, event, data, payload = []) =>
          this.#pubOut.push([
            topic,
            ...encodeMessage({ t: 'EVENT', topic, event, ...(data ? { data } : {}) }, payload),
          ]),
      },
      {
        refBytes: settings.CHUNKING_SIZE,
        keepFinished: FINISHED_KEEP,
        keepBytes: FINISHED_KEEP_BYTES,
      },
    );
    this.#book = ModuleBook.open(opts.store, this.#log);
    this.#indexModules();
    this.#moduleDir = opts.moduleDir ?? defaultModuleDir(opts.store);
    this.#moduleCheckMs = opts.moduleCheckMs ?? MODULE_CHECK_MS;
    this.#deployWaitMs = opts.deployWaitMs ?? DEPLOY_WAIT_MS;
    this.closed = new Promise((r) => (this.#resolveClosed = r));
    if (this.#journal !== undefined) {
      const unfinished = this.#journal.unfinished();
      if (unfinished.length > 0) {
        this.#log.info({ jobs: unfinished.length }, 'resuming unfinished jobs from the journal');
        this.#jobs.restore(unfinished);
      }
      this.#jobs.prune();
      // Every second, a bounded batch: pruning never stalls the relay for long.
      this.#pruner = setInterval(() => this.#jobs.prune(), PRUNE_EVERY_MS);
      this.#pruner.unref();
    }
    void receiveLoop(
      this.#recv,
      (f) => this.#onClient(f),
      (err) => this.#log.error({ err }, 'RECV receive failed'),
    );
    void receiveLoop(
      this.#send,
      (f) => this.#onNode(f),
      (err) => this.#log.error({ err }, 'SEND receive failed'),
    );
    void receiveLoop(
      this.#pub,
      (f) => this.#onSubscription(f),
      (err) => this.#log.error({ err }, 'PUBLISH receive failed'),
    );
    this.#heartbeat = setInterval(() => this.#beat(), settings.HEARTBEAT_MS);
    if (curve !== undefined) {
      this.#watchHandshakes(this.#recv, 'RECV');
      this.#watchHandshakes(this.#send, 'SEND');
      this.#watchHandshakes(this.#pub, 'PUBLISH');
    }
  }

  /** Bind the three ports and start serving. Port 0 binds an ephemeral port (see `endpoints`). */
  static async start(settings: RelaySettings, opts: RelayOptions = {}): Promise<Relay> {
    const log = opts.logger ?? silentLogger();
    const maxMessageSize = settings.MAX_MESSAGE_BYTES;
    // CURVE: the relay's own context, so its ZAP handler answers for its sockets only.
    const keys = relayCurve(settings);
    let curve: (RelayCurveState & { context: zmq.Context }) | undefined;
    if (keys !== undefined) {
      const allow = new AllowListFile(keys.allowFile, log);
      const context = new zmq.Context({ blocky: false });
      const zap = await ZapHandler.start(context, allow, log);
      curve = { pair: keys.pair, allow, zap, context };
    }
    const recv = new zmq.Router({
      ...securityOptions(curve, 'RECV'),
      mandatory: true,
      // A client that reconnects under its identity takes it over (its old connection may
      // linger half-open after a network failure).
      handover: true,
      maxMessageSize,
      linger: 0,
      sendHighWaterMark: 0,
      receiveHighWaterMark: RECEIVE_HWM,
    });
    const send = new zmq.Router({
      ...securityOptions(curve, 'SEND'),
      mandatory: true,
      maxMessageSize,
      linger: 0,
      sendHighWaterMark: 0,
      receiveHighWaterMark: RECEIVE_HWM,
    });
    const pub = new zmq.XPublisher({
      ...(securityOptions(curve, 'PUBLISH') as Partial<zmq.SocketOptions<zmq.XPublisher>>),
      // Subscribers only send subscriptions, and ZeroMQ keeps each one in memory while its
      // subscriber is connected: a longer one closes that subscriber's connection.
      maxMessageSize: Math.min(maxMessageSize, MAX_SUBSCRIPTION_BYTES),
      linger: 0,
      noDrop: false,
    });
    try {
      await recv.bind(tcpEndpoint(settings.RELAY_LISTEN, settings.RELAY_RECV));
      await send.bind(tcpEndpoint(settings.RELAY_LISTEN, settings.RELAY_SEND));
      await pub.bind(tcpEndpoint(settings.RELAY_LISTEN, settings.RELAY_PUBLISHER));
    } catch (err) {
      recv.close();
      send.close();
      pub.close();
      curve?.zap.close();
      const e = err as { address?: string; message?: string };
      throw new RtlError(
        'RTL_ERR_CONFIG',
        `relay cannot bind ${e.address ?? ''}: ${e.message ?? String(err)} (is another relay running? set RELAY_RECV / RELAY_SEND / RELAY_PUBLISHER)`,
        { source: 'bind' },
        { cause: err },
      );
    }
    const endpoints = {
      recv: recv.lastEndpoint ?? '',
      send: send.lastEndpoint ?? '',
      publish: pub.lastEndpoint ?? '',
    };
    const relay = new Relay(settings, opts, { recv, send, pub }, endpoints, curve);
    relay.#log.info(
      {
        endpoints,
        store: opts.store?.id,
        ...(curve === undefined
          ? { curve: false }
          : { curve: true, key: curve.pair.publicKey, allow: curve.allow.file }),
      },
      curve === undefined ? 'relay listening (plain TCP)' : 'relay listening (CURVE)',
    );
    return relay;
  }

  /** Connected tasknodes. */
  nodes(): NodeStatus[] {
    const now = this.#now();
    const silence = this.#settings.HEARTBEAT_MS * this.#settings.HEARTBEAT_LIVENESS;
    return [...this.#sched.nodes.values()].map((n) => ({
      name: n.hello.name,
      host: n.hello.host,
      pid: n.hello.pid,
      queues: n.hello.queues,
      tasks: n.tasks.size,
      functions: this.#nodeModules.get(n.id)?.functions.length ?? 0,
      modules: [...(this.#nodeModules.get(n.id)?.has ?? [])].sort(),
      credit: n.credit,
      running: n.inflight.size,
      lastSeenMs: now - n.lastSeen,
      alive: now - n.lastSeen <= silence,
    }));
  }

  /**
   * Cluster membership: the relay itself, then every tasknode it has seen, alive or dead
   * (the last MAX_DEAD_MEMBERS dead ones), by name. [P-6.5]
   */
  members(): Member[] {
    const now = this.#now();
    const silence = this.#settings.HEARTBEAT_MS * this.#settings.HEARTBEAT_LIVENESS;
    const self: Member = {
      name: 'relay',
      kind: 'relay',
      state: 'alive',
      host: hostname(),
      pid: process.pid,
      addr: this.endpoints.recv,
      queues: [],
      tasks: this.#taskNames().length,
      credit: 0,
      running: this.#jobs.running(),
      joinedAt: this.#started,
      lastSeenAt: now,
      lastSeenMs: 0,
      leftAt: null,
    };
    const live = [...this.#sched.nodes.values()].map((n) => ({
      ...this.#memberOf(n, now),
      state: now - n.lastSeen <= silence ? ('alive' as const) : ('dead' as const),
    }));
    return [self, ...live, ...this.#members.dead(now)].sort(compareMembers);
  }

  #memberOf(n: NodeState<Run>, now: number): Member {
    return {
      name: n.hello.name,
      kind: memberKind(n.hello.name),
      state: 'alive',
      host: n.hello.host,
      pid: n.hello.pid,
      addr: '',
      queues: n.hello.queues,
      tasks: n.tasks.size,
      credit: n.credit,
      running: n.inflight.size,
      joinedAt: n.joined,
      lastSeenAt: n.lastSeen,
      lastSeenMs: now - n.lastSeen,
      leftAt: null,
    };
  }

  status(): RelayStatus {
    const running = this.#jobs.running();
    return {
      relay: {
        pid: process.pid,
        host: hostname(),
        uptimeMs: this.#now() - this.#started,
        endpoints: this.endpoints,
        store: this.#store?.id ?? '',
        curveKey: this.#curve?.pair.publicKey ?? '',
      },
      nodes: this.nodes(),
      jobs: {
        running,
        waiting: this.#sched.waitingCount,
        done: this.#jobs.counts.done,
        failed: this.#jobs.counts.failed,
        cancelled: this.#jobs.counts.cancelled,
      },
      dropped: { malformed: this.#counts.malformed, refused: this.#curve?.zap.refused ?? 0 },
    };
  }

  /** Stop taking work, let running stages finish (up to `drainMs`), close the sockets. Idempotent. */
  close(drainMs = 0): Promise<void> {
    return (this.#closing ??= this.#shutdown(drainMs));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #shutdown(drainMs: number): Promise<void> {
    this.#accepting = false;
    const deadline = this.#now() + drainMs;
    while (this.#now() < deadline && this.#jobs.running() > 0) {
      await new Promise((r) => setTimeout(r, 20));
    }
    clearInterval(this.#heartbeat);
    if (this.#pruner) clearInterval(this.#pruner);
    this.#stopCheck?.();
    for (const settle of this.#acks.values())
      settle({ ok: false, message: 'the relay shut down before the tasknode loaded the module' });
    this.#jobs.close();
    await Promise.race([
      Promise.all([this.#recvOut.flushed(), this.#sendOut.flushed()]),
      new Promise((r) => setTimeout(r, 200)),
    ]);
    this.#recv.close();
    this.#send.close();
    this.#pub.close();
    this.#curve?.zap.close();
    // The journal's last writes are committed before the relay says it is closed.
    if (this.#journal !== undefined && this.#store?.closed === false)
      await this.#store.committed().catch((err: unknown) => {
        this.#log.warn({ err }, 'journal: the last writes may not be committed');
      });
    this.#log.info('relay closed');
    this.#resolveClosed();
  }

  // ---- catalog: bundled tasks plus whatever connected tasknodes announce ----

  #resolveTask(name: string): CatalogTask | undefined {
    // A deployed module's table task (its name never clashes with a bundled table task); its
    // parameters are checked on the tasknode. It goes first: the catalog may resolve the same
    // spelling to a bundled *function* task, which a stage cannot run.
    const table = this.#moduleTask('table', name);
    if (table !== undefined) return { name: table.task.name };
    const base = this.#baseCatalog?.resolve(name);
    if (base !== undefined) return base;
    const fn = this.#moduleTask('function', name);
    if (fn !== undefined) {
      return {
        name: fn.task.name,
        validate: (_params, where) => {
          throw new RtlError(
            'RTL_ERR_BAD_DOCUMENT',
            `stage "${where.stage}", task "${where.task}": "${fn.task.name}" is a function task (for canvas calls, from module ${fn.module.label}); a stage runs table tasks`,
            { stage: where.stage, task: where.task },
          );
        },
      };
    }
    // A task only tasknodes announce (a module's): any of the accepted spellings names it.
    const canonical = toCamelCase(name.replace(/^task_/, ''));
    for (const n of this.#sched.nodes.values()) {
      if (n.tasks.has(name)) return { name };
      if (n.tasks.has(canonical)) return { name: canonical };
    }
    return undefined;
  }

  #taskNames(): string[] {
    const names = new Set(this.#baseCatalog?.names() ?? []);
    for (const m of this.#book.current())
      for (const t of m.tasks) if (t.kind === 'table') names.add(t.name);
    for (const n of this.#sched.nodes.values()) for (const t of n.tasks) names.add(t);
    return [...names].sort();
  }

  /** The current deployed task of `kind` that `spelling` names. */
  #moduleTask(
    kind: TaskKind,
    spelling: string,
  ): { module: CurrentModule; task: CheckedTask } | undefined {
    return this.#moduleSpellings.get(`${kind}:${spelling}`);
  }

  /** Rebuild the spelling index of deployed tasks (after the book changed). */
  #indexModules(): void {
    this.#functionCache.clear();
    this.#moduleSpellings.clear();
    for (const module of this.#book.current())
      for (const task of module.tasks)
        for (const n of [task.name, ...task.aliases])
          for (const sp of spellingsOf(n))
            this.#moduleSpellings.set(`${task.kind}:${sp}`, { module, task });
  }

  /** The relay's own tasks (its catalog's, mostly bundled, and the bundled function tasks), for listings and clash checks. */
  #bundledTasks(): TaskListing[] {
    const out = new Map<string, TaskListing>();
    const catalog = this.#baseCatalog;
    if (isListable(catalog)) {
      for (const t of catalog.list()) {
        const def = catalog.get(t.name, t.kind);
        let params: unknown;
        try {
          params = def?.kind === 'table' ? def.params?.describe() : undefined;
        } catch {
          params = undefined;
        }
        out.set(`${t.kind}:${t.name}`, {
          name: t.name,
          kind: t.kind,
          summary: t.summary,
          aliases: t.aliases,
          origin: t.origin,
          ...(params === undefined ? {} : { params }),
        });
      }
    } else {
      for (const name of catalog?.names() ?? [])
        out.set(`table:${name}`, {
          name,
          kind: 'table',
          summary: '',
          aliases: [],
          origin: 'bundled',
        });
    }
    for (const def of bundledFunctionTasks)
      if (!out.has(`function:${def.name}`))
        out.set(`function:${def.name}`, {
          name: def.name,
          kind: 'function',
          summary: def.summary,
          aliases: def.aliases,
          origin: 'bundled',
        });
    return [...out.values()];
  }

  /** Every task: bundled, deployed, and those only tasknodes announce. [P-8.5] */
  #listTasks(): { tasks: TaskListing[]; modules: ModuleListing[] } {
    const tasks = new Map<string, TaskListing>();
    for (const t of this.#bundledTasks()) tasks.set(`${t.kind}:${t.name}`, t);
    const modules: ModuleListing[] = [];
    for (const m of this.#book.current()) {
      for (const t of m.tasks)
        tasks.set(`${t.kind}:${t.name}`, {
          name: t.name,
          kind: t.kind,
          summary: t.summary,
          aliases: t.aliases,
          origin: m.label,
          ...(t.params === undefined ? {} : { params: t.params }),
        });
      const nodes = [...this.#sched.nodes.values()]
        .filter((n) => this.#nodeModules.get(n.id)?.has?.has(m.label))
        .map((n) => n.hello.name);
      modules.push({
        name: m.name,
        version: m.version,
        sha256: m.sha256,
        bytes: m.bytes,
        deployedAt: m.deployedAt,
        tasks: m.tasks.map((t) => t.name),
        nodes: nodes.sort(),
      });
    }
    const fromNodes = new Map<string, Set<string>>();
    for (const n of this.#sched.nodes.values()) {
      const add = (kind: TaskKind, name: string): void => {
        if (tasks.has(`${kind}:${name}`)) return;
        const key = `${kind}:${name}`;
        const set = fromNodes.get(key) ?? new Set<string>();
        set.add(n.hello.name);
        fromNodes.set(key, set);
      };
      for (const t of n.hello.tasks) add('table', t);
      for (const f of this.#nodeModules.get(n.id)?.functions ?? []) add('function', f);
    }
    for (const [key, names] of fromNodes) {
      const [kind, name] = key.split(/:(.*)/s) as [TaskKind, string];
      tasks.set(key, {
        name,
        kind,
        summary: '',
        aliases: [],
        origin: `tasknode ${[...names].sort().join(', ')}`,
      });
    }
    const order = (t: TaskListing): string => `${t.name}\u0000${t.kind === 'table' ? '0' : '1'}`;
    return {
      tasks: [...tasks.values()].sort((a, b) =>
        order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0,
      ),
      modules,
    };
  }

  // ---- RECV: clients ----

  #onClient(frames: Buffer[], inBatch = false): void {
    const identity = frames[0] as Buffer;
    const decoded = decodeMessage(frames.slice(1), this.#limits);
    if (!decoded.ok) {
      // Garbage without a job id is answered once per peer and rule: a peer that sends it
      // and never reads does not make the relay queue answers for it.
      if (this.#malformed('client', identity, decoded.error) || decoded.id !== '')
        this.#toClient(identity, { t: 'REJECTED', id: decoded.id, error: decoded.error.toJSON() });
      return;
    }
    const { msg, payload } = decoded;
    if (msg.t === 'BATCH' && !inBatch) {
      for (const inner of unbatch(msg, payload)) this.#onClient([identity, ...inner], true);
      return;
    }
    switch (msg.t) {
      case 'SUBMIT':
        this.#submit(identity, msg, payload);
        return;
      case 'CANCEL':
        this.#jobs.cancel(identity, msg.id);
        return;
      case 'COLLECT':
        this.#collect(identity, msg.id);
        return;
      case 'STATUS':
        this.#answerStatus(identity, msg.rid, msg.query);
        return;
      case 'HEARTBEAT':
        this.#toClient(identity, { t: 'HEARTBEAT' });
        return;
      case 'DEPLOY':
        this.#deployTurn = this.#deployTurn.then(() => this.#deploy(identity, msg, payload));
        return;
      default: {
        const error = new RtlError(
          'RTL_ERR_PROTOCOL',
          `[P-5.1] ${msg.t} is not a message a client sends to RECV`,
          { rule: 'P-5.1' },
        );
        this.#malformed('client', identity, error);
        this.#toClient(identity, {
          t: 'REJECTED',
          id: 'id' in msg && typeof msg.id === 'string' ? msg.id : '',
          error: error.toJSON(),
        });
      }
    }
  }

  #submit(client: Buffer, msg: Extract<Message, { t: 'SUBMIT' }>, payload: Buffer[]): void {
    const id = msg.id;
    // [P-6.3] a duplicate submit is answered (with the result, once there), never run twice.
    if (this.#jobs.attach(client, id)) return;
    if (!this.#accepting) {
      this.#reject(
        client,
        id,
        new RtlError('RTL_ERR_SHUTTING_DOWN', 'relay is shutting down and takes no new jobs', {
          job: id,
        }),
      );
      return;
    }
    if (this.#jobs.size >= this.#settings.MAX_WAITING_JOBS) {
      this.#reject(
        client,
        id,
        new RtlError(
          'RTL_ERR_BUSY',
          `relay holds ${String(this.#jobs.size)} jobs, its limit MAX_WAITING_JOBS; try again shortly`,
          { job: id, limit: this.#settings.MAX_WAITING_JOBS },
        ),
      );
      return;
    }
    let graph: JobGraph;
    try {
      graph =
        msg.canvas !== undefined
          ? graphFromCanvas(parseCanvas(msg.canvas), this.#functionCatalog)
          : graphFromSpec(parseDocument(msg.doc, this.#catalog));
    } catch (err) {
      this.#reject(client, id, err);
      return;
    }
    if (
      msg.data.kind === 'ref' &&
      (this.#store === undefined || msg.data.store !== this.#store.id)
    ) {
      this.#reject(
        client,
        id,
        new RtlError(
          'RTL_ERR_BAD_DATA',
          `input is a store reference to ${msg.data.store}, which this relay cannot read (its store: ${this.#store?.id ?? 'none'})`,
          { job: id },
        ),
      );
      return;
    }
    if (graph.kind === 'table' ? msg.data.kind === 'cbor' : msg.data.kind !== 'none') {
      this.#reject(
        client,
        id,
        new RtlError(
          'RTL_ERR_BAD_DATA',
          graph.kind === 'table'
            ? 'a transform takes a table as input (Arrow frames), not a CBOR value'
            : 'a canvas carries its arguments in the expression; SUBMIT.data must be none',
          { job: id },
        ),
      );
      return;
    }
    if (msg.timeoutMs !== undefined && !(msg.timeoutMs > 0 && msg.timeoutMs <= MAX_TIMEOUT_MS)) {
      this.#reject(
        client,
        id,
        new RtlError(
          'RTL_ERR_BAD_DOCUMENT',
          `SUBMIT.timeoutMs is ${String(msg.timeoutMs)}, expected milliseconds from 1 to ${String(MAX_TIMEOUT_MS)}`,
          { job: id, param: 'timeoutMs' },
        ),
      );
      return;
    }
    if (
      msg.publish !== undefined &&
      (msg.publish === '' || Buffer.byteLength(msg.publish) > MAX_SUBSCRIPTION_BYTES)
    ) {
      this.#reject(
        client,
        id,
        new RtlError(
          'RTL_ERR_BAD_DOCUMENT',
          `SUBMIT.publish is a PUBLISH topic of 1 to ${String(MAX_SUBSCRIPTION_BYTES)} bytes, not ${String(Buffer.byteLength(msg.publish))}`,
          { job: id, param: 'publish' },
        ),
      );
      return;
    }
    this.#log.debug({ job: id, nodes: graph.nodes.length }, 'job accepted');
    this.#jobs.submit({
      id,
      client,
      graph,
      input: { data: msg.data, payload },
      events: msg.events,
      clientStore: msg.store,
      ...(msg.timeoutMs === undefined ? {} : { timeoutMs: msg.timeoutMs }),
      ...(msg.publish === undefined ? {} : { publish: msg.publish }),
    });
  }

  /** COLLECT [P-6.7]: the result of a job someone (maybe another client) submitted. */
  #collect(client: Buffer, id: string): void {
    if (this.#jobs.attach(client, id)) return;
    this.#reject(
      client,
      id,
      new RtlError(
        'RTL_ERR_UNKNOWN_JOB',
        `job ${id} is not known to this relay (never submitted here, or ended long ago)`,
        { job: id },
      ),
    );
  }

  #reject(client: Buffer, id: string, err: unknown): void {
    const error = toWireError(err);
    this.#log.debug({ job: id, code: error.code }, 'job rejected');
    this.#toClient(client, { t: 'REJECTED', id, error });
  }

  #answerStatus(
    client: Buffer,
    rid: string,
    query: { what: string; id?: string } | undefined,
  ): void {
    let status: Record<string, unknown>;
    if (query?.what === 'job') {
      status = this.#jobs.where(query.id ?? '');
    } else if (query?.what === 'store') {
      status = { store: this.#store?.id ?? '' };
    } else if (query?.what === 'tasks') {
      status = { ...this.#listTasks() };
    } else if (query?.what === 'members') {
      status = { members: this.members() };
    } else {
      status = this.status() as unknown as Record<string, unknown>;
    }
    this.#toClient(client, { t: 'STATUS', rid, status });
  }

  /** Function tasks a canvas may call: bundled, deployed, and those tasknodes announce. */
  #resolveFunction(name: string): string | undefined {
    if (this.#functionCache.has(name)) return this.#functionCache.get(name);
    const found = this.#findFunction(name);
    if (this.#functionCache.size > 10_000) this.#functionCache.clear();
    this.#functionCache.set(name, found);
    return found;
  }

  #findFunction(name: string): string | undefined {
    const fn = this.#moduleTask('function', name);
    if (fn !== undefined) return fn.task.name;
    for (const def of bundledFunctionTasks)
      for (const n of [def.name, ...def.aliases])
        if (spellingsOf(n).includes(name)) return def.name;
    const canonical = toCamelCase(name.replace(/^task_/, ''));
    for (const nm of this.#nodeModules.values()) {
      if (nm.functions.includes(name)) return name;
      if (nm.functions.includes(canonical)) return canonical;
    }
    return undefined;
  }

  #functionNames(): string[] {
    const names = new Set<string>(bundledFunctionTasks.map((d) => d.name));
    for (const m of this.#book.current())
      for (const t of m.tasks) if (t.kind === 'function') names.add(t.name);
    for (const nm of this.#nodeModules.values()) for (const f of nm.functions) names.add(f);
    return [...names].sort();
  }

  // ---- SEND: tasknodes ----

  #onNode(frames: Buffer[], inBatch = false): void {
    const identity = frames[0] as Buffer;
    const id = identity.toString('hex');
    const decoded = decodeMessage(frames.slice(1), this.#limits);
    if (!decoded.ok) {
      if (this.#malformed('tasknode', identity, decoded.error) || decoded.id !== '')
        this.#toNode(identity, { t: 'REJECTED', id: decoded.id, error: decoded.error.toJSON() });
      return;
    }
    const { msg, payload } = decoded;
    if (msg.t === 'BATCH' && !inBatch) {
      for (const inner of unbatch(msg, payload)) this.#onNode([identity, ...inner], true);
      return;
    }
    const now = this.#now();
    if (msg.t === 'HELLO') {
      const known = this.#sched.node(id) !== undefined;
      const node = this.#sched.addNode(
        identity,
        {
          name: msg.node,
          queues: msg.queues,
          tasks: msg.tasks,
          credit: msg.credit,
          host: msg.host,
          store: msg.store,
          pid: msg.pid,
          functions: msg.functions ?? [],
        },
        now,
      );
      this.#helloModules(node, msg);
      if (!known) {
        this.#members.joined(msg.node);
        this.#log.info(
          {
            node: msg.node,
            host: msg.host,
            credit: msg.credit,
            tasks: msg.tasks.length,
            queues: msg.queues,
          },
          'tasknode joined',
        );
        this.#publish(`${TOPIC_NODE}up`, {
          type: 'node.up',
          node: node.hello.name,
          host: node.hello.host,
          queues: node.hello.queues,
        });
      }
      this.#toNode(identity, { t: 'HEARTBEAT' });
      this.#jobs.dispatch();
      return;
    }
    const node = this.#sched.node(id);
    if (node === undefined) {
      // [P-5.2] a tasknode the relay does not know (it restarted, or declared it dead) must HELLO again.
      const error = new RtlError('RTL_ERR_PROTOCOL', '[P-5.2] unknown tasknode: send HELLO first', {
        rule: 'P-5.2',
      });
      this.#toNode(identity, { t: 'REJECTED', id: '', error: error.toJSON() });
      return;
    }
    node.lastSeen = now;
    switch (msg.t) {
      case 'HEARTBEAT':
        return;
      case 'READY':
        this.#sched.addCredit(id, msg.credit);
        this.#jobs.dispatch();
        return;
      case 'STAGE_DONE':
        this.#jobs.stageDone(node, msg, payload);
        return;
      case 'STAGE_FAILED':
        this.#jobs.stageFailed(node, msg);
        return;
      default: {
        const error = new RtlError(
          'RTL_ERR_PROTOCOL',
          `[P-5.1] ${msg.t} is not a message a tasknode sends to SEND`,
          { rule: 'P-5.1' },
        );
        this.#malformed('tasknode', identity, error);
        this.#toNode(identity, { t: 'REJECTED', id: '', error: error.toJSON() });
      }
    }
  }

  #beat(): void {
    const now = this.#now();
    const silence = this.#settings.HEARTBEAT_MS * this.#settings.HEARTBEAT_LIVENESS;
    for (const node of this.#sched.silent(now, silence)) this.#nodeLost(node, now);
    for (const node of this.#sched.nodes.values()) this.#toNode(node.identity, { t: 'HEARTBEAT' });
  }

  #nodeLost(node: NodeState<Run>, now: number): void {
    this.#members.left({
      ...this.#memberOf(node, now),
      state: 'dead',
      credit: 0,
      running: 0,
      leftAt: now,
    });
    const runs = this.#sched.removeNode(node.id);
    this.#nodeModules.delete(node.id);
    this.#functionCache.clear();
    for (const [key, settle] of this.#acks)
      if (key.startsWith(`${node.id} `))
        settle({ ok: false, message: 'left before it loaded the module' });
    this.#log.warn(
      {
        node: node.hello.name,
        host: node.hello.host,
        silentMs: now - node.lastSeen,
        stages: runs.length,
      },
      'tasknode silent past liveness: dropped',
    );
    this.#publish(`${TOPIC_NODE}down`, {
      type: 'node.down',
      node: node.hello.name,
      host: node.hello.host,
      reason: 'silent',
    });
    this.#jobs.nodeLost(node, runs);
  }

  // ---- deployed modules (P-8) ----

  /** A DEPLOY from a client: check, store, hand out, answer DEPLOYED or REJECTED. [P-8.1] */
  async #deploy(
    client: Buffer,
    msg: Extract<Message, { t: 'DEPLOY' }>,
    payload: Buffer[],
  ): Promise<void> {
    const { id, name } = msg;
    try {
      this.#assertAccepting(name);
      if (!MODULE_NAME.test(name))
        throw new RtlError(
          MODULE_ERROR,
          `module name ${JSON.stringify(name)} is not valid: use a letter, then letters, digits, "_" or "-" (at most 64), like "scale"`,
          { module: name, param: 'name' },
        );
      const frame = payload[0];
      if (msg.data.kind !== 'cbor' || frame === undefined)
        throw new RtlError(
          MODULE_ERROR,
          `DEPLOY of module "${name}": the source goes in one cbor payload frame holding a text string, not ${msg.data.kind} data`,
          { module: name, param: 'data' },
        );
      const source = decodeValue(frame, this.#limits);
      if (typeof source !== 'string')
        throw new RtlError(
          MODULE_ERROR,
          `DEPLOY of module "${name}": the cbor payload must be the module's source as a text string`,
          { module: name, param: 'data' },
        );
      const sha256 = sourceHash(source);
      this.#authorizeDeploy(msg, sha256);
      const current = this.#book.get(name);
      if (current?.sha256 === sha256) {
        // The same source again: nothing changes; say who runs it.
        const nodes = await this.#handOut(current, false);
        this.#toClient(client, {
          t: 'DEPLOYED',
          id,
          name,
          version: current.version,
          sha256,
          unchanged: true,
          tasks: current.tasks.map((t) => ({
            name: t.name,
            kind: t.kind,
            summary: t.summary,
            change: 'unchanged' as const,
          })),
          removed: [],
          nodes,
        });
        return;
      }
      const tasks = await checkModule({
        dir: this.#moduleDir,
        name,
        source,
        timeoutMs: this.#moduleCheckMs,
        onChild: (stop) => (this.#stopCheck = stop),
      });
      if (tasks.length === 0)
        throw new RtlError(
          MODULE_ERROR,
          `module "${name}" exports no task: export what defineTableTask(...) or defineFunctionTask(...) from '@rtl/tasks' returns (other exports do not count)`,
          { module: name },
        );
      this.#checkClashes(name, tasks);
      this.#assertAccepting(name);
      const module = await this.#book.add(name, source, sha256, tasks, this.#now());
      this.#indexModules();
      const before = new Set((current?.tasks ?? []).map((t) => `${t.kind}:${t.name}`));
      const listed: DeployedTask[] = tasks.map((t) => ({
        name: t.name,
        kind: t.kind,
        summary: t.summary,
        change: before.has(`${t.kind}:${t.name}`) ? 'replaced' : 'added',
      }));
      const now = new Set(tasks.map((t) => `${t.kind}:${t.name}`));
      const removed = (current?.tasks ?? [])
        .filter((t) => !now.has(`${t.kind}:${t.name}`))
        .map((t) => t.name);
      const nodes = await this.#handOut(module, true);
      this.#toClient(client, {
        t: 'DEPLOYED',
        id,
        name,
        version: module.version,
        sha256,
        unchanged: false,
        tasks: listed,
        removed,
        nodes,
      });
    } catch (err) {
      const error = toWireError(err);
      this.#log[error.code === 'RTL_ERR_FORBIDDEN' ? 'warn' : 'info'](
        { module: name, code: error.code },
        `deploy refused: ${error.message}`,
      );
      this.#toClient(client, { t: 'REJECTED', id, error });
    }
  }

  #assertAccepting(module: string): void {
    if (!this.#accepting)
      throw new RtlError(
        'RTL_ERR_SHUTTING_DOWN',
        `relay is shutting down; module "${module}" was not deployed`,
        { module },
      );
  }

  /** Refuse a module whose task names clash with a bundled task or another module's. */
  #checkClashes(name: string, tasks: readonly CheckedTask[]): void {
    const owners = new Map<string, string>();
    const claim = (kind: TaskKind, names: readonly string[], owner: string): void => {
      for (const n of names) for (const s of spellingsOf(n)) owners.set(`${kind}:${s}`, owner);
    };
    for (const t of this.#bundledTasks())
      claim(t.kind, [t.name, ...t.aliases], `${t.kind} task "${t.name}" (${t.origin})`);
    for (const m of this.#book.current())
      if (m.name !== name)
        for (const t of m.tasks)
          claim(t.kind, [t.name, ...t.aliases], `${t.kind} task "${t.name}" (${m.label})`);
    const mine = new Map<string, CheckedTask>();
    for (const t of tasks) {
      for (const n of [t.name, ...t.aliases]) {
        for (const s of spellingsOf(n)) {
          const key = `${t.kind}:${s}`;
          const other = mine.get(key);
          const owner =
            owners.get(key) ??
            (other === undefined || other === t
              ? undefined
              : `${other.kind} task "${other.name}" (export ${other.exportName} of this module)`);
          if (owner !== undefined)
            throw new RtlError(
              MODULE_ERROR,
              `module "${name}": ${t.kind} task "${t.name}" (export ${t.exportName}) clashes with ${owner} over the name "${s}"; rename it`,
              { module: name, task: t.name },
            );
          mine.set(key, t);
        }
      }
    }
  }

  /**
   * Hand a module to every tasknode that takes DEPLOY and does not run it yet, and wait until
   * each has loaded it (or failed, left, or timed out). [P-8.3]
   */
  #handOut(module: CurrentModule, fresh: boolean): Promise<DeployedNode[]> {
    const waits: Promise<DeployedNode>[] = [];
    const byName = [...this.#sched.nodes.values()].sort((x, y) =>
      x.hello.name.localeCompare(y.hello.name, undefined, { numeric: true }),
    );
    for (const node of byName) {
      const nm = this.#nodeModules.get(node.id);
      if (nm?.has === undefined) continue;
      const name = node.hello.name;
      if (nm.has.has(module.label)) {
        waits.push(Promise.resolve({ node: name, ok: true }));
        continue;
      }
      const failed = nm.failed.get(module.label);
      if (failed !== undefined && !fresh) {
        waits.push(Promise.resolve({ node: name, ok: false, message: failed }));
        continue;
      }
      waits.push(this.#awaitLoad(node, module.label).then((r) => ({ node: name, ...r })));
      this.#holdBack(node, nm.has);
      if (!nm.sent.has(module.label)) this.#pushModule(node, nm, module);
    }
    return Promise.all(waits);
  }

  #awaitLoad(node: NodeState<Run>, label: string): Promise<Omit<DeployedNode, 'node'>> {
    const key = `${node.id} ${label}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        settle({ ok: false, message: `did not load it within ${String(this.#deployWaitMs)} ms` });
      }, this.#deployWaitMs);
      const settle = (r: Omit<DeployedNode, 'node'>): void => {
        clearTimeout(timer);
        if (this.#acks.get(key) === settle) this.#acks.delete(key);
        resolve(r);
      };
      this.#acks.get(key)?.({ ok: false, message: 'superseded' });
      this.#acks.set(key, settle);
    });
  }

  #pushModule(node: NodeState<Run>, nm: NodeModules, module: CurrentModule): void {
    nm.sent.add(module.label);
    this.#log.debug({ node: node.hello.name, module: module.label }, 'module handed to a tasknode');
    this.#toNode(
      node.identity,
      {
        t: 'DEPLOY',
        id: module.label,
        name: module.name,
        version: module.version,
        sha256: module.sha256,
        data: { kind: 'cbor', frames: 1 },
      },
      [encodeValue(module.source)],
    );
  }

  /**
   * Keep a node from getting stages of a module whose current version it does not run yet:
   * its table tasks leave the node's task set until the node announces that version. [P-8.4]
   */
  #holdBack(node: NodeState<Run>, has: ReadonlySet<string>): void {
    const held = new Set<string>();
    for (const m of this.#book.current()) {
      if (has.has(m.label)) continue;
      for (const t of m.tasks) if (t.kind === 'table') held.add(t.name);
      for (const label of has) {
        const at = label.lastIndexOf('@');
        if (label.slice(0, at) !== m.name) continue;
        for (const t of this.#book.version(m.name, Number(label.slice(at + 1)))?.tasks ?? [])
          if (t.kind === 'table') held.add(t.name);
      }
    }
    if (held.size > 0)
      this.#sched.setTasks(
        node.id,
        [...node.tasks].filter((t) => !held.has(t)),
      );
  }

  /** A HELLO's function tasks and modules: settle waiting deploys, hand over what it lacks. [P-8.4] */
  #helloModules(node: NodeState<Run>, msg: Extract<Message, { t: 'HELLO' }>): void {
    const failed = new Map<string, string>();
    for (const f of msg.failed ?? []) {
      const v = f as unknown as { module?: unknown; error?: { message?: unknown } };
      if (typeof v.module === 'string')
        failed.set(
          v.module,
          typeof v.error?.message === 'string' ? v.error.message : 'could not load it',
        );
    }
    const nm: NodeModules = {
      functions: msg.functions ?? [],
      has: msg.modules === undefined ? undefined : new Set(msg.modules),
      failed,
      sent: this.#nodeModules.get(node.id)?.sent ?? new Set(),
    };
    this.#nodeModules.set(node.id, nm);
    this.#functionCache.clear();
    if (nm.has === undefined) return;
    for (const label of nm.has) this.#acks.get(`${node.id} ${label}`)?.({ ok: true });
    for (const [label, message] of failed)
      this.#acks.get(`${node.id} ${label}`)?.({ ok: false, message });
    this.#holdBack(node, nm.has);
    for (const m of this.#book.current())
      if (!nm.has.has(m.label) && !failed.has(m.label) && !nm.sent.has(m.label))
        this.#pushModule(node, nm, m);
  }

  // ---- PUBLISH ----

  /**
   * Track the prefixes subscribers want, so that events nobody wants are not encoded. Past
   * MAX_TRACKED_TOPICS distinct prefixes the relay stops tracking and publishes every event
   * (the PUB socket still filters): subscribers cannot grow this set without bound.
   */
  #onSubscription(frames: Buffer[]): void {
    const f = frames[0];
    if (f === undefined || f.length === 0 || this.#publishAll) return;
    const topic = f.subarray(1).toString('utf8');
    if (f[0] === 1) {
      if (this.#subscriptions.size >= MAX_TRACKED_TOPICS && !this.#subscriptions.has(topic)) {
        this.#publishAll = true;
        this.#subscriptions.clear();
        this.#log.warn(
          { limit: MAX_TRACKED_TOPICS },
          'subscribers want more distinct topic prefixes than the relay tracks: every event is published from now on',
        );
        return;
      }
      this.#subscriptions.add(topic);
    } else if (f[0] === 0) this.#subscriptions.delete(topic);
  }

  #wants(topic: string): boolean {
    if (this.#publishAll) return true;
    for (const prefix of this.#subscriptions) if (topic.startsWith(prefix)) return true;
    return false;
  }

  #publish(topic: string, event: Record<string, unknown>): void {
    if (!this.#wants(topic)) return;
    this.#pubOut.push([topic, ...encodeMessage({ t: 'EVENT', topic, event })]);
  }

  // ---- plumbing ----

  #toClient(identity: Buffer, msg: Outgoing, payload: readonly Uint8Array[] = []): void {
    this.#recvOut.push([identity, ...encodeMessage(msg, payload)]);
  }

  #toNode(identity: Buffer, msg: Outgoing, payload: readonly Uint8Array[] = []): void {
    this.#sendOut.push([identity, ...encodeMessage(msg, payload)]);
  }

  // ---- CURVE ----

  /**
   * Handshakes that libzmq refuses before asking ZAP (a peer without CURVE, or one that uses
   * another relay key): logged once per socket and reason, counted as refused.
   */
  #watchHandshakes(sock: zmq.Router | zmq.XPublisher, domain: string): void {
    const peer = domain === 'RECV' ? 'client' : domain === 'SEND' ? 'tasknode' : 'subscriber';
    const curve = this.#curve;
    if (curve === undefined) return;
    void (async () => {
      try {
        for await (const ev of sock.events) {
          if (ev.type !== 'handshake:error:protocol' && ev.type !== 'handshake:error:other')
            continue;
          const code = ev.error.code;
          curve.zap.countRefusal();
          const once = `handshake ${domain} ${code}`;
          if (this.#warned.has(once)) continue;
          this.#warned.add(once);
          const why =
            code === 'ERR_ZMTP_MECHANISM_MISMATCH'
              ? `it has no CURVE keys (set CURVE_SERVER_PUBLIC=${curve.pair.publicKey} and CURVE_KEY_FILE on it)`
              : code === 'ERR_ZMTP_CRYPTOGRAPHIC'
                ? `its CURVE_SERVER_PUBLIC is not this relay's public key ${curve.pair.publicKey}`
                : `the handshake broke off (${code}); most likely the peer has no CURVE keys or another relay key`;
          this.#log.warn(
            { socket: domain, endpoint: ev.address, code },
            `refused a ${peer} on ${domain}: ${why}; further refusals for this reason are counted, not logged`,
          );
        }
      } catch (err) {
        this.#log.debug({ err, socket: domain }, 'handshake events ended');
      }
    })();
  }

  /**
   * With CURVE, a DEPLOY must come from a key marked `deployer` on the allow-list, shown by
   * its proof (HMAC with the X25519 secret of that key and the relay's). [P-8.6]
   */
  #authorizeDeploy(msg: Extract<Message, { t: 'DEPLOY' }>, sha256: string): void {
    const curve = this.#curve;
    if (curve === undefined) return;
    const { name, key, proof } = msg;
    const refuse = (why: string, extra: Record<string, unknown> = {}): RtlError =>
      new RtlError('RTL_ERR_FORBIDDEN', `[P-8.6] DEPLOY of module "${name}" refused: ${why}`, {
        module: name,
        rule: 'P-8.6',
        file: curve.allow.file,
        ...extra,
      });
    if (key === undefined || proof === undefined)
      throw refuse(
        "the relay uses CURVE, and a DEPLOY must carry the deployer's key and proof (rtl's client adds them when CURVE_KEY_FILE is set; docs/protocol.md P-8.6)",
      );
    const entry = curve.allow.current().get(key);
    if (entry === undefined)
      throw refuse(
        `key ${key} is not on the allow-list ${curve.allow.file}; add "${key} <name> deployer" to it`,
        { key },
      );
    if (!checkDeployProof(curve.pair.secretKey, key, { id: msg.id, name, sha256 }, proof))
      throw refuse(
        `its proof was not made with the secret key of ${entry.name} (key ${key}); deploy with that key's own CURVE_KEY_FILE`,
        { key },
      );
    if (!entry.deployer)
      throw refuse(
        `${entry.name} (key ${key}) is on the allow-list but not marked deployer; to let it deploy, change line ${String(entry.line)} of ${curve.allow.file} to "${key} ${entry.name} deployer" (the relay re-reads the file)`,
        { key, peer: entry.name },
      );
    this.#log.info({ module: name, peer: entry.name, key }, `deploy by ${entry.name}`);
  }

  /** Count a dropped message and log it once per peer and rule; true the first time. */
  #malformed(kind: string, identity: Buffer, error: RtlError): boolean {
    this.#counts.malformed++;
    const key = `${kind}:${identity.toString('hex')}:${String(error.detail.rule)}`;
    if (this.#warned.has(key)) return false;
    if (this.#warned.size > 10_000) this.#warned.clear();
    this.#warned.add(key);
    this.#log.warn(
      { peer: identity.toString('hex'), kind, code: error.code, rule: error.detail.rule },
      `dropped a bad message from a ${kind}: ${error.message}`,
    );
    return true;
  }
}

/** A catalog that can list its tasks (a TaskRegistry). */
interface Listable {
  list(): readonly {
    name: string;
    kind: TaskKind;
    summary: string;
    aliases: readonly string[];
    origin: string;
  }[];
  get(
    name: string,
    kind?: TaskKind,
  ): { kind: string; params?: { describe(): unknown } } | undefined;
}

function isListable(catalog: TaskCatalog | undefined): catalog is TaskCatalog & Listable {
  const c = catalog as Partial<Listable> | undefined;
  return typeof c?.list === 'function' && typeof c.get === 'function';
}
