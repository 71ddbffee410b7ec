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
  emptyTable,
  encodeTable,
  getTable,
  putTable,
  tableByteLength,
  toWireError,
  type DataRef,
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
  try {
    const t0 = performance.now();
    let input: Table;
    if (req.data.kind === 'ref')
      input = getTable(stores.at(storePath(req.data.store), req.mapSize), req.data);
    else if (req.data.kind === 'arrow') input = decodeTable(req.frames);
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
