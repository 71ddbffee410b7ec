/**
 * The relay's ZAP handler (ZeroMQ RFC 27): with CURVE on, libzmq asks it about every peer's
 * handshake on the relay's three sockets, over `inproc://zeromq.zap.01` in the relay's own
 * ZeroMQ context. A key on the allow-list is admitted (200, user id = its name); any other
 * is refused (400), and the relay logs the refusal once per key and address.
 */
import { statSync } from 'node:fs';
import * as zmq from 'zeromq';
import {
  allowLine,
  readAllowList,
  z85Encode,
  type AllowEntry,
  type AllowList,
  type Logger,
} from '@rtl/core';

/** Where libzmq sends ZAP requests (RFC 27). */
export const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';

/** Who connects to each relay socket (its ZAP domain), for log lines. */
const PEERS: Readonly<Record<string, string>> = {
  RECV: 'client',
  SEND: 'tasknode',
  PUBLISH: 'subscriber',
};

/** At most this many refused key/address pairs are remembered for "log once". */
const WARN_KEEP = 10_000;

/**
 * The allow-list file, read again when its size or mtime changes (checked at each handshake,
 * which is rare). A change that does not parse is logged and the previous list stays.
 */
export class AllowListFile {
  readonly file: string;
  readonly #log: Logger;
  #list: AllowList;
  #stamp: string;

  /** Read the file; throws RTL_ERR_CONFIG (CURVE_ALLOW) when it is missing or bad. */
  constructor(file: string, log: Logger) {
    this.file = file;
    this.#log = log;
    this.#stamp = this.#statStamp();
    this.#list = readAllowList(file);
  }

  #statStamp(): string {
    try {
      const s = statSync(this.file);
      return `${String(s.size)}:${String(s.mtimeMs)}`;
    } catch {
      return 'missing';
    }
  }

  /** The list as the file holds it now. */
  current(): AllowList {
    const stamp = this.#statStamp();
    if (stamp === this.#stamp) return this.#list;
    this.#stamp = stamp;
    try {
      this.#list = readAllowList(this.file);
      this.#log.info(
        { file: this.file, keys: this.#list.size },
        'allow-list changed: read it again (new connections see it)',
      );
    } catch (err) {
      this.#log.error(
        { err, file: this.file },
        'allow-list changed but cannot be read; the previous list stays in force',
      );
    }
    return this.#list;
  }
}

/** Answers ZAP requests from the allow-list. */
export class ZapHandler {
  readonly #sock: zmq.Router;
  readonly #allow: AllowListFile;
  readonly #log: Logger;
  readonly #warned = new Set<string>();
  #refused = 0;

  private constructor(sock: zmq.Router, allow: AllowListFile, log: Logger) {
    this.#sock = sock;
    this.#allow = allow;
    this.#log = log;
    void this.#serve();
  }

  /** Bind the ZAP endpoint in `context` (before any CURVE socket of it takes connections). */
  static async start(context: zmq.Context, allow: AllowListFile, log: Logger): Promise<ZapHandler> {
    const sock = new zmq.Router({ context, linger: 0 });
    await sock.bind(ZAP_ENDPOINT);
    return new ZapHandler(sock, allow, log);
  }

  /** Handshakes refused so far. */
  get refused(): number {
    return this.#refused;
  }

  /** Count a refusal that libzmq made itself (no ZAP request: bad mechanism, bad crypto). */
  countRefusal(): void {
    this.#refused++;
  }

  close(): void {
    this.#sock.close();
  }

  async #serve(): Promise<void> {
    try {
      for await (const frames of this.#sock) {
        const reply = this.#answer(frames);
        if (reply !== undefined) await this.#sock.send(reply);
      }
    } catch (err) {
      if (!this.#sock.closed) this.#log.error({ err }, 'ZAP handler failed');
    }
  }

  /**
   * Request: routing id, empty, "1.0", request id, domain, address, identity, mechanism,
   * credentials (CURVE: the peer's 32-byte public key). Reply: routing id, empty, "1.0",
   * request id, status code, status text, user id, metadata.
   */
  #answer(frames: Buffer[]): (Buffer | string)[] | undefined {
    const [rid, empty, version, requestId, domainF, addressF, , mechanismF, credential] = frames;
    if (rid === undefined || empty === undefined || requestId === undefined) return undefined;
    const reply = (code: string, text: string, user = ''): (Buffer | string)[] => [
      rid,
      empty,
      '1.0',
      requestId,
      code,
      text,
      user,
      '',
    ];
    const domain = domainF?.toString() ?? '';
    const address = addressF?.toString() ?? '';
    const mechanism = mechanismF?.toString() ?? '';
    if (version?.toString() !== '1.0') return reply('400', 'unsupported ZAP version');
    if (mechanism !== 'CURVE' || credential?.length !== 32) {
      this.#refuse(domain, address, `${mechanism || 'no'} mechanism`, undefined);
      return reply('400', 'CURVE only');
    }
    const key = z85Encode(credential);
    const entry = this.#allow.current().get(key);
    if (entry === undefined) {
      this.#refuse(domain, address, 'key not on the allow-list', key);
      return reply('400', 'key not on the allow-list');
    }
    this.#admitted(domain, address, entry);
    return reply('200', 'OK', entry.name);
  }

  #admitted(domain: string, address: string, entry: AllowEntry): void {
    if (this.#log.isLevelEnabled('debug'))
      this.#log.debug(
        { socket: domain, address, key: entry.key, peer: entry.name },
        `admitted ${entry.name} on ${domain}`,
      );
  }

  #refuse(domain: string, address: string, why: string, key: string | undefined): void {
    this.#refused++;
    const once = `${domain} ${address} ${key ?? why}`;
    if (this.#warned.has(once)) return;
    if (this.#warned.size >= WARN_KEEP) this.#warned.clear();
    this.#warned.add(once);
    const peer = PEERS[domain] ?? 'peer';
    this.#log.warn(
      { socket: domain, address, key, file: this.#allow.file, refused: this.#refused },
      key === undefined
        ? `refused a ${peer} from ${address} on ${domain}: ${why}`
        : `refused a ${peer} from ${address} on ${domain}: CURVE key ${key} is not on the allow-list ${this.#allow.file} (to admit it, add the line "${allowLine(key, '<name>')}")`,
    );
  }
}
