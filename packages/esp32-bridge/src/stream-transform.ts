/**
 * A transform attached to a sensor stream: every tumbling window of the stream (by count or by
 * sample time) runs through a transform document on the cluster, and each window's result is
 * yielded as soon as it is there.
 *
 * ```ts
 * const doc = { '0': { tasks: { task_multiply: { operations: [{ a: 'value', b: 2, column: 'twice' }] } } } };
 * for await (const r of transformStream(bridge, client, 'esp32-a1b2c3/temp', { count: 10 }, doc)) {
 *   r.index;   // 0, 1, 2, ...
 *   r.window;  // the samples: timestamp, value
 *   r.result;  // the document's output table
 * }
 * ```
 * Windows that come while a result is still on its way wait in the bridge's bounded queue
 * (the oldest are dropped and counted when it is full): a slow transform never grows memory.
 * Each window is a job of its own (id `<prefix>-<index>`), so its events are on PUBLISH under
 * `job.<prefix>-<index>`, and its result under `stream.<node>.<stream>` (an EVENT `job.result`
 * with the window's job id and the result's Arrow frames; docs/protocol.md P-7.1).
 */
import { randomUUID } from 'node:crypto';
import type { Table } from 'apache-arrow';
import type { Client } from '@rtl/client';
import type { EspBridge } from './bridge.js';
import type { WindowSpec } from './sensor-window.js';

export interface WindowResult {
  /** The window's number since the transform was attached: 0, 1, 2, ... */
  readonly index: number;
  /** The window's samples (timestamp in ms, value). */
  readonly window: Table;
  /** The transform's output for it. */
  readonly result: Table;
  /** From the window being complete to its result, in ms. */
  readonly ms: number;
}

export interface TransformStreamOptions {
  /** Job id prefix; default `stream.<node>.<stream>.<random>`. */
  readonly idPrefix?: string;
  /**
   * Also send each window job's progress events to this client over RECV (default false:
   * nothing here reads them; PUBLISH subscribers get them either way, under `job.<id>`).
   */
  readonly events?: boolean;
  /** The PUBLISH topic of the results; default `stream.<node>.<stream>`; '' for none. */
  readonly publish?: string;
}

export async function* transformStream(
  bridge: EspBridge,
  client: Client,
  stream: string,
  window: WindowSpec,
  doc: Record<string, unknown>,
  opts: TransformStreamOptions = {},
): AsyncGenerator<WindowResult> {
  const prefix = opts.idPrefix ?? `stream.${stream.replace('/', '.')}.${randomUUID().slice(0, 8)}`;
  const topic = opts.publish ?? `stream.${stream.replace('/', '.')}`;
  let index = 0;
  for await (const w of bridge.subscribe(stream, window)) {
    const t0 = performance.now();
    const id = `${prefix}-${String(index)}`;
    const result = await client
      .execute(doc, {
        data: w,
        id,
        events: opts.events ?? false,
        ...(topic === '' ? {} : { publish: topic }),
      })
      .result();
    yield { index, window: w, result, ms: performance.now() - t0 };
    index++;
  }
}
