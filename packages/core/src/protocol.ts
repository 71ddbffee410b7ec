/**
 * Wire protocol version 1: the one module that encodes, decodes and validates messages.
 *
 * A message is multipart. Frame 0 is a CBOR map (the header); frames 1..n are payload
 * buffers (Arrow IPC stream bytes or CBOR values) that the header describes in `data`.
 * Rules are numbered as in docs/protocol.md (P-x.y) and cited in code and tests.
 */
import { Decoder, Encoder } from 'cbor-x';
import { NO_TAGS, scanCbor, VALUE_TAGS, type CborProblem } from './cbor-scan.js';
import { RtlError, describeValue, type ErrorCode, type ErrorDetail } from './errors.js';

export const PROTOCOL_VERSION = 1 as const;

/** Default limits; a peer may pass smaller or larger ones (MAX_MESSAGE_BYTES). */
export const DEFAULT_LIMITS: ProtocolLimits = {
  maxMessageBytes: 256 * 2 ** 20,
  maxHeaderBytes: 4 * 2 ** 20,
  maxFrames: 4096,
  maxDepth: 64,
};

export interface ProtocolLimits {
  /** Total bytes of all frames of one message. [P-2.4] */
  readonly maxMessageBytes: number;
  /** Bytes of the CBOR header frame. [P-2.4] */
  readonly maxHeaderBytes: number;
  /** Frames in one message. [P-2.4] */
  readonly maxFrames: number;
  /** Nesting depth of maps and arrays in a header. [P-2.5] */
  readonly maxDepth: number;
}

/** How the payload frames of a message are to be read. [P-4.1] */
export type DataRef =
  | { readonly kind: 'none' }
  | { readonly kind: 'arrow'; readonly frames: number }
  | { readonly kind: 'cbor'; readonly frames: 1 }
  | { readonly kind: 'ref'; readonly key: string; readonly bytes: number; readonly store: string };

export interface WireError {
  /** An ErrorCode (docs/errors.md); a peer may send codes this version does not know. */
  readonly code: string;
  readonly message: string;
  readonly detail?: ErrorDetail;
}

export interface TaskCallWire {
  /** Canonical task name. */
  readonly task: string;
  /** The name as the document wrote it (`task_add`), for error messages. */
  readonly as?: string;
  readonly params: Record<string, unknown>;
}

export interface TaskTiming {
  readonly task: string;
  readonly ms: number;
}

export interface StageTiming {
  readonly stage: string;
  readonly node: string;
  readonly ms: number;
  readonly tasks: readonly TaskTiming[];
}

interface Base {
  readonly v: typeof PROTOCOL_VERSION;
}

export interface Hello extends Base {
  readonly t: 'HELLO';
  readonly node: string;
  readonly queues: readonly string[];
  /** Canonical names of the table tasks (the DSDSL kind) it can run. */
  readonly tasks: readonly string[];
  readonly credit: number;
  readonly host: string;
  /** The LMDB store this node can read by reference, as `host:path`; '' when none. */
  readonly store: string;
  readonly pid: number;
  /** Canonical names of the function tasks (the canvas kind) it can call. [P-8.4] */
  readonly functions?: readonly string[];
  /** Deployed modules it runs, as `name@version`; present means it takes DEPLOY. [P-8.4] */
  readonly modules?: readonly string[];
  /** Deployed modules it could not load: `{ module: 'name@version', error }`. [P-8.4] */
  readonly failed?: readonly ModuleFailure[];
}
/** A deployed module a tasknode could not load (HELLO.failed). */
export interface ModuleFailure {
  readonly module: string;
  readonly error: WireError;
}
export interface Ready extends Base {
  readonly t: 'READY';
  /** Worker slots freed in addition to those implied by STAGE_DONE / STAGE_FAILED. */
  readonly credit: number;
}
export interface Heartbeat extends Base {
  readonly t: 'HEARTBEAT';
}
export interface Submit extends Base {
  readonly t: 'SUBMIT';
  readonly id: string;
  /** A transform document (DSDSL). Exactly one of `doc` and `canvas`. [P-6.1] */
  readonly doc?: Record<string, unknown>;
  /** A canvas expression (docs/canvas.md): function-task calls composed as chain, group, chord. [P-6.6] */
  readonly canvas?: Record<string, unknown>;
  /** The job fails with RTL_ERR_TIMEOUT when it has not finished this many ms after ACCEPTED. */
  readonly timeoutMs?: number;
  readonly data: DataRef;
  /** Send EVENT messages for this job to the submitter over RECV as well. */
  readonly events: boolean;
  /** The store the client can read results from by reference (`host:path`), '' if none. */
  readonly store: string;
  /**
   * Publish the job's result on PUBLISH under this topic when it is done (an EVENT
   * `job.result` whose data frames are the result; best effort). [P-7.1]
   */
  readonly publish?: string;
}
export interface Accepted extends Base {
  readonly t: 'ACCEPTED';
  readonly id: string;
}
export interface Rejected extends Base {
  readonly t: 'REJECTED';
  /** The job id when the rejected message had one, else ''. */
  readonly id: string;
  readonly error: WireError;
}
export interface Result extends Base {
  readonly t: 'RESULT';
  readonly id: string;
  readonly data: DataRef;
  readonly stages: readonly StageTiming[];
}
export interface ErrorMsg extends Base {
  readonly t: 'ERROR';
  readonly id: string;
  readonly error: WireError;
}
export interface Cancel extends Base {
  readonly t: 'CANCEL';
  readonly id: string;
}
/**
 * C → R: send me job `id`'s RESULT or ERROR (now when it has ended and the relay still holds
 * it, else when it ends). Answered ACCEPTED (known) or REJECTED RTL_ERR_UNKNOWN_JOB. [P-6.7]
 */
export interface Collect extends Base {
  readonly t: 'COLLECT';
  readonly id: string;
}
export interface Status extends Base {
  readonly t: 'STATUS';
  /** Request id chosen by the asker, echoed in the answer. */
  readonly rid: string;
  /** In a request: what to report ('cluster', 'job' with `id`, 'store', 'tasks', 'members'). In an answer: the report. */
  readonly query?: StatusQuery;
  readonly status?: Record<string, unknown>;
}
/** What a STATUS request asks for. [P-6.5] */
export interface StatusQuery {
  readonly what: 'cluster' | 'job' | 'store' | 'tasks' | 'members';
  readonly id?: string;
}
export interface Stage extends Base {
  readonly t: 'STAGE';
  readonly id: string;
  readonly stage: string;
  readonly attempt: number;
  readonly tasks: readonly TaskCallWire[];
  readonly data: DataRef;
  /** The store results may be written to by reference (`host:path`), '' for none. */
  readonly store: string;
  /** 'function': `tasks` are function calls over a CBOR value (params: FunctionCallParams); absent: table tasks. [P-6.6] */
  readonly kind?: 'table' | 'function';
}
export interface StageDone extends Base {
  readonly t: 'STAGE_DONE';
  readonly id: string;
  readonly stage: string;
  readonly attempt: number;
  readonly data: DataRef;
  readonly ms: number;
  readonly tasks: readonly TaskTiming[];
}
export interface StageFailed extends Base {
  readonly t: 'STAGE_FAILED';
  readonly id: string;
  readonly stage: string;
  readonly attempt: number;
  readonly error: WireError;
}
/**
 * A task module: C → R asks to deploy it, R → N hands it to a tasknode. The one `cbor`
 * payload frame is the module's ES source as a text string. [P-8.1]
 */
export interface Deploy extends Base {
  readonly t: 'DEPLOY';
  /** Request id (C → R); the relay's deploy id (R → N). */
  readonly id: string;
  /** Module name: a letter, then letters, digits, `_` or `-` (at most 64). */
  readonly name: string;
  readonly data: DataRef;
  /** R → N only: the version the relay gave it (1, 2, ...). */
  readonly version?: number;
  /** R → N only: sha256 of the source's UTF-8 bytes, lower-case hex. */
  readonly sha256?: string;
  /** C → R, when the relay uses CURVE: the deployer's public key (Z85). [P-8.6] */
  readonly key?: string;
  /** C → R, when the relay uses CURVE: the deployer proof (`deployProof`), hex. [P-8.6] */
  readonly proof?: string;
}
/** One task of a deployed module (DEPLOYED.tasks). */
export interface DeployedTask {
  readonly name: string;
  readonly kind: 'table' | 'function';
  readonly summary: string;
  /** `added`: the previous version did not have it; `replaced`: it did; `unchanged`: the same source was deployed again. */
  readonly change: 'added' | 'replaced' | 'unchanged';
}
/** How one tasknode took a deploy (DEPLOYED.nodes). */
export interface DeployedNode {
  readonly node: string;
  readonly ok: boolean;
  readonly message?: string;
}
/** R → C: the module is stored and every tasknode connected took it (or said why not). [P-8.3] */
export interface Deployed extends Base {
  readonly t: 'DEPLOYED';
  readonly id: string;
  readonly name: string;
  readonly version: number;
  readonly sha256: string;
  /** The source was the current version's already: nothing changed. */
  readonly unchanged: boolean;
  readonly tasks: readonly DeployedTask[];
  /** Tasks of the previous version that this one no longer has. */
  readonly removed: readonly string[];
  readonly nodes: readonly DeployedNode[];
}
/** Several messages to the same peer in one ZeroMQ message. [P-4.7] */
export interface Batch extends Base {
  readonly t: 'BATCH';
  /** Frame count of each inner message (its header frame plus its payload frames), in order. */
  readonly sizes: readonly number[];
}
export interface EventMsg extends Base {
  readonly t: 'EVENT';
  readonly topic: string;
  readonly event: Record<string, unknown>;
  /** The result a `job.result` event carries (its frames follow the header). */
  readonly data?: DataRef;
}

export type Message =
  | Hello
  | Ready
  | Heartbeat
  | Submit
  | Accepted
  | Rejected
  | Result
  | ErrorMsg
  | Cancel
  | Collect
  | Status
  | Stage
  | StageDone
  | StageFailed
  | Deploy
  | Deployed
  | EventMsg
  | Batch;

export type MessageType = Message['t'];

/** Distributes Omit over a union so each member keeps its own fields. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A message as a sender writes it: `v` is filled in by `encodeMessage`. */
export type Outgoing = DistributiveOmit<Message, 'v'>;

type FieldKind =
  'str' | 'int' | 'num' | 'bool' | 'obj' | 'strs' | 'data' | 'error' | 'calls' | 'arr';
type Spec = Readonly<Record<string, FieldKind | `${FieldKind}?`>>;

/** Required fields per type. [P-3.3] */
const SPECS: Readonly<Record<MessageType, Spec>> = {
  HELLO: {
    node: 'str',
    queues: 'strs',
    tasks: 'strs',
    credit: 'int',
    host: 'str',
    store: 'str',
    pid: 'int',
    functions: 'strs?',
    modules: 'strs?',
    failed: 'arr?',
  },
  READY: { credit: 'int' },
  HEARTBEAT: {},
  SUBMIT: {
    id: 'str',
    doc: 'obj?',
    canvas: 'obj?',
    data: 'data',
    events: 'bool',
    store: 'str',
    timeoutMs: 'num?',
    publish: 'str?',
  },
  ACCEPTED: { id: 'str' },
  REJECTED: { id: 'str', error: 'error' },
  RESULT: { id: 'str', data: 'data', stages: 'arr' },
  ERROR: { id: 'str', error: 'error' },
  CANCEL: { id: 'str' },
  COLLECT: { id: 'str' },
  STATUS: { rid: 'str', query: 'obj?', status: 'obj?' },
  STAGE: {
    id: 'str',
    stage: 'str',
    attempt: 'int',
    tasks: 'calls',
    data: 'data',
    store: 'str',
    kind: 'str?',
  },
  STAGE_DONE: { id: 'str', stage: 'str', attempt: 'int', data: 'data', ms: 'num', tasks: 'arr' },
  STAGE_FAILED: { id: 'str', stage: 'str', attempt: 'int', error: 'error' },
  DEPLOY: {
    id: 'str',
    name: 'str',
    data: 'data',
    version: 'int?',
    sha256: 'str?',
    key: 'str?',
    proof: 'str?',
  },
  DEPLOYED: {
    id: 'str',
    name: 'str',
    version: 'int',
    sha256: 'str',
    unchanged: 'bool',
    tasks: 'arr',
    removed: 'strs',
    nodes: 'arr',
  },
  EVENT: { topic: 'str', event: 'obj', data: 'data?' },
  BATCH: { sizes: 'arr' },
};

export const MESSAGE_TYPES = Object.keys(SPECS) as MessageType[];

// One shared encoder: records off so non-JS peers read plain CBOR maps. [P-2.2]
const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
// int64AsNumber: 64-bit CBOR integers from other peers (cbor2 writes 2^32 as one) read as numbers. [P-2.3]
const decoderOptions = { useRecords: false, mapsAsObjects: true, int64AsNumber: true };
const decoder = new Decoder(decoderOptions);

/** Encode a message: frame 0 is the CBOR header, then the payload frames as given. */
export function encodeMessage(msg: Outgoing, payload: readonly Uint8Array[] = []): Uint8Array[] {
  const header = encoder.encode({ v: PROTOCOL_VERSION, ...msg });
  return [header, ...payload];
}

/** Encode a CBOR value for a payload frame (function-task values, small blobs). */
export function encodeValue(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Decode a CBOR payload frame. Throws RtlError RTL_ERR_PROTOCOL naming the problem. */
export function decodeValue(frame: Uint8Array, limits: ProtocolLimits = DEFAULT_LIMITS): unknown {
  const problem = scanCbor(frame, { maxDepth: limits.maxDepth, tags: VALUE_TAGS });
  if (problem !== undefined) throw scanError('payload', problem, limits, 'P-4.3');
  try {
    return decoder.decode(frame);
  } catch (err) {
    throw new RtlError(
      'RTL_ERR_PROTOCOL',
      `[P-4.3] payload is not valid CBOR: ${errMessage(err)}`,
      { rule: 'P-4.3' },
      { cause: err },
    );
  }
}

/** The error for bytes the structure walk refused: too deep names the limit. [P-2.5] */
function scanError(
  what: string,
  problem: CborProblem,
  limits: ProtocolLimits,
  rule: string,
): RtlError {
  if (problem.kind === 'depth')
    return new RtlError(
      'RTL_ERR_TOO_LARGE',
      `[P-2.5] ${what} ${problem.message} at byte ${String(problem.offset)}`,
      { rule: 'P-2.5', limit: limits.maxDepth, offset: problem.offset },
    );
  return new RtlError(
    'RTL_ERR_PROTOCOL',
    `[${rule}] ${what} is not valid CBOR: ${problem.message} at byte ${String(problem.offset)}`,
    { rule, offset: problem.offset },
  );
}

export type Decoded =
  | { readonly ok: true; readonly msg: Message; readonly payload: Buffer[] }
  | { readonly ok: false; readonly error: RtlError; readonly id: string };

/**
 * Decode and validate a message (frames as received, without any routing identity).
 * Never throws on bad input: the error names the rule, the field and what was wrong.
 */
export function decodeMessage(
  frames: readonly Buffer[],
  limits: ProtocolLimits = DEFAULT_LIMITS,
): Decoded {
  if (frames.length === 0) return fail('RTL_ERR_PROTOCOL', 'message has no frames', 'P-2.1');
  if (frames.length > limits.maxFrames)
    return fail(
      'RTL_ERR_TOO_LARGE',
      `message has ${frames.length} frames, limit ${limits.maxFrames}`,
      'P-2.4',
      { limit: limits.maxFrames },
    );
  let total = 0;
  for (const f of frames) total += f.length;
  if (total > limits.maxMessageBytes)
    return fail(
      'RTL_ERR_TOO_LARGE',
      `message is ${total} bytes, limit MAX_MESSAGE_BYTES=${limits.maxMessageBytes}`,
      'P-2.4',
      { limit: limits.maxMessageBytes },
    );
  const head = frames[0] as Buffer;
  if (head.length > limits.maxHeaderBytes)
    return fail(
      'RTL_ERR_TOO_LARGE',
      `header frame is ${head.length} bytes, limit ${limits.maxHeaderBytes}`,
      'P-2.4',
      { limit: limits.maxHeaderBytes },
    );
  const problem = scanCbor(head, { maxDepth: limits.maxDepth, tags: NO_TAGS });
  if (problem !== undefined) {
    const error = scanError('header frame', problem, limits, 'P-2.2');
    return { ok: false, id: '', error };
  }
  let header: unknown;
  try {
    header = decoder.decode(head);
  } catch (err) {
    return fail('RTL_ERR_PROTOCOL', `header frame is not valid CBOR: ${errMessage(err)}`, 'P-2.2');
  }
  if (
    typeof header !== 'object' ||
    header === null ||
    Array.isArray(header) ||
    ArrayBuffer.isView(header)
  )
    return fail(
      'RTL_ERR_PROTOCOL',
      `header is ${describeValue(header)}, expected a CBOR map`,
      'P-2.2',
    );
  const h = header as Record<string, unknown>;
  const id = typeof h.id === 'string' ? h.id : '';
  if (h.v !== PROTOCOL_VERSION)
    return fail(
      'RTL_ERR_VERSION',
      `protocol version ${describeValue(h.v)} is not supported (this peer speaks v${PROTOCOL_VERSION})`,
      'P-3.1',
      {},
      id,
    );
  const t = h.t;
  if (typeof t !== 'string' || !Object.hasOwn(SPECS, t))
    return fail(
      'RTL_ERR_PROTOCOL',
      `unknown message type ${describeValue(t)}; known: ${MESSAGE_TYPES.join(', ')}`,
      'P-3.2',
      {},
      id,
    );
  const spec = SPECS[t as MessageType];
  for (const [field, kindSpec] of Object.entries(spec)) {
    const optional = kindSpec.endsWith('?');
    const kind = (optional ? kindSpec.slice(0, -1) : kindSpec) as FieldKind;
    const value = h[field];
    if (value === undefined && optional) continue;
    const problem = checkField(kind, value);
    if (problem !== undefined)
      return fail(
        'RTL_ERR_PROTOCOL',
        `${t}.${field}: ${problem}, got ${describeValue(value)}`,
        'P-3.3',
        { param: field },
        id,
      );
  }
  if (t === 'SUBMIT' && (h.doc === undefined) === (h.canvas === undefined))
    return fail(
      'RTL_ERR_PROTOCOL',
      h.doc === undefined
        ? 'SUBMIT.doc: expected a map (a transform document; or a canvas in SUBMIT.canvas), got nothing'
        : 'SUBMIT.canvas: a SUBMIT carries a document or a canvas, not both',
      'P-3.3',
      { param: h.doc === undefined ? 'doc' : 'canvas' },
      id,
    );
  const payload = frames.slice(1);
  if (t === 'BATCH') return checkBatch(h, payload);
  const data = h.data as DataRef | undefined;
  const want =
    data === undefined ? 0 : data.kind === 'arrow' || data.kind === 'cbor' ? data.frames : 0;
  if (payload.length !== want)
    return fail(
      'RTL_ERR_PROTOCOL',
      `${t} declares ${want} payload frame(s) but carries ${payload.length}`,
      'P-4.2',
      {},
      id,
    );
  return { ok: true, msg: h as unknown as Message, payload };
}

function checkBatch(h: Record<string, unknown>, payload: Buffer[]): Decoded {
  const sizes = h.sizes as unknown[];
  let sum = 0;
  for (const n of sizes) {
    if (!Number.isSafeInteger(n) || (n as number) < 1)
      return fail(
        'RTL_ERR_PROTOCOL',
        `BATCH.sizes: expected frame counts >= 1, got ${describeValue(n)}`,
        'P-4.7',
      );
    sum += n as number;
  }
  if (sum !== payload.length)
    return fail(
      'RTL_ERR_PROTOCOL',
      `BATCH declares ${String(sum)} inner frame(s) but carries ${String(payload.length)}`,
      'P-4.7',
    );
  return { ok: true, msg: h as unknown as Batch, payload };
}

/** The inner messages of a BATCH, each as the frames of one message. [P-4.7] */
export function unbatch(batch: Batch, payload: readonly Buffer[]): Buffer[][] {
  const out: Buffer[][] = [];
  let at = 0;
  for (const n of batch.sizes) {
    out.push(payload.slice(at, at + n));
    at += n;
  }
  return out;
}

function checkField(kind: FieldKind, value: unknown): string | undefined {
  switch (kind) {
    case 'str':
      return typeof value === 'string' ? undefined : 'expected a text string';
    case 'int':
      return Number.isSafeInteger(value) && (value as number) >= 0
        ? undefined
        : 'expected a non-negative integer';
    case 'num':
      return typeof value === 'number' && Number.isFinite(value) ? undefined : 'expected a number';
    case 'bool':
      return typeof value === 'boolean' ? undefined : 'expected a boolean';
    case 'obj':
      return isPlainMap(value) ? undefined : 'expected a map';
    case 'arr':
      return Array.isArray(value) ? undefined : 'expected an array';
    case 'strs':
      return Array.isArray(value) && value.every((s) => typeof s === 'string')
        ? undefined
        : 'expected an array of text strings';
    case 'error': {
      if (!isPlainMap(value)) return 'expected a map { code, message, detail? }';
      return typeof value.code === 'string' && typeof value.message === 'string'
        ? undefined
        : 'expected { code: string, message: string }';
    }
    case 'calls':
      return Array.isArray(value) &&
        value.every((c) => isPlainMap(c) && typeof c.task === 'string' && isPlainMap(c.params))
        ? undefined
        : 'expected an array of { task: string, params: map }';
    case 'data':
      return checkData(value);
  }
}

function checkData(value: unknown): string | undefined {
  if (!isPlainMap(value)) return 'expected a data descriptor map';
  switch (value.kind) {
    case 'none':
      return undefined;
    case 'arrow':
      return Number.isSafeInteger(value.frames) && (value.frames as number) >= 1
        ? undefined
        : 'expected { kind: "arrow", frames: n >= 1 }';
    case 'cbor':
      return value.frames === 1 ? undefined : 'expected { kind: "cbor", frames: 1 }';
    case 'ref':
      return typeof value.key === 'string' &&
        Number.isSafeInteger(value.bytes) &&
        (value.bytes as number) >= 0 &&
        typeof value.store === 'string'
        ? undefined
        : 'expected { kind: "ref", key: string, bytes: int, store: string }';
    default:
      return 'expected data.kind to be one of none, arrow, cbor, ref';
  }
}

function isPlainMap(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !ArrayBuffer.isView(value)
  );
}

function fail(
  code: ErrorCode,
  message: string,
  rule: string,
  detail: ErrorDetail = {},
  id = '',
): Decoded {
  return { ok: false, id, error: new RtlError(code, `[${rule}] ${message}`, { rule, ...detail }) };
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** An error as it travels in REJECTED / ERROR / STAGE_FAILED. */
export function toWireError(err: unknown): WireError {
  if (err instanceof RtlError) return err.toJSON();
  if (err instanceof Error)
    return {
      code: 'RTL_ERR_INTERNAL',
      message: err.message,
      detail: { remoteStack: err.stack ?? '' },
    };
  return { code: 'RTL_ERR_INTERNAL', message: String(err) };
}

export const NO_DATA: DataRef = { kind: 'none' };
