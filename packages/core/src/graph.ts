/**
 * One job graph for DSDSL documents and canvas expressions (DESIGN section 5). Nodes are
 * stages: a bundle of task calls that run together on one tasknode ('stage' for table tasks,
 * 'call' for function tasks), or a 'join' that the relay itself evaluates (a group's list).
 * Edges carry results: `inputs` are data edges in order, `after` are ordering-only edges.
 *
 * ```ts
 * const g = graphFromCanvas(parseCanvas(msg.canvas), resolveFunction);
 * g.nodes.map((n) => n.key); // ['chain[0-2]'] for chain(add.s(4, 4), mul.s(8), mul.s(10))
 * ```
 * Gotcha: nodes are created in a topological order (every edge points to an earlier node),
 * which `checkGraph` asserts; the relay relies on it.
 */
import { RtlError } from './errors.js';
import type { CallOptions, CanvasExpr } from './canvas.js';
import type { JobSpec } from './dsdsl.js';
import { DEFAULT_STAGE_RETRIES } from './dsdsl.js';
import type { TaskCallWire } from './protocol.js';
import { closest } from './suggest.js';

/** What a function call (STAGE.kind 'function') carries in TaskCallWire.params. [P-6.6] */
export interface FunctionCallParams {
  /** Arguments after the prepended value. */
  readonly args?: readonly unknown[];
  /** Prepend the value before this call (the input, or the previous call's result). */
  readonly pass?: boolean;
  /** Apply the task over `items`: `map` calls task(item), `starmap` calls task(...item). */
  readonly map?: 'map' | 'starmap';
  readonly items?: readonly unknown[];
}

export interface GraphNode {
  readonly index: number;
  /** Unique in the job: a DSDSL stage key, or a canvas path such as `chord[3]` or `chain[0-2]`. */
  readonly key: string;
  readonly kind: 'stage' | 'call' | 'join';
  /** Table task calls ('stage') or function calls with FunctionCallParams ('call'); [] for a join. */
  readonly tasks: readonly TaskCallWire[];
  /** Data inputs, in order (indexes of earlier nodes). */
  readonly inputs: readonly number[];
  /** Ordering-only dependencies. */
  readonly after: readonly number[];
  readonly route?: string;
  readonly retries: number;
  /** Retry when a task throws, too (by default only a lost tasknode is retried). */
  readonly retryOnError?: boolean;
  readonly timeoutMs?: number;
  /** Cut the input into this many row ranges ('stage' only). */
  readonly split?: number;
  /** Errback entry nodes: run (with the error) when this node fails for good. */
  readonly onError: readonly number[];
  /** 'error': an errback entry; it runs only when its input failed, and gets the error as its value. */
  readonly trigger: 'ok' | 'error';
  /** Where the node sits, for messages: `group member 3`, `chord header member 0`, `link of chain[1]`. */
  readonly where?: string;
  /** Index of the group member it belongs to (innermost group or chord header). */
  readonly member?: number;
}

export interface JobGraph {
  /** 'table': Arrow tables flow (DSDSL); 'value': CBOR values flow (canvas). */
  readonly kind: 'table' | 'value';
  readonly nodes: readonly GraphNode[];
  /** Nodes whose values make the job's result (one for a canvas; the sinks for a document, merged). */
  readonly outputs: readonly number[];
}

/** A document's stages as a graph: `after` edges carry the tables; sinks make the result. */
export function graphFromSpec(spec: JobSpec): JobGraph {
  const index = new Map<string, number>();
  const consumed = new Set<number>();
  const nodes = spec.stages.map((s, i): GraphNode => {
    index.set(s.key, i);
    const inputs = s.after.map((k) => index.get(k) as number);
    for (const n of inputs) consumed.add(n);
    return {
      index: i,
      key: s.key,
      kind: 'stage',
      tasks: s.tasks.map((c) => ({ task: c.task, as: c.as, params: c.params })),
      inputs,
      after: [],
      ...(s.route === undefined ? {} : { route: s.route }),
      retries: s.retries,
      ...(s.retryOnError === true ? { retryOnError: true } : {}),
      ...(s.timeoutMs === undefined ? {} : { timeoutMs: s.timeoutMs }),
      ...(s.split === undefined || s.split.chunks <= 1 ? {} : { split: s.split.chunks }),
      onError: [],
      trigger: 'ok',
    };
  });
  const outputs = nodes.filter((n) => !consumed.has(n.index)).map((n) => n.index);
  const graph: JobGraph = { kind: 'table', nodes, outputs };
  checkGraph(graph);
  return graph;
}

/** Resolves a function task spelling to its canonical name. */
export interface FunctionCatalog {
  resolve(name: string): string | undefined;
  names(): readonly string[];
}

interface Builder {
  readonly nodes: Mutable[];
  readonly catalog: FunctionCatalog;
}
type Mutable = { -readonly [K in keyof GraphNode]: GraphNode[K] } & { tasks: TaskCallWire[] };
interface Ctx {
  readonly path: string;
  readonly where?: string;
  readonly member?: number;
}

/**
 * Compile a parsed canvas expression. Throws RTL_ERR_UNKNOWN_TASK naming the path of a call
 * whose task no tasknode, module or bundle has.
 */
export function graphFromCanvas(expr: CanvasExpr, catalog: FunctionCatalog): JobGraph {
  const b: Builder = { nodes: [], catalog };
  const out = compile(b, expr, undefined, { path: '' });
  const graph: JobGraph = { kind: 'value', nodes: b.nodes, outputs: [out] };
  checkGraph(graph);
  return graph;
}

function child(ctx: Ctx, part: string): Ctx {
  return { ...ctx, path: ctx.path === '' ? part : `${ctx.path}.${part}` };
}

function compile(b: Builder, e: CanvasExpr, input: number | undefined, ctx: Ctx): number {
  if ('call' in e) {
    const n = addNode(b, ctx, 'call', e.options, {
      inputs: input !== undefined && !e.immutable ? [input] : [],
      after: input !== undefined && e.immutable ? [input] : [],
    });
    n.tasks.push(fnCall(b, e.call, ctx, { args: e.args, pass: !e.immutable }));
    callbacks(b, n, e, ctx);
    return n.index;
  }
  if ('map' in e) {
    const n = addNode(b, ctx, 'call', e.options, {
      inputs: [],
      after: input === undefined ? [] : [input],
    });
    n.tasks.push(fnCall(b, e.map, ctx, { map: e.star ? 'starmap' : 'map', items: e.items }));
    callbacks(b, n, e, ctx);
    return n.index;
  }
  if ('chain' in e) {
    let cur = input;
    let fusable: Mutable | undefined;
    e.chain.forEach((step, i) => {
      const c = child(ctx, `chain[${String(i)}]`);
      // Consecutive plain calls with the same options run as one stage on one tasknode:
      // the same result as separate stages, one round trip instead of many.
      if (
        fusable !== undefined &&
        'call' in step &&
        plain(step) &&
        sameOptions(fusable, step.options)
      ) {
        fusable.tasks.push(fnCall(b, step.call, c, { args: step.args, pass: !step.immutable }));
        fusable.key = fusedKey(fusable.key, i);
        return;
      }
      cur = compile(b, step, cur, c);
      const made = b.nodes[cur];
      fusable = 'call' in step && plain(step) && made?.kind === 'call' ? made : undefined;
    });
    return cur as number;
  }
  if ('group' in e) return group(b, e.group, input, ctx, 'group', 'group member');
  const header = group(b, e.chord, input, ctx, 'chord', 'chord header member');
  return compile(b, e.body, header, child(ctx, 'body'));
}

function group(
  b: Builder,
  members: readonly CanvasExpr[],
  input: number | undefined,
  ctx: Ctx,
  part: string,
  label: string,
): number {
  const outs = members.map((m, i) =>
    compile(b, m, input, {
      ...child(ctx, `${part}[${String(i)}]`),
      where: `${label} ${String(i)}`,
      member: i,
    }),
  );
  const join = addNode(
    b,
    { ...ctx, path: ctx.path === '' ? part : ctx.path },
    'join',
    {},
    {
      inputs: outs,
      // An empty group still waits for the step before it.
      after: outs.length === 0 && input !== undefined ? [input] : [],
    },
  );
  return join.index;
}

function callbacks(
  b: Builder,
  n: Mutable,
  e: { link: readonly CanvasExpr[]; linkError: readonly CanvasExpr[] },
  ctx: Ctx,
): void {
  e.link.forEach((l, i) => {
    compile(b, l, n.index, {
      ...child(ctx, `link[${String(i)}]`),
      where: `link ${String(i)} of ${n.key}`,
    });
  });
  e.linkError.forEach((l, i) => {
    const first = b.nodes.length;
    compile(b, l, n.index, {
      ...child(ctx, `linkError[${String(i)}]`),
      where: `linkError ${String(i)} of ${n.key}`,
    });
    for (let k = first; k < b.nodes.length; k++) {
      const m = b.nodes[k] as Mutable;
      if (m.inputs.includes(n.index) || m.after.includes(n.index)) {
        m.trigger = 'error';
        n.onError = [...n.onError, k];
      }
    }
  });
}

function addNode(
  b: Builder,
  ctx: Ctx,
  kind: 'call' | 'join',
  options: CallOptions,
  edges: { inputs: number[]; after: number[] },
): Mutable {
  const n: Mutable = {
    index: b.nodes.length,
    key: ctx.path === '' ? kind : ctx.path,
    kind,
    tasks: [],
    inputs: edges.inputs,
    after: edges.after,
    retries: options.retries ?? DEFAULT_STAGE_RETRIES,
    onError: [],
    trigger: 'ok',
  };
  if (options.queue !== undefined) n.route = options.queue;
  if (options.timeoutMs !== undefined) n.timeoutMs = options.timeoutMs;
  if (options.retryOnError === true) n.retryOnError = true;
  if (ctx.where !== undefined) n.where = ctx.where;
  if (ctx.member !== undefined) n.member = ctx.member;
  b.nodes.push(n);
  return n;
}

function fnCall(b: Builder, name: string, ctx: Ctx, params: FunctionCallParams): TaskCallWire {
  const task = b.catalog.resolve(name);
  if (task === undefined) {
    const names = b.catalog.names();
    const near = closest(name, names);
    throw new RtlError(
      'RTL_ERR_UNKNOWN_TASK',
      `canvas ${ctx.path === '' ? 'call' : ctx.path}: unknown function task "${name}"${near === undefined ? '.' : `; did you mean "${near}"?`} Function tasks that exist: ${names.join(', ')}`,
      { stage: ctx.path === '' ? 'call' : ctx.path, task: name, known: [...names] },
    );
  }
  return { task, as: name, params: params as Record<string, unknown> };
}

function plain(e: { link: readonly unknown[]; linkError: readonly unknown[] }): boolean {
  return e.link.length === 0 && e.linkError.length === 0;
}

function sameOptions(n: Mutable, o: CallOptions): boolean {
  return (
    n.onError.length === 0 &&
    n.route === o.queue &&
    n.retries === (o.retries ?? DEFAULT_STAGE_RETRIES) &&
    n.retryOnError === (o.retryOnError === true ? true : undefined) &&
    n.timeoutMs === o.timeoutMs
  );
}

/** `chain[0]` + step 2 → `chain[0-2]`; `a.chain[3-4]` + 5 → `a.chain[3-5]`. */
function fusedKey(key: string, step: number): string {
  const m = /^(.*\[)(\d+)(?:-\d+)?\]$/.exec(key);
  return m === null ? key : `${m[1] ?? ''}${m[2] ?? ''}-${String(step)}]`;
}

/** Assert the graph's shape: edges point to earlier nodes (so it has no cycle), keys are unique. */
export function checkGraph(g: JobGraph): void {
  const keys = new Set<string>();
  for (const n of g.nodes) {
    if (keys.has(n.key))
      throw new RtlError('RTL_ERR_INTERNAL', `job graph: two nodes have the key "${n.key}"`, {
        stage: n.key,
      });
    keys.add(n.key);
    for (const d of [...n.inputs, ...n.after, ...n.onError])
      if (!(d >= 0 && d < g.nodes.length) || (d >= n.index && !n.onError.includes(d)))
        throw new RtlError(
          'RTL_ERR_CYCLE',
          `job graph: node "${n.key}" depends on node ${String(d)}, which does not come before it`,
          { stage: n.key },
        );
  }
  for (const o of g.outputs)
    if (!(o >= 0 && o < g.nodes.length))
      throw new RtlError('RTL_ERR_INTERNAL', `job graph: output ${String(o)} is not a node`);
}
