/** Help text: `rtl --help` and `rtl <command> --help`. */
import { SETTING_NAMES, SETTINGS, flagOfSetting } from '@rtl/core';
import type { Command, FlagSpec } from './command.js';

const WIDTH = 100;

/** Wrap a paragraph to WIDTH columns, every line starting with `indent`. */
export function wrap(text: string, indent = ''): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== '' && indent.length + line.length + 1 + word.length > WIDTH) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(indent + line);
  return lines;
}

function flagLabel(f: FlagSpec): string {
  return f.value === undefined ? `--${f.name}` : `--${f.name} <${f.value}>`;
}

/** Wrap a list as `a, b, c`, breaking only between items. */
function wrapList(items: readonly string[], indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const [i, item] of items.entries()) {
    const piece = i < items.length - 1 ? `${item},` : item;
    if (line !== '' && indent.length + line.length + 1 + piece.length > WIDTH) {
      lines.push(indent + line);
      line = piece;
    } else {
      line = line === '' ? piece : `${line} ${piece}`;
    }
  }
  if (line !== '') lines.push(indent + line);
  return lines;
}

/** The setting flags every command takes: `--relay-recv <port>` and so on. */
export function settingFlagsText(): string[] {
  const flags = SETTING_NAMES.map((n) => {
    const s = SETTINGS[n];
    return s.kind === 'bool' ? `--${flagOfSetting(n)}` : `--${flagOfSetting(n)} <${s.kind}>`;
  });
  return [
    ...wrap(
      'Every command also takes the settings as flags (they win over env RTL_<NAME> and the config file; docs/config.md describes each):',
      '  ',
    ),
    ...wrapList(flags, '    '),
    '  --config <file>   a JSON config file of settings (also env RTL_CONFIG)',
  ];
}

const HELP_FLAG: FlagSpec = { name: 'help', doc: 'Show this help (also -h)' };

export function commandHelp(cmd: Command): string[] {
  const flags = [...cmd.flags, HELP_FLAG];
  const labels = flags.map(flagLabel);
  const width = Math.max(...labels.map((l) => l.length));
  const out = [`rtl ${cmd.name}: ${cmd.summary}`, '', `Usage: ${cmd.usage}`, ''];
  for (const p of cmd.description) out.push(...wrap(p), '');
  out.push('Flags:');
  flags.forEach((f, i) => out.push(`  ${(labels[i] ?? '').padEnd(width)}  ${f.doc}`));
  out.push(...settingFlagsText(), '', 'Examples:', ...cmd.examples.map((e) => `  ${e}`));
  return out;
}

export function mainHelp(commands: readonly Command[], version: string): string[] {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `rtl ${version}: run staged numeric data pipelines (transforms) on a relay and its tasknodes`,
    '',
    'Usage: rtl <command> [arguments] [flags]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Flags:',
    '  --help, -h        Show help (`rtl <command> --help` for one command)',
    '  --version, -v     Print the version',
    ...settingFlagsText(),
    '',
    'Quickstart:',
    '  rtl start && rtl run examples/quickstart.json && rtl stop',
    '',
    'Exit codes: 0 done, 1 failed (the message says why), 2 the command line is wrong.',
  ];
}
