import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, expectTypeOf, it, onTestFinished } from 'vitest';
import {
  PORT_OFFSETS,
  SETTINGS,
  SETTING_NAMES,
  coerceSetting,
  configToEnv,
  effectiveLogLevel,
  loadConfig,
  parseFlags,
  relayEndpoints,
  resolvedThreads,
  suggestSetting,
  type Config,
  type LogLevel,
  type Setting,
} from '@rtl/core';

function tempFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'rtl-config-'));
  onTestFinished(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function jsonFile(values: Record<string, unknown>): string {
  return tempFile('rtl.json', JSON.stringify(values));
}

/** The message of the error `fn` throws (fails the test when it does not throw). */
function errorOf(fn: () => unknown): { message: string; code: unknown; detail: unknown } {
  expect(fn).toThrow();
  try {
    fn();
  } catch (err) {
    return err as { message: string; code: unknown; detail: unknown };
  }
  throw new Error('unreachable: fn threw above');
}

const MiB = 2 ** 20;

describe('defaults', () => {
  it('loads every setting with its default and expands ~ in paths', () => {
    const config = loadConfig({ env: {} });
    expect(Object.keys(config).sort()).toEqual([...SETTING_NAMES].sort());
    expect(config.RELAY_RECV).toBe(19000);
    expect(config.RELAY_SEND).toBe(19001);
    expect(config.RELAY_PUBLISHER).toBe(19300);
    expect(config.PLOT_LISTEN).toBe(5006);
    expect(config.TASK_WORKERS).toBe(3);
    expect(config.CACHE_MAP_SIZE).toBe(512 * MiB);
    expect(config.CHUNKING_SIZE).toBe(MiB);
    expect(config.MAX_MESSAGE_BYTES).toBe(256 * MiB);
    expect(config.LOG_LEVEL).toBe('info');
    expect(config.MQTT_EMBEDDED).toBe('auto');
    expect(config.PROFILE).toBe(true);
    expect(config.DEBUG).toBe(false);
    expect(config.CACHE_PATH).toBe(join(homedir(), '.rtl/cache'));
    expect(config.RUN_DIR).toBe(join(homedir(), '.rtl/run'));
    expect(config.CURVE_ALLOW).toBe('');
  });

  it('returns a frozen object', () => {
    const config = loadConfig({ env: {} });
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as Record<string, unknown>).RELAY_RECV = 1;
    }).toThrow(TypeError);
  });

  it('every default passes its own kind check', () => {
    for (const name of SETTING_NAMES) {
      const setting: Setting = SETTINGS[name];
      const result = coerceSetting(setting, setting.default);
      expect(result, name).toMatchObject({ ok: true });
    }
  });

  it('types each setting by its kind', () => {
    expectTypeOf<Config['RELAY_RECV']>().toEqualTypeOf<number>();
    expectTypeOf<Config['CACHE_MAP_SIZE']>().toEqualTypeOf<number>();
    expectTypeOf<Config['DEBUG']>().toEqualTypeOf<boolean>();
    expectTypeOf<Config['CACHE_PATH']>().toEqualTypeOf<string>();
    expectTypeOf<Config['LOG_LEVEL']>().toEqualTypeOf<LogLevel>();
    expectTypeOf<Config['MQTT_EMBEDDED']>().toEqualTypeOf<'auto' | 'always' | 'never'>();
  });
});

describe('sources and precedence', () => {
  it('file < env < flags < overrides', () => {
    const file = jsonFile({
      RELAY_RECV: 1001,
      RELAY_SEND: 1002,
      RELAY_PUBLISHER: 1003,
      TASK_WORKERS: 5,
    });
    const env = { RTL_RELAY_SEND: '2002', RTL_RELAY_PUBLISHER: '2003' };
    const flags = { 'relay-publisher': '3003', HEARTBEAT_MS: 50 };
    const config = loadConfig({ file, env, flags, overrides: { HEARTBEAT_MS: 75 } });
    expect(config).toMatchObject({
      RELAY_RECV: 1001,
      RELAY_SEND: 2002,
      RELAY_PUBLISHER: 3003,
      TASK_WORKERS: 5,
      HEARTBEAT_MS: 75,
    });
  });

  it('finds the file through env RTL_CONFIG, flag --config, then opts.file', () => {
    const a = jsonFile({ TASK_WORKERS: 7 });
    const b = jsonFile({ TASK_WORKERS: 8 });
    const c = jsonFile({ TASK_WORKERS: 9 });
    expect(loadConfig({ env: { RTL_CONFIG: a } }).TASK_WORKERS).toBe(7);
    expect(loadConfig({ env: { RTL_CONFIG: a }, flags: { config: b } }).TASK_WORKERS).toBe(8);
    expect(loadConfig({ file: c, env: { RTL_CONFIG: a }, flags: { config: b } }).TASK_WORKERS).toBe(
      9,
    );
  });

  it('reads only RTL_ env keys, skipping RTL_CONFIG, RTL_TEST_* and empty values', () => {
    const config = loadConfig({
      env: {
        RELAY_RECV: '1',
        HOME: '/nowhere',
        RTL_TEST_MQTT_URL: 'not a url',
        RTL_TASK_WORKERS: '',
        RTL_DEBUG: 'yes',
      },
    });
    expect(config.RELAY_RECV).toBe(19000);
    expect(config.TASK_WORKERS).toBe(3);
    expect(config.DEBUG).toBe(true);
  });

  it('ignores $-prefixed keys in a file', () => {
    const file = jsonFile({ $comment: 'two clusters', STARTING_PORT: 20000 });
    expect(loadConfig({ file, env: {} }).RELAY_RECV).toBe(20000);
  });

  it('accepts flags in either RELAY_RECV or relay-recv form', () => {
    expect(loadConfig({ env: {}, flags: { RELAY_RECV: '19100' } }).RELAY_RECV).toBe(19100);
    expect(loadConfig({ env: {}, flags: { 'relay-recv': 19101 } }).RELAY_RECV).toBe(19101);
  });
});

describe('coercion', () => {
  const load = (env: Record<string, string>) => loadConfig({ env });

  it('reads sizes with binary and decimal units', () => {
    const cases: [string, number][] = [
      ['4096', 4096],
      ['64k', 64 * 1024],
      ['64K', 64 * 1024],
      ['512MiB', 512 * MiB],
      ['1GiB', 2 ** 30],
      ['1.5GiB', 1.5 * 2 ** 30],
      ['2 MB', 2_000_000],
      ['3m', 3 * MiB],
    ];
    for (const [text, bytes] of cases) {
      expect(load({ RTL_CHUNKING_SIZE: text }).CHUNKING_SIZE, text).toBe(bytes);
    }
    expect(loadConfig({ env: {}, overrides: { CHUNKING_SIZE: 0 } }).CHUNKING_SIZE).toBe(0);
  });

  it('rejects sizes that are not whole bytes, negative, unitless junk or under the minimum', () => {
    for (const text of ['0.3k', '-1', '12 parsecs', '1e9', '512KiB']) {
      expect(() => load({ RTL_CACHE_MAP_SIZE: text }), text).toThrow(
        /CACHE_MAP_SIZE=.* \(from env RTL_CACHE_MAP_SIZE\): expected a size in bytes >= 1 MiB/,
      );
    }
  });

  it('reads durations', () => {
    expect(load({ RTL_RESPONSE_TIME: '30s' }).RESPONSE_TIME).toBe(30_000);
    expect(load({ RTL_RESPONSE_TIME: '2m' }).RESPONSE_TIME).toBe(120_000);
    expect(load({ RTL_RESPONSE_TIME: '250ms' }).RESPONSE_TIME).toBe(250);
    expect(load({ RTL_RESPONSE_TIME: '1500' }).RESPONSE_TIME).toBe(1500);
    expect(() => load({ RTL_RESPONSE_TIME: '0' })).toThrow(/expected a duration/);
    expect(() => load({ RTL_RESPONSE_TIME: 'soon' })).toThrow(/expected a duration/);
  });

  it('reads booleans', () => {
    for (const [text, value] of [
      ['true', true],
      ['1', true],
      ['on', true],
      ['FALSE', false],
      ['no', false],
      ['off', false],
    ] as const) {
      expect(load({ RTL_CHUNKING: text }).CHUNKING, text).toBe(value);
    }
    expect(() => load({ RTL_CHUNKING: 'maybe' })).toThrow(
      'CHUNKING=maybe (from env RTL_CHUNKING): expected true or false',
    );
  });

  it('reads ports and integers with their ranges', () => {
    expect(load({ RTL_PLOT_LISTEN: ' 8080 ' }).PLOT_LISTEN).toBe(8080);
    for (const text of ['0', '65536', '80.5', 'abc']) {
      expect(() => load({ RTL_PLOT_LISTEN: text }), text).toThrow(
        `PLOT_LISTEN=${text} (from env RTL_PLOT_LISTEN): expected a port 1-65535`,
      );
    }
    expect(load({ RTL_HEARTBEAT_MS: '10' }).HEARTBEAT_MS).toBe(10);
    expect(() => load({ RTL_HEARTBEAT_MS: '9' })).toThrow(
      'HEARTBEAT_MS=9 (from env RTL_HEARTBEAT_MS): expected an integer >= 10',
    );
    expect(() => load({ RTL_TASK_WORKERS: '-1' })).toThrow('expected an integer 0-1024');
  });

  it('reads enums in any case and gives back the canonical word', () => {
    expect(load({ RTL_LOG_LEVEL: 'DEBUG' }).LOG_LEVEL).toBe('debug');
    expect(() => load({ RTL_MQTT_EMBEDDED: 'sometimes' })).toThrow(
      'MQTT_EMBEDDED=sometimes (from env RTL_MQTT_EMBEDDED): expected one of auto, always, never',
    );
  });

  it('expands ~ in paths and keeps other paths as given', () => {
    expect(load({ RTL_CACHE_PATH: '~/x' }).CACHE_PATH).toBe(join(homedir(), 'x'));
    expect(load({ RTL_CACHE_PATH: '~' }).CACHE_PATH).toBe(homedir());
    expect(load({ RTL_CACHE_PATH: '/srv/rtl~/c' }).CACHE_PATH).toBe('/srv/rtl~/c');
    expect(() => loadConfig({ env: {}, overrides: { RUN_DIR: '  ' } })).toThrow(
      'expected a non-empty path',
    );
  });

  it('checks URLs and their scheme', () => {
    expect(load({ RTL_MQTT_URL: 'mqtts://broker:8883' }).MQTT_URL).toBe('mqtts://broker:8883');
    expect(() => load({ RTL_MQTT_URL: 'http://broker' })).toThrow(/expected a URL \(mqtt: /);
    expect(() => load({ RTL_MQTT_URL: 'broker:1883:x' })).toThrow(/expected a URL/);
  });

  it('takes typed values from a file and shows non-strings as JSON in errors', () => {
    const file = jsonFile({ RELAY_RECV: true, PLOT_ADDR: 127, DEBUG: 'yes' });
    const err = errorOf(() => loadConfig({ file, env: {} }));
    expect(err.message).toContain(`RELAY_RECV=true (from file ${file}): expected a port 1-65535`);
    expect(err.message).toContain(`PLOT_ADDR=127 (from file ${file}): expected a string`);
    expect(err.message).not.toContain('DEBUG');
  });
});

describe('errors', () => {
  it('lists every bad and unknown key at once, each with its source', () => {
    const file = jsonFile({ RELAY_RCV: 19000, HEARTBEAT_LIVENESS: 0 });
    const err = errorOf(() =>
      loadConfig({
        file,
        env: { RTL_RELAY_RECV: 'abc', RTL_TASK_WORKRS: '2' },
        flags: { 'heartbeat-msec': '5', 'log-level': 'loud' },
      }),
    );
    expect(err.code).toBe('RTL_ERR_CONFIG');
    expect(err.message).toMatch(/^invalid configuration, 6 problems:\n/);
    const lines = [
      `RELAY_RCV: unknown setting (from file ${file}); did you mean RELAY_RECV?`,
      `HEARTBEAT_LIVENESS=0 (from file ${file}): expected an integer >= 1`,
      'RELAY_RECV=abc (from env RTL_RELAY_RECV): expected a port 1-65535',
      'TASK_WORKRS: unknown setting (from env RTL_TASK_WORKRS); did you mean TASK_WORKERS?',
      'heartbeat-msec: unknown setting (from flag --heartbeat-msec); did you mean --heartbeat-ms?',
      'LOG_LEVEL=loud (from flag --log-level): expected one of fatal, error, warn, info, debug, trace, silent',
    ];
    for (const line of lines) expect(err.message).toContain(line);
    expect(err.detail).toMatchObject({
      key: 'RELAY_RCV',
      source: `file ${file}`,
      problems: expect.arrayContaining([
        { key: 'RELAY_RECV', source: 'env RTL_RELAY_RECV', message: lines[2] },
      ]) as unknown,
    });
    expect((err.detail as { problems: unknown[] }).problems).toHaveLength(6);
  });

  it('reports a single problem on one line', () => {
    expect(() => loadConfig({ env: { RTL_RELAY_RECV: 'abc' } })).toThrow(
      expect.objectContaining({
        code: 'RTL_ERR_CONFIG',
        message:
          'invalid configuration: RELAY_RECV=abc (from env RTL_RELAY_RECV): expected a port 1-65535',
      }),
    );
  });

  it('gives no suggestion when nothing is close', () => {
    const err = errorOf(() => loadConfig({ env: { RTL_FROBNICATE: '1' } }));
    expect(err.message).toContain('FROBNICATE: unknown setting (from env RTL_FROBNICATE)');
    expect(err.message).not.toContain('did you mean');
    expect(suggestSetting('relay-rcv')).toBe('RELAY_RECV');
    expect(suggestSetting('PLOT_LISTN')).toBe('PLOT_LISTEN');
  });

  it('rejects unknown override keys at runtime', () => {
    const overrides = { RELAY_RECVV: 1 } as Record<string, unknown>;
    expect(() => loadConfig({ env: {}, overrides })).toThrow(
      'RELAY_RECVV: unknown setting (from override); did you mean RELAY_RECV?',
    );
  });

  it('takes an empty optional path as unset, and names a bad one', () => {
    expect(loadConfig({ env: {}, overrides: { CURVE_KEY_FILE: '' } }).CURVE_KEY_FILE).toBe('');
    expect(loadConfig({ env: {}, overrides: { CURVE_ALLOW: '~/allow' } }).CURVE_ALLOW).toBe(
      join(homedir(), 'allow'),
    );
    const err = errorOf(() => loadConfig({ env: {}, overrides: { CURVE_KEY_FILE: 42 } }));
    expect(err.message).toContain(
      'CURVE_KEY_FILE=42 (from override): expected a path, or "" for none',
    );
    expect(() => loadConfig({ env: {}, overrides: { CACHE_PATH: '' } })).toThrow(
      'CACHE_PATH= (from override): expected a non-empty path',
    );
  });

  it('reports an unreadable, non-JSON or non-object file', () => {
    const missing = join(tmpdir(), 'rtl-no-such-dir', 'none.json');
    expect(() => loadConfig({ file: missing, env: {} })).toThrow(
      `cannot read config file ${missing}`,
    );
    const broken = tempFile('broken.json', '{ "RELAY_RECV": ');
    expect(() => loadConfig({ file: broken, env: {} })).toThrow(
      `cannot read config file ${broken}`,
    );
    const list = tempFile('list.json', '[1, 2]');
    expect(() => loadConfig({ file: list, env: {} })).toThrow(
      `config file ${list}: expected a JSON object`,
    );
  });

  it('rejects --config without a file name', () => {
    expect(() => loadConfig({ env: {}, flags: { config: true } })).toThrow(
      'config=true (from flag --config): expected a file path',
    );
  });

  it('rejects two relay ports that are the same', () => {
    expect(() => loadConfig({ env: { RTL_RELAY_SEND: '19000' } })).toThrow(
      'RELAY_SEND=19000 (from env RTL_RELAY_SEND): the same port as RELAY_RECV',
    );
  });
});

describe('STARTING_PORT', () => {
  it('moves every port no source set to STARTING_PORT + its offset', () => {
    const config = loadConfig({ env: { RTL_STARTING_PORT: '20000' } });
    for (const [name, offset] of Object.entries(PORT_OFFSETS)) {
      expect(config[name as keyof typeof PORT_OFFSETS], name).toBe(20000 + offset);
    }
    expect(config).toMatchObject({
      RELAY_RECV: 20000,
      RELAY_SEND: 20001,
      RELAY_PUBLISHER: 20300,
      PLOT_LISTEN: 20006,
    });
  });

  it('keeps ports that any source sets explicitly', () => {
    const file = jsonFile({ STARTING_PORT: 21000, RELAY_RECV: 19000 });
    const config = loadConfig({ file, env: {}, flags: { 'plot-listen': '8080' } });
    expect(config).toMatchObject({
      RELAY_RECV: 19000,
      RELAY_SEND: 21001,
      RELAY_PUBLISHER: 21300,
      PLOT_LISTEN: 8080,
    });
  });

  it('is off at 0 and bounded so the highest offset stays a port', () => {
    expect(loadConfig({ env: { RTL_STARTING_PORT: '0' } }).RELAY_PUBLISHER).toBe(19300);
    expect(loadConfig({ env: { RTL_STARTING_PORT: '65235' } }).RELAY_PUBLISHER).toBe(65535);
    expect(() => loadConfig({ env: { RTL_STARTING_PORT: '65236' } })).toThrow(
      'expected an integer 0-65235',
    );
  });
});

describe('parseFlags', () => {
  it('reads --name value, --name=value, boolean flags and positionals', () => {
    expect(
      parseFlags(['run', '--relay-recv', '19100', '--debug', 'doc.json', '--log-level=trace']),
    ).toEqual({
      flags: { 'relay-recv': '19100', debug: true, 'log-level': 'trace' },
      positionals: ['run', 'doc.json'],
    });
  });

  it('stops at --', () => {
    expect(parseFlags(['--relay-recv=1', '--', '--debug', 'x'])).toEqual({
      flags: { 'relay-recv': '1' },
      positionals: ['--debug', 'x'],
    });
  });

  it('reads --no-<bool>, short flags, negative numbers and valueless flags', () => {
    expect(parseFlags(['--no-profile', '-hv', '--starting-port', '-5', '--json'])).toEqual({
      flags: { profile: false, h: true, v: true, 'starting-port': '-5', json: true },
      positionals: [],
    });
  });

  it("knows the command's own booleans", () => {
    expect(parseFlags(['--json', 'doc.json'], { booleans: ['json'] })).toEqual({
      flags: { json: true },
      positionals: ['doc.json'],
    });
    expect(parseFlags(['--json', 'doc.json']).flags).toEqual({ json: 'doc.json' });
  });

  it('feeds loadConfig', () => {
    const { flags } = parseFlags(['--relay-recv', '19100', '--debug', '--no-chunking']);
    expect(loadConfig({ env: {}, flags })).toMatchObject({
      RELAY_RECV: 19100,
      DEBUG: true,
      CHUNKING: false,
    });
  });
});

describe('derived values', () => {
  it('configToEnv round-trips through loadConfig', () => {
    const config = loadConfig({
      env: {
        RTL_STARTING_PORT: '23000',
        RTL_CACHE_MAP_SIZE: '1GiB',
        RTL_DEBUG: 'true',
        RTL_LOG_LEVEL: 'warn',
        RTL_CURVE_ALLOW: '/etc/rtl/allow',
      },
    });
    const env = configToEnv(config);
    expect(env.RTL_RELAY_RECV).toBe('23000');
    expect(env.RTL_CACHE_MAP_SIZE).toBe(String(2 ** 30));
    expect(env.RTL_DEBUG).toBe('true');
    expect(Object.keys(env)).toHaveLength(SETTING_NAMES.length);
    expect(loadConfig({ env })).toEqual(config);
    expect(configToEnv({ RELAY_RECV: 1 })).toEqual({ RTL_RELAY_RECV: '1' });
  });

  it('relayEndpoints joins addresses and ports', () => {
    const config = loadConfig({
      env: { RTL_RELAY_ADDR: 'relay.lan', RTL_RELAY_LISTEN: '0.0.0.0', RTL_STARTING_PORT: '24000' },
    });
    expect(relayEndpoints(config)).toEqual({
      recv: 'tcp://relay.lan:24000',
      send: 'tcp://relay.lan:24001',
      publish: 'tcp://relay.lan:24300',
      bindRecv: 'tcp://0.0.0.0:24000',
      bindSend: 'tcp://0.0.0.0:24001',
      bindPublish: 'tcp://0.0.0.0:24300',
    });
    const v6 = relayEndpoints({ ...config, RELAY_ADDR: '::1', RELAY_LISTEN: '[::]' });
    expect(v6.recv).toBe('tcp://[::1]:24000');
    expect(v6.bindRecv).toBe('tcp://[::]:24000');
  });

  it('resolvedThreads uses TASK_THREADS, or the core count when it is 0', () => {
    expect(resolvedThreads({ TASK_THREADS: 5 })).toBe(5);
    expect(resolvedThreads({ TASK_THREADS: 0 })).toBe(availableParallelism());
  });

  it('effectiveLogLevel: DEBUG raises the level to debug, never lowers trace', () => {
    expect(effectiveLogLevel({ DEBUG: false, LOG_LEVEL: 'warn' })).toBe('warn');
    expect(effectiveLogLevel({ DEBUG: true, LOG_LEVEL: 'warn' })).toBe('debug');
    expect(effectiveLogLevel({ DEBUG: true, LOG_LEVEL: 'silent' })).toBe('debug');
    expect(effectiveLogLevel({ DEBUG: true, LOG_LEVEL: 'trace' })).toBe('trace');
    expect(effectiveLogLevel(loadConfig({ env: { RTL_DEBUG: '1' } }))).toBe('debug');
  });
});
