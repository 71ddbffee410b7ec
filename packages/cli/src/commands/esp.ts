/**
 * `rtl esp <what> ...`: manage ESP32 nodes over MQTT (docs/esp32-protocol.md). The command
 * joins the broker at MQTT_URL as a bridge of its own (it never starts a broker), reads the
 * nodes' retained hello and status, and sends its command to the node.
 */
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { RtlError } from '@rtl/core';
import { EspBridge, type EspNode } from '@rtl/esp32-bridge';
import { CliError, boolFlag, stringFlag, type Command, type CommandContext } from '../command.js';
import { formatDuration, renderTable } from '../format.js';
import { timeoutFlag } from './status.js';

/** How long `rtl esp` collects retained hellos before it lists or looks a node up. */
const GATHER_MS = 400;
const SUBCOMMANDS = ['list', 'gpio', 'eval', 'exec', 'script', 'deploy', 'reboot'] as const;
type Sub = (typeof SUBCOMMANDS)[number];

const USAGE: Record<Sub, string> = {
  list: 'rtl esp list',
  gpio: 'rtl esp gpio <node> <pin> [0|1]',
  eval: 'rtl esp eval <node> <expression>',
  exec: 'rtl esp exec <node> <statements>',
  script: 'rtl esp script <node> <file.py> [--no-run] [--persist]',
  deploy: 'rtl esp deploy <node|all> <module.py>',
  reboot: 'rtl esp reboot <node>',
};

function usageError(message: string): CliError {
  return new CliError(message, {
    exitCode: 2,
    more: ['usage:', ...SUBCOMMANDS.map((s) => `  ${USAGE[s]}`)],
  });
}

async function connect(ctx: CommandContext): Promise<EspBridge> {
  try {
    return await EspBridge.start({ url: ctx.config.MQTT_URL, embedded: 'never' });
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
    const known = bridge.nodes().map((n) => n.id);
    throw new CliError(
      `no ESP node ${id} on ${bridge.url}${known.length > 0 ? `; nodes: ${known.join(', ')}` : ' (no node has said hello there)'}`,
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
    case 'reboot':
      await bridge.reboot(nodeOf(bridge, id).id, opts).catch(nodeError);
      console.log(`${String(id)} reboots`);
      return 0;
  }
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
    'Talks to the ESP32 nodes over the MQTT broker at MQTT_URL (the one `rtl start` uses): lists them with their status and when they were last heard; reads and writes GPIO pins; evaluates an expression or runs statements and prints the value or the MicroPython traceback; uploads a script and runs it (--persist: after every boot too); deploys a MicroPython module whose functions become tasks stages routed to `esp32` can run; reboots a node.',
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
  ],
  examples: [
    'rtl esp list',
    'rtl esp gpio esp32-a1b2c3 2 1',
    "rtl esp eval esp32-a1b2c3 'gc.mem_free()'",
    'rtl esp script esp32-a1b2c3 blink.py --persist',
    'rtl esp deploy all filters.py',
  ],
  args: { min: 1, max: 4 },
  async run(ctx: CommandContext): Promise<number> {
    const [what, ...rest] = ctx.args;
    const sub = SUBCOMMANDS.find((s) => s === what);
    if (sub === undefined) throw usageError(`unknown: esp ${what ?? ''}`);
    const bridge = await connect(ctx);
    try {
      await new Promise((r) => setTimeout(r, GATHER_MS));
      return await runSub(ctx, bridge, sub, rest);
    } finally {
      await bridge.close();
    }
  },
};
