/**
 * Connect to the MQTT broker at MQTT_URL, or start an embedded one (aedes) there
 * (MQTT_EMBEDDED: auto | always | never).
 */
import { createServer, connect as tcpConnect, type Server } from 'node:net';
import { Aedes } from 'aedes';
import { connectAsync, type MqttClient } from 'mqtt';
import { RtlError, type Logger } from '@rtl/core';

export type EmbeddedMode = 'auto' | 'always' | 'never';

export interface BrokerConnectOptions {
  readonly url: string;
  readonly embedded: EmbeddedMode;
  readonly clientId: string;
  readonly log: Logger;
  /** How long a TCP probe of the URL waits for an answer; default 500 ms. */
  readonly probeTimeoutMs?: number;
}

/** A connection to a broker, and the embedded broker when this process runs it. */
export interface BrokerConnection {
  readonly client: MqttClient;
  /** `external`: a broker already answered at the URL; `embedded`: this process started aedes. */
  readonly broker: 'external' | 'embedded';
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
const DEFAULT_PORTS: Record<string, number> = {
  'mqtt:': 1883,
  'tcp:': 1883,
  'mqtts:': 8883,
  'tls:': 8883,
  'ws:': 80,
  'wss:': 443,
};

function parseUrl(url: string): URL {
  try {
    return new URL(url);
  } catch (err) {
    throw new RtlError(
      'RTL_ERR_CONFIG',
      `MQTT_URL=${url}: not a URL`,
      { key: 'MQTT_URL' },
      {
        cause: err,
      },
    );
  }
}

/** Whether something accepts a TCP connection at host:port within timeoutMs. */
export function probeTcp(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host, port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

interface Embedded {
  readonly aedes: Aedes;
  readonly server: Server;
}

async function startEmbedded(host: string, port: number, url: string): Promise<Embedded> {
  const aedes = await Aedes.createBroker();
  const server = createServer((sock) => aedes.handle(sock));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    const code = (err as { code?: unknown }).code;
    throw new RtlError(
      'RTL_ERR_CONFIG',
      code === 'EADDRINUSE'
        ? `MQTT_EMBEDDED=always: port ${port} of MQTT_URL=${url} is taken (a broker runs there?); set MQTT_EMBEDDED=auto to use it, or choose a free port in MQTT_URL`
        : `MQTT_EMBEDDED: cannot listen at ${host}:${port} of MQTT_URL=${url}: ${String(code ?? err)}`,
      { key: 'MQTT_URL', got: url },
      { cause: err },
    );
  }
  return { aedes, server };
}

async function stopEmbedded(e: Embedded): Promise<void> {
  await new Promise<void>((resolve) => e.aedes.close(() => resolve()));
  await new Promise<void>((resolve) => e.server.close(() => resolve()));
}

/**
 * Connect to MQTT_URL, starting an embedded aedes broker first when the mode says so.
 *
 * ```ts
 * const conn = await connectBroker({ url: 'mqtt://127.0.0.1:1883', embedded: 'auto', clientId, log });
 * conn.broker; // 'external' or 'embedded'
 * await conn.close();
 * ```
 * Gotcha: `auto` starts a broker only for a local host (127.0.0.1, localhost, ::1) and a
 * plain `mqtt:`/`tcp:` URL; elsewhere nothing answering is RTL_ERR_MQTT_UNREACHABLE.
 */
export async function connectBroker(opts: BrokerConnectOptions): Promise<BrokerConnection> {
  const u = parseUrl(opts.url);
  const port = u.port === '' ? (DEFAULT_PORTS[u.protocol] ?? 1883) : Number(u.port);
  const host = u.hostname === '' ? '127.0.0.1' : u.hostname.replace(/^\[(.*)\]$/, '$1');
  const plain = u.protocol === 'mqtt:' || u.protocol === 'tcp:';
  const local = LOCAL_HOSTS.has(host);
  const shown = `${u.protocol}//${u.host}`; // never the password
  let embedded: Embedded | undefined;
  if (opts.embedded === 'always') {
    if (!plain || !local)
      throw new RtlError(
        'RTL_ERR_CONFIG',
        `MQTT_EMBEDDED=always needs a local mqtt:// MQTT_URL (127.0.0.1, localhost or ::1), got ${shown}`,
        { key: 'MQTT_URL', got: shown },
      );
    embedded = await startEmbedded(host, port, shown);
  } else {
    const answers = await probeTcp(host, port, opts.probeTimeoutMs ?? 500);
    if (!answers) {
      if (opts.embedded === 'auto' && plain && local)
        embedded = await startEmbedded(host, port, shown);
      else
        throw new RtlError(
          'RTL_ERR_MQTT_UNREACHABLE',
          `no MQTT broker answers at MQTT_URL=${shown}` +
            (opts.embedded === 'never'
              ? ' (MQTT_EMBEDDED=never); start one there, correct MQTT_URL, or set MQTT_EMBEDDED=auto'
              : '; start one there or correct MQTT_URL (an embedded broker starts only for a local mqtt:// URL)'),
          { key: 'MQTT_URL', got: shown },
        );
    }
  }
  const broker = embedded === undefined ? 'external' : 'embedded';
  let client: MqttClient;
  try {
    client = await connectAsync(opts.url, {
      clientId: opts.clientId,
      clean: true,
      keepalive: 15,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      protocolVersion: 4,
      ...(u.username === '' ? {} : { username: decodeURIComponent(u.username) }),
      ...(u.password === '' ? {} : { password: decodeURIComponent(u.password) }),
    });
  } catch (err) {
    if (embedded !== undefined) await stopEmbedded(embedded);
    throw new RtlError(
      'RTL_ERR_MQTT_UNREACHABLE',
      `cannot connect to the MQTT broker at MQTT_URL=${shown}: ${err instanceof Error ? err.message : String(err)}`,
      { key: 'MQTT_URL', got: shown },
      { cause: err },
    );
  }
  opts.log.info({ broker, host, port }, `MQTT broker: ${broker} at ${shown}`);
  let closing: Promise<void> | undefined;
  return {
    client,
    broker,
    host,
    port,
    close: () =>
      (closing ??= (async () => {
        await client.endAsync(true).catch(() => undefined);
        if (embedded !== undefined) await stopEmbedded(embedded);
      })()),
  };
}
