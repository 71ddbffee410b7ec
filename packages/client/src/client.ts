/**
 * The client connection: one DEALER to the relay's RECV port, shared by every job and
 * request of this client. Jobs are matched to replies by id.
 */
import { hostname } from 'node:os';
import { createHash, randomUUID } from 'node:crypto';
import * as zmq from 'zeromq';
import {
  DEFAULT_LIMITS,
  HandshakeWatch,
  Outbox,
  RtlError,
  SETTINGS,
  coerceSetting,
  curveSocketOptions,
  deployProof,
  expandHome,
  peerCurve,
  Store,
  decodeMessage,
  decodeTable,
  decodeValue,
  emptyTable,
  encodeMessage,
  encodeTable,
  encodeValue,
  getTable,
  putTable,
  receiveLoop,
  unbatch,
  tableByteLength,
  toTable,
  type CurveClientKeys,
  type DataRef,
  type DeployedNode,
  type DeployedTask,
  type Message,
  type Outgoing,
  type ProtocolLimits,
  type StatusQuery,
} from '@rtl/core';
import type { Table } from 'apache-arrow';
import { Job, type JobEvent } from './job.js';

export interface ClientOptions {
  /** Relay RECV endpoint, e.g. tcp://10.0.0.5:19000 (default tcp://127.0.0.1:19000 or from RTL_RELAY_ADDR / RTL_RELAY_RECV). */
  readonly relay?: string;
  /** Default time `result()` waits, in ms (default 60000). */
  readonly timeoutMs?: number;
  /** Tables at or above this many bytes go by reference through the store when the relay shares this host (default 1 MiB). */
  readonly refBytes?: number;
  /** The LMDB store directory shared with the relay (default ~/.rtl/cache or RTL_CACHE_PATH); false = never by reference. */
  readonly store?: string | false;
  readonly storeMapSize?: number;
  /** Send tables as several frames (default true). */
  readonly chunked?: boolean;
  readonly maxMessageBytes?: number;
  /**
   * This client's routing identity at the relay (default: `c.` and a random UUID). Results go
   * to it, so a client that reconnects (the relay restarted, the network dropped) under the
   * same identity still receives them.
   */
  readonly identity?: string;
  /**
   * CURVE keys: the relay's public key and this client's pair (`peerCurve(config)` reads them
   * from CURVE_SERVER_PUBLIC and CURVE_KEY_FILE). Default: from env RTL_CURVE_SERVER_PUBLIC and
   * RTL_CURVE_KEY_FILE when set; `false` = plain TCP. A relay that refuses the key fails every
   * pending job and request with RTL_ERR_AUTH.
   */
  readonly curve?: CurveClientKeys | false;
}

export interface ExecuteOptions {
  /** Input table: an Arrow Table or an object of equal-length columns (typed arrays or number arrays). */
  readonly data?: unknown;
  /** Default for `result()` of this job. */
  readonly timeoutMs?: number;
  /** Ask the relay for live progress events (default: on when `events()` is called before the submit leaves). */
  readonly events?: boolean;
  /** Job id (default: a random UUID). Submitting the same id twice runs the job once. */
  readonly id?: string;
  /**
   * Have the relay publish the result on PUBLISH under this topic when the job is done
   * (EVENT `job.result`, the result's Arrow frames after the header; docs/protocol.md P-7.1).
   */
  readonly publish?: string;
}

export interface SubmitCanvasOptions {
  /** Job id (default: a random UUID). Submitting the same id twice runs the job once. */
  readonly id?: string;
  /** How long `get()` waits by default (client side). */
  readonly timeoutMs?: number;
  /** The relay fails the job with RTL_ERR_TIMEOUT when it has not ended this long after ACCEPTED. */
  readonly jobTimeoutMs?: number;
  /** Ask for live progress events (default: on when `events()` is called before the submit leaves). */
  readonly events?: boolean;
}

/** A SUBMIT the relay has not ACCEPTED yet: resent on reconnect and after BUSY, until its deadline. */
interface Unaccepted {
  readonly job: Job;
  readonly frames: Uint8Array[];
  readonly deadline: number;
  readonly timeoutMs: number;
  /** The connection (count of disconnects) it was last sent on. */
  epoch: number;
  /** When to send it again after a BUSY answer (0: not waiting). */
  retryAt: number;
  busyDelay: number;
  busy: RtlError | undefined;
  tries: number;
}

/** After BUSY, a submit waits 50 ms, then 100, 200, ... up to 2 s (with jitter). */
const BUSY_FIRST_MS = 50;
const BUSY_MAX_MS = 2000;
const SWEEP_MS = 50;

interface PendingRequest {
  resolve: (status: Record<string, unknown>) => void;
  reject: (err: RtlError) => void;
}

export interface DeployOptions {
  /** Module name: a letter, then letters, digits, `_` or `-` (at most 64). Deploying the same name again makes a new version. */
  readonly name: string;
  /** The module's ES source. It imports `defineTableTask` / `defineFunctionTask` / `p` from '@rtl/tasks'. */
  readonly source: string;
  /** How long to wait for the relay's answer (default: the client's timeoutMs). */
  readonly timeoutMs?: number;
}

/** What a deploy did (the relay's DEPLOYED answer). */
export interface DeployResult {
  readonly name: string;
  /** 1 for the first deploy of a name, then 2, 3, ... */
  readonly version: number;
  /** sha256 of the source's UTF-8 bytes, hex. */
  readonly sha256: string;
  /** The same source was the current version already: nothing changed. */
  readonly unchanged: boolean;
  readonly tasks: readonly DeployedTask[];
  /** Tasks of the previous version this one no longer has. */
  readonly removed: readonly string[];
  /** Every tasknode that takes deploys: whether it loaded this version. */
  readonly nodes: readonly DeployedNode[];
}

/** One task in `client.tasks()`. */
export interface TaskEntry {
  readonly name: string;
  readonly kind: 'table' | 'function';
  readonly summary: string;
  readonly aliases: readonly string[];
  /** `bundled`, `name@version` (a deployed module), or `tasknode <names>`. */
  readonly origin: string;
  /** A table task's parameter description, when the relay knows it. */
  readonly params?: unknown;
}

interface PendingDeploy {
  resolve: (r: DeployResult) => void;
  reject: (err: RtlError) => void;
}

const DEFAULT_RELAY = 'tcp://127.0.0.1:19000';

/** RTL_RESPONSE_TIME as the config reads it (`60000`, `30s`, `2m`); a bad value is named. */
function responseTime(raw: string | undefined): number {
  if (raw === undefined) return SETTINGS.RESPONSE_TIME.default;
  const c = coerceSetting(SETTINGS.RESPONSE_TIME, raw);
  if (!c.ok)
    throw new RtlError(
      'RTL_ERR_CONFIG',
      `RESPONSE_TIME=${raw} (from env RTL_RESPONSE_TIME): ${c.expected}`,
      { key: 'RESPONSE_TIME', source: 'env' },
    );
  return c.value as number;
}

/** CURVE keys from env RTL_CURVE_SERVER_PUBLIC / RTL_CURVE_KEY_FILE, as the config reads them. */
function envCurve(env: Record<string, string | undefined>): CurveClientKeys | undefined {
  const file = env.RTL_CURVE_KEY_FILE;
  return peerCurve(
    {
      CURVE_SERVER_PUBLIC: env.RTL_CURVE_SERVER_PUBLIC?.trim() ?? '',
      CURVE_KEY_FILE: file === undefined || file === '' ? '' : expandHome(file),
    },
    'this client',
  );
}

export function defaultRelayEndpoint(
  env: Record<string, string | undefined> = process.env,
): string {
  const addr = env.RTL_RELAY_ADDR ?? '127.0.0.1';
  const port = env.RTL_RELAY_RECV ?? '19000';
  return env.RTL_RELAY_ADDR === undefined && env.RTL_RELAY_RECV === undefined
    ? DEFAULT_RELAY
    : `tcp://${addr}:${port}`;
}

export class Client implements AsyncDisposable {
  readonly relay: string;
  readonly timeoutMs: number;
  readonly #refBytes: number;
  readonly #storePath: string | false;
  readonly #storeMapSize: number;
  readonly #chunked: boolean;
  readonly #limits: ProtocolLimits;
  readonly #jobs = new Map<string, Job>();
  readonly #requests = new Map<string, PendingRequest>();
  readonly #deploys = new Map<string, PendingDeploy>();
  readonly #unaccepted = new Map<string, Unaccepted>();
  readonly #identity: string;
  /** Disconnects seen so far: a SUBMIT sent before the last one may be lost. */
  #epoch = 0;
  #sweeper: NodeJS.Timeout | undefined;
  readonly #curve: CurveClientKeys | undefined;
  #sock: zmq.Dealer | undefined;
  #out: Outbox | undefined;
  #store: Store | undefined;
  #storeReady: Promise<Store | undefined> | undefined;
  #closed = false;

  constructor(opts: ClientOptions = {}) {
    this.relay = opts.relay ?? defaultRelayEndpoint();
    this.timeoutMs = opts.timeoutMs ?? responseTime(process.env.RTL_RESPONSE_TIME);
    this.#refBytes = opts.refBytes ?? 2 ** 20;
    this.#storePath =
      opts.store ?? process.env.RTL_CACHE_PATH ?? `${process.env.HOME ?? '.'}/.rtl/cache`;
    this.#storeMapSize = opts.storeMapSize ?? 512 * 2 ** 20;
    this.#chunked = opts.chunked ?? true;
    this.#identity = opts.identity ?? `c.${randomUUID()}`;
    this.#limits = {
      ...DEFAULT_LIMITS,
      maxMessageBytes: opts.maxMessageBytes ?? DEFAULT_LIMITS.maxMessageBytes,
    };
    this.#curve = opts.curve === false ? undefined : (opts.curve ?? envCurve(process.env));
  }

  /** This client's CURVE public key (Z85), or undefined in plain text. */
  get curveKey(): string | undefined {
    return this.#curve?.publicKey;
  }

  /** Submit a transform document; returns its job handle at once. */
  execute(doc: unknown, opts: ExecuteOptions = {}): Job {
    return this.#newJob(opts, (job) => this.#submit(job, doc, opts.data, opts.publish));
  }

  /**
   * Submit a canvas expression on the wire form (docs/canvas.md); the canvas API
   * (`task`, `chain`, `group`, `chord`) calls this. Returns the job handle at once.
   */
  submitCanvas(canvas: Record<string, unknown>, opts: SubmitCanvasOptions = {}): Job {
    return this.#newJob(opts, (job) => {
      this.#sendSubmit(job, {
        t: 'SUBMIT',
        id: job.id,
        canvas,
        data: { kind: 'none' },
        events: job._wantsEvents,
        store: '',
        ...(opts.jobTimeoutMs === undefined ? {} : { timeoutMs: opts.jobTimeoutMs }),
      });
      return Promise.resolve();
    });
  }

  /**
   * A handle for a job submitted earlier, perhaps by another client: the relay sends its
   * result here (now, if it has ended and is still held). A job the relay does not know fails
   * with RTL_ERR_UNKNOWN_JOB.
   */
  collect(id: string, opts: { timeoutMs?: number } = {}): Job {
    this.#assertOpen();
    const known = this.#jobs.get(id);
    if (known !== undefined) return known;
    const job = new Job(this, id, opts.timeoutMs ?? this.timeoutMs, false);
    this.#jobs.set(id, job);
    this.#send({ t: 'COLLECT', id });
    return job;
  }

  /** A job's state at the relay: PENDING (known, running), DONE, FAILED, CANCELLED, or UNKNOWN (no such job). */
  async jobState(id: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    const s = await this.request({ what: 'job', id }, opts.timeoutMs ?? 2000);
    return typeof s.state === 'string' ? s.state : 'UNKNOWN';
  }

  /**
   * A job handle for `opts.id` (or a new id) whose SUBMIT `send` writes on the next microtask,
   * so `events()` called right after still asks for live events. The same id again while it
   * runs gives the same handle (the relay would run it once anyway).
   */
  #newJob(
    opts: { readonly id?: string; readonly timeoutMs?: number; readonly events?: boolean },
    send: (job: Job) => Promise<void>,
  ): Job {
    this.#assertOpen();
    const id = opts.id ?? randomUUID();
    const known = this.#jobs.get(id);
    if (known !== undefined) return known;
    const job = new Job(this, id, opts.timeoutMs ?? this.timeoutMs, opts.events === true);
    this.#jobs.set(id, job);
    queueMicrotask(() => {
      send(job).catch((err: unknown) => job._fail(err));
    });
    return job;
  }

  /** Ask the relay for its status (nodes, jobs, uptime). Rejects with RTL_ERR_RELAY_UNREACHABLE when no relay answers. */
  async status(opts: { timeoutMs?: number } = {}): Promise<Record<string, unknown>> {
    return this.request({ what: 'cluster' }, opts.timeoutMs ?? 2000);
  }

  /**
   * Deploy a task module to the cluster: the relay checks that it loads and exports tasks,
   * stores it (version 1, 2, ... per name), and every tasknode loads it, now and when it
   * joins later. Resolves once every connected tasknode loaded it (see `nodes`).
   *
   * ```ts
   * const r = await client.deploy({ name: 'scale', source: readFileSync('scale.mjs', 'utf8') });
   * r.version; // 1, then 2 for the next changed source
   * ```
   * Rejects with RtlError: RTL_ERR_BAD_DATA when the module does not load (the message names
   * the module, the error and the line), exports no task, or a task name is taken; then
   * nothing changed. DEPLOY is for trusted clients: the module runs on every tasknode.
   */
  deploy(opts: DeployOptions): Promise<DeployResult> {
    this.#assertOpen();
    const id = randomUUID();
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    return new Promise<DeployResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#deploys.delete(id);
        reject(
          new RtlError(
            'RTL_ERR_TIMEOUT',
            `deploy of module "${opts.name}": no answer from the relay at ${this.relay} within ${String(timeoutMs)} ms (is it running? \`rtl status\`)`,
            { module: opts.name, limit: timeoutMs },
          ),
        );
      }, timeoutMs);
      this.#deploys.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      const keys = this.#curve;
      const proof =
        keys === undefined
          ? {}
          : {
              key: keys.publicKey,
              proof: deployProof(keys, {
                id,
                name: opts.name,
                sha256: createHash('sha256').update(opts.source, 'utf8').digest('hex'),
              }),
            };
      this.#send(
        { t: 'DEPLOY', id, name: opts.name, data: { kind: 'cbor', frames: 1 }, ...proof },
        [encodeValue(opts.source)],
      );
    });
  }

  /** Every task the cluster knows, bundled and deployed, with kind and origin. Rejects with RTL_ERR_RELAY_UNREACHABLE when no relay answers. */
  async tasks(opts: { timeoutMs?: number } = {}): Promise<TaskEntry[]> {
    const answer = await this.request({ what: 'tasks' }, opts.timeoutMs ?? 2000);
    return Array.isArray(answer.tasks) ? (answer.tasks as TaskEntry[]) : [];
  }

  /** @internal A STATUS request; resolves with the relay's answer. */
  request(query: StatusQuery, timeoutMs: number): Promise<Record<string, unknown>> {
    this.#assertOpen();
    const rid = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#requests.delete(rid);
        reject(
          new RtlError(
            'RTL_ERR_RELAY_UNREACHABLE',
            `no answer from a relay at ${this.relay} within ${String(timeoutMs)} ms (is it running? try \`rtl status\` or \`rtl start\`)`,
            { source: this.relay },
          ),
        );
      }, timeoutMs);
      this.#requests.set(rid, {
        resolve: (s) => {
          clearTimeout(timer);
          resolve(s);
        },
        reject: (err) => {
          clearTimeout(timer);
          this.#requests.delete(rid);
          reject(err);
        },
      });
      // After the submits of this turn (they leave on a microtask): a job's state is asked after it.
      queueMicrotask(() => {
        this.#send({ t: 'STATUS', rid, query });
      });
    });
  }

  /** Close the socket; pending jobs fail with RTL_ERR_CANCELLED. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#unaccepted.clear();
    for (const job of this.#jobs.values())
      job._fail(
        new RtlError('RTL_ERR_CANCELLED', `client closed while job ${job.id} was pending`, {
          job: job.id,
        }),
      );
    this.#jobs.clear();
    for (const d of this.#deploys.values())
      d.reject(new RtlError('RTL_ERR_CANCELLED', 'client closed while a deploy was pending'));
    this.#deploys.clear();
    if (this.#out)
      await Promise.race([this.#out.flushed(), new Promise((r) => setTimeout(r, 100))]);
    this.#sock?.close();
    this.#sock = undefined;
    if (this.#store) await this.#store.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal */
  _cancel(job: Job): void {
    if (!this.#closed) this.#send({ t: 'CANCEL', id: job.id });
  }

  /** @internal */
  _forget(job: Job): void {
    this.#jobs.delete(job.id);
  }

  /** @internal where a job waits, for timeout messages. */
  async _whereIs(jobId: string): Promise<Record<string, unknown> | undefined> {
    try {
      return await this.request({ what: 'job', id: jobId }, 500);
    } catch {
      return undefined;
    }
  }

  async #submit(job: Job, doc: unknown, data: unknown, publish?: string): Promise<void> {
    let ref: DataRef = { kind: 'none' };
    let payload: Uint8Array[] = [];
    if (data !== undefined && data !== null) {
      const table = toTable(data);
      const store =
        tableByteLength(table) >= this.#refBytes ? await this.#sharedStore() : undefined;
      if (store !== undefined) {
        ref = await putTable(store, table);
      } else {
        payload = encodeTable(table, { chunked: this.#chunked });
        ref = { kind: 'arrow', frames: payload.length };
      }
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
      throw new RtlError(
        'RTL_ERR_BAD_DOCUMENT',
        `document is ${Array.isArray(doc) ? 'an array' : typeof doc}, expected an object of stages like { "0": { "tasks": { ... } } }`,
        { job: job.id },
      );
    const storeId = this.#store ? this.#store.id : '';
    this.#sendSubmit(
      job,
      {
        t: 'SUBMIT',
        id: job.id,
        doc: doc as Record<string, unknown>,
        data: ref,
        events: job._wantsEvents,
        store: storeId,
        ...(publish === undefined ? {} : { publish }),
      },
      payload,
    );
  }

  /** The store shared with the relay, if it is on this host; asked once. */
  #sharedStore(): Promise<Store | undefined> {
    if (this.#storePath === false) return Promise.resolve(undefined);
    const path = this.#storePath;
    this.#storeReady ??= this.request({ what: 'store' }, 2000).then(
      async (s) => {
        const relayStore = typeof s.store === 'string' ? s.store : '';
        if (relayStore === '') return undefined;
        const mine = Store.open({ path, mapSize: this.#storeMapSize });
        if (relayStore === mine.id) {
          this.#store = mine;
          return mine;
        }
        await mine.close();
        return undefined;
      },
      () => undefined,
    );
    return this.#storeReady;
  }

  #socket(): { sock: zmq.Dealer; out: Outbox } {
    if (this.#sock === undefined || this.#out === undefined) {
      const sock = new zmq.Dealer({
        routingId: this.#identity,
        ...(this.#curve === undefined ? {} : curveSocketOptions(this.#curve)),
        linger: 0,
        maxMessageSize: this.#limits.maxMessageBytes,
        sendHighWaterMark: 0,
        receiveHighWaterMark: 0,
        reconnectInterval: 100,
        reconnectMaxInterval: 2000,
      });
      this.#watchEvents(sock);
      sock.connect(this.relay);
      this.#sock = sock;
      this.#out = new Outbox(sock, undefined, { batch: true });

      void receiveLoop(sock, (frames) => this.#onMessage(frames));
    }
    return { sock: this.#sock, out: this.#out };
  }

  /**
   * The socket's events: connected again after a disconnect, what may have been lost is asked
   * again (messages sent on 'connect' leave after the handshake); a relay that refuses the
   * handshake fails what waits on this socket (RTL_ERR_AUTH).
   */
  #watchEvents(sock: zmq.Dealer): void {
    const watch = new HandshakeWatch({ who: 'client', relay: this.relay, keys: this.#curve });
    let handled = this.#epoch;
    void (async () => {
      try {
        for await (const ev of sock.events) {
          if (ev.type === 'disconnect') this.#epoch++;
          else if (ev.type === 'connect' && this.#epoch !== handled && sock === this.#sock) {
            handled = this.#epoch;
            this.#reconnected();
          }
          const err = watch.onEvent(ev);
          if (err !== undefined) this.#refused(sock, err);
        }
      } catch {
        // The socket closed: its events end.
      }
    })();
  }

  /**
   * The relay refused this socket: fail every pending job, request and deploy with `err`,
   * and drop the socket (ZeroMQ gives up on it after an auth failure); the next request
   * connects afresh, so a key added to the allow-list since works without a new client.
   */
  #refused(sock: zmq.Dealer, err: RtlError): void {
    if (sock !== this.#sock) return;
    this.#sock = undefined;
    this.#out = undefined;
    sock.close();
    for (const job of [...this.#jobs.values()]) job._fail(err);
    this.#jobs.clear();
    this.#unaccepted.clear();
    for (const r of [...this.#requests.values()]) r.reject(err);
    this.#requests.clear();
    for (const d of [...this.#deploys.values()]) d.reject(err);
    this.#deploys.clear();
  }

  #send(msg: Outgoing, payload: readonly Uint8Array[] = []): void {
    this.#socket().out.push(encodeMessage(msg, payload));
  }

  /** Send a SUBMIT and keep it until ACCEPTED: it is sent again after a reconnect or BUSY. */
  #sendSubmit(job: Job, msg: Outgoing, payload: readonly Uint8Array[] = []): void {
    const frames = encodeMessage(msg, payload);
    let bytes = 0;
    for (const f of frames) bytes += f.byteLength;
    // The relay's transport would drop a larger message and the connection with it, without
    // an answer: refuse it here, naming the limit. [P-2.4]
    if (bytes > this.#limits.maxMessageBytes)
      throw new RtlError(
        'RTL_ERR_TOO_LARGE',
        `job ${job.id}: the SUBMIT is ${String(bytes)} bytes, more than MAX_MESSAGE_BYTES=${String(this.#limits.maxMessageBytes)} (give the client a store so that large inputs travel by reference, or raise MAX_MESSAGE_BYTES on the relay and the client)`,
        { job: job.id, limit: this.#limits.maxMessageBytes },
      );
    const timeoutMs = job._timeoutMs;
    this.#unaccepted.set(job.id, {
      job,
      frames,
      deadline: Date.now() + timeoutMs,
      timeoutMs,
      epoch: this.#epoch,
      retryAt: 0,
      busyDelay: BUSY_FIRST_MS,
      busy: undefined,
      tries: 1,
    });
    this.#socket().out.push(frames);
    this.#sweeper ??= setInterval(() => this.#sweep(), SWEEP_MS);
  }

  /** Resend submits whose BUSY backoff ended; give up on those past their deadline. */
  #sweep(): void {
    const now = Date.now();
    for (const [id, u] of this.#unaccepted) {
      if (now >= u.deadline) {
        this.#unaccepted.delete(id);
        this.#send({ t: 'CANCEL', id });
        u.job._fail(
          u.busy !== undefined
            ? new RtlError(
                'RTL_ERR_BUSY',
                `job ${id}: the relay at ${this.relay} stayed busy for ${String(u.timeoutMs)} ms (${String(u.tries)} tries): ${u.busy.message}`,
                { ...u.busy.detail, job: id, limit: u.timeoutMs },
              )
            : new RtlError(
                'RTL_ERR_RELAY_UNREACHABLE',
                `job ${id}: no relay at ${this.relay} accepted it within ${String(u.timeoutMs)} ms (sent ${String(u.tries)} times; is it running? try \`rtl status\` or \`rtl start\`)`,
                { job: id, source: this.relay, limit: u.timeoutMs },
              ),
        );
      } else if (u.retryAt !== 0 && now >= u.retryAt) {
        u.retryAt = 0;
        u.tries++;
        u.epoch = this.#epoch;
        this.#socket().out.push(u.frames);
      }
    }
    if (this.#unaccepted.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  /** Connected again after a disconnect: what may have been lost is asked again. */
  #reconnected(): void {
    for (const job of this.#jobs.values()) {
      if (job.ready()) continue;
      const u = this.#unaccepted.get(job.id);
      if (u === undefined) {
        // Accepted: the relay (restarted from its journal, or not) sends the result here.
        this.#send({ t: 'COLLECT', id: job.id });
      } else if (u.epoch < this.#epoch && u.retryAt === 0) {
        u.epoch = this.#epoch;
        u.tries++;
        this.#socket().out.push(u.frames);
      }
    }
  }

  #onMessage(frames: Buffer[], inBatch = false): void {
    const decoded = decodeMessage(frames, this.#limits);
    if (!decoded.ok) {
      const job = this.#jobs.get(decoded.id);
      job?._fail(decoded.error);
      return;
    }
    const msg: Message = decoded.msg;
    if (msg.t === 'BATCH' && !inBatch) {
      for (const inner of unbatch(msg, decoded.payload)) this.#onMessage(inner, true);
      return;
    }
    switch (msg.t) {
      case 'ACCEPTED':
        this.#unaccepted.delete(msg.id);
        this.#jobs.get(msg.id)?._accepted();
        return;
      case 'REJECTED': {
        const deploy = this.#deploys.get(msg.id);
        if (deploy !== undefined) {
          this.#deploys.delete(msg.id);
          deploy.reject(RtlError.fromWire(msg.error));
          return;
        }
        const u = this.#unaccepted.get(msg.id);
        if (u !== undefined && msg.error.code === 'RTL_ERR_BUSY') {
          // The relay holds too many jobs: wait (more each time, with jitter) and send again.
          u.busy = RtlError.fromWire(msg.error);
          u.retryAt = Date.now() + u.busyDelay * (0.5 + Math.random());
          u.busyDelay = Math.min(BUSY_MAX_MS, u.busyDelay * 2);
          return;
        }
        this.#unaccepted.delete(msg.id);
        this.#jobs.get(msg.id)?._fail(RtlError.fromWire(msg.error));
        return;
      }
      case 'DEPLOYED': {
        const deploy = this.#deploys.get(msg.id);
        if (deploy === undefined) return;
        this.#deploys.delete(msg.id);
        const { name, version, sha256, unchanged, tasks, removed, nodes } = msg;
        deploy.resolve({ name, version, sha256, unchanged, tasks, removed, nodes });
        return;
      }
      case 'ERROR':
        this.#unaccepted.delete(msg.id);
        this.#jobs.get(msg.id)?._fail(RtlError.fromWire(msg.error));
        return;
      case 'RESULT': {
        this.#unaccepted.delete(msg.id);
        const job = this.#jobs.get(msg.id);
        if (job === undefined) return;
        try {
          const value =
            msg.data.kind === 'cbor'
              ? decodeValue(decoded.payload[0] as Buffer, this.#limits)
              : this.#readTable(msg.data, decoded.payload);
          job._resolve(value, msg.stages);
        } catch (err) {
          job._fail(err);
        }
        return;
      }
      case 'EVENT': {
        const id = typeof msg.event.job === 'string' ? msg.event.job : '';
        this.#jobs.get(id)?._event(msg.event as unknown as JobEvent);
        return;
      }
      case 'STATUS':
        if (msg.status !== undefined) this.#requests.get(msg.rid)?.resolve(msg.status);
        this.#requests.delete(msg.rid);
        return;
      default:
        return;
    }
  }

  #readTable(data: DataRef, payload: Buffer[]): Table {
    if (data.kind === 'arrow') return decodeTable(payload);
    if (data.kind === 'ref') {
      if (!this.#store || this.#store.id !== data.store)
        throw new RtlError(
          'RTL_ERR_STORE',
          `result is a reference into store ${data.store}, which this client has not opened`,
          { key: data.key },
        );
      // A stable copy: the caller may keep the table after the stored value is deleted.
      const table = getTable(this.#store, data, { copy: true });
      void this.#store.delete(data.key);
      return table;
    }
    if (data.kind === 'none') return emptyTable();
    throw new RtlError(
      'RTL_ERR_PROTOCOL',
      `RESULT carries ${data.kind} data; a transform result is a table`,
    );
  }

  #assertOpen(): void {
    if (this.#closed) throw new RtlError('RTL_ERR_CANCELLED', 'this client is closed');
  }

  get hostname(): string {
    return hostname();
  }
}
