/** Messages between a tasknode's main thread and its worker threads (in-process only). */
import type { DataRef, TaskCallWire, TaskTiming, WireError } from '@rtl/core';

export interface WorkRequest {
  readonly seq: number;
  readonly job: string;
  readonly stage: string;
  readonly tasks: readonly TaskCallWire[];
  /** Input: inline Arrow frames, or a reference into a store the worker opens by path. */
  readonly data: DataRef;
  readonly frames: readonly Uint8Array[];
  /** Store directory results at or above `refBytes` may be written to; '' = always inline. */
  readonly resultStore: string;
  readonly refBytes: number;
  readonly chunked: boolean;
  readonly mapSize: number;
  readonly profile: boolean;
}

export type WorkReply =
  | {
      readonly seq: number;
      readonly ok: true;
      readonly data: DataRef;
      readonly frames: readonly Uint8Array[];
      readonly ms: number;
      readonly tasks: readonly TaskTiming[];
    }
  | { readonly seq: number; readonly ok: false; readonly error: WireError };

/** `host:path` → path (the store id format of @rtl/core's Store). */
export function storePath(id: string): string {
  const i = id.indexOf(':');
  return i < 0 ? id : id.slice(i + 1);
}
