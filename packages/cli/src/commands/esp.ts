/**
 * `rtl esp <what> ...`: manage ESP32 nodes over MQTT (docs/esp32-protocol.md). The command
 * joins the broker at MQTT_URL as a bridge of its own (it never starts a broker), reads the
 * nodes' retained hello and status, and sends its command to the node.
 */
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { RtlError } from '@rtl/core';
import { EspBridge, probeTcp, type EspNode } from '@rtl/esp32-bridge';
import { VirtualEsp32 } from '@rtl/esp32-bridge/virtual';
import { CliError, boolFlag, stringFlag, type Command, type CommandContext } from '../command.js';
import { formatDuration, renderTable } from '../format.js';
import { timeoutFlag } from './status.js';

/**
 * How `rtl esp` collects the nodes' retained hellos and statuses: for one node, until its hello
 * and status are in; for all, at least GATHER_MS, then until none has come for QUIET_MS (a
 * broker with many nodes takes a while); at most MAX_GATHER_MS either way.
 */
const GATHER_MS = 400;
const QUIET_MS = 250;
const MAX_GATHER_MS = 5000;
/** Node ids an error message lists before it says how many more there are. */
const LIST_IDS = 10;

async function gather(bridge: EspBridge, want?: string): Promise<void> {
  const t0 = Date.now();
  let last = t0;
  const off = bridge.onChange(() => {
    last = Date.now();
  });
  try {
    for (;;) {
      const now = Date.now();
      const node = want === undefined ? undefined : bridge.node(want);
      const known = node !== undefined && node.fw !== '' && node.online;
      if (now - t0 >= MAX_GATHER_MS) return;
      if (known || (want === undefined && now - t0 >= GATHER_MS && now - last >= QUIET_MS)) return;
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    off();
  }
}
const SUBCOMMANDS = [
  'list',
  'gpio',
  'eval',
  'exec',
  'script',
  'deploy',
  'reboot',
  'simulate',
] as const;
type Sub = (typeof SUBCOMMANDS)[number];

const USAGE: Record<Sub, string> = {
  list: 'rtl esp list',
  gpio: 'rtl esp gpio <node> <pin> [0|1]',
  eval: 'rtl esp eval <node> <expression>',
  exec: 'rtl esp exec <node> <statements>',
  script: 'rtl esp script <node> <file.py> [--no-run] [--persist]',
  deploy: 'rtl esp deploy <node|all> <module.py>',
  reboot: 'rtl esp reboot <node>',
  simulate: 'rtl esp simulate [--nodes N] [--prefix sim] [--duration s]',
};

function usageError(message: string): CliError {
  return new CliError(message, {
    exitCode: 2,
    more: ['usage:', ...SUBCOMMANDS.map((s) => `  ${USAGE[s]}`)],
  });
}

async function connect(ctx: CommandContext): Promise<EspBridge> {
  try {
    return await EspBridge.start({ url: ctx.config.MQTT_URL, embedded: 'never', sensors: false });
  } catch (err) {
    if (err instanceof RtlError)
      throw new CliError(`${err.message} (is \`rtl start\` running, or MQTT_URL right?)`);
    throw err;
  }
}

/** The node named on the command line, once its retained hello and status are in. */
function nodeOf(bridge: EspBridge, id: string | undefined): EspNode {
  if (id === undefined) throw usageError('name the node (see `rtl esp list`)');
  const node = bridge.node(id);
  if (node === undefined) {
    const known = bridge
      .nodes()
      .map((n) => n.id)
      .sort((x, y) => x.localeCompare(y, undefined, { numeric: true }));
    const more = known.length > LIST_IDS ? ` and ${String(known.length - LIST_IDS)} more` : '';
    throw new CliError(
      `no ESP node ${id} on ${bridge.url}${known.length > 0 ? `; nodes: ${known.slice(0, LIST_IDS).join(', ')}${more} (rtl esp list)` : ' (no node has said hello there)'}`,
    );
  }
  if (!node.online) throw new CliError(`ESP node ${id} is offline (its last will said so)`);
  return node;
}

function intArg(raw: string | undefined, what: string): number {
  const n = Number(raw);
  if (raw === undefined || !Number.isSafeInteger(n) || n < 0)
    throw usageError(`${what}: expected a whole number >= 0, got ${raw ?? 'nothing'}`);
  return n;
}

function printValue(value: unknown): void {
  console.log(typeof value === 'string' ? value : JSON.stringify(value));
}

/** An error of the node: its message, then the MicroPython traceback. */
function nodeError(err: unknown): never {
  if (err instanceof RtlError) {
    const tb = typeof err.detail.traceback === 'string' ? err.detail.traceback : '';
    throw new CliError(`${err.code}: ${err.message}`, {
      more: tb === '' ? [] : tb.trimEnd().split('\n'),
    });
  }
  throw err;
}

function listNodes(bridge: EspBridge): number {
  const nodes = [...bridge.nodes()].sort((a, b) =>
    a.id.localeCompare(b.id, undefined, { numeric: true }),
  );
  if (nodes.length === 0) {
    console.log(`no ESP node has said hello on ${bridge.url}`);
    return 0;
  }
  const now = Date.now();
  const rows = nodes.map((n) => [
    n.id,
    n.online ? 'online' : 'offline',
    n.lastSeen === null ? '-' : `${formatDuration(now - n.lastSeen)} ago`,
    n.fw,
    n.memFree === null ? '-' : String(n.memFree),
    n.tasks.join(',') || '-',
    n.streams.map((s) => s.name).join(',') || '-',
  ]);
  for (const line of renderTable(
    ['node', 'status', 'last seen', 'fw', 'mem free', 'tasks', 'streams'],
    rows,
  ))
    console.log(line);
  return 0;
}

async function runSub(
  ctx: CommandContext,
  bridge: EspBridge,
  sub: Sub,
  rest: readonly string[],
): Promise<number> {
  const timeout = stringFlag(ctx, 'timeout') === undefined ? undefined : timeoutFlag(ctx, 5000);
  const opts = { ...(timeout === undefined ? {} : { timeoutMs: timeout }), retained: true };
  const [id, a, b] = rest;
  switch (sub) {
    case 'list':
      return listNodes(bridge);
    case 'gpio': {
      const node = nodeOf(bridge, id).id;
      const pin = intArg(a, 'pin');
      if (b === undefined)
        printValue(await bridge.gpioRead(node, pin, undefined, opts).catch(nodeError));
      else {
        if (b !== '0' && b !== '1') throw usageError(`gpio value: expected 0 or 1, got ${b}`);
        printValue(await bridge.gpioWrite(node, pin, b === '1' ? 1 : 0, opts).catch(nodeError));
      }
      return 0;
    }
    case 'eval':
      if (a === undefined) throw usageError('eval: give the expression');
      printValue(await bridge.eval(nodeOf(bridge, id).id, a, opts).catch(nodeError));
      return 0;
    case 'exec':
      if (a === undefined) throw usageError('exec: give the statements');
      await bridge.exec(nodeOf(bridge, id).id, a, opts).catch(nodeError);
      return 0;
    case 'script': {
      if (a === undefined) throw usageError('script: give the .py file');
      const node = nodeOf(bridge, id).id;
      const code = readSource(a);
      const value = await bridge
        .script(
          node,
          {
            name: basename(a, extname(a)),
            code,
            run: !boolFlag(ctx, 'no-run'),
            persist: boolFlag(ctx, 'persist'),
          },
          opts,
        )
        .catch(nodeError);
      if (value !== null && value !== undefined) printValue(value);
      return 0;
    }
    case 'deploy': {
      if (a === undefined) throw usageError('deploy: give the module .py file');
      const code = readSource(a);
      const module = basename(a, extname(a));
      const targets =
        id === 'all'
          ? bridge
              .nodes()
              .filter((n) => n.online)
              .map((n) => n.id)
          : [nodeOf(bridge, id).id];
      if (targets.length === 0) throw new CliError(`no ESP node is online on ${bridge.url}`);
      let failed = 0;
      for (const node of targets) {
        try {
          const tasks = await bridge.deploy(node, module, code, opts);
          console.log(`${node}: ${module} deployed; tasks ${tasks.join(', ') || '(none)'}`);
        } catch (err) {
          failed++;
          const tb =
            err instanceof RtlError && typeof err.detail.traceback === 'string'
              ? `\n${err.detail.traceback.trimEnd()}`
              : '';
          console.log(`${node}: failed: ${err instanceof Error ? err.message : String(err)}${tb}`);
        }
      }
      return failed === 0 ? 0 : 1;
    }
    case 'simulate':
      return simulate(ctx);
    case 'reboot':
      await bridge.reboot(nodeOf(bridge, id).id, opts).catch(nodeError);
      console.log(`${String(id)} reboots`);
      return 0;
  }
}

/**
 * `rtl esp simulate`: N virtual ESP32 nodes (the firmware under MicroPython WebAssembly)
 * against the broker at MQTT_URL, each streaming `adc` (pin 34, 10 samples/s, a slow sine
 * with noise), until Ctrl-C or --duration; they leave cleanly (offline status).
 */
async function simulate(ctx: CommandContext): Promise<number> {
  const n = intArg(stringFlag(ctx, 'nodes') ?? '3', '--nodes');
  if (n < 1 || n > 2000) throw usageError(`--nodes: expected 1 to 2000, got ${String(n)}`);
  const prefix = stringFlag(ctx, 'prefix') ?? 'sim';
  if (!/^[A-Za-z0-9_-]{1,24}$/.test(prefix))
    throw usageError(`--prefix: expected 1 to 24 of A-Z a-z 0-9 _ -, got ${prefix}`);
  const durationRaw = stringFlag(ctx, 'duration');
  const duration = durationRaw === undefined ? undefined : Number(durationRaw);
  if (duration !== undefined && !(duration > 0))
    throw usageError(`--duration: expected seconds > 0, got ${String(durationRaw)}`);
  const url = ctx.config.MQTT_URL;
  const port = Number(new URL(url).port || 1883);
  const host = new URL(url).hostname;
  if (!(await probeTcp(host, port, 1000)))
    throw new CliError(
      `no MQTT broker answers at ${url} (start one with \`rtl start\`, or set MQTT_URL)`,
    );
  const nodes: VirtualEsp32[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(nodes.map((v) => v.stop().catch(() => undefined)));
  };
  const done = { stop: (): void => undefined };
  const stopped = new Promise<void>((resolve) => {
    done.stop = resolve;
  });
  const onSignal = (): void => {
    done.stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (let i = 0; i < n; i++) {
      const phase = (i * 2 * Math.PI) / n;
      nodes.push(
        await VirtualEsp32.start({
          brokerUrl: url,
          id: `${prefix}-${String(i)}`,
          streams: [{ name: 'adc', pin: 34, hz: 10, type: 'u16' }],
          signals: {
            34: (_pin, t) => 2048 + 1500 * Math.sin(phase + t / 5000) + (Math.random() - 0.5) * 40,
          },
        }),
      );
      if (n >= 50 && (i + 1) % 50 === 0)
        process.stderr.write(`started ${String(i + 1)} of ${String(n)} virtual nodes\n`);
    }
    console.log(
      `${String(n)} virtual ESP32 node${n === 1 ? '' : 's'} ${prefix}-0${n > 1 ? `..${prefix}-${String(n - 1)}` : ''} on ${url}, each streaming adc at 10 samples/s; ${duration === undefined ? 'Ctrl-C stops them' : `stopping after ${String(duration)} s`}`,
    );
    const timer =
      duration === undefined ? undefined : setTimeout(() => done.stop(), duration * 1000);
    await stopped;
    if (timer !== undefined) clearTimeout(timer);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stopAll();
  }
  console.log(`stopped ${String(nodes.length)} virtual nodes`);
  return 0;
}

function readSource(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export const esp: Command = {
  name: 'esp',
  summary: 'Manage ESP32 nodes: list, gpio, eval, exec, script, deploy, reboot',
  usage: 'rtl esp <list|gpio|eval|exec|script|deploy|reboot> [node] [...]',
  description: [
    'Talks to the ESP32 nodes over the MQTT broker at MQTT_URL (the one `rtl start` uses): lists them with their status and when they were last heard; reads and writes GPIO pins; evaluates an expression or runs statements and prints the value or the MicroPython traceback; uploads a script and runs it (--persist: after every boot too); deploys a MicroPython module whose functions become tasks stages routed to `esp32` can run; reboots a node. `simulate` starts virtual nodes (the real firmware under MicroPython WebAssembly) so all of this can be tried without a board.',
    ...SUBCOMMANDS.map((s) => USAGE[s]),
  ],
  flags: [
    {
      name: 'timeout',
      value: 'ms',
      doc: 'How long to wait for the node (default 5000; 15000 for script and deploy)',
    },
    { name: 'persist', doc: 'script: run it after every boot too' },
    { name: 'no-run', doc: 'script: save it without running it now' },
    { name: 'nodes', value: 'N', doc: 'simulate: how many virtual nodes (default 3)' },
    {
      name: 'prefix',
      value: 'name',
      doc: 'simulate: node ids are <name>-0, <name>-1, ... (default sim)',
    },
    {
      name: 'duration',
      value: 's',
      doc: 'simulate: stop after this many seconds (default: at Ctrl-C)',
    },
  ],
  examples: [
    'rtl esp list',
    'rtl esp gpio esp32-a1b2c3 2 1',
    "rtl esp eval esp32-a1b2c3 'gc.mem_free()'",
    'rtl esp script esp32-a1b2c3 blink.py --persist',
    'rtl esp deploy all filters.py',
    'rtl esp simulate --nodes 20',
  ],
  args: { min: 1, max: 4 },
  async run(ctx: CommandContext): Promise<number> {
    const [what, ...rest] = ctx.args;
    const sub = SUBCOMMANDS.find((s) => s === what);
    if (sub === undefined) throw usageError(`unknown: esp ${what ?? ''}`);
    if (sub === 'simulate') return simulate(ctx);
    const bridge = await connect(ctx);
    try {
      await gather(bridge, sub === 'list' || rest[0] === 'all' ? undefined : rest[0]);
      return await runSub(ctx, bridge, sub, rest);
    } finally {
      await bridge.close();
    }
  },
};
