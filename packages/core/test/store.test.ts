import { execFile, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RtlError, Store, encodeTable, getTable, putTable, toTable } from '@rtl/core';
import type { StoreOptions, TableRef } from '@rtl/core';

const MiB = 2 ** 20;
const coreUrl = pathToFileURL(createRequire(import.meta.url).resolve('@rtl/core')).href;

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rtl-store-${randomUUID()}-`));
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A store in a fresh directory, closed (before the directory is removed) when the test ends. */
function tempStore(opts: Partial<StoreOptions> = {}): Store {
  const store = Store.open({ path: tempDir(), mapSize: 256 * MiB, ...opts });
  onTestFinished(() => store.close());
  return store;
}

function bytesOf(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Call fn once; it must throw an RtlError, which is returned for further checks. */
function rtlErrorOf(fn: () => unknown): RtlError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(RtlError);
  return thrown as RtlError;
}

/** Run a module script in another node process, with the built @rtl/core at CORE_URL. */
async function runChild(script: string, env: Record<string, string>): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--input-type=module', '-e', script],
    {
      env: { ...process.env, CORE_URL: coreUrl, ...env },
      maxBuffer: MiB,
    },
  );
  return stdout;
}

describe('Store', () => {
  it('puts, gets, checks and deletes values; several buffers become one value', async () => {
    const store = tempStore();
    await store.put('a', bytesOf('alpha'));
    await store.put('b', [bytesOf('be'), new Uint8Array(0), bytesOf('ta')]);
    store.putSync('c', [bytesOf('gam'), bytesOf('ma')]);
    store.putSync('d', bytesOf('delta'));

    expect(store.get('a')?.toString()).toBe('alpha');
    expect(store.get('b')?.toString()).toBe('beta');
    expect(store.get('c')?.toString()).toBe('gamma');
    expect(Buffer.from(store.getView('d') ?? []).toString()).toBe('delta');
    expect(Buffer.isBuffer(store.get('a'))).toBe(true);
    expect([store.has('a'), store.has('b'), store.has('zzz'), store.has('')]).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect(store.get('missing')).toBeUndefined();
    expect(store.getView('missing')).toBeUndefined();

    expect(await store.delete('a')).toBe(true);
    expect(await store.delete('a')).toBe(false);
    expect(store.get('a')).toBeUndefined();
    expect(store.has('a')).toBe(false);
    expect(store.get('b')?.toString()).toBe('beta');
  });

  it('overwrites a value', async () => {
    const store = tempStore();
    await store.put('k', bytesOf('one'));
    store.putSync('k', bytesOf('two!'));
    expect(store.get('k')?.toString()).toBe('two!');
  });

  it('gives small values as stable copies that later reads do not overwrite', () => {
    const store = tempStore();
    store.putSync('x', new Uint8Array(1000).fill(1));
    store.putSync('y', new Uint8Array(1000).fill(2));
    const x = store.getView('x');
    const got = store.get('x');
    store.getView('y');
    store.get('y');
    expect(x?.every((b) => b === 1)).toBe(true);
    expect(got?.every((b) => b === 1)).toBe(true);
  });

  it('views a value over 16 MiB in the memory map, and copies it for get()', () => {
    const store = tempStore();
    const value = new Uint8Array(17 * MiB);
    for (let i = 0; i < value.length; i += 4096) value[i] = (i / 4096) % 251;
    store.putSync('big', value);
    const a = store.getView('big');
    const b = store.getView('big');
    expect(a?.byteLength).toBe(value.byteLength);
    expect(b?.buffer === a?.buffer && b?.byteOffset === a?.byteOffset).toBe(true);
    expect(a !== undefined && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(value)).toBe(
      true,
    );
    const copy = store.get('big');
    expect(copy?.buffer === a?.buffer).toBe(false);
    expect(copy?.byteLength).toBe(value.byteLength);
    expect(copy?.[4096 * 300]).toBe(300 % 251);
  });

  it('has an id of host and real path, and closes idempotently', async () => {
    const dir = tempDir();
    const link = path.join(os.tmpdir(), `rtl-link-${randomUUID()}`);
    fs.symlinkSync(dir, link);
    onTestFinished(() => fs.rmSync(link, { force: true }));
    const store = Store.open({ path: path.join(link, 'cache'), mapSize: MiB });
    expect(fs.existsSync(path.join(dir, 'cache'))).toBe(true);
    expect(store.id).toBe(`${os.hostname()}:${fs.realpathSync(path.join(dir, 'cache'))}`);
    expect(store.closed).toBe(false);
    await store.close();
    await store.close();
    expect(store.closed).toBe(true);
    {
      const err = rtlErrorOf(() => store.get('k'));
      expect(err.code).toBe('RTL_ERR_STORE');
      expect(err.message).toMatch(/get "k" after close\(\)/);
    }
    await expect(store.put('k', bytesOf('v'))).rejects.toMatchObject({ code: 'RTL_ERR_STORE' });
  });

  it('lets two stores on one path work side by side, and close one at a time', async () => {
    const dir = tempDir();
    const one = Store.open({ path: dir, mapSize: 16 * MiB });
    const two = Store.open({ path: dir, mapSize: 16 * MiB });
    onTestFinished(() => two.close());
    expect(one.id).toBe(two.id);
    one.putSync('shared', bytesOf('one wrote'));
    expect(two.get('shared')?.toString()).toBe('one wrote');
    await one.close();
    two.putSync('later', bytesOf('two wrote'));
    expect(two.get('later')?.toString()).toBe('two wrote');
    expect(two.get('shared')?.toString()).toBe('one wrote');
  });

  it('opens read-only: reads work, writes fail naming the key', async () => {
    const dir = tempDir();
    const writer = Store.open({ path: dir, mapSize: 16 * MiB });
    writer.putSync('k', bytesOf('v'));
    await writer.close();
    const reader = Store.open({ path: dir, mapSize: 16 * MiB, readOnly: true });
    onTestFinished(() => reader.close());
    expect(reader.get('k')?.toString()).toBe('v');
    {
      const err = rtlErrorOf(() => reader.putSync('k2', bytesOf('x')));
      expect(err.code).toBe('RTL_ERR_STORE');
      expect(err.message).toMatch(/cannot put "k2", the store was opened read-only/);
    }
    await expect(reader.delete('k')).rejects.toMatchObject({ code: 'RTL_ERR_STORE' });
  });

  it('opens durable stores', () => {
    const store = tempStore({ durable: true });
    store.putSync('k', bytesOf('synced'));
    expect(store.get('k')?.toString()).toBe('synced');
  });

  it('rejects a bad map size, an unusable path, bad keys and bad values', () => {
    {
      const err = rtlErrorOf(() => Store.open({ path: tempDir(), mapSize: 0 }));
      expect(err.code).toBe('RTL_ERR_CONFIG');
      expect(err.message).toMatch(/CACHE_MAP_SIZE is 0/);
    }
    const file = path.join(tempDir(), 'a-file');
    fs.writeFileSync(file, 'x');
    {
      const err = rtlErrorOf(() => Store.open({ path: path.join(file, 'store'), mapSize: MiB }));
      expect(err.code).toBe('RTL_ERR_STORE');
      expect(err.message).toContain(`cannot open the store at ${path.join(file, 'store')}`);
    }
    const store = tempStore();
    expect(() => store.putSync('', bytesOf('v'))).toThrow(
      /key "" is not a string of 1 to 1978 bytes/,
    );
    expect(rtlErrorOf(() => store.putSync('k'.repeat(2000), bytesOf('v'))).code).toBe(
      'RTL_ERR_STORE',
    );
    expect(() => store.putSync('k', 'text' as unknown as Uint8Array)).toThrow(
      /value is "text", expected a Uint8Array/,
    );
    expect(() => store.putSync('k', [bytesOf('a'), 5] as unknown as Uint8Array[])).toThrow(
      /buffer 1 is 5/,
    );
    expect(store.has('k')).toBe(false);
  });

  it('fails a write that does not fit in mapSize, naming path, key and CACHE_MAP_SIZE, and keeps earlier entries', async () => {
    const store = tempStore({ mapSize: MiB });
    const value = (i: number) => new Uint8Array(200_000).fill(i + 1);
    const written: string[] = [];
    const fill = () => {
      for (let i = 0; i < 50; i++) {
        store.putSync(`k${i}`, value(i));
        written.push(`k${i}`);
      }
    };
    const full = rtlErrorOf(fill);
    expect(full.code).toBe('RTL_ERR_STORE');
    expect(full.detail.limit).toBe(MiB);
    expect(written.length).toBeGreaterThanOrEqual(2);
    expect(written.length).toBeLessThanOrEqual(5);
    const failed = `k${written.length}`;
    // A sixteenth of a 1 MiB map (64 KiB) stays free for reserved (journal) writes.
    expect(store.reserveBytes).toBe(MiB / 16);
    expect(full.message).toMatch(
      new RegExp(
        `^store ${store.path} is full: no room for "${failed}" \\(200000 bytes\\); 0\\.[6-9] MiB of 1\\.0 MiB ` +
          "are in use \\(the last 0\\.1 MiB are kept for the relay's journal\\)\\. Raise CACHE_MAP_SIZE, or delete entries no longer needed$",
      ),
    );
    expect(full.detail.key).toBe(failed);
    expect(store.has(failed)).toBe(false);
    for (const [i, key] of written.entries()) {
      const got = store.get(key);
      expect(got?.byteLength, key).toBe(200_000);
      expect(
        got?.every((b) => b === i + 1),
        key,
      ).toBe(true);
    }
    await expect(store.put('more', value(9))).rejects.toMatchObject({ code: 'RTL_ERR_STORE' });
    expect(store.usage().fileBytes).toBeLessThanOrEqual(MiB);

    // Deleting makes room again.
    expect(await store.delete('k0')).toBe(true);
    store.putSync('again', value(7));
    expect(store.get('again')?.[199_999]).toBe(8);
    expect(store.get('k1')?.[0]).toBe(2);
  });

  it('keeps the last part of the map for reserved writes: tables fill up, the journal still writes', async () => {
    const store = tempStore({ mapSize: MiB });
    const chunk = new Uint8Array(100_000).fill(3);
    let tables = 0;
    const err = rtlErrorOf(() => {
      for (;;) {
        store.putSync(`t${tables}`, chunk);
        tables++;
      }
    });
    expect(err.code).toBe('RTL_ERR_STORE');
    expect(err.message).toContain("kept for the relay's journal");
    // 1 MiB less the 64 KiB reserve holds at most 9 values of 100 kB (plus LMDB's pages).
    expect(tables).toBeGreaterThanOrEqual(6);
    expect(tables).toBeLessThanOrEqual(9);
    // A reserved write of 20 kB still fits, and is committed in order with a remove after it.
    await store.put('j/1', new Uint8Array(20_000).fill(9), { reserved: true });
    void store.put('j/2', new Uint8Array([1, 2, 3]), { reserved: true });
    await store.remove('j/1');
    expect(store.has('j/1')).toBe(false);
    expect([...store.entries('j/')].map(([k, v]) => [k, [...v]])).toEqual([['j/2', [1, 2, 3]]]);
    // Until the reserve is used up too: then the reserved write fails, naming the key.
    const big = await store.put('j/3', new Uint8Array(200_000), { reserved: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(big).toMatchObject({ code: 'RTL_ERR_STORE', detail: { key: 'j/3' } });
    for (let i = 0; i < tables; i++) expect(store.get(`t${i}`)?.[99_999]).toBe(3);
  });

  it('lists entries by prefix in key order, stopping below a bound', async () => {
    const store = tempStore();
    for (const k of ['a/2', 'a/10', 'a/1', 'b/1', 'a', 'a0']) await store.put(k, bytesOf(k));
    expect([...store.entries('a/')].map(([k]) => k)).toEqual(['a/1', 'a/10', 'a/2']);
    expect([...store.entries('a/', { below: 'a/2' })].map(([k]) => k)).toEqual(['a/1', 'a/10']);
    expect([...store.entries('c/')]).toEqual([]);
  });

  it('reads a value that another process committed during this event-loop turn', () => {
    const store = tempStore();
    const key = `k/${randomUUID()}`;
    expect(store.has(key)).toBe(false); // this turn's read snapshot predates the child's write
    const child = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { Store } = await import(process.env.CORE_URL);
         const store = Store.open({ path: process.env.STORE_PATH, mapSize: 256 * 2 ** 20 });
         store.putSync(process.env.KEY, new TextEncoder().encode('from the child'));
         await store.close();`,
      ],
      {
        env: { ...process.env, CORE_URL: coreUrl, STORE_PATH: store.path, KEY: key },
        encoding: 'utf8',
      },
    );
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(store.get(key)?.toString()).toBe('from the child');
    expect(store.has(key)).toBe(true);
  });
});

describe('putTable / getTable', () => {
  const columns = (n: number) => {
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      x[i] = i * 0.5;
      y[i] = (i % 1000) - 500;
    }
    return { x, y };
  };

  it('round-trips a 1e6 x 2 float64 table by reference, viewing the store', async () => {
    const store = tempStore();
    const n = 1_000_000;
    const { x, y } = columns(n);
    const ref = await putTable(store, toTable({ x, y }));
    expect(ref).toMatchObject({ kind: 'ref', store: store.id, bytes: 16_000_376 });
    expect(ref.key).toMatch(/^t\/[0-9a-f-]{36}$/);
    const table = getTable(store, ref);
    expect(table.numRows).toBe(n);
    const gx = table.getChild('x')?.toArray() as Float64Array;
    const gy = table.getChild('y')?.toArray() as Float64Array;
    let sx = 0;
    let sy = 0;
    for (let i = 0; i < n; i++) {
      sx += gx[i] as number;
      sy += gy[i] as number;
    }
    expect(sx).toBe((0.5 * n * (n - 1)) / 2);
    expect(sy).toBe((n / 1000) * -500);
    expect(gy[123_456]).toBe(-44);
    // zero-copy: the columns view the same memory as the store's view of the entry
    expect(gx.buffer === store.getView(ref.key)?.buffer).toBe(true);
  });

  it('round-trips a small table, and a stable copy that outlives the entry and the store', async () => {
    const dir = tempDir();
    const store = Store.open({ path: dir, mapSize: 64 * MiB });
    const table = toTable({ s: ['a', null, 'ccc'], v: Int32Array.of(1, -2, 3) });
    const ref = await putTable(store, table);
    expect(ref.bytes).toBe(encodeTable(table).reduce((n, f) => n + f.byteLength, 0));
    expect(store.get(ref.key)?.byteLength).toBe(ref.bytes);
    expect(getTable(store, ref).getChild('s')?.get(2)).toBe('ccc');
    const kept = getTable(store, ref, { copy: true });
    expect(await store.delete(ref.key)).toBe(true);
    await store.close();
    expect(kept.toArray().map((r: { toJSON(): unknown }) => r.toJSON())).toEqual([
      { s: 'a', v: 1 },
      { s: null, v: -2 },
      { s: 'ccc', v: 3 },
    ]);
  });

  it('fails clearly for a ref of another store, a deleted key, and an entry that is not a table', async () => {
    const store = tempStore();
    const ref = await putTable(store, toTable({ v: Float64Array.of(1, 2) }));
    {
      const err = rtlErrorOf(() => getTable(store, { ...ref, store: 'elsewhere:/x' }));
      expect(err.code).toBe('RTL_ERR_STORE');
      expect(err.message).toMatch(/is in store elsewhere:\/x, which is not this one/);
    }
    await store.delete(ref.key);
    {
      const err = rtlErrorOf(() => getTable(store, ref));
      expect(err.code).toBe('RTL_ERR_STORE');
      expect(err.message).toMatch(/no table under "t\//);
    }
    store.putSync('t/garbage', new Uint8Array(64).fill(0x5a));
    const bad: TableRef = { kind: 'ref', key: 't/garbage', bytes: 64, store: store.id };
    {
      const err = rtlErrorOf(() => getTable(store, bad));
      expect(err.code).toBe('RTL_ERR_STORE');
      expect(err.message).toMatch(/entry "t\/garbage" is not a table/);
    }
    expect(() => getTable(store, { ...bad, bytes: 65 })).toThrow(
      /has 64 bytes, the ref says 65: corrupt entry/,
    );
  });

  it('passes a table from one process to another, both ways', async () => {
    const store = tempStore();
    const rows = 2_000_000; // 32 MB: the unpadded, zero-copy size class

    // The child writes; this process reads.
    const childRef = JSON.parse(
      await runChild(
        `const { Store, putTable, toTable } = await import(process.env.CORE_URL);
         const store = Store.open({ path: process.env.STORE_PATH, mapSize: 256 * 2 ** 20 });
         const n = Number(process.env.ROWS);
         const x = new Float64Array(n), y = new Int32Array(n);
         for (let i = 0; i < n; i++) { x[i] = i * 0.5; y[i] = i * 7 - 3; }
         const ref = await putTable(store, toTable({ x, y }));
         await store.put('note', [new TextEncoder().encode('hello '), new TextEncoder().encode('there')]);
         process.stdout.write(JSON.stringify(ref));
         await store.close();`,
        { STORE_PATH: store.path, ROWS: String(rows) },
      ),
    ) as TableRef;
    expect(childRef.store).toBe(store.id);
    const fromChild = getTable(store, childRef);
    expect(fromChild.numRows).toBe(rows);
    const y = fromChild.getChild('y')?.toArray() as Int32Array;
    let sy = 0;
    for (let i = 0; i < rows; i++) sy += y[i] as number;
    expect(sy).toBe((7 * rows * (rows - 1)) / 2 - 3 * rows);
    expect(fromChild.getChild('x')?.get(rows - 1)).toBe((rows - 1) * 0.5);
    expect(store.get('note')?.toString()).toBe('hello there');

    // This process writes (the padded 16 MB size class); the child reads.
    const n = 1_000_000;
    const { x: px, y: py } = columns(n);
    const ref = await putTable(store, toTable({ x: px, y: py }));
    const out = await runChild(
      `const { Store, getTable } = await import(process.env.CORE_URL);
       const store = Store.open({ path: process.env.STORE_PATH, mapSize: 256 * 2 ** 20 });
       const table = getTable(store, JSON.parse(process.env.REF));
       const x = table.getChild('x').toArray(), y = table.getChild('y').toArray();
       let sx = 0, sy = 0;
       for (let i = 0; i < x.length; i++) { sx += x[i]; sy += y[i]; }
       process.stdout.write(JSON.stringify({ rows: table.numRows, sx, sy }));
       await store.close();`,
      { STORE_PATH: store.path, REF: JSON.stringify(ref) },
    );
    expect(JSON.parse(out)).toEqual({
      rows: n,
      sx: (0.5 * n * (n - 1)) / 2,
      sy: (n / 1000) * -500,
    });
  });

  it('throws RtlError instances', () => {
    const store = tempStore();
    expect(() => store.putSync('', new Uint8Array(1))).toThrow(RtlError);
  });
});
