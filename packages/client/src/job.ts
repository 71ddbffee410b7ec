/** A submitted job: its result, its progress events, cancel. */
import { RtlError, type StageTiming } from '@rtl/core';
import type { Table } from 'apache-arrow';
import type { Client } from './client.js';

export type JobState = 'PENDING' | 'ACCEPTED' | 'DONE' | 'FAILED';

/** A progress event (see docs/protocol.md, EVENT). */
export interface JobEvent {
  readonly type: string;
  readonly job: string;
  readonly stage?: string;
  readonly node?: string;
  readonly ms?: number;
  readonly tasks?: readonly (string | { task: string; ms: number })[];
  readonly [key: string]: unknown;
}

export class Job {
  readonly id: string;
  readonly #client: Client;
  readonly #timeoutMs: number;
  #state: JobState = 'PENDING';
  #wantsEvents: boolean;
  /** The result: a Table (a transform) or a decoded CBOR value (a canvas); `#state` says whether it is set. */
  #value: unknown;
  #error: RtlError | undefined;
  #stages: readonly StageTiming[] = [];
  readonly #events: JobEvent[] = [];
  #live = false;
  #waiters: (() => void)[] = [];
  #settled: Promise<void>;
  #settle!: () => void;

  /** @internal */
  constructor(client: Client, id: string, timeoutMs: number, wantsEvents: boolean) {
    this.#client = client;
    this.id = id;
    this.#timeoutMs = timeoutMs;
    this.#wantsEvents = wantsEvents;
    this.#settled = new Promise((r) => (this.#settle = r));
  }

  get state(): JobState {
    return this.#state;
  }

  /** Per-stage timings, once the job is done. */
  get stages(): readonly StageTiming[] {
    return this.#stages;
  }

  ready(): boolean {
    return this.#state === 'DONE' || this.#state === 'FAILED';
  }

  /**
   * The result table. Rejects with an RtlError: the document was rejected, a stage failed
   * (with the remote stack in `detail.remoteStack`), the wait timed out (naming the stage it
   * waited for), or no relay answered.
   */
  async result(opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Table> {
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    if (!this.ready()) {
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      const timedOut = new Promise<'timeout' | 'abort'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
        if (opts.signal) {
          onAbort = () => resolve('abort');
          opts.signal.addEventListener('abort', onAbort, { once: true });
        }
      });
      const outcome = await Promise.race([this.#settled.then(() => 'settled' as const), timedOut]);
      clearTimeout(timer);
      if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
      if (outcome === 'abort')
        throw new RtlError('RTL_ERR_CANCELLED', `stopped waiting for job ${this.id}: aborted`, {
          job: this.id,
        });
      if (outcome === 'timeout') throw await this.#timeoutError(timeoutMs);
    }
    if (this.#error) throw this.#error;
    return this.#value as Table;
  }

  /** @internal The result as it came: a Table, or a canvas's value (0, false, null and [] included). */
  async _value(opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<unknown> {
    await this.result(opts);
    return this.#value;
  }

  /** Progress events: those so far, then live ones until the job ends. */
  async *events(): AsyncGenerator<JobEvent, void, undefined> {
    this.#wantsEvents = true;
    let i = 0;
    for (;;) {
      while (i < this.#events.length) yield this.#events[i++] as JobEvent;
      if (this.ready()) return;
      await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  /** Ask the relay to cancel the job; `result()` then rejects with RTL_ERR_CANCELLED. */
  cancel(): Promise<void> {
    if (!this.ready()) {
      this.#client._cancel(this);
      this._fail(
        new RtlError('RTL_ERR_CANCELLED', `job ${this.id} was cancelled`, { job: this.id }),
      );
    }
    return Promise.resolve();
  }

  async #timeoutError(timeoutMs: number): Promise<RtlError> {
    if (this.#state === 'PENDING') {
      return new RtlError(
        'RTL_ERR_RELAY_UNREACHABLE',
        `job ${this.id}: no relay at ${this.#client.relay} accepted it within ${String(timeoutMs)} ms (is it running? try \`rtl status\` or \`rtl start\`)`,
        { job: this.id, source: this.#client.relay },
      );
    }
    const where = await this.#client._whereIs(this.id);
    const many = describeNodes(where);
    if (many !== undefined)
      return new RtlError(
        'RTL_ERR_TIMEOUT',
        `job ${this.id}: no result within ${String(timeoutMs)} ms; ${many}`,
        {
          job: this.id,
          stage: typeof where?.stage === 'string' ? where.stage : undefined,
          node: typeof where?.node === 'string' ? where.node : undefined,
          limit: timeoutMs,
          running: Array.isArray(where?.running) ? where.running : [],
          waiting: Array.isArray(where?.waiting) ? where.waiting : [],
        },
      );
    const stage = typeof where?.stage === 'string' ? where.stage : undefined;
    const tasks = Array.isArray(where?.tasks) ? (where.tasks as string[]).join(', ') : '';
    let what = 'the relay did not say where it is';
    if (stage !== undefined) {
      if (typeof where?.node === 'string')
        what = `stage "${stage}" (${tasks}) was running on ${where.node}`;
      else if (where?.nodesThatCanRun === 0)
        what = `stage "${stage}" (${tasks}) was waiting: no connected tasknode can run it${typeof where.route === 'string' ? ` (route "${where.route}": no tasknode of that name or queue)` : ''}`;
      else what = `stage "${stage}" (${tasks}) was waiting for a free tasknode`;
    }
    return new RtlError(
      'RTL_ERR_TIMEOUT',
      `job ${this.id}: no result within ${String(timeoutMs)} ms; ${what}`,
      {
        job: this.id,
        stage,
        node: typeof where?.node === 'string' ? where.node : undefined,
        limit: timeoutMs,
      },
    );
  }

  /** @internal The job's default wait, which also bounds how long its submit is retried. */
  get _timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** @internal */
  get _wantsEvents(): boolean {
    this.#live = this.#wantsEvents;
    return this.#wantsEvents;
  }

  /** @internal */
  _accepted(): void {
    if (this.#state === 'PENDING') this.#state = 'ACCEPTED';
  }

  /** @internal */
  _event(ev: JobEvent): void {
    this.#events.push(ev);
    this.#wake();
  }

  /** @internal */
  _resolve(value: unknown, stages: readonly StageTiming[]): void {
    if (this.ready()) return;
    this.#value = value;
    this.#stages = stages;
    if (!this.#live) {
      // No live events were asked for: replay the stage timings the result carries.
      for (const s of stages)
        this.#events.push({
          type: 'stage.completed',
          job: this.id,
          stage: s.stage,
          node: s.node,
          ms: s.ms,
          tasks: s.tasks,
        });
      this.#events.push({ type: 'job.completed', job: this.id, stages });
    }
    this.#state = 'DONE';
    this.#end();
  }

  /** @internal */
  _fail(err: unknown): void {
    if (this.ready()) return;
    this.#error =
      err instanceof RtlError
        ? err
        : new RtlError(
            'RTL_ERR_INTERNAL',
            err instanceof Error ? err.message : String(err),
            { job: this.id },
            { cause: err },
          );
    this.#state = 'FAILED';
    if (!this.#live)
      this.#events.push({
        type: 'job.failed',
        job: this.id,
        code: this.#error.code,
        message: this.#error.message,
      });
    this.#end();
  }

  #end(): void {
    this.#client._forget(this);
    this.#settle();
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const r of w) r();
  }
}

interface NodeWhere {
  readonly stage: string;
  readonly tasks?: readonly string[];
  readonly node?: string | null;
  readonly route?: string | null;
  readonly nodesThatCanRun?: number;
}

/** For a job with several nodes running or waiting at once (a canvas, parallel stages): name them all. */
function describeNodes(where: Record<string, unknown> | undefined): string | undefined {
  const running = (Array.isArray(where?.running) ? where.running : []) as NodeWhere[];
  const waiting = (Array.isArray(where?.waiting) ? where.waiting : []) as NodeWhere[];
  const runningCount =
    typeof where?.runningCount === 'number' ? where.runningCount : running.length;
  const waitingCount =
    typeof where?.waitingCount === 'number' ? where.waitingCount : waiting.length;
  if (runningCount + waitingCount <= 1) return undefined;
  const name = (n: NodeWhere): string => `"${n.stage}" (${(n.tasks ?? []).join(', ')})`;
  const parts: string[] = [];
  if (running.length > 0)
    parts.push(
      `${String(runningCount)} still running: ${running.map((n) => `${name(n)} on ${n.node ?? '?'}`).join(', ')}${runningCount > running.length ? ', ...' : ''}`,
    );
  if (waiting.length > 0)
    parts.push(
      `${String(waitingCount)} waiting: ${waiting
        .map(
          (n) =>
            `${name(n)}${n.nodesThatCanRun === 0 ? (typeof n.route === 'string' ? ` (no tasknode serves route "${n.route}")` : ' (no connected tasknode can run it)') : ''}`,
        )
        .join(', ')}${waitingCount > waiting.length ? ', ...' : ''}`,
    );
  return parts.join('; ');
}
