/**
 * The relay's CURVE allow-list (CURVE_ALLOW): one peer a line, `<public key> <name> [deployer]`.
 * Blank lines and comments (`# ...`) are skipped. docs/security.md describes the file.
 */
import { readFileSync } from 'node:fs';
import { isCurveKey } from './curve.js';
import { RtlError } from './errors.js';

/** One line of the allow-list. */
export interface AllowEntry {
  /** The peer's public key, 40 Z85 characters. */
  readonly key: string;
  /** Who it is, for logs and errors. */
  readonly name: string;
  /** May DEPLOY modules. */
  readonly deployer: boolean;
  /** 1-based line in the file. */
  readonly line: number;
}

/** The marks a line may carry after the name. */
export const ALLOW_MARKS = ['deployer'] as const;

/** The first line `rtl keys --allow` writes into a new allow-list. */
export const ALLOW_HEADER =
  '# rtl CURVE allow-list: one peer a line, `<public key> <name> [deployer]` (docs/security.md)';

/** A parsed allow-list. */
export class AllowList {
  readonly file: string;
  readonly #byKey: ReadonlyMap<string, AllowEntry>;

  constructor(file: string, entries: readonly AllowEntry[]) {
    this.file = file;
    this.#byKey = new Map(entries.map((e) => [e.key, e]));
  }

  /** The entry of a public key (Z85), if listed. */
  get(key: string): AllowEntry | undefined {
    return this.#byKey.get(key);
  }

  get size(): number {
    return this.#byKey.size;
  }

  entries(): AllowEntry[] {
    return [...this.#byKey.values()];
  }
}

/** The allow-list line of a key: `<key> <name>` or `<key> <name> deployer`. */
export function allowLine(key: string, name: string, deployer = false): string {
  return `${key} ${name}${deployer ? ' deployer' : ''}`;
}

/**
 * Parse allow-list text. A line starting with `#` is a comment (no Z85 key starts with `#`:
 * its first group would overflow 32 bits). Throws RTL_ERR_CONFIG naming the file and line
 * of a bad key, a missing name, an unknown mark, or a key listed twice.
 */
export function parseAllowList(text: string, file: string): AllowList {
  const entries: AllowEntry[] = [];
  const seen = new Map<string, number>();
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const words = raw.trim().split(/\s+/).filter(Boolean);
    const [key, name, ...marks] = words;
    if (key === undefined || key.startsWith('#')) return;
    if (!isCurveKey(key)) {
      problems.push(
        `line ${String(line)}: ${JSON.stringify(key.length > 48 ? key.slice(0, 45) + '...' : key)} is not a CURVE public key (40 Z85 characters)`,
      );
      return;
    }
    if (name === undefined) {
      problems.push(`line ${String(line)}: key ${key} has no name (write \`${key} <name>\`)`);
      return;
    }
    const unknown = marks.filter((m) => !(ALLOW_MARKS as readonly string[]).includes(m));
    if (unknown.length > 0) {
      problems.push(
        `line ${String(line)}: unknown mark ${unknown.map((m) => JSON.stringify(m)).join(', ')} after ${name} (the only mark is \`deployer\`)`,
      );
      return;
    }
    const before = seen.get(key);
    if (before !== undefined) {
      problems.push(`line ${String(line)}: key ${key} is listed already on line ${String(before)}`);
      return;
    }
    seen.set(key, line);
    entries.push({ key, name, deployer: marks.includes('deployer'), line });
  });
  if (problems.length > 0)
    throw new RtlError(
      'RTL_ERR_CONFIG',
      `CURVE_ALLOW=${file}: ${problems.length === 1 ? (problems[0] ?? '') : `${String(problems.length)} problems:\n  ${problems.join('\n  ')}`}`,
      { key: 'CURVE_ALLOW', file, problems },
    );
  return new AllowList(file, entries);
}

/** Read and parse an allow-list file; throws RTL_ERR_CONFIG naming CURVE_ALLOW and the file. */
export function readAllowList(file: string): AllowList {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new RtlError(
      'RTL_ERR_CONFIG',
      `CURVE_ALLOW=${file}: ${code === 'ENOENT' ? 'no such allow-list file (`rtl keys ... --allow <file>` writes one; docs/security.md)' : `cannot read the allow-list: ${err instanceof Error ? err.message : String(err)}`}`,
      { key: 'CURVE_ALLOW', file },
      { cause: err },
    );
  }
  return parseAllowList(text, file);
}
