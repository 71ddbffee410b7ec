/**
 * A peer's view of its handshakes with the relay: ZeroMQ socket events (`sock.events`) in,
 * an RTL_ERR_AUTH error out once the relay has refused this peer, saying why and what to
 * check. Without it a refused client would wait silently until its timeout.
 */
import { allowLine } from './allow-list.js';
import type { CurveClientKeys } from './curve.js';
import { RtlError } from './errors.js';

/** The part of a zeromq.js socket event this reads. */
export interface HandshakeEvent {
  readonly type: string;
  readonly error?: { readonly code?: string; readonly message?: string };
}

export interface HandshakeWatchOptions {
  /** `client`, `tasknode` or `subscriber`, for the message. */
  readonly who: 'client' | 'tasknode' | 'subscriber';
  /** The relay endpoint this peer connects to. */
  readonly relay: string;
  /** This peer's keys, or undefined when it connects in plain text. */
  readonly keys: CurveClientKeys | undefined;
  /** The peer's name, for the allow-list line the message suggests. */
  readonly name?: string;
}

/** Handshakes closed by the relay in a row, with no reason given, before this peer gives up. */
export const HANDSHAKE_CLOSED_LIMIT = 3;

/**
 * Feed it every socket event; `onEvent` returns an RtlError (RTL_ERR_AUTH) when the relay
 * refused the handshake: on an authentication failure, a protocol failure (one side uses
 * CURVE, the other not), or after HANDSHAKE_CLOSED_LIMIT handshakes in a row that the relay
 * closed without a reason (with CURVE: the relay's public key is not CURVE_SERVER_PUBLIC).
 * A successful handshake starts the count again.
 *
 * @example
 * const watch = new HandshakeWatch({ who: 'client', relay, keys });
 * for await (const ev of sock.events) { const err = watch.onEvent(ev); if (err) fail(err); }
 */
export class HandshakeWatch {
  readonly #opts: HandshakeWatchOptions;
  #closed = 0;

  constructor(opts: HandshakeWatchOptions) {
    this.#opts = opts;
  }

  onEvent(ev: HandshakeEvent): RtlError | undefined {
    switch (ev.type) {
      case 'handshake':
        this.#closed = 0;
        return undefined;
      case 'handshake:error:auth':
        return this.#refused();
      case 'handshake:error:protocol':
        return this.#protocol(ev.error?.code ?? 'unknown');
      case 'handshake:error:other':
        if (++this.#closed < HANDSHAKE_CLOSED_LIMIT) return undefined;
        this.#closed = 0;
        return this.#closedByRelay(ev.error?.code ?? ev.error?.message ?? 'no detail');
      default:
        return undefined;
    }
  }

  #error(message: string, reason: string): RtlError {
    const keys = this.#opts.keys;
    return new RtlError('RTL_ERR_AUTH', message, {
      source: this.#opts.relay,
      reason,
      ...(keys === undefined ? {} : { key: keys.publicKey }),
    });
  }

  #refused(): RtlError {
    const { who, relay, keys } = this.#opts;
    if (keys === undefined)
      return this.#error(
        `the relay at ${relay} refused this ${who}'s handshake (authentication failed); see the relay's log`,
        'auth',
      );
    const line = allowLine(keys.publicKey, this.#opts.name ?? keys.name ?? '<name>');
    return this.#error(
      `the relay at ${relay} refused this ${who}'s CURVE key ${keys.publicKey}: it is not on the relay's allow-list. Add the line "${line}" to the relay's CURVE_ALLOW file (\`rtl keys\` printed it), or set CURVE_KEY_FILE to a key that is on it; the relay logged the refusal`,
      'auth',
    );
  }

  /** What a peer without keys must set to reach a CURVE relay. */
  #setKeys(): string {
    const role = this.#opts.who === 'tasknode' ? 'tasknode' : 'client';
    return `set CURVE_SERVER_PUBLIC to the relay's public key and CURVE_KEY_FILE to a key file made with \`rtl keys ${role} <name>\` whose line is on the relay's allow-list (docs/security.md)`;
  }

  #protocol(code: string): RtlError {
    const { who, relay, keys } = this.#opts;
    if (code === 'ERR_ZMTP_MECHANISM_MISMATCH')
      return keys === undefined
        ? this.#error(
            `the relay at ${relay} uses CURVE and this ${who} has no keys: ${this.#setKeys()}`,
            code,
          )
        : this.#error(
            `the relay at ${relay} does not use CURVE, but this ${who} does (CURVE_SERVER_PUBLIC is set): give the relay CURVE_SERVER_KEY_FILE and CURVE_ALLOW, or unset CURVE_SERVER_PUBLIC and CURVE_KEY_FILE here`,
            code,
          );
    return this.#error(
      `the handshake with the relay at ${relay} failed (${code})${keys === undefined ? '' : ": check that CURVE_SERVER_PUBLIC is the relay's public key"}`,
      code,
    );
  }

  /**
   * The relay closed the connection during the handshake, several times: a plain peer meets
   * a CURVE relay, or a CURVE peer has the wrong relay key (or meets a plain relay).
   */
  #closedByRelay(code: string): RtlError {
    const { who, relay, keys } = this.#opts;
    const times = `${String(HANDSHAKE_CLOSED_LIMIT)} handshakes of this ${who} in a row (${code})`;
    return this.#error(
      keys === undefined
        ? `the relay at ${relay} closed ${times}: it most likely uses CURVE and this ${who} has no keys: ${this.#setKeys()}`
        : `the relay at ${relay} closed ${times}: CURVE_SERVER_PUBLIC=${keys.serverKey} is most likely not the relay's public key (\`rtl keys relay\` printed it; it is in relay.key), or the relay does not use CURVE`,
      'closed',
    );
  }
}
