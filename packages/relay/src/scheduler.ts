/**
 * Pure scheduling state of the relay: tasknodes with credit, stages waiting for a node,
 * liveness. No sockets and no timers: the caller passes `now`, so it is tested directly.
 *
 * The ZeroMQ Guide's load-balancing broker: a node receives work only while it has credit
 * (free worker slots); among the nodes that can run a stage, the one idle longest wins,
 * so consecutive stages spread over free nodes.
 */

export interface NodeHello {
  readonly name: string;
  readonly queues: readonly string[];
  readonly tasks: readonly string[];
  readonly credit: number;
  readonly host: string;
  readonly store: string;
  readonly pid: number;
  /** Function tasks (the canvas kind) it can call. */
  readonly functions?: readonly string[];
}

export interface NodeState<R> {
  /** Routing identity as hex (map key). */
  readonly id: string;
  readonly identity: Buffer;
  readonly hello: NodeHello;
  readonly queues: ReadonlySet<string>;
  /** Table tasks it runs now: its HELLO's, less those of modules it is still loading. */
  tasks: ReadonlySet<string>;
  /** Function tasks it can call. */
  readonly functions: ReadonlySet<string>;
  credit: number;
  lastSeen: number;
  lastDispatch: number;
  readonly joined: number;
  /** Runs in flight on this node, by run key. */
  readonly inflight: Map<string, R>;
}

/** What a waiting stage needs from a node. */
export interface Placement {
  /** Canonical names of the tasks the stage runs. */
  readonly tasks: readonly string[];
  /** 'function': `tasks` are function tasks (HELLO.functions). */
  readonly kind?: 'table' | 'function';
  /** A queue or node name the stage is routed to. */
  readonly route: string | undefined;
}

export interface Assignment<R> {
  readonly run: R;
  readonly node: NodeState<R>;
}

export class Scheduler<R extends { readonly key: string; readonly placement: Placement }> {
  readonly #nodes = new Map<string, NodeState<R>>();
  /** Waiting runs are #waiting[#head ..]: taking from the front moves the head, copying nothing. */
  #waiting: R[] = [];
  #head = 0;

  get nodes(): ReadonlyMap<string, NodeState<R>> {
    return this.#nodes;
  }

  get waiting(): readonly R[] {
    return this.#waiting.slice(this.#head);
  }

  /** How many runs wait for a node. */
  get waitingCount(): number {
    return this.#waiting.length - this.#head;
  }

  /** Register a node (or re-register it: its in-flight runs stay). */
  addNode(identity: Buffer, hello: NodeHello, now: number): NodeState<R> {
    const id = identity.toString('hex');
    const old = this.#nodes.get(id);
    const node: NodeState<R> = {
      id,
      identity,
      hello,
      queues: new Set(hello.queues),
      tasks: new Set(hello.tasks),
      functions: new Set(hello.functions ?? []),
      credit: Math.max(0, hello.credit - (old?.inflight.size ?? 0)),
      lastSeen: now,
      lastDispatch: old?.lastDispatch ?? 0,
      joined: old?.joined ?? now,
      inflight: old?.inflight ?? new Map<string, R>(),
    };
    this.#nodes.set(id, node);
    return node;
  }

  /** Replace the tasks a node can be given (a module it is loading is held back). */
  setTasks(id: string, tasks: Iterable<string>): void {
    const node = this.#nodes.get(id);
    if (node !== undefined) node.tasks = new Set(tasks);
  }

  node(id: string): NodeState<R> | undefined {
    return this.#nodes.get(id);
  }

  /** Remove a node; returns the runs it had in flight (to be retried or failed). */
  removeNode(id: string): R[] {
    const node = this.#nodes.get(id);
    if (node === undefined) return [];
    this.#nodes.delete(id);
    return [...node.inflight.values()];
  }

  touch(id: string, now: number): void {
    const node = this.#nodes.get(id);
    if (node !== undefined) node.lastSeen = now;
  }

  /** Nodes silent for longer than `silenceMs`, oldest first. */
  silent(now: number, silenceMs: number): NodeState<R>[] {
    const out: NodeState<R>[] = [];
    for (const n of this.#nodes.values()) if (now - n.lastSeen > silenceMs) out.push(n);
    return out;
  }

  canRun(node: NodeState<R>, p: Placement): boolean {
    if (p.route !== undefined && !node.queues.has(p.route) && node.hello.name !== p.route)
      return false;
    const has = p.kind === 'function' ? node.functions : node.tasks;
    for (const t of p.tasks) if (!has.has(t)) return false;
    return true;
  }

  /** Whether any registered node (busy or not) could run the placement. */
  anyCanRun(p: Placement): boolean {
    for (const n of this.#nodes.values()) if (this.canRun(n, p)) return true;
    return false;
  }

  enqueue(run: R): void {
    this.#waiting.push(run);
  }

  /** Put a run at the head of the queue (a retry keeps its place in line). */
  enqueueFront(run: R): void {
    if (this.#head > 0) this.#waiting[--this.#head] = run;
    else this.#waiting.unshift(run);
  }

  /** Remove waiting runs matching `pred` (a cancelled job); returns them. */
  dropWaiting(pred: (run: R) => boolean): R[] {
    const dropped: R[] = [];
    const keep: R[] = [];
    for (let i = this.#head; i < this.#waiting.length; i++) {
      const r = this.#waiting[i] as R;
      if (pred(r)) dropped.push(r);
      else keep.push(r);
    }
    this.#waiting = keep;
    this.#head = 0;
    return dropped;
  }

  /** Mark a run finished on a node: its credit comes back. Returns the run if it was there. */
  complete(nodeId: string, runKey: string): R | undefined {
    const node = this.#nodes.get(nodeId);
    if (node === undefined) return undefined;
    const run = node.inflight.get(runKey);
    if (run === undefined) return undefined;
    node.inflight.delete(runKey);
    node.credit++;
    return run;
  }

  /** Extra credit announced by a node (READY). */
  addCredit(nodeId: string, credit: number): void {
    const node = this.#nodes.get(nodeId);
    if (node !== undefined) node.credit += credit;
  }

  /** Assign every waiting run that some node with credit can take, in queue order. */
  dispatch(now: number): Assignment<R>[] {
    if (this.#waiting.length === this.#head) return [];
    let free = 0;
    for (const n of this.#nodes.values()) free += n.credit;
    if (free === 0) return [];
    const out: Assignment<R>[] = [];
    const keep: R[] = [];
    // Placements no node can take in this pass: credit only goes down within a pass, so the
    // runs after them with the same placement wait without another scan of every node (many
    // nodes with credit that cannot run them, such as ESP nodes, made a long queue quadratic).
    const full = new Set<string>();
    let i = this.#head;
    for (; i < this.#waiting.length && free > 0; i++) {
      const run = this.#waiting[i] as R;
      const key = placementKey(run.placement);
      const node = full.has(key) ? undefined : this.#pick(run.placement);
      if (node === undefined) {
        full.add(key);
        keep.push(run);
        continue;
      }
      node.credit--;
      free--;
      node.lastDispatch = now;
      node.inflight.set(run.key, run);
      out.push({ run, node });
    }
    if (out.length === 0) return out;
    if (keep.length === 0) {
      // Only taken from the front: move the head; compact once the dead front is large.
      this.#head = i;
      if (this.#head === this.#waiting.length) {
        this.#waiting = [];
        this.#head = 0;
      } else if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
        this.#waiting = this.#waiting.slice(this.#head);
        this.#head = 0;
      }
    } else {
      this.#waiting = keep.concat(this.#waiting.slice(i));
      this.#head = 0;
    }
    return out;
  }

  #pick(p: Placement): NodeState<R> | undefined {
    let best: NodeState<R> | undefined;
    for (const n of this.#nodes.values()) {
      if (n.credit <= 0 || !this.canRun(n, p)) continue;
      // Most free credit first, then the node idle longest: spreads stages over free nodes.
      if (
        best === undefined ||
        n.credit > best.credit ||
        (n.credit === best.credit && n.lastDispatch < best.lastDispatch)
      )
        best = n;
    }
    return best;
  }
}

/** Runs with the same key can go to exactly the same nodes. */
function placementKey(p: Placement): string {
  return `${p.kind ?? 'table'}\u0000${p.route ?? ''}\u0000${p.tasks.join('\u0000')}`;
}
