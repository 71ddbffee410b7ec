/** A fixed pool of worker threads; one stage per worker at a time. */
import { Worker } from 'node:worker_threads';
import type { WorkReply, WorkRequest } from './work.js';

type Pending = { resolve: (r: WorkReply) => void; worker: PoolWorker };
interface PoolWorker {
  readonly worker: Worker;
  busy: boolean;
}

export class WorkerPool {
  readonly #workers: PoolWorker[] = [];
  readonly #pending = new Map<number, Pending>();
  readonly #queue: { req: WorkRequest; resolve: (r: WorkReply) => void }[] = [];
  readonly #url: URL;
  #closed = false;

  readonly #modules: readonly string[];

  constructor(size: number, modules: readonly string[] = [], url = new URL('./worker.js', import.meta.url)) {
    this.#url = url;
    this.#modules = modules;
    for (let i = 0; i < size; i++) this.#workers.push(this.#spawn());
  }

  get size(): number {
    return this.#workers.length;
  }

  get busy(): number {
    return this.#workers.filter((w) => w.busy).length;
  }

  run(req: WorkRequest): Promise<WorkReply> {
    return new Promise((resolve) => {
      const free = this.#workers.find((w) => !w.busy);
      if (free === undefined) this.#queue.push({ req, resolve });
      else this.#start(free, req, resolve);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#workers.map((w) => w.worker.terminate()));
  }

  #spawn(): PoolWorker {
    const pw: PoolWorker = { worker: new Worker(this.#url, { workerData: { modules: this.#modules } }), busy: false };
    pw.worker.on('message', (reply: WorkReply) => {
      const p = this.#pending.get(reply.seq);
      if (p === undefined) return;
      this.#pending.delete(reply.seq);
      pw.busy = false;
      p.resolve(reply);
      this.#next(pw);
    });
    pw.worker.on('error', (err) => this.#crashed(pw, err));
    pw.worker.on('exit', (code) => {
      if (!this.#closed) this.#crashed(pw, new Error(`worker thread exited with code ${String(code)}`));
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

  /** A worker died (out of memory, a native crash): fail its stage, replace it. */
  #crashed(pw: PoolWorker, err: Error): void {
    const i = this.#workers.indexOf(pw);
    if (i < 0 || this.#closed) return;
    for (const [seq, p] of this.#pending) {
      if (p.worker !== pw) continue;
      this.#pending.delete(seq);
      p.resolve({ seq, ok: false, error: { code: 'RTL_ERR_STAGE_FAILED', message: `worker thread died: ${err.message}`, detail: { remoteStack: err.stack ?? '' } } });
    }
    void pw.worker.terminate();
    const fresh = this.#spawn();
    this.#workers[i] = fresh;
    this.#next(fresh);
  }
}
