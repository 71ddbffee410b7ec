/**
 * Socket helpers. Each socket has one owner: one receive loop and one outbox.
 * zeromq.js rejects a second pending send() with EBUSY, so every send goes through an Outbox.
 */

import { encodeMessage } from './protocol.js';

export type Frames = (Uint8Array | string)[];

function peerKey(frame: Uint8Array | string | undefined): string {
  if (frame === undefined) return '';
  return typeof frame === 'string'
    ? frame
    : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString('latin1');
}

interface Sender {
  send(msg: Frames): Promise<void>;
  readonly closed: boolean;
}

export interface OutboxOptions {
  /**
   * Coalesce: messages pushed in one event-loop turn leave at its end as one BATCH per peer
   * [P-4.7], saving a socket operation per message under load. When the previous turn sent at
   * most one message, the first message of a turn leaves at once, so a lone message never waits.
   */
  readonly batch?: boolean;
  /** Messages start with the peer's routing identity frame (a ROUTER socket). */
  readonly routed?: boolean;
}

/**
 * Serialises sends on one socket. `push` never throws and never blocks the caller; a send
 * that fails (EHOSTUNREACH to a gone peer on a mandatory ROUTER, a closed socket) is handed
 * to `onError` and the outbox goes on with the next message.
 */
/** Inner frames of one BATCH at most: half the default frame limit (DEFAULT_LIMITS.maxFrames). */
const BATCH_MAX_FRAMES = 2048;
/** Bytes of one BATCH at most; a larger message leaves on its own. */
const BATCH_MAX_BYTES = 8 * 2 ** 20;

function byteLength(f: Uint8Array | string): number {
  return typeof f === 'string' ? Buffer.byteLength(f) : f.byteLength;
}

export class Outbox {
  readonly #sock: Sender;
  readonly #onError: (err: unknown, msg: Frames) => void;
  readonly #batch: boolean;
  readonly #routed: boolean;
  #queue: Frames[] = [];
  #head = 0;
  #running = false;
  #idle: (() => void)[] = [];
  #turnOpen = false;
  #turnCount = 0;
  #lastTurnCount = 0;
  #held: Frames[] = [];

  constructor(
    sock: Sender,
    onError: (err: unknown, msg: Frames) => void = () => undefined,
    opts: OutboxOptions = {},
  ) {
    this.#sock = sock;
    this.#onError = onError;
    this.#batch = opts.batch ?? false;
    this.#routed = opts.routed ?? false;
  }

  push(msg: Frames): void {
    if (this.#batch) {
      if (!this.#turnOpen) {
        this.#turnOpen = true;
        this.#turnCount = 0;
        setImmediate(() => {
          this.#endTurn();
        });
        // Quiet socket: the first message leaves now. Busy socket: the whole turn waits for
        // its end and leaves as one BATCH per peer.
        if (this.#lastTurnCount <= 1) {
          this.#turnCount = 1;
          this.#enqueue(msg);
          return;
        }
      }
      this.#turnCount++;
      this.#held.push(msg);
      return;
    }
    this.#enqueue(msg);
  }

  #enqueue(msg: Frames): void {
    this.#queue.push(msg);
    if (!this.#running) {
      this.#running = true;
      void this.#drain();
    }
  }

  /** Send what the turn held back: one message alone, several to one peer as a BATCH. */
  #endTurn(): void {
    this.#turnOpen = false;
    this.#lastTurnCount = this.#turnCount;
    const held = this.#held;
    if (held.length === 0) return;
    this.#held = [];
    if (held.length === 1) {
      this.#enqueue(held[0] as Frames);
      return;
    }
    const skip = this.#routed ? 1 : 0;
    const groups = new Map<string, Frames[]>();
    for (const m of held) {
      const key = skip === 0 ? '' : peerKey(m[0]);
      let g = groups.get(key);
      if (g === undefined) groups.set(key, (g = []));
      g.push(m);
    }
    for (const g of groups.values()) {
      // A BATCH stays well inside the receiver's frame and byte limits (P-2.4): a busy turn
      // leaves as several BATCHes, a large message alone.
      let sizes: number[] = [];
      let frames: Frames = [];
      let bytes = 0;
      let first: Frames | undefined;
      const flush = (): void => {
        if (first === undefined) return;
        if (sizes.length === 1) this.#enqueue(first);
        else {
          const head = encodeMessage({ t: 'BATCH', sizes });
          this.#enqueue(
            skip === 0
              ? [...head, ...frames]
              : [first[0] as Uint8Array | string, ...head, ...frames],
          );
        }
        sizes = [];
        frames = [];
        bytes = 0;
        first = undefined;
      };
      for (const m of g) {
        let mBytes = 0;
        for (let i = skip; i < m.length; i++) mBytes += byteLength(m[i] as Uint8Array | string);
        if (
          first !== undefined &&
          (frames.length + m.length - skip > BATCH_MAX_FRAMES || bytes + mBytes > BATCH_MAX_BYTES)
        )
          flush();
        first ??= m;
        sizes.push(m.length - skip);
        for (let i = skip; i < m.length; i++) frames.push(m[i] as Uint8Array | string);
        bytes += mBytes;
      }
      flush();
    }
  }

  /** Messages not yet handed to the socket. */
  get pending(): number {
    return this.#queue.length - this.#head;
  }

  /** Resolves once every pushed message has been handed to the socket. */
  flushed(): Promise<void> {
    if (this.#held.length > 0) this.#endTurn();
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #drain(): Promise<void> {
    while (this.#head < this.#queue.length) {
      const msg = this.#queue[this.#head++] as Frames;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      if (this.#sock.closed) {
        this.#onError(new Error('socket closed'), msg);
        continue;
      }
      try {
        await this.#sock.send(msg);
      } catch (err) {
        this.#onError(err, msg);
      }
    }
    this.#queue = [];
    this.#head = 0;
    this.#running = false;
    const idle = this.#idle;
    this.#idle = [];
    for (const r of idle) r();
  }
}

/**
 * Run `onMessage` for every message received on `sock` until it closes. Receive errors other
 * than the socket closing are handed to `onError`; the loop never throws.
 */
export async function receiveLoop(
  sock: { receive(): Promise<Buffer[]>; readonly closed: boolean },
  onMessage: (frames: Buffer[]) => void,
  onError: (err: unknown) => void = () => undefined,
): Promise<void> {
  while (!sock.closed) {
    let frames: Buffer[];
    try {
      frames = await sock.receive();
    } catch (err) {
      if (isClosedError(err) || isClosed(sock)) return;
      onError(err);
      continue;
    }
    try {
      onMessage(frames);
    } catch (err) {
      onError(err);
    }
  }
}

/** Read `closed` afresh: it changes while a receive is pending. */
function isClosed(sock: { readonly closed: boolean }): boolean {
  return sock.closed;
}

function isClosedError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'EBADF' || code === 'ETERM' || code === 'EAGAIN' || code === 'ENOTSOCK';
}

/** `tcp://host:port`, or `tcp://host:*` for port 0 (an ephemeral port, read back from lastEndpoint). */
export function tcpEndpoint(host: string, port: number): string {
  return `tcp://${host}:${port === 0 ? '*' : String(port)}`;
}
