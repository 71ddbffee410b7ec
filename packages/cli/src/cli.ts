/**
 * The `rtl` command line: find the command, split its own flags from setting flags, load the
 * config, run it, and turn every failure into `rtl <command>: <what went wrong>` and an exit
 * code (0 done, 1 failed, 2 usage).
 */
import { readFileSync } from 'node:fs';
import {
  RtlError,
  loadConfig,
  parseFlags,
  settingFromFlag,
  SETTING_NAMES,
  flagOfSetting,
} from '@rtl/core';
import { CliError, type Command } from './command.js';
import { deploy } from './commands/deploy.js';
import { esp } from './commands/esp.js';
import { keys } from './commands/keys.js';
import { restart } from './commands/restart.js';
import { run } from './commands/run.js';
import { start } from './commands/start.js';
import { nodes, status } from './commands/status.js';
import { stop } from './commands/stop.js';
import { tasks } from './commands/tasks.js';
import { suggest } from './format.js';
import { commandHelp, mainHelp } from './help.js';

/** Every command, in the order `rtl --help` lists them. */
export const COMMANDS: readonly Command[] = [
  start,
  status,
  nodes,
  run,
  tasks,
  deploy,
  esp,
  keys,
  stop,
  restart,
];

/** The CLI package's version. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? '0.0.0';
}

function booleansOf(cmd: Command | undefined): string[] {
  const own = cmd?.flags.filter((f) => f.value === undefined).map((f) => f.name) ?? [];
  return [...own, 'help', 'h', 'version', 'v'];
}

const GLOBAL_FLAGS = ['help', 'h', 'version', 'v', 'config'];

/** Whether a flag is a setting flag (`--relay-recv`) or `--config`. */
function isSettingFlag(name: string): boolean {
  return name === 'config' || settingFromFlag(name) !== undefined;
}

/** Split flags into the command's own and the settings; reject unknown ones with a hint. */
function splitFlags(
  cmd: Command,
  flags: Record<string, string | boolean>,
): { own: Record<string, string | boolean>; settings: Record<string, string | boolean> } {
  const own: Record<string, string | boolean> = {};
  const settings: Record<string, string | boolean> = {};
  for (const [name, value] of Object.entries(flags)) {
    const spec = cmd.flags.find((f) => f.name === name);
    if (spec !== undefined) {
      if (spec.value === undefined && typeof value === 'string')
        throw new CliError(`--${name} takes no value (got "${value}")`, { exitCode: 2 });
      if (spec.value !== undefined && typeof value !== 'string')
        throw new CliError(`--${name} needs a value: --${name} <${spec.value}>`, { exitCode: 2 });
      own[name] = value;
    } else if (isSettingFlag(name)) {
      settings[name] = value;
    } else if (!GLOBAL_FLAGS.includes(name)) {
      const candidates = [
        ...cmd.flags.map((f) => f.name),
        'help',
        'config',
        ...SETTING_NAMES.map(flagOfSetting),
      ];
      const near = suggest(name, candidates);
      const dash = name.length === 1 ? '-' : '--';
      const ownList = cmd.flags.map((f) => `--${f.name}`).join(', ');
      throw new CliError(
        `unknown flag ${dash}${name}${near === undefined ? '' : `; did you mean --${near}?`} ` +
          `Flags of rtl ${cmd.name}: ${ownList === '' ? '(none)' : ownList}, --help, and the setting flags (rtl ${cmd.name} --help lists them)`,
        { exitCode: 2 },
      );
    }
  }
  return { own, settings };
}

/** The command name: the first word that is not a flag or a flag's value. */
function commandName(argv: readonly string[]): string | undefined {
  const booleans = new Set<string>(booleansOf(undefined));
  for (const c of COMMANDS) for (const b of booleansOf(c)) booleans.add(b);
  return parseFlags(argv, { booleans: [...booleans] }).positionals[0];
}

function printError(prefix: string, err: unknown, debug: boolean): number {
  if (err instanceof CliError) {
    console.error(err.bare ? err.message : `${prefix}: ${err.message}`);
    for (const line of err.more) console.error(line);
    return err.exitCode;
  }
  if (err instanceof RtlError) {
    console.error(`${prefix}: ${err.code}: ${err.message}`);
    const { remoteStack, ...detail } = err.detail;
    if (debug) {
      if (typeof remoteStack === 'string') console.error(`remote stack:\n${remoteStack}`);
      console.error(`detail: ${JSON.stringify(detail)}`);
      if (err.code === 'RTL_ERR_INTERNAL' && err.stack !== undefined) console.error(err.stack);
    } else if (typeof remoteStack === 'string') {
      console.error('(--debug shows the remote stack)');
    }
    return 1;
  }
  console.error(
    `${prefix}: internal error (please report it): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
  );
  return 1;
}

/**
 * Run the command line; resolves to the exit code. Prints to stdout and stderr.
 *
 * @example
 * process.exitCode = await runCli(process.argv.slice(2));
 */
export async function runCli(argv: readonly string[]): Promise<number> {
  const name = commandName(argv);
  const cmd = COMMANDS.find((c) => c.name === name);
  const pre = parseFlags(argv, { booleans: booleansOf(cmd) });
  const wantsHelp = pre.flags.help === true || pre.flags.h === true;
  const debug = pre.flags.debug === true || /^(1|true|yes|on)$/i.test(process.env.RTL_DEBUG ?? '');

  if (name === undefined || name === 'help') {
    if (pre.flags.version === true || pre.flags.v === true) {
      console.log(version());
      return 0;
    }
    const topic = name === 'help' ? pre.positionals[1] : undefined;
    const about = COMMANDS.find((c) => c.name === topic);
    if (topic !== undefined && about === undefined) {
      console.error(
        `rtl help: unknown command "${topic}"; commands: ${COMMANDS.map((c) => c.name).join(', ')}`,
      );
      return 2;
    }
    for (const line of about === undefined ? mainHelp(COMMANDS, version()) : commandHelp(about))
      console.log(line);
    return name === undefined && !wantsHelp ? 2 : 0;
  }
  if (cmd === undefined) {
    const near = suggest(
      name,
      COMMANDS.map((c) => c.name),
    );
    console.error(
      `rtl: unknown command "${name}"${near === undefined ? '' : `; did you mean "${near}"?`} ` +
        `Commands: ${COMMANDS.map((c) => c.name).join(', ')} (rtl --help describes them)`,
    );
    return 2;
  }
  if (wantsHelp) {
    for (const line of commandHelp(cmd)) console.log(line);
    return 0;
  }

  const prefix = `rtl ${cmd.name}`;
  try {
    const { own, settings } = splitFlags(cmd, pre.flags);
    const args = pre.positionals.slice(1);
    if (args.length < cmd.args.min)
      throw new CliError(`missing argument; usage: ${cmd.usage}`, { exitCode: 2 });
    if (args.length > cmd.args.max)
      throw new CliError(`unexpected argument "${args[cmd.args.max] ?? ''}"; usage: ${cmd.usage}`, {
        exitCode: 2,
      });
    const config = loadConfig({ env: process.env, flags: settings });
    return await cmd.run({ config, flags: own, args });
  } catch (err) {
    return printError(prefix, err, debug);
  }
}
