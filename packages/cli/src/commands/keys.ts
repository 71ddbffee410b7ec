/**
 * `rtl keys relay | client <name> | tasknode <name>`: make a CURVE key pair, write its secret
 * key file (mode 0600) and public key file, and print the settings and the allow-list line
 * that go with it (docs/security.md).
 */
import { appendFileSync, chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  ALLOW_HEADER,
  allowLine,
  expandHome,
  formatKeyFile,
  makeCurveKeyPair,
  readAllowList,
  readKeyFile,
  type KeyFileMeta,
} from '@rtl/core';
import { CliError, boolFlag, stringFlag, type Command, type CommandContext } from '../command.js';
import { suggest } from '../format.js';

/** Where `rtl keys` writes unless told `--dir`. */
export const DEFAULT_KEYS_DIR = '~/.rtl/keys';

const ROLES = ['relay', 'client', 'tasknode'] as const;
type Role = (typeof ROLES)[number];

/** A peer name: no spaces (the allow-list splits on them), at most 64 characters. */
const PEER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

/** The base name of a pair's files: `relay`, `client-alice`, `tasknode-b1`. */
export function keyFileBase(role: Role, name: string): string {
  return role === 'relay' ? 'relay' : `${role}-${name}`;
}

function usage(message: string): CliError {
  return new CliError(message, { exitCode: 2 });
}

function roleOf(word: string): Role {
  const role = ROLES.find((r) => r === word);
  if (role !== undefined) return role;
  const near = suggest(word, ROLES);
  throw usage(
    `"${word}" is not a kind of key${near === undefined ? '' : `; did you mean "${near}"?`} Make one of: rtl keys relay, rtl keys client <name>, rtl keys tasknode <name>`,
  );
}

/** Append `line` to the allow-list `file`, creating it (with a header) when missing. */
function appendAllow(file: string, line: string | undefined): void {
  if (!existsSync(file)) writeFileSync(file, `${ALLOW_HEADER}\n`, { mode: 0o644 });
  if (line !== undefined) appendFileSync(file, `${line}\n`);
  readAllowList(file); // still parses (names the line when it does not)
}

export const keys: Command = {
  name: 'keys',
  summary: 'Make a CURVE key pair for the relay, a client or a tasknode (docs/security.md)',
  usage:
    'rtl keys relay | client <name> [--deployer] | tasknode <name> [--dir d] [--allow file] [--force]',
  description: [
    "Writes <dir>/<kind>-<name>.key_secret (the secret key, mode 0600: it stays on the host that uses it) and <dir>/<kind>-<name>.key (the public key, safe to share), in the certificate format of other ZeroMQ tools; for the relay, relay.key_secret and relay.key. Then prints the public key, the settings that use the files, and the line the relay's allow-list (CURVE_ALLOW) needs for this key.",
    "The relay runs CURVE when CURVE_SERVER_KEY_FILE and CURVE_ALLOW are set; clients, tasknodes and subscribers connect with CURVE when CURVE_SERVER_PUBLIC (the relay's public key) and CURVE_KEY_FILE are set. Only clients marked deployer (--deployer) may deploy modules.",
    "--allow <file> appends the key's line to that allow-list (creating it), for a relay on this host; for the relay, it creates the allow-list if it is missing. An existing key file is kept unless --force is given (peers still using the old key are then refused).",
  ],
  flags: [
    { name: 'dir', value: 'dir', doc: `Directory of the key files (default ${DEFAULT_KEYS_DIR})` },
    { name: 'deployer', doc: 'Client only: mark the key as allowed to DEPLOY modules' },
    { name: 'allow', value: 'file', doc: "Append the key's line to this allow-list file" },
    { name: 'force', doc: 'Replace existing key files' },
  ],
  examples: [
    'rtl keys relay --allow ~/.rtl/keys/allow',
    'rtl keys tasknode worker-b1',
    'rtl keys client alice --deployer --allow ~/.rtl/keys/allow',
  ],
  args: { min: 1, max: 2 },
  run(ctx: CommandContext): Promise<number> {
    const role = roleOf(ctx.args[0] ?? '');
    const given = ctx.args[1];
    if (role === 'relay' && given !== undefined)
      throw usage(
        `rtl keys relay takes no name (got "${given}"); the files are relay.key_secret and relay.key`,
      );
    if (role !== 'relay' && given === undefined)
      throw usage(`missing name: rtl keys ${role} <name> (the name goes on the allow-list line)`);
    const name = given ?? 'relay';
    if (!PEER_NAME.test(name))
      throw usage(
        `name ${JSON.stringify(name)}: use letters, digits, ".", "_", "@" or "-" (no spaces, at most 64), like "worker-b1"`,
      );
    const deployer = boolFlag(ctx, 'deployer');
    if (deployer && role !== 'client')
      throw usage(`--deployer is for clients (rtl keys client <name> --deployer), not a ${role}`);

    const dir = resolve(expandHome(stringFlag(ctx, 'dir') ?? DEFAULT_KEYS_DIR));
    const base = keyFileBase(role, name);
    const secretFile = join(dir, `${base}.key_secret`);
    const publicFile = join(dir, `${base}.key`);
    const force = boolFlag(ctx, 'force');
    if (!force)
      for (const f of [secretFile, publicFile])
        if (existsSync(f))
          throw new CliError(
            `${f} exists already; keep using it, or pass --force to make a new pair (peers using the old key are then refused)`,
          );
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pair = makeCurveKeyPair();
    const meta: KeyFileMeta = { role, name, ...(deployer ? { deployer } : {}) };
    writeFileSync(secretFile, formatKeyFile(pair, meta), { mode: 0o600 });
    chmodSync(secretFile, 0o600); // the mode of a file that existed (--force) stays otherwise
    writeFileSync(publicFile, formatKeyFile(pair, meta, { publicOnly: true }), { mode: 0o644 });
    const check = readKeyFile(secretFile, 'the new key file');
    if (check.publicKey !== pair.publicKey)
      throw new CliError(`${secretFile} does not read back as the pair just made; remove it`);

    const allow = stringFlag(ctx, 'allow');
    const allowFile = allow === undefined ? undefined : resolve(expandHome(allow));
    const line = role === 'relay' ? undefined : allowLine(pair.publicKey, name, deployer);
    if (allowFile !== undefined) appendAllow(allowFile, line);

    const what =
      role === 'relay' ? 'the relay' : `${role} "${name}"${deployer ? ' (deployer)' : ''}`;
    const out = [
      `made a CURVE key pair for ${what}`,
      `  public key  ${pair.publicKey}`,
      `  secret key  ${secretFile}  (mode 0600; keep it on this host)`,
      `  public file ${publicFile}`,
      '',
    ];
    // Z85 keys hold shell characters (`*`, `&`, `<`, ...) but never a single quote.
    const env = (name: string, value: string): string => `  RTL_${name}='${value}'`;
    const how = '(env, as below; or the same names without RTL_ in a --config JSON file)';
    if (role === 'relay') {
      out.push(
        `On the relay's host, set ${how}:`,
        env('CURVE_SERVER_KEY_FILE', secretFile),
        allowFile === undefined
          ? "  RTL_CURVE_ALLOW='<allow-list file: one `<public key> <name> [deployer]` line per peer>'"
          : env('CURVE_ALLOW', allowFile),
        'On every client, tasknode and subscriber host, set:',
        env('CURVE_SERVER_PUBLIC', pair.publicKey),
      );
      if (allowFile !== undefined)
        out.push('', `The allow-list ${allowFile} is ready for the peers' lines.`);
    } else {
      out.push(
        `On the ${role}'s host, set ${how}:`,
        env('CURVE_KEY_FILE', secretFile),
        "  RTL_CURVE_SERVER_PUBLIC='<the relay's public key, printed by `rtl keys relay`>'",
        allowFile === undefined
          ? "Add this line to the relay's allow-list (CURVE_ALLOW):"
          : `Added this line to the allow-list ${allowFile}:`,
        `  ${line ?? ''}`,
      );
    }
    for (const l of out) console.log(l);
    return Promise.resolve(0);
  },
};
