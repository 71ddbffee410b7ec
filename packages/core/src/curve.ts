/**
 * CURVE keys: Z85 text, key files, the relay's and the peers' keys from the config, and the
 * deployer proof of a DEPLOY. A CURVE key pair is a Curve25519 (X25519) pair; ZeroMQ writes
 * each key as 40 Z85 characters. docs/security.md describes the setup.
 */
import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  timingSafeEqual,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { RtlError } from './errors.js';

/** A CURVE key pair, both keys as 40 Z85 characters. */
export interface CurveKeyPair {
  readonly publicKey: string;
  readonly secretKey: string;
}

/** What a client, tasknode or subscriber needs to connect with CURVE. */
export interface CurveClientKeys extends CurveKeyPair {
  /** The relay's public key (CURVE_SERVER_PUBLIC). */
  readonly serverKey: string;
  /** The name its key file gives (for the allow-list line an error suggests). */
  readonly name?: string;
}

/** A key file's pair and what `rtl keys` wrote about it. */
export interface KeyFile extends CurveKeyPair {
  readonly file: string;
  /** `relay`, `client` or `tasknode`, when the file says. */
  readonly role?: string;
  readonly name?: string;
}

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const Z85_INDEX = new Map(Array.from({ length: Z85.length }, (_, i) => [Z85.charAt(i), i]));

/** Z85 (ZeroMQ RFC 32) text of `bytes`; the length must be a multiple of 4. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0)
    throw new RangeError(`z85Encode: ${String(bytes.length)} bytes is not a multiple of 4`);
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let v =
      (((bytes[i] ?? 0) << 24) | ((bytes[i + 1] ?? 0) << 16) | ((bytes[i + 2] ?? 0) << 8)) +
      (bytes[i + 3] ?? 0);
    v >>>= 0;
    let chunk = '';
    for (let j = 0; j < 5; j++) {
      chunk = (Z85[v % 85] ?? '') + chunk;
      v = Math.floor(v / 85);
    }
    out += chunk;
  }
  return out;
}

/** The bytes of Z85 text; undefined when it is not Z85 (bad length or character, overflow). */
export function z85Decode(text: string): Buffer | undefined {
  if (text.length % 5 !== 0) return undefined;
  const out = Buffer.alloc((text.length / 5) * 4);
  for (let i = 0; i < text.length; i += 5) {
    let v = 0;
    for (let j = 0; j < 5; j++) {
      const d = Z85_INDEX.get(text[i + j] ?? '');
      if (d === undefined) return undefined;
      v = v * 85 + d;
    }
    if (v > 0xffffffff) return undefined;
    out.writeUInt32BE(v, (i / 5) * 4);
  }
  return out;
}

/** Whether `text` is a CURVE key: 40 Z85 characters (32 bytes). */
export function isCurveKey(text: string): boolean {
  return text.length === 40 && z85Decode(text) !== undefined;
}

// DER wrappers of a raw X25519 key (RFC 8410), so node:crypto takes the 32 bytes ZeroMQ uses.
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');

function keyBytes(key: string, what: string): Buffer {
  const bytes = key.length === 40 ? z85Decode(key) : undefined;
  if (bytes === undefined) throw new RangeError(`${what} is not a CURVE key (40 Z85 characters)`);
  return bytes;
}

function privateKeyObject(secretKey: string) {
  return createPrivateKey({
    key: Buffer.concat([PKCS8_X25519, keyBytes(secretKey, 'secret key')]),
    format: 'der',
    type: 'pkcs8',
  });
}

function publicKeyObject(publicKey: string) {
  return createPublicKey({
    key: Buffer.concat([SPKI_X25519, keyBytes(publicKey, 'public key')]),
    format: 'der',
    type: 'spki',
  });
}

/** The public key of a CURVE secret key (both Z85). */
export function curvePublicKey(secretKey: string): string {
  const spki = createPublicKey(privateKeyObject(secretKey)).export({ format: 'der', type: 'spki' });
  return z85Encode(spki.subarray(SPKI_X25519.length));
}

/**
 * A new random CURVE key pair (X25519 from node:crypto, the keys ZeroMQ's `curveKeyPair()`
 * makes), both keys as 40 Z85 characters.
 */
export function makeCurveKeyPair(): CurveKeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const secretKey = z85Encode(pkcs8.subarray(PKCS8_X25519.length));
  return { publicKey: curvePublicKey(secretKey), secretKey };
}

/** The X25519 secret two key pairs share: ours (secret) with theirs (public). */
function sharedSecret(secretKey: string, publicKey: string): Buffer {
  return diffieHellman({
    privateKey: privateKeyObject(secretKey),
    publicKey: publicKeyObject(publicKey),
  });
}

// ---- key files ----

/** What `rtl keys` writes about a key pair. */
export interface KeyFileMeta {
  readonly role: 'relay' | 'client' | 'tasknode';
  readonly name: string;
  readonly deployer?: boolean;
}

function quote(value: string): string {
  return `"${value.replace(/"/g, "'")}"`;
}

/**
 * A key file's text, in ZeroMQ's certificate format (CZMQ zcert, pyzmq `zmq.auth`), so other
 * ZeroMQ tools read it: `metadata` (role, name) and `curve` (public-key, and secret-key
 * unless `publicOnly`).
 */
export function formatKeyFile(
  pair: CurveKeyPair,
  meta: KeyFileMeta,
  opts: { publicOnly?: boolean; created?: Date } = {},
): string {
  const what = meta.role === 'relay' ? 'the relay' : `${meta.role} "${meta.name}"`;
  const header = opts.publicOnly
    ? [`#   rtl CURVE public key of ${what}: safe to share.`]
    : [
        `#   rtl CURVE secret key of ${what}.`,
        '#   Keep it private (mode 0600); share only the public key.',
      ];
  return [
    ...header,
    `#   Written by \`rtl keys\` on ${(opts.created ?? new Date()).toISOString()}.`,
    '',
    'metadata',
    `    role = ${quote(meta.role)}`,
    `    name = ${quote(meta.name)}`,
    ...(meta.deployer === true ? ['    deployer = "yes"'] : []),
    'curve',
    `    public-key = ${quote(pair.publicKey)}`,
    ...(opts.publicOnly ? [] : [`    secret-key = ${quote(pair.secretKey)}`]),
    '',
  ].join('\n');
}

function configError(setting: string, file: string, what: string, cause?: unknown): RtlError {
  return new RtlError(
    'RTL_ERR_CONFIG',
    `${setting}=${file}: ${what}`,
    { key: setting, file },
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Parse a key file's text (zcert format: `public-key = "..."`, `secret-key = "..."` lines);
 * `setting` names the setting that pointed at it, for the error. Throws RTL_ERR_CONFIG when a
 * key is missing or malformed, or the public key is not the secret key's.
 */
export function parseKeyFile(text: string, file: string, setting: string): KeyFile {
  const values = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([a-z-]+)\s*=\s*"([^"]*)"\s*$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined && !values.has(m[1])) values.set(m[1], m[2]);
  }
  const secretKey = values.get('secret-key');
  if (secretKey === undefined)
    throw configError(
      setting,
      file,
      'not a secret key file: it has no `secret-key = "..."` line (give the .key_secret file `rtl keys` wrote, not the public .key)',
    );
  if (!isCurveKey(secretKey))
    throw configError(setting, file, 'its secret-key is not a CURVE key (40 Z85 characters)');
  const publicKey = curvePublicKey(secretKey);
  const stated = values.get('public-key');
  if (stated !== undefined && stated !== publicKey)
    throw configError(
      setting,
      file,
      `its public-key ${stated} is not the public key of its secret-key (that is ${publicKey}); make a new pair with \`rtl keys\``,
    );
  const role = values.get('role');
  const name = values.get('name');
  return {
    file,
    publicKey,
    secretKey,
    ...(role === undefined ? {} : { role }),
    ...(name === undefined ? {} : { name }),
  };
}

/** Read a secret key file; throws RTL_ERR_CONFIG naming `setting` and the file. */
export function readKeyFile(file: string, setting: string): KeyFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw configError(
      setting,
      file,
      code === 'ENOENT'
        ? 'no such key file (make one with `rtl keys`, see docs/security.md)'
        : `cannot read the key file: ${err instanceof Error ? err.message : String(err)}`,
      err,
    );
  }
  return parseKeyFile(text, file, setting);
}

// ---- keys from the config ----

/** The settings a client, tasknode or subscriber reads for CURVE. */
export interface PeerCurveSettings {
  readonly CURVE_SERVER_PUBLIC?: string;
  readonly CURVE_KEY_FILE?: string;
}

/**
 * A peer's CURVE keys from its settings: undefined when CURVE_SERVER_PUBLIC and
 * CURVE_KEY_FILE are both empty (plain TCP). Throws RTL_ERR_CONFIG when only one is set or
 * the key file is bad.
 *
 * @example
 * const keys = peerCurve(config); // { serverKey, publicKey, secretKey } or undefined
 */
export function peerCurve(
  settings: PeerCurveSettings,
  who = 'this peer',
): CurveClientKeys | undefined {
  const serverKey = settings.CURVE_SERVER_PUBLIC ?? '';
  const file = settings.CURVE_KEY_FILE ?? '';
  if (serverKey === '' && file === '') return undefined;
  if (file === '')
    throw new RtlError(
      'RTL_ERR_CONFIG',
      `CURVE_SERVER_PUBLIC is set, so ${who} connects with CURVE, but CURVE_KEY_FILE is empty: make a key pair with \`rtl keys client <name>\` (or \`rtl keys tasknode <name>\`), set CURVE_KEY_FILE to its .key_secret file and add its line to the relay's allow-list (docs/security.md)`,
      { key: 'CURVE_KEY_FILE' },
    );
  if (serverKey === '')
    throw new RtlError(
      'RTL_ERR_CONFIG',
      `CURVE_KEY_FILE is set, but CURVE_SERVER_PUBLIC is empty: set it to the relay's public key (\`rtl keys relay\` printed it; it is the public-key line of relay.key)`,
      { key: 'CURVE_SERVER_PUBLIC' },
    );
  if (!isCurveKey(serverKey))
    throw new RtlError(
      'RTL_ERR_CONFIG',
      `CURVE_SERVER_PUBLIC=${serverKey}: expected a CURVE public key (40 Z85 characters)`,
      { key: 'CURVE_SERVER_PUBLIC' },
    );
  const pair = readKeyFile(file, 'CURVE_KEY_FILE');
  return {
    serverKey,
    publicKey: pair.publicKey,
    secretKey: pair.secretKey,
    ...(pair.name === undefined ? {} : { name: pair.name }),
  };
}

/** The settings the relay reads for CURVE. */
export interface RelayCurveSettings {
  readonly CURVE_SERVER_KEY_FILE?: string;
  readonly CURVE_ALLOW?: string;
  readonly CURVE_SERVER_PUBLIC?: string;
}

/** The relay's CURVE setup: its key pair and its allow-list file. */
export interface RelayCurve {
  readonly pair: KeyFile;
  readonly allowFile: string;
}

/**
 * The relay's key pair and allow-list file from its settings: undefined when
 * CURVE_SERVER_KEY_FILE and CURVE_ALLOW are both empty (plain TCP). Throws RTL_ERR_CONFIG
 * when only one is set, the key file is bad, or CURVE_SERVER_PUBLIC (when set) is not its
 * public key.
 */
export function relayCurve(settings: RelayCurveSettings): RelayCurve | undefined {
  const file = settings.CURVE_SERVER_KEY_FILE ?? '';
  const allowFile = settings.CURVE_ALLOW ?? '';
  if (file === '' && allowFile === '') return undefined;
  if (allowFile === '')
    throw new RtlError(
      'RTL_ERR_CONFIG',
      'CURVE_SERVER_KEY_FILE is set, so the relay uses CURVE, but CURVE_ALLOW is empty: set it to an allow-list file of `<public key> <name> [deployer]` lines (`rtl keys` prints each line; docs/security.md)',
      { key: 'CURVE_ALLOW' },
    );
  if (file === '')
    throw new RtlError(
      'RTL_ERR_CONFIG',
      `CURVE_ALLOW is set, but CURVE_SERVER_KEY_FILE is empty: the relay needs its own key pair to use CURVE (make it with \`rtl keys relay\`); without both the relay would run in plain text`,
      { key: 'CURVE_SERVER_KEY_FILE' },
    );
  const pair = readKeyFile(file, 'CURVE_SERVER_KEY_FILE');
  const stated = settings.CURVE_SERVER_PUBLIC ?? '';
  if (stated !== '' && stated !== pair.publicKey)
    throw new RtlError(
      'RTL_ERR_CONFIG',
      `CURVE_SERVER_PUBLIC=${stated} is not the public key of CURVE_SERVER_KEY_FILE=${file} (that is ${pair.publicKey}): clients and tasknodes with this config would fail their handshake`,
      { key: 'CURVE_SERVER_PUBLIC', file },
    );
  return { pair, allowFile };
}

/**
 * The ZeroMQ socket options of a CURVE client socket (DEALER, SUB) for `keys`.
 *
 * @example
 * const sub = new zmq.Subscriber({ ...curveSocketOptions(keys) });
 */
export function curveSocketOptions(keys: CurveClientKeys): {
  curveServerKey: string;
  curvePublicKey: string;
  curveSecretKey: string;
} {
  return {
    curveServerKey: keys.serverKey,
    curvePublicKey: keys.publicKey,
    curveSecretKey: keys.secretKey,
  };
}

// ---- the deployer proof of a DEPLOY [P-8.6] ----

/** What a deployer proof covers: the request id, the module name and the source's sha256. */
export interface DeployProofFields {
  readonly id: string;
  readonly name: string;
  /** sha256 of the source's UTF-8 bytes, lower-case hex. */
  readonly sha256: string;
}

function proofMessage(f: DeployProofFields): string {
  return `rtl-deploy-v1\n${f.id}\n${f.name}\n${f.sha256}`;
}

/**
 * The `proof` of a DEPLOY [P-8.6]: HMAC-SHA256, keyed with the X25519 secret the client's
 * key pair shares with the relay's, over `rtl-deploy-v1\n<id>\n<name>\n<sha256>`; lower-case
 * hex. Only the holder of the client's secret key (or of the relay's) can make it.
 */
export function deployProof(keys: CurveClientKeys, fields: DeployProofFields): string {
  return createHmac('sha256', sharedSecret(keys.secretKey, keys.serverKey))
    .update(proofMessage(fields), 'utf8')
    .digest('hex');
}

/** Whether `proof` is the deployer proof of `clientKey` for `fields`, checked with the relay's secret key. */
export function checkDeployProof(
  relaySecretKey: string,
  clientKey: string,
  fields: DeployProofFields,
  proof: string,
): boolean {
  if (!/^[0-9a-f]{64}$/.test(proof) || !isCurveKey(clientKey)) return false;
  let want: Buffer;
  try {
    want = createHmac('sha256', sharedSecret(relaySecretKey, clientKey))
      .update(proofMessage(fields), 'utf8')
      .digest();
  } catch {
    return false;
  }
  return timingSafeEqual(want, Buffer.from(proof, 'hex'));
}
