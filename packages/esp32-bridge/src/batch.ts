/**
 * Binary sample batches of a sensor stream (E-4.1): a 24-byte little-endian header, then
 * `count` samples of one type.
 */

export const BATCH_MAGIC = 0x5352; // 'R' 'S' read as a little-endian u16
export const BATCH_VERSION = 1;
export const BATCH_HEADER_BYTES = 24;
export const BATCH_MAX_SAMPLES = 1024;

/** Sample types: code -> [name, size in bytes]. */
export const SAMPLE_TYPES = {
  1: ['f32', 4],
  2: ['i16', 2],
  3: ['u16', 2],
  4: ['i32', 4],
  5: ['f64', 8],
} as const;

export type SampleTypeCode = keyof typeof SAMPLE_TYPES;

export interface SampleBatch {
  readonly type: SampleTypeCode;
  readonly seq: number;
  /** The first sample's time in ms (Unix time when `unixTime`, else ms since the node booted). */
  readonly t0: number;
  /** Microseconds between samples. */
  readonly dtUs: number;
  readonly unixTime: boolean;
  /** Sample i was taken at `timestamps[i] = t0 + i * dtUs / 1000` ms. */
  readonly timestamps: Float64Array;
  readonly values: Float64Array;
}

export type DecodeBatchResult =
  | { readonly ok: true; readonly batch: SampleBatch }
  | { readonly ok: false; readonly reason: string };

function isTypeCode(code: number): code is SampleTypeCode {
  return code >= 1 && code <= 5;
}

/** Decode one batch; never throws on bad input, returns why it was dropped instead. */
export function decodeBatch(buf: Uint8Array): DecodeBatchResult {
  if (buf.byteLength < BATCH_HEADER_BYTES)
    return { ok: false, reason: `${buf.byteLength} bytes, shorter than the 24-byte header` };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint16(0, true) !== BATCH_MAGIC) return { ok: false, reason: 'bad magic' };
  const version = view.getUint8(2);
  if (version !== BATCH_VERSION) return { ok: false, reason: `unknown version ${version}` };
  const type = view.getUint8(3);
  if (!isTypeCode(type)) return { ok: false, reason: `unknown sample type ${type}` };
  const seq = view.getUint32(4, true);
  const t0 = Number(view.getBigUint64(8, true));
  const dtUs = view.getUint32(16, true);
  const count = view.getUint16(20, true);
  const flags = view.getUint16(22, true);
  if (count < 1 || count > BATCH_MAX_SAMPLES)
    return { ok: false, reason: `count ${count} outside 1..${BATCH_MAX_SAMPLES}` };
  const size = SAMPLE_TYPES[type][1];
  const expected = BATCH_HEADER_BYTES + count * size;
  if (buf.byteLength !== expected)
    return {
      ok: false,
      reason: `${buf.byteLength} bytes, expected ${expected} for ${count} samples`,
    };
  const timestamps = new Float64Array(count);
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const at = BATCH_HEADER_BYTES + i * size;
    timestamps[i] = t0 + (i * dtUs) / 1000;
    switch (type) {
      case 1:
        values[i] = view.getFloat32(at, true);
        break;
      case 2:
        values[i] = view.getInt16(at, true);
        break;
      case 3:
        values[i] = view.getUint16(at, true);
        break;
      case 4:
        values[i] = view.getInt32(at, true);
        break;
      case 5:
        values[i] = view.getFloat64(at, true);
        break;
    }
  }
  return {
    ok: true,
    batch: { type, seq, t0, dtUs, unixTime: (flags & 1) === 1, timestamps, values },
  };
}
