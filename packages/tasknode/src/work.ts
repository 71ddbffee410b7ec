/** Messages between a tasknode's main thread and its worker threads (in-process only). */
import type { DataRef, TaskCallWire, TaskTiming, WireError } from '@rtl/core';

export interface WorkRequest {
  readonly seq: number;
  readonly job: string;
  readonly stage: string;
  readonly tasks: readonly TaskCallWire[];
  /** 'function': function calls over a CBOR value (P-6.6); else table tasks. */
  readonly kind?: 'table' | 'function';
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

/** A module a worker thread loads (at start, and on DEPLOY). */
export interface ModuleSpec {
  /** Module name: the registry replaces a module of the same name as one step. */
  readonly name: string;
  /** Origin its tasks carry: `scale@2` (deployed) or `file:/path/x.mjs` (--module). */
  readonly origin: string;
  readonly file: string;
}

/** Main thread → worker: load a module (replacing its earlier version) or drop one. */
export type ControlRequest =
  | { readonly seq: number; readonly op: 'load'; readonly module: ModuleSpec }
  | { readonly seq: number; readonly op: 'unload'; readonly name: string };

export type ControlReply =
  | {
      readonly seq: number;
      readonly op: 'load' | 'unload';
      readonly ok: true;
      /** Canonical names of the module's table tasks and function tasks (load). */
      readonly tables: readonly string[];
      readonly functions: readonly string[];
    }
  | {
      readonly seq: number;
      readonly op: 'load' | 'unload';
      readonly ok: false;
      readonly error: WireError;
    };

/** What the worker gets at start: the modules to load before any stage. */
export interface WorkerInit {
  readonly modules: readonly ModuleSpec[];
}

/** `host:path` → path (the store id format of @rtl/core's Store). */
export function storePath(id: string): string {
  const i = id.indexOf(':');
  return i < 0 ? id : id.slice(i + 1);
}
