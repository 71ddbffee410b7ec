/** Worker thread: runs the tasks of one stage at a time over one in-memory table. */
import { parentPort, workerData } from 'node:worker_threads';
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
import { createBundledRegistry } from '@rtl/tasks';
import type { Table } from 'apache-arrow';
import { storePath, type WorkReply, type WorkRequest } from './work.js';
import { loadTaskModules } from './modules.js';

const registry = createBundledRegistry();
const ready = loadTaskModules(registry, (workerData as { modules?: string[] } | null)?.modules ?? []);
const stores = new Map<string, Store>();

function storeAt(path: string, mapSize: number): Store {
  let s = stores.get(path);
  if (s === undefined) {
    s = Store.open({ path, mapSize });
    stores.set(path, s);
  }
  return s;
}

async function run(req: WorkRequest): Promise<WorkReply> {
  await ready;
  const t0 = performance.now();
  let input: Table;
  if (req.data.kind === 'ref') input = getTable(storeAt(storePath(req.data.store), req.mapSize), req.data);
  else if (req.data.kind === 'arrow') input = decodeTable(req.frames);
  else if (req.data.kind === 'none') input = emptyTable();
  else throw new RtlError('RTL_ERR_BAD_DATA', `stage "${req.stage}": a table stage cannot take ${req.data.kind} data`, { stage: req.stage });
  const controller = new AbortController();
  const { table, timings } = await registry.runStage(input, req.tasks, { stage: req.stage, signal: controller.signal });
  let data: DataRef;
  let frames: Uint8Array[] = [];
  if (table === input) {
    // Unchanged table: pass the same reference, the same frames, or nothing on.
    data = req.data;
    frames = req.data.kind === 'arrow' ? [...req.frames] : [];
  } else if (req.resultStore !== '' && tableByteLength(table) >= req.refBytes) {
    data = await putTable(storeAt(storePath(req.resultStore), req.mapSize), table);
  } else {
    frames = encodeTable(table, { chunked: req.chunked });
    data = { kind: 'arrow', frames: frames.length };
  }
  return { seq: req.seq, ok: true, data, frames, ms: performance.now() - t0, tasks: req.profile ? timings : [] };
}

const port = parentPort;
if (port === null) throw new Error('the tasknode worker must run in a worker thread');
port.on('message', (req: WorkRequest) => {
  run(req).then(
    (reply) => port.postMessage(reply),
    (err: unknown) => port.postMessage({ seq: req.seq, ok: false, error: toWireError(err) } satisfies WorkReply),
  );
});
