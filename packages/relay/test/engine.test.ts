import { describe, expect, it } from 'vitest';
import * as zmq from 'zeromq';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Table } from 'apache-arrow';
import getPort from 'get-port';
import { Client, Transform } from '@rtl/client';
import { decodeMessage, encodeMessage } from '@rtl/core';
import { moduleDir, tempDir, waitFor, world, rng } from './helpers.js';

function column(table: Table, name: string): Float64Array | (number | null)[] {
  const col = table.getChild(name);
  if (col === null) throw new Error(`no column ${name}`);
  return col.toArray() as Float64Array;
}

describe('engine end to end', () => {
  it('runs a 3-stage transform over 1e5 rows on three different tasknodes, matching a plain loop', async () => {
    const w = await world(3);
    const n = 100_000;
    const r = rng(7);
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      x[i] = (r() - 0.5) * 200;
      y[i] = r() * 50 + 1;
    }
    const doc = {
      '0': { tasks: { task_add: { operations: [{ a: 'x', b: 'y', column: 's' }] } } },
      '1': {
        tasks: {
          task_multiply: { operations: [{ a: 's', b: 2.5, column: 'm' }] },
          task_filter: { operations: [{ column: 'm', value: 0, method: 'gt' }] },
        },
      },
      '2': {
        tasks: [
          { task: 'subtract', operations: [{ a: 'm', b: 'x', column: 'd' }] },
          { task: 'average', operations: [{ a: 'd', column: 'avg' }] },
        ],
      },
    };
    const job = w.client.execute(doc, { data: { x, y } });
    const out = await job.result();
    // Independent reference: a plain loop.
    const keep: number[] = [];
    for (let i = 0; i < n; i++) if (((x[i] as number) + (y[i] as number)) * 2.5 > 0) keep.push(i);
    expect(out.numRows).toBe(keep.length);
    const d = column(out, 'd');
    const m = column(out, 'm');
    let sum = 0;
    keep.forEach((i, k) => {
      const mi = ((x[i] as number) + (y[i] as number)) * 2.5;
      expect(m[k]).toBe(mi);
      expect(d[k]).toBe(mi - (x[i] as number));
      sum += mi - (x[i] as number);
    });
    const avg = column(out, 'avg');
    expect(avg[0]).toBeCloseTo(sum / keep.length, 9);
    expect(avg[keep.length - 1]).toBe(avg[0]);
    expect(out.schema.fields.map((f) => f.name)).toEqual(['x', 'y', 's', 'm', 'd', 'avg']);
    expect(String(out.getChild('d')?.type)).toBe('Float64');
    const used = job.stages.map((s) => s.node);
    expect(job.stages.map((s) => s.stage)).toEqual(['0', '1', '2']);
    expect(new Set(used).size).toBe(3);
  });

  it('works with Transform() with and without new, and reports progress events', async () => {
    const w = await world(1);
    const a = Transform({ relay: w.relay.endpoints.recv, store: false });
    const b = new Transform({ relay: w.relay.endpoints.recv, store: false });
    try {
      const doc = {
        '0': { tasks: { task_add: { operations: [{ a: 'v', b: 1, column: 'w' }] } } },
        '1': { tasks: { task_null: {} } },
      };
      const job = a.execute(doc, { data: { v: [1, 2, 3] } });
      const events: string[] = [];
      for await (const ev of job.events()) events.push(`${ev.type}:${ev.stage ?? ''}`);
      expect(events).toEqual([
        'job.accepted:',
        'stage.started:0',
        'stage.completed:0',
        'stage.started:1',
        'stage.completed:1',
        'job.completed:',
      ]);
      expect(Array.from(column(await job.result(), 'w'))).toEqual([2, 3, 4]);
      const t2 = await b.execute(doc, { data: { v: new Int32Array([10, -10]) } }).result();
      expect(Array.from(column(t2, 'w'))).toEqual([11, -9]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a 15 MB table goes by reference through the shared store and comes back right', async () => {
    const w = await world(1);
    const n = 1_000_000;
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      x[i] = i * 0.5;
      y[i] = n - i;
    }
    const doc = { '0': { tasks: { task_add: { operations: [{ a: 'x', b: 'y', column: 's' }] } } } };
    const out = await w.client.execute(doc, { data: { x, y } }).result();
    expect(out.numRows).toBe(n);
    const s = column(out, 's');
    for (let i = 0; i < n; i += 997) expect(s[i]).toBe(i * 0.5 + (n - i));
    expect(s[n - 1]).toBe((n - 1) * 0.5 + 1);
  });
});

describe('raspi-rtl documents run unchanged', () => {
  it('openArray .dat (records + base64 .meta), then add, multiply, subtract, average, on a cluster', async () => {
    const w = await world(2);
    const dir = tempDir();
    const rows = 50_000;
    const r = rng(11);
    // Packed little-endian records [('a', '<f8'), ('b', '<i4')], written byte by byte here.
    const rec = Buffer.alloc(rows * 12);
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < rows; i++) {
      a.push((r() - 0.5) * 1000);
      b.push(Math.floor(r() * 2000) - 1000);
      rec.writeDoubleLE(a[i] as number, i * 12);
      rec.writeInt32LE(b[i] as number, i * 12 + 8);
    }
    writeFileSync(join(dir, 'samples.dat'), rec);
    // raspi-rtl writes the numpy dtype base64-encoded, with <@ @> standing for parentheses.
    writeFileSync(
      join(dir, 'samples.meta'),
      Buffer.from("[<@'a', '<f8'@>, <@'b', '<i4'@>]").toString('base64'),
    );
    const doc = {
      0: {
        tasks: {
          task_open_array: { filename: 'samples', path: dir, extension: 'dat', delimiter: null },
        },
      },
      1: {
        tasks: {
          task_add: { operations: [{ a: 'a', b: 'b', column: 'sum' }] },
          task_multiply: { operations: [{ a: 'sum', b: 2, column: 'twice' }] },
          task_subtract: { operations: [{ a: 'twice', b: 'a', column: 'diff' }] },
          task_average: { operations: [{ a: 'diff', column: 'mean' }] },
        },
      },
    };
    const job = w.client.execute(doc);
    const out = await job.result();
    expect(out.numRows).toBe(rows);
    const diff = column(out, 'diff');
    let total = 0;
    for (let i = 0; i < rows; i++) {
      const want = ((a[i] as number) + (b[i] as number)) * 2 - (a[i] as number);
      expect(diff[i]).toBe(want);
      total += want;
    }
    expect(column(out, 'mean')[0]).toBeCloseTo(total / rows, 9);
    expect(job.stages.map((s) => s.stage)).toEqual(['0', '1']);
  });
});

describe('rejections name the culprit', () => {
  it.each([
    [
      'unknown task',
      { '0': { tasks: { task_ad: { operations: [] } } } },
      'RTL_ERR_UNKNOWN_TASK',
      /unknown task "task_ad"; did you mean "add"\? Tasks that exist: .*average.*filter/,
    ],
    [
      'bad parameter',
      { '0': { tasks: { task_add: { operations: [{ a: 'x', b: true, column: 's' }] } } } },
      'RTL_ERR_BAD_PARAM',
      /stage "0".*task "task_add".*operations\[0\]\.b/,
    ],
    [
      'missing parameter',
      { '1': { tasks: { task_filter: { operations: [{ column: 'x', method: 'lt' }] } } } },
      'RTL_ERR_BAD_PARAM',
      /stage "1".*task "task_filter".*operations\[0\]\.value/,
    ],
    ['empty document', {}, 'RTL_ERR_EMPTY_DOCUMENT', /no stages/],
    [
      'stage without tasks',
      { '0': { tasks: {} } },
      'RTL_ERR_EMPTY_DOCUMENT',
      /stage "0" has no tasks/,
    ],
    [
      'cycle',
      {
        a: { tasks: { task_null: {} }, after: ['b'] },
        b: { tasks: { task_null: {} }, after: ['a'] },
      },
      'RTL_ERR_CYCLE',
      /cycle: (a -> b -> a|b -> a -> b)/,
    ],
    [
      'bad stage option',
      { '0': { tasks: { task_null: {} }, retries: -1 } },
      'RTL_ERR_BAD_DOCUMENT',
      /stage "0": option "retries"/,
    ],
  ])('%s', async (_name, doc, code, message) => {
    const w = await world(1);
    const job = w.client.execute(doc);
    const err: unknown = await job.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code });
    expect((err as Error).message).toMatch(message);
    // A rejected document never reaches a tasknode.
    expect(w.relay.status().jobs.done + w.relay.status().jobs.running).toBe(0);
  });

  it('a task failing on a tasknode comes back as STAGE_FAILED with task, message and stack; the node stays up', async () => {
    const w = await world(1);
    const doc = {
      '0': { tasks: { task_add: { operations: [{ a: 'nope', b: 1, column: 's' }] } } },
    };
    await expect(w.client.execute(doc, { data: { x: [1, 2] } }).result()).rejects.toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      detail: { stage: '0', task: 'task_add' },
    });
    const ok = await w.client
      .execute({ '0': { tasks: { task_null: {} } } }, { data: { x: [1] } })
      .result();
    expect(ok.numRows).toBe(1);
  });

  it('a task that throws in a worker thread comes back as STAGE_FAILED with task, message and remote stack', async () => {
    const dir = moduleDir();
    const mod = join(dir, 'boom.mjs');
    writeFileSync(
      mod,
      `import { defineTableTask, p } from '@rtl/tasks';
export const boom = defineTableTask({ name: 'boom', summary: 'throws', params: p.object({}),
  run() { const cfg = undefined; return cfg.table; } });\n`,
    );
    const w = await world(0, {}, { modules: [mod] });
    await w.addNode();
    await waitFor(() => w.relay.nodes().length === 1);
    const err: unknown = await w.client
      .execute(
        { '0': { tasks: { task_null: {} } }, '1': { tasks: { task_boom: {} } } },
        { data: { x: [1] } },
      )
      .result()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toMatchObject({
      code: 'RTL_ERR_STAGE_FAILED',
      detail: { stage: '1', task: 'task_boom', node: 'node-0' },
    });
    expect((err as Error).message).toMatch(
      /stage "1", task "task_boom" threw TypeError: Cannot read properties of undefined/,
    );
    expect(String((err as { detail: { remoteStack?: string } }).detail.remoteStack)).toContain(
      'boom.mjs',
    );
    // The tasknode stays up and serves the next job.
    const ok = await w.client
      .execute({ '0': { tasks: { task_null: {} } } }, { data: { x: [1, 2] } })
      .result();
    expect(ok.numRows).toBe(2);
    expect(w.relay.nodes()).toHaveLength(1);
  });

  it('an input the relay cannot read from its store fails the job with RTL_ERR_STORE; the node keeps its credit', async () => {
    const w = await world(1, {}, { noStore: true });
    const d = new zmq.Dealer({ linger: 0 });
    d.connect(w.relay.endpoints.recv);
    try {
      const ref = { kind: 'ref', key: 't/not-there', bytes: 100, store: w.store.id } as const;
      await d.send(
        encodeMessage({
          t: 'SUBMIT',
          id: 'j-missing',
          doc: { '0': { tasks: { task_null: {} } } },
          data: ref,
          events: false,
          store: '',
        }),
      );
      const seen: string[] = [];
      for (;;) {
        const decoded = decodeMessage(await d.receive());
        if (!decoded.ok) continue;
        seen.push(decoded.msg.t);
        if (decoded.msg.t === 'ERROR') {
          expect(decoded.msg.error).toMatchObject({
            code: 'RTL_ERR_STORE',
            detail: { job: 'j-missing', stage: '0', key: 't/not-there' },
          });
          break;
        }
      }
      expect(seen).toEqual(['ACCEPTED', 'ERROR']);
      const out = await w.client
        .execute({ '0': { tasks: { task_null: {} } } }, { data: { x: [1, 2, 3] } })
        .result();
      expect(out.numRows).toBe(3);
      expect(w.relay.nodes()[0]?.running).toBe(0);
    } finally {
      d.close();
    }
  });

  it('a malformed frame sent to each port leaves the relay serving', async () => {
    const w = await world(1);
    const { recv, send, publish } = w.relay.endpoints;
    const garbage = [Buffer.from([0xff, 0x00, 0x13]), Buffer.from('not cbor at all')];
    const d1 = new zmq.Dealer({ linger: 0 });
    const d2 = new zmq.Dealer({ linger: 0 });
    const sub = new zmq.Subscriber({ linger: 0 });
    d1.connect(recv);
    d2.connect(send);
    sub.connect(publish);
    try {
      await d1.send(garbage);
      await d2.send(garbage);
      sub.subscribe('');
      // The client port answers a bad message with REJECTED naming the rule.
      const [reply] = await d1.receive();
      expect(reply?.length).toBeGreaterThan(0);
      await waitFor(
        () => w.relay.status().dropped.malformed >= 2,
        5000,
        'both bad messages counted',
      );
      const out = await w.client
        .execute(
          { '0': { tasks: { task_add: { operations: [{ a: 'x', b: 'x', column: 'y' }] } } } },
          { data: { x: [1, 2] } },
        )
        .result();
      expect(Array.from(column(out, 'y'))).toEqual([2, 4]);
    } finally {
      d1.close();
      d2.close();
      sub.close();
    }
  });
});

describe('client errors say what they waited for', () => {
  it('no relay at the address: RTL_ERR_RELAY_UNREACHABLE naming the address', async () => {
    const port = await getPort({ host: '127.0.0.1' });
    const client = new Client({ relay: `tcp://127.0.0.1:${String(port)}`, store: false });
    try {
      const job = client.execute({ '0': { tasks: { task_null: {} } } });
      const err: unknown = await job.result({ timeoutMs: 300 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'RTL_ERR_RELAY_UNREACHABLE', detail: { job: job.id } });
      expect((err as Error).message).toContain(`tcp://127.0.0.1:${String(port)}`);
      await expect(client.status({ timeoutMs: 200 })).rejects.toMatchObject({
        code: 'RTL_ERR_RELAY_UNREACHABLE',
      });
    } finally {
      await client.close();
    }
  });

  it('a timeout names the job and the stage it waited for, and why', async () => {
    const w = await world(1);
    const doc = {
      '0': { tasks: { task_null: {} } },
      '1': { tasks: { task_null: {} }, route: 'gpu' },
    };
    const job = w.client.execute(doc, { data: { x: [1] } });
    const err: unknown = await job.result({ timeoutMs: 600 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'RTL_ERR_TIMEOUT', detail: { job: job.id, stage: '1' } });
    expect((err as Error).message).toMatch(
      new RegExp(
        `job ${job.id}: no result within 600 ms; stage "1" \\(task_null\\) was waiting: no connected tasknode can run it \\(route "gpu": no tasknode of that name or queue\\)$`,
      ),
    );
    // A tasknode serving the queue joins: the job, still accepted, completes.
    await w.addNode({ queues: ['gpu'] });
    const out = await job.result({ timeoutMs: 10_000 });
    expect(out.numRows).toBe(1);
    expect(job.stages.map((s) => s.node)).toEqual(['node-0', 'node-1']);
  });
});

describe('liveness', () => {
  it('a tasknode busy in a 5 s task keeps answering heartbeats', async () => {
    const dir = moduleDir();
    const mod = join(dir, 'spin.mjs');
    writeFileSync(
      mod,
      `import { defineTableTask, p } from '@rtl/tasks';
export const spin = defineTableTask({ name: 'spin', summary: 'busy-waits', params: p.object({ ms: p.number() }),
  run(table, params) { const end = Date.now() + params.ms; while (Date.now() < end) {} return table; } });\n`,
    );
    const w = await world(0, {}, { modules: [mod] });
    await w.addNode();
    await waitFor(() => w.relay.nodes().length === 1);
    const job = w.client.execute({ '0': { tasks: { spin: { ms: 5000 } } } }, { data: { x: [1] } });
    let minSeen = Infinity;
    let maxSilence = 0;
    const watch = setInterval(() => {
      const nodes = w.relay.nodes();
      minSeen = Math.min(minSeen, nodes.length);
      for (const n of nodes) maxSilence = Math.max(maxSilence, n.lastSeenMs);
    }, 20);
    try {
      const out = await job.result();
      expect(out.numRows).toBe(1);
    } finally {
      clearInterval(watch);
    }
    expect(minSeen).toBe(1);
    expect(maxSilence).toBeLessThan(w.config.HEARTBEAT_MS * w.config.HEARTBEAT_LIVENESS);
    expect(job.stages[0]?.ms).toBeGreaterThanOrEqual(5000);
  });

  it('a tasknode killed with SIGKILL is dropped within the liveness window', async () => {
    const w = await world(0);
    const main = fileURLToPath(new URL('../../tasknode/dist/main.js', import.meta.url));
    const [, port] = /:(\d+)$/.exec(w.relay.endpoints.send) ?? [];
    const child = spawn(process.execPath, [main, '--name', 'doomed', '--threads', '1'], {
      env: {
        ...process.env,
        RTL_RELAY_ADDR: '127.0.0.1',
        RTL_RELAY_SEND: port,
        RTL_HEARTBEAT_MS: '100',
        RTL_HEARTBEAT_LIVENESS: '3',
        RTL_CACHE_PATH: w.config.CACHE_PATH,
        RTL_LOG_LEVEL: 'silent',
      },
      stdio: 'ignore',
    });
    const exited = new Promise((r) => child.once('exit', r));
    try {
      await waitFor(
        () => w.relay.nodes().some((n) => n.name === 'doomed'),
        10_000,
        'child tasknode to join',
      );
      child.kill('SIGKILL');
      await exited;
      const killedAt = Date.now();
      await waitFor(() => w.relay.nodes().length === 0, 5000, 'node to be dropped');
      // Liveness window 3 x 100 ms, plus up to two beats for the check to run, plus scheduling slack.
      expect(Date.now() - killedAt).toBeLessThanOrEqual(100 * 3 + 200 + 500);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
