/**
 * The client connection: one DEALER to the relay's RECV port, shared by every job and
 * request of this client. Jobs are matched to replies by id.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import * as zmq from 'zeromq';
import {
  DEFAULT_LIMITS,
  Outbox,
  RtlError,
  Store,
  decodeMessage,
  decodeTable,
  emptyTable,
  encodeMessage,
  encodeTable,
  getTable,
  putTable,
  receiveLoop,
  unbatch,
  tableByteLength,
  toTable,
  type DataRef,
  type Message,
  type Outgoing,
  type ProtocolLimits,
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
}

interface PendingRequest {
  resolve: (status: Record<string, unknown>) => void;
}

const DEFAULT_RELAY = 'tcp://127.0.0.1:19000';

export function defaultRelayEndpoint(env: Record<string, string | undefined> = process.env): string {
  const addr = env.RTL_RELAY_ADDR ?? '127.0.0.1';
  const port = env.RTL_RELAY_RECV ?? '19000';
  return env.RTL_RELAY_ADDR === undefined && env.RTL_RELAY_RECV === undefined ? DEFAULT_RELAY : `tcp://${addr}:${port}`;
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
  #sock: zmq.Dealer | undefined;
  #out: Outbox | undefined;
  #store: Store | undefined;
  #storeReady: Promise<Store | undefined> | undefined;
  #closed = false;

  constructor(opts: ClientOptions = {}) {
    this.relay = opts.relay ?? defaultRelayEndpoint();
    this.timeoutMs = opts.timeoutMs ?? Number(process.env.RTL_RESPONSE_TIME ?? 60_000);
    this.#refBytes = opts.refBytes ?? 2 ** 20;
    this.#storePath = opts.store ?? process.env.RTL_CACHE_PATH ?? `${process.env.HOME ?? '.'}/.rtl/cache`;
    this.#storeMapSize = opts.storeMapSize ?? 512 * 2 ** 20;
    this.#chunked = opts.chunked ?? true;
    this.#limits = { ...DEFAULT_LIMITS, maxMessageBytes: opts.maxMessageBytes ?? DEFAULT_LIMITS.maxMessageBytes };
  }

  /** Submit a transform document; returns its job handle at once. */
  execute(doc: unknown, opts: ExecuteOptions = {}): Job {
    this.#assertOpen();
    const id = opts.id ?? randomUUID();
    const job = new Job(this, id, opts.timeoutMs ?? this.timeoutMs, opts.events === true);
    this.#jobs.set(id, job);
    // The submit leaves on the next microtask, so `events()` called right after still asks for live events.
    queueMicrotask(() => {
      this.#submit(job, doc, opts.data).catch((err: unknown) => job._fail(err));
    });
    return job;
  }

  /** Ask the relay for its status (nodes, jobs, uptime). Rejects with RTL_ERR_RELAY_UNREACHABLE when no relay answers. */
  async status(opts: { timeoutMs?: number } = {}): Promise<Record<string, unknown>> {
    return this.request({ what: 'cluster' }, opts.timeoutMs ?? 2000);
  }

  /** @internal A STATUS request; resolves with the relay's answer. */
  request(query: { what: 'cluster' | 'job' | 'store'; id?: string }, timeoutMs: number): Promise<Record<string, unknown>> {
    this.#assertOpen();
    const rid = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#requests.delete(rid);
        reject(new RtlError('RTL_ERR_RELAY_UNREACHABLE', `no answer from a relay at ${this.relay} within ${String(timeoutMs)} ms (is it running? try \`rtl status\` or \`rtl start\`)`, { source: this.relay }));
      }, timeoutMs);
      this.#requests.set(rid, {
        resolve: (s) => {
          clearTimeout(timer);
          resolve(s);
        },
      });
      this.#send({ t: 'STATUS', rid, query });
    });
  }

  /** Close the socket; pending jobs fail with RTL_ERR_CANCELLED. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const job of this.#jobs.values()) job._fail(new RtlError('RTL_ERR_CANCELLED', `client closed while job ${job.id} was pending`, { job: job.id }));
    this.#jobs.clear();
    if (this.#out) await Promise.race([this.#out.flushed(), new Promise((r) => setTimeout(r, 100))]);
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

  async #submit(job: Job, doc: unknown, data: unknown): Promise<void> {
    let ref: DataRef = { kind: 'none' };
    let payload: Uint8Array[] = [];
    if (data !== undefined && data !== null) {
      const table = toTable(data);
      const store = tableByteLength(table) >= this.#refBytes ? await this.#sharedStore() : undefined;
      if (store !== undefined) {
        ref = await putTable(store, table);
      } else {
        payload = encodeTable(table, { chunked: this.#chunked });
        ref = { kind: 'arrow', frames: payload.length };
      }
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
      throw new RtlError('RTL_ERR_BAD_DOCUMENT', `document is ${Array.isArray(doc) ? 'an array' : typeof doc}, expected an object of stages like { "0": { "tasks": { ... } } }`, { job: job.id });
    const storeId = this.#store ? this.#store.id : '';
    this.#send({ t: 'SUBMIT', id: job.id, doc: doc as Record<string, unknown>, data: ref, events: job._wantsEvents, store: storeId }, payload);
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
      const sock = new zmq.Dealer({ linger: 0, maxMessageSize: this.#limits.maxMessageBytes, sendHighWaterMark: 0, receiveHighWaterMark: 0, reconnectInterval: 100, reconnectMaxInterval: 2000 });
      sock.connect(this.relay);
      this.#sock = sock;
      this.#out = new Outbox(sock, undefined, { batch: true });
      void receiveLoop(sock, (frames) => this.#onMessage(frames));
    }
    return { sock: this.#sock, out: this.#out };
  }

  #send(msg: Outgoing, payload: readonly Uint8Array[] = []): void {
    this.#socket().out.push(encodeMessage(msg, payload));
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
        this.#jobs.get(msg.id)?._accepted();
        return;
      case 'REJECTED':
        this.#jobs.get(msg.id)?._fail(RtlError.fromWire(msg.error));
        return;
      case 'ERROR':
        this.#jobs.get(msg.id)?._fail(RtlError.fromWire(msg.error));
        return;
      case 'RESULT': {
        const job = this.#jobs.get(msg.id);
        if (job === undefined) return;
        try {
          job._resolve(this.#readTable(msg.data, decoded.payload), msg.stages);
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
        throw new RtlError('RTL_ERR_STORE', `result is a reference into store ${data.store}, which this client has not opened`, { key: data.key });
      // A stable copy: the caller may keep the table after the stored value is deleted.
      const table = getTable(this.#store, data, { copy: true });
      void this.#store.delete(data.key);
      return table;
    }
    if (data.kind === 'none') return emptyTable();
    throw new RtlError('RTL_ERR_PROTOCOL', `RESULT carries ${data.kind} data; a transform result is a table`);
  }

  #assertOpen(): void {
    if (this.#closed) throw new RtlError('RTL_ERR_CANCELLED', 'this client is closed');
  }

  get hostname(): string {
    return hostname();
  }
}
