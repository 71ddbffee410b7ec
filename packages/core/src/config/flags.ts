/**
 * Command-line flags for the CLI: `--relay-recv 19100`, `--relay-recv=19100`, `--debug`,
 * `--no-debug`, `-h`, and `--` to end the flags.
 */
import { SETTINGS } from './schema.js';
import { settingFromFlag } from './load.js';

export interface ParsedFlags {
  /** Flag names as written (without dashes); a flag with no value is `true`. */
  flags: Record<string, string | boolean>;
  /** Everything that is not a flag, in order. */
  positionals: string[];
}

export interface ParseFlagsOptions {
  /** The command's own boolean flags (boolean settings such as `debug` are known already). */
  booleans?: readonly string[];
}

/**
 * Split argv into flags and positionals. A boolean flag (a bool setting, or one of
 * `booleans`) never takes the next word as its value; any other flag does, unless the next
 * word is itself a flag.
 *
 * @example
 * parseFlags(['run', '--relay-recv', '19100', '--debug', 'doc.json']);
 * // { flags: { 'relay-recv': '19100', debug: true }, positionals: ['run', 'doc.json'] }
 */
export function parseFlags(argv: readonly string[], opts: ParseFlagsOptions = {}): ParsedFlags {
  const booleans = new Set(opts.booleans ?? []);
  const isBoolean = (name: string): boolean => {
    if (booleans.has(name)) return true;
    const setting = settingFromFlag(name);
    return setting !== undefined && SETTINGS[setting].kind === 'bool';
  };
  const flags: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const body = arg.slice(2);
      const eq = body.indexOf('=');
      if (eq > 0) {
        flags[body.slice(0, eq)] = body.slice(eq + 1);
      } else if (body.startsWith('no-') && isBoolean(body.slice(3))) {
        flags[body.slice(3)] = false;
      } else if (isBoolean(body)) {
        flags[body] = true;
      } else {
        const next = argv[i + 1];
        if (next !== undefined && (!next.startsWith('-') || /^-\d/.test(next))) {
          flags[body] = next;
          i++;
        } else {
          flags[body] = true;
        }
      }
    } else if (/^-[a-zA-Z]+$/.test(arg)) {
      for (const letter of arg.slice(1)) flags[letter] = true;
    } else {
      positionals.push(arg);
    }
  }
  return { flags, positionals };
}
