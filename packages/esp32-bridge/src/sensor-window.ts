/**
 * The bounded window of recent samples of one sensor stream, its counters, and its
 * subscribers (tumbling windows by count or by sample time).
 */
import type { Table } from 'apache-arrow';
import { RtlError, toTable } from '@rtl/core';
import type { SampleBatch } from './batch.js';

/** How much of a stream: the last `count` samples, or those of the last `ms` of sample time. */
export type WindowSpec = { readonly count: number } | { readonly ms: number };

/** A ring of (timestamp, value) pairs that grows by doubling up to `cap`, then overwrites. */
export class SampleRing {
  #ts: Float64Array;
  #v: Float64Array;
  #start = 0;
  #len = 0;
  readonly cap: number;

  constructor(cap: number) {
    this.cap = cap;
    const initial = Math.min(cap, 64);
    this.#ts = new Float64Array(initial);
    this.#v = new Float64Array(initial);
  }

  get length(): number {
    return this.#len;
  }

  /** Samples held right now (never more than `cap`). */
  get capacity(): number {
    return this.#ts.length;
  }

  push(t: number, v: number): void {
    if (this.#len === this.#ts.length && this.#len < this.cap) this.#grow();
    const size = this.#ts.length;
    if (this.#len < size) {
      const at = (this.#start + this.#len) % size;
      this.#ts[at] = t;
      this.#v[at] = v;
      this.#len++;
    } else {
      this.#ts[this.#start] = t;
      this.#v[this.#start] = v;
      this.#start = (this.#start + 1) % size;
    }
  }

  clear(): void {
    this.#start = 0;
    this.#len = 0;
  }

  /** Timestamp of the i-th oldest sample. */
  timeAt(i: number): number {
    return this.#ts[(this.#start + i) % this.#ts.length] ?? NaN;
  }

  /** Copies of the last `n` samples, oldest first. */
  last(n: number): { timestamp: Float64Array; value: Float64Array } {
    const k = Math.max(0, Math.min(n, this.#len));
    const timestamp = new Float64Array(k);
    const value = new Float64Array(k);
    const size = this.#ts.length;
    const from = this.#start + this.#len - k;
    for (let i = 0; i < k; i++) {
      const at = (from + i) % size;
      timestamp[i] = this.#ts[at] ?? NaN;
      value[i] = this.#v[at] ?? NaN;
    }
    return { timestamp, value };
  }

  #grow(): void {
    const size = Math.min(this.cap, this.#ts.length * 2);
    const { timestamp, value } = this.last(this.#len);
    this.#ts = new Float64Array(size);
    this.#v = new Float64Array(size);
    this.#ts.set(timestamp);
    this.#v.set(value);
    this.#start = 0;
  }
}

/** A table of the two columns every window has: `timestamp` (ms) and `value`, both Float64. */
export function windowTable(timestamp: Float64Array, value: Float64Array): Table {
  return toTable({ timestamp, value });
}

export function checkWindowSpec(spec: WindowSpec, maxSamples: number): void {
  const [key, n] = 'count' in spec ? ['count', spec.count] : ['ms', spec.ms];
  const ok = key === 'count' ? Number.isInteger(n) && n >= 1 && n <= maxSamples : n > 0;
  if (!ok)
    throw new RtlError(
      'RTL_ERR_BAD_PARAM',
      `window ${key}: expected ${key === 'count' ? `an integer 1..${maxSamples} (the window cap)` : 'a number of ms > 0'}, got ${String(n)}`,
      { param: key, got: String(n) },
    );
}

/** Counters of one stream, as `streams()` lists them. */
export interface StreamInfo {
  /** `<node>/<stream>`. */
  readonly name: string;
  readonly node: string;
  readonly stream: string;
  /** Batches and samples accepted. */
  readonly batches: number;
  readonly samples: number;
  /** Batches dropped as malformed (E-4.1). */
  readonly dropped: number;
  /** Batches missing by gaps in `seq`. */
  readonly lost: number;
  /** Times `seq` went back to 0 (the node rebooted). */
  readonly reboots: number;
  /** Windows a slow subscriber did not take in time, dropped oldest first. */
  readonly windowsDropped: number;
  /** Samples in the window now (at most the cap). */
  readonly held: number;
  readonly lastSeq: number | null;
  /** Timestamp (ms) of the newest sample. */
  readonly lastTimestamp: number | null;
}

/** One subscriber's tumbling windows and its bounded queue of complete ones. */
export class WindowSubscription implements AsyncIterable<Table> {
  readonly #spec: WindowSpec;
  readonly #ring: SampleRing;
  readonly #maxPending: number;
  readonly #queue: Table[] = [];
  readonly #onDrop: () => void;
  readonly #onEnd: () => void;
  #windowStart: number | null = null;
  #waiter: ((r: IteratorResult<Table>) => void) | null = null;
  #ended = false;

  constructor(
    spec: WindowSpec,
    maxSamples: number,
    maxPending: number,
    onDrop: () => void,
    onEnd: () => void,
  ) {
    this.#spec = spec;
    this.#ring = new SampleRing('count' in spec ? spec.count : maxSamples);
    this.#maxPending = maxPending;
    this.#onDrop = onDrop;
    this.#onEnd = onEnd;
  }

  add(t: number, v: number): void {
    if (this.#ended) return;
    if ('count' in this.#spec) {
      this.#ring.push(t, v);
      if (this.#ring.length === this.#spec.count) this.#flush();
      return;
    }
    const ms = this.#spec.ms;
    const start = Math.floor(t / ms) * ms;
    if (this.#windowStart !== null && start !== this.#windowStart) this.#flush();
    this.#windowStart = start;
    this.#ring.push(t, v);
  }

  /**
   * A batch ended, its next sample due at `next` ms (its last sample + dt): a time window
   * that sample falls past is complete now, a batch period before a later sample would say so.
   */
  endBatch(next: number): void {
    if (this.#ended || 'count' in this.#spec || this.#windowStart === null) return;
    if (!Number.isFinite(next)) return;
    const ms = this.#spec.ms;
    if (Math.floor(next / ms) * ms === this.#windowStart) return;
    this.#flush();
    // A sample still to come for that window (out of order) opens a window of its own.
    this.#windowStart = null;
  }

  #flush(): void {
    const { timestamp, value } = this.#ring.last(this.#ring.length);
    this.#ring.clear();
    if (timestamp.length === 0) return;
    this.#emit(windowTable(timestamp, value));
  }

  #emit(table: Table): void {
    if (this.#waiter !== null) {
      const w = this.#waiter;
      this.#waiter = null;
      w({ done: false, value: table });
      return;
    }
    this.#queue.push(table);
    while (this.#queue.length > this.#maxPending) {
      this.#queue.shift();
      this.#onDrop();
    }
  }

  /** End the iteration (the bridge closes, or the consumer breaks out). */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#onEnd();
    if (this.#waiter !== null) {
      const w = this.#waiter;
      this.#waiter = null;
      w({ done: true, value: undefined });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Table> {
    return {
      next: () => {
        const table = this.#queue.shift();
        if (table !== undefined) return Promise.resolve({ done: false, value: table });
        if (this.#ended) return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve) => (this.#waiter = resolve));
      },
      return: () => {
        this.end();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }
}

/** The state of one stream: its ring of recent samples, counters and subscribers. */
export class StreamWindow {
  readonly node: string;
  readonly stream: string;
  readonly ring: SampleRing;
  readonly subscribers = new Set<WindowSubscription>();
  batches = 0;
  samples = 0;
  dropped = 0;
  lost = 0;
  reboots = 0;
  windowsDropped = 0;
  lastSeq: number | null = null;
  lastTimestamp: number | null = null;

  constructor(node: string, stream: string, maxSamples: number) {
    this.node = node;
    this.stream = stream;
    this.ring = new SampleRing(maxSamples);
  }

  get name(): string {
    return `${this.node}/${this.stream}`;
  }

  /** Take a decoded batch: count seq gaps and reboots, keep its samples, feed subscribers. */
  add(batch: SampleBatch): void {
    if (this.lastSeq !== null) {
      if (batch.seq === 0 && this.lastSeq > 0) this.reboots++;
      else if (batch.seq > this.lastSeq + 1) this.lost += batch.seq - this.lastSeq - 1;
      else if (batch.seq < this.lastSeq && this.lastSeq - batch.seq > 2 ** 31)
        this.lost += 2 ** 32 - this.lastSeq - 1 + batch.seq; // wrapped at 2^32
    }
    this.lastSeq = batch.seq;
    this.batches++;
    const n = batch.values.length;
    this.samples += n;
    for (let i = 0; i < n; i++) {
      const t = batch.timestamps[i] ?? NaN;
      const v = batch.values[i] ?? NaN;
      this.ring.push(t, v);
      for (const sub of this.subscribers) sub.add(t, v);
    }
    if (n > 0) this.lastTimestamp = batch.timestamps[n - 1] ?? null;
    if (n > 0 && batch.dtUs > 0 && this.subscribers.size > 0) {
      const next = (batch.timestamps[n - 1] ?? NaN) + batch.dtUs / 1000;
      for (const sub of this.subscribers) sub.endBatch(next);
    }
  }

  /** The most recent samples as a table. */
  window(spec: WindowSpec): Table {
    if ('count' in spec) {
      const { timestamp, value } = this.ring.last(spec.count);
      return windowTable(timestamp, value);
    }
    const len = this.ring.length;
    if (len === 0) return windowTable(new Float64Array(0), new Float64Array(0));
    const newest = this.ring.timeAt(len - 1);
    let k = 0;
    while (k < len && this.ring.timeAt(len - 1 - k) > newest - spec.ms) k++;
    const { timestamp, value } = this.ring.last(k);
    return windowTable(timestamp, value);
  }

  info(): StreamInfo {
    return {
      name: this.name,
      node: this.node,
      stream: this.stream,
      batches: this.batches,
      samples: this.samples,
      dropped: this.dropped,
      lost: this.lost,
      reboots: this.reboots,
      windowsDropped: this.windowsDropped,
      held: this.ring.length,
      lastSeq: this.lastSeq,
      lastTimestamp: this.lastTimestamp,
    };
  }
}
