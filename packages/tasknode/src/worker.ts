/**
 * Worker thread: runs the tasks of one stage at a time over one in-memory table, and loads
 * task modules. Stages and module loads run strictly in the order they arrive, so a stage
 * that started on a module's version 1 finishes on it, and every stage after a load runs
 * the new version.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { toWireError } from '@rtl/core';
import { createBundledRegistry, registerBundledFunctions } from '@rtl/tasks';
import { executeStage, StoreCache } from './execute.js';
import { importTaskModule } from './modules.js';
import type {
  ControlReply,
  ControlRequest,
  ModuleSpec,
  WorkReply,
  WorkRequest,
  WorkerInit,
} from './work.js';

const registry = registerBundledFunctions(createBundledRegistry());
const stores = new StoreCache();

async function load(seq: number, module: ModuleSpec): Promise<ControlReply> {
  try {
    const defs = await importTaskModule(module.file, module.origin);
    const info = registry.registerModule({ name: module.name, origin: module.origin }, defs);
    const names = (kind: 'table' | 'function'): string[] =>
      info.tasks.filter((t) => t.kind === kind).map((t) => t.name);
    return { seq, op: 'load', ok: true, tables: names('table'), functions: names('function') };
  } catch (err) {
    return { seq, op: 'load', ok: false, error: toWireError(err) };
  }
}

function handle(msg: WorkRequest | ControlRequest): Promise<WorkReply | ControlReply> {
  if (!('op' in msg)) return executeStage(registry, stores, msg);
  if (msg.op === 'load') return load(msg.seq, msg.module);
  registry.unregisterModule(msg.name);
  return Promise.resolve({ seq: msg.seq, op: 'unload', ok: true, tables: [], functions: [] });
}

const port = parentPort;
if (port === null) throw new Error('the tasknode worker must run in a worker thread');
// A replacement worker (after a crash) loads the node's current modules before its first stage.
let turn: Promise<unknown> = Promise.resolve();
for (const m of (workerData as WorkerInit | null)?.modules ?? [])
  turn = turn.then(() => load(0, m));
port.on('message', (msg: WorkRequest | ControlRequest) => {
  turn = turn
    .then(() => handle(msg))
    .then(
      (reply) => {
        port.postMessage(reply);
      },
      (err: unknown) => {
        port.postMessage({
          seq: msg.seq,
          ok: false,
          error: toWireError(err),
          ...('op' in msg ? { op: msg.op } : {}),
        });
      },
    );
});
