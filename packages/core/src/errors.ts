/**
 * Typed errors with stable codes. A code is never renamed or reused: peers in other
 * languages see only the code. docs/errors.md is generated from ERROR_CODES.
 */

export interface ErrorCodeInfo {
  /** What happened, in one line. */
  readonly meaning: string;
  /** What the user should do about it. */
  readonly fix: string;
  /** Whether retrying the same work may succeed. */
  readonly retry: boolean;
}

export const ERROR_CODES = {
  RTL_ERR_BAD_DOCUMENT: {
    meaning:
      'The transform document is not of the DSDSL shape (not an object, a stage without tasks, a bad stage option), or a canvas expression is not of a canvas shape.',
    fix: 'Fix the document or canvas at the path the message names; see docs/dsdsl.md and docs/canvas.md.',
    retry: false,
  },
  RTL_ERR_EMPTY_DOCUMENT: {
    meaning: 'The transform document has no stages, or a stage has no tasks.',
    fix: 'Give the document at least one stage with at least one task.',
    retry: false,
  },
  RTL_ERR_UNKNOWN_TASK: {
    meaning: 'A stage or a canvas call names a task that no registry knows.',
    fix: 'Use one of the task names the message lists (rtl tasks), or deploy a module that defines it.',
    retry: false,
  },
  RTL_ERR_BAD_PARAM: {
    meaning: 'A task parameter is missing or of the wrong type or value.',
    fix: 'Fix the parameter the message names (stage, task, parameter); docs/tasks.md gives every shape.',
    retry: false,
  },
  RTL_ERR_CYCLE: {
    meaning: 'The stages of a document depend on each other in a cycle (through `after`).',
    fix: 'Remove one of the `after` edges the message lists.',
    retry: false,
  },
  RTL_ERR_BAD_DATA: {
    meaning:
      'The input data of a job is not a table rtl can use (bad columns, unequal lengths, undecodable Arrow).',
    fix: 'Send an Arrow Table, or an object of equal-length typed arrays or number arrays.',
    retry: false,
  },
  RTL_ERR_BAD_MODULE: {
    meaning:
      'A deployed task module failed to load, exports no task, or clashes with a task that exists.',
    fix: 'Fix the module at the line the message names (run it with `node file.mjs` to see the error), then deploy again; the previous version keeps running.',
    retry: false,
  },
  RTL_ERR_STAGE_FAILED: {
    meaning: 'A task threw while running a stage on a tasknode.',
    fix: 'Read the remote message and stack in `detail`; fix the input or the task.',
    retry: false,
  },
  RTL_ERR_NODE_LOST: {
    meaning: 'The tasknode running a stage died or went silent, and the stage ran out of retries.',
    fix: 'Check the tasknode logs (rtl status); raise the stage `retries` if nodes are flaky.',
    retry: true,
  },
  RTL_ERR_TIMEOUT: {
    meaning: 'A wait ran out of time before the job finished.',
    fix: 'Raise `timeoutMs`, or check with `rtl status` that a tasknode can run the stage named in the message.',
    retry: true,
  },
  RTL_ERR_RELAY_UNREACHABLE: {
    meaning: 'No relay answered at the configured address.',
    fix: 'Start one with `rtl start`, or point RELAY_ADDR / RELAY_RECV at a running relay.',
    retry: true,
  },
  RTL_ERR_CANCELLED: {
    meaning: 'The job was cancelled before it finished.',
    fix: 'Nothing to fix; submit it again if it is still wanted.',
    retry: false,
  },
  RTL_ERR_SHUTTING_DOWN: {
    meaning: 'The relay is shutting down and takes no new work.',
    fix: 'Submit again once the relay is back (rtl start).',
    retry: true,
  },
  RTL_ERR_BUSY: {
    meaning: 'The relay holds its limit of waiting jobs.',
    fix: 'Wait and submit again, or add tasknodes.',
    retry: true,
  },
  RTL_ERR_PROTOCOL: {
    meaning:
      'A message did not follow the wire protocol (bad frames, undecodable header, missing or wrong fields).',
    fix: 'Fix the peer so that it follows docs/protocol.md; the message names the rule (P-x.y).',
    retry: false,
  },
  RTL_ERR_VERSION: {
    meaning: 'A message carried a protocol version this peer does not speak.',
    fix: 'Upgrade the older peer so both speak the same protocol version.',
    retry: false,
  },
  RTL_ERR_TOO_LARGE: {
    meaning: 'A message or value is over a configured size or depth limit.',
    fix: 'Send less data per message, or raise MAX_MESSAGE_BYTES on every peer.',
    retry: false,
  },
  RTL_ERR_CONFIG: {
    meaning: 'A setting has a bad value or an unknown name.',
    fix: 'Fix the setting the message names in the source it names (file, env RTL_<NAME>, or flag); see docs/config.md.',
    retry: false,
  },
  RTL_ERR_STORE: {
    meaning: 'The LMDB store failed (full map, missing key, corrupt entry, not writable).',
    fix: 'Check CACHE_PATH is writable and CACHE_MAP_SIZE is large enough.',
    retry: true,
  },
  RTL_ERR_NOT_RUNNING: {
    meaning: 'The rtl service is not running.',
    fix: 'Start it with `rtl start`.',
    retry: false,
  },
  RTL_ERR_ALREADY_RUNNING: {
    meaning: 'The rtl service is already running.',
    fix: 'Use `rtl status` to see it, or `rtl restart`.',
    retry: false,
  },
  RTL_ERR_UNKNOWN_JOB: {
    meaning:
      'No job of that id is known to the relay (never submitted, or ended so long ago it was pruned).',
    fix: "Check the job id; results are kept for the relay's recent jobs only.",
    retry: false,
  },
  RTL_ERR_AUTH: {
    meaning:
      "The relay refused this peer's handshake: its CURVE key is not on the relay's allow-list, it has no keys while the relay uses CURVE (or the other way round), or CURVE_SERVER_PUBLIC is not the relay's public key.",
    fix: "Do what the message says: add the key's line to the relay's CURVE_ALLOW file, or set CURVE_SERVER_PUBLIC and CURVE_KEY_FILE (docs/security.md); the relay's log names the refused key and address.",
    retry: false,
  },
  RTL_ERR_FORBIDDEN: {
    meaning:
      'The relay uses CURVE and refused a request this peer may not make: a DEPLOY from a key that is not marked deployer on the allow-list, or without a valid deployer proof.',
    fix: 'Mark the key as deployer in the allow-list (`<key> <name> deployer`; the relay re-reads the file), or deploy from a client whose key is marked so.',
    retry: false,
  },
  RTL_ERR_MQTT_UNREACHABLE: {
    meaning: 'No MQTT broker answered at MQTT_URL, and the bridge was not to start one there.',
    fix: 'Start a broker (mosquitto) at MQTT_URL, correct MQTT_URL, or set MQTT_EMBEDDED=auto with a local MQTT_URL so the bridge starts its own.',
    retry: true,
  },
  RTL_ERR_ESP_OFFLINE: {
    meaning:
      'A command went to an ESP node that is not alive (offline, silent past its beats, or never heard of), or the node went away before it answered.',
    fix: 'Check the node is powered and on the network (`nodes()` lists lastSeen); send the command again once it is alive.',
    retry: true,
  },
  RTL_ERR_ESP_TIMEOUT: {
    meaning: 'An ESP node did not answer a command in time (E-3.4); a late answer is dropped.',
    fix: 'Raise `timeoutMs` for slow commands, or check the node is not stuck in a long task (its beat says busy).',
    retry: true,
  },
  RTL_ERR_ESP_RAISED: {
    meaning:
      'The MicroPython code of a command raised on the ESP node (or the node could not parse the command: BadCommand).',
    fix: "Read detail.type and detail.traceback (the node's sys.print_exception) and fix the code, task or arguments sent.",
    retry: false,
  },
  RTL_ERR_INTERNAL: {
    meaning: 'A bug in rtl.',
    fix: 'Report it with the log lines around it.',
    retry: false,
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** Where an error happened and what was wrong; every field optional. */
export interface ErrorDetail {
  job?: string;
  stage?: string;
  task?: string;
  param?: string;
  expected?: string;
  got?: string;
  node?: string;
  index?: number;
  key?: string;
  file?: string;
  offset?: number;
  source?: string;
  limit?: number;
  rule?: string;
  remoteStack?: string;
  [extra: string]: unknown;
}

export class RtlError extends Error {
  override readonly name = 'RtlError';
  readonly code: ErrorCode;
  readonly detail: ErrorDetail;

  constructor(code: ErrorCode, message: string, detail: ErrorDetail = {}, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.detail = detail;
  }

  /** Whether the same work may succeed when tried again. */
  get retry(): boolean {
    return ERROR_CODES[this.code].retry;
  }

  /** A plain object for the wire (CBOR) and for logs. */
  toJSON(): { code: ErrorCode; message: string; detail: ErrorDetail } {
    return { code: this.code, message: this.message, detail: this.detail };
  }

  /** Rebuild an error received from a peer; an unknown code becomes RTL_ERR_INTERNAL. */
  static fromWire(value: unknown): RtlError {
    if (typeof value === 'object' && value !== null) {
      const v = value as { code?: unknown; message?: unknown; detail?: unknown };
      const code = isErrorCode(v.code) ? v.code : 'RTL_ERR_INTERNAL';
      const message = typeof v.message === 'string' ? v.message : String(v.code);
      const detail =
        typeof v.detail === 'object' && v.detail !== null ? (v.detail as ErrorDetail) : {};
      return new RtlError(code, message, detail);
    }
    return new RtlError('RTL_ERR_INTERNAL', `malformed error from peer: ${String(value)}`);
  }
}

export function isRtlError(err: unknown): err is RtlError {
  return err instanceof RtlError;
}

/** Render a value for an error message: short, quoted strings, never a whole payload. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? value.slice(0, 57) + '...' : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null)
    return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  if (typeof value === 'object') return 'an object';
  return typeof value;
}
