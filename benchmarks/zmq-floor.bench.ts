/**
 * The floor: what bare ZeroMQ costs in rtl's process topology, with no rtl code at all.
 *
 *   zmq-floor            client DEALER → "relay" ROUTER (process 2) → "worker" DEALER (process 3)
 *                        → back through the ROUTER → client; a 128-byte message, sequential round trips
 *   zmq-floor-1hop       client DEALER → ROUTER echo in process 2 → client
 *   zmq-floor-pipelined  the 2-hop path with 64 messages in flight, msgs/s
 *
 * The other scenarios compare against these (ratio = how many times slower than the floor).
 * This one file is all three processes: `--role relay` and `--role worker` are the children.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import * as zmq from 'zeromq';
import {
  benchArgs,
  cpuPerJobUs,
  emit,
  latencyResult,
  msSince,
  note,
  processCpuMs,
  rateResult,
  sample,
  type Result,
} from './lib/measure.js';

const MESSAGE_BYTES = 128;
const IN_FLIGHT = 64;
const READY = 'ready';

function argOf(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Process 2: a ROUTER for clients, a ROUTER for the worker, and a ROUTER that echoes (1-hop). */
async function relayRole(): Promise<void> {
  const front = new zmq.Router({ linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  const back = new zmq.Router({ linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  const echo = new zmq.Router({ linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  await Promise.all([
    front.bind('tcp://127.0.0.1:*'),
    back.bind('tcp://127.0.0.1:*'),
    echo.bind('tcp://127.0.0.1:*'),
  ]);
  process.stdout.write(
    `${JSON.stringify({ front: front.lastEndpoint, back: back.lastEndpoint, echo: echo.lastEndpoint })}\n`,
  );
  let worker: Buffer | undefined;
  // Each socket is sent on from one loop only, one send at a time.
  const fromWorkers = async (): Promise<void> => {
    for await (const [id, ...rest] of back) {
      if (id === undefined) continue;
      if (rest.length === 1 && rest[0]?.toString() === READY) {
        worker = id;
        process.stdout.write(`${JSON.stringify({ worker: true })}\n`);
        continue;
      }
      await front.send(rest);
    }
  };
  const fromClients = async (): Promise<void> => {
    for await (const [client, ...payload] of front) {
      if (client === undefined || worker === undefined) continue;
      await back.send([worker, client, ...payload]);
    }
  };
  const echoes = async (): Promise<void> => {
    for await (const msg of echo) await echo.send(msg);
  };
  process.on('SIGTERM', () => process.exit(0));
  await Promise.all([fromWorkers(), fromClients(), echoes()]);
}

/** Process 3: echoes what the relay hands it, client envelope included. */
async function workerRole(back: string): Promise<void> {
  const sock = new zmq.Dealer({ linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  sock.connect(back);
  await sock.send(READY);
  process.on('SIGTERM', () => process.exit(0));
  for await (const msg of sock) await sock.send(msg);
}

function startChild(args: readonly string[]): {
  child: ChildProcess;
  lines: AsyncIterator<string>;
} {
  const child = spawn(process.execPath, [process.argv[1] ?? '', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return { child, lines };
}

async function nextJson(
  lines: AsyncIterator<string>,
  what: string,
): Promise<Record<string, unknown>> {
  const line = await lines.next();
  if (line.done === true) throw new Error(`child exited before it printed ${what}`);
  return JSON.parse(line.value) as Record<string, unknown>;
}

/** Sequential round trips on one DEALER: send, wait for the reply, repeat. */
function roundTrip(sock: zmq.Dealer, msg: Buffer): () => Promise<unknown> {
  return async () => {
    await sock.send(msg);
    await sock.receive();
  };
}

/** `total` messages with `window` in flight; returns msgs/s. */
async function pipelined(
  sock: zmq.Dealer,
  msg: Buffer,
  total: number,
  window: number,
): Promise<number> {
  const t0 = process.hrtime.bigint();
  let sent = 0;
  for (; sent < Math.min(window, total); sent++) await sock.send(msg);
  for (let got = 0; got < total; got++) {
    await sock.receive();
    if (sent < total) {
      await sock.send(msg);
      sent++;
    }
  }
  return total / (msSince(t0) / 1000);
}

async function main(): Promise<void> {
  const args = benchArgs();
  const samples = args.quick ? 500 : 3000;
  const warmup = args.quick ? 200 : 1000;
  const rounds = args.quick ? 3 : 7;
  const perRound = args.quick ? 5000 : 20_000;

  const relay = startChild(['--role', 'relay']);
  const children: ChildProcess[] = [relay.child];
  try {
    const eps = await nextJson(relay.lines, 'its endpoints');
    const worker = startChild(['--role', 'worker', '--back', String(eps.back)]);
    children.push(worker.child);
    await nextJson(relay.lines, 'worker ready');

    const cpuMs = (): Record<string, number> | undefined => {
      const self = process.cpuUsage();
      const relayMs = processCpuMs(relay.child.pid ?? 0);
      const workerMs = processCpuMs(worker.child.pid ?? 0);
      if (relayMs === undefined || workerMs === undefined) return undefined;
      return { client: (self.user + self.system) / 1000, relay: relayMs, worker: workerMs };
    };
    const msg = Buffer.alloc(MESSAGE_BYTES, 7);
    const results: Result[] = [];

    const twoHop = new zmq.Dealer({ linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
    twoHop.connect(String(eps.front));
    note(`zmq-floor: ${String(samples)} sequential 2-hop round trips`);
    await sample(roundTrip(twoHop, msg), { warmup, samples: 0 });
    const cpu2 = cpuMs();
    const s2 = await sample(roundTrip(twoHop, msg), { warmup: 0, samples });
    results.push(
      latencyResult('zmq-floor', s2, {
        detail: {
          hops: 2,
          processes: 3,
          messageBytes: MESSAGE_BYTES,
          cpuPerMsgUs: cpuPerJobUs(cpu2, cpuMs(), samples),
        },
      }),
    );

    const oneHop = new zmq.Dealer({ linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
    oneHop.connect(String(eps.echo));
    note(`zmq-floor-1hop: ${String(samples)} sequential 1-hop round trips`);
    const s1 = await sample(roundTrip(oneHop, msg), { warmup, samples });
    results.push(
      latencyResult('zmq-floor-1hop', s1, {
        detail: { hops: 1, processes: 2, messageBytes: MESSAGE_BYTES },
      }),
    );

    note(
      `zmq-floor-pipelined: ${String(rounds)} rounds of ${String(perRound)}, ${String(IN_FLIGHT)} in flight`,
    );
    await pipelined(twoHop, msg, perRound, IN_FLIGHT);
    const rates: number[] = [];
    const cpuP = cpuMs();
    for (let r = 0; r < rounds; r++) rates.push(await pipelined(twoHop, msg, perRound, IN_FLIGHT));
    const cpuPerMsgUs = cpuPerJobUs(cpuP, cpuMs(), rounds * perRound);
    results.push(
      rateResult('zmq-floor-pipelined', 'msgs/s', rates, {
        detail: {
          hops: 2,
          processes: 3,
          inFlight: IN_FLIGHT,
          perRound,
          messageBytes: MESSAGE_BYTES,
          cpuPerMsgUs,
        },
      }),
    );

    twoHop.close();
    oneHop.close();
    emit(args, results);
  } finally {
    for (const c of children) c.kill('SIGTERM');
  }
}

const role = argOf('--role');
const run =
  role === 'relay' ? relayRole() : role === 'worker' ? workerRole(argOf('--back') ?? '') : main();
run.catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
