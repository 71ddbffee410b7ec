/**
 * The job graph (graph.ts) and the canvas wire form (canvas.ts): shapes written out by hand
 * for each canvas form, and every parse error naming its path.
 */
import { describe, expect, it } from 'vitest';
import type { RtlError } from '@rtl/core';
import {
  checkGraph,
  graphFromCanvas,
  graphFromSpec,
  parseCanvas,
  parseDocument,
  type FunctionCatalog,
  type JobGraph,
  type TaskCatalog,
} from '@rtl/core';

const FUNCTIONS = ['add', 'mul', 'sub', 'tsum', 'xsum'];
const catalog: FunctionCatalog = {
  resolve: (n) => (FUNCTIONS.includes(n) ? n : undefined),
  names: () => FUNCTIONS,
};
const tables: TaskCatalog = {
  resolve: (n) => (['null', 'task_null'].includes(n) ? { name: 'null' } : undefined),
  names: () => ['null'],
};

function compile(raw: unknown): JobGraph {
  return graphFromCanvas(parseCanvas(raw), catalog);
}

/** key, kind, inputs and after of each node, as keys. */
function shape(g: JobGraph): string[] {
  const k = (i: number): string => g.nodes[i]?.key ?? '?';
  return g.nodes.map(
    (n) =>
      `${n.key} ${n.kind}${n.tasks.length > 0 ? ` ${n.tasks.map((t) => t.task).join('+')}` : ''}` +
      (n.inputs.length > 0 ? ` <- ${n.inputs.map(k).join(',')}` : '') +
      (n.after.length > 0 ? ` after ${n.after.map(k).join(',')}` : '') +
      (n.trigger === 'error' ? ' on-error' : ''),
  );
}

const call = (name: string, ...args: unknown[]): Record<string, unknown> => ({ call: name, args });

describe('graphFromCanvas', () => {
  it('fuses a chain of plain calls into one stage, each call passing its result on', () => {
    const g = compile({ chain: [call('add', 4, 4), call('mul', 8), call('mul', 10)] });
    expect(shape(g)).toEqual(['chain[0-2] call add+mul+mul']);
    expect(g.nodes[0]?.tasks.map((t) => t.params)).toEqual([
      { args: [4, 4], pass: true },
      { args: [8], pass: true },
      { args: [10], pass: true },
    ]);
    expect(g.outputs).toEqual([0]);
  });

  it('keeps chain steps apart where their queues differ; .si does not take the result but waits', () => {
    const g = compile({
      chain: [
        call('add', 1, 1),
        { call: 'mul', args: [2], options: { queue: 'gpu' } },
        { call: 'add', args: [5, 5], immutable: true, options: { queue: 'gpu' } },
      ],
    });
    expect(shape(g)).toEqual(['chain[0] call add', 'chain[1-2] call mul+add <- chain[0]']);
    expect(g.nodes[1]?.route).toBe('gpu');
    expect(g.nodes[1]?.tasks[1]?.params).toEqual({ args: [5, 5], pass: false });
    const first = compile({
      chain: [
        { call: 'add', args: [1, 2], options: { queue: 'a' } },
        { call: 'add', args: [3, 4], immutable: true },
      ],
    });
    expect(shape(first)).toEqual(['chain[0] call add', 'chain[1] call add after chain[0]']);
  });

  it('a group is its members and a join; after a chain step every member takes the result', () => {
    const g = compile({ chain: [call('add', 1, 1), { group: [call('add', 2), call('mul', 3)] }] });
    expect(shape(g)).toEqual([
      'chain[0] call add',
      'chain[1].group[0] call add <- chain[0]',
      'chain[1].group[1] call mul <- chain[0]',
      'chain[1] join <- chain[1].group[0],chain[1].group[1]',
    ]);
    expect(g.nodes.map((n) => n.member)).toEqual([undefined, 0, 1, undefined]);
    expect(g.outputs).toEqual([3]);
  });

  it('a chord feeds its header list to the body; an empty header still waits for the step before', () => {
    expect(
      shape(compile({ chord: [call('add', 1, 1), call('add', 2, 2)], body: call('tsum') })),
    ).toEqual([
      'chord[0] call add',
      'chord[1] call add',
      'chord join <- chord[0],chord[1]',
      'body call tsum <- chord',
    ]);
    expect(
      shape(compile({ chain: [call('add', 1, 1), { chord: [], body: call('tsum') }] })),
    ).toEqual([
      'chain[0] call add',
      'chain[1] join after chain[0]',
      'chain[1].body call tsum <- chain[1]',
    ]);
  });

  it('map and starmap are one node each; links hang off their call, errbacks run on error only', () => {
    const g = compile({
      call: 'add',
      args: [1, 2],
      link: [call('mul', 10)],
      linkError: [{ chain: [call('tsum'), call('add', 1)] }],
    });
    expect(shape(g)).toEqual([
      'call call add',
      'link[0] call mul <- call',
      'linkError[0].chain[0-1] call tsum+add <- call on-error',
    ]);
    expect(g.nodes[0]?.onError).toEqual([2]);
    expect(shape(compile({ starmap: 'add', items: [[1, 2]] }))).toEqual(['call call add']);
    expect(compile({ map: 'xsum', items: [[1], [2]] }).nodes[0]?.tasks[0]?.params).toEqual({
      map: 'map',
      items: [[1], [2]],
    });
  });

  it('an unknown task names the path and the near name', () => {
    const err = (() => {
      try {
        compile({ group: [call('add', 1, 1), { chain: [call('mull', 2)] }] });
      } catch (e) {
        return e;
      }
      return undefined;
    })() as RtlError;
    expect(err.code).toBe('RTL_ERR_UNKNOWN_TASK');
    expect(err.message).toBe(
      'canvas group[1].chain[0]: unknown function task "mull"; did you mean "mul"? Function tasks that exist: add, mul, sub, tsum, xsum',
    );
  });
});

describe('parseCanvas errors name the path', () => {
  it.each([
    [{ chain: [] }, 'canvas.chain is empty, expected at least one step'],
    [{ call: 'add', args: 3 }, 'canvas.args is 3, expected a list of arguments'],
    [{ group: [{ call: '' }] }, 'canvas.group[0].call is "", expected a function task name'],
    [{ starmap: 'add', items: [[1, 2], 3] }, 'canvas.items[1] is 3, expected an argument list'],
    [{ chord: [call('add', 1, 1)] }, 'canvas.body is missing: a chord needs a callback'],
    [
      { call: 'add', options: { queue: 'q', retry: 2 } },
      'canvas.options.retry is not a key here; allowed: queue, retries, retryOnError, timeoutMs',
    ],
    [
      { call: 'add', options: { timeoutMs: 0 } },
      'canvas.options.timeoutMs is 0, expected milliseconds from 1 to 2147483647',
    ],
    [
      { task: 'add' },
      'canvas has none of the keys call, map, starmap, chain, group, chord; expected one of',
    ],
    [[1], 'canvas is an array of 1, expected one of'],
  ])('%j', (raw, message) => {
    expect(() => parseCanvas(raw)).toThrow(message);
    try {
      parseCanvas(raw);
    } catch (e) {
      expect((e as RtlError).code).toBe('RTL_ERR_BAD_DOCUMENT');
    }
  });

  it('refuses canvases nested deeper than 64', () => {
    let e: Record<string, unknown> = call('add', 1, 1);
    for (let i = 0; i < 70; i++) e = { chain: [e] };
    expect(() => parseCanvas(e)).toThrow(/nests deeper than 64 canvases/);
  });
});

describe('graphFromSpec', () => {
  it('after edges carry tables; stages nobody waits for are the outputs', () => {
    const doc = {
      '0': { tasks: { task_null: {} } },
      '1': { tasks: { task_null: {} } },
      '2': { tasks: { task_null: {} }, after: ['0'] },
      '3': { tasks: { task_null: {} }, after: [], split: { chunks: 4 } },
    };
    const g = graphFromSpec(parseDocument(doc, tables));
    expect(shape(g)).toEqual([
      '0 stage null',
      '1 stage null <- 0',
      '2 stage null <- 0',
      '3 stage null',
    ]);
    expect(g.outputs).toEqual([1, 2, 3]);
    expect(g.nodes[3]?.split).toBe(4);
  });

  it('checkGraph refuses an edge to a later node (a cycle) and duplicate keys', () => {
    const base = graphFromSpec(parseDocument({ '0': { tasks: { task_null: {} } } }, tables));
    const node = base.nodes[0];
    if (node === undefined) throw new Error('no node');
    expect(() => checkGraph({ ...base, nodes: [{ ...node, inputs: [0] }] })).toThrow(
      /does not come before it/,
    );
    expect(() => checkGraph({ ...base, nodes: [node, { ...node, index: 1 }] })).toThrow(
      /two nodes have the key "0"/,
    );
  });
});
