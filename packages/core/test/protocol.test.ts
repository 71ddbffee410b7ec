/**
 * Wire protocol v1 (docs/protocol.md). Every numbered rule has a test named after it.
 *
 * Golden fixtures: fixtures/protocol/<TYPE>.hex hold the header frame encodeMessage writes for
 * FIXTURES[TYPE]. Regenerate (only for a new protocol version) with
 * `RTL_WRITE_FIXTURES=1 npx vitest run packages/core/test/protocol.test.ts`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import * as zmq from 'zeromq';
import {
  DEFAULT_LIMITS,
  MESSAGE_TYPES,
  PROTOCOL_VERSION,
  RtlError,
  Store,
  decodeMessage,
  decodeTable,
  decodeValue,
  encodeMessage,
  unbatch,
  encodeTable,
  encodeValue,
  putTable,
  toTable,
  toWireError,
  type Message,
  type MessageType,
  type Outgoing,
  type ProtocolLimits,
} from '@rtl/core';
import { Relay, type RelaySettings } from '@rtl/relay';

const FIXTURE_DIR = new URL('./fixtures/protocol/', import.meta.url);

/** One fixed message per type, with payload frames that match its `data`. */
const FIXTURES: Record<MessageType, { msg: Outgoing; payload: Buffer[] }> = {
  HELLO: {
    msg: {
      t: 'HELLO',
      node: 'node-a',
      queues: ['gpu'],
      tasks: ['add', 'null'],
      credit: 2,
      host: 'h1',
      store: 'h1:/var/cache/rtl',
      pid: 4242,
    },
    payload: [],
  },
  READY: { msg: { t: 'READY', credit: 1 }, payload: [] },
  HEARTBEAT: { msg: { t: 'HEARTBEAT' }, payload: [] },
  SUBMIT: {
    msg: {
      t: 'SUBMIT',
      id: 'job-1',
      doc: { '0': { tasks: { task_null: {} } } },
      data: { kind: 'arrow', frames: 1 },
      events: true,
      store: '',
    },
    payload: [Buffer.from('arrow-ipc-stream')],
  },
  ACCEPTED: { msg: { t: 'ACCEPTED', id: 'job-1' }, payload: [] },
  REJECTED: {
    msg: {
      t: 'REJECTED',
      id: 'job-1',
      error: {
        code: 'RTL_ERR_UNKNOWN_TASK',
        message: 'stage "0": unknown task "task_nul"',
        detail: { stage: '0', task: 'task_nul' },
      },
    },
    payload: [],
  },
  RESULT: {
    msg: {
      t: 'RESULT',
      id: 'job-1',
      data: { kind: 'arrow', frames: 2 },
      stages: [{ stage: '0', node: 'node-a', ms: 1.5, tasks: [{ task: 'null', ms: 0.25 }] }],
    },
    payload: [Buffer.from('schema+batch'), Buffer.from('eos')],
  },
  ERROR: {
    msg: {
      t: 'ERROR',
      id: 'job-1',
      error: { code: 'RTL_ERR_STAGE_FAILED', message: 'boom', detail: { stage: '0' } },
    },
    payload: [],
  },
  CANCEL: { msg: { t: 'CANCEL', id: 'job-1' }, payload: [] },
  COLLECT: { msg: { t: 'COLLECT', id: 'job-1' }, payload: [] },
  STATUS: { msg: { t: 'STATUS', rid: 'r-1', query: { what: 'job', id: 'job-1' } }, payload: [] },
  STAGE: {
    msg: {
      t: 'STAGE',
      id: 'job-1',
      stage: '0',
      attempt: 1,
      tasks: [
        { task: 'add', as: 'task_add', params: { operations: [{ a: 'x', b: 1, column: 'y' }] } },
      ],
      data: { kind: 'ref', key: 't/0001', bytes: 1048576, store: 'h1:/var/cache/rtl' },
      store: 'h1:/var/cache/rtl',
    },
    payload: [],
  },
  STAGE_DONE: {
    msg: {
      t: 'STAGE_DONE',
      id: 'job-1',
      stage: '0',
      attempt: 1,
      data: { kind: 'arrow', frames: 1 },
      ms: 2.5,
      tasks: [{ task: 'add', ms: 2.5 }],
    },
    payload: [Buffer.from('arrow-ipc-stream')],
  },
  STAGE_FAILED: {
    msg: {
      t: 'STAGE_FAILED',
      id: 'job-1',
      stage: '0',
      attempt: 1,
      error: { code: 'RTL_ERR_BAD_PARAM', message: 'no column "x"', detail: { task: 'add' } },
    },
    payload: [],
  },
  DEPLOY: {
    msg: { t: 'DEPLOY', id: 'deploy-1', name: 'scale.mjs', data: { kind: 'cbor', frames: 1 } },
    payload: [Buffer.from([0x60])],
  },
  DEPLOYED: {
    msg: {
      t: 'DEPLOYED',
      id: 'deploy-1',
      name: 'scale',
      version: 2,
      sha256: '3f2a',
      unchanged: false,
      tasks: [{ name: 'scaleBy', kind: 'table', summary: 'x * k', change: 'replaced' }],
      removed: ['cube'],
      nodes: [{ node: 'node-a', ok: true }],
    },
    payload: [],
  },
  EVENT: {
    msg: {
      t: 'EVENT',
      topic: 'job.job-1',
      event: { type: 'stage.completed', job: 'job-1', stage: '0', ms: 2.5, at: 1700000000000 },
    },
    payload: [],
  },
  BATCH: {
    msg: { t: 'BATCH', sizes: [1, 2] },
    payload: [
      ...encodeMessage({ t: 'ACCEPTED', id: 'job-1' }),
      ...encodeMessage({ t: 'DEPLOY', id: 'd', name: 'm.mjs', data: { kind: 'cbor', frames: 1 } }, [
        Buffer.from([0x60]),
      ]),
    ].map((f) => Buffer.from(f)),
  },
};

// ---- an independent minimal CBOR writer (RFC 8949), with the number policy of the spec ----

function cborHead(major: number, n: number): number[] {
  if (n < 24) return [(major << 5) | n];
  if (n < 0x100) return [(major << 5) | 24, n];
  if (n < 0x10000) return [(major << 5) | 25, n >> 8, n & 0xff];
  return [(major << 5) | 26, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

function cbor(value: unknown): number[] {
  if (value === true) return [0xf5];
  if (value === false) return [0xf4];
  if (value === null) return [0xf6];
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0 && value < 2 ** 32) return cborHead(0, value);
    if (Number.isInteger(value) && value < 0 && value >= -(2 ** 32)) return cborHead(1, -1 - value);
    const b = Buffer.alloc(9);
    b[0] = 0xfb;
    b.writeDoubleBE(value, 1);
    return [...b];
  }
  if (typeof value === 'string') {
    const bytes = [...Buffer.from(value, 'utf8')];
    return [...cborHead(3, bytes.length), ...bytes];
  }
  if (Array.isArray(value)) return [...cborHead(4, value.length), ...value.flatMap(cbor)];
  if (typeof value === 'object') {
    const entries = Object.entries(value);
    return [
      ...cborHead(5, entries.length),
      ...entries.flatMap(([k, v]) => [...cbor(k), ...cbor(v)]),
    ];
  }
  throw new Error(`test CBOR writer: cannot write ${typeof value}`);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const buf = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');
/** A header frame from any object, encoded as plain CBOR by the test's own writer. */
const raw = (obj: Record<string, unknown>): Buffer => Buffer.from(cbor(obj));
const frames = (msg: Outgoing, payload: readonly Uint8Array[] = []): Buffer[] =>
  encodeMessage(msg, payload).map((f) => Buffer.from(f));

function rejected(d: ReturnType<typeof decodeMessage>): RtlError {
  if (d.ok) throw new Error(`expected the message to be refused, it decoded as ${d.msg.t}`);
  return d.error;
}

function accepted(d: ReturnType<typeof decodeMessage>): { msg: Message; payload: Buffer[] } {
  if (!d.ok) throw new Error(`expected the message to decode, got ${d.error.message}`);
  return d;
}

/** Deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('golden fixtures (protocol v1)', () => {
  if (process.env.RTL_WRITE_FIXTURES === '1') {
    for (const type of MESSAGE_TYPES) {
      const { msg } = FIXTURES[type];
      writeFileSync(new URL(`${type}.hex`, FIXTURE_DIR), `${hex(frames(msg)[0] as Buffer)}\n`);
    }
  }

  it('has a fixture for each of the 18 message types and no other', () => {
    expect(Object.keys(FIXTURES).sort()).toEqual([...MESSAGE_TYPES].sort());
    expect(MESSAGE_TYPES).toHaveLength(18);
  });

  it.each(MESSAGE_TYPES)('encodeMessage writes exactly the bytes of %s.hex', (type) => {
    const golden = readFileSync(new URL(`${type}.hex`, FIXTURE_DIR), 'utf8').trim();
    const { msg, payload } = FIXTURES[type];
    const out = frames(msg, payload);
    expect(hex(out[0] as Buffer)).toBe(golden);
    expect(out.slice(1)).toEqual(payload);
  });

  it.each(MESSAGE_TYPES)(
    '[P-2.2] the %s header is plain CBOR: the bytes an independent CBOR writer makes',
    (type) => {
      const { msg } = FIXTURES[type];
      expect(hex(frames(msg)[0] as Buffer)).toBe(hex(Buffer.from(cbor({ v: 1, ...msg }))));
    },
  );

  it.each(MESSAGE_TYPES)('decodeMessage round-trips %s with its payload frames', (type) => {
    const { msg, payload } = FIXTURES[type];
    const { msg: back, payload: got } = accepted(decodeMessage(frames(msg, payload)));
    expect(back).toEqual({ v: PROTOCOL_VERSION, ...msg });
    expect(got).toEqual(payload);
  });

  // Deployed modules (P-8.4): a HELLO with its optional module fields, and DEPLOY as the relay sends it.
  const MODULE_FIXTURES: Record<string, Outgoing> = {
    // Canvas (P-6.6): a SUBMIT with a canvas instead of a document, and a function STAGE.
    'SUBMIT-canvas': {
      t: 'SUBMIT',
      id: 'job-2',
      canvas: {
        chain: [
          { call: 'add', args: [4, 4] },
          { call: 'mul', args: [8] },
        ],
      },
      data: { kind: 'none' },
      events: false,
      store: '',
      timeoutMs: 5000,
    },
    'STAGE-function': {
      t: 'STAGE',
      id: 'job-2',
      stage: 'chain[0-1]',
      attempt: 1,
      tasks: [
        { task: 'add', as: 'add', params: { args: [4, 4], pass: true } },
        { task: 'mul', as: 'mul', params: { args: [8], pass: true } },
      ],
      data: { kind: 'cbor', frames: 1 },
      store: '',
      kind: 'function',
    },
    'HELLO-modules': {
      ...FIXTURES.HELLO.msg,
      functions: ['add', 'tsum'],
      modules: ['scale@2'],
      failed: [
        { module: 'calib@1', error: { code: 'RTL_ERR_BAD_DATA', message: 'no calibration file' } },
      ],
    } as Outgoing,
    'DEPLOY-to-node': {
      t: 'DEPLOY',
      id: 'scale@2',
      name: 'scale',
      data: { kind: 'cbor', frames: 1 },
      version: 2,
      sha256: '3f2a',
    },
  };
  it.each(Object.keys(MODULE_FIXTURES))(
    '[P-8.4] encodeMessage writes exactly the bytes of %s.hex, plain CBOR',
    (name) => {
      const msg = MODULE_FIXTURES[name] as Outgoing;
      const golden = readFileSync(new URL(`${name}.hex`, FIXTURE_DIR), 'utf8').trim();
      const head = frames(msg)[0] as Buffer;
      expect(hex(head)).toBe(golden);
      expect(hex(head)).toBe(hex(Buffer.from(cbor({ v: 1, ...msg }))));
      const payload = 'data' in msg && msg.data?.kind === 'cbor' ? [Buffer.from([0x60])] : [];
      expect(accepted(decodeMessage([head, ...payload])).msg).toEqual({ v: 1, ...msg });
    },
  );

  it('the worked example of docs/protocol.md: ACCEPTED for job-1, byte by byte', () => {
    const bytes = frames({ t: 'ACCEPTED', id: 'job-1' })[0] as Buffer;
    // a3: map(3) | 61 76: "v" | 01: 1 | 61 74: "t" | 68 ...: "ACCEPTED" | 62 69 64: "id" | 65 ...: "job-1"
    expect(hex(bytes)).toBe('a3617601617468414343455054454462696465' + '6a6f622d31');
  });

  it('the worked example of docs/protocol.md: a SUBMIT header', () => {
    const bytes = frames({
      t: 'SUBMIT',
      id: 'job-1',
      doc: { '0': { tasks: { task_null: {} } } },
      data: { kind: 'none' },
      events: false,
      store: '',
    })[0] as Buffer;
    const expected = [
      'a7', // map of 7 pairs
      '6176 01', // "v": 1
      '6174 66 5355424d4954', // "t": "SUBMIT"
      '626964 65 6a6f622d31', // "id": "job-1"
      '63646f63 a1 6130 a1 657461736b73 a1 69 7461736b5f6e756c6c a0', // "doc": {"0": {"tasks": {"task_null": {}}}}
      '6464617461 a1 646b696e64 64 6e6f6e65', // "data": {"kind": "none"}
      '666576656e7473 f4', // "events": false
      '6573746f7265 60', // "store": ""
    ];
    expect(hex(bytes)).toBe(hex(buf(expected.join(''))));
  });
});

describe('framing (P-2)', () => {
  it('[P-2.1] refuses a message with no frames', () => {
    expect(rejected(decodeMessage([]))).toMatchObject({
      code: 'RTL_ERR_PROTOCOL',
      detail: { rule: 'P-2.1' },
    });
  });

  it('[P-2.1] frame 0 is the header: a message of one header frame decodes', () => {
    expect(accepted(decodeMessage([raw({ v: 1, t: 'HEARTBEAT' })])).msg).toEqual({
      v: 1,
      t: 'HEARTBEAT',
    });
  });

  it.each([
    ['a lone 0xff break byte', 'ff'],
    ['an empty frame', ''],
    ['a truncated map', 'a2617601'],
    ['a map followed by trailing bytes', 'a2617601617469484541525442454154' + '00'],
    ['a map with a byte-string key', 'a2417601417449484541525442454154'],
    ['text that is not CBOR', Buffer.from('{"v":1}').toString('hex')],
  ])('[P-2.2] refuses a header that is not one CBOR data item: %s', (_name, h) => {
    const err = rejected(decodeMessage([buf(h)]));
    expect(err).toMatchObject({ code: 'RTL_ERR_PROTOCOL', detail: { rule: 'P-2.2' } });
    expect(err.message).toMatch(/^\[P-2\.2\] header frame is not valid CBOR/);
  });

  it.each([
    ['an array', '820102', 'an array of 2'],
    ['a text string', '6474657874', '"text"'],
    ['an integer', '01', '1'],
    ['null', 'f6', 'null'],
    ['a byte string', '43010203', 'a Buffer'],
  ])('[P-2.2] refuses a header that is %s, not a map', (_name, h, shown) => {
    const err = rejected(decodeMessage([buf(h)]));
    expect(err).toMatchObject({ code: 'RTL_ERR_PROTOCOL', detail: { rule: 'P-2.2' } });
    expect(err.message).toBe(`[P-2.2] header is ${shown}, expected a CBOR map`);
  });

  it('[P-2.2] accepts an indefinite-length map and half- and single-precision floats', () => {
    // bf ... ff: indefinite map; ms as f9 (half) 3e00 = 1.5
    const h = buf(
      'bf 6176 01 6174 6a53544147455f444f4e45 626964 6131 657374616765 6130 67617474656d707401' +
        '6464617461 a1 646b696e64 646e6f6e65 626d73 f93e00 657461736b73 80 ff',
    );
    const { msg } = accepted(decodeMessage([h]));
    expect(msg).toMatchObject({ t: 'STAGE_DONE', ms: 1.5, attempt: 1, data: { kind: 'none' } });
    // The same fields with ms as fa 40200000 (single precision 2.5): 7 pairs, then one more.
    const seven = raw({
      v: 1,
      t: 'STAGE_DONE',
      id: '1',
      stage: '0',
      attempt: 1,
      data: { kind: 'none' },
      tasks: [],
    });
    const h32 = Buffer.concat([buf('a8'), seven.subarray(1), buf('626d73 fa40200000')]);
    expect(accepted(decodeMessage([h32])).msg).toMatchObject({ ms: 2.5 });
  });

  it('[P-2.3] integers below 2^32 are CBOR integers; larger ones are written as float64', () => {
    const small = frames({ ...FIXTURES.HELLO.msg, pid: 2 ** 32 - 1 } as Outgoing)[0] as Buffer;
    expect(hex(small)).toContain('63706964' + '1affffffff');
    const large = frames({ ...FIXTURES.HELLO.msg, pid: 2 ** 32 } as Outgoing)[0] as Buffer;
    expect(hex(large)).toContain('63706964' + 'fb41f0000000000000');
    expect(accepted(decodeMessage([large])).msg).toMatchObject({ pid: 2 ** 32 });
    expect(hex(encodeValue(-1))).toBe('20');
    expect(hex(encodeValue(1.5))).toBe('fb3ff8000000000000');
  });

  it('[P-2.3] an integer field written with a 64-bit head (1b) reads as a number; past 2^53 it is refused', () => {
    const ready = raw({ v: 1, t: 'READY' }).subarray(1); // the two pairs, without the a2 head
    const asUint64 = Buffer.concat([buf('a3'), ready, buf('66637265646974 1b0000000100000000')]);
    expect(accepted(decodeMessage([asUint64])).msg).toEqual({ v: 1, t: 'READY', credit: 2 ** 32 });
    const huge = Buffer.concat([buf('a3'), ready, buf('66637265646974 1b0020000000000001')]);
    expect(rejected(decodeMessage([huge]))).toMatchObject({
      code: 'RTL_ERR_PROTOCOL',
      detail: { rule: 'P-3.3', param: 'credit' },
    });
    const asFloat = Buffer.concat([buf('a3'), ready, buf('66637265646974 fb41f0000000000000')]);
    expect(accepted(decodeMessage([asFloat])).msg).toEqual({ v: 1, t: 'READY', credit: 2 ** 32 });
  });

  it('[P-2.4] refuses more frames than maxFrames, and takes exactly maxFrames', () => {
    const limits: ProtocolLimits = { ...DEFAULT_LIMITS, maxFrames: 3 };
    const msg = { t: 'RESULT', id: 'j', data: { kind: 'arrow', frames: 2 }, stages: [] } as const;
    expect(decodeMessage(frames(msg, [buf('01'), buf('02')]), limits).ok).toBe(true);
    const over = [...frames(msg, [buf('01'), buf('02')]), buf('03')];
    expect(rejected(decodeMessage(over, limits))).toMatchObject({
      code: 'RTL_ERR_TOO_LARGE',
      detail: { rule: 'P-2.4', limit: 3 },
    });
    const many = Array.from({ length: DEFAULT_LIMITS.maxFrames + 1 }, () => buf('00'));
    expect(rejected(decodeMessage(many))).toMatchObject({
      code: 'RTL_ERR_TOO_LARGE',
      detail: { rule: 'P-2.4', limit: 4096 },
    });
  });

  it('[P-2.4] refuses a message over maxMessageBytes (all frames), and takes one at the limit', () => {
    const msg = { t: 'DEPLOY', id: 'd', name: 'm', data: { kind: 'cbor', frames: 1 } } as const;
    const head = frames(msg)[0] as Buffer;
    const limits: ProtocolLimits = { ...DEFAULT_LIMITS, maxMessageBytes: head.length + 100 };
    expect(decodeMessage([head, Buffer.alloc(100)], limits).ok).toBe(true);
    const err = rejected(decodeMessage([head, Buffer.alloc(101)], limits));
    expect(err).toMatchObject({
      code: 'RTL_ERR_TOO_LARGE',
      detail: { rule: 'P-2.4', limit: head.length + 100 },
    });
    expect(err.message).toContain('MAX_MESSAGE_BYTES');
  });

  it('[P-2.4] refuses a header frame over maxHeaderBytes, and takes one at the limit', () => {
    const head = frames({ t: 'ACCEPTED', id: 'x'.repeat(200) })[0] as Buffer;
    expect(decodeMessage([head], { ...DEFAULT_LIMITS, maxHeaderBytes: head.length }).ok).toBe(true);
    expect(
      rejected(decodeMessage([head], { ...DEFAULT_LIMITS, maxHeaderBytes: head.length - 1 })),
    ).toMatchObject({
      code: 'RTL_ERR_TOO_LARGE',
      detail: { rule: 'P-2.4', limit: head.length - 1 },
    });
    const big = frames({ t: 'ACCEPTED', id: 'x'.repeat(4 * 2 ** 20) })[0] as Buffer;
    expect(rejected(decodeMessage([big]))).toMatchObject({
      code: 'RTL_ERR_TOO_LARGE',
      detail: { rule: 'P-2.4', limit: 4 * 2 ** 20 },
    });
  });

  /** `levels` nested maps: { a: { a: ... {} } } (levels >= 1). */
  const nest = (levels: number): Record<string, unknown> => {
    let v: Record<string, unknown> = {};
    for (let i = 1; i < levels; i++) v = { a: v };
    return v;
  };

  it('[P-2.5] a header may nest maxDepth levels (the header map is level 1), not one more', () => {
    const at = (levels: number): Buffer =>
      raw({ v: 1, t: 'EVENT', topic: 'x', event: nest(levels - 1) });
    expect(decodeMessage([at(64)]).ok).toBe(true);
    const err = rejected(decodeMessage([at(65)]));
    expect(err).toMatchObject({ code: 'RTL_ERR_TOO_LARGE', detail: { rule: 'P-2.5', limit: 64 } });
    expect(err.message).toMatch(
      /^\[P-2\.5\] header frame nests deeper than 64 levels at byte \d+$/,
    );
    const limits: ProtocolLimits = { ...DEFAULT_LIMITS, maxDepth: 3 };
    expect(decodeMessage([at(3)], limits).ok).toBe(true);
    expect(rejected(decodeMessage([at(4)], limits))).toMatchObject({ detail: { rule: 'P-2.5' } });
  });

  it('[P-2.5] arrays count as levels too', () => {
    const arr = (levels: number): unknown => {
      let v: unknown = [];
      for (let i = 1; i < levels; i++) v = [v];
      return v;
    };
    const limits: ProtocolLimits = { ...DEFAULT_LIMITS, maxDepth: 5 };
    const at = (levels: number): Buffer =>
      raw({ v: 1, t: 'EVENT', topic: 'x', event: { a: arr(levels - 2) } });
    expect(decodeMessage([at(5)], limits).ok).toBe(true);
    expect(rejected(decodeMessage([at(6)], limits))).toMatchObject({
      code: 'RTL_ERR_TOO_LARGE',
      detail: { limit: 5 },
    });
  });

  it('[P-2.5] containers that claim more items or bytes than are left are refused before decoding', () => {
    const cases: [string, number[], RegExp][] = [
      [
        'an array of 2^32-1 items',
        [0x9a, 0xff, 0xff, 0xff, 0xff],
        /array claims 4294967295 items, but 0 bytes/,
      ],
      [
        'a map of 2^64-1 entries',
        [0xbb, ...Array<number>(8).fill(0xff), 0x01],
        /map claims \d+ entries, but 1 bytes/,
      ],
      [
        'a 2 GiB byte string',
        [0x5a, 0x7f, 0xff, 0xff, 0xff, 0x00],
        /byte string claims 2147483647 bytes, but 1 are left/,
      ],
      [
        'a text string past the end',
        [0xa1, 0x61, 0x76, 0x78, 0x10, 0x61],
        /text string claims 16 bytes, but 1 are left/,
      ],
      ['a reserved length', [0xa1, 0x1c, 0x00], /reserved length/],
      ['a break outside an indefinite item', [0x82, 0x01, 0xff], /break \(0xff\) outside/],
      [
        'an indefinite string with a chunk of another type',
        [0xa1, 0x61, 0x76, 0x7f, 0x41, 0x00, 0xff],
        /must be a text string of known length/,
      ],
    ];
    for (const [what, bytes, message] of cases) {
      const err = rejected(decodeMessage([Buffer.from(bytes)]));
      expect(err.code, what).toBe('RTL_ERR_PROTOCOL');
      expect(err.message, what).toMatch(message);
      expect(err.message, what).toMatch(/at byte \d+$/);
      expect(typeof err.detail.offset, what).toBe('number');
    }
  });

  it('[P-2.5] tags that make a decoder keep state or build objects are refused; plain ones pass', () => {
    // Tag 105 starts a record definition the decoder would remember for later messages;
    // 28/29 are shared references; 27 builds an Error or RegExp.
    for (const tag of [
      [0xd8, 0x69],
      [0xd8, 0x1c],
      [0xd8, 0x1d],
      [0xd8, 0x1b],
      [0xd9, 0xdf, 0xff],
    ]) {
      const head = Buffer.from([0xa1, 0x61, 0x78, ...tag, 0x80]);
      const err = rejected(decodeMessage([head]));
      expect(err.code).toBe('RTL_ERR_PROTOCOL');
      expect(err.message).toMatch(/tag \d+ is not allowed \(allowed: none here\) at byte 3$/);
      expect(() => decodeValue(Buffer.from([...tag, 0x80]))).toThrow(
        /\[P-4\.3\] payload is not valid CBOR: tag \d+ is not allowed/,
      );
    }
    // A header carries no tags at all; a value may carry plain ones: a Float64Array (tag 86),
    // a Set (258) and a Date (1).
    expect(rejected(decodeMessage([Buffer.from([0xa1, 0x61, 0x78, 0xc1, 0x00])])).message).toMatch(
      /tag 1 is not allowed \(allowed: none here\)/,
    );
    const v = { f: Float64Array.of(1.5, -2), s: new Set([1, 2]), d: new Date(86_400_000) };
    expect(decodeValue(encodeValue(v))).toEqual(v);
  });

  it('[P-2.5] a header nested 100,000 deep is refused without throwing', () => {
    const deep = Buffer.concat([
      raw({ v: 1, t: 'EVENT', topic: 'x' }).subarray(1),
      Buffer.from(cbor('event')),
      Buffer.alloc(100_000, 0x81),
      buf('80'),
    ]);
    const d = decodeMessage([Buffer.concat([buf('a4'), deep])]);
    expect(d.ok).toBe(false);
    expect(rejected(d).detail.rule).toMatch(/^P-2\.[25]$/);
  });

  it('[P-2.6] a refused message carries the job id it named, for the REJECTED answer', () => {
    const d = decodeMessage([raw({ v: 2, t: 'SUBMIT', id: 'job-7' })]);
    expect(d).toMatchObject({ ok: false, id: 'job-7' });
    expect(decodeMessage([raw({ v: 1, t: 'SUBMIT', id: 'job-8' })])).toMatchObject({
      ok: false,
      id: 'job-8',
    });
    expect(decodeMessage([buf('ff')])).toMatchObject({ ok: false, id: '' });
  });
});

describe('header (P-3)', () => {
  it.each([
    ['v=2', 2, '2'],
    ['v=0', 0, '0'],
    ['v="1"', '1', '"1"'],
    ['no v', undefined, 'nothing'],
  ])('[P-3.1] rejects %s with RTL_ERR_VERSION', (_name, v, shown) => {
    const h: Record<string, unknown> = { t: 'ACCEPTED', id: 'j' };
    if (v !== undefined) h.v = v;
    const err = rejected(decodeMessage([raw(h)]));
    expect(err).toMatchObject({ code: 'RTL_ERR_VERSION', detail: { rule: 'P-3.1' } });
    expect(err.message).toBe(
      `[P-3.1] protocol version ${shown} is not supported (this peer speaks v1)`,
    );
  });

  it('[P-3.1] the version is checked before the type', () => {
    expect(rejected(decodeMessage([raw({ v: 9, t: 'NOPE' })])).code).toBe('RTL_ERR_VERSION');
  });

  it.each([
    ['an unknown name', 'NOPE', '"NOPE"'],
    ['a lower-case name', 'hello', '"hello"'],
    ['an Object.prototype name', 'toString', '"toString"'],
    ['a number', 3, '3'],
    ['no t', undefined, 'nothing'],
  ])('[P-3.2] rejects %s as message type with RTL_ERR_PROTOCOL', (_name, t, shown) => {
    const h: Record<string, unknown> = { v: 1 };
    if (t !== undefined) h.t = t;
    const err = rejected(decodeMessage([raw(h)]));
    expect(err).toMatchObject({ code: 'RTL_ERR_PROTOCOL', detail: { rule: 'P-3.2' } });
    expect(err.message).toBe(
      `[P-3.2] unknown message type ${shown}; known: ${MESSAGE_TYPES.join(', ')}`,
    );
  });

  // The spec of docs/protocol.md, written out here independently of the code's SPECS.
  const STR = [42, null, ['x'], true];
  const INT = [-1, 1.5, '1', true, null, 2 ** 53];
  const NUM = ['1', null, true, [1]];
  const BOOL = [1, 'true', null];
  const MAP = [[], 'x', null, 5];
  const ARR = [{}, 'x', null, 5];
  const STRS = ['x', [1], ['a', null], {}];
  const ERR = ['x', { code: 1, message: 'm' }, { code: 'C' }, { message: 'm' }, []];
  const DATA = [
    'none',
    {},
    { kind: 'zip' },
    { kind: 'arrow' },
    { kind: 'arrow', frames: 0 },
    { kind: 'arrow', frames: 1.5 },
    { kind: 'cbor', frames: 2 },
    { kind: 'ref', key: 'k', bytes: '1', store: 's' },
    { kind: 'ref', key: 1, bytes: 1, store: 's' },
    { kind: 'ref', key: 'k', bytes: 1 },
  ];
  const CALLS = [
    {},
    [{ task: 1, params: {} }],
    [{ task: 'x' }],
    [{ task: 'x', params: [] }],
    ['x'],
  ];
  const REQUIRED: Record<MessageType, Record<string, unknown[]>> = {
    HELLO: { node: STR, queues: STRS, tasks: STRS, credit: INT, host: STR, store: STR, pid: INT },
    READY: { credit: INT },
    HEARTBEAT: {},
    SUBMIT: { id: STR, doc: MAP, data: DATA, events: BOOL, store: STR },
    ACCEPTED: { id: STR },
    REJECTED: { id: STR, error: ERR },
    RESULT: { id: STR, data: DATA, stages: ARR },
    ERROR: { id: STR, error: ERR },
    CANCEL: { id: STR },
    COLLECT: { id: STR },
    STATUS: { rid: STR },
    STAGE: { id: STR, stage: STR, attempt: INT, tasks: CALLS, data: DATA, store: STR },
    STAGE_DONE: { id: STR, stage: STR, attempt: INT, data: DATA, ms: [...NUM], tasks: ARR },
    STAGE_FAILED: { id: STR, stage: STR, attempt: INT, error: ERR },
    DEPLOY: { id: STR, name: STR, data: DATA },
    DEPLOYED: {
      id: STR,
      name: STR,
      version: INT,
      sha256: STR,
      unchanged: BOOL,
      tasks: ARR,
      removed: STRS,
      nodes: ARR,
    },
    EVENT: { topic: STR, event: MAP },
    BATCH: { sizes: ARR },
  };
  const missing = MESSAGE_TYPES.flatMap((t) =>
    Object.keys(REQUIRED[t]).map((f) => [t, f] as const),
  );
  const illTyped = MESSAGE_TYPES.flatMap((t) =>
    Object.entries(REQUIRED[t]).flatMap(([f, bads]) => bads.map((bad) => [t, f, bad] as const)),
  );

  it('[P-3.3] every type has required fields listed (the table covers all 18 types)', () => {
    expect(Object.keys(REQUIRED).sort()).toEqual([...MESSAGE_TYPES].sort());
    expect(missing.length).toBe(54);
  });

  it.each(missing)('[P-3.3] %s without "%s" is refused naming the field', (t, field) => {
    const h = Object.fromEntries(
      Object.entries({ v: 1, ...FIXTURES[t].msg }).filter(([k]) => k !== field),
    );
    const err = rejected(decodeMessage([raw(h), ...FIXTURES[t].payload]));
    expect(err).toMatchObject({
      code: 'RTL_ERR_PROTOCOL',
      detail: { rule: 'P-3.3', param: field },
    });
    expect(err.message).toMatch(
      new RegExp(`^\\[P-3\\.3\\] ${t}\\.${field}: expected .*, got nothing$`),
    );
  });

  it.each(illTyped)('[P-3.3] %s with "%s" = %j is refused naming the field', (t, field, bad) => {
    const h: Record<string, unknown> = { v: 1, ...FIXTURES[t].msg, [field]: bad };
    const err = rejected(decodeMessage([raw(h), ...FIXTURES[t].payload]));
    expect(err).toMatchObject({
      code: 'RTL_ERR_PROTOCOL',
      detail: { rule: 'P-3.3', param: field },
    });
    expect(err.message.startsWith(`[P-3.3] ${t}.${field}: expected `)).toBe(true);
  });

  it('[P-3.3] ms may be any finite number; NaN and Infinity are refused', () => {
    const base = { v: 1, ...FIXTURES.STAGE_DONE.msg };
    for (const ms of [0, 3, 0.001, 1e6])
      expect(decodeMessage([raw({ ...base, ms }), ...FIXTURES.STAGE_DONE.payload]).ok).toBe(true);
    for (const ms of [NaN, Infinity, -Infinity])
      expect(
        rejected(decodeMessage([raw({ ...base, ms }), ...FIXTURES.STAGE_DONE.payload])).detail,
      ).toMatchObject({
        rule: 'P-3.3',
        param: 'ms',
      });
  });

  it('[P-3.3] HELLO.functions / modules / failed and DEPLOY.version / sha256 are optional, and typed when present', () => {
    const helloBase = { v: 1, ...FIXTURES.HELLO.msg };
    expect(
      decodeMessage([raw({ ...helloBase, functions: ['tsum'], modules: [], failed: [] })]).ok,
    ).toBe(true);
    for (const [field, bad] of [
      ['functions', [1]],
      ['modules', 'scale@1'],
      ['failed', {}],
    ] as const)
      expect(rejected(decodeMessage([raw({ ...helloBase, [field]: bad })])).detail).toEqual({
        rule: 'P-3.3',
        param: field,
      });
    const deployBase = { v: 1, ...FIXTURES.DEPLOY.msg };
    expect(
      decodeMessage([raw({ ...deployBase, version: 3, sha256: 'ab' }), ...FIXTURES.DEPLOY.payload])
        .ok,
    ).toBe(true);
    for (const [field, bad] of [
      ['version', -1],
      ['version', '2'],
      ['sha256', 5],
    ] as const)
      expect(
        rejected(decodeMessage([raw({ ...deployBase, [field]: bad }), ...FIXTURES.DEPLOY.payload]))
          .detail,
      ).toEqual({ rule: 'P-3.3', param: field });
  });

  it('[P-3.3] STATUS: query and status are optional, but must be maps when present', () => {
    expect(decodeMessage([raw({ v: 1, t: 'STATUS', rid: 'r' })]).ok).toBe(true);
    expect(decodeMessage([raw({ v: 1, t: 'STATUS', rid: 'r', status: { nodes: [] } })]).ok).toBe(
      true,
    );
    for (const field of ['query', 'status'])
      for (const bad of ['cluster', [], null, 1])
        expect(
          rejected(decodeMessage([raw({ v: 1, t: 'STATUS', rid: 'r', [field]: bad })])).detail,
        ).toEqual({
          rule: 'P-3.3',
          param: field,
        });
  });

  it('[P-3.3] the first bad field in spec order is the one named', () => {
    const err = rejected(decodeMessage([raw({ v: 1, t: 'STAGE', id: 1, stage: 2 })]));
    expect(err.detail.param).toBe('id');
  });

  it('[P-3.4] fields a type does not define are ignored and kept', () => {
    const { msg } = accepted(
      decodeMessage([raw({ v: 1, t: 'CANCEL', id: 'j', reason: 'user', x: [1] })]),
    );
    expect(msg).toEqual({ v: 1, t: 'CANCEL', id: 'j', reason: 'user', x: [1] });
  });
});

describe('payload (P-4)', () => {
  it.each([
    ['none', { kind: 'none' }, 0],
    ['arrow', { kind: 'arrow', frames: 3 }, 3],
    ['cbor', { kind: 'cbor', frames: 1 }, 1],
    ['ref', { kind: 'ref', key: 't/1', bytes: 10, store: 'h:/p' }, 0],
  ])('[P-4.1] data kind %s carries %#: the frames it declares', (_kind, data, n) => {
    const payload = Array.from({ length: n }, (_, i) => Buffer.from([i]));
    const { msg, payload: got } = accepted(
      decodeMessage([raw({ v: 1, t: 'DEPLOY', id: 'd', name: 'm', data }), ...payload]),
    );
    expect(msg).toMatchObject({ data });
    expect(got).toEqual(payload);
  });

  it.each([
    ['arrow with 2 declared, 1 sent', 'RESULT', { kind: 'arrow', frames: 2 }, 1, 2],
    ['arrow with 1 declared, 2 sent', 'RESULT', { kind: 'arrow', frames: 1 }, 2, 1],
    ['cbor with none sent', 'DEPLOY', { kind: 'cbor', frames: 1 }, 0, 1],
    ['none with a frame sent', 'DEPLOY', { kind: 'none' }, 1, 0],
    ['ref with a frame sent', 'DEPLOY', { kind: 'ref', key: 'k', bytes: 1, store: 's' }, 1, 0],
    ['a type without data with a frame', 'ACCEPTED', undefined, 1, 0],
  ])('[P-4.2] refuses a payload frame count mismatch: %s', (_name, t, data, sent, want) => {
    const base = { v: 1, ...FIXTURES[t as MessageType].msg } as Record<string, unknown>;
    if (data !== undefined) base.data = data;
    const payload = Array.from({ length: sent }, () => buf('00'));
    const err = rejected(decodeMessage([raw(base), ...payload]));
    expect(err).toMatchObject({ code: 'RTL_ERR_PROTOCOL', detail: { rule: 'P-4.2' } });
    expect(err.message).toBe(
      `[P-4.2] ${t} declares ${String(want)} payload frame(s) but carries ${String(sent)}`,
    );
  });

  it('[P-4.3] decodeValue reads back what encodeValue wrote', () => {
    const values: unknown[] = [
      0,
      -7,
      2 ** 40,
      1.25,
      'text',
      true,
      null,
      [1, [2, [3]]],
      { a: { b: [1, 'x'] }, n: -0.5 },
    ];
    for (const v of values) expect(decodeValue(encodeValue(v))).toEqual(v);
    const f = new Float64Array([1.5, -2, 3]);
    expect(decodeValue(encodeValue(f))).toEqual(f);
    // Typed arrays travel as RFC 8746 tags: tag 86 = float64 little endian.
    expect(hex(encodeValue(f)).startsWith('d85658')).toBe(true);
  });

  it.each([
    ['a break byte', 'ff'],
    ['a truncated string', '6561'],
    ['trailing bytes', '0000'],
    ['a byte-string map key', 'a14161f5'],
  ])('[P-4.3] decodeValue refuses a payload that is not CBOR: %s', (_name, h) => {
    expect(() => decodeValue(buf(h))).toThrow(RtlError);
    try {
      decodeValue(buf(h));
    } catch (err) {
      expect(err).toMatchObject({ code: 'RTL_ERR_PROTOCOL', detail: { rule: 'P-4.3' } });
      expect((err as Error).message).toMatch(/^\[P-4\.3\] payload is not valid CBOR: /);
    }
  });

  it('[P-2.5] decodeValue refuses a value nested deeper than maxDepth', () => {
    let v: unknown = 1;
    for (let i = 0; i < 64; i++) v = [v];
    expect(decodeValue(encodeValue(v))).toEqual(v);
    const deeper = encodeValue([v]);
    expect(() => decodeValue(deeper)).toThrow(
      /^\[P-2\.5\] payload nests deeper than 64 levels at byte 64$/,
    );
    expect(() => decodeValue(deeper)).toThrow(
      expect.objectContaining({
        code: 'RTL_ERR_TOO_LARGE',
        detail: { rule: 'P-2.5', limit: 64, offset: 64 },
      }),
    );
    expect(() => decodeValue(encodeValue([[[1]]]), { ...DEFAULT_LIMITS, maxDepth: 2 })).toThrow(
      expect.objectContaining({ code: 'RTL_ERR_TOO_LARGE' }),
    );
  });

  it('[P-4.4] arrow frames joined are one Arrow IPC stream; any split decodes the same', () => {
    const n = 20_000;
    const x = Float64Array.from({ length: n }, (_, i) => i * 0.5);
    const table = toTable({ x });
    const parts = encodeTable(table, { chunked: true });
    expect(parts.length).toBeGreaterThan(1);
    const joined = Buffer.concat(parts);
    // Stream format: starts with a continuation marker, ends with the end-of-stream marker.
    expect(hex(joined.subarray(0, 4))).toBe('ffffffff');
    expect(hex(joined.subarray(joined.length - 8))).toBe('ffffffff00000000');
    const cuts = [joined.subarray(0, 7), joined.subarray(7, 1000), joined.subarray(1000)];
    for (const frames of [parts, [joined], cuts]) {
      const back = decodeTable(frames);
      expect(back.numRows).toBe(n);
      const col = back.getChild('x')?.toArray() as Float64Array;
      let sum = 0;
      for (let i = 0; i < n; i++) sum += col[i] as number;
      expect(sum).toBe((0.5 * (n - 1) * n) / 2);
    }
  });
});

describe('toWireError', () => {
  it('keeps an RtlError code, message and detail; other throws become RTL_ERR_INTERNAL', () => {
    const e = new RtlError('RTL_ERR_BAD_PARAM', 'bad', { stage: '1', param: 'min' });
    expect(toWireError(e)).toEqual({
      code: 'RTL_ERR_BAD_PARAM',
      message: 'bad',
      detail: { stage: '1', param: 'min' },
    });
    const plain = toWireError(new TypeError('oops'));
    expect(plain).toMatchObject({ code: 'RTL_ERR_INTERNAL', message: 'oops' });
    expect(plain.detail?.remoteStack).toMatch(/^TypeError: oops/);
    expect(toWireError('str')).toEqual({ code: 'RTL_ERR_INTERNAL', message: 'str' });
    const back = decodeMessage(frames({ t: 'ERROR', id: 'j', error: toWireError(e) }));
    expect(accepted(back).msg).toMatchObject({
      error: { code: 'RTL_ERR_BAD_PARAM', detail: { param: 'min' } },
    });
  });
});

describe('robustness: decodeMessage never throws', () => {
  /** What is wrong with a decode result (undefined when it is well formed); never throws itself. */
  const problem = (d: ReturnType<typeof decodeMessage>): string | undefined => {
    if (d.ok) {
      const v: unknown = d.msg.v;
      if (v !== 1 || !MESSAGE_TYPES.includes(d.msg.t)) return `decoded to ${JSON.stringify(d.msg)}`;
      return undefined;
    }
    if (!(d.error instanceof RtlError)) return 'error is not an RtlError';
    if (!/^\[P-\d\.\d\] /.test(d.error.message))
      return `message without a rule: ${d.error.message}`;
    if (typeof d.id !== 'string') return 'id is not a string';
    return undefined;
  };

  /** Decode every input; returns the problems found and the rules that refused inputs. */
  const run = (inputs: Buffer[][]): { problems: string[]; rules: Set<string>; ok: number } => {
    const problems: string[] = [];
    const rules = new Set<string>();
    let ok = 0;
    for (const input of inputs) {
      let d: ReturnType<typeof decodeMessage>;
      try {
        d = decodeMessage(input);
      } catch (err) {
        problems.push(`threw ${String(err)} on ${input.map(hex).join(' | ')}`);
        continue;
      }
      const p = problem(d);
      if (p !== undefined) problems.push(p);
      if (d.ok) ok++;
      else rules.add(String(d.error.detail.rule));
    }
    return { problems, rules, ok };
  };

  it('on 10,000 random buffers (seeded)', () => {
    const rand = prng(0x5eed);
    const inputs: Buffer[][] = [];
    for (let i = 0; i < 10_000; i++) {
      const n = Math.floor(rand() * 4);
      const input: Buffer[] = [];
      for (let f = 0; f < n; f++) {
        const len = Math.floor(rand() * 48);
        const b = Buffer.alloc(len);
        for (let k = 0; k < len; k++) b[k] = Math.floor(rand() * 256);
        // Half of them start like a map, so the decoder gets past the first byte more often.
        if (f === 0 && len > 0 && rand() < 0.5) b[0] = 0xa0 | Math.floor(rand() * 8);
        input.push(b);
      }
      inputs.push(input);
    }
    const { problems, rules } = run(inputs);
    expect(problems).toEqual([]);
    expect([...rules].sort()).toEqual(expect.arrayContaining(['P-2.1', 'P-2.2', 'P-3.1']));
  });

  it('on 10,000 random mutations of valid messages (seeded)', () => {
    const rand = prng(42);
    const valid = MESSAGE_TYPES.map((t) => frames(FIXTURES[t].msg, FIXTURES[t].payload));
    const inputs: Buffer[][] = [];
    for (let i = 0; i < 10_000; i++) {
      const base = valid[i % valid.length] as Buffer[];
      const input: Buffer[] = base.map((f) => Buffer.from(f));
      const head = input[0] as Buffer;
      const op = Math.floor(rand() * 5);
      if (op === 0) {
        for (let k = 0; k < 1 + Math.floor(rand() * 3); k++)
          head[Math.floor(rand() * head.length)] = Math.floor(rand() * 256);
      } else if (op === 1) {
        input[0] = head.subarray(0, Math.floor(rand() * head.length));
      } else if (op === 2) {
        const at = Math.floor(rand() * head.length);
        const byte = Buffer.from([Math.floor(rand() * 256)]);
        input[0] = Buffer.concat([head.subarray(0, at), byte, head.subarray(at)]);
      } else if (op === 3) {
        input.push(Buffer.from([1]));
      } else if (input.length > 1) {
        input.pop();
      } else {
        head[0] = (head[0] as number) ^ (1 << Math.floor(rand() * 8));
      }
      inputs.push(input);
    }
    const { problems, rules, ok } = run(inputs);
    expect(problems).toEqual([]);
    expect([...rules]).toEqual(
      expect.arrayContaining(['P-2.2', 'P-3.1', 'P-3.2', 'P-3.3', 'P-4.2']),
    );
    expect(ok).toBeGreaterThan(0);
  });

  it('decodeValue throws only RtlError on 10,000 random buffers (seeded)', () => {
    const rand = prng(7);
    const bad: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const b = Buffer.alloc(Math.floor(rand() * 32));
      for (let k = 0; k < b.length; k++) b[k] = Math.floor(rand() * 256);
      try {
        decodeValue(b);
      } catch (err) {
        if (
          !(err instanceof RtlError) ||
          !['RTL_ERR_PROTOCOL', 'RTL_ERR_TOO_LARGE'].includes(err.code)
        )
          bad.push(`${hex(b)}: ${String(err)}`);
      }
    }
    expect(bad).toEqual([]);
  });
});

// ---- the rules peers follow, checked against a running relay with raw sockets ----

interface Got {
  readonly msg: Message;
  readonly payload: Buffer[];
  /** The PUB topic frame, for a subscriber. */
  readonly topic?: string;
  /** When it arrived (Date.now()). */
  readonly at: number;
}

/** A peer that speaks the protocol with nothing but a ZeroMQ socket and encodeMessage. */
class RawPeer {
  readonly got: Got[] = [];
  batches = 0;
  readonly sock: zmq.Dealer | zmq.Subscriber;
  #taken = new Set<Got>();

  constructor(endpoint: string, kind: 'dealer' | 'sub' = 'dealer', routingId?: string) {
    this.sock =
      kind === 'dealer'
        ? new zmq.Dealer({ linger: 0, ...(routingId === undefined ? {} : { routingId }) })
        : new zmq.Subscriber({ linger: 0 });
    this.sock.connect(endpoint);
    onTestFinished(() => {
      this.sock.close();
    });
    void this.#loop(kind === 'sub');
  }

  async #loop(sub: boolean): Promise<void> {
    for (;;) {
      let f: Buffer[];
      try {
        f = await this.sock.receive();
      } catch {
        return;
      }
      const topic = sub ? f.shift()?.toString('utf8') : undefined;
      const d = decodeMessage(f);
      if (!d.ok) continue;
      // [P-4.7] a BATCH carries several messages: take each as if it came alone.
      const messages =
        d.msg.t === 'BATCH' ? unbatch(d.msg, d.payload).map((m) => decodeMessage(m)) : [d];
      this.batches += d.msg.t === 'BATCH' ? 1 : 0;
      for (const m of messages)
        if (m.ok)
          this.got.push({
            msg: m.msg,
            payload: m.payload,
            at: Date.now(),
            ...(topic === undefined ? {} : { topic }),
          });
    }
  }

  async send(msg: Outgoing, payload: readonly Uint8Array[] = []): Promise<void> {
    await (this.sock as zmq.Dealer).send(encodeMessage(msg, payload));
  }

  async sendRaw(f: Uint8Array[]): Promise<void> {
    await (this.sock as zmq.Dealer).send(f);
  }

  /** The next message not yet taken that matches; waits up to `timeoutMs`. */
  async next(pred: (m: Message) => boolean, timeoutMs = 5000): Promise<Got> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.got.find((g) => !this.#taken.has(g) && pred(g.msg));
      if (hit !== undefined) {
        this.#taken.add(hit);
        return hit;
      }
      if (Date.now() > end)
        throw new Error(
          `no matching message within ${String(timeoutMs)} ms; got ${this.got.map((g) => g.msg.t).join(',')}`,
        );
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  nextOf<T extends MessageType>(
    t: T,
    timeoutMs?: number,
  ): Promise<Got & { msg: Extract<Message, { t: T }> }> {
    return this.next((m) => m.t === t, timeoutMs) as Promise<
      Got & { msg: Extract<Message, { t: T }> }
    >;
  }

  count(t: MessageType): number {
    return this.got.filter((g) => g.msg.t === t).length;
  }
}

const SETTINGS: RelaySettings = {
  RELAY_LISTEN: '127.0.0.1',
  RELAY_RECV: 0,
  RELAY_SEND: 0,
  RELAY_PUBLISHER: 0,
  HEARTBEAT_MS: 1000,
  HEARTBEAT_LIVENESS: 3,
  MAX_MESSAGE_BYTES: 2 ** 20,
  CHUNKING_SIZE: 2 ** 20,
  MAX_WAITING_JOBS: 100,
};

async function startRelay(over: Partial<RelaySettings> = {}, store?: Store): Promise<Relay> {
  const relay = await Relay.start({ ...SETTINGS, ...over }, store === undefined ? {} : { store });
  onTestFinished(() => relay.close());
  return relay;
}

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  await expect.poll(cond, { timeout: timeoutMs, interval: 5, message: what }).toBe(true);
}

/** A tasknode that has said HELLO and been answered. */
async function joinNode(
  relay: Relay,
  name: string,
  extra: Partial<Record<string, unknown>> = {},
): Promise<RawPeer> {
  const node = new RawPeer(relay.endpoints.send);
  await node.send({
    t: 'HELLO',
    node: name,
    queues: [],
    tasks: ['null'],
    credit: 1,
    host: 'h',
    store: '',
    pid: 1,
    ...extra,
  });
  await node.nextOf('HEARTBEAT');
  return node;
}

const DOC = { '0': { tasks: { null: {} } } };
const submit = (id: string, extra: Partial<Record<string, unknown>> = {}): Outgoing => ({
  t: 'SUBMIT',
  id,
  doc: DOC,
  data: { kind: 'none' },
  events: false,
  store: '',
  ...extra,
});

describe('peers (P-5, P-6, P-7) against a running relay', () => {
  it('[P-2.6] the relay answers a bad message with REJECTED naming the rule, counts it, and keeps serving', async () => {
    const relay = await startRelay();
    const client = new RawPeer(relay.endpoints.recv);
    await client.sendRaw([buf('ff00')]);
    const r1 = await client.nextOf('REJECTED');
    expect(r1.msg).toMatchObject({
      id: '',
      error: { code: 'RTL_ERR_PROTOCOL', detail: { rule: 'P-2.2' } },
    });
    await client.sendRaw([raw({ v: 2, t: 'SUBMIT', id: 'job-v2' })]);
    const r2 = await client.nextOf('REJECTED');
    expect(r2.msg).toMatchObject({
      id: 'job-v2',
      error: { code: 'RTL_ERR_VERSION', detail: { rule: 'P-3.1' } },
    });
    const node = new RawPeer(relay.endpoints.send);
    await node.sendRaw([raw({ v: 1, t: 'HELLO' })]);
    expect((await node.nextOf('REJECTED')).msg.error).toMatchObject({
      detail: { rule: 'P-3.3', param: 'node' },
    });
    expect(relay.status().dropped.malformed).toBe(3);
    await client.send({ t: 'STATUS', rid: 'after', query: { what: 'store' } });
    expect((await client.nextOf('STATUS')).msg).toMatchObject({
      rid: 'after',
      status: { store: '' },
    });
  });

  it('[P-5.1] a message sent to the wrong socket is refused with REJECTED', async () => {
    const relay = await startRelay();
    const client = new RawPeer(relay.endpoints.recv);
    await client.send(FIXTURES.HELLO.msg);
    expect((await client.nextOf('REJECTED')).msg.error).toMatchObject({
      code: 'RTL_ERR_PROTOCOL',
      detail: { rule: 'P-5.1' },
    });
    await client.send(FIXTURES.STAGE_FAILED.msg, FIXTURES.STAGE_FAILED.payload);
    expect((await client.nextOf('REJECTED')).msg).toMatchObject({
      id: 'job-1',
      error: { detail: { rule: 'P-5.1' } },
    });
    const node = await joinNode(relay, 'n1');
    await node.send(submit('j-wrong'));
    expect((await node.nextOf('REJECTED')).msg.error).toMatchObject({ detail: { rule: 'P-5.1' } });
    expect(relay.status().jobs.running).toBe(0);
  });

  it('[P-5.2] a tasknode must HELLO first; REJECTED with rule P-5.2 asks it to', async () => {
    const relay = await startRelay();
    const node = new RawPeer(relay.endpoints.send);
    await node.send({ t: 'READY', credit: 1 });
    const r = await node.nextOf('REJECTED');
    expect(r.msg).toMatchObject({
      id: '',
      error: { code: 'RTL_ERR_PROTOCOL', detail: { rule: 'P-5.2' } },
    });
    expect(relay.nodes()).toHaveLength(0);
    await node.send({ ...FIXTURES.HELLO.msg, node: 'late' } as Outgoing);
    await node.nextOf('HEARTBEAT');
    expect(relay.nodes()).toMatchObject([
      { name: 'late', credit: 2, queues: ['gpu'], tasks: 2, pid: 4242 },
    ]);
  });

  it('[P-5.2] a second HELLO keeps the stages in flight: credit = HELLO.credit minus those', async () => {
    const relay = await startRelay();
    const node = await joinNode(relay, 'n1', { credit: 2 });
    const client = new RawPeer(relay.endpoints.recv);
    await client.send(submit('j-a'));
    await node.nextOf('STAGE');
    await node.send({
      t: 'HELLO',
      node: 'n1',
      queues: [],
      tasks: ['null'],
      credit: 2,
      host: 'h',
      store: '',
      pid: 1,
    });
    await until(() => relay.nodes()[0]?.credit === 1, 'credit 1 after re-HELLO');
    await node.send({
      t: 'STAGE_DONE',
      id: 'j-a',
      stage: '0',
      attempt: 1,
      data: { kind: 'none' },
      ms: 1,
      tasks: [],
    });
    expect((await client.nextOf('RESULT')).msg.id).toBe('j-a');
  });

  it('[P-5.3] heartbeats: the relay beats every HEARTBEAT_MS unprompted and answers a client HEARTBEAT', async () => {
    // Liveness 20 x 40 ms: the node may stay silent for the whole test.
    const relay = await startRelay({ HEARTBEAT_MS: 40, HEARTBEAT_LIVENESS: 20 });
    const node = await joinNode(relay, 'n1'); // took the HEARTBEAT answering HELLO
    const beats = [];
    for (let i = 0; i < 4; i++) beats.push(await node.nextOf('HEARTBEAT'));
    // Four beats span three intervals (120 ms); allow for delivery jitter.
    expect((beats[3]?.at ?? 0) - (beats[0]?.at ?? 0)).toBeGreaterThanOrEqual(60);
    expect(relay.nodes()).toMatchObject([{ name: 'n1', alive: true }]);
    const client = new RawPeer(relay.endpoints.recv);
    await client.send({ t: 'HEARTBEAT' });
    await client.nextOf('HEARTBEAT');
  });

  it('[P-5.3] a tasknode silent past HEARTBEAT_MS x HEARTBEAT_LIVENESS is dropped and its stage retried elsewhere', async () => {
    const relay = await startRelay({ HEARTBEAT_MS: 30, HEARTBEAT_LIVENESS: 3 });
    const sub = new RawPeer(relay.endpoints.publish, 'sub');
    (sub.sock as zmq.Subscriber).subscribe('node.');
    await new Promise((r) => setTimeout(r, 50)); // the subscription reaches the XPUB
    const silent = await joinNode(relay, 'silent');
    const client = new RawPeer(relay.endpoints.recv);
    await client.send(submit('j-retry'));
    const first = await silent.nextOf('STAGE');
    expect(first.msg.attempt).toBe(1);
    // `silent` never beats; a second node that does joins and gets the retry.
    const alive = await joinNode(relay, 'alive');
    const beat = setInterval(() => void alive.send({ t: 'HEARTBEAT' }), 10);
    onTestFinished(() => clearInterval(beat));
    const retry = await alive.nextOf('STAGE');
    expect(retry.msg).toMatchObject({ id: 'j-retry', stage: '0', attempt: 2 });
    expect(relay.nodes().map((n) => n.name)).toEqual(['alive']);
    const down = await sub.next((m) => m.t === 'EVENT' && m.event.type === 'node.down');
    expect(down.topic).toBe('node.down');
    expect(down.msg).toMatchObject({
      topic: 'node.down',
      event: { node: 'silent', reason: 'silent' },
    });
    // The dropped node's late answer is refused with P-5.2: it must HELLO again.
    await silent.send({
      t: 'STAGE_DONE',
      id: 'j-retry',
      stage: '0',
      attempt: 1,
      data: { kind: 'none' },
      ms: 1,
      tasks: [],
    });
    expect((await silent.nextOf('REJECTED')).msg.error).toMatchObject({
      detail: { rule: 'P-5.2' },
    });
    await alive.send({
      t: 'STAGE_DONE',
      id: 'j-retry',
      stage: '0',
      attempt: 2,
      data: { kind: 'none' },
      ms: 1,
      tasks: [],
    });
    expect((await client.nextOf('RESULT')).msg).toMatchObject({
      id: 'j-retry',
      stages: [{ node: 'alive' }],
    });
    expect(client.count('ERROR')).toBe(0);
  });

  it('[P-5.4] a tasknode gets STAGE only while it has credit; STAGE_DONE and READY give credit', async () => {
    const relay = await startRelay();
    const node = await joinNode(relay, 'n1', { credit: 1 });
    const client = new RawPeer(relay.endpoints.recv);
    for (const id of ['j1', 'j2', 'j3']) await client.send(submit(id));
    const s1 = await node.nextOf('STAGE');
    await until(() => relay.status().jobs.waiting === 2, 'two stages waiting for credit');
    expect(node.count('STAGE')).toBe(1);
    await node.send({ t: 'READY', credit: 1 });
    const s2 = await node.nextOf('STAGE');
    await until(() => relay.status().jobs.waiting === 1, 'one stage waiting');
    expect(node.count('STAGE')).toBe(2);
    await node.send({
      t: 'STAGE_DONE',
      id: s1.msg.id,
      stage: '0',
      attempt: 1,
      data: { kind: 'none' },
      ms: 1,
      tasks: [],
    });
    const s3 = await node.nextOf('STAGE');
    expect([s1.msg.id, s2.msg.id, s3.msg.id]).toEqual(['j1', 'j2', 'j3']);
  });

  it('[P-5.4] a stage goes only to a node that announced its tasks and serves its route', async () => {
    const relay = await startRelay();
    const other = await joinNode(relay, 'cpu', { tasks: ['other'] });
    const gpu = await joinNode(relay, 'gpu-node', { tasks: ['null'], queues: ['gpu'] });
    const plain = await joinNode(relay, 'plain', { tasks: ['null'] });
    const client = new RawPeer(relay.endpoints.recv);
    await client.send(submit('j-gpu', { doc: { '0': { tasks: { null: {} }, route: 'gpu' } } }));
    await gpu.nextOf('STAGE');
    await client.send(submit('j-name', { doc: { '0': { tasks: { null: {} }, route: 'plain' } } }));
    await plain.nextOf('STAGE');
    expect(other.count('STAGE')).toBe(0);
  });

  it('[P-6.1] SUBMIT -> ACCEPTED -> STAGE -> STAGE_DONE -> RESULT, payload frames passed on untouched', async () => {
    const relay = await startRelay();
    const node = await joinNode(relay, 'n1');
    const client = new RawPeer(relay.endpoints.recv);
    const input = [Buffer.from('opaque-1'), Buffer.from([0, 1, 2, 255])];
    await client.send(
      submit('j-flow', {
        doc: { '0': { tasks: { null: {} } }, '1': { tasks: [{ task: 'null' }] } },
        data: { kind: 'arrow', frames: 2 },
      }),
      input,
    );
    expect((await client.nextOf('ACCEPTED')).msg.id).toBe('j-flow');
    const s0 = await node.nextOf('STAGE');
    expect(s0.msg).toMatchObject({
      id: 'j-flow',
      stage: '0',
      attempt: 1,
      tasks: [{ task: 'null', as: 'null', params: {} }],
      data: { kind: 'arrow', frames: 2 },
      store: '',
    });
    expect(s0.payload).toEqual(input);
    const mid = [Buffer.from('stage-0-out')];
    await node.send(
      {
        t: 'STAGE_DONE',
        id: 'j-flow',
        stage: '0',
        attempt: 1,
        data: { kind: 'arrow', frames: 1 },
        ms: 2,
        tasks: [{ task: 'null', ms: 1 }],
      },
      mid,
    );
    const s1 = await node.nextOf('STAGE');
    expect(s1.msg).toMatchObject({ stage: '1', attempt: 1, data: { kind: 'arrow', frames: 1 } });
    expect(s1.payload).toEqual(mid);
    const out = [Buffer.from('final')];
    await node.send(
      {
        t: 'STAGE_DONE',
        id: 'j-flow',
        stage: '1',
        attempt: 1,
        data: { kind: 'arrow', frames: 1 },
        ms: 3,
        tasks: [],
      },
      out,
    );
    const res = await client.nextOf('RESULT');
    expect(res.msg).toMatchObject({
      id: 'j-flow',
      data: { kind: 'arrow', frames: 1 },
      stages: [
        { stage: '0', node: 'n1', ms: 2, tasks: [{ task: 'null', ms: 1 }] },
        { stage: '1', node: 'n1', ms: 3, tasks: [] },
      ],
    });
    expect(res.payload).toEqual(out);
  });

  it('[P-6.1] a bad document is REJECTED with the parser error and never reaches a tasknode', async () => {
    const relay = await startRelay();
    const node = await joinNode(relay, 'n1');
    const client = new RawPeer(relay.endpoints.recv);
    await client.send(submit('j-bad', { doc: { '0': { tasks: { nul: {} } } } }));
    const r = await client.nextOf('REJECTED');
    expect(r.msg).toMatchObject({
      id: 'j-bad',
      error: { code: 'RTL_ERR_UNKNOWN_TASK', detail: { stage: '0', task: 'nul' } },
    });
    expect(r.msg.error.message).toContain('did you mean "null"?');
    await client.send(submit('j-empty', { doc: {} }));
    expect((await client.nextOf('REJECTED')).msg).toMatchObject({
      id: 'j-empty',
      error: { code: 'RTL_ERR_EMPTY_DOCUMENT' },
    });
    expect(node.count('STAGE')).toBe(0);
    expect(client.count('ACCEPTED')).toBe(0);
  });

  it('[P-6.2] a late or unknown STAGE_DONE is dropped', async () => {
    const relay = await startRelay();
    const node = await joinNode(relay, 'n1', { credit: 2 });
    const client = new RawPeer(relay.endpoints.recv);
    await client.send(submit('j-late'));
    await node.nextOf('STAGE');
    const done = (id: string, attempt: number, stage = '0'): Outgoing => ({
      t: 'STAGE_DONE',
      id,
      stage,
      attempt,
      data: { kind: 'arrow', frames: 1 },
      ms: 1,
      tasks: [],
    });
    await node.send(done('j-late', 9), [buf('09')]);
    await node.send(done('j-late', 1, '7'), [buf('07')]);
    await node.send(done('no-such-job', 1), [buf('00')]);
    await node.send(done('j-late', 1), [buf('01')]);
    const res = await client.nextOf('RESULT');
    expect(res.payload).toEqual([buf('01')]);
    // Cancelled while running: the stage's answer is dropped too.
    await client.send(submit('j-cancel'));
    await node.nextOf('STAGE');
    await client.send({ t: 'CANCEL', id: 'j-cancel' });
    await client.nextOf('ERROR');
    await node.send(done('j-cancel', 1), [buf('02')]);
    await client.send({ t: 'STATUS', rid: 'sync', query: { what: 'job', id: 'j-cancel' } });
    expect((await client.nextOf('STATUS')).msg.status).toEqual({
      job: 'j-cancel',
      state: 'CANCELLED',
    });
    expect(client.count('RESULT')).toBe(1);
    expect(relay.status().dropped.malformed).toBe(0);
  });

  it('[P-4.7] the relay takes each message of a BATCH as if it came alone, and batches its own answers', async () => {
    const relay = await startRelay();
    const node = await joinNode(relay, 'n1', { credit: 8 });
    const client = new RawPeer(relay.endpoints.recv);
    const inner = ['b1', 'b2', 'b3'].map((id) => frames(submit(id)));
    await client.sendRaw([
      ...frames({ t: 'BATCH', sizes: inner.map((m) => m.length) }),
      ...inner.flat(),
    ]);
    for (const id of ['b1', 'b2', 'b3'])
      await client.next((m) => m.t === 'ACCEPTED' && m.id === id);
    // Three STAGEs leave in one turn: the first alone, the other two as one BATCH.
    for (let i = 0; i < 3; i++) await node.nextOf('STAGE');
    expect(node.batches).toBeGreaterThanOrEqual(1);
    expect(client.batches).toBeGreaterThanOrEqual(1);
    expect(relay.status().dropped.malformed).toBe(0);
  });

  it('[P-6.3] a duplicate SUBMIT is answered ACCEPTED and never run twice', async () => {
    const relay = await startRelay();
    const node = await joinNode(relay, 'n1', { credit: 4 });
    const client = new RawPeer(relay.endpoints.recv);
    await client.send(submit('j-dup'));
    await client.send(submit('j-dup'));
    await client.nextOf('ACCEPTED');
    await client.nextOf('ACCEPTED');
    await node.nextOf('STAGE');
    await node.send({
      t: 'STAGE_DONE',
      id: 'j-dup',
      stage: '0',
      attempt: 1,
      data: { kind: 'none' },
      ms: 1,
      tasks: [],
    });
    await client.nextOf('RESULT');
    // A duplicate of a job that ended is answered ACCEPTED, then its kept RESULT again.
    await client.send(submit('j-dup'));
    await client.nextOf('ACCEPTED');
    expect((await client.nextOf('RESULT')).msg).toMatchObject({ id: 'j-dup' });
    await client.send({ t: 'STATUS', rid: 's', query: { what: 'cluster' } });
    await client.nextOf('STATUS');
    expect(node.count('STAGE')).toBe(1);
    expect(client.count('RESULT')).toBe(2);
    // A duplicate of a job that ended in failure is answered ACCEPTED then ERROR.
    await client.send(submit('j-dup-c'));
    await node.nextOf('STAGE');
    await client.send({ t: 'CANCEL', id: 'j-dup-c' });
    await client.nextOf('ERROR');
    await client.send(submit('j-dup-c'));
    await client.nextOf('ACCEPTED');
    expect((await client.nextOf('ERROR')).msg).toMatchObject({
      id: 'j-dup-c',
      error: { code: 'RTL_ERR_CANCELLED' },
    });
  });

  it('[P-6.4] CANCEL from the submitter ends the job with ERROR RTL_ERR_CANCELLED; from anyone else it is ignored', async () => {
    const relay = await startRelay();
    await joinNode(relay, 'n1');
    const owner = new RawPeer(relay.endpoints.recv);
    const stranger = new RawPeer(relay.endpoints.recv);
    await owner.send(submit('j-c'));
    await owner.nextOf('ACCEPTED');
    await stranger.send({ t: 'CANCEL', id: 'j-c' });
    await stranger.send({ t: 'STATUS', rid: 'q', query: { what: 'job', id: 'j-c' } });
    expect((await stranger.nextOf('STATUS')).msg.status).toMatchObject({ state: 'PENDING' });
    await owner.send({ t: 'CANCEL', id: 'j-c' });
    expect((await owner.nextOf('ERROR')).msg).toMatchObject({
      id: 'j-c',
      error: { code: 'RTL_ERR_CANCELLED', message: 'job j-c was cancelled' },
    });
  });

  it('[P-6.5] STATUS is answered with the same rid: cluster, job and store reports', async () => {
    const relay = await startRelay();
    await joinNode(relay, 'n1');
    const client = new RawPeer(relay.endpoints.recv);
    await client.send({ t: 'STATUS', rid: 'r-cluster' });
    const c = await client.nextOf('STATUS');
    expect(c.msg.rid).toBe('r-cluster');
    expect(c.msg.status).toMatchObject({
      relay: { pid: process.pid, curveKey: '' },
      nodes: [{ name: 'n1', credit: 1, alive: true }],
      jobs: { running: 0, waiting: 0 },
      dropped: { malformed: 0, refused: 0 },
    });
    await client.send(submit('j-s', { doc: { '0': { tasks: { null: {} }, route: 'nowhere' } } }));
    await client.send({ t: 'STATUS', rid: 'r-job', query: { what: 'job', id: 'j-s' } });
    expect((await client.nextOf('STATUS')).msg).toEqual({
      v: 1,
      t: 'STATUS',
      rid: 'r-job',
      status: {
        job: 'j-s',
        state: 'PENDING',
        stage: '0',
        tasks: ['null'],
        route: 'nowhere',
        node: null,
        waitingForNode: true,
        nodesThatCanRun: 0,
        running: [],
        runningCount: 0,
        waiting: [{ stage: '0', tasks: ['null'], route: 'nowhere', nodesThatCanRun: 0 }],
        waitingCount: 1,
      },
    });
    await client.send({ t: 'STATUS', rid: 'r-unknown', query: { what: 'job', id: 'nope' } });
    expect((await client.nextOf('STATUS')).msg.status).toEqual({ job: 'nope', state: 'UNKNOWN' });
    await client.send({ t: 'STATUS', rid: 'r-store', query: { what: 'store' } });
    expect((await client.nextOf('STATUS')).msg.status).toEqual({ store: '' });
  });

  it('[P-6.6] STAGE_FAILED ends the job with ERROR naming stage and node; timeout_ms ends it with RTL_ERR_TIMEOUT', async () => {
    const relay = await startRelay();
    const node = await joinNode(relay, 'n1', { credit: 2 });
    const client = new RawPeer(relay.endpoints.recv);
    await client.send(submit('j-f'));
    await node.nextOf('STAGE');
    await node.send({
      t: 'STAGE_FAILED',
      id: 'j-f',
      stage: '0',
      attempt: 1,
      error: {
        code: 'RTL_ERR_BAD_PARAM',
        message: 'no column "x"',
        detail: { task: 'null', param: 'a' },
      },
    });
    const e = await client.nextOf('ERROR');
    expect(e.msg.error).toEqual({
      code: 'RTL_ERR_BAD_PARAM',
      message: 'stage "0", task "null" failed on n1: no column "x"',
      detail: { task: 'null', param: 'a', job: 'j-f', stage: '0', node: 'n1' },
    });
    await client.send(submit('j-i'));
    await node.nextOf('STAGE');
    await node.send({
      t: 'STAGE_FAILED',
      id: 'j-i',
      stage: '0',
      attempt: 1,
      error: { code: 'SOMETHING_ELSE', message: 'x' },
    });
    expect((await client.nextOf('ERROR')).msg.error.code).toBe('RTL_ERR_STAGE_FAILED');
    await client.send(submit('j-t', { doc: { '0': { tasks: { null: {} }, timeout_ms: 30 } } }));
    await node.nextOf('STAGE');
    expect((await client.nextOf('ERROR')).msg.error).toMatchObject({
      code: 'RTL_ERR_TIMEOUT',
      detail: { stage: '0', limit: 30 },
    });
  });

  it('[P-7.1] PUBLISH: EVENT frames are [topic, header]; job.<id> carries the job progress', async () => {
    const relay = await startRelay();
    const sub = new RawPeer(relay.endpoints.publish, 'sub');
    (sub.sock as zmq.Subscriber).subscribe('job.j-ev');
    (sub.sock as zmq.Subscriber).subscribe('node.up');
    await new Promise((r) => setTimeout(r, 50));
    const node = await joinNode(relay, 'n1');
    const up = await sub.nextOf('EVENT');
    expect(up.topic).toBe('node.up');
    expect(up.msg.event).toEqual({ type: 'node.up', node: 'n1', host: 'h', queues: [] });
    const client = new RawPeer(relay.endpoints.recv);
    await client.send(submit('j-ev'));
    await node.nextOf('STAGE');
    await node.send({
      t: 'STAGE_DONE',
      id: 'j-ev',
      stage: '0',
      attempt: 1,
      data: { kind: 'none' },
      ms: 1,
      tasks: [],
    });
    await client.nextOf('RESULT');
    const types: string[] = [];
    for (let i = 0; i < 4; i++) {
      const ev = await sub.nextOf('EVENT');
      expect(ev.topic).toBe('job.j-ev');
      expect(ev.msg.topic).toBe('job.j-ev');
      expect(ev.msg.event).toMatchObject({ job: 'j-ev' });
      expect(typeof ev.msg.event.at).toBe('number');
      types.push(String(ev.msg.event.type));
    }
    expect(types).toEqual(['job.accepted', 'stage.started', 'stage.completed', 'job.completed']);
    expect(client.count('EVENT')).toBe(0);
  });

  it('[P-7.2] SUBMIT.events = true sends the same EVENTs to the submitter over RECV, before RESULT', async () => {
    const relay = await startRelay();
    const node = await joinNode(relay, 'n1');
    const client = new RawPeer(relay.endpoints.recv);
    await client.send(submit('j-e2', { events: true }));
    await node.nextOf('STAGE');
    await node.send({
      t: 'STAGE_DONE',
      id: 'j-e2',
      stage: '0',
      attempt: 1,
      data: { kind: 'none' },
      ms: 1,
      tasks: [],
    });
    await client.nextOf('RESULT');
    const order = client.got.map((g) => (g.msg.t === 'EVENT' ? String(g.msg.event.type) : g.msg.t));
    expect(order).toEqual([
      'ACCEPTED',
      'job.accepted',
      'stage.started',
      'stage.completed',
      'job.completed',
      'RESULT',
    ]);
  });

  it('[P-4.5] by reference: a ref into the relay store reaches a same-store node as a ref, others inline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rtl-proto-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const store = Store.open({ path: dir, mapSize: 64 * 2 ** 20 });
    onTestFinished(() => store.close());
    const relay = await startRelay({}, store);
    const client = new RawPeer(relay.endpoints.recv);
    await client.send({ t: 'STATUS', rid: 's', query: { what: 'store' } });
    expect((await client.nextOf('STATUS')).msg.status).toEqual({ store: store.id });
    const table = toTable({ x: new Float64Array([1, 2, 3]) });
    const ref = await putTable(store, table);
    expect(ref).toMatchObject({ kind: 'ref', store: store.id });
    expect(ref.key).toMatch(/^t\/[0-9a-f-]{36}$/);

    const same = await joinNode(relay, 'same', { store: store.id });
    await client.send(submit('j-ref', { data: ref }));
    const s = await same.nextOf('STAGE');
    expect(s.msg).toMatchObject({ data: ref, store: store.id });
    expect(s.payload).toEqual([]);
    await same.send({
      t: 'STAGE_DONE',
      id: 'j-ref',
      stage: '0',
      attempt: 1,
      data: ref,
      ms: 1,
      tasks: [],
    });
    // The client did not name the relay's store: the relay reads the table and sends it inline.
    const res = await client.nextOf('RESULT');
    expect(res.msg.data).toMatchObject({ kind: 'arrow' });
    expect(Array.from(decodeTable(res.payload).getChild('x')?.toArray() as Float64Array)).toEqual([
      1, 2, 3,
    ]);

    const other = await joinNode(relay, 'elsewhere', { store: '' });
    const ref2 = await putTable(store, table);
    await client.send(
      submit('j-ref2', { data: ref2, doc: { '0': { tasks: { null: {} }, route: 'elsewhere' } } }),
    );
    const s2 = await other.nextOf('STAGE');
    expect(s2.msg).toMatchObject({ data: { kind: 'arrow' }, store: '' });
    expect(decodeTable(s2.payload).numRows).toBe(3);

    await client.send(submit('j-foreign', { data: { ...ref, store: 'other-host:/x' } }));
    expect((await client.nextOf('REJECTED')).msg).toMatchObject({
      id: 'j-foreign',
      error: { code: 'RTL_ERR_BAD_DATA' },
    });
    await client.send(submit('j-cbor', { data: { kind: 'cbor', frames: 1 } }), [encodeValue(1)]);
    expect((await client.nextOf('REJECTED')).msg).toMatchObject({
      id: 'j-cbor',
      error: { code: 'RTL_ERR_BAD_DATA' },
    });
  });
});

describe('[P-4.7] BATCH', () => {
  const inner = [frames({ t: 'ACCEPTED', id: 'a' }), frames({ t: 'HEARTBEAT' })];
  it('[P-4.7] unbatch returns the inner messages in order, each decodable alone', () => {
    const d = decodeMessage([...frames({ t: 'BATCH', sizes: [1, 1] }), ...inner.flat()]);
    if (!d.ok || d.msg.t !== 'BATCH') throw new Error('BATCH did not decode');
    const parts = unbatch(d.msg, d.payload).map((m) => decodeMessage(m));
    expect(parts.map((p) => (p.ok ? p.msg.t : 'bad'))).toEqual(['ACCEPTED', 'HEARTBEAT']);
  });
  it.each([
    ['more frames declared than carried', [1, 2]],
    ['fewer frames declared than carried', [1]],
    ['a zero size', [0, 2]],
    ['a size that is not an integer', [1.5, 0.5]],
  ])('[P-4.7] refuses a BATCH with %s', (_name, sizes) => {
    const d = decodeMessage([...frames({ t: 'BATCH', sizes }), ...inner.flat()]);
    expect(d.ok).toBe(false);
    if (!d.ok)
      expect(d.error).toMatchObject({ code: 'RTL_ERR_PROTOCOL', detail: { rule: 'P-4.7' } });
  });
});
