/**
 * The canvas (DESIGN section 8): Celery-style signatures of function tasks, composed with
 * chain, group and chord, run on the cluster by the relay as one job graph.
 *
 * ```ts
 * const add = task('add'), mul = task('mul');
 * await chain(add.s(4, 4), mul.s(8), mul.s(10)).delay().get();   // 640
 * await group(add.s(2, 2), add.s(4, 4)).delay().get();           // [4, 8]
 * await chord([add.s(1, 1), add.s(2, 2)])(task('tsum').s()).delay().get(); // 6
 * ```
 * Celery's rules hold: in a chain the previous result is prepended as the FIRST argument
 * (`.si()` ignores it); call-time arguments go before a partial's own, and call-time
 * options win. Gotcha: `.delay()` uses the default client (`setDefaultClient`, else one made
 * from RTL_RELAY_ADDR / RTL_RELAY_RECV); pass `{ client }` to `applyAsync` to pick another.
 */
import { RtlError, type CallOptions } from '@rtl/core';
import { Client } from './client.js';
import type { Job, JobEvent } from './job.js';

/** Options of `applyAsync`: Celery's apply_async options plus rtl's own. */
export interface ApplyOptions extends CallOptions {
  /** The client to submit with (default: the default client). */
  readonly client?: Client;
  /** Job id (default: a random UUID); submitting an id again runs the job once. */
  readonly id?: string;
  /** The relay fails the whole job with RTL_ERR_TIMEOUT past this many ms (default: none). */
  readonly jobTimeoutMs?: number;
  /** Default wait of `get()`, in ms (default: the client's timeoutMs). */
  readonly getTimeoutMs?: number;
}

/** The wire form of a canvas expression (docs/canvas.md). */
export type CanvasWire = Record<string, unknown>;

/** Anything that can run: a signature, a map, a chain, a group or a chord. */
export abstract class Canvas {
  /** The wire form, with call-time arguments (prepended to the first calls) and options (win over the signature's). */
  abstract toWire(args?: readonly unknown[], options?: CallOptions): CanvasWire;

  /** Run with these call-time arguments; returns the result handle at once. */
  delay(...args: unknown[]): AsyncResult {
    return this.applyAsync(args);
  }

  /** Run with call-time arguments and options (`queue`, `retries`, `timeoutMs`, `client`, `id`). */
  applyAsync(args: readonly unknown[] = [], opts: ApplyOptions = {}): AsyncResult {
    const { client, id, jobTimeoutMs, getTimeoutMs, ...options } = opts;
    const c = client ?? defaultClient();
    const job = c.submitCanvas(this.toWire(args, options), {
      ...(id === undefined ? {} : { id }),
      ...(jobTimeoutMs === undefined ? {} : { jobTimeoutMs }),
      ...(getTimeoutMs === undefined ? {} : { timeoutMs: getTimeoutMs }),
    });
    return new AsyncResult(job, c);
  }
}

type Opts = { -readonly [K in keyof CallOptions]: CallOptions[K] };

function mergeOptions(own: CallOptions, call: CallOptions | undefined): CallOptions {
  const out: Opts = { ...own };
  for (const [k, v] of Object.entries(call ?? {}))
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

function wireOptions(o: CallOptions): { options?: CallOptions } {
  return Object.keys(o).length === 0 ? {} : { options: o };
}

/** A call of one function task with some of its arguments (Celery's Signature). */
export class Signature extends Canvas {
  readonly task: string;
  readonly args: readonly unknown[];
  readonly options: CallOptions;
  readonly immutable: boolean;
  readonly links: readonly Canvas[];
  readonly errbacks: readonly Canvas[];

  constructor(
    task: string,
    args: readonly unknown[] = [],
    opts: {
      options?: CallOptions;
      immutable?: boolean;
      links?: readonly Canvas[];
      errbacks?: readonly Canvas[];
    } = {},
  ) {
    super();
    this.task = task;
    this.args = args;
    this.options = opts.options ?? {};
    this.immutable = opts.immutable ?? false;
    this.links = opts.links ?? [];
    this.errbacks = opts.errbacks ?? [];
  }

  #with(
    change: Partial<{
      options: CallOptions;
      links: readonly Canvas[];
      errbacks: readonly Canvas[];
    }>,
  ): Signature {
    return new Signature(this.task, this.args, {
      options: change.options ?? this.options,
      immutable: this.immutable,
      links: change.links ?? this.links,
      errbacks: change.errbacks ?? this.errbacks,
    });
  }

  /** The same call with these options (`queue`, `retries`, `timeoutMs`) set. */
  set(options: CallOptions): Signature {
    return this.#with({ options: mergeOptions(this.options, options) });
  }

  /** Run `callback` with this call's result once it succeeds (its result is not the job's). */
  link(callback: Canvas): Signature {
    return this.#with({ links: [...this.links, callback] });
  }

  /** Run `errback` with the error (`{ code, message, task, node, stage }`) when this call fails for good. */
  linkError(errback: Canvas): Signature {
    return this.#with({ errbacks: [...this.errbacks, errback] });
  }

  toWire(args: readonly unknown[] = [], options?: CallOptions): CanvasWire {
    const o = mergeOptions(this.options, options);
    return {
      call: this.task,
      // Celery: call-time arguments first; an immutable signature keeps its own.
      args: this.immutable ? [...this.args] : [...args, ...this.args],
      ...(this.immutable ? { immutable: true } : {}),
      ...wireOptions(o),
      ...(this.links.length === 0 ? {} : { link: this.links.map((l) => l.toWire()) }),
      ...(this.errbacks.length === 0 ? {} : { linkError: this.errbacks.map((l) => l.toWire()) }),
    };
  }
}

/** `task.map(list)` / `task.starmap(list)`: one node applying the task over a list. */
export class MapSignature extends Canvas {
  readonly task: string;
  readonly items: readonly unknown[];
  readonly star: boolean;
  readonly options: CallOptions;

  constructor(task: string, items: readonly unknown[], star: boolean, options: CallOptions = {}) {
    super();
    this.task = task;
    this.items = items;
    this.star = star;
    this.options = options;
  }

  set(options: CallOptions): MapSignature {
    return new MapSignature(this.task, this.items, this.star, mergeOptions(this.options, options));
  }

  toWire(args: readonly unknown[] = [], options?: CallOptions): CanvasWire {
    if (args.length > 0)
      throw new RtlError(
        'RTL_ERR_BAD_PARAM',
        `${this.star ? 'starmap' : 'map'} of task "${this.task}" takes no call-time arguments (its list is its input); got ${String(args.length)}`,
        { task: this.task },
      );
    return {
      [this.star ? 'starmap' : 'map']: this.task,
      items: [...this.items],
      ...wireOptions(mergeOptions(this.options, options)),
    };
  }
}

/** Steps run one after another; each result is prepended to the next step's arguments. */
export class Chain extends Canvas {
  readonly steps: readonly Canvas[];
  constructor(steps: readonly Canvas[]) {
    super();
    if (steps.length === 0)
      throw new RtlError('RTL_ERR_BAD_DOCUMENT', 'chain() needs at least one step');
    this.steps = steps;
  }
  toWire(args: readonly unknown[] = [], options?: CallOptions): CanvasWire {
    return { chain: this.steps.map((s, i) => s.toWire(i === 0 ? args : [], options)) };
  }
}

/** Members run in parallel; the result is the list of their results, in member order. */
export class Group extends Canvas {
  readonly members: readonly Canvas[];
  constructor(members: readonly Canvas[]) {
    super();
    this.members = members;
  }
  toWire(args: readonly unknown[] = [], options?: CallOptions): CanvasWire {
    return { group: this.members.map((m) => m.toWire(args, options)) };
  }
}

/** A group whose list of results is the callback's first argument. */
export class Chord extends Canvas {
  readonly header: readonly Canvas[];
  readonly body: Canvas;
  constructor(header: readonly Canvas[], body: Canvas) {
    super();
    this.header = header;
    this.body = body;
  }
  toWire(args: readonly unknown[] = [], options?: CallOptions): CanvasWire {
    return {
      chord: this.header.map((m) => m.toWire(args, options)),
      body: this.body.toWire([], options),
    };
  }
}

/** A function task by name: the handle its signatures are made from. */
export interface TaskHandle {
  readonly name: string;
  /** A partial call: in a chain, the previous result is prepended as the first argument. */
  s(...args: unknown[]): Signature;
  /** An immutable call: the previous result is not passed. */
  si(...args: unknown[]): Signature;
  /** Call it now with these arguments. */
  delay(...args: unknown[]): AsyncResult;
  applyAsync(args?: readonly unknown[], opts?: ApplyOptions): AsyncResult;
  /** One node computing [task(x) for x in list]. */
  map(list: readonly unknown[]): MapSignature;
  /** One node computing [task(...a) for a in list]. */
  starmap(list: readonly (readonly unknown[])[]): MapSignature;
  /** A group of starmaps over `list` cut in chunks of `size` argument lists (the last may be shorter). */
  chunks(list: readonly (readonly unknown[])[], size: number): Group;
}

/** The handle of the function task `name` (bundled, deployed, or announced by a tasknode). */
export function task(name: string): TaskHandle {
  return {
    name,
    s: (...args) => new Signature(name, args),
    si: (...args) => new Signature(name, args, { immutable: true }),
    delay: (...args) => new Signature(name, args).applyAsync(),
    applyAsync: (args = [], opts = {}) => new Signature(name, args).applyAsync([], opts),
    map: (list) => new MapSignature(name, list, false),
    starmap: (list) => new MapSignature(name, list, true),
    chunks: (list, size) => {
      if (!Number.isSafeInteger(size) || size < 1)
        throw new RtlError(
          'RTL_ERR_BAD_PARAM',
          `chunks of task "${name}": the chunk size is ${String(size)}, expected an integer >= 1`,
          {
            task: name,
            param: 'n',
          },
        );
      const parts: MapSignature[] = [];
      for (let i = 0; i < list.length; i += size)
        parts.push(new MapSignature(name, list.slice(i, i + size), true));
      return new Group(parts);
    },
  };
}

/** Steps in order; `chain(a, b, c)`. A group step gets the previous result in every member. */
export function chain(...steps: Canvas[]): Chain {
  return new Chain(steps);
}

/** Parallel members; `group(a, b)` or `group([a, b])`. */
export function group(...members: (Canvas | readonly Canvas[])[]): Group {
  return new Group(members.flatMap((m) => (m instanceof Canvas ? [m] : [...m])));
}

/** `chord(header)(callback)` or `chord(header, callback)`: the header's list goes to the callback. */
export function chord(header: readonly Canvas[] | Group): (callback: Canvas) => Chord;
export function chord(header: readonly Canvas[] | Group, callback: Canvas): Chord;
export function chord(
  header: readonly Canvas[] | Group,
  callback?: Canvas,
): Chord | ((callback: Canvas) => Chord) {
  const members = header instanceof Group ? header.members : header;
  if (callback !== undefined) return new Chord(members, callback);
  return (cb: Canvas) => new Chord(members, cb);
}

/** A job's state at the relay, as a result handle reports it. */
export type ResultState = 'PENDING' | 'SUCCESS' | 'FAILURE' | 'CANCELLED' | 'UNKNOWN';

/** The handle `delay()` / `applyAsync()` returns (Celery's AsyncResult). */
export class AsyncResult<T = unknown> {
  readonly id: string;
  readonly #job: Job;
  readonly #client: Client;

  /** @internal */
  constructor(job: Job, client: Client) {
    this.id = job.id;
    this.#job = job;
    this.#client = client;
  }

  /**
   * The job's value: a number, a list (a group's, in member order), whatever the last task
   * returned; 0, false, null and [] come back as themselves. Rejects with an RtlError: a task
   * failed (naming the group member, its task, the remote message and stack), the job was
   * cancelled, or the wait timed out (naming the nodes still running).
   */
  get(opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    return this.#job._value(opts) as Promise<T>;
  }

  /** Whether this handle has the result (or the failure). */
  ready(): boolean {
    return this.#job.ready();
  }

  /** The relay's word on the job: PENDING (known, not finished), SUCCESS, FAILURE, CANCELLED, or UNKNOWN (no such job). */
  async state(opts: { timeoutMs?: number } = {}): Promise<ResultState> {
    const s = await this.#client.jobState(this.id, opts);
    return STATE[s] ?? 'UNKNOWN';
  }

  /** Progress events of the job's nodes until it ends (`stage.started`, `stage.completed`, ...). */
  events(): AsyncGenerator<JobEvent, void, undefined> {
    return this.#job.events();
  }

  /** Cancel the job: nodes not started never run; `get()` rejects with RTL_ERR_CANCELLED. */
  cancel(): Promise<void> {
    return this.#job.cancel();
  }
}

const STATE: Record<string, ResultState> = {
  PENDING: 'PENDING',
  DONE: 'SUCCESS',
  FAILED: 'FAILURE',
  CANCELLED: 'CANCELLED',
  UNKNOWN: 'UNKNOWN',
};

/** A result handle for a job id, submitted by this client or another: collects its result. */
export function asyncResult(
  id: string,
  opts: { client?: Client; timeoutMs?: number } = {},
): AsyncResult {
  const c = opts.client ?? defaultClient();
  return new AsyncResult(
    c.collect(id, opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
    c,
  );
}

let fallback: Client | undefined;
let chosen: Client | undefined;

/** The client `delay()` uses when none is given. */
export function setDefaultClient(client: Client | undefined): void {
  chosen = client;
}

/** The default client: the one set, else one made from the environment on first use. */
export function defaultClient(): Client {
  if (chosen !== undefined) return chosen;
  fallback ??= new Client();
  return fallback;
}

/** Close the client made from the environment, if one was made. */
export async function closeDefaultClient(): Promise<void> {
  const c = fallback;
  fallback = undefined;
  await c?.close();
}
