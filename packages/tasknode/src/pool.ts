/**
 * A fixed pool of worker threads; one stage per worker at a time. Module loads go to every
 * worker at once (`broadcast`), in order with the stages each worker runs.
 */
import { Worker } from 'node:worker_threads';
import type {
  ControlReply,
  ControlRequest,
  ModuleSpec,
  WorkReply,
  WorkRequest,
  WorkerInit,
} from './work.js';

type Pending = { resolve: (r: WorkReply) => void; worker: PoolWorker };
type PendingControl = {
  resolve: (r: ControlReply) => void;
  worker: PoolWorker;
  op: 'load' | 'unload';
};
interface PoolWorker {
  readonly worker: Worker;
  busy: boolean;
}

/** Distributes Omit over the control request union. */
type ControlOp = ControlRequest extends infer R
  ? R extends unknown
    ? Omit<R, 'seq'>
    : never
  : never;

export class WorkerPool {
  readonly #workers: PoolWorker[] = [];
  readonly #pending = new Map<number, Pending>();
  readonly #control = new Map<number, PendingControl>();
  readonly #queue: { req: WorkRequest; resolve: (r: WorkReply) => void }[] = [];
  readonly #url: URL;
  #closed = false;
  #seq = 0;
  /** What a replacement worker loads before its first stage: the node's current modules. */
  #modules: readonly ModuleSpec[] = [];

  constructor(size: number, url = new URL('./worker.js', import.meta.url)) {
    this.#url = url;
    for (let i = 0; i < size; i++) this.#workers.push(this.#spawn());
  }

  get size(): number {
    return this.#workers.length;
  }

  get busy(): number {
    return this.#workers.filter((w) => w.busy).length;
  }

  /** The modules a worker started from now on loads first (after a crash). */
  setModules(modules: readonly ModuleSpec[]): void {
    this.#modules = modules;
  }

  run(req: WorkRequest): Promise<WorkReply> {
    return new Promise((resolve) => {
      const free = this.#workers.find((w) => !w.busy);
      if (free === undefined) this.#queue.push({ req, resolve });
      else this.#start(free, req, resolve);
    });
  }

  /**
   * Send a control request to every worker; resolves with each worker's reply. A worker takes
   * it after the stage it is running (if any), before any stage sent to it later.
   */
  broadcast(op: ControlOp): Promise<ControlReply[]> {
    return Promise.all(
      this.#workers.map(
        (pw) =>
          new Promise<ControlReply>((resolve) => {
            const seq = -++this.#seq;
            this.#control.set(seq, { resolve, worker: pw, op: op.op });
            pw.worker.postMessage({ ...op, seq });
          }),
      ),
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#workers.map((w) => w.worker.terminate()));
  }

  #spawn(): PoolWorker {
    const init: WorkerInit = { modules: this.#modules };
    const pw: PoolWorker = { worker: new Worker(this.#url, { workerData: init }), busy: false };
    pw.worker.on('message', (reply: WorkReply | ControlReply) => {
      if ('op' in reply) {
        const c = this.#control.get(reply.seq);
        if (c === undefined) return;
        this.#control.delete(reply.seq);
        c.resolve(reply);
        return;
      }
      const p = this.#pending.get(reply.seq);
      if (p === undefined) return;
      this.#pending.delete(reply.seq);
      pw.busy = false;
      p.resolve(reply);
      this.#next(pw);
    });
    pw.worker.on('error', (err) => this.#crashed(pw, err));
    pw.worker.on('exit', (code) => {
      if (!this.#closed)
        this.#crashed(pw, new Error(`worker thread exited with code ${String(code)}`));
    });
    return pw;
  }

  #start(pw: PoolWorker, req: WorkRequest, resolve: (r: WorkReply) => void): void {
    pw.busy = true;
    this.#pending.set(req.seq, { resolve, worker: pw });
    pw.worker.postMessage(req);
  }

  #next(pw: PoolWorker): void {
    const item = this.#queue.shift();
    if (item !== undefined) this.#start(pw, item.req, item.resolve);
  }

  /** A worker died (out of memory, a native crash): fail its stage and loads, replace it. */
  #crashed(pw: PoolWorker, err: Error): void {
    const i = this.#workers.indexOf(pw);
    if (i < 0 || this.#closed) return;
    const error = {
      code: 'RTL_ERR_STAGE_FAILED',
      message: `worker thread died: ${err.message}`,
      detail: { remoteStack: err.stack ?? '' },
    };
    for (const [seq, p] of this.#pending) {
      if (p.worker !== pw) continue;
      this.#pending.delete(seq);
      p.resolve({ seq, ok: false, error });
    }
    for (const [seq, c] of this.#control) {
      if (c.worker !== pw) continue;
      this.#control.delete(seq);
      c.resolve({ seq, op: c.op, ok: false, error });
    }
    void pw.worker.terminate();
    const fresh = this.#spawn();
    this.#workers[i] = fresh;
    this.#next(fresh);
  }
}
