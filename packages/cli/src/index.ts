/** @rtl/cli: the `rtl` command as a function, for embedding and tests. */
export { runCli, COMMANDS, version } from './cli.js';
export { CliError } from './command.js';
export type { Command, CommandContext, FlagSpec } from './command.js';
