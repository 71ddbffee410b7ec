/** `Transform()`: the raspi-rtl style entry point, with or without `new`. */
import { Client, type ClientOptions, type ExecuteOptions } from './client.js';
import type { Job } from './job.js';

export interface TransformHandle extends AsyncDisposable {
  readonly client: Client;
  /** Submit a document; returns its job handle at once. */
  execute(doc: unknown, opts?: ExecuteOptions): Job;
  close(): Promise<void>;
}

export interface TransformFactory {
  (opts?: ClientOptions): TransformHandle;
  new (opts?: ClientOptions): TransformHandle;
}

function makeTransform(opts: ClientOptions = {}): TransformHandle {
  const client = new Client(opts);
  return {
    client,
    execute: (doc, o) => client.execute(doc, o),
    close: () => client.close(),
    [Symbol.asyncDispose]: () => client.close(),
  };
}

/** Works as `Transform()` and as `new Transform()`: both return the same kind of handle. */
export const Transform = function Transform(this: unknown, opts?: ClientOptions): TransformHandle {
  return makeTransform(opts);
} as TransformFactory;
