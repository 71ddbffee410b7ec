/**
 * The plotnode: an HTTP server on PLOT_ADDR:PLOT_LISTEN that shows the cluster. For now it
 * serves the cluster membership API (docs/plotnode.md):
 *
 * - `GET /members`: every member the relay knows (the relay itself, tasknodes, ESP nodes,
 *   the bridge; alive and dead), asked of the relay over STATUS `{ what: 'members' }`;
 * - `GET /info`: this plotnode (name, kind, version, pid, host, uptime, its URL, the relay).
 *
 * ```ts
 * const plot = await Plotnode.start(config, { logger });
 * await fetch(`${plot.url}/members`);
 * await plot.close();
 * ```
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import {
  RtlError,
  peerCurve,
  relayEndpoints,
  silentLogger,
  type Config,
  type Logger,
} from '@rtl/core';
import { Client } from '@rtl/client';
import type { Member } from '@rtl/relay';
import { HttpError, JsonServer } from './http-server.js';

/** The settings the plotnode reads (a Config has them all). */
export type PlotnodeSettings = Pick<
  Config,
  | 'PLOT_ADDR'
  | 'PLOT_LISTEN'
  | 'RELAY_ADDR'
  | 'RELAY_LISTEN'
  | 'RELAY_RECV'
  | 'RELAY_SEND'
  | 'RELAY_PUBLISHER'
> &
  Partial<Pick<Config, 'CURVE_SERVER_PUBLIC' | 'CURVE_KEY_FILE'>>;

export interface PlotnodeOptions {
  readonly logger?: Logger;
  /** The relay's RECV endpoint (default: from the settings, RELAY_ADDR:RELAY_RECV). */
  readonly relay?: string;
  /** How long `/members` waits for the relay, in ms (default 2000). */
  readonly relayTimeoutMs?: number;
  /** The plotnode's name in `/info` (default `plotnode`). */
  readonly name?: string;
}

/** What `GET /info` answers. */
export interface PlotnodeInfo {
  readonly name: string;
  readonly kind: 'plotnode';
  readonly version: string;
  readonly pid: number;
  readonly host: string;
  /** When it started (epoch ms). */
  readonly startedAt: number;
  readonly uptimeMs: number;
  /** Where it serves HTTP: `http://127.0.0.1:5006`. */
  readonly url: string;
  /** The relay it asks: its RECV endpoint. */
  readonly relay: string;
  /** The paths it serves. */
  readonly routes: readonly string[];
}

const RELAY_TIMEOUT_MS = 2000;

/** This package's version. */
function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export class Plotnode implements AsyncDisposable {
  readonly url: string;
  readonly relay: string;
  readonly #server: JsonServer;
  readonly #client: Client;
  #closing: Promise<void> | undefined;

  private constructor(server: JsonServer, client: Client, relay: string) {
    this.#server = server;
    this.#client = client;
    this.url = server.url;
    this.relay = relay;
  }

  /** Listen on PLOT_ADDR:PLOT_LISTEN (0: an ephemeral port, see `url`). */
  static async start(settings: PlotnodeSettings, opts: PlotnodeOptions = {}): Promise<Plotnode> {
    const log = opts.logger ?? silentLogger();
    const relay = opts.relay ?? relayEndpoints(settings).recv;
    const timeoutMs = opts.relayTimeoutMs ?? RELAY_TIMEOUT_MS;
    const name = opts.name ?? 'plotnode';
    const version = packageVersion();
    const startedAt = Date.now();
    const client = new Client({
      relay,
      store: false,
      curve: peerCurve(settings, 'the plotnode') ?? false,
    });
    const holder: { url: string } = { url: '' };
    const routes = ['/info', '/members'];
    const members = async (): Promise<Member[]> => {
      try {
        const answer = await client.request({ what: 'members' }, timeoutMs);
        if (!Array.isArray(answer.members))
          throw new HttpError(
            502,
            'BAD_RELAY_ANSWER',
            `the relay at ${relay} did not list members (an older relay?)`,
          );
        return answer.members as Member[];
      } catch (err) {
        if (
          err instanceof RtlError &&
          (err.code === 'RTL_ERR_RELAY_UNREACHABLE' || err.code === 'RTL_ERR_AUTH')
        )
          throw new HttpError(503, err.code, err.message);
        throw err;
      }
    };
    let server: JsonServer;
    try {
      server = await JsonServer.start({
        host: settings.PLOT_ADDR,
        port: settings.PLOT_LISTEN,
        logger: log,
        owner: 'plotnode',
        portSetting: 'PLOT_LISTEN',
        routes: {
          '/members': members,
          '/info': (): PlotnodeInfo => ({
            name,
            kind: 'plotnode',
            version,
            pid: process.pid,
            host: hostname(),
            startedAt,
            uptimeMs: Date.now() - startedAt,
            url: holder.url,
            relay,
            routes,
          }),
        },
      });
    } catch (err) {
      await client.close();
      throw err;
    }
    holder.url = server.url;
    log.info({ url: server.url, relay }, 'plotnode listening');
    return new Plotnode(server, client, relay);
  }

  /** Stop serving and disconnect from the relay. Idempotent. */
  close(): Promise<void> {
    return (this.#closing ??= (async () => {
      await this.#server.close();
      await this.#client.close();
    })());
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
