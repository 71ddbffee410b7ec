import { describe, expect, it } from 'vitest';
import { SampleRing, decodeBatch } from '../src/index.js';

function header(type: number, count: number, size: number, flags = 0): Buffer {
  const b = Buffer.alloc(24 + count * size);
  b.write('RS', 0, 'latin1');
  b.writeUInt8(1, 2);
  b.writeUInt8(type, 3);
  b.writeUInt32LE(9, 4);
  b.writeBigUInt64LE(1_700_000_000_000n, 8);
  b.writeUInt32LE(500, 16);
  b.writeUInt16LE(count, 20);
  b.writeUInt16LE(flags, 22);
  return b;
}

describe('decodeBatch [E-4.1]', () => {
  it('decodes every sample type with its timestamps', () => {
    const i16 = header(2, 2, 2, 1);
    i16.writeInt16LE(-5, 24);
    i16.writeInt16LE(7, 26);
    const u16 = header(3, 1, 2);
    u16.writeUInt16LE(65535, 24);
    const i32 = header(4, 1, 4);
    i32.writeInt32LE(-70000, 24);
    const f64 = header(5, 1, 8);
    f64.writeDoubleLE(Math.PI, 24);
    const r = decodeBatch(i16);
    expect(r).toMatchObject({ ok: true, batch: { seq: 9, unixTime: true, dtUs: 500 } });
    if (!r.ok) return;
    expect(Array.from(r.batch.values)).toEqual([-5, 7]);
    expect(Array.from(r.batch.timestamps)).toEqual([1_700_000_000_000, 1_700_000_000_000.5]);
    for (const [buf, v] of [
      [u16, 65535],
      [i32, -70000],
      [f64, Math.PI],
    ] as const) {
      const d = decodeBatch(buf);
      expect(d.ok && Array.from(d.batch.values)).toEqual([v]);
    }
  });

  it('refuses bad length, magic, version, type and count', () => {
    const ok = header(1, 2, 4);
    const cases: [Buffer, RegExp][] = [
      [ok.subarray(0, 10), /shorter than/],
      [Buffer.concat([ok, Buffer.alloc(1)]), /expected 32/],
      [Buffer.from(ok).fill(0, 0, 1), /magic/],
      [Buffer.from(ok).fill(2, 2, 3), /version 2/],
      [Buffer.from(ok).fill(9, 3, 4), /sample type 9/],
      [header(1, 0, 4), /count 0/],
    ];
    for (const [buf, why] of cases) {
      const r = decodeBatch(buf);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(why);
    }
  });
});

describe('SampleRing', () => {
  it('grows up to its cap, then keeps the newest samples in order', () => {
    const ring = new SampleRing(100);
    for (let i = 0; i < 250; i++) ring.push(i, i * 2);
    expect(ring.length).toBe(100);
    expect(ring.capacity).toBe(100);
    const { timestamp, value } = ring.last(100);
    expect(Array.from(timestamp)).toEqual(Array.from({ length: 100 }, (_, i) => 150 + i));
    expect(Array.from(value)).toEqual(Array.from({ length: 100 }, (_, i) => 300 + i * 2));
    expect(Array.from(ring.last(3).timestamp)).toEqual([247, 248, 249]);
  });
});
