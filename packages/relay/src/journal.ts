/**
 * The relay's journal in the LMDB store (DESIGN section 6): every accepted job, the value of
 * every finished stage while a later stage still needs it, and every finished job's outcome
 * until JOURNAL_RETENTION has passed. A relay that restarts (even after SIGKILL) reads it
 * back: unfinished jobs resume from their finished stages, and finished ones are still
 * answered to a client that reconnects or collects them.
 *
 * Keys (all under `j/`, values CBOR):
 * - `j/J/<job>`: the accepted job (client identity, graph, input, options);
 * - `j/S/<job>|<node index>`: a finished node's value (data ref and payload frames);
 * - `j/F/<job>`: how the job ended (result or error), and `j/T/<ms>/<job>` to prune by age.
 *
 * Writes go through lmdb-js's write queue in the order they are made, so a crash never shows
 * a later write without the earlier ones (a finished job's F entry lands before its J and S
 * entries go). Every write uses the store's reserve, so tables filling the store cannot
 * starve the journal.
 */
import {
  RtlError,
  decodeValue,
  encodeValue,
  type DataRef,
  type JobGraph,
  type Logger,
  type StageTiming,
  type Store,
  type WireError,
} from '@rtl/core';
import type { Value } from './values.js';

export interface AcceptedRecord {
  readonly id: string;
  readonly client: Buffer;
  readonly graph: JobGraph;
  readonly input: Value;
  readonly events: boolean;
  readonly clientStore: string;
  readonly timeoutMs?: number;
  /** When the relay accepted it (epoch ms). */
  readonly accepted: number;
}

export type FinishedState = 'done' | 'failed' | 'cancelled';

export interface FinishedRecord {
  readonly state: FinishedState;
  /** When it ended (epoch ms). */
  readonly at: number;
  readonly result?: {
    readonly data: DataRef;
    readonly payload: Buffer[];
    readonly stages: StageTiming[];
  };
  readonly error?: WireError;
}

export interface RestoredJob {
  readonly record: AcceptedRecord;
  /** Finished nodes' values by node index. */
  readonly stages: Map<number, Value>;
}

const J = 'j/J/';
const S = 'j/S/';
const F = 'j/F/';
const T = 'j/T/';
const RESERVED = { reserved: true } as const;
/** Journal entries are decoded without the wire's size limit, but with a depth limit. */
const LIMITS = {
  maxMessageBytes: Number.MAX_SAFE_INTEGER,
  maxHeaderBytes: Number.MAX_SAFE_INTEGER,
  maxFrames: Number.MAX_SAFE_INTEGER,
  maxDepth: 256,
};

export class Journal {
  readonly #store: Store;
  readonly #log: Logger;
  readonly retentionMs: number;

  constructor(store: Store, log: Logger, retentionMs: number) {
    this.#store = store;
    this.#log = log;
    this.retentionMs = retentionMs;
  }

  /** Record an accepted job; resolves once committed (ACCEPTED may then be sent). */
  accept(r: AcceptedRecord): Promise<void> {
    const rec = {
      id: r.id,
      client: r.client,
      graph: r.graph,
      data: r.input.data,
      payload: r.input.payload,
      events: r.events,
      clientStore: r.clientStore,
      ...(r.timeoutMs === undefined ? {} : { timeoutMs: r.timeoutMs }),
      accepted: r.accepted,
    };
    return this.#store.put(`${J}${r.id}`, encodeValue(rec), RESERVED);
  }

  /** Record a finished node's value (not awaited: a crash before the commit re-runs the node). */
  stage(job: string, index: number, v: Value): void {
    this.#write(
      this.#store.put(
        `${S}${job}|${String(index)}`,
        encodeValue({ data: v.data, payload: v.payload }),
        RESERVED,
      ),
      job,
    );
  }

  /** A node's value is needed no more. */
  unstage(job: string, index: number): void {
    this.#write(this.#store.remove(`${S}${job}|${String(index)}`), job);
  }

  /**
   * Record how a job ended and drop its J and S entries (`stages`: the node indexes recorded
   * with `stage` and not unstaged). Resolves once the outcome is committed.
   */
  finish(job: string, f: FinishedRecord, stages: Iterable<number>): Promise<void> {
    const done = this.#store.put(`${F}${job}`, encodeValue(f), RESERVED);
    // The T entry holds the store key of a by-reference result, to delete when pruned.
    const data = f.result?.data;
    const ref = data?.kind === 'ref' ? Buffer.from(data.key) : EMPTY;
    this.#write(this.#store.put(`${T}${timeKey(f.at)}/${job}`, ref, RESERVED), job);
    this.#write(this.#store.remove(`${J}${job}`), job);
    for (const i of stages) this.unstage(job, i);
    return done;
  }

  /** How a job ended, if it did within the retention. */
  finished(job: string): FinishedRecord | undefined {
    let raw: Buffer | undefined;
    try {
      raw = this.#store.get(`${F}${job}`, { ownWrites: true });
    } catch (err) {
      this.#log.warn({ err, job }, 'journal: could not read a finished job');
      return undefined;
    }
    if (raw === undefined) return undefined;
    try {
      return decodeValue(raw, LIMITS) as FinishedRecord;
    } catch (err) {
      this.#log.error({ err, job }, 'journal: a finished job entry does not decode; ignored');
      return undefined;
    }
  }

  /** Every job accepted and not finished, with its finished nodes' values (at start-up). */
  unfinished(): RestoredJob[] {
    const stages = new Map<string, Map<number, Value>>();
    for (const [key, raw] of this.#store.entries(S)) {
      const bar = key.lastIndexOf('|');
      const job = key.slice(S.length, bar);
      const index = Number(key.slice(bar + 1));
      const v = this.#decode(key, raw) as { data?: DataRef; payload?: Buffer[] } | undefined;
      if (v?.data === undefined || !Number.isSafeInteger(index)) continue;
      let m = stages.get(job);
      if (m === undefined) stages.set(job, (m = new Map<number, Value>()));
      m.set(index, { data: v.data, payload: (v.payload ?? []).map(toBuffer) });
    }
    const out: RestoredJob[] = [];
    for (const [key, raw] of this.#store.entries(J)) {
      const r = this.#decode(key, raw) as
        (Omit<AcceptedRecord, 'input'> & { data: DataRef; payload: Buffer[] }) | undefined;
      if (r === undefined || typeof r.id !== 'string' || typeof r.graph !== 'object') continue;
      out.push({
        record: {
          id: r.id,
          client: toBuffer(r.client),
          graph: r.graph,
          input: { data: r.data, payload: r.payload.map(toBuffer) },
          events: r.events,
          clientStore: r.clientStore,
          ...(r.timeoutMs === undefined ? {} : { timeoutMs: r.timeoutMs }),
          accepted: r.accepted,
        },
        stages: stages.get(r.id) ?? new Map<number, Value>(),
      });
      stages.delete(r.id);
    }
    // S entries of jobs that have no J entry (their F entry landed): leftovers.
    for (const [job, m] of stages) for (const i of m.keys()) this.unstage(job, i);
    return out.sort((a, b) => a.record.accepted - b.record.accepted);
  }

  /**
   * Drop finished jobs that ended before `now - retentionMs` (at most `limit` of them, oldest
   * first). Returns the jobs dropped, with the store key of a by-reference result nobody read.
   */
  prune(now: number, limit = PRUNE_BATCH): { job: string; ref: string | undefined }[] {
    const below = `${T}${timeKey(now - this.retentionMs + 1)}`;
    const out: { job: string; ref: string | undefined }[] = [];
    for (const [key, value] of this.#store.entries(T, { below })) {
      if (out.length >= limit) break;
      const job = key.slice(key.indexOf('/', T.length) + 1);
      out.push({ job, ref: value.length > 0 ? value.toString('utf8') : undefined });
      this.#write(this.#store.remove(key), job);
      this.#write(this.#store.remove(`${F}${job}`), job);
    }
    return out;
  }

  #decode(key: string, raw: Buffer): unknown {
    try {
      return decodeValue(raw, LIMITS);
    } catch (err) {
      this.#log.error(
        { err, key },
        `journal: entry "${key}" does not decode (${err instanceof RtlError ? err.message : String(err)}); skipped`,
      );
      return undefined;
    }
  }

  #write(p: Promise<void>, job: string): void {
    p.catch((err: unknown) => this.#log.warn({ err, job }, 'journal write failed'));
  }
}

const EMPTY = new Uint8Array(0);
/** Jobs pruned per call at most (the relay prunes every second). */
const PRUNE_BATCH = 10_000;

/** Epoch ms as 15 digits, so that keys sort by time. */
function timeKey(ms: number): string {
  return String(Math.max(0, Math.floor(ms))).padStart(15, '0');
}

function toBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}
