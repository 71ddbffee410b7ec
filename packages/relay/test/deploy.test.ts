/**
 * Deployed task modules end to end (docs/protocol.md §8, P-8.x): a real relay with a real LMDB
 * store, real tasknodes (worker threads), modules written to CACHE_PATH (a temp dir outside
 * the repository). Expected values come from plain loops in the test.
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Float64, Table, vectorFromArray } from 'apache-arrow';
import { Store } from '@rtl/core';
import { Relay } from '@rtl/relay';
import { Tasknode } from '@rtl/tasknode';
import { Client } from '@rtl/client';
import { createBundledRegistry, registerBundledFunctions } from '@rtl/tasks';
import { rng, testConfig, waitFor, whenPortsFree, world, type World } from './helpers.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * A module with a table task `scaleBy` (column = a * k + offset, null stays null) and a
 * function task `cube`; `offset` tells versions apart.
 */
function scaleModule(offset: number, extra = ''): string {
  return `import { defineTableTask, defineFunctionTask, p, ColumnSet, toFloat64, float64Data, andValidity } from '@rtl/tasks';
import { RtlError } from '@rtl/core';

export const scaleBy = defineTableTask({
  name: 'scaleBy',
  aliases: ['scale'],
  summary: 'column = a * k + ${String(offset)}',
  params: p.object({ a: p.column(), k: p.number(), column: p.string() }),
  run(table, { a, k, column }, ctx) {
    if (k === 0) throw new RtlError('RTL_ERR_BAD_PARAM', 'k must not be 0', { param: 'k' });
    const set = ColumnSet.fromTable(table);
    const chunks = set.numeric(a, 'a', ctx).map((d) => {
      const x = toFloat64(d);
      const out = new Float64Array(d.length);
      for (let i = 0; i < out.length; i++) out[i] = x[i] * k + ${String(offset)};
      return float64Data(out, andValidity(d.length, [d]));
    });
    set.setFloat64(column, chunks);
    return set.toTable();
  },
});

export const cube = defineFunctionTask({ name: 'cube', summary: 'x cubed', run: (x) => x ** 3 });

// Not made by defineTableTask: does not count.
export const lookalike = { kind: 'table', name: 'lookalike', aliases: [], summary: '', run: (t) => t };
${extra}`;
}

/** `n` rows of x: negatives, fractions, ints and about 1 in 10 null, in three batches. */
function input(n: number, seed: number): { table: Table; x: (number | null)[] } {
  const r = rng(seed);
  const x: (number | null)[] = [];
  for (let i = 0; i < n; i++)
    x.push(r() < 0.1 ? null : i % 3 === 0 ? Math.round((r() - 0.5) * 100) : (r() - 0.5) * 1e3);
  const third = Math.floor(n / 3);
  const parts = [x.slice(0, third), x.slice(third, 2 * third), x.slice(2 * third)];
  const batches = parts.flatMap(
    (part) => new Table({ x: vectorFromArray(part, new Float64()) }).batches,
  );
  return { table: new Table(batches), x };
}

/** The column `y` must be x * k + offset row by row, null where x is null. */
function expectScaled(out: Table, x: readonly (number | null)[], k: number, offset: number): void {
  const y = out.getChild('y');
  expect(y).not.toBeNull();
  expect(out.numRows).toBe(x.length);
  let bad = -1;
  for (let i = 0; i < x.length && bad < 0; i++) {
    const xi = x[i] ?? null;
    const want = xi === null ? null : xi * k + offset;
    if (y?.get(i) !== want) bad = i;
  }
  expect(bad, `first wrong row (x=${String(x[bad])}, got ${String(y?.get(bad))})`).toBe(-1);
}

const scaleDoc = (k: number, route?: string): Record<string, unknown> => ({
  '0': {
    tasks: { task_scale_by: { a: 'x', k, column: 'y' } },
    ...(route === undefined ? {} : { route }),
  },
});

async function deployed(w: World, source: string): Promise<Awaited<ReturnType<Client['deploy']>>> {
  return w.client.deploy({ name: 'scale', source });
}

describe('deploy to a running cluster', () => {
  it('runs a deployed table task on 3 tasknodes; v2 replaces v1 on each; a 4th node joining later runs v2', async () => {
    const w = await world(3);
    const { table, x } = input(30_000, 11);

    const v1 = await deployed(w, scaleModule(0));
    const source1 = scaleModule(0);
    expect(v1).toMatchObject({ name: 'scale', version: 1, unchanged: false, removed: [] });
    expect(v1.sha256).toBe(createHash('sha256').update(source1).digest('hex'));
    expect(v1.tasks).toEqual([
      { name: 'cube', kind: 'function', summary: 'x cubed', change: 'added' },
      { name: 'scaleBy', kind: 'table', summary: 'column = a * k + 0', change: 'added' },
    ]);
    expect(v1.nodes.map((n) => [n.node, n.ok])).toEqual([
      ['node-0', true],
      ['node-1', true],
      ['node-2', true],
    ]);

    // Every spelling names it; each node runs it.
    for (const [i, spelling] of ['task_scale_by', 'scaleBy', 'scale_by', 'task_scale'].entries()) {
      const doc = {
        '0': {
          tasks: { [spelling]: { a: 'x', k: 2.5, column: 'y' } },
          route: `node-${String(i % 3)}`,
        },
      };
      expectScaled(await w.client.execute(doc, { data: table }).result(), x, 2.5, 0);
    }

    const v2 = await deployed(w, scaleModule(-7));
    expect(v2).toMatchObject({ name: 'scale', version: 2, unchanged: false, removed: [] });
    expect(v2.tasks.map((t) => [t.name, t.change])).toEqual([
      ['cube', 'replaced'],
      ['scaleBy', 'replaced'],
    ]);
    expect(v2.nodes.every((n) => n.ok)).toBe(true);
    expect(w.relay.nodes().map((n) => n.modules)).toEqual([['scale@2'], ['scale@2'], ['scale@2']]);
    for (const node of ['node-0', 'node-1', 'node-2']) {
      const job = w.client.execute(scaleDoc(-3, node), { data: table });
      expectScaled(await job.result(), x, -3, -7);
      expect(job.stages[0]?.node).toBe(node);
    }

    // A tasknode that joins now gets scale@2 right after its HELLO, and runs it.
    await w.addNode();
    const late = w.client.execute(scaleDoc(4, 'node-3'), { data: table });
    expectScaled(await late.result(), x, 4, -7);
    expect(late.stages[0]?.node).toBe('node-3');
    expect(w.nodes[3]?.modules).toEqual(['scale@2']);

    // The module file lies in CACHE_PATH (a temp dir, outside the repository), and its
    // '@rtl/core' is the tasknode's own: the RtlError it throws keeps its code.
    const files = readdirSync(join(w.config.CACHE_PATH, 'modules')).filter((f) =>
      f.endsWith('.mjs'),
    );
    expect(files.sort()).toEqual([
      `scale@1.${v1.sha256.slice(0, 12)}.mjs`,
      `scale@2.${v2.sha256.slice(0, 12)}.mjs`,
    ]);
    expect(resolve(w.config.CACHE_PATH).startsWith(repo)).toBe(false);
    await expect(
      w.client.execute(scaleDoc(0, 'node-0'), { data: table }).result(),
    ).rejects.toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      message: 'stage "0", task "task_scale_by" failed on node-0: k must not be 0',
      detail: { stage: '0', task: 'task_scale_by', param: 'k' },
    });

    // The module's tasks are listed with their origin; the imitation export is not a task.
    const tasks = await w.client.tasks();
    expect(tasks.filter((t) => t.origin === 'scale@2').map((t) => [t.name, t.kind])).toEqual([
      ['cube', 'function'],
      ['scaleBy', 'table'],
    ]);
    expect(tasks.some((t) => t.name === 'lookalike')).toBe(false);
    expect(tasks.find((t) => t.name === 'add' && t.kind === 'table')?.origin).toBe('bundled');
    expect(tasks.find((t) => t.name === 'add' && t.kind === 'function')?.origin).toBe('bundled');
  });

  it('refuses a module that throws at import, one with a syntax error, and one exporting nothing; the previous version keeps working', async () => {
    const w = await world(2);
    const { table, x } = input(5000, 3);
    await deployed(w, scaleModule(1));

    const cases: [string, string, RegExp][] = [
      [
        'throws at import',
        `import { defineTableTask } from '@rtl/tasks';\nconst config = {};\nif (!config.path) throw new Error('calibration file not configured');\nexport const t = 1;\n`,
        /^module "scale" failed to load: Error: calibration file not configured at line 3, column \d+: if \(!config\.path\) throw/,
      ],
      [
        'a syntax error',
        `import { defineTableTask, p } from '@rtl/tasks';\nexport const broken = defineTableTask({ name: 'broken', summary: 'x', params: p.object({}), run(t) { return t; } ;\n`,
        /^module "scale" failed to load: SyntaxError: [^\n]+ at line 2, column \d+: export const broken/,
      ],
      [
        'no task exported',
        `export const answer = 42;\nexport function helper() { return 1; }\n`,
        /^module "scale" exports no task: export what defineTableTask\(\.\.\.\) or defineFunctionTask\(\.\.\.\) from '@rtl\/tasks' returns/,
      ],
      [
        'a missing import',
        `import { defineTableTask } from '@rtl/tasks';\nimport { chunk } from 'left-pad-nonexistent';\nexport const t = defineTableTask({ name: 't', summary: '', params: undefined, run: (x) => x });\n`,
        /^module "scale" failed to load: Error: Cannot find package 'left-pad-nonexistent' imported from scale\.mjs/,
      ],
      [
        'two tasks of one name',
        `import { defineTableTask, p } from '@rtl/tasks';\nexport const a = defineTableTask({ name: 'twin', summary: '', params: p.object({}), run: (t) => t });\nexport const b = defineTableTask({ name: 'twin', summary: '', params: p.object({}), run: (t) => t });\n`,
        /^module "scale": table task "twin" \(export b\) clashes with table task "twin" \(export a of this module\) over the name "twin"; rename it$/,
      ],
      [
        'a name taken by a bundled task',
        `import { defineTableTask, p } from '@rtl/tasks';\nexport const mine = defineTableTask({ name: 'average', summary: 'x', params: p.object({}), run: (t) => t });\n`,
        /^module "scale": table task "average" \(export mine\) clashes with table task "average" \(bundled\) over the name "average"; rename it$/,
      ],
    ];
    for (const [what, source, message] of cases) {
      const err: unknown = await deployed(w, source).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, what).toMatchObject({ code: 'RTL_ERR_BAD_MODULE', detail: { module: 'scale' } });
      expect((err as Error).message, what).toMatch(message);
    }
    // Nothing changed: version 1 everywhere, and it still computes a * k + 1.
    expect(w.relay.nodes().map((n) => n.modules)).toEqual([['scale@1'], ['scale@1']]);
    expectScaled(await w.client.execute(scaleDoc(3), { data: table }).result(), x, 3, 1);
    expect((await w.client.tasks()).find((t) => t.name === 'scaleBy')?.origin).toBe('scale@1');
    // The next good deploy is version 2: refused ones took no version.
    expect((await deployed(w, scaleModule(2))).version).toBe(2);
  });

  it('a stage that started on v1 finishes on v1; a stage submitted after the deploy runs v2', async () => {
    const w = await world(1);
    const slow = (
      tag: number,
    ): string => `import { defineTableTask, p, ColumnSet, float64Data, andValidity } from '@rtl/tasks';
export const tagged = defineTableTask({ name: 'tagged', summary: 'busy for ms, then writes ${String(tag)}', params: p.object({ ms: p.number() }),
  run(table, { ms }) {
    const end = Date.now() + ms; while (Date.now() < end) {}
    const set = ColumnSet.fromTable(table);
    set.setFloat64('tag', set.chunkLengths.map((n) => float64Data(new Float64Array(n).fill(${String(tag)}), andValidity(n, []))));
    return set.toTable();
  } });\n`;
    await w.client.deploy({ name: 'tagger', source: slow(1) });
    const doc = (ms: number): Record<string, unknown> => ({ '0': { tasks: { tagged: { ms } } } });
    const first = w.client.execute(doc(1500), { data: { x: [1, 2] } });
    await waitFor(() => w.relay.nodes()[0]?.running === 1, 10_000, 'the v1 stage to be dispatched');
    const v2 = await w.client.deploy({ name: 'tagger', source: slow(2) });
    expect(v2.version).toBe(2);
    const second = await w.client.execute(doc(0), { data: { x: [1, 2] } }).result();
    expect(Array.from((await first.result()).getChild('tag')?.toArray() as Float64Array)).toEqual([
      1, 1,
    ]);
    expect(Array.from(second.getChild('tag')?.toArray() as Float64Array)).toEqual([2, 2]);
  });
});

describe('table and function tasks have separate names', () => {
  it("a module's table task tsum runs in documents beside the bundled function task tsum", async () => {
    const config = testConfig();
    const relay = await Relay.start(config, {
      catalog: registerBundledFunctions(createBundledRegistry()),
    });
    onTestFinished(() => relay.close());
    const node = await Tasknode.start(config, {
      relay: relay.endpoints.send,
      name: 'n',
      threads: 1,
    });
    onTestFinished(() => node.close());
    const client = new Client({ relay: relay.endpoints.recv, store: false, timeoutMs: 20_000 });
    onTestFinished(() => client.close());
    const source = `import { defineTableTask, p, ColumnSet, toFloat64, float64Data, andValidity } from '@rtl/tasks';
export const tsum = defineTableTask({ name: 'tsum', summary: 'running sum of a', params: p.object({ a: p.column() }),
  run(table, { a }, ctx) {
    const set = ColumnSet.fromTable(table);
    let s = 0;
    set.setFloat64('total', set.numeric(a, 'a', ctx).map((d) => {
      const x = toFloat64(d); const out = new Float64Array(d.length);
      for (let i = 0; i < out.length; i++) { s += x[i]; out[i] = s; }
      return float64Data(out, andValidity(d.length, []));
    }));
    return set.toTable();
  } });
`;
    const r = await client.deploy({ name: 'running', source });
    expect(r.tasks).toEqual([
      { name: 'tsum', kind: 'table', summary: 'running sum of a', change: 'added' },
    ]);
    const x = [3, -1.5, 10, 0.25];
    const out = await client
      .execute({ '0': { tasks: { task_tsum: { a: 'x' } } } }, { data: { x } })
      .result();
    let s = 0;
    expect(Array.from(out.getChild('total')?.toArray() as Float64Array)).toEqual(
      x.map((v) => (s += v)),
    );
    const listed = (await client.tasks())
      .filter((t) => t.name === 'tsum')
      .map((t) => [t.kind, t.origin]);
    expect(listed).toEqual([
      ['table', 'running@1'],
      ['function', 'bundled'],
    ]);
    // A function task is no stage: the bundled mul is refused in a document.
    await expect(client.execute({ '0': { tasks: { mul: {} } } }).result()).rejects.toMatchObject({
      code: 'RTL_ERR_BAD_DOCUMENT',
    });
  });
});

describe('a relay restart keeps deployed modules', () => {
  it('a restarted relay on the same store still has scale@2; a new tasknode gets it, and an old one reconnects with it', async () => {
    const config = testConfig();
    const store = Store.open({ path: config.CACHE_PATH, mapSize: config.CACHE_MAP_SIZE });
    onTestFinished(() => store.close());
    const closers: (() => Promise<void>)[] = [];
    onTestFinished(async () => {
      for (const close of closers.reverse()) await close();
    });
    const relay1 = await Relay.start(config, { catalog: createBundledRegistry(), store });
    closers.push(() => relay1.close());
    const old = await Tasknode.start(config, {
      relay: relay1.endpoints.send,
      name: 'old',
      threads: 1,
    });
    closers.push(() => old.close());
    const client1 = new Client({ relay: relay1.endpoints.recv, store: false, timeoutMs: 20_000 });
    closers.push(() => client1.close());
    await waitFor(() => relay1.nodes().length === 1);
    await client1.deploy({ name: 'scale', source: scaleModule(5) });
    const v2 = await client1.deploy({ name: 'scale', source: scaleModule(6) });
    expect(v2.version).toBe(2);
    await client1.close();
    await relay1.close();

    // The same ports, so the old tasknode finds the new relay (it reconnects once the old one is silent).
    const port = (e: string): number => Number(/:(\d+)$/.exec(e)?.[1]);
    const again = {
      ...config,
      RELAY_RECV: port(relay1.endpoints.recv),
      RELAY_SEND: port(relay1.endpoints.send),
      RELAY_PUBLISHER: port(relay1.endpoints.publish),
    };
    const relay2 = await whenPortsFree(() =>
      Relay.start(again, { catalog: createBundledRegistry(), store }),
    );
    closers.push(() => relay2.close());
    const client2 = new Client({ relay: relay2.endpoints.recv, store: false, timeoutMs: 20_000 });
    closers.push(() => client2.close());
    expect((await client2.tasks()).find((t) => t.name === 'scaleBy')?.origin).toBe('scale@2');

    const fresh = await Tasknode.start(config, {
      relay: relay2.endpoints.send,
      name: 'fresh',
      threads: 1,
    });
    closers.push(() => fresh.close());
    const { table, x } = input(2000, 5);
    for (const node of ['fresh', 'old']) {
      const job = client2.execute(scaleDoc(2, node), { data: table });
      expectScaled(await job.result(), x, 2, 6);
      expect(job.stages[0]?.node).toBe(node);
    }
    expect(
      relay2
        .nodes()
        .map((n) => [n.name, n.modules])
        .sort(),
    ).toEqual([
      ['fresh', ['scale@2']],
      ['old', ['scale@2']],
    ]);
    // Deploying the same source again changes nothing.
    const same = await client2.deploy({ name: 'scale', source: scaleModule(6) });
    expect(same).toMatchObject({ version: 2, unchanged: true });
    expect(same.nodes.map((n) => n.ok)).toEqual([true, true]);
  });
});
