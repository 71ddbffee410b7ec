/**
 * Canvas expressions on the wire (SUBMIT.canvas): Celery-style compositions of function-task
 * calls. The client builds them (`chain(add.s(4, 4), mul.s(8))`); the relay parses them here
 * and compiles them into a JobGraph (graph.ts). A CBOR map, one of:
 *
 * ```
 * { call: 'add', args: [4, 4], immutable?: true, options?: { queue, retries, retryOnError, timeoutMs },
 *   link?: [expr, ...], linkError?: [expr, ...] }
 * { map: 'xsum', items: [[0, 1], [2, 3]], options? }       // [xsum([0,1]), xsum([2,3])]
 * { starmap: 'add', items: [[1, 1], [2, 2]], options? }    // [add(1,1), add(2,2)]
 * { chain: [expr, ...] }     // each result is prepended to the next call's arguments
 * { group: [expr, ...] }     // a list of the members' results, in member order
 * { chord: [expr, ...], body: expr }   // the header's list is the body's first argument
 * ```
 * Gotcha: `chunks` is not a wire form; the client sends it as a group of starmaps.
 */
import { RtlError, describeValue } from './errors.js';
import { MAX_TIMEOUT_MS } from './dsdsl.js';

/** Per-call options, as Celery's apply_async options. */
export interface CallOptions {
  /** Run only on a tasknode serving this queue, or of this name. */
  readonly queue?: string;
  /** Re-sends when the tasknode dies (default 3). A task that throws is not retried. */
  readonly retries?: number;
  /** Retry a task that throws too (up to `retries`). */
  readonly retryOnError?: boolean;
  /** Fail the job when the call has not answered this long after it was sent. */
  readonly timeoutMs?: number;
}

export interface CallExpr {
  readonly call: string;
  readonly args: readonly unknown[];
  /** `.si()`: the previous result is not prepended. */
  readonly immutable: boolean;
  readonly options: CallOptions;
  /** Run with this call's result once it succeeds; their results are not the job's. */
  readonly link: readonly CanvasExpr[];
  /** Run with the error (`{ code, message, task, node, stage }`) when this call fails for good. */
  readonly linkError: readonly CanvasExpr[];
}

export interface MapExpr {
  readonly map: string;
  /** `starmap`: each item is an argument list. */
  readonly star: boolean;
  readonly items: readonly unknown[];
  readonly options: CallOptions;
  readonly link: readonly CanvasExpr[];
  readonly linkError: readonly CanvasExpr[];
}

export interface ChainExpr {
  readonly chain: readonly CanvasExpr[];
}
export interface GroupExpr {
  readonly group: readonly CanvasExpr[];
}
export interface ChordExpr {
  readonly chord: readonly CanvasExpr[];
  readonly body: CanvasExpr;
}

export type CanvasExpr = CallExpr | MapExpr | ChainExpr | GroupExpr | ChordExpr;

/** The shapes a canvas expression may take, for error messages. */
const SHAPES =
  '{ call, args }, { map, items }, { starmap, items }, { chain: [...] }, { group: [...] } or { chord: [...], body }';
const CALL_KEYS = new Set(['call', 'args', 'immutable', 'options', 'link', 'linkError']);
const MAP_KEYS = new Set(['map', 'starmap', 'items', 'options', 'link', 'linkError']);
const OPTION_KEYS = new Set(['queue', 'retries', 'retryOnError', 'timeoutMs']);
/** Nesting of canvases (a chain in a group in a chord ...), far above any real use. */
const MAX_NESTING = 64;

/** Parse and check a canvas expression from the wire. Throws RTL_ERR_BAD_DOCUMENT naming the path. */
export function parseCanvas(raw: unknown, path = 'canvas'): CanvasExpr {
  return parseAt(raw, path, 0);
}

function parseAt(raw: unknown, path: string, depth: number): CanvasExpr {
  if (depth > MAX_NESTING)
    throw bad(path, `nests deeper than ${String(MAX_NESTING)} canvases`, raw);
  if (!isMap(raw)) throw bad(path, `is ${describeValue(raw)}, expected one of ${SHAPES}`, raw);
  if ('call' in raw) {
    checkKeys(raw, CALL_KEYS, path);
    const name = taskName(raw.call, `${path}.call`);
    if (raw.args !== undefined && !Array.isArray(raw.args))
      throw bad(
        `${path}.args`,
        `is ${describeValue(raw.args)}, expected a list of arguments`,
        raw.args,
      );
    if (raw.immutable !== undefined && typeof raw.immutable !== 'boolean')
      throw bad(
        `${path}.immutable`,
        `is ${describeValue(raw.immutable)}, expected true or false`,
        raw.immutable,
      );
    return {
      call: name,
      args: (raw.args as unknown[] | undefined) ?? [],
      immutable: raw.immutable === true,
      options: parseOptions(raw.options, `${path}.options`),
      link: parseList(raw.link, `${path}.link`, depth, true),
      linkError: parseList(raw.linkError, `${path}.linkError`, depth, true),
    };
  }
  if ('map' in raw || 'starmap' in raw) {
    checkKeys(raw, MAP_KEYS, path);
    const star = 'starmap' in raw;
    const name = taskName(star ? raw.starmap : raw.map, `${path}.${star ? 'starmap' : 'map'}`);
    if (!Array.isArray(raw.items))
      throw bad(`${path}.items`, `is ${describeValue(raw.items)}, expected a list`, raw.items);
    if (star)
      raw.items.forEach((a: unknown, i: number) => {
        if (!Array.isArray(a))
          throw bad(
            `${path}.items[${String(i)}]`,
            `is ${describeValue(a)}, expected an argument list`,
            a,
          );
      });
    return {
      map: name,
      star,
      items: raw.items as unknown[],
      options: parseOptions(raw.options, `${path}.options`),
      link: parseList(raw.link, `${path}.link`, depth, true),
      linkError: parseList(raw.linkError, `${path}.linkError`, depth, true),
    };
  }
  if ('chain' in raw) {
    checkKeys(raw, new Set(['chain']), path);
    const steps = parseList(raw.chain, `${path}.chain`, depth, false);
    if (steps.length === 0)
      throw bad(`${path}.chain`, 'is empty, expected at least one step', raw.chain);
    return { chain: steps };
  }
  if ('group' in raw) {
    checkKeys(raw, new Set(['group']), path);
    return { group: parseList(raw.group, `${path}.group`, depth, false) };
  }
  if ('chord' in raw) {
    checkKeys(raw, new Set(['chord', 'body']), path);
    if (raw.body === undefined)
      throw bad(`${path}.body`, 'is missing: a chord needs a callback', raw);
    return {
      chord: parseList(raw.chord, `${path}.chord`, depth, false),
      body: parseAt(raw.body, `${path}.body`, depth + 1),
    };
  }
  throw bad(
    path,
    `has none of the keys call, map, starmap, chain, group, chord; expected one of ${SHAPES}`,
    raw,
  );
}

function parseList(raw: unknown, path: string, depth: number, optional: boolean): CanvasExpr[] {
  if (raw === undefined && optional) return [];
  if (!Array.isArray(raw))
    throw bad(path, `is ${describeValue(raw)}, expected a list of canvases`, raw);
  return raw.map((e: unknown, i: number) => parseAt(e, `${path}[${String(i)}]`, depth + 1));
}

function parseOptions(raw: unknown, path: string): CallOptions {
  if (raw === undefined) return {};
  if (!isMap(raw))
    throw bad(
      path,
      `is ${describeValue(raw)}, expected { queue?, retries?, retryOnError?, timeoutMs? }`,
      raw,
    );
  checkKeys(raw, OPTION_KEYS, path);
  const out: { queue?: string; retries?: number; retryOnError?: boolean; timeoutMs?: number } = {};
  if (raw.queue !== undefined) {
    if (typeof raw.queue !== 'string' || raw.queue === '')
      throw bad(
        `${path}.queue`,
        `is ${describeValue(raw.queue)}, expected a queue or tasknode name`,
        raw.queue,
      );
    out.queue = raw.queue;
  }
  if (raw.retries !== undefined) {
    if (!Number.isSafeInteger(raw.retries) || (raw.retries as number) < 0)
      throw bad(
        `${path}.retries`,
        `is ${describeValue(raw.retries)}, expected an integer >= 0`,
        raw.retries,
      );
    out.retries = raw.retries as number;
  }
  if (raw.retryOnError !== undefined) {
    if (typeof raw.retryOnError !== 'boolean')
      throw bad(
        `${path}.retryOnError`,
        `is ${describeValue(raw.retryOnError)}, expected true or false`,
        raw.retryOnError,
      );
    if (raw.retryOnError) out.retryOnError = true;
  }
  if (raw.timeoutMs !== undefined) {
    const t = raw.timeoutMs;
    if (typeof t !== 'number' || !(t > 0) || t > MAX_TIMEOUT_MS)
      throw bad(
        `${path}.timeoutMs`,
        `is ${describeValue(t)}, expected milliseconds from 1 to ${String(MAX_TIMEOUT_MS)}`,
        t,
      );
    out.timeoutMs = t;
  }
  return out;
}

function taskName(raw: unknown, path: string): string {
  if (typeof raw !== 'string' || raw === '')
    throw bad(path, `is ${describeValue(raw)}, expected a function task name`, raw);
  return raw;
}

function checkKeys(raw: Record<string, unknown>, allowed: ReadonlySet<string>, path: string): void {
  for (const k of Object.keys(raw))
    if (!allowed.has(k))
      throw bad(`${path}.${k}`, `is not a key here; allowed: ${[...allowed].join(', ')}`, raw[k]);
}

function bad(path: string, problem: string, got: unknown): RtlError {
  return new RtlError('RTL_ERR_BAD_DOCUMENT', `${path} ${problem}`, {
    param: path,
    got: describeValue(got),
  });
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}
