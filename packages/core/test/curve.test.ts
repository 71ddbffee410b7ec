import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, createHmac, diffieHellman, generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  HANDSHAKE_CLOSED_LIMIT,
  HandshakeWatch,
  checkDeployProof,
  curvePublicKey,
  deployProof,
  formatKeyFile,
  isCurveKey,
  loadConfig,
  makeCurveKeyPair,
  parseAllowList,
  parseKeyFile,
  peerCurve,
  readKeyFile,
  relayCurve,
  z85Decode,
  z85Encode,
  type RtlError,
} from '@rtl/core';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rtl-curve-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function errorOf(fn: () => unknown): RtlError {
  try {
    fn();
  } catch (err) {
    return err as RtlError;
  }
  throw new Error('expected a throw');
}

/** A key file of a fresh pair, written to `dir`. */
function keyFile(
  dir: string,
  name: string,
): { file: string; pair: ReturnType<typeof zmq.curveKeyPair> } {
  const pair = zmq.curveKeyPair();
  const file = join(dir, `${name}.key_secret`);
  writeFileSync(file, formatKeyFile(pair, { role: 'client', name }));
  chmodSync(file, 0o600);
  return { file, pair };
}

describe('Z85', () => {
  it('encodes and decodes the example of ZeroMQ RFC 32', () => {
    const bytes = Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
    expect(z85Encode(bytes)).toBe('HelloWorld');
    expect(z85Decode('HelloWorld')).toEqual(bytes);
  });

  it('round-trips every 4-byte edge value and refuses what is not Z85', () => {
    const edges = Buffer.from([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 1]);
    expect(z85Decode(z85Encode(edges))).toEqual(edges);
    expect(z85Encode(Buffer.alloc(4))).toBe('00000');
    expect(z85Decode('abcd')).toBeUndefined(); // length not a multiple of 5
    expect(z85Decode('abc"e')).toBeUndefined(); // not in the alphabet
    expect(z85Decode('#####')).toBeUndefined(); // 85^5 - 1 overflows 4 bytes
    expect(() => z85Encode(Buffer.alloc(3))).toThrow(RangeError);
  });
});

describe('CURVE keys', () => {
  it("derives zeromq's public key from its secret key", () => {
    for (let i = 0; i < 20; i++) {
      const pair = zmq.curveKeyPair();
      expect(isCurveKey(pair.publicKey) && isCurveKey(pair.secretKey)).toBe(true);
      expect(curvePublicKey(pair.secretKey)).toBe(pair.publicKey);
    }
    expect(isCurveKey('x'.repeat(39))).toBe(false);
  });

  it('makes key pairs that ZeroMQ takes: a CURVE DEALER and ROUTER talk with them', async () => {
    const server = makeCurveKeyPair();
    const client = makeCurveKeyPair();
    expect(curvePublicKey(client.secretKey)).toBe(client.publicKey);
    expect(server.publicKey).not.toBe(client.publicKey);
    const router = new zmq.Router({
      linger: 0,
      curveServer: true,
      curveSecretKey: server.secretKey,
    });
    const dealer = new zmq.Dealer({
      linger: 0,
      curveServerKey: server.publicKey,
      curvePublicKey: client.publicKey,
      curveSecretKey: client.secretKey,
    });
    onTestFinished(() => {
      router.close();
      dealer.close();
    });
    await router.bind('tcp://127.0.0.1:*');
    dealer.connect(router.lastEndpoint ?? '');
    await dealer.send('over curve');
    const [, body] = await router.receive();
    expect(body?.toString()).toBe('over curve');
    expect(router.securityMechanism).toBe('curve');
  });

  it('reads back a key file it wrote, and names the file and setting when it is bad', () => {
    const dir = tempDir();
    const { file, pair } = keyFile(dir, 'alice');
    expect(readKeyFile(file, 'CURVE_KEY_FILE')).toMatchObject({
      ...pair,
      role: 'client',
      name: 'alice',
    });

    const pub = join(dir, 'alice.key');
    writeFileSync(
      pub,
      formatKeyFile(pair, { role: 'client', name: 'alice' }, { publicOnly: true }),
    );
    expect(errorOf(() => readKeyFile(pub, 'CURVE_KEY_FILE'))).toMatchObject({
      code: 'RTL_ERR_CONFIG',
      detail: { key: 'CURVE_KEY_FILE', file: pub },
    });
    expect(errorOf(() => readKeyFile(pub, 'CURVE_KEY_FILE')).message).toContain(
      'not a secret key file',
    );
    const missing = join(dir, 'none.key_secret');
    expect(errorOf(() => readKeyFile(missing, 'CURVE_SERVER_KEY_FILE')).message).toBe(
      `CURVE_SERVER_KEY_FILE=${missing}: no such key file (make one with \`rtl keys\`, see docs/security.md)`,
    );
    const other = zmq.curveKeyPair();
    const mixed = formatKeyFile(
      { publicKey: other.publicKey, secretKey: pair.secretKey },
      {
        role: 'client',
        name: 'x',
      },
    );
    expect(errorOf(() => parseKeyFile(mixed, 'f', 'CURVE_KEY_FILE')).message).toContain(
      `its public-key ${other.publicKey} is not the public key of its secret-key`,
    );
  });

  it('reads the certificate files of other ZeroMQ tools (zcert / pyzmq format)', () => {
    const pair = zmq.curveKeyPair();
    const zcert = [
      '#   ****  Generated on 2024-01-01 by CZMQ  ****',
      '#   ZeroMQ CURVE **Secret** Certificate',
      '',
      'metadata',
      'curve',
      `    public-key = "${pair.publicKey}"`,
      `    secret-key = "${pair.secretKey}"`,
    ].join('\n');
    expect(parseKeyFile(zcert, 'f', 'CURVE_KEY_FILE')).toMatchObject(pair);
  });
});

describe('CURVE settings', () => {
  it('validates CURVE_SERVER_PUBLIC as a key and allows empty key files', () => {
    const pair = zmq.curveKeyPair();
    expect(
      loadConfig({ env: { RTL_CURVE_SERVER_PUBLIC: pair.publicKey } }).CURVE_SERVER_PUBLIC,
    ).toBe(pair.publicKey);
    expect(() => loadConfig({ env: { RTL_CURVE_SERVER_PUBLIC: 'abc' } })).toThrow(
      'CURVE_SERVER_PUBLIC=abc (from env RTL_CURVE_SERVER_PUBLIC): expected a CURVE public key',
    );
    const config = loadConfig({ env: {}, overrides: { CURVE_KEY_FILE: '', CURVE_ALLOW: '' } });
    expect(config.CURVE_KEY_FILE).toBe('');
    expect(peerCurve(config)).toBeUndefined();
    expect(relayCurve(config)).toBeUndefined();
  });

  it('peerCurve: both settings or neither, the key file read', () => {
    const dir = tempDir();
    const { file, pair } = keyFile(dir, 'alice');
    const server = zmq.curveKeyPair();
    expect(peerCurve({ CURVE_SERVER_PUBLIC: server.publicKey, CURVE_KEY_FILE: file })).toEqual({
      serverKey: server.publicKey,
      ...pair,
      name: 'alice',
    });
    expect(errorOf(() => peerCurve({ CURVE_SERVER_PUBLIC: server.publicKey }))).toMatchObject({
      code: 'RTL_ERR_CONFIG',
      detail: { key: 'CURVE_KEY_FILE' },
    });
    expect(errorOf(() => peerCurve({ CURVE_KEY_FILE: file }))).toMatchObject({
      detail: { key: 'CURVE_SERVER_PUBLIC' },
    });
  });

  it('relayCurve: key file and allow-list together; CURVE_SERVER_PUBLIC must match', () => {
    const dir = tempDir();
    const { file, pair } = keyFile(dir, 'relay');
    const allow = join(dir, 'allow');
    expect(relayCurve({ CURVE_SERVER_KEY_FILE: file, CURVE_ALLOW: allow })).toMatchObject({
      pair,
      allowFile: allow,
    });
    expect(errorOf(() => relayCurve({ CURVE_SERVER_KEY_FILE: file }))).toMatchObject({
      detail: { key: 'CURVE_ALLOW' },
    });
    expect(errorOf(() => relayCurve({ CURVE_ALLOW: allow }))).toMatchObject({
      detail: { key: 'CURVE_SERVER_KEY_FILE' },
    });
    const wrong = zmq.curveKeyPair().publicKey;
    expect(
      errorOf(() =>
        relayCurve({ CURVE_SERVER_KEY_FILE: file, CURVE_ALLOW: allow, CURVE_SERVER_PUBLIC: wrong }),
      ).message,
    ).toContain(`CURVE_SERVER_PUBLIC=${wrong} is not the public key of CURVE_SERVER_KEY_FILE`);
  });
});

describe('allow-list', () => {
  it('reads keys, names and the deployer mark; skips blanks and comments', () => {
    const a = zmq.curveKeyPair().publicKey;
    const b = zmq.curveKeyPair().publicKey;
    const list = parseAllowList(
      ['# peers', '', `  ${a}   alice   deployer`, `${b} b1`, '#another comment'].join('\n'),
      'allow',
    );
    expect(list.size).toBe(2);
    expect(list.get(a)).toEqual({ key: a, name: 'alice', deployer: true, line: 3 });
    expect(list.get(b)).toEqual({ key: b, name: 'b1', deployer: false, line: 4 });
    // No Z85 key starts with '#': '#' is digit 84, and 84 * 85^4 > 2^32.
    expect(84 * 85 ** 4).toBeGreaterThan(2 ** 32);
  });

  it('names the file and line of every bad line', () => {
    const a = zmq.curveKeyPair().publicKey;
    const err = errorOf(() =>
      parseAllowList(
        [`${a} alice`, 'notakey bob', a, `${a} carol admin`, `${a} alice2`].join('\n'),
        'f',
      ),
    );
    expect(err.code).toBe('RTL_ERR_CONFIG');
    expect(err.detail.key).toBe('CURVE_ALLOW');
    expect(err.message).toBe(
      [
        'CURVE_ALLOW=f: 4 problems:',
        '  line 2: "notakey" is not a CURVE public key (40 Z85 characters)',
        `  line 3: key ${a} has no name (write \`${a} <name>\`)`,
        '  line 4: unknown mark "admin" after carol (the only mark is `deployer`)',
        `  line 5: key ${a} is listed already on line 1`,
      ].join('\n'),
    );
  });
});

describe('deployer proof', () => {
  const fields = {
    id: 'd-1',
    name: 'scale',
    sha256: createHash('sha256').update('x').digest('hex'),
  };

  it('is HMAC-SHA256 keyed with the X25519 secret of the two pairs', () => {
    // Independent oracle: node's own X25519 keys, exported raw, put in Z85 by hand.
    const client = generateKeyPairSync('x25519');
    const relay = generateKeyPairSync('x25519');
    const raw = (k: { export(o: { format: 'jwk' }): { d?: string; x?: string } }, f: 'd' | 'x') =>
      Buffer.from(k.export({ format: 'jwk' })[f] ?? '', 'base64url');
    const keys = {
      publicKey: z85Encode(raw(client.publicKey, 'x')),
      secretKey: z85Encode(raw(client.privateKey, 'd')),
      serverKey: z85Encode(raw(relay.publicKey, 'x')),
    };
    const shared = diffieHellman({ privateKey: relay.privateKey, publicKey: client.publicKey });
    const want = createHmac('sha256', shared)
      .update(`rtl-deploy-v1\nd-1\nscale\n${fields.sha256}`)
      .digest('hex');
    expect(deployProof(keys, fields)).toBe(want);
  });

  it('the relay checks it with its secret key; any other key, field or proof fails', () => {
    const relay = zmq.curveKeyPair();
    const alice = zmq.curveKeyPair();
    const mallory = zmq.curveKeyPair();
    const proof = deployProof({ ...alice, serverKey: relay.publicKey }, fields);
    expect(checkDeployProof(relay.secretKey, alice.publicKey, fields, proof)).toBe(true);
    expect(checkDeployProof(relay.secretKey, mallory.publicKey, fields, proof)).toBe(false);
    expect(
      checkDeployProof(relay.secretKey, alice.publicKey, { ...fields, name: 'other' }, proof),
    ).toBe(false);
    const forged = deployProof({ ...mallory, serverKey: relay.publicKey }, fields);
    expect(checkDeployProof(relay.secretKey, alice.publicKey, fields, forged)).toBe(false);
    expect(checkDeployProof(relay.secretKey, alice.publicKey, fields, 'zz')).toBe(false);
  });
});

describe('HandshakeWatch', () => {
  const relay = 'tcp://127.0.0.1:1';
  const keys = { ...zmq.curveKeyPair(), serverKey: zmq.curveKeyPair().publicKey };

  it('an auth failure names the key and the allow-list line to add', () => {
    const watch = new HandshakeWatch({ who: 'client', relay, keys, name: 'alice' });
    const err = watch.onEvent({ type: 'handshake:error:auth' });
    expect(err).toMatchObject({
      code: 'RTL_ERR_AUTH',
      detail: { key: keys.publicKey, source: relay },
    });
    expect(err?.message).toContain(`"${keys.publicKey} alice"`);
  });

  it('a mechanism mismatch says which side lacks CURVE', () => {
    const ev = { type: 'handshake:error:protocol', error: { code: 'ERR_ZMTP_MECHANISM_MISMATCH' } };
    expect(
      new HandshakeWatch({ who: 'tasknode', relay, keys: undefined }).onEvent(ev)?.message,
    ).toContain('uses CURVE and this tasknode has no keys');
    expect(new HandshakeWatch({ who: 'client', relay, keys }).onEvent(ev)?.message).toContain(
      'does not use CURVE, but this client does',
    );
  });

  it(`gives up after ${String(HANDSHAKE_CLOSED_LIMIT)} closed handshakes in a row; a success starts again`, () => {
    const watch = new HandshakeWatch({ who: 'client', relay, keys });
    const closed = { type: 'handshake:error:other', error: { code: 'EPIPE' } };
    expect(watch.onEvent(closed)).toBeUndefined();
    expect(watch.onEvent({ type: 'handshake' })).toBeUndefined();
    for (let i = 1; i < HANDSHAKE_CLOSED_LIMIT; i++) expect(watch.onEvent(closed)).toBeUndefined();
    expect(watch.onEvent(closed)?.message).toContain(`CURVE_SERVER_PUBLIC=${keys.serverKey}`);
    expect(watch.onEvent({ type: 'connect' })).toBeUndefined();
  });
});
