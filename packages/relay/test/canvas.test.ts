/**
 * The canvas end to end (DESIGN sections 5 and 8): a real relay, real tasknodes (worker
 * threads), and function tasks from a module deployed in the test. Expected values come from
 * plain loops in the test; side effects of link / linkError callbacks are observed through a
 * file the `record` task appends to.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RtlError } from '@rtl/core';
import {
  Client,
  asyncResult,
  chain,
  chord,
  group,
  setDefaultClient,
  task,
  type ApplyOptions,
  type AsyncResult,
  type JobEvent,
} from '@rtl/client';
import { tempDir, waitFor, world, type World } from './helpers.js';

/** Function tasks of the deployed module (bundled add/mul/... exist, so these have other names). */
const MODULE = `import { appendFileSync } from 'node:fs';
import { defineFunctionTask } from '@rtl/tasks';

const sum = (list) => {
  let s = 0;
  for (const x of list) s += x;
  return s;
};

export const dadd = defineFunctionTask({ name: 'dadd', summary: 'a + b', run: (a, b) => a + b });
export const dmul = defineFunctionTask({ name: 'dmul', summary: 'a * b', run: (a, b) => a * b });
export const dsub = defineFunctionTask({ name: 'dsub', summary: 'a - b', run: (a, b) => a - b });
export const dtsum = defineFunctionTask({ name: 'dtsum', summary: 'sum of a list', run: sum });
export const dxsum = defineFunctionTask({ name: 'dxsum', summary: 'sum of a list', run: sum });
export const ident = defineFunctionTask({ name: 'ident', summary: 'x', run: (x) => x });
export const boom = defineFunctionTask({
  name: 'boom',
  summary: 'throws',
  run: (why) => {
    throw new Error('boom went the task: ' + String(why));
  },
});
export const slow = defineFunctionTask({
  name: 'slow',
  summary: 'waits ms, then returns value (or ms)',
  run: async (ms, value) => {
    await new Promise((r) => setTimeout(r, ms));
    return value === undefined ? ms : value;
  },
});
// record(...args, path): appends args (without the path) as a JSON line to path.
export const record = defineFunctionTask({
  name: 'record',
  summary: 'append the arguments to a file',
  run: (...args) => {
    const path = args[args.length - 1];
    appendFileSync(path, JSON.stringify(args.slice(0, -1)) + '\\n');
    return args.length - 1;
  },
});
`;

const dadd = task('dadd');
const dmul = task('dmul');
const dsub = task('dsub');
const dtsum = task('dtsum');
const dxsum = task('dxsum');
const ident = task('ident');
const boom = task('boom');
const slow = task('slow');
const record = task('record');

/** A world with `n` tasknodes and the module deployed on each. */
async function cluster(n = 3): Promise<World> {
  const w = await world(n);
  const d = await w.client.deploy({ name: 'canvas', source: MODULE });
  expect(d.nodes.every((x) => x.ok)).toBe(true);
  return w;
}

const on = (w: World, extra: ApplyOptions = {}): ApplyOptions => ({ client: w.client, ...extra });

function range(n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(i);
  return out;
}

/** The rejection of a promise, as an RtlError. */
async function failure(p: Promise<unknown>): Promise<RtlError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RtlError);
    return err as RtlError;
  }
  throw new Error('expected a rejection, got a value');
}

/** Live events of a result, as they come (`seen`) and once the job ended (`ended`). */
interface Watch {
  readonly seen: JobEvent[];
  readonly ended: Promise<JobEvent[]>;
}

/** Watch a result's events; call right after applyAsync so the submit asks for live events. */
function liveEvents(r: AsyncResult): Watch {
  const seen: JobEvent[] = [];
  const ended = (async () => {
    for await (const e of r.events()) seen.push(e);
    return seen;
  })();
  return { seen, ended };
}

/** The JSON lines `record` wrote to `path` ([] when it never ran). */
function recorded(path: string): unknown[][] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown[]);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('canvas: the primitives', () => {
  it('chain, group, chord, map, starmap and chunks of deployed function tasks', async () => {
    const w = await cluster(3);

    expect(await chain(dadd.s(4, 4), dmul.s(8), dmul.s(10)).applyAsync([], on(w)).get()).toBe(
      (4 + 4) * 8 * 10,
    );
    expect(await group(dadd.s(2, 2), dadd.s(4, 4)).applyAsync([], on(w)).get()).toEqual([4, 8]);

    let chordWant = 0;
    for (let i = 0; i < 10; i++) chordWant += i + i;
    const header = range(10).map((i) => dadd.s(i, i));
    expect(await chord(header)(dtsum.s()).applyAsync([], on(w)).get()).toBe(chordWant);
    expect(chordWant).toBe(90);

    let s10 = 0;
    let s100 = 0;
    for (let i = 0; i < 10; i++) s10 += i;
    for (let i = 0; i < 100; i++) s100 += i;
    expect(
      await dxsum
        .map([range(10), range(100)])
        .applyAsync([], on(w))
        .get(),
    ).toEqual([s10, s100]);

    const pairs10 = range(10).map((i) => [i, i]);
    const starWant = pairs10.map(([a, b]) => (a as number) + (b as number));
    expect(await dadd.starmap(pairs10).applyAsync([], on(w)).get()).toEqual(starWant);

    const pairs100 = range(100).map((i) => [i, i]);
    const chunksWant: number[][] = [];
    for (let c = 0; c < 100; c += 10) {
      const part: number[] = [];
      for (let i = c; i < c + 10; i++) part.push(i + i);
      chunksWant.push(part);
    }
    const chunks = (await dadd.chunks(pairs100, 10).applyAsync([], on(w)).get()) as number[][];
    expect(chunks).toEqual(chunksWant);
    expect(chunks).toHaveLength(10);
    expect(chunks[0]).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    expect(chunks[9]).toEqual([180, 182, 184, 186, 188, 190, 192, 194, 196, 198]);
  });
});

describe('canvas: Celery semantics', () => {
  it('the previous result goes first; .si() ignores it; call-time args go first; call-time options win', async () => {
    const w = await cluster(2);

    // sub(sub(10, 3), 2) = (10 - 3) - 2
    expect(await chain(dsub.s(10, 3), dsub.s(2)).applyAsync([], on(w)).get()).toBe(10 - 3 - 2);
    // Not fused (different options): the relay passes the value along the edge.
    expect(
      await chain(dsub.s(10, 3), dsub.s(2).set({ retries: 1 }))
        .applyAsync([], on(w))
        .get(),
    ).toBe(10 - 3 - 2);
    // .si(): the previous result is not passed, fused or not.
    expect(await chain(dadd.s(1, 1), dmul.si(3, 4)).applyAsync([], on(w)).get()).toBe(12);
    expect(
      await chain(dadd.s(1, 1), dmul.si(3, 4).set({ retries: 1 }))
        .applyAsync([], on(w))
        .get(),
    ).toBe(12);

    // Call-time arguments go before the partial's own: dsub(10, 2).
    expect(await dsub.s(2).applyAsync([10], on(w)).get()).toBe(10 - 2);
    expect(await chain(dsub.s(2), dmul.s(3)).applyAsync([10], on(w)).get()).toBe((10 - 2) * 3);
    // ... and are ignored by an immutable signature.
    expect(await dsub.si(7, 2).applyAsync([100], on(w)).get()).toBe(7 - 2);

    // delay() with the default client.
    setDefaultClient(w.client);
    onTestFinished(() => setDefaultClient(undefined));
    expect(await dsub.s(2).delay(10).get()).toBe(10 - 2);
    expect(await dadd.delay(20, 22).get()).toBe(42);
    setDefaultClient(undefined);

    // Call-time options win over the signature's: the queue no tasknode serves is overridden.
    const r = dadd
      .s(1, 2)
      .set({ queue: 'nobody_serves_this' })
      .applyAsync([], on(w, { queue: 'node-1' }));
    const watch = liveEvents(r);
    expect(await r.get({ timeoutMs: 5000 })).toBe(3);
    const done = (await watch.ended).filter((e) => e.type === 'stage.completed');
    expect(done.map((e) => e.node)).toEqual(['node-1']);
  });

  it('0, false, null and [] pass along a chain and come back as themselves', async () => {
    const w = await cluster(2);
    // A step returning 0 passes 0 on (fused into one stage, and across two stages).
    expect(await chain(dsub.s(3, 3), dadd.s(5)).applyAsync([], on(w)).get()).toBe(5);
    expect(
      await chain(dsub.s(3, 3), dadd.s(5).set({ retries: 1 }))
        .applyAsync([], on(w))
        .get(),
    ).toBe(5);
    expect(await chain(dsub.s(3, 3), ident.s()).applyAsync([], on(w)).get()).toBe(0);
    expect(
      await chain(dsub.s(3, 3), ident.s().set({ retries: 1 }))
        .applyAsync([], on(w))
        .get(),
    ).toBe(0);
    expect(await chain(dadd.s(1, 1), dsub.s(2)).applyAsync([], on(w)).get()).toBe(0);

    for (const v of [0, false, null, [] as unknown[], '']) {
      expect(await ident.s(v).applyAsync([], on(w)).get()).toStrictEqual(v);
      expect(
        await chain(ident.s(v), ident.s().set({ retries: 1 }))
          .applyAsync([], on(w))
          .get(),
      ).toStrictEqual(v);
      expect(await chain(ident.s(v), ident.s()).applyAsync([], on(w)).get()).toStrictEqual(v);
    }
  });

  it('chunks with a short last chunk; a chord with an empty header gives the callback []', async () => {
    const w = await cluster(2);
    const pairs = range(101).map((i) => [i, i]);
    const want: number[][] = [];
    for (let c = 0; c < 101; c += 10) {
      const part: number[] = [];
      for (let i = c; i < Math.min(c + 10, 101); i++) part.push(i + i);
      want.push(part);
    }
    const got = (await dadd.chunks(pairs, 10).applyAsync([], on(w)).get()) as number[][];
    expect(got).toHaveLength(11);
    expect(got).toEqual(want);
    expect(got[10]).toEqual([200]);

    expect(await chord([], ident.s()).applyAsync([], on(w)).get()).toStrictEqual([]);
    expect(await chord([])(dtsum.s()).applyAsync([], on(w)).get()).toBe(0);
    expect(await group().applyAsync([], on(w)).get()).toStrictEqual([]);
  });

  it('state: UNKNOWN for an id nobody submitted; PENDING while a slow task runs, SUCCESS after', async () => {
    const w = await cluster(1);
    const nobody = asyncResult(randomUUID(), { client: w.client });
    expect(await nobody.state()).toBe('UNKNOWN');
    expect((await failure(nobody.get())).code).toBe('RTL_ERR_UNKNOWN_JOB');

    const r = slow.s(600, 'late').applyAsync([], on(w));
    const watch = liveEvents(r);
    await waitFor(() => watch.seen.some((e) => e.type === 'stage.started'), 5000, 'the slow task');
    expect(await r.state()).toBe('PENDING');
    expect(r.ready()).toBe(false);
    expect(await r.get()).toBe('late');
    expect(r.ready()).toBe(true);
    expect(await r.state()).toBe('SUCCESS');

    const f = boom.s('x').applyAsync([], on(w));
    await failure(f.get());
    expect(await f.state()).toBe('FAILURE');
  });

  it('state() asked right after applyAsync reads PENDING, never UNKNOWN', async () => {
    const w = await cluster(1);
    const r = slow.s(300, 'soon').applyAsync([], on(w));
    expect(await r.state()).toBe('PENDING');
    expect(await r.get()).toBe('soon');
  });
});

describe('canvas: bigger and nested', () => {
  it('a group of 1000 members, every value checked', async () => {
    const w = await cluster(3);
    const n = 1000;
    const members = range(n).map((i) => dadd.s(i, i * i));
    const got = (await group(members).applyAsync([], on(w)).get()) as number[];
    expect(got).toHaveLength(n);
    let bad = -1;
    for (let i = 0; i < n && bad < 0; i++) if (got[i] !== i + i * i) bad = i;
    expect(bad, `first wrong member (got ${String(got[bad])})`).toBe(-1);
  });

  it('10,000 separate calls submitted in one turn all come back, each once, with its value', async () => {
    // One turn's 10,000 SUBMITs (and the relay's 20,000 answers) leave as several BATCHes,
    // each inside the receiver's frame limit: none is dropped.
    const w = await world(3);
    const add = task('add');
    const n = 10_000;
    const handles = range(n).map((i) => add.applyAsync([i, 2 * i], on(w)));
    const got = await Promise.all(handles.map((h) => h.get({ timeoutMs: 20_000 })));
    let bad = -1;
    for (let i = 0; i < n && bad < 0; i++) if (got[i] !== 3 * i) bad = i;
    expect(bad, `first wrong call (got ${String(got[bad])})`).toBe(-1);
    expect(w.relay.status().jobs.done).toBe(n);
    expect(w.relay.status().dropped.malformed).toBe(0);
  });

  it('a chain of 50 steps, fused and not fused (.si and queues mixed)', async () => {
    const w = await cluster(2);
    const fused = chain(...range(50).map(() => dadd.s(1)));
    expect(await fused.applyAsync([0], on(w)).get()).toBe(50);

    // Alternate queues and some .si() steps: fifty separate stages.
    let want = 0;
    const steps = range(50).map((i) => {
      if (i % 7 === 3) {
        want = i + 100;
        return dadd.si(i, 100);
      }
      want += 1;
      return dadd.s(1).set({ queue: `node-${String(i % 2)}` });
    });
    const r = chain(...steps).applyAsync([0], on(w));
    const watch = liveEvents(r);
    expect(await r.get()).toBe(want);
    const done = (await watch.ended).filter((e) => e.type === 'stage.completed');
    expect(done).toHaveLength(50);
    for (const [i, e] of done.entries())
      if (i % 7 !== 3) expect(e.node, `step ${String(i)}`).toBe(`node-${String(i % 2)}`);
  });

  it('nested canvases: a group in a chain, a chain in a group, a chord in a chain, a group in a group', async () => {
    const w = await cluster(3);
    // A group after a chain step: every member gets the previous result first.
    expect(
      await chain(dadd.s(1, 2), group(dmul.s(2), dmul.s(3), dsub.s(1)))
        .applyAsync([], on(w))
        .get(),
    ).toEqual([3 * 2, 3 * 3, 3 - 1]);
    // A chain inside a group.
    expect(
      await group(chain(dadd.s(1, 1), dmul.s(10)), chain(dsub.s(10, 4), dmul.s(2)), dadd.s(0, 0))
        .applyAsync([], on(w))
        .get(),
    ).toEqual([(1 + 1) * 10, (10 - 4) * 2, 0]);
    // A chain ending in a group, then a callback (Celery upgrades it to a chord).
    expect(
      await chain(dadd.s(2, 2), group(dmul.s(2), dmul.s(3), dmul.s(4)), dtsum.s())
        .applyAsync([], on(w))
        .get(),
    ).toBe(4 * 2 + 4 * 3 + 4 * 4);
    // An explicit chord inside a chain, followed by another step.
    expect(
      await chain(dadd.s(1, 1), chord([dmul.s(5), dadd.s(1)], dtsum.s()), dmul.s(10))
        .applyAsync([], on(w))
        .get(),
    ).toBe((2 * 5 + (2 + 1)) * 10);
    // A group in a group; a chord whose header members are chains.
    expect(
      await group(group(dadd.s(1, 1), dadd.s(2, 2)), dadd.s(3, 3))
        .applyAsync([], on(w))
        .get(),
    ).toEqual([[2, 4], 6]);
    expect(
      await chord([chain(dadd.s(1, 1), dmul.s(3)), chain(dadd.s(2, 2), dmul.s(3))], dtsum.s())
        .applyAsync([], on(w))
        .get(),
    ).toBe((1 + 1) * 3 + (2 + 2) * 3);
  });

  it('a chord with a failing header member: the error names member and task, has the remote message and stack; the callback never runs', async () => {
    const w = await cluster(3);
    const file = join(tempDir(), 'callback.jsonl');
    const header = [dadd.s(1, 1), boom.s('kaput'), dadd.s(2, 2)];
    const r = chord(header, record.s('callback', file)).applyAsync([], on(w));
    const err = await failure(r.get());
    expect(err.code).toBe('RTL_ERR_STAGE_FAILED');
    expect(err.message).toContain('chord header member 1');
    expect(err.message).toContain('"boom"');
    expect(err.message).toContain('boom went the task: kaput');
    expect(err.detail.member).toBe(1);
    expect(err.detail.task).toBe('boom');
    expect(typeof err.detail.remoteStack).toBe('string');
    expect(err.detail.remoteStack).toContain('boom went the task: kaput');
    expect(err.detail.remoteStack).toMatch(/\n\s+at /);
    await sleep(200);
    expect(recorded(file)).toEqual([]);
    expect(existsSync(file)).toBe(false);
    expect(await r.state()).toBe('FAILURE');
  });
});

describe('canvas: callbacks, cancel, routes, timeouts', () => {
  it('link gets the result first; linkError gets { code, message, task }; neither runs on the other outcome', async () => {
    const w = await cluster(2);
    const dir = tempDir();

    const ok = join(dir, 'ok.jsonl');
    const linked = dadd.s(2, 3).link(record.s('linked', ok)).linkError(record.s('errback', ok));
    // The link's result is not the job's.
    expect(await linked.applyAsync([], on(w)).get()).toBe(5);
    expect(recorded(ok)).toEqual([[5, 'linked']]);

    const bad = join(dir, 'bad.jsonl');
    const failing = boom
      .s('on purpose')
      .link(record.s('linked', bad))
      .linkError(record.s('errback', bad));
    const err = await failure(failing.applyAsync([], on(w)).get());
    expect(err.message).toContain('boom went the task: on purpose');
    const lines = recorded(bad);
    expect(lines).toHaveLength(1);
    const [info, tag] = lines[0] as [Record<string, unknown>, string];
    expect(tag).toBe('errback');
    expect(info.code).toBe('RTL_ERR_STAGE_FAILED');
    expect(info.task).toBe('boom');
    expect(String(info.message)).toContain('boom went the task: on purpose');

    // A link inside a chain: the chain goes on with the call's result, not the link's.
    const mid = join(dir, 'mid.jsonl');
    expect(
      await chain(dadd.s(1, 1).link(record.s('mid', mid)), dmul.s(10))
        .applyAsync([], on(w))
        .get(),
    ).toBe(20);
    expect(recorded(mid)).toEqual([[2, 'mid']]);
  });

  it('cancel mid-flight: get rejects RTL_ERR_CANCELLED, later members never run, the relay counts it', async () => {
    const w = await cluster(2);
    const file = join(tempDir(), 'after-cancel.jsonl');
    const members = range(4).map((i) =>
      chain(slow.si(700, i), record.si(i, file).set({ retries: 1 })),
    );
    const r = group(members).applyAsync([], on(w));
    const watch = liveEvents(r);
    await waitFor(
      () => watch.seen.some((e) => e.type === 'stage.started'),
      5000,
      'a stage to start',
    );
    await r.cancel();
    expect((await failure(r.get())).code).toBe('RTL_ERR_CANCELLED');
    await waitFor(() => w.relay.status().jobs.cancelled === 1, 5000, 'the relay to cancel it');
    const status = await w.client.status();
    expect((status.jobs as Record<string, number>).cancelled).toBe(1);
    expect(await r.state()).toBe('CANCELLED');
    // The slow calls that had started end; nothing after them runs.
    await sleep(1000);
    expect(recorded(file)).toEqual([]);
  });

  it('a route served by one named tasknode among three runs only there', async () => {
    const w = await world(2);
    await w.addNode({ queues: ['neuron_h1'], name: 'special' });
    await waitFor(() => w.relay.nodes().length === 3);
    await w.client.deploy({ name: 'canvas', source: MODULE });

    const runs = range(6).map((i) => {
      const r = dadd.applyAsync([i, 1], on(w, { queue: 'neuron_h1' }));
      return { r, watch: liveEvents(r), want: i + 1 };
    });
    for (const { r, watch, want } of runs) {
      expect(await r.get({ timeoutMs: 5000 })).toBe(want);
      const nodes = (await watch.ended)
        .filter((e) => e.type === 'stage.started' || e.type === 'stage.completed')
        .map((e) => e.node);
      expect(nodes).toEqual(['special', 'special']);
    }

    // In one group, members routed to different nodes (a queue, a node name).
    const g = group(
      dadd.s(1, 1).set({ queue: 'neuron_h1' }),
      dadd.s(2, 2).set({ queue: 'node-0' }),
      dadd.s(3, 3).set({ queue: 'neuron_h1' }),
    ).applyAsync([], on(w));
    const gw = liveEvents(g);
    expect(await g.get({ timeoutMs: 5000 })).toEqual([2, 4, 6]);
    const byStage: Record<string, string | undefined> = {};
    for (const e of await gw.ended)
      if (e.type === 'stage.completed') byStage[e.stage ?? '?'] = e.node;
    expect(byStage).toEqual({ 'group[0]': 'special', 'group[1]': 'node-0', 'group[2]': 'special' });
  });

  it('a route no live tasknode serves waits (stage.waiting) until one with that queue joins', async () => {
    const w = await cluster(2);
    const r = chain(dadd.s(2, 3), dmul.s(7)).applyAsync([], on(w, { queue: 'late_q' }));
    const watch = liveEvents(r);
    await waitFor(
      () => watch.seen.some((e) => e.type === 'stage.waiting'),
      5000,
      'a stage.waiting event',
    );
    const waiting = watch.seen.find((e) => e.type === 'stage.waiting');
    expect(waiting?.route).toBe('late_q');
    expect(String(waiting?.reason)).toContain('late_q');
    await sleep(200);
    expect(r.ready()).toBe(false);
    expect(await r.state()).toBe('PENDING');

    await w.addNode({ name: 'latecomer', queues: ['late_q'] });
    expect(await r.get({ timeoutMs: 8000 })).toBe((2 + 3) * 7);
    const nodes = (await watch.ended)
      .filter((e) => e.type === 'stage.completed')
      .map((e) => e.node);
    expect(nodes.length).toBeGreaterThan(0);
    expect(nodes.every((n) => n === 'latecomer')).toBe(true);
  });

  it('a get that times out names the nodes still running; a later get still gets the value', async () => {
    const w = await cluster(2);
    const r = group(slow.si(1200, 'a'), slow.si(1200, 'b')).applyAsync([], on(w));
    const watch = liveEvents(r);
    await waitFor(
      () => watch.seen.filter((e) => e.type === 'stage.started').length === 2,
      5000,
      'both members to start',
    );
    const err = await failure(r.get({ timeoutMs: 150 }));
    expect(err.code).toBe('RTL_ERR_TIMEOUT');
    expect(err.message).toContain('group[0]');
    expect(err.message).toContain('group[1]');
    expect(err.message).toContain('node-0');
    expect(err.message).toContain('node-1');
    expect(err.message).toContain('slow');
    expect(await r.get({ timeoutMs: 5000 })).toEqual(['a', 'b']);
  });
});

describe('canvas: results across clients', () => {
  it('[P-6.7] submit, disconnect, collect later from another client', async () => {
    const w = await cluster(2);
    const a = new Client({ relay: w.relay.endpoints.recv, store: false, timeoutMs: 10_000 });
    onTestFinished(() => a.close());
    const id = randomUUID();
    const submitted = chain(slow.si(600, 3), dmul.s(5), dadd.s(1)).applyAsync([], {
      client: a,
      id,
    });
    expect(submitted.id).toBe(id);
    await waitFor(() => w.relay.status().jobs.running === 1, 5000, 'the relay to hold the job');
    await a.close();

    expect(await asyncResult(id, { client: w.client }).get()).toBe(3 * 5 + 1);
    // Once it ended, the relay still answers for it.
    expect(await asyncResult(id, { client: w.client }).get()).toBe(3 * 5 + 1);
    expect(await asyncResult(id, { client: w.client }).state()).toBe('SUCCESS');
  });

  it('a repeated submit of the same id runs the job once', async () => {
    const w = await cluster(2);
    const b = new Client({ relay: w.relay.endpoints.recv, store: false, timeoutMs: 10_000 });
    onTestFinished(() => b.close());
    const file = join(tempDir(), 'runs.jsonl');
    const id = randomUUID();
    const job = chain(slow.si(400, 0), record.si('ran', file).set({ retries: 1 }));

    const first = job.applyAsync([], on(w, { id }));
    await waitFor(() => w.relay.status().jobs.running === 1, 5000, 'the relay to hold the job');
    // Again while it runs, from another client, and again from the same client once it ended.
    const second = job.applyAsync([], { client: b, id });
    expect(await first.get()).toBe(1);
    expect(await second.get()).toBe(1);
    const third = job.applyAsync([], on(w, { id }));
    expect(await third.get()).toBe(1);
    await sleep(100);
    expect(recorded(file)).toEqual([['ran']]);
  });

  it('the same id submitted twice at once from one client: both handles get the value, one run', async () => {
    const w = await cluster(1);
    const file = join(tempDir(), 'runs.jsonl');
    const id = randomUUID();
    const job = chain(slow.si(200, 0), record.si('ran', file).set({ retries: 1 }));
    const r1 = job.applyAsync([], on(w, { id, getTimeoutMs: 2500 }));
    const r2 = job.applyAsync([], on(w, { id, getTimeoutMs: 2500 }));
    expect(await Promise.all([r1.get(), r2.get()])).toEqual([1, 1]);
    expect(recorded(file)).toEqual([['ran']]);
  });
});

describe('canvas: bad input', () => {
  it('an unknown function task is rejected with RTL_ERR_UNKNOWN_TASK naming the path and the near name', async () => {
    const w = await cluster(1);
    const err = await failure(
      chain(dadd.s(1, 1), group(dmul.s(2), task('dmull').s(3)))
        .applyAsync([], on(w))
        .get(),
    );
    expect(err.code).toBe('RTL_ERR_UNKNOWN_TASK');
    expect(err.message).toContain('chain[1].group[1]');
    expect(err.message).toContain('"dmull"');
    expect(err.message).toContain('did you mean "dmul"');
    expect(err.detail.task).toBe('dmull');

    const top = await failure(task('idnet').applyAsync([1], on(w)).get());
    expect(top.code).toBe('RTL_ERR_UNKNOWN_TASK');
    expect(top.message).toContain('did you mean "ident"');
  });

  it('a malformed canvas is rejected with RTL_ERR_BAD_DOCUMENT naming the path', async () => {
    const w = await cluster(1);
    const cases: [Record<string, unknown>, string][] = [
      [{ chain: [] }, 'canvas.chain'],
      [{ call: 'dadd', args: 3 }, 'canvas.args'],
      [
        { group: [{ call: 'dadd', args: [1, 2] }, { chain: [{ nope: 1 }] }] },
        'canvas.group[1].chain[0]',
      ],
      [{ chord: [{ call: 'dadd', args: [1, 2] }] }, 'canvas.body'],
      [{ starmap: 'dadd', items: [[1, 2], 3] }, 'canvas.items[1]'],
      [{ call: 'dadd', args: [1, 2], options: { queue: 7 } }, 'canvas.options.queue'],
    ];
    for (const [canvas, path] of cases) {
      const err = await failure(w.client.submitCanvas(canvas).result());
      expect(err.code, JSON.stringify(canvas)).toBe('RTL_ERR_BAD_DOCUMENT');
      expect(err.message, JSON.stringify(canvas)).toContain(path);
    }
    // The relay still runs good canvases afterwards.
    expect(await dadd.applyAsync([20, 22], on(w)).get()).toBe(42);
  });
});
