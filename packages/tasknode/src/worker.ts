/** Worker thread: runs the tasks of one stage at a time over one in-memory table. */
import { parentPort, workerData } from 'node:worker_threads';
import { createBundledRegistry } from '@rtl/tasks';
import { executeStage, StoreCache } from './execute.js';
import { loadTaskModules } from './modules.js';
import type { WorkRequest } from './work.js';

const registry = createBundledRegistry();
const ready = loadTaskModules(registry, (workerData as { modules?: string[] } | null)?.modules ?? []);
const stores = new StoreCache();

const port = parentPort;
if (port === null) throw new Error('the tasknode worker must run in a worker thread');
port.on('message', (req: WorkRequest) => {
  void ready
    .then(() => executeStage(registry, stores, req))
    .then((reply) => {
      port.postMessage(reply);
    });
});
