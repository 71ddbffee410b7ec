/**
 * The relay's job-graph scheduler: runs every node of a job whose inputs are ready on a
 * tasknode with credit that can run it (route, tasks), keeps a node's value only until its
 * consumers have finished with it, sends the job's final value to its client(s), and, when a
 * node fails for good, runs that node's errbacks, cancels the rest and says which node failed.
 * Sockets stay in relay.ts; this file sees them through `JobsHost`.
 */
import {
  RtlError,
  encodeValue,
  encodeTable,
  getTable,
  type DataRef,
  type ErrorCode,
  type GraphNode,
  type JobGraph,
  type Logger,
  type Message,
  type Outgoing,
  type StageTiming,
  type Store,
} from '@rtl/core';
import type { Journal, FinishedRecord, FinishedState, RestoredJob } from './journal.js';
import type { NodeState, Placement, Scheduler } from './scheduler.js';
import {
  NO_VALUE,
  concatTables,
  joinValues,
  mergeTables,
  readTable,
  rowRanges,
  tableValue,
  type Value,
} from './values.js';

export type { FinishedState };

export interface JobsHost {
  readonly sched: Scheduler<Run>;
  readonly store: Store | undefined;
  /** The LMDB journal; without one, jobs live in memory only. */
  readonly journal: Journal | undefined;
  readonly log: Logger;
  now(): number;
  toClient(identity: Buffer, msg: Outgoing, payload?: readonly Uint8Array[]): void;
  toNode(identity: Buffer, msg: Outgoing, payload?: readonly Uint8Array[]): void;
  /** Whether a PUBLISH subscriber wants this topic. */
  wants(topic: string): boolean;
  publish(
    topic: string,
    event: Record<string, unknown>,
    data?: DataRef,
    payload?: readonly Uint8Array[],
  ): void;
}

export interface JobsLimits {
  /** Tables at or above this size are written to the store between stages (CHUNKING_SIZE). */
  readonly refBytes: number;
  /** Finished jobs remembered (state, and the result when small). */
  readonly keepFinished: number;
  /** Bytes of finished results kept for COLLECT / a repeated SUBMIT. */
  readonly keepBytes: number;
}

export interface Run {
  readonly key: string;
  readonly placement: Placement;
  readonly job: GraphJob;
  readonly nr: NodeRun;
  /** The split part this run computes, or -1 for the whole node. */
  readonly part: number;
  /** STAGE.stage: the node key, or `<key>[i/n]` for a split part. */
  readonly label: string;
  readonly attempt: number;
  readonly input: Value;
  dispatched: number;
  node?: string;
  timer?: NodeJS.Timeout;
  /** False once superseded (retry), or its job ended: its answer is dropped. */
  live: boolean;
}

interface NodeRun {
  readonly node: GraphNode;
  state: 'waiting' | 'running' | 'done' | 'failed' | 'skipped';
  /** Dependencies not done yet. */
  deps: number;
  /** Consumers that have not finished with this node's value. */
  users: number;
  value: Value | undefined;
  parts?: { readonly values: (Value | undefined)[]; left: number };
  /** A `stage.waiting` event was sent for its route. */
  announced?: boolean;
}

export interface GraphJob {
  readonly id: string;
  readonly client: Buffer;
  /** Other clients that asked for the result (COLLECT, a repeated SUBMIT). */
  readonly watchers: Buffer[];
  readonly graph: JobGraph;
  readonly events: boolean;
  readonly clientStore: string;
  readonly accepted: number;
  /** SUBMIT.publish (not journaled: events are best effort). */
  publish?: string;
  readonly input: Value;
  readonly nodes: NodeRun[];
  readonly dependents: number[][];
  /** Nodes neither done, failed nor skipped. */
  left: number;
  /** The first node failure; the job ends with it once the errbacks ran. */
  failing?: RtlError;
  state: 'running' | FinishedState;
  readonly timings: StageTiming[];
  /** ACCEPTED was sent (the journal committed the job). */
  started: boolean;
  /** SUBMIT.timeoutMs: the job fails this many ms after it was accepted. */
  readonly timeoutMs: number | undefined;
  /** Node indexes whose values are in the journal. */
  readonly journaled: Set<number>;
  /** Store keys this job owns (inputs and intermediates), deleted when it ends. */
  readonly refs: Set<string>;
  /** Runs waiting or in flight. */
  readonly runs: Set<Run>;
  deadline?: NodeJS.Timeout;
}

interface Finished extends Omit<FinishedRecord, 'at'> {
  readonly bytes: number;
}

export interface SubmitArgs {
  readonly id: string;
  readonly client: Buffer;
  readonly graph: JobGraph;
  readonly input: Value;
  readonly events: boolean;
  readonly clientStore: string;
  readonly timeoutMs?: number;
  /** SUBMIT.publish: the PUBLISH topic of the result. */
  readonly publish?: string;
}

const TOPIC_JOB = 'job.';
/** A retry waits 50 ms, then 100, 200, ... up to 2 s (attempt 2, 3, 4, ...). */
const RETRY_BASE_MS = 50;
const RETRY_MAX_MS = 2000;

function retryDelay(failedAttempt: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (failedAttempt - 1));
}
/** RESULT.stages lists at most this many stage timings (a group of 10,000 has 10,000). */
const MAX_TIMINGS = 256;

export class Jobs {
  readonly #h: JobsHost;
  readonly #limits: JobsLimits;
  readonly #jobs = new Map<string, GraphJob>();
  readonly #finished = new Map<string, Finished>();
  #keptBytes = 0;
  readonly counts = { done: 0, failed: 0, cancelled: 0 };
  #dispatchQueued = false;

  constructor(host: JobsHost, limits: JobsLimits) {
    this.#h = host;
    this.#limits = limits;
  }

  get size(): number {
    return this.#jobs.size;
  }

  running(): number {
    let n = 0;
    for (const j of this.#jobs.values()) if (j.state === 'running') n++;
    return n;
  }

  has(id: string): boolean {
    return this.#jobs.has(id) || this.#ended(id) !== undefined;
  }

  /**
   * A repeated SUBMIT or a COLLECT of a known job: the asker gets ACCEPTED, then the result
   * (now, if the job ended and it is still held; else when it ends). Returns false for an
   * unknown job.
   */
  attach(client: Buffer, id: string): boolean {
    const job = this.#jobs.get(id);
    if (job !== undefined) {
      if (job.started) this.#h.toClient(client, { t: 'ACCEPTED', id });
      if (!job.client.equals(client) && !job.watchers.some((w) => w.equals(client)))
        job.watchers.push(client);
      return true;
    }
    const f = this.#ended(id);
    if (f === undefined) return false;
    this.#h.toClient(client, { t: 'ACCEPTED', id });
    const result = f.result === undefined ? undefined : this.#heldResult(f.result);
    if (result !== undefined)
      this.#h.toClient(
        client,
        { t: 'RESULT', id, data: result.data, stages: result.stages },
        result.payload,
      );
    else
      this.#h.toClient(client, {
        t: 'ERROR',
        id,
        error: f.error ?? {
          code: 'RTL_ERR_UNKNOWN_JOB',
          message: `job ${id} ended (${f.state}), but its result is no longer held by the relay (a result kept by reference was read by its client already, or was over the keep budget)`,
          detail: { job: id },
        },
      });
    return true;
  }

  submit(a: SubmitArgs): void {
    const job = this.#build(a.id, a.client, a.graph, a.input, a.events, a.clientStore, a.timeoutMs);
    if (a.publish !== undefined) job.publish = a.publish;
    this.#jobs.set(job.id, job);
    const journal = this.#h.journal;
    if (journal === undefined) {
      this.#start(job);
      return;
    }
    // [P-6.3] ACCEPTED only once the job is in the journal: a relay killed now still runs it.
    journal
      .accept({
        id: job.id,
        client: job.client,
        graph: job.graph,
        input: job.input,
        events: job.events,
        clientStore: job.clientStore,
        ...(job.timeoutMs === undefined ? {} : { timeoutMs: job.timeoutMs }),
        accepted: job.accepted,
      })
      .then(
        () => {
          if (job.state === 'running') this.#start(job);
        },
        (err: unknown) => {
          if (job.state !== 'running') return;
          job.state = 'failed';
          this.#jobs.delete(job.id);
          const error = new RtlError(
            'RTL_ERR_STORE',
            `job ${job.id} was not accepted: the relay could not write it to its journal: ${err instanceof Error ? err.message : String(err)}`,
            { job: job.id },
          ).toJSON();
          this.#h.log.error({ job: job.id, err }, 'journal write failed: job rejected');
          for (const c of [job.client, ...job.watchers])
            this.#h.toClient(c, { t: 'REJECTED', id: job.id, error });
          for (const key of job.refs) void this.#deleteRef(key);
        },
      );
  }

  /**
   * Jobs read back from the journal at start-up: each resumes from its finished nodes; their
   * clients get the result when it ends (and again when they reconnect and ask).
   */
  restore(jobs: readonly RestoredJob[]): void {
    for (const { record: r, stages } of jobs) {
      if (this.#jobs.has(r.id)) continue;
      const job = this.#build(
        r.id,
        r.client,
        r.graph,
        r.input,
        r.events,
        r.clientStore,
        r.timeoutMs,
        r.accepted,
      );
      job.started = true;
      this.#jobs.set(job.id, job);
      const n = job.nodes.length;
      // Done: nodes with a journaled value, and nodes whose every consumer is done (their value
      // was dropped once those consumers finished).
      const done = new Array<boolean>(n).fill(false);
      for (const i of stages.keys()) if (i >= 0 && i < n) done[i] = true;
      for (let i = n - 1; i >= 0; i--) {
        const deps = job.dependents[i] as number[];
        const nr = job.nodes[i] as NodeRun;
        if (
          !done[i] &&
          nr.node.trigger === 'ok' &&
          deps.length > 0 &&
          !job.graph.outputs.includes(i) &&
          deps.every((d) => done[d])
        )
          done[i] = true;
      }
      for (const nr of job.nodes) {
        const i = nr.node.index;
        if (!done[i]) continue;
        nr.state = 'done';
        job.left--;
        const v = stages.get(i);
        if (v !== undefined) {
          nr.value = v;
          job.journaled.add(i);
          if (v.data.kind === 'ref') job.refs.add(v.data.key);
        }
        for (const d of job.dependents[i] as number[]) (job.nodes[d] as NodeRun).deps--;
        for (const e of nr.node.onError) this.#skip(job, job.nodes[e] as NodeRun);
      }
      for (const nr of job.nodes) {
        if (nr.state !== 'done') continue;
        let users = 0;
        for (const d of job.dependents[nr.node.index] as number[]) {
          const dn = job.nodes[d] as NodeRun;
          if (dn.state !== 'done' && dn.node.inputs.includes(nr.node.index)) users++;
        }
        nr.users = users;
        if (users === 0 && !job.graph.outputs.includes(nr.node.index) && nr.value !== undefined)
          this.#dropValue(job, nr.value, nr);
      }
      this.#h.log.debug(
        { job: job.id, done: stages.size, nodes: n },
        'job resumed from the journal',
      );
      this.#arm(job);
      if (job.left === 0) {
        this.#complete(job);
        continue;
      }
      for (const nr of job.nodes)
        if (nr.state === 'waiting' && nr.deps === 0 && nr.node.trigger === 'ok')
          this.#ready(job, nr);
    }
    this.dispatch();
  }

  /** Drop journaled outcomes past the retention (and by-reference results nobody read). */
  prune(): number {
    const journal = this.#h.journal;
    if (journal === undefined) return 0;
    const gone = journal.prune(this.#h.now());
    for (const { job, ref } of gone) {
      if (ref !== undefined) void this.#deleteRef(ref);
      const kept = this.#finished.get(job);
      if (kept !== undefined) {
        this.#finished.delete(job);
        this.#keptBytes -= kept.bytes;
      }
    }
    return gone.length;
  }

  #build(
    id: string,
    client: Buffer,
    graph: JobGraph,
    input: Value,
    events: boolean,
    clientStore: string,
    timeoutMs: number | undefined,
    accepted = this.#h.now(),
  ): GraphJob {
    const nodes: NodeRun[] = graph.nodes.map((node) => ({
      node,
      state: 'waiting',
      deps: node.trigger === 'error' ? 0 : node.inputs.length + node.after.length,
      users: 0,
      value: undefined,
    }));
    const dependents: number[][] = graph.nodes.map(() => []);
    for (const n of graph.nodes) {
      if (n.trigger === 'error') continue;
      for (const d of n.inputs) {
        (dependents[d] as number[]).push(n.index);
        (nodes[d] as NodeRun).users++;
      }
      for (const d of n.after) (dependents[d] as number[]).push(n.index);
    }
    return {
      id,
      client,
      watchers: [],
      graph,
      events,
      clientStore,
      accepted,
      input,
      nodes,
      dependents,
      left: nodes.length,
      state: 'running',
      timings: [],
      started: false,
      timeoutMs,
      journaled: new Set(),
      refs: new Set(input.data.kind === 'ref' ? [input.data.key] : []),
      runs: new Set(),
    };
  }

  /** The job is accepted: tell its clients, start its first nodes. */
  #start(job: GraphJob): void {
    job.started = true;
    for (const c of [job.client, ...job.watchers])
      this.#h.toClient(c, { t: 'ACCEPTED', id: job.id });
    const graph = job.graph;
    this.#event(job, () => ({
      type: 'job.accepted',
      stages: graph.nodes.length <= MAX_TIMINGS ? graph.nodes.map((n) => n.key) : [],
      nodes: graph.nodes.length,
    }));
    this.#arm(job);
    for (const nr of job.nodes) if (nr.deps === 0 && nr.node.trigger === 'ok') this.#ready(job, nr);
    this.dispatch();
  }

  /** The job's deadline (SUBMIT.timeoutMs after it was accepted; a resumed job keeps its own). */
  #arm(job: GraphJob): void {
    const ms = job.timeoutMs;
    if (ms === undefined) return;
    const left = Math.max(1, job.accepted + ms - this.#h.now());
    job.deadline = setTimeout(() => this.#jobTimedOut(job, ms), left);
  }

  /** A finished job's outcome: kept in memory, or read back from the journal. */
  #ended(id: string): Finished | undefined {
    const f = this.#finished.get(id);
    if (f !== undefined) return f;
    const r = this.#h.journal?.finished(id);
    if (r === undefined) return undefined;
    return {
      state: r.state,
      bytes: 0,
      ...(r.result ? { result: r.result } : {}),
      ...(r.error ? { error: r.error } : {}),
    };
  }

  /** A kept result as it can be sent to anyone: a by-reference result is read back inline. */
  #heldResult(r: NonNullable<Finished['result']>): Finished['result'] {
    if (r.data.kind !== 'ref') return r;
    const store = this.#h.store;
    if (store === undefined || store.id !== r.data.store || !store.has(r.data.key))
      return undefined;
    try {
      const payload = encodeTable(getTable(store, r.data)) as Buffer[];
      return { data: { kind: 'arrow', frames: payload.length }, payload, stages: r.stages };
    } catch {
      return undefined;
    }
  }

  cancel(client: Buffer, id: string): void {
    const job = this.#jobs.get(id);
    if (job === undefined || job.state !== 'running') return;
    if (!job.client.equals(client) && !job.watchers.some((w) => w.equals(client))) return;
    this.#finish(
      job,
      'cancelled',
      new RtlError('RTL_ERR_CANCELLED', `job ${id} was cancelled`, { job: id }),
    );
  }

  /** Where a job is, for STATUS { what: 'job' } (and so for a client's timeout message). */
  where(id: string): Record<string, unknown> {
    const job = this.#jobs.get(id);
    if (job === undefined) {
      const f = this.#ended(id);
      return { job: id, state: f === undefined ? 'UNKNOWN' : f.state.toUpperCase() };
    }
    const running: Record<string, unknown>[] = [];
    const waiting: Record<string, unknown>[] = [];
    for (const run of job.runs) {
      const tasks = run.nr.node.tasks.map((t) => t.as ?? t.task);
      if (run.node !== undefined) {
        const n = this.#h.sched.node(run.node);
        if (running.length < 20)
          running.push({ stage: run.label, tasks, node: n?.hello.name ?? null });
      } else if (waiting.length < 20) {
        waiting.push({
          stage: run.label,
          tasks,
          route: run.placement.route ?? null,
          nodesThatCanRun: this.#canRunCount(run.placement),
        });
      }
    }
    let runningCount = 0;
    for (const r of job.runs) if (r.node !== undefined) runningCount++;
    const first = running[0] ?? waiting[0];
    return {
      job: id,
      state: 'PENDING',
      running,
      waiting,
      runningCount,
      waitingCount: job.runs.size - runningCount,
      // The first of them, as the fields of protocol v1's answer.
      stage: first?.stage ?? null,
      tasks: first?.tasks ?? [],
      route: waiting[0]?.route ?? null,
      node: running[0]?.node ?? null,
      waitingForNode: running.length === 0 && waiting.length > 0,
      nodesThatCanRun:
        waiting.length > 0 ? waiting[0]?.nodesThatCanRun : running.length > 0 ? 1 : 0,
    };
  }

  /** Dispatch on the next microtask: the messages of one BATCH are all read first. */
  dispatch(): void {
    if (this.#dispatchQueued) return;
    this.#dispatchQueued = true;
    queueMicrotask(() => {
      this.#dispatchQueued = false;
      this.#dispatchNow();
    });
  }

  stageDone(
    node: NodeState<Run>,
    msg: Extract<Message, { t: 'STAGE_DONE' }>,
    payload: Buffer[],
  ): void {
    const run = this.#h.sched.complete(node.id, `${msg.id}/${msg.stage}/${String(msg.attempt)}`);
    this.dispatch();
    if (run === undefined || !run.live || run.job.state !== 'running') {
      // [P-6.2] a late or unknown result (stage reassigned, job ended): dropped.
      if (msg.data.kind === 'ref' && !this.#jobs.get(msg.id)?.refs.has(msg.data.key))
        void this.#deleteRef(msg.data.key);
      return;
    }
    const job = run.job;
    this.#endRun(run);
    const value: Value = { data: msg.data, payload };
    if (msg.data.kind === 'ref') job.refs.add(msg.data.key);
    const timing: StageTiming = {
      stage: msg.stage,
      node: node.hello.name,
      ms: msg.ms,
      tasks: msg.tasks,
    };
    if (job.timings.length < MAX_TIMINGS) job.timings.push(timing);
    this.#event(job, () => ({
      type: 'stage.completed',
      stage: msg.stage,
      node: node.hello.name,
      ms: msg.ms,
      tasks: msg.tasks,
    }));
    if (run.part < 0) {
      this.#dropInput(job, run.input, run.nr);
      this.#done(job, run.nr, value);
      return;
    }
    const parts = run.nr.parts as { values: (Value | undefined)[]; left: number };
    this.#dropValue(job, run.input);
    parts.values[run.part] = value;
    if (--parts.left > 0) return;
    try {
      const tables = parts.values.map((v) => readTable(v as Value, this.#h.store));
      const joined = concatTables(tables, run.nr.node.key);
      const out = tableValue(joined, this.#h.store, this.#limits.refBytes);
      for (const v of parts.values) if (v !== undefined) this.#dropValue(job, v);
      if (out.data.kind === 'ref') job.refs.add(out.data.key);
      this.#releaseInputs(job, run.nr);
      this.#done(job, run.nr, out);
    } catch (err) {
      this.#nodeFailed(job, run.nr, this.#located(job, run.nr, err, 'joining its split parts'));
    }
  }

  stageFailed(node: NodeState<Run>, msg: Extract<Message, { t: 'STAGE_FAILED' }>): void {
    const run = this.#h.sched.complete(node.id, `${msg.id}/${msg.stage}/${String(msg.attempt)}`);
    this.dispatch();
    if (run === undefined || !run.live || run.job.state !== 'running') return;
    const job = run.job;
    this.#endRun(run);
    const remote = RtlError.fromWire(msg.error);
    const code: ErrorCode =
      remote.code === 'RTL_ERR_INTERNAL' ? 'RTL_ERR_STAGE_FAILED' : remote.code;
    this.#event(job, () => ({
      type: 'stage.failed',
      stage: msg.stage,
      node: node.hello.name,
      code,
      message: remote.message,
    }));
    const task = typeof remote.detail.task === 'string' ? remote.detail.task : undefined;
    if (run.nr.node.retryOnError === true && run.attempt <= run.nr.node.retries) {
      // The stage asked for it: a task that threw runs again, up to its retries.
      this.#event(job, () => ({
        type: 'stage.retry',
        stage: run.label,
        node: node.hello.name,
        attempt: run.attempt,
        code,
        message: remote.message,
      }));
      this.#enqueue(
        job,
        run.nr,
        run.part,
        run.input,
        run.attempt + 1,
        true,
        retryDelay(run.attempt),
      );
      return;
    }
    const where = this.#describe(run.nr.node, msg.stage, task);
    const err = new RtlError(code, `${where} failed on ${node.hello.name}: ${remote.message}`, {
      ...remote.detail,
      job: job.id,
      stage: msg.stage,
      node: node.hello.name,
      ...(run.nr.node.member === undefined ? {} : { member: run.nr.node.member }),
    });
    this.#nodeFailed(job, run.nr, err);
  }

  /** A tasknode was declared dead: its runs go to another node, up to each node's retries. */
  nodeLost(node: NodeState<Run>, runs: readonly Run[]): void {
    for (const run of runs) {
      if (run.timer) clearTimeout(run.timer);
      const job = run.job;
      if (!run.live || job.state !== 'running') continue;
      this.#endRun(run);
      if (run.attempt > run.nr.node.retries) {
        this.#nodeFailed(
          job,
          run.nr,
          new RtlError(
            'RTL_ERR_NODE_LOST',
            `job ${job.id}: ${this.#describe(run.nr.node, run.label, undefined)} lost its tasknode ${node.hello.name} on each of ${String(run.attempt)} attempts (retries: ${String(run.nr.node.retries)})`,
            { job: job.id, stage: run.label, node: node.hello.name },
          ),
        );
      } else {
        this.#event(job, () => ({
          type: 'stage.retry',
          stage: run.label,
          node: node.hello.name,
          attempt: run.attempt,
        }));
        this.#enqueue(
          job,
          run.nr,
          run.part,
          run.input,
          run.attempt + 1,
          true,
          retryDelay(run.attempt),
        );
      }
    }
    this.dispatch();
  }

  /** Stop every job (relay shutdown): timers cleared; jobs stay unanswered. */
  close(): void {
    for (const job of this.#jobs.values()) {
      if (job.deadline) clearTimeout(job.deadline);
      for (const r of job.runs) if (r.timer) clearTimeout(r.timer);
    }
  }

  // ---- the graph ----

  #ready(job: GraphJob, nr: NodeRun): void {
    if (nr.state !== 'waiting' || job.state !== 'running') return;
    nr.state = 'running';
    const node = nr.node;
    try {
      if (node.kind === 'join') {
        const value = joinValues(
          node.inputs.map((i) => (job.nodes[i] as NodeRun).value ?? NO_VALUE),
        );
        this.#releaseInputs(job, nr);
        this.#done(job, nr, value);
        return;
      }
      const input = this.#inputOf(job, nr);
      if (node.kind === 'stage' && node.split !== undefined) {
        const table = readTable(input, this.#h.store);
        const ranges = rowRanges(table.numRows, node.split);
        if (ranges.length > 1) {
          nr.parts = { values: ranges.map(() => undefined), left: ranges.length };
          ranges.forEach(([b, e], i) => {
            const part = tableValue(table.slice(b, e), this.#h.store, this.#limits.refBytes);
            if (part.data.kind === 'ref') job.refs.add(part.data.key);
            this.#enqueue(job, nr, i, part, 1, false);
          });
          return;
        }
      }
      this.#enqueue(job, nr, -1, input, 1, false);
    } catch (err) {
      this.#nodeFailed(job, nr, this.#located(job, nr, err, 'preparing its input'));
    }
  }

  /** The value a node runs on: its input's, several inputs merged (tables), or the job input. */
  #inputOf(job: GraphJob, nr: NodeRun): Value {
    const node = nr.node;
    if (node.trigger === 'error') {
      const src = job.nodes[node.inputs[0] ?? node.after[0] ?? -1];
      const e = job.failing;
      const info = {
        code: e?.code ?? 'RTL_ERR_INTERNAL',
        message: e?.message ?? 'failed',
        stage: src?.node.key ?? '',
        task: e?.detail.task ?? null,
        node: e?.detail.node ?? null,
      };
      return { data: { kind: 'cbor', frames: 1 }, payload: [Buffer.from(encodeValue(info))] };
    }
    if (node.inputs.length === 0) return job.graph.kind === 'table' ? job.input : NO_VALUE;
    if (node.inputs.length === 1)
      return (job.nodes[node.inputs[0] as number] as NodeRun).value ?? NO_VALUE;
    const merged = mergeTables(
      node.inputs.map((i) => {
        const src = job.nodes[i] as NodeRun;
        return { from: src.node.key, table: readTable(src.value ?? NO_VALUE, this.#h.store) };
      }),
      `stage "${node.key}"`,
    );
    const v = tableValue(merged, this.#h.store, this.#limits.refBytes);
    if (v.data.kind === 'ref') job.refs.add(v.data.key);
    return v;
  }

  #enqueue(
    job: GraphJob,
    nr: NodeRun,
    part: number,
    input: Value,
    attempt: number,
    front: boolean,
    delayMs = 0,
  ): void {
    const node = nr.node;
    const n = nr.parts?.values.length ?? 0;
    const label = part < 0 ? node.key : `${node.key}[${String(part)}/${String(n)}]`;
    const run: Run = {
      key: `${job.id}/${label}/${String(attempt)}`,
      placement: {
        tasks: node.tasks.map((t) => t.task),
        route: node.route,
        kind: node.kind === 'call' ? 'function' : 'table',
      },
      job,
      nr,
      part,
      label,
      attempt,
      input,
      dispatched: 0,
      live: true,
    };
    job.runs.add(run);
    if (delayMs > 0) {
      // A retry waits (backoff), then goes first in the queue.
      run.timer = setTimeout(() => {
        run.timer = undefined;
        if (!run.live || job.state !== 'running') return;
        this.#h.sched.enqueueFront(run);
        this.dispatch();
      }, delayMs);
    } else if (front) this.#h.sched.enqueueFront(run);
    else this.#h.sched.enqueue(run);
    if (!nr.announced && !this.#h.sched.anyCanRun(run.placement)) {
      nr.announced = true;
      const why =
        node.route === undefined
          ? `no connected tasknode can run ${run.placement.tasks.join(', ')}`
          : `no connected tasknode serves route "${node.route}" with ${run.placement.tasks.join(', ')}`;
      this.#h.log.info({ job: job.id, stage: label, route: node.route }, `stage waits: ${why}`);
      this.#event(job, () => ({
        type: 'stage.waiting',
        stage: label,
        route: node.route ?? null,
        reason: why,
      }));
    }
  }

  #dispatchNow(): void {
    const h = this.#h;
    const now = h.now();
    for (const { run, node } of h.sched.dispatch(now)) {
      const job = run.job;
      if (!run.live || job.state !== 'running') {
        h.sched.complete(node.id, run.key);
        continue;
      }
      run.node = node.id;
      run.dispatched = now;
      let input: Value;
      try {
        input = this.#dataFor(job, run.input, node);
      } catch (err) {
        h.sched.complete(node.id, run.key);
        this.#endRun(run);
        this.#nodeFailed(job, run.nr, this.#located(job, run.nr, err, 'reading its input'));
        continue;
      }
      const fn = run.placement.kind === 'function';
      const resultStore =
        h.store !== undefined && node.hello.store === h.store.id ? h.store.id : '';
      h.toNode(
        node.identity,
        {
          t: 'STAGE',
          id: job.id,
          stage: run.label,
          attempt: run.attempt,
          tasks: run.nr.node.tasks,
          data: input.data,
          store: resultStore,
          ...(fn ? { kind: 'function' as const } : {}),
        },
        input.payload,
      );
      const ms = run.nr.node.timeoutMs;
      if (ms !== undefined) run.timer = setTimeout(() => this.#runTimedOut(run, ms), ms);
      this.#event(job, () => ({
        type: 'stage.started',
        stage: run.label,
        node: node.hello.name,
        attempt: run.attempt,
        tasks: run.placement.tasks,
      }));
    }
  }

  /** A value as this tasknode can read it: by reference on a store it shares, else inline. */
  #dataFor(job: GraphJob, v: Value, node: NodeState<Run>): Value {
    if (v.data.kind !== 'ref' || node.hello.store === v.data.store) return v;
    const store = this.#h.store;
    if (store === undefined || store.id !== v.data.store)
      throw new RtlError(
        'RTL_ERR_STORE',
        `job ${job.id}: its table is in store ${v.data.store}, which neither this relay nor tasknode ${node.hello.name} can read`,
        { job: job.id, key: v.data.key },
      );
    const frames = encodeTable(getTable(store, v.data)) as Buffer[];
    return { data: { kind: 'arrow', frames: frames.length }, payload: frames };
  }

  #done(job: GraphJob, nr: NodeRun, value: Value): void {
    nr.state = 'done';
    nr.value = value;
    job.left--;
    const journal = this.#h.journal;
    // Joins are evaluated again on resume; a failing job's errbacks run again; the last node
    // of a job needs no entry (the job's outcome is written next).
    if (
      journal !== undefined &&
      nr.node.kind !== 'join' &&
      job.failing === undefined &&
      job.left > 0
    ) {
      journal.stage(job.id, nr.node.index, value);
      job.journaled.add(nr.node.index);
    }
    // Errbacks of a node that succeeded never run.
    for (const e of nr.node.onError) this.#skip(job, job.nodes[e] as NodeRun);
    for (const d of job.dependents[nr.node.index] as number[]) {
      const dn = job.nodes[d] as NodeRun;
      if (--dn.deps === 0) this.#ready(job, dn);
    }
    if (nr.users === 0 && !job.graph.outputs.includes(nr.node.index))
      this.#dropValue(job, value, nr);
    if (job.left === 0 && job.state === 'running') this.#complete(job);
  }

  #skip(job: GraphJob, nr: NodeRun): void {
    if (nr.state !== 'waiting') return;
    nr.state = 'skipped';
    job.left--;
    for (const d of job.dependents[nr.node.index] as number[])
      this.#skip(job, job.nodes[d] as NodeRun);
  }

  #nodeFailed(job: GraphJob, nr: NodeRun, err: RtlError): void {
    if (job.state !== 'running') return;
    if (nr.state === 'waiting' || nr.state === 'running') {
      nr.state = 'failed';
      job.left--;
    }
    if (job.failing === undefined) {
      job.failing = err;
      // Cancel everything but this node's errbacks (and what follows them).
      const keep = new Set<number>();
      const mark = (i: number): void => {
        if (keep.has(i)) return;
        keep.add(i);
        for (const d of job.dependents[i] as number[]) mark(d);
      };
      for (const e of nr.node.onError) mark(e);
      const dropped = new Set<Run>();
      for (const run of [...job.runs]) {
        if (keep.has(run.nr.node.index)) continue;
        if (run.node === undefined) dropped.add(run);
        this.#endRun(run);
      }
      // One pass over the queue for all of them (a failing group of 1000 drops 999 at once).
      if (dropped.size > 0) this.#h.sched.dropWaiting((r) => dropped.has(r));
      for (const other of job.nodes) {
        if (keep.has(other.node.index)) continue;
        if (other.state === 'waiting' || other.state === 'running') {
          other.state = 'skipped';
          job.left--;
        }
      }
      for (const e of nr.node.onError) this.#ready(job, job.nodes[e] as NodeRun);
    }
    if (job.left === 0) this.#finish(job, 'failed', job.failing);
  }

  /** All nodes ran: the outputs make the result. */
  #complete(job: GraphJob): void {
    if (job.failing !== undefined) {
      this.#finish(job, 'failed', job.failing);
      return;
    }
    let value: Value;
    try {
      const outs = job.graph.outputs.map((i) => job.nodes[i] as NodeRun);
      if (outs.length === 1) value = (outs[0] as NodeRun).value ?? NO_VALUE;
      else {
        const merged = mergeTables(
          outs.map((o) => ({
            from: o.node.key,
            table: readTable(o.value ?? NO_VALUE, this.#h.store),
          })),
          `job ${job.id}, its final stages`,
        );
        const payload = encodeTable(merged) as Buffer[];
        value = { data: { kind: 'arrow', frames: payload.length }, payload };
      }
    } catch (err) {
      this.#finish(
        job,
        'failed',
        err instanceof RtlError
          ? err
          : new RtlError('RTL_ERR_INTERNAL', String(err), { job: job.id }),
      );
      return;
    }
    this.#finish(job, 'done', undefined, value);
  }

  #finish(job: GraphJob, state: FinishedState, err?: RtlError, value?: Value): void {
    if (job.state !== 'running') return;
    job.state = state;
    if (job.deadline) clearTimeout(job.deadline);
    let waiting = false;
    for (const run of job.runs) {
      run.live = false;
      if (run.timer) clearTimeout(run.timer);
      if (run.node === undefined) waiting = true;
    }
    if (waiting) this.#h.sched.dropWaiting((r) => r.job === job);
    job.runs.clear();
    this.#jobs.delete(job.id);
    this.counts[state]++;
    const h = this.#h;
    const clients = [job.client, ...job.watchers];
    let finished: Finished;
    let send: () => void;
    if (state === 'done') {
      let data = (value ?? NO_VALUE).data;
      let payload = (value ?? NO_VALUE).payload;
      if (data.kind === 'ref') {
        if (job.clientStore === data.store && job.watchers.length === 0) {
          job.refs.delete(data.key); // the client owns the result key now
        } else if (h.store !== undefined && h.store.id === data.store) {
          payload = encodeTable(getTable(h.store, data)) as Buffer[];
          data = { kind: 'arrow', frames: payload.length };
        }
      }
      const stages = job.timings;
      this.#event(job, () => ({ type: 'job.completed', ms: h.now() - job.accepted, stages }));
      const msg: Outgoing = { t: 'RESULT', id: job.id, data, stages };
      const topic = job.publish;
      send = () => {
        for (const c of clients) h.toClient(c, msg, payload);
        // A result kept in a store the relay cannot read goes out without its frames.
        if (topic !== undefined && h.wants(topic))
          h.publish(
            topic,
            { type: 'job.result', job: job.id, at: h.now(), ms: h.now() - job.accepted },
            data.kind === 'ref' ? { kind: 'none' } : data,
            data.kind === 'ref' ? [] : payload,
          );
      };
      h.log.debug({ job: job.id, ms: h.now() - job.accepted }, 'job completed');
      let bytes = 64;
      for (const f of payload) bytes += f.length;
      finished =
        bytes > this.#limits.keepBytes / 16
          ? { state, bytes: 64 }
          : { state, bytes, result: { data, payload, stages } };
    } else {
      const error = (
        err ?? new RtlError('RTL_ERR_INTERNAL', `job ${job.id} ended: ${state}`)
      ).toJSON();
      this.#event(job, () => ({
        type: state === 'cancelled' ? 'job.cancelled' : 'job.failed',
        code: error.code,
        message: error.message,
        stage: error.detail.stage ?? null,
      }));
      send = () => {
        for (const c of clients) h.toClient(c, { t: 'ERROR', id: job.id, error });
      };
      h.log.info({ job: job.id, code: error.code, stage: error.detail.stage }, `job ${state}`);
      finished = { state, error, bytes: 256 };
    }
    this.#remember(job.id, finished);
    const journal = h.journal;
    if (journal === undefined) send();
    else {
      // The outcome is in the journal before a client hears it: a relay killed after
      // sending never runs the job again.
      const { state: st, result, error } = finished;
      journal
        .finish(
          job.id,
          { state: st, at: h.now(), ...(result ? { result } : {}), ...(error ? { error } : {}) },
          job.journaled,
        )
        .then(send, (e: unknown) => {
          h.log.error({ job: job.id, err: e }, 'journal: could not record how a job ended');
          send();
        });
    }
    for (const key of job.refs) void this.#deleteRef(key);
    job.refs.clear();
    for (const nr of job.nodes) nr.value = undefined;
  }

  #remember(id: string, f: Finished): void {
    this.#finished.set(id, f);
    this.#keptBytes += f.bytes;
    while (
      this.#finished.size > this.#limits.keepFinished ||
      this.#keptBytes > this.#limits.keepBytes
    ) {
      const oldest = this.#finished.entries().next().value;
      if (oldest === undefined) break;
      this.#finished.delete(oldest[0]);
      this.#keptBytes -= oldest[1].bytes;
    }
  }

  #jobTimedOut(job: GraphJob, ms: number): void {
    if (job.state !== 'running') return;
    const w = this.where(job.id);
    const running = (w.running as { stage: string; node: string | null }[]).map(
      (r) => `"${r.stage}" on ${r.node ?? '?'}`,
    );
    const waiting = (
      w.waiting as { stage: string; route: string | null; nodesThatCanRun: number }[]
    ).map(
      (r) =>
        `"${r.stage}"${r.nodesThatCanRun === 0 ? (r.route === null ? ' (no tasknode can run it)' : ` (no tasknode serves route "${r.route}")`) : ''}`,
    );
    const parts = [
      running.length > 0 ? `running: ${running.join(', ')}` : '',
      waiting.length > 0 ? `waiting: ${waiting.join(', ')}` : '',
    ].filter(Boolean);
    this.#finish(
      job,
      'failed',
      new RtlError(
        'RTL_ERR_TIMEOUT',
        `job ${job.id} did not finish within its timeout of ${String(ms)} ms; ${parts.join('; ') || 'nothing was running'}`,
        {
          job: job.id,
          limit: ms,
          stage: (w.stage as string | null) ?? undefined,
        },
      ),
    );
  }

  #runTimedOut(run: Run, ms: number): void {
    if (!run.live || run.job.state !== 'running') return;
    const job = run.job;
    this.#endRun(run);
    this.#nodeFailed(
      job,
      run.nr,
      new RtlError(
        'RTL_ERR_TIMEOUT',
        `job ${job.id}: ${this.#describe(run.nr.node, run.label, undefined)} ran longer than its timeout of ${String(ms)} ms`,
        {
          job: job.id,
          stage: run.label,
          limit: ms,
        },
      ),
    );
  }

  // ---- plumbing ----

  /** `stage "1"`, or for a canvas node: `group member 3 (task "boom", node "group[3]")`. */
  #describe(node: GraphNode, label: string, task: string | undefined): string {
    const t = task ?? node.tasks[0]?.as ?? node.tasks[0]?.task;
    if (node.kind === 'stage')
      return `stage "${label}"${task === undefined ? '' : `, task "${task}"`}`;
    const what = node.where ?? 'call';
    return `${what} (task "${t ?? '?'}", node "${label}")`;
  }

  #located(job: GraphJob, nr: NodeRun, err: unknown, doing: string): RtlError {
    const where = { job: job.id, stage: nr.node.key };
    if (err instanceof RtlError) {
      const place = this.#describe(nr.node, nr.node.key, undefined);
      // A message that already names the stage is not prefixed with it again.
      const text = err.message.startsWith(`${place}:`) ? err.message : `${place}: ${err.message}`;
      return new RtlError(
        err.code,
        `job ${job.id}, ${text}`,
        { ...err.detail, ...where },
        { cause: err },
      );
    }
    return new RtlError(
      'RTL_ERR_STORE',
      `job ${job.id}, ${this.#describe(nr.node, nr.node.key, undefined)}: ${doing} failed: ${String(err)}`,
      where,
    );
  }

  #canRunCount(p: Placement): number {
    let n = 0;
    for (const node of this.#h.sched.nodes.values()) if (this.#h.sched.canRun(node, p)) n++;
    return n;
  }

  #endRun(run: Run): void {
    run.live = false;
    if (run.timer) clearTimeout(run.timer);
    run.job.runs.delete(run);
  }

  /** A node finished with its input: inputs nobody needs any more are dropped. */
  #dropInput(job: GraphJob, input: Value, nr: NodeRun): void {
    // A merged input (several sources) is this node's own; single inputs belong to their source.
    if (nr.node.inputs.length > 1 || nr.node.trigger === 'error') this.#dropValue(job, input);
    this.#releaseInputs(job, nr);
  }

  #releaseInputs(job: GraphJob, nr: NodeRun): void {
    if (nr.node.trigger === 'error') return;
    for (const i of nr.node.inputs) {
      const src = job.nodes[i] as NodeRun;
      if (--src.users === 0 && !job.graph.outputs.includes(i) && src.value !== undefined)
        this.#dropValue(job, src.value, src);
    }
  }

  #dropValue(job: GraphJob, v: Value, owner?: NodeRun): void {
    if (owner !== undefined) {
      owner.value = undefined;
      if (job.journaled.delete(owner.node.index))
        this.#h.journal?.unstage(job.id, owner.node.index);
    }
    if (v.data.kind !== 'ref') return;
    // The job's input stays until the job ends: several stages may start from it.
    if (job.input.data.kind === 'ref' && job.input.data.key === v.data.key) return;
    if (job.refs.delete(v.data.key)) void this.#deleteRef(v.data.key);
  }

  async #deleteRef(key: string): Promise<void> {
    try {
      // With a journal, deletes queue behind its writes: a crash never shows a value gone
      // before the journal says the stages that read it are done.
      if (this.#h.journal !== undefined) await this.#h.store?.remove(key);
      else await this.#h.store?.delete(key);
    } catch (err) {
      this.#h.log.warn({ err, key }, 'could not delete a stored value');
    }
  }

  /** A job's progress event, built only when the submitter asked for events or someone subscribed. */
  #event(job: GraphJob, make: () => Record<string, unknown>): void {
    const topic = `${TOPIC_JOB}${job.id}`;
    const published = this.#h.wants(topic);
    if (!job.events && !published) return;
    const full = { ...make(), job: job.id, at: this.#h.now() };
    if (job.events) this.#h.toClient(job.client, { t: 'EVENT', topic, event: full });
    if (published) this.#h.publish(topic, full);
  }
}
