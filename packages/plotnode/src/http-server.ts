/**
 * A small JSON-over-HTTP server on node:http: a table of GET routes, each answering a JSON
 * value. Unknown paths get 404, other methods 405 (with `Allow: GET, HEAD`), both with a JSON
 * error body `{ error: { code, message } }`. A route that throws answers 500, or the status of
 * an HttpError.
 *
 * ```ts
 * const server = await JsonServer.start({ host: '127.0.0.1', port: 5006, routes: {
 *   '/info': () => ({ name: 'plotnode' }),
 * } });
 * server.url; // 'http://127.0.0.1:5006'
 * await server.close();
 * ```
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RtlError, silentLogger, type Logger } from '@rtl/core';

/** A route's answer: a JSON value, or a promise of one. */
export type Route = (req: IncomingMessage) => unknown;

/** A failure a route answers with its own status and code. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export interface JsonServerOptions {
  readonly host: string;
  /** 0 binds an ephemeral port (see `url`). */
  readonly port: number;
  /** Routes by path (`/members`); the query string is not part of the path. */
  readonly routes: Readonly<Record<string, Route>>;
  readonly logger?: Logger;
  /** Who runs it, for bind errors: `plotnode`. */
  readonly owner?: string;
  /** The setting that names the port, for bind errors: `PLOT_LISTEN`. */
  readonly portSetting?: string;
}

function urlOf(host: string, port: number): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `http://${h}:${String(port)}`;
}

function send(res: ServerResponse, status: number, body: unknown, head = false): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(head ? undefined : text);
}

function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  head = false,
): void {
  send(res, status, { error: { code, message } }, head);
}

export class JsonServer {
  /** `http://host:port`, with the port actually bound. */
  readonly url: string;
  readonly port: number;
  readonly #server: Server;
  #closing: Promise<void> | undefined;

  private constructor(server: Server, url: string, port: number) {
    this.#server = server;
    this.url = url;
    this.port = port;
  }

  /** Listen; rejects with RTL_ERR_CONFIG naming the address when the port cannot be bound. */
  static async start(opts: JsonServerOptions): Promise<JsonServer> {
    const log = opts.logger ?? silentLogger();
    const routes = new Map(Object.entries(opts.routes));
    const paths = [...routes.keys()].sort();
    const server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const method = req.method ?? 'GET';
      const route = routes.get(path);
      const head = method === 'HEAD';
      if (route === undefined) {
        sendError(res, 404, 'NOT_FOUND', `no route ${path}; routes: ${paths.join(', ')}`, head);
        return;
      }
      if (method !== 'GET' && !head) {
        res.setHeader('allow', 'GET, HEAD');
        sendError(res, 405, 'METHOD_NOT_ALLOWED', `${method} ${path}: only GET is served`);
        return;
      }
      void (async () => {
        try {
          send(res, 200, await route(req), head);
        } catch (err) {
          if (err instanceof HttpError) {
            sendError(res, err.status, err.code, err.message, head);
            return;
          }
          log.error({ err, path }, 'HTTP route failed');
          sendError(
            res,
            500,
            'INTERNAL',
            `${path} failed: ${err instanceof Error ? err.message : String(err)}`,
            head,
          );
        }
      })();
    });
    const where = urlOf(opts.host, opts.port);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port, opts.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      server.close();
      const e = err as NodeJS.ErrnoException;
      const owner = opts.owner ?? 'HTTP server';
      const setting = opts.portSetting ?? 'the port';
      const why =
        e.code === 'EADDRINUSE'
          ? `port ${String(opts.port)} is in use (is another ${owner} running? set ${setting} to a free port)`
          : e.code === 'EACCES'
            ? `no permission to bind port ${String(opts.port)} (use a port above 1023 in ${setting})`
            : e.message;
      throw new RtlError(
        'RTL_ERR_CONFIG',
        `${owner} cannot listen on ${where}: ${why}`,
        { source: 'bind' },
        { cause: err },
      );
    }
    server.on('error', (err) => log.error({ err }, 'HTTP server error'));
    const port = (server.address() as AddressInfo).port;
    return new JsonServer(server, urlOf(opts.host, port), port);
  }

  /** Stop listening and end open connections. Idempotent. */
  close(): Promise<void> {
    return (this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    }));
  }
}
