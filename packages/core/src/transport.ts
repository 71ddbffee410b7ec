/**
 * Socket helpers. Each socket has one owner: one receive loop and one outbox.
 * zeromq.js rejects a second pending send() with EBUSY, so every send goes through an Outbox.
 */

export type Frames = (Uint8Array | string)[];

interface Sender {
  send(msg: Frames): Promise<void>;
  readonly closed: boolean;
}

/**
 * Serialises sends on one socket. `push` never throws and never blocks the caller; a send
 * that fails (EHOSTUNREACH to a gone peer on a mandatory ROUTER, a closed socket) is handed
 * to `onError` and the outbox goes on with the next message.
 */
export class Outbox {
  readonly #sock: Sender;
  readonly #onError: (err: unknown, msg: Frames) => void;
  #queue: Frames[] = [];
  #head = 0;
  #running = false;
  #idle: (() => void)[] = [];

  constructor(sock: Sender, onError: (err: unknown, msg: Frames) => void = () => undefined) {
    this.#sock = sock;
    this.#onError = onError;
  }

  push(msg: Frames): void {
    this.#queue.push(msg);
    if (!this.#running) {
      this.#running = true;
      void this.#drain();
    }
  }

  /** Messages not yet handed to the socket. */
  get pending(): number {
    return this.#queue.length - this.#head;
  }

  /** Resolves once every pushed message has been handed to the socket. */
  flushed(): Promise<void> {
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
