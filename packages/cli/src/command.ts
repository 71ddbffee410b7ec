/**
 * What a command is: its name, help text, its own flags, and `run`. Every command also takes
 * setting flags (`--relay-recv 19100`, see docs/config.md); those go to loadConfig.
 */
import type { Config } from '@rtl/core';

/** One of a command's own flags. */
export interface FlagSpec {
  /** Long name without dashes: `json` for `--json`. */
  readonly name: string;
  /** Placeholder of the value (`file`, `ms`); absent for a flag that takes no value. */
  readonly value?: string;
  readonly doc: string;
}

/** What a command's `run` gets. */
export interface CommandContext {
  /** The loaded configuration: defaults, config file, env RTL_<NAME>, then setting flags. */
  readonly config: Config;
  /** The command's own flags, checked against its FlagSpecs. */
  readonly flags: Readonly<Record<string, string | boolean>>;
  /** Words after the command name. */
  readonly args: readonly string[];
}

export interface Command {
  readonly name: string;
  /** One line, for `rtl --help`. */
  readonly summary: string;
  /** `rtl run <doc.json> [--data file]`. */
  readonly usage: string;
  /** Paragraphs of `rtl <name> --help`. */
  readonly description: readonly string[];
  readonly flags: readonly FlagSpec[];
  readonly examples: readonly string[];
  /** Least and most positional arguments. */
  readonly args: { readonly min: number; readonly max: number };
  /** Returns the exit code. */
  run(ctx: CommandContext): Promise<number>;
}

/**
 * A failure the command explains itself: printed as `rtl <command>: <message>` with the exit
 * code given (1 = failed, 2 = the command line was wrong).
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly exitCode: number;
  /** Lines printed after the message (log tails, hints). */
  readonly more: readonly string[];
  /** Print the message as it is, without the `rtl <command>: ` prefix. */
  readonly bare: boolean;

  constructor(
    message: string,
    opts: { exitCode?: number; more?: readonly string[]; bare?: boolean } = {},
  ) {
    super(message);
    this.exitCode = opts.exitCode ?? 1;
    this.more = opts.more ?? [];
    this.bare = opts.bare ?? false;
  }
}

/** A string flag's value, or undefined when absent. */
export function stringFlag(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.flags[name];
  return typeof v === 'string' ? v : undefined;
}

/** Whether a boolean flag is set. */
export function boolFlag(ctx: CommandContext, name: string): boolean {
  return ctx.flags[name] === true;
}
