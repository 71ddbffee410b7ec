/**
 * Garbage at every port: 100,000 random and mutated messages against each of the relay's
 * three ports (RECV, SEND, PUBLISH), plus raw bytes that are not ZMTP at all and messages
 * past MAX_MESSAGE_BYTES, while a well-formed workload runs through the same relay. The
 * relay is a real child process; its memory is read from /proc while the fuzzers run.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import * as zmq from 'zeromq';
import {
  decodeMessage,
  encodeMessage,
  encodeTable,
  encodeValue,
  toTable,
  unbatch,
} from '@rtl/core';
import { Client, task } from '@rtl/client';
import { tempDir, world } from './helpers.js';
import { clusterEnv, spawnService, type Proc } from './procs.js';

const FRAMES_PER_PORT = 100_000;
/** Each fuzzing peer sends this many messages, then a new peer (a new identity) takes over. */
const PER_PEER = 2000;
const MAX_MESSAGE_BYTES = 1024 * 1024;

/** A seeded generator (xorshift32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/** Valid messages of every kind a peer may send to each port: what the mutations start from. */
function seeds(): { recv: Uint8Array[][]; send: Uint8Array[][]; pub: Uint8Array[][] } {
  const arrow = encodeTable(toTable({ x: [1, 2, 3], y: [4, 5, 6] }));
  const doc = { '0': { tasks: { task_add: { operations: [{ a: 'x', b: 'y', column: 's' }] } } } };
  const nested = {
    chain: [{ call: 'add', args: [1, 2] }, { group: [{ call: 'mul', args: [3] }] }],
  };
  const recv = [
    encodeMessage(
      {
        t: 'SUBMIT',
        id: 'f-1',
        doc,
        data: { kind: 'arrow', frames: arrow.length },
        events: false,
        store: '',
      },
      arrow,
    ),
    encodeMessage({
      t: 'SUBMIT',
      id: 'f-2',
      canvas: nested,
      data: { kind: 'none' },
      events: true,
      store: '',
    }),
    encodeMessage(
      {
        t: 'SUBMIT',
        id: 'f-3',
        canvas: { call: 'add', args: [1, 2] },
        data: { kind: 'cbor', frames: 1 },
        events: false,
        store: '',
        timeoutMs: 500,
      },
      [encodeValue([1, [2, { a: 3 }]])],
    ),
    encodeMessage({ t: 'COLLECT', id: 'f-1' }),
    encodeMessage({ t: 'CANCEL', id: 'f-2' }),
    encodeMessage({ t: 'STATUS', rid: 'r-1', query: { what: 'job', id: 'f-1' } }),
    encodeMessage({ t: 'DEPLOY', id: 'd-1', name: 'm', data: { kind: 'cbor', frames: 1 } }, [
      encodeValue('export const x = 1;'),
    ]),
    encodeMessage({ t: 'BATCH', sizes: [1, 1] }, [
      ...encodeMessage({ t: 'COLLECT', id: 'f-9' }),
      ...encodeMessage({ t: 'CANCEL', id: 'f-9' }),
    ]),
  ];
  const send = [
    encodeMessage({
      t: 'HELLO',
      node: 'fz',
      queues: ['default'],
      tasks: ['add', 'null'],
      credit: 2,
      host: 'h',
      store: '',
      pid: 1,
      functions: ['add'],
    }),
    encodeMessage({ t: 'READY', credit: 4 }),
    encodeMessage({ t: 'HEARTBEAT' }),
    encodeMessage(
      {
        t: 'STAGE_DONE',
        id: 'f-1',
        stage: '0',
        attempt: 1,
        data: { kind: 'arrow', frames: arrow.length },
        ms: 1,
        tasks: [],
      },
      arrow,
    ),
    encodeMessage(
      {
        t: 'STAGE_DONE',
        id: 'f-3',
        stage: 'n0',
        attempt: 1,
        data: { kind: 'cbor', frames: 1 },
        ms: 1,
        tasks: [],
      },
      [encodeValue(3)],
    ),
    encodeMessage({
      t: 'STAGE_FAILED',
      id: 'f-1',
      stage: '0',
      attempt: 1,
      error: { code: 'RTL_ERR_TASK', message: 'no' },
    }),
    encodeMessage({ t: 'BATCH', sizes: [1] }, encodeMessage({ t: 'READY', credit: 1 })),
  ];
  const pub = [
    [Buffer.from('\x01job.')],
    [Buffer.from('\x01node.up')],
    [Buffer.from('\x00job.')],
    [Buffer.from('\x01')],
  ];
  return { recv, send, pub };
}

/** CBOR items meant to hurt a decoder: huge claimed sizes, deep nesting, stateful tags. */
const BOMBS: readonly Uint8Array[] = [
  Uint8Array.of(0x9a, 0xff, 0xff, 0xff, 0xff, 0x01), // an array of 2^32-1 items
  Uint8Array.of(0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), // a map of 2^63
  Uint8Array.of(0x5a, 0x7f, 0xff, 0xff, 0xff, 0x00), // a 2 GiB byte string
  new Uint8Array(1000).fill(0x81), // 1,000 nested arrays
  new Uint8Array(1000).fill(0x9f), // 1,000 nested indefinite arrays
  // A record definition (tag 105) that a decoder would keep for later messages.
  Uint8Array.of(0xa1, 0x61, 0x74, 0xd8, 0x69, 0x83, 0x61, 0x74, 0x61, 0x69, 0x61, 0x76),
  // Shared references (tags 28, 29) pointing at themselves.
  Uint8Array.of(0xd8, 0x1c, 0x81, 0xd8, 0x1d, 0x00),
];

function bomb(r: () => number): Uint8Array {
  return BOMBS[Math.floor(r() * BOMBS.length)] as Uint8Array;
}

/** Random bytes: slices of one pool filled from the seeded generator. */
const POOL = (() => {
  const r = rng(99);
  const pool = new Uint8Array(1 << 20);
  for (let i = 0; i < pool.length; i++) pool[i] = Math.floor(r() * 256);
  return pool;
})();

function randomBytes(r: () => number, length: number): Uint8Array {
  const at = Math.floor(r() * (POOL.length - length));
  return POOL.slice(at, at + length);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function mutate(frames: readonly Uint8Array[], r: () => number): Uint8Array[] {
  const out: Uint8Array[] = frames.map((f) => Uint8Array.from(f));
  const pick = (): number => Math.floor(r() * out.length);
  const edits = 1 + Math.floor(r() * 4);
  for (let e = 0; e < edits; e++) {
    const i = pick();
    const f = out[i] as Uint8Array;
    switch (Math.floor(r() * 8)) {
      case 0: // flip bits
        for (let k = 0; k < 1 + r() * 4; k++) {
          const at = Math.floor(r() * f.length);
          if (f.length > 0) f[at] = (f[at] as number) ^ (1 << Math.floor(r() * 8));
        }
        break;
      case 1: // random byte values
        for (let k = 0; k < 1 + r() * 8; k++) {
          if (f.length > 0) f[Math.floor(r() * f.length)] = Math.floor(r() * 256);
        }
        break;
      case 2: // truncate
        out[i] = f.subarray(0, Math.floor(r() * f.length));
        break;
      case 3: // extend with random bytes
        out[i] = concat(f, randomBytes(r, 1 + Math.floor(r() * 32)));
        break;
      case 4: // drop a frame
        if (out.length > 1) out.splice(i, 1);
        break;
      case 5: // duplicate a frame
        out.splice(i, 0, f);
        break;
      case 6: // a decoder bomb in place of a frame
        out[i] = bomb(r).slice();
        break;
      default:
        {
          // splice a bomb into the middle of the frame
          const at = Math.floor(r() * f.length);
          out[i] = concat(f.subarray(0, at), bomb(r).subarray(0, 64));
        }
        break;
    }
  }
  return out;
}

function randomFrames(r: () => number): Uint8Array[] {
  const n = 1 + Math.floor(r() * 4);
  return Array.from({ length: n }, () => randomBytes(r, Math.floor(r() ** 3 * 4096)));
}

/** `count` messages at `endpoint`, from a new peer every PER_PEER messages. */
async function fuzzPort(
  endpoint: string,
  kind: 'dealer' | 'xsub',
  seedMsgs: Uint8Array[][],
  count: number,
  seed: number,
): Promise<{ sent: number; oversized: number }> {
  const r = rng(seed);
  let sent = 0;
  let oversized = 0;
  while (sent < count) {
    const sock =
      kind === 'dealer'
        ? new zmq.Dealer({ linger: 0, sendHighWaterMark: 1000, sendTimeout: 10_000 })
        : new zmq.XSubscriber({ linger: 0, sendHighWaterMark: 1000, sendTimeout: 10_000 });
    sock.connect(endpoint);
    try {
      for (let k = 0; k < PER_PEER && sent < count; k++, sent++) {
        const u = r();
        let msg: Uint8Array[];
        if (u < 0.3) msg = randomFrames(r);
        else if (u < 0.9999)
          msg = mutate(seedMsgs[Math.floor(r() * seedMsgs.length)] as Uint8Array[], r);
        else {
          // Past MAX_MESSAGE_BYTES: the transport drops it and the connection.
          msg = [new Uint8Array(MAX_MESSAGE_BYTES + 1024)];
          oversized++;
        }
        // A mutation that is still a well-formed HELLO is a tasknode joining, not garbage: a
        // peer that joins and then does no work is kept out by CURVE (docs/security.md).
        if (kind === 'dealer' && joins(msg)) {
          k--;
          sent--;
          continue;
        }
        await sock.send(msg);
      }
    } finally {
      sock.close();
    }
  }
  return { sent, oversized };
}

function joins(frames: Uint8Array[]): boolean {
  const d = decodeMessage(frames.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength)));
  if (!d.ok) return false;
  if (d.msg.t === 'HELLO') return true;
  return d.msg.t === 'BATCH' && unbatch(d.msg, d.payload).some((inner) => joins(inner));
}

/** Connections that write bytes that are not ZMTP (or a ZMTP greeting gone wrong). */
async function rawGarbage(port: number, connections: number, seed: number): Promise<void> {
  const r = rng(seed);
  for (let c = 0; c < connections; c++) {
    const bytes = Buffer.from(randomBytes(r, Math.floor(r() * 2048)));
    // Half start like a ZMTP 3 greeting (signature ff .. 7f, version 3), then go wrong.
    if (r() < 0.5)
      Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, Math.floor(r() * 4)]).copy(bytes);
    await new Promise<void>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.on('connect', () => {
        s.write(bytes, () => s.end());
        setTimeout(() => s.destroy(), 200);
      });
    });
  }
}

async function aliveNodes(client: Client): Promise<number> {
  const s = await client.status({ timeoutMs: 2000 }).catch(() => undefined);
  const nodes = Array.isArray(s?.nodes) ? (s.nodes as { alive?: boolean; name?: string }[]) : [];
  return nodes.filter((n) => n.alive === true && n.name?.startsWith('tn-') === true).length;
}

describe('fuzz', () => {
  it('100,000 random and mutated messages at each of the three ports: the relay serves a concurrent workload, right results, memory bounded', async () => {
    const dir = tempDir('rtl-fuzz-');
    const env = await clusterEnv(join(dir, 'cache'), {
      RTL_LOG_LEVEL: 'warn',
      RTL_MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES),
    });
    const relay = spawnService('relay', 'relay', env, dir);
    const nodes: Proc[] = [0, 1].map((i) => spawnService('tasknode', `tn-${String(i)}`, env, dir));
    const recv = `tcp://127.0.0.1:${env.RTL_RELAY_RECV ?? ''}`;
    const send = `tcp://127.0.0.1:${env.RTL_RELAY_SEND ?? ''}`;
    const pub = `tcp://127.0.0.1:${env.RTL_RELAY_PUBLISHER ?? ''}`;
    const client = new Client({ relay: recv, store: false, timeoutMs: 120_000 });
    onTestFinished(() => client.close());
    const end = Date.now() + 30_000;
    while ((await aliveNodes(client)) < 2) {
      for (const p of [relay, ...nodes])
        if (p.child.exitCode !== null) throw new Error(`${p.name} exited:\n${p.tail()}`);
      if (Date.now() > end) throw new Error(`tasknodes did not join:\n${relay.tail()}`);
      await sleep(50);
    }

    // The well-formed workload: canvas calls and Arrow documents, checked against closed forms.
    const run = { fuzzing: true };
    let checked = 0;
    const wrong: string[] = [];
    const workload = (async () => {
      for (let round = 0; run.fuzzing || round < 3; round++) {
        const jobs: Promise<void>[] = [];
        for (let k = 0; k < 10; k++) {
          const i = round * 10 + k;
          jobs.push(
            task('add')
              .applyAsync([i, 2 * i], { client })
              .get()
              .then((v) => {
                if (v !== 3 * i) wrong.push(`add(${String(i)}, ${String(2 * i)}) = ${String(v)}`);
                checked++;
              }),
          );
          jobs.push(
            client
              .execute(
                { '0': { tasks: { task_add: { operations: [{ a: 'x', b: 'y', column: 's' }] } } } },
                { data: { x: [i, 0.5], y: [2, -i] } },
              )
              .result()
              .then((t) => {
                const s = Array.from(t.getChild('s')?.toArray() as Float64Array);
                if (s.length !== 2 || s[0] !== i + 2 || s[1] !== 0.5 - i)
                  wrong.push(`doc ${String(i)}: s = ${JSON.stringify(s)}`);
                checked++;
              }),
          );
        }
        await Promise.all(jobs);
      }
    })();

    const samples: number[] = [];
    const sampler = setInterval(() => {
      if (relay.child.exitCode === null) samples.push(rssBytes(relay.pid));
    }, 250);
    onTestFinished(() => clearInterval(sampler));
    const rssBefore = rssBytes(relay.pid);

    const s = seeds();
    const recvPort = Number(env.RTL_RELAY_RECV);
    const sendPort = Number(env.RTL_RELAY_SEND);
    const pubPort = Number(env.RTL_RELAY_PUBLISHER);
    const started = Date.now();
    const [a, b, c] = await Promise.all([
      fuzzPort(recv, 'dealer', s.recv, FRAMES_PER_PORT, 1),
      fuzzPort(send, 'dealer', s.send, FRAMES_PER_PORT, 2),
      fuzzPort(pub, 'xsub', s.pub.concat(s.recv.slice(0, 2)), FRAMES_PER_PORT, 3),
      rawGarbage(recvPort, 100, 4),
      rawGarbage(sendPort, 100, 5),
      rawGarbage(pubPort, 100, 6),
    ]);
    const fuzzMs = Date.now() - started;
    run.fuzzing = false;
    await workload;
    clearInterval(sampler);

    const status = await client.status({ timeoutMs: 5000 });
    const dropped = (status as { dropped?: { malformed?: number } }).dropped?.malformed ?? 0;
    const jobs = (status as { jobs?: Record<string, number> }).jobs ?? {};
    const MiB = 2 ** 20;
    const mib = (n: number): string => (n / MiB).toFixed(0);
    const mid = Math.floor(samples.length / 2);
    const peak = Math.max(...samples);
    const firstHalfPeak = Math.max(...samples.slice(0, mid));
    const secondHalfPeak = Math.max(...samples.slice(mid));
    process.stderr.write(
      `fuzz: ${String(a.sent + b.sent + c.sent)} messages (${String(a.oversized + b.oversized + c.oversized)} oversized) in ${String(fuzzMs)} ms; ` +
        `relay dropped ${String(dropped)} as malformed, ran ${JSON.stringify(jobs)}; ${String(checked)} workload jobs right; ` +
        `relay RSS ${mib(rssBefore)} MiB before, peak ${mib(peak)} MiB (first half ${mib(firstHalfPeak)}, second half ${mib(secondHalfPeak)})\n`,
    );

    expect(relay.child.exitCode, relay.tail()).toBe(null);
    for (const n of nodes) expect(n.child.exitCode, n.tail()).toBe(null);
    expect([a.sent, b.sent, c.sent]).toEqual([FRAMES_PER_PORT, FRAMES_PER_PORT, FRAMES_PER_PORT]);
    expect(a.oversized + b.oversized).toBeGreaterThan(0);
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(60);
    // Most of the garbage at RECV and SEND was refused as malformed (PUBLISH has no replies),
    // and the relay still answers.
    expect(dropped).toBeGreaterThan(FRAMES_PER_PORT);
    expect(await task('add').applyAsync([20, 22], { client }).get()).toBe(42);
    // Memory: the peak stays within a fixed allowance over the start, and the second half
    // of the run does not keep growing the way a leak per message would.
    expect(peak - rssBefore).toBeLessThan(160 * MiB);
    expect(secondHalfPeak).toBeLessThan(firstHalfPeak + 48 * MiB);
  }, 300_000);

  it('a SUBMIT past MAX_MESSAGE_BYTES fails at the client naming the limit; the relay drops an oversized message and keeps serving that peer after it reconnects', async () => {
    const w = await world(1, { MAX_MESSAGE_BYTES: MAX_MESSAGE_BYTES });
    const client = new Client({
      relay: w.relay.endpoints.recv,
      store: false,
      timeoutMs: 20_000,
      maxMessageBytes: MAX_MESSAGE_BYTES,
    });
    onTestFinished(() => client.close());
    const x = new Float64Array(MAX_MESSAGE_BYTES / 8 + 16); // just over 1 MiB of column data
    const job = client.execute({ '0': { tasks: { task_null: {} } } }, { data: { x } });
    // Refused before it is sent (a timeout would fail it with RTL_ERR_RELAY_UNREACHABLE).
    await expect(job.result()).rejects.toMatchObject({
      code: 'RTL_ERR_TOO_LARGE',
      message: expect.stringMatching(
        /the SUBMIT is \d+ bytes, more than MAX_MESSAGE_BYTES=1048576/,
      ) as unknown,
      detail: { job: job.id, limit: MAX_MESSAGE_BYTES },
    });
    // A raw peer that sends an oversized message anyway: its connection is dropped, the
    // relay keeps running, and the same socket works after ZeroMQ reconnects it.
    const raw = new zmq.Dealer({ linger: 0, routingId: 'oversized-peer' });
    raw.connect(w.relay.endpoints.recv);
    onTestFinished(() => raw.close());
    await raw.send([new Uint8Array(MAX_MESSAGE_BYTES + 1)]);
    const until = Date.now() + 10_000;
    let answered = false;
    while (!answered && Date.now() < until) {
      await raw.send(encodeMessage({ t: 'STATUS', rid: 'after', query: { what: 'cluster' } }));
      raw.receiveTimeout = 500;
      try {
        const d = decodeMessage(await raw.receive());
        answered = d.ok && d.msg.t === 'STATUS' && d.msg.rid === 'after';
      } catch {
        // not reconnected yet
      }
    }
    expect(answered).toBe(true);
    // And a well-formed job of the right size runs.
    const ok = await client
      .execute({ '0': { tasks: { task_null: {} } } }, { data: { x: [1, 2, 3] } })
      .result();
    expect(ok.numRows).toBe(3);
  });

  it('an Arrow input that is cut short or is not Arrow fails its job with RTL_ERR_BAD_DATA naming job, stage and byte offset; the tasknode keeps serving', async () => {
    const w = await world(1);
    const d = new zmq.Dealer({ linger: 0 });
    d.connect(w.relay.endpoints.recv);
    onTestFinished(() => d.close());
    const whole = Buffer.concat(encodeTable(toTable({ x: [1, 2, 3] }), { chunked: false }));
    // Without its end-of-stream marker and the last 8 bytes of the record batch body.
    const cut = whole.subarray(0, whole.length - 16);
    const junk = Buffer.from(randomBytes(rng(5), 300));
    const doc = { '0': { tasks: { task_null: {} } } };
    const errors = new Map<
      string,
      { code: string; message: string; detail?: Record<string, unknown> }
    >();
    for (const [id, frame] of [
      ['j-cut', cut],
      ['j-junk', junk],
    ] as const)
      await d.send(
        encodeMessage(
          { t: 'SUBMIT', id, doc, data: { kind: 'arrow', frames: 1 }, events: false, store: '' },
          [frame],
        ),
      );
    const take = (frames: Buffer[]): void => {
      const m = decodeMessage(frames);
      if (!m.ok) throw m.error;
      if (m.msg.t === 'BATCH') for (const inner of unbatch(m.msg, m.payload)) take(inner);
      else if (m.msg.t === 'ERROR') errors.set(m.msg.id, m.msg.error);
      else if (m.msg.t === 'RESULT') throw new Error(`${m.msg.id} ran on bad input`);
    };
    while (errors.size < 2) take(await d.receive());
    const cutErr = errors.get('j-cut');
    expect(cutErr?.code).toBe('RTL_ERR_BAD_DATA');
    expect(cutErr?.message).toMatch(
      /job j-cut, stage "0": its input is not a valid Arrow table: Arrow IPC stream: message at byte \d+: body length \d+, but \d+ bytes are left/,
    );
    expect(cutErr?.detail).toMatchObject({ job: 'j-cut', stage: '0' });
    expect(cutErr?.detail?.offset).toBeGreaterThan(0);
    const junkErr = errors.get('j-junk');
    expect(junkErr?.code).toBe('RTL_ERR_BAD_DATA');
    expect(junkErr?.message).toMatch(/job j-junk, stage "0": its input is not a valid Arrow table/);
    expect(junkErr?.detail).toMatchObject({ job: 'j-junk', stage: '0', offset: 0 });
    const ok = await w.client.execute(doc, { data: { x: [1, 2, 3] } }).result();
    expect(Array.from(ok.getChild('x')?.toArray() as Float64Array)).toEqual([1, 2, 3]);
  });
});
