/**
 * Run one stage: read the input table (inline frames, a store reference, or none), run its
 * task calls in order over that one table, and write the output the cheapest way. Used by
 * worker threads, and by the tasknode's main thread for small stages of bundled tasks.
 */
import { performance } from 'node:perf_hooks';
import {
  RtlError,
  Store,
  decodeTable,
  decodeValue,
  emptyTable,
  encodeValue,
  encodeTable,
  getTable,
  putTable,
  tableByteLength,
  toWireError,
  type DataRef,
  type FunctionCallParams,
} from '@rtl/core';
import type { TaskRegistry } from '@rtl/tasks';
import type { Table } from 'apache-arrow';
import { storePath, type WorkReply, type WorkRequest } from './work.js';

/** Stores opened by path, one per process/thread (lmdb-js shares the environment per path). */
export class StoreCache {
  readonly #stores = new Map<string, Store>();

  at(path: string, mapSize: number): Store {
    let s = this.#stores.get(path);
    if (s === undefined) {
      s = Store.open({ path, mapSize });
      this.#stores.set(path, s);
    }
    return s;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#stores.values()].map((s) => s.close()));
    this.#stores.clear();
  }
}

export async function executeStage(
  registry: TaskRegistry,
  stores: StoreCache,
  req: WorkRequest,
): Promise<WorkReply> {
  if (req.kind === 'function') return executeCalls(registry, req);
  try {
    const t0 = performance.now();
    let input: Table;
    if (req.data.kind === 'ref')
      input = getTable(stores.at(storePath(req.data.store), req.mapSize), req.data);
    else if (req.data.kind === 'arrow') input = readInput(req);
    else if (req.data.kind === 'none') input = emptyTable();
    else
      throw new RtlError(
        'RTL_ERR_BAD_DATA',
        `stage "${req.stage}": a table stage cannot take ${req.data.kind} data`,
        { stage: req.stage },
      );
    const controller = new AbortController();
    const { table, timings } = await registry.runStage(input, req.tasks, {
      stage: req.stage,
      signal: controller.signal,
    });
    let data: DataRef;
    let frames: Uint8Array[] = [];
    if (table === input) {
      // Unchanged table: pass the same reference, the same frames, or nothing on.
      data = req.data;
      frames = req.data.kind === 'arrow' ? [...req.frames] : [];
    } else if (req.resultStore !== '' && tableByteLength(table) >= req.refBytes) {
      data = await putTable(stores.at(storePath(req.resultStore), req.mapSize), table);
    } else {
      frames = encodeTable(table, { chunked: req.chunked });
      data = { kind: 'arrow', frames: frames.length };
    }
    return {
      seq: req.seq,
      ok: true,
      data,
      frames,
      ms: performance.now() - t0,
      tasks: req.profile ? timings : [],
    };
  } catch (err) {
    return { seq: req.seq, ok: false, error: toWireError(err) };
  }
}

/** The stage's Arrow input, checked before any task reads it; an error names job and stage. */
function readInput(req: WorkRequest): Table {
  try {
    return decodeTable(req.frames);
  } catch (err) {
    if (!(err instanceof RtlError)) throw err;
    throw new RtlError(
      err.code,
      `job ${req.job}, stage "${req.stage}": its input is not a valid Arrow table: ${err.message}`,
      { ...err.detail, job: req.job, stage: req.stage },
      { cause: err },
    );
  }
}

/**
 * A function stage [P-6.6]: its calls run in order, each result prepended to the next call's
 * arguments where the call says `pass` (Celery's chain rule); the first call gets the input
 * value. `map` / `starmap` calls apply the task over their items. The last result is the
 * stage's value, sent back as one CBOR frame.
 */
async function executeCalls(registry: TaskRegistry, req: WorkRequest): Promise<WorkReply> {
  try {
    const t0 = performance.now();
    let value: unknown;
    let has = false;
    if (req.data.kind === 'cbor') {
      value = decodeValue(req.frames[0] as Uint8Array);
      has = true;
    } else if (req.data.kind !== 'none')
      throw new RtlError(
        'RTL_ERR_BAD_DATA',
        `stage "${req.stage}": a function stage takes a CBOR value, not ${req.data.kind} data`,
        { stage: req.stage },
      );
    const timings: { task: string; ms: number }[] = [];
    for (const call of req.tasks) {
      const p = call.params as FunctionCallParams;
      const ctx = { stage: req.stage, as: call.as ?? call.task };
      const c0 = performance.now();
      if (p.map !== undefined) {
        const items = p.items ?? [];
        const out: unknown[] = new Array<unknown>(items.length);
        for (let i = 0; i < items.length; i++) {
          const item: unknown = items[i];
          const args = p.map === 'starmap' ? (item as unknown[]) : [item];
          out[i] = await registry.callFunction(call.task, args, ctx);
        }
        value = out;
      } else {
        const rest = p.args ?? [];
        const args = p.pass === true && has ? [value, ...rest] : rest;
        value = await registry.callFunction(call.task, args, ctx);
      }
      has = true;
      if (req.profile) timings.push({ task: call.task, ms: performance.now() - c0 });
    }
    return {
      seq: req.seq,
      ok: true,
      data: { kind: 'cbor', frames: 1 },
      frames: [encodeValue(value)],
      ms: performance.now() - t0,
      tasks: timings,
    };
  } catch (err) {
    return { seq: req.seq, ok: false, error: toWireError(err) };
  }
}
