/**
 * The relay: RECV (ROUTER, clients), SEND (ROUTER, tasknodes), PUBLISH (XPUB, events).
 * It validates documents before ACCEPTED, runs each job's stages on tasknodes with credit,
 * and sends the final RESULT to the submitting client over RECV.
 */
import { hostname } from 'node:os';
import * as zmq from 'zeromq';
import {
  NO_DATA,
  Outbox,
  RtlError,
  decodeMessage,
  encodeMessage,
  getTable,
  parseDocument,
  encodeTable,
  receiveLoop,
  silentLogger,
  tcpEndpoint,
  toWireError,
  unbatch,
  type DataRef,
  type ErrorCode,
  type JobSpec,
  type Logger,
  type Message,
  type Outgoing,
  type ProtocolLimits,
  type StageSpec,
  type StageTiming,
  type Store,
  type TaskCatalog,
  type CatalogTask,
  DEFAULT_LIMITS,
} from '@rtl/core';
import { toCamelCase } from '@rtl/tasks';
import { Scheduler, type NodeState, type Placement } from './scheduler.js';

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
}

export interface RelayOptions {
  readonly logger?: Logger;
  /** Validates documents; tasks announced by tasknodes are added to it. */
  readonly catalog?: TaskCatalog;
  /** The LMDB store for by-reference values (shared with same-host peers). */
  readonly store?: Store;
  /** Clock, for tests. */
  readonly now?: () => number;
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
  readonly credit: number;
  readonly running: number;
  readonly lastSeenMs: number;
  readonly alive: boolean;
}

export interface RelayStatus {
  readonly relay: { readonly pid: number; readonly host: string; readonly uptimeMs: number; readonly endpoints: RelayEndpoints; readonly store: string };
  readonly nodes: readonly NodeStatus[];
  readonly jobs: { readonly running: number; readonly waiting: number; readonly done: number; readonly failed: number; readonly cancelled: number };
  readonly dropped: { readonly malformed: number };
}

interface Run {
  readonly key: string;
  readonly placement: Placement;
  readonly job: Job;
  readonly stage: StageSpec;
  readonly attempt: number;
  readonly dispatched: number;
  node?: string;
  timer?: NodeJS.Timeout;
}

interface Job {
  readonly id: string;
  readonly client: Buffer;
  readonly spec: JobSpec;
  readonly events: boolean;
  readonly clientStore: string;
  readonly accepted: number;
  /** Index of the stage to run next / running now. */
  next: number;
  attempts: number;
  data: DataRef;
  payload: Buffer[];
  readonly timings: StageTiming[];
  /** Store keys this job owns (inputs and intermediates), deleted when it ends. */
  readonly refs: Set<string>;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  run?: Run;
}

type FinishedState = 'done' | 'failed' | 'cancelled';
const FINISHED_KEEP = 10_000;
const TOPIC_JOB = 'job.';
const TOPIC_NODE = 'node.';

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
  readonly #jobs = new Map<string, Job>();
  readonly #finished = new Map<string, FinishedState>();
  readonly #counts = { done: 0, failed: 0, cancelled: 0, malformed: 0 };
  readonly #warned = new Set<string>();
  readonly #subscriptions = new Set<string>();
  readonly #heartbeat: NodeJS.Timeout;
  #accepting = true;
  #closing: Promise<void> | undefined;
  #resolveClosed!: () => void;

  private constructor(
    settings: RelaySettings,
    opts: RelayOptions,
    sockets: { recv: zmq.Router; send: zmq.Router; pub: zmq.XPublisher },
    endpoints: RelayEndpoints,
  ) {
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
    const sendFail = (what: string) => (err: unknown) => this.#log.debug({ err }, `${what} send failed`);
    this.#recvOut = new Outbox(this.#recv, sendFail('client'), { batch: true, routed: true });
    this.#sendOut = new Outbox(this.#send, sendFail('tasknode'), { batch: true, routed: true });
    this.#pubOut = new Outbox(this.#pub, sendFail('publish'));
    this.#catalog = {
      resolve: (name) => this.#resolveTask(name),
      names: () => this.#taskNames(),
    };
    this.closed = new Promise((r) => (this.#resolveClosed = r));
    void receiveLoop(this.#recv, (f) => this.#onClient(f), (err) => this.#log.error({ err }, 'RECV receive failed'));
    void receiveLoop(this.#send, (f) => this.#onNode(f), (err) => this.#log.error({ err }, 'SEND receive failed'));
    void receiveLoop(this.#pub, (f) => this.#onSubscription(f), (err) => this.#log.error({ err }, 'PUBLISH receive failed'));
    this.#heartbeat = setInterval(() => this.#beat(), settings.HEARTBEAT_MS);
  }

  /** Bind the three ports and start serving. Port 0 binds an ephemeral port (see `endpoints`). */
  static async start(settings: RelaySettings, opts: RelayOptions = {}): Promise<Relay> {
    const maxMessageSize = settings.MAX_MESSAGE_BYTES;
    const recv = new zmq.Router({ mandatory: true, maxMessageSize, linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
    const send = new zmq.Router({ mandatory: true, maxMessageSize, linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
    const pub = new zmq.XPublisher({ maxMessageSize, linger: 0, noDrop: false });
    try {
      await recv.bind(tcpEndpoint(settings.RELAY_LISTEN, settings.RELAY_RECV));
      await send.bind(tcpEndpoint(settings.RELAY_LISTEN, settings.RELAY_SEND));
      await pub.bind(tcpEndpoint(settings.RELAY_LISTEN, settings.RELAY_PUBLISHER));
    } catch (err) {
      recv.close();
      send.close();
      pub.close();
      const e = err as { address?: string; message?: string };
      throw new RtlError('RTL_ERR_CONFIG', `relay cannot bind ${e.address ?? ''}: ${e.message ?? String(err)} (is another relay running? set RELAY_RECV / RELAY_SEND / RELAY_PUBLISHER)`, { source: 'bind' }, { cause: err });
    }
    const endpoints = { recv: recv.lastEndpoint ?? '', send: send.lastEndpoint ?? '', publish: pub.lastEndpoint ?? '' };
    const relay = new Relay(settings, opts, { recv, send, pub }, endpoints);
    relay.#log.info({ endpoints, store: opts.store?.id }, 'relay listening');
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
      credit: n.credit,
      running: n.inflight.size,
      lastSeenMs: now - n.lastSeen,
      alive: now - n.lastSeen <= silence,
    }));
  }

  status(): RelayStatus {
    let running = 0;
    for (const j of this.#jobs.values()) if (j.state === 'running') running++;
    return {
      relay: { pid: process.pid, host: hostname(), uptimeMs: this.#now() - this.#started, endpoints: this.endpoints, store: this.#store?.id ?? '' },
      nodes: this.nodes(),
      jobs: { running, waiting: this.#sched.waiting.length, done: this.#counts.done, failed: this.#counts.failed, cancelled: this.#counts.cancelled },
      dropped: { malformed: this.#counts.malformed },
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
    while (this.#now() < deadline && [...this.#jobs.values()].some((j) => j.state === 'running')) {
      await new Promise((r) => setTimeout(r, 20));
    }
    clearInterval(this.#heartbeat);
    for (const job of this.#jobs.values()) if (job.run?.timer) clearTimeout(job.run.timer);
    await Promise.race([Promise.all([this.#recvOut.flushed(), this.#sendOut.flushed()]), new Promise((r) => setTimeout(r, 200))]);
    this.#recv.close();
    this.#send.close();
    this.#pub.close();
    this.#log.info('relay closed');
    this.#resolveClosed();
  }

  // ---- catalog: bundled tasks plus whatever connected tasknodes announce ----

  #resolveTask(name: string): CatalogTask | undefined {
    const base = this.#baseCatalog?.resolve(name);
    if (base !== undefined) return base;
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
    for (const n of this.#sched.nodes.values()) for (const t of n.tasks) names.add(t);
    return [...names].sort();
  }

  // ---- RECV: clients ----

  #onClient(frames: Buffer[], inBatch = false): void {
    const identity = frames[0] as Buffer;
    const decoded = decodeMessage(frames.slice(1), this.#limits);
    if (!decoded.ok) {
      this.#malformed('client', identity, decoded.error);
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
        this.#cancel(identity, msg.id);
        return;
      case 'STATUS':
        this.#answerStatus(identity, msg.rid, msg.query);
        return;
      case 'HEARTBEAT':
        this.#toClient(identity, { t: 'HEARTBEAT' });
        return;
      default: {
        const error = new RtlError('RTL_ERR_PROTOCOL', `[P-5.1] ${msg.t} is not a message a client sends to RECV`, { rule: 'P-5.1' });
        this.#malformed('client', identity, error);
        this.#toClient(identity, { t: 'REJECTED', id: 'id' in msg && typeof msg.id === 'string' ? msg.id : '', error: error.toJSON() });
      }
    }
  }

  #submit(client: Buffer, msg: Extract<Message, { t: 'SUBMIT' }>, payload: Buffer[]): void {
    const id = msg.id;
    const existing = this.#jobs.get(id);
    if (existing !== undefined || this.#finished.has(id)) {
      // [P-6.3] a duplicate submit is answered, never run twice.
      this.#toClient(client, { t: 'ACCEPTED', id });
      const done = this.#finished.get(id);
      if (done !== undefined && done !== 'done')
        this.#toClient(client, { t: 'ERROR', id, error: { code: done === 'cancelled' ? 'RTL_ERR_CANCELLED' : 'RTL_ERR_STAGE_FAILED', message: `job ${id} already ended: ${done}` } });
      return;
    }
    if (!this.#accepting) {
      this.#reject(client, id, new RtlError('RTL_ERR_SHUTTING_DOWN', 'relay is shutting down and takes no new jobs', { job: id }));
      return;
    }
    if (this.#jobs.size >= this.#settings.MAX_WAITING_JOBS) {
      this.#reject(client, id, new RtlError('RTL_ERR_BUSY', `relay holds ${String(this.#jobs.size)} jobs, its limit MAX_WAITING_JOBS; try again shortly`, { job: id, limit: this.#settings.MAX_WAITING_JOBS }));
      return;
    }
    let spec: JobSpec;
    try {
      spec = parseDocument(msg.doc, this.#catalog);
    } catch (err) {
      this.#reject(client, id, err);
      return;
    }
    if (msg.data.kind === 'ref' && (this.#store === undefined || msg.data.store !== this.#store.id)) {
      this.#reject(client, id, new RtlError('RTL_ERR_BAD_DATA', `input is a store reference to ${msg.data.store}, which this relay cannot read (its store: ${this.#store?.id ?? 'none'})`, { job: id }));
      return;
    }
    if (msg.data.kind === 'cbor') {
      this.#reject(client, id, new RtlError('RTL_ERR_BAD_DATA', 'a transform takes a table as input (Arrow frames), not a CBOR value', { job: id }));
      return;
    }
    const job: Job = {
      id,
      client,
      spec,
      events: msg.events,
      clientStore: msg.store,
      accepted: this.#now(),
      next: 0,
      attempts: 0,
      data: msg.data,
      payload,
      timings: [],
      refs: new Set(msg.data.kind === 'ref' ? [msg.data.key] : []),
      state: 'running',
    };
    this.#jobs.set(id, job);
    this.#toClient(client, { t: 'ACCEPTED', id });
    this.#event(job, () => ({ type: 'job.accepted', stages: spec.stages.map((s) => s.key) }));
    this.#log.debug({ job: id, stages: spec.stages.length }, 'job accepted');
    this.#startStage(job);
    this.#dispatch();
  }

  #reject(client: Buffer, id: string, err: unknown): void {
    const error = toWireError(err);
    this.#log.debug({ job: id, code: error.code }, 'job rejected');
    this.#toClient(client, { t: 'REJECTED', id, error });
  }

  #cancel(client: Buffer, id: string): void {
    const job = this.#jobs.get(id);
    if (job === undefined || job.state !== 'running') return;
    if (!job.client.equals(client)) return;
    this.#finish(job, 'cancelled', new RtlError('RTL_ERR_CANCELLED', `job ${id} was cancelled`, { job: id }));
  }

  #answerStatus(client: Buffer, rid: string, query: { what: string; id?: string } | undefined): void {
    let status: Record<string, unknown>;
    if (query?.what === 'job') {
      const jid = query.id ?? '';
      const job = this.#jobs.get(jid);
      if (job !== undefined) {
        const stage = job.spec.stages[job.next];
        const node = job.run?.node === undefined ? undefined : this.#sched.node(job.run.node);
        status = {
          job: jid,
          state: job.state === 'running' ? 'PENDING' : job.state.toUpperCase(),
          stage: stage?.key ?? null,
          tasks: stage?.tasks.map((t) => t.as) ?? [],
          route: stage?.route ?? null,
          node: node?.hello.name ?? null,
          waitingForNode: job.run !== undefined && job.run.node === undefined,
          nodesThatCanRun: stage === undefined ? 0 : [...this.#sched.nodes.values()].filter((n) => this.#sched.canRun(n, placementOf(stage))).length,
        };
      } else {
        const f = this.#finished.get(jid);
        status = { job: jid, state: f === undefined ? 'UNKNOWN' : f.toUpperCase() };
      }
    } else if (query?.what === 'store') {
      status = { store: this.#store?.id ?? '' };
    } else {
      status = this.status() as unknown as Record<string, unknown>;
    }
    this.#toClient(client, { t: 'STATUS', rid, status });
  }

  // ---- stages ----

  #startStage(job: Job): void {
    const stage = job.spec.stages[job.next] as StageSpec;
    job.attempts = 0;
    this.#enqueue(job, stage, false);
  }

  #enqueue(job: Job, stage: StageSpec, front: boolean): void {
    job.attempts++;
    const run: Run = { key: `${job.id}/${stage.key}/${job.attempts}`, placement: placementOf(stage), job, stage, attempt: job.attempts, dispatched: 0 };
    job.run = run;
    if (front) this.#sched.enqueueFront(run);
    else this.#sched.enqueue(run);
  }

  #dispatch(): void {
    const now = this.#now();
    for (const { run, node } of this.#sched.dispatch(now)) {
      const job = run.job;
      run.node = node.id;
      (run as { dispatched: number }).dispatched = now;
      const { data, payload } = this.#dataFor(job, node);
      const resultStore = this.#store !== undefined && node.hello.store === this.#store.id ? this.#store.id : '';
      this.#toNode(node.identity, {
        t: 'STAGE',
        id: job.id,
        stage: run.stage.key,
        attempt: run.attempt,
        tasks: run.stage.tasks.map((c) => ({ task: c.task, as: c.as, params: c.params })),
        data,
        store: resultStore,
      }, payload);
      if (run.stage.timeoutMs !== undefined) {
        const ms = run.stage.timeoutMs;
        run.timer = setTimeout(() => this.#stageTimedOut(run, ms), ms);
      }
      this.#event(job, () => ({ type: 'stage.started', stage: run.stage.key, node: node.hello.name, attempt: run.attempt, tasks: run.stage.tasks.map((t) => t.task) }));
    }
  }

  /** The job's current input as this node can read it: by reference on a shared store, else inline. */
  #dataFor(job: Job, node: NodeState<Run>): { data: DataRef; payload: Buffer[] } {
    if (job.data.kind !== 'ref' || node.hello.store === job.data.store) return { data: job.data, payload: job.payload };
    if (this.#store === undefined || this.#store.id !== job.data.store) return { data: NO_DATA, payload: [] };
    const frames = encodeTable(getTable(this.#store, job.data)) as Buffer[];
    return { data: { kind: 'arrow', frames: frames.length }, payload: frames };
  }

  #stageTimedOut(run: Run, ms: number): void {
    const job = run.job;
    if (job.run !== run || job.state !== 'running') return;
    this.#finish(job, 'failed', new RtlError('RTL_ERR_TIMEOUT', `job ${job.id}: stage "${run.stage.key}" ran longer than its timeout_ms ${ms}`, { job: job.id, stage: run.stage.key, limit: ms }));
  }

  #stageDone(node: NodeState<Run>, msg: Extract<Message, { t: 'STAGE_DONE' }>, payload: Buffer[]): void {
    const run = this.#sched.complete(node.id, `${msg.id}/${msg.stage}/${msg.attempt}`);
    const job = this.#jobs.get(msg.id);
    if (run === undefined || job === undefined || job.run !== run || job.state !== 'running') {
      // [P-6.2] a late or unknown result (stage reassigned, job cancelled): dropped.
      if (msg.data.kind === 'ref' && job === undefined) void this.#deleteRef(msg.data.key);
      this.#dispatch();
      return;
    }
    if (run.timer) clearTimeout(run.timer);
    const timing: StageTiming = { stage: msg.stage, node: node.hello.name, ms: msg.ms, tasks: msg.tasks };
    job.timings.push(timing);
    this.#event(job, () => ({ type: 'stage.completed', stage: msg.stage, node: node.hello.name, ms: msg.ms, tasks: msg.tasks }));
    // The previous input is no longer needed once its consumer finished.
    if (job.data.kind === 'ref' && (msg.data.kind !== 'ref' || msg.data.key !== job.data.key)) {
      job.refs.delete(job.data.key);
      void this.#deleteRef(job.data.key);
    }
    job.data = msg.data;
    job.payload = payload;
    if (msg.data.kind === 'ref') job.refs.add(msg.data.key);
    job.run = undefined;
    job.next++;
    if (job.next < job.spec.stages.length) this.#startStage(job);
    else this.#finish(job, 'done');
    this.#dispatch();
  }

  #stageFailed(node: NodeState<Run>, msg: Extract<Message, { t: 'STAGE_FAILED' }>): void {
    const run = this.#sched.complete(node.id, `${msg.id}/${msg.stage}/${msg.attempt}`);
    const job = this.#jobs.get(msg.id);
    if (run === undefined || job === undefined || job.run !== run || job.state !== 'running') {
      this.#dispatch();
      return;
    }
    if (run.timer) clearTimeout(run.timer);
    const remote = RtlError.fromWire(msg.error);
    const code: ErrorCode = remote.code === 'RTL_ERR_INTERNAL' ? 'RTL_ERR_STAGE_FAILED' : remote.code;
    this.#event(job, () => ({ type: 'stage.failed', stage: msg.stage, node: node.hello.name, code, message: remote.message }));
    const err = new RtlError(code, `stage "${msg.stage}"${remote.detail.task ? `, task "${remote.detail.task}"` : ''} failed on ${node.hello.name}: ${remote.message}`, {
      ...remote.detail,
      job: job.id,
      stage: msg.stage,
      node: node.hello.name,
    });
    this.#finish(job, 'failed', err);
    this.#dispatch();
  }

  #finish(job: Job, state: FinishedState, err?: RtlError): void {
    job.state = state;
    if (job.run?.timer) clearTimeout(job.run.timer);
    if (job.run !== undefined && job.run.node === undefined) this.#sched.dropWaiting((r) => r === job.run);
    this.#jobs.delete(job.id);
    this.#finished.set(job.id, state);
    if (this.#finished.size > FINISHED_KEEP) {
      const oldest = this.#finished.keys().next().value;
      if (oldest !== undefined) this.#finished.delete(oldest);
    }
    this.#counts[state]++;
    if (state === 'done') {
      let data = job.data;
      let payload = job.payload;
      if (data.kind === 'ref') {
        if (job.clientStore === data.store) {
          job.refs.delete(data.key); // the client owns the result key now
        } else if (this.#store !== undefined && this.#store.id === data.store) {
          payload = encodeTable(getTable(this.#store, data)) as Buffer[];
          data = { kind: 'arrow', frames: payload.length };
        }
      }
      // The event first: a client's event stream ends when the RESULT arrives.
      this.#event(job, () => ({ type: 'job.completed', ms: this.#now() - job.accepted, stages: job.timings }));
      this.#toClient(job.client, { t: 'RESULT', id: job.id, data, stages: job.timings }, payload);
      this.#log.debug({ job: job.id, ms: this.#now() - job.accepted }, 'job completed');
    } else {
      const error = (err ?? new RtlError('RTL_ERR_INTERNAL', `job ${job.id} ended: ${state}`)).toJSON();
      this.#event(job, () => ({ type: state === 'cancelled' ? 'job.cancelled' : 'job.failed', code: error.code, message: error.message, stage: error.detail.stage ?? null }));
      this.#toClient(job.client, { t: 'ERROR', id: job.id, error });
      this.#log.info({ job: job.id, code: error.code, stage: error.detail.stage }, `job ${state}`);
    }
    for (const key of job.refs) void this.#deleteRef(key);
    job.refs.clear();
    job.payload = [];
  }

  async #deleteRef(key: string): Promise<void> {
    try {
      await this.#store?.delete(key);
    } catch (err) {
      this.#log.warn({ err, key }, 'could not delete a stored value');
    }
  }

  // ---- SEND: tasknodes ----

  #onNode(frames: Buffer[], inBatch = false): void {
    const identity = frames[0] as Buffer;
    const id = identity.toString('hex');
    const decoded = decodeMessage(frames.slice(1), this.#limits);
    if (!decoded.ok) {
      this.#malformed('tasknode', identity, decoded.error);
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
      const node = this.#sched.addNode(identity, { name: msg.node, queues: msg.queues, tasks: msg.tasks, credit: msg.credit, host: msg.host, store: msg.store, pid: msg.pid }, now);
      if (!known) {
        this.#log.info({ node: msg.node, host: msg.host, credit: msg.credit, tasks: msg.tasks.length, queues: msg.queues }, 'tasknode joined');
        this.#publish(`${TOPIC_NODE}up`, { type: 'node.up', node: node.hello.name, host: node.hello.host, queues: node.hello.queues });
      }
      this.#toNode(identity, { t: 'HEARTBEAT' });
      this.#dispatch();
      return;
    }
    const node = this.#sched.node(id);
    if (node === undefined) {
      // [P-5.2] a tasknode the relay does not know (it restarted, or declared it dead) must HELLO again.
      const error = new RtlError('RTL_ERR_PROTOCOL', '[P-5.2] unknown tasknode: send HELLO first', { rule: 'P-5.2' });
      this.#toNode(identity, { t: 'REJECTED', id: '', error: error.toJSON() });
      return;
    }
    node.lastSeen = now;
    switch (msg.t) {
      case 'HEARTBEAT':
        return;
      case 'READY':
        this.#sched.addCredit(id, msg.credit);
        this.#dispatch();
        return;
      case 'STAGE_DONE':
        this.#stageDone(node, msg, payload);
        return;
      case 'STAGE_FAILED':
        this.#stageFailed(node, msg);
        return;
      default: {
        const error = new RtlError('RTL_ERR_PROTOCOL', `[P-5.1] ${msg.t} is not a message a tasknode sends to SEND`, { rule: 'P-5.1' });
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
    const runs = this.#sched.removeNode(node.id);
    this.#log.warn({ node: node.hello.name, host: node.hello.host, silentMs: now - node.lastSeen, stages: runs.length }, 'tasknode silent past liveness: dropped');
    this.#publish(`${TOPIC_NODE}down`, { type: 'node.down', node: node.hello.name, host: node.hello.host, reason: 'silent' });
    for (const run of runs) {
      const job = run.job;
      if (run.timer) clearTimeout(run.timer);
      if (job.state !== 'running' || job.run !== run) continue;
      if (run.attempt > run.stage.retries) {
        this.#finish(job, 'failed', new RtlError('RTL_ERR_NODE_LOST', `job ${job.id}: stage "${run.stage.key}" lost its tasknode ${node.hello.name} on each of ${run.attempt} attempts (retries: ${run.stage.retries})`, { job: job.id, stage: run.stage.key, node: node.hello.name }));
      } else {
        this.#event(job, () => ({ type: 'stage.retry', stage: run.stage.key, node: node.hello.name, attempt: run.attempt }));
        this.#enqueue(job, run.stage, true);
      }
    }
    this.#dispatch();
  }

  // ---- PUBLISH ----

  #onSubscription(frames: Buffer[]): void {
    const f = frames[0];
    if (f === undefined || f.length === 0) return;
    const topic = f.subarray(1).toString('utf8');
    if (f[0] === 1) this.#subscriptions.add(topic);
    else if (f[0] === 0) this.#subscriptions.delete(topic);
  }

  #wants(topic: string): boolean {
    for (const prefix of this.#subscriptions) if (topic.startsWith(prefix)) return true;
    return false;
  }

  #publish(topic: string, event: Record<string, unknown>): void {
    if (!this.#wants(topic)) return;
    this.#pubOut.push([topic, ...encodeMessage({ t: 'EVENT', topic, event })]);
  }

  /** A job's progress event, built only when the submitter asked for events or someone subscribed. */
  #event(job: Job, make: () => Record<string, unknown>): void {
    const topic = `${TOPIC_JOB}${job.id}`;
    const published = this.#subscriptions.size > 0 && this.#wants(topic);
    if (!job.events && !published) return;
    const full = { ...make(), job: job.id, at: this.#now() };
    if (job.events) this.#toClient(job.client, { t: 'EVENT', topic, event: full });
    if (published) this.#pubOut.push([topic, ...encodeMessage({ t: 'EVENT', topic, event: full })]);
  }

  // ---- plumbing ----

  #toClient(identity: Buffer, msg: Outgoing, payload: readonly Uint8Array[] = []): void {
    this.#recvOut.push([identity, ...encodeMessage(msg, payload)]);
  }

  #toNode(identity: Buffer, msg: Outgoing, payload: readonly Uint8Array[] = []): void {
    this.#sendOut.push([identity, ...encodeMessage(msg, payload)]);
  }

  #malformed(kind: string, identity: Buffer, error: RtlError): void {
    this.#counts.malformed++;
    const key = `${kind}:${identity.toString('hex')}:${String(error.detail.rule)}`;
    if (this.#warned.has(key)) return;
    if (this.#warned.size > 10_000) this.#warned.clear();
    this.#warned.add(key);
    this.#log.warn({ peer: identity.toString('hex'), kind, code: error.code, rule: error.detail.rule }, `dropped a bad message from a ${kind}: ${error.message}`);
  }
}

function placementOf(stage: StageSpec): Placement {
  return { tasks: stage.tasks.map((t) => t.task), route: stage.route };
}

