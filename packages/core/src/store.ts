/**
 * The LMDB store (DESIGN section 6): large values written once and read by key, zero-copy, by
 * every process on the host that opens the same directory (relay, tasknodes, client, and
 * their worker threads).
 *
 * Multi-process safety comes from LMDB itself: a lock file with robust mutexes (a process
 * that dies mid-write releases the lock), one writer at a time, readers never blocked, stale
 * reader slots of dead processes cleared when a store is opened. Worker threads of one
 * process share one lmdb-js environment per path.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Table } from 'apache-arrow';
import { open, type RootDatabase } from 'lmdb';
import { decodeTable, encodeTable } from './arrow.js';
import { RtlError, describeValue } from './errors.js';
import type { DataRef } from './protocol.js';

/**
 * lmdb-js returns a view of its memory map (no copy) from getBinaryFast only for values larger
 * than its reused 16 MiB read buffer (SHARED_BUFFER_THRESHOLD in its native code); smaller
 * values are copied into that buffer. getView checks which it got, so a change of this number
 * in lmdb-js only costs speed.
 */
const LMDB_ZERO_COPY_BYTES = 0x1000000 + 8;
/**
 * putTable pads a table of at least this many bytes (and under LMDB_ZERO_COPY_BYTES) up to
 * LMDB_ZERO_COPY_BYTES, so that readers view it instead of copying it. Measured: writing the
 * padding costs ~0.22 ms/MB once; a stable copy costs each reader ~0.5 ms/MB.
 */
const PAD_TO_ZERO_COPY_FROM = 6 * 2 ** 20;
/** Largest join buffer putSync keeps between calls. */
const MAX_KEPT_SCRATCH = 64 * 2 ** 20;
/** LMDB's own pages: two meta pages. */
const META_PAGES = 2;
/** Pages a write may add to the B-tree besides its value (a leaf split up to the root). */
const TREE_MARGIN_PAGES = 4;
const MAX_KEY_BYTES = 1978;
/** At most this much of the map is kept for reserved writes (a sixteenth of smaller maps). */
const JOURNAL_RESERVE_BYTES = 32 * 2 ** 20;

export interface PutOptions {
  /**
   * May use the last part of the map that other writes leave free (Store.reserveBytes): the
   * relay's journal, so that tables filling the store fail their jobs but never the journal.
   */
  readonly reserved?: boolean;
}

export interface StoreOptions {
  /** Directory of the store (CACHE_PATH); created if missing. */
  readonly path: string;
  /**
   * Capacity in bytes (CACHE_MAP_SIZE). lmdb-js grows its memory map by itself, so this is
   * enforced here: a write that does not fit in the free pages plus the room left below it
   * fails with RTL_ERR_STORE.
   */
  readonly mapSize: number;
  /** Open without write access; every write then fails with RTL_ERR_STORE. */
  readonly readOnly?: boolean;
  /**
   * true: every commit is flushed to disk (for data that must survive a machine crash; a
   * 16 MB put then takes ~16 ms instead of ~4 ms). Default false (LMDB's noSync): commits
   * reach the OS page cache only, which survives any process crash; a machine crash may lose
   * recent entries or, rarely, leave the store unreadable (then delete the directory). Every
   * opener of one path in one process must pass the same value (lmdb-js shares the
   * environment and refuses to mix them).
   */
  readonly durable?: boolean;
}

/** Space in use, as LMDB counts it. */
export interface StoreUsage {
  /** Bytes of pages holding entries and LMDB's own structures. */
  readonly usedBytes: number;
  /** Size of the data file (its last page), free pages included. */
  readonly fileBytes: number;
  /** The capacity, mapSize. */
  readonly mapSize: number;
  readonly entries: number;
}

interface LmdbDbStats {
  readonly treeBranchPageCount: number;
  readonly treeLeafPageCount: number;
  readonly overflowPages: number;
  readonly entryCount: number;
}
interface LmdbStats extends LmdbDbStats {
  readonly pageSize: number;
  readonly lastPageNumber: number;
  readonly root: LmdbDbStats;
  readonly free: LmdbDbStats;
}

/** A value to store: one buffer, or several stored as one value, concatenated. */
export type StoreValue = Uint8Array | readonly Uint8Array[];

/**
 * A directory of LMDB data shared by the processes of one host.
 *
 * ```ts
 * const store = Store.open({ path: config.CACHE_PATH, mapSize: config.CACHE_MAP_SIZE });
 * await store.put('m/abc', bytes);
 * store.get('m/abc');            // a Buffer copy
 * await store.close();
 * ```
 * Gotcha: views from getView and tables from getTable point into LMDB's memory map; see
 * getView for how long they stay valid.
 */
export class Store {
  /** `${hostname}:${real absolute path}`: two processes share the store when their ids match. */
  readonly id: string;
  /** The real absolute path of the directory. */
  readonly path: string;
  readonly mapSize: number;
  readonly readOnly: boolean;
  /** Bytes below mapSize that only reserved writes (the relay's journal) may use. */
  readonly reserveBytes: number;
  readonly #db: RootDatabase<Buffer, string>;
  #closing: Promise<void> | undefined;
  #scratch: Uint8Array | undefined;
  /** Bytes that writes may still take before the room is measured again (see #checkRoom). */
  #headroom = 0;
  #reservedHeadroom = 0;
  #pageSize = 4096;

  private constructor(db: RootDatabase<Buffer, string>, realPath: string, opts: StoreOptions) {
    this.#db = db;
    this.path = realPath;
    this.id = `${os.hostname()}:${realPath}`;
    this.mapSize = opts.mapSize;
    this.readOnly = opts.readOnly === true;
    this.reserveBytes = Math.min(Math.floor(opts.mapSize / 16), JOURNAL_RESERVE_BYTES);
  }

  /**
   * Open (and create if needed) the store in a directory.
   *
   * ```ts
   * const store = Store.open({ path: '/var/cache/rtl', mapSize: 512 * 2 ** 20 });
   * store.id;   // 'host-1:/var/cache/rtl'
   * ```
   * Throws RtlError RTL_ERR_STORE naming the path when the directory cannot be created or
   * LMDB cannot open it, RTL_ERR_CONFIG for a mapSize that is not a positive integer.
   */
  static open(opts: StoreOptions): Store {
    if (!Number.isSafeInteger(opts.mapSize) || opts.mapSize <= 0) {
      throw new RtlError(
        'RTL_ERR_CONFIG',
        `CACHE_MAP_SIZE is ${describeValue(opts.mapSize)}, expected a positive number of bytes`,
        { param: 'CACHE_MAP_SIZE', got: describeValue(opts.mapSize) },
      );
    }
    const dir = path.resolve(opts.path);
    let realPath: string;
    let db: RootDatabase<Buffer, string>;
    try {
      fs.mkdirSync(dir, { recursive: true });
      realPath = fs.realpathSync(dir);
      db = open<Buffer, string>({
        path: realPath,
        noSubdir: false,
        mapSize: opts.mapSize,
        encoding: 'binary',
        compression: false,
        readOnly: opts.readOnly === true,
        noSync: opts.durable !== true,
        // Shared by every process and worker thread that reads (one slot per reading thread).
        maxReaders: 1024,
        // useWritemap stays off: it saves a copy, but aborts the process in mdb_freelist_save
        // when a large value is deleted and another written (a known LMDB WRITEMAP bug), and
        // a full disk becomes SIGBUS.
      });
    } catch (err) {
      throw new RtlError(
        'RTL_ERR_STORE',
        `cannot open the store at ${dir}: ${errorText(err)}; check that CACHE_PATH is a writable directory`,
        { file: dir },
        { cause: err },
      );
    }
    return new Store(db, realPath, opts);
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Store a value (several buffers are stored as one value, concatenated), committed when the
   * promise resolves; other processes can read it from then on.
   *
   * ```ts
   * await store.put('m/abc', [header, body]);
   * ```
   * Writes of one event-loop turn share one transaction, written by lmdb-js's writer thread.
   * Keep the buffers unchanged until the promise settles. Rejects with RtlError
   * RTL_ERR_STORE naming the path and key: store full (raise CACHE_MAP_SIZE), read-only,
   * closed, or an LMDB failure.
   */
  async put(key: string, value: StoreValue, opts: PutOptions = {}): Promise<void> {
    const bytes = this.#checkWrite(key, value, undefined, opts.reserved === true);
    const buffer = isBufferList(value) ? joinInto(undefined, value, bytes) : value;
    try {
      await this.#db.put(key, toBuffer(buffer));
    } catch (err) {
      throw this.#failure('put', key, err);
    }
  }

  /**
   * Store a value and commit before returning (several buffers are joined first, in a buffer
   * of up to 64 MiB kept for the next call). The fastest write for large values: 16 MB took
   * ~3.5-4.5 ms in our measurements, against ~4-6 ms (and a slower tail) for put.
   *
   * ```ts
   * store.putSync('t/1', frames);
   * ```
   * Throws as put rejects.
   */
  putSync(key: string, value: StoreValue): void {
    const bytes = this.#checkWrite(key, value);
    const buffer = isBufferList(value) ? this.#join(value, bytes) : value;
    try {
      this.#db.putSync(key, toBuffer(buffer));
    } catch (err) {
      throw this.#failure('put', key, err);
    }
  }

  /**
   * Put a padded value: `value` then zeros up to `paddedBytes` (putTable's zero-copy trick).
   * @internal
   */
  putSyncPadded(key: string, value: readonly Uint8Array[], paddedBytes: number): void {
    const bytes = this.#checkWrite(key, value, paddedBytes);
    const buffer = this.#join(value, bytes, paddedBytes);
    try {
      this.#db.putSync(key, toBuffer(buffer));
    } catch (err) {
      throw this.#failure('put', key, err);
    }
  }

  /**
   * A stable copy of a value, or undefined if there is none.
   *
   * ```ts
   * const bytes = store.get('m/abc');
   * ```
   * A key that another process committed is found even if this process read the store
   * earlier in the same event-loop turn (a miss re-reads the newest snapshot). With
   * `{ ownWrites: true }` a miss is final: for keys only this process writes (its own commits
   * are always seen), which makes a miss cheaper.
   */
  get(key: string, opts: { ownWrites?: boolean } = {}): Buffer | undefined {
    this.#checkOpen('get', key);
    const read = (): Buffer | undefined => this.#db.getBinary(key);
    const value =
      opts.ownWrites === true ? this.#read('get', key, read, false) : this.#read('get', key, read);
    return value === undefined
      ? undefined
      : Buffer.from(value.buffer, value.byteOffset, value.length);
  }

  /**
   * The fastest safe read: for a value over 16 MiB, a view of LMDB's memory map (no
   * copy, ~2 µs); for a smaller one, a copy (lmdb-js views only values over 16 MiB).
   *
   * ```ts
   * const view = store.getView('t/1');
   * if (view) decodeTable([view]);
   * ```
   * Lifetime of a view (nothing enforces it; breaking it reads other data or crashes):
   * - it stays valid while its key is neither deleted nor overwritten, by any process: after
   *   that, LMDB reuses the pages for later writes and the view shows their bytes;
   * - it must not be touched after the last Store on this path in this process is closed:
   *   lmdb-js unmaps the file and an access then kills the process (SIGSEGV);
   * - it is read-only: writing into it changes the stored value under every reader.
   * Hence write such keys once, under fresh names (putTable uses `t/<uuid>`), and delete them
   * only when no reader needs them any more; take get() for anything kept longer.
   */
  getView(key: string): Uint8Array | undefined {
    this.#checkOpen('get', key);
    const value = this.#read('get', key, () => this.#db.getBinaryFast(key));
    if (value === undefined) return undefined;
    // getBinaryFast returns either a view of the memory map (its ArrayBuffer is marked
    // isSharedMap) or lmdb-js's reused global buffer (marked isGlobal; `length` is then an own
    // property holding the value's size), which the next read overwrites: copy that one.
    const size = value.length;
    const mapped = (value.buffer as { isSharedMap?: unknown }).isSharedMap === true;
    if (mapped && (value as { isGlobal?: unknown }).isGlobal !== true) {
      return new Uint8Array(value.buffer, value.byteOffset, size);
    }
    return Uint8Array.prototype.slice.call(value, 0, size);
  }

  /**
   * Whether a value exists under a key (without reading it).
   *
   * ```ts
   * if (!store.has(ref.key)) ...
   * ```
   */
  has(key: string): boolean {
    this.#checkOpen('has', key);
    const found = (): true | undefined => {
      for (const k of this.#db.getKeys({ start: key, limit: 1 }))
        return k === key ? true : undefined;
      return undefined;
    };
    return this.#read('has', key, found) === true;
  }

  /**
   * Delete a value, committed when the promise resolves; resolves to whether there was one.
   *
   * ```ts
   * await store.delete(ref.key);
   * ```
   * Views of the value (getView, getTable) must no longer be used once this is called. The
   * commit is synchronous (lmdb-js's async remove does not tell whether the key existed); it
   * frees pages without copying anything, so it is cheap even for large values.
   */
  delete(key: string): Promise<boolean> {
    try {
      this.#checkOpen('delete', key);
      if (this.readOnly) throw this.#readOnlyError('delete', key);
      return Promise.resolve(this.#db.removeSync(key));
    } catch (err) {
      return Promise.reject(this.#failure('delete', key, err));
    }
  }

  /**
   * Delete a value in the write queue: after every put issued before it, in the same or a
   * later transaction (so a crash never shows this delete without those puts). Resolves
   * when committed.
   *
   * ```ts
   * void store.put('j/S/1', bytes);
   * await store.remove('j/S/0');   // committed with or after the put
   * ```
   */
  async remove(key: string): Promise<void> {
    this.#checkOpen('delete', key);
    if (this.readOnly) throw this.#readOnlyError('delete', key);
    try {
      await this.#db.remove(key);
    } catch (err) {
      throw this.#failure('delete', key, err);
    }
  }

  /**
   * Resolves when every write issued so far (put, remove) is committed.
   *
   * ```ts
   * void store.put('a', x);
   * await store.committed();
   * ```
   */
  async committed(): Promise<void> {
    await this.#db.committed;
  }

  /**
   * The entries whose keys start with `prefix`, in key order, each value a stable copy; `below`
   * stops before the first key at or past it.
   *
   * ```ts
   * for (const [key, value] of store.entries('j/J/')) ...
   * ```
   */
  *entries(prefix: string, opts: { below?: string } = {}): Generator<[string, Buffer]> {
    this.#checkOpen('read', prefix);
    this.#db.resetReadTxn();
    const end = opts.below ?? prefixEnd(prefix);
    for (const { key, value } of this.#db.getRange({ start: prefix, end }))
      yield [key, Buffer.from(value)];
  }

  /**
   * Space in use and capacity.
   *
   * ```ts
   * const { usedBytes, mapSize } = store.usage();
   * ```
   */
  usage(): StoreUsage {
    this.#checkOpen('usage', '');
    const s = this.#stats();
    return {
      usedBytes: usedPages(s) * s.pageSize,
      fileBytes: (s.lastPageNumber + 1) * s.pageSize,
      mapSize: this.mapSize,
      entries: s.root.entryCount,
    };
  }

  /**
   * Close the store; waits for pending writes. Idempotent: later calls return the same promise.
   *
   * ```ts
   * await store.close();
   * await store.close();   // no-op
   * ```
   * Once the last Store on this path in this process is closed, views from getView and
   * tables from getTable must not be touched (see getView).
   */
  close(): Promise<void> {
    this.#closing ??= this.#db.close().catch((err: unknown) => {
      throw this.#failure('close', '', err);
    });
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #stats(): LmdbStats {
    return this.#db.getStats() as LmdbStats;
  }

  #checkOpen(op: string, key: string): void {
    if (this.#closing !== undefined) {
      throw new RtlError('RTL_ERR_STORE', `store ${this.path}: ${op} "${key}" after close()`, {
        key,
        file: this.path,
      });
    }
  }

  #readOnlyError(op: string, key: string): RtlError {
    return new RtlError(
      'RTL_ERR_STORE',
      `store ${this.path}: cannot ${op} "${key}", the store was opened read-only`,
      { key, file: this.path },
    );
  }

  /** Validate a write and check there is room for it; returns the value's byte length. */
  #checkWrite(key: string, value: StoreValue, storedBytes?: number, reserved = false): number {
    this.#checkOpen('put', key);
    if (this.readOnly) throw this.#readOnlyError('put', key);
    checkKey(key, this.path);
    let bytes = 0;
    if (isBufferList(value)) {
      for (const [i, b] of value.entries()) {
        if (!(b instanceof Uint8Array)) {
          throw new RtlError(
            'RTL_ERR_STORE',
            `store ${this.path}: put "${key}": buffer ${i} is ${describeValue(b)}, expected a Uint8Array`,
            { key, file: this.path, index: i },
          );
        }
        bytes += b.byteLength;
      }
    } else if (value instanceof Uint8Array) {
      bytes = value.byteLength;
    } else {
      throw new RtlError(
        'RTL_ERR_STORE',
        `store ${this.path}: put "${key}": value is ${describeValue(value)}, expected a Uint8Array or an array of them`,
        { key, file: this.path },
      );
    }
    this.#checkRoom(key, storedBytes ?? bytes, reserved);
    return bytes;
  }

  /**
   * Refuse a write that would make the data file pass mapSize: it must fit in the free pages
   * plus the room left below mapSize. (Free pages held by a reader's snapshot are counted as
   * free, so the file may pass mapSize by at most about one value.)
   *
   * Measuring (LMDB's stats) costs more than a small write, so a measurement leaves a
   * headroom, at most a 64th of the map, that later writes of this process use up (each
   * counted at its pages plus a B-tree margin, more than it takes) before the next one.
   * Writes of other processes on the same store are not counted: with P processes writing,
   * the file may pass mapSize by up to P such headrooms.
   */
  #checkRoom(key: string, bytes: number, reserved: boolean): void {
    const pageSize = this.#pageSize;
    const cost = (Math.ceil((bytes + key.length + 64) / pageSize) + TREE_MARGIN_PAGES) * pageSize;
    if (reserved ? this.#reservedHeadroom >= cost : this.#headroom >= cost) {
      this.#headroom -= cost;
      this.#reservedHeadroom -= cost;
      return;
    }
    // Let go of this thread's read snapshot, so that LMDB may reuse the pages freed so far.
    this.#db.resetReadTxn();
    const s = this.#stats();
    this.#pageSize = s.pageSize;
    const filePages = s.lastPageNumber + 1;
    const freePages = Math.max(0, filePages - usedPages(s));
    const needPages = Math.ceil((bytes + key.length + 64) / s.pageSize) + TREE_MARGIN_PAGES;
    const newPages = Math.max(0, needPages - freePages);
    const cap = reserved ? this.mapSize : this.mapSize - this.reserveBytes;
    if ((filePages + newPages) * s.pageSize > cap) {
      const usedMiB = ((usedPages(s) * s.pageSize) / 2 ** 20).toFixed(1);
      const capMiB = (this.mapSize / 2 ** 20).toFixed(1);
      throw new RtlError(
        'RTL_ERR_STORE',
        `store ${this.path} is full: no room for "${key}" (${bytes} bytes); ${usedMiB} MiB of ` +
          `${capMiB} MiB are in use${reserved ? '' : ` (the last ${(this.reserveBytes / 2 ** 20).toFixed(1)} MiB are kept for the relay's journal)`}. Raise CACHE_MAP_SIZE, or delete entries no longer needed`,
        { key, file: this.path, limit: this.mapSize },
      );
    }
    // Room after this write, as free pages plus what is left below each cap.
    const room = (limit: number): number =>
      Math.max(0, limit - (filePages + newPages) * s.pageSize) +
      Math.max(0, freePages - needPages) * s.pageSize;
    const most = Math.floor(this.mapSize / 64);
    this.#headroom = Math.min(most, room(this.mapSize - this.reserveBytes));
    this.#reservedHeadroom = Math.min(most, room(this.mapSize));
  }

  /** Join buffers into a buffer kept between calls (safe for putSync, which copies at once). */
  #join(value: readonly Uint8Array[], bytes: number, paddedBytes = bytes): Uint8Array {
    if (value.length === 1 && value[0] !== undefined && paddedBytes === bytes) return value[0];
    let scratch = this.#scratch;
    if (scratch === undefined || scratch.byteLength < paddedBytes) {
      // Not zero-filled: the value and the padding below overwrite every byte used.
      const buf = Buffer.allocUnsafeSlow(paddedBytes);
      scratch = new Uint8Array(buf.buffer, buf.byteOffset, paddedBytes);
      if (paddedBytes <= MAX_KEPT_SCRATCH) this.#scratch = scratch;
    }
    joinInto(scratch, value, bytes);
    if (paddedBytes > bytes) scratch.fill(0, bytes, paddedBytes);
    return scratch.subarray(0, paddedBytes);
  }

  /** Run a read; a miss is retried once on the newest snapshot (another process may have just committed). */
  #read<T>(op: string, key: string, read: () => T | undefined, retry = true): T | undefined {
    try {
      const first = read();
      if (first !== undefined || !retry) return first;
      this.#db.resetReadTxn();
      return read();
    } catch (err) {
      throw this.#failure(op, key, err);
    }
  }

  #failure(op: string, key: string, err: unknown): RtlError {
    if (err instanceof RtlError) return err;
    const text = errorText(err);
    const hint = /MAP_FULL|mapsize/i.test(text)
      ? 'raise CACHE_MAP_SIZE'
      : /ENOSPC|No space/i.test(text)
        ? 'the disk holding CACHE_PATH is full'
        : /EACCES|EROFS|EPERM|permission|read-only/i.test(text)
          ? 'CACHE_PATH is not writable'
          : /READERS_FULL/i.test(text)
            ? 'too many processes or threads read the store at once'
            : 'check CACHE_PATH and CACHE_MAP_SIZE';
    return new RtlError(
      'RTL_ERR_STORE',
      `store ${this.path}: ${op}${key === '' ? '' : ` "${key}"`} failed: ${text}; ${hint}`,
      { key, file: this.path },
      { cause: err },
    );
  }
}

function usedPages(s: LmdbStats): number {
  const pagesOf = (d: LmdbDbStats): number =>
    d.treeBranchPageCount + d.treeLeafPageCount + d.overflowPages;
  return pagesOf(s.root) + pagesOf(s.free) + META_PAGES;
}

function checkKey(key: unknown, storePath: string): void {
  if (typeof key !== 'string' || key.length === 0 || Buffer.byteLength(key) > MAX_KEY_BYTES) {
    throw new RtlError(
      'RTL_ERR_STORE',
      `store ${storePath}: key ${describeValue(key)} is not a string of 1 to ${MAX_KEY_BYTES} bytes`,
      { file: storePath, got: describeValue(key) },
    );
  }
}

/** The first string after every string that starts with `prefix`. */
function prefixEnd(prefix: string): string {
  const last = prefix.charCodeAt(prefix.length - 1);
  return `${prefix.slice(0, -1)}${String.fromCharCode(last + 1)}`;
}

function isBufferList(value: StoreValue): value is readonly Uint8Array[] {
  return Array.isArray(value);
}

function joinInto(
  target: Uint8Array | undefined,
  value: readonly Uint8Array[],
  bytes: number,
): Uint8Array {
  if (value.length === 1 && value[0] !== undefined && target === undefined) return value[0];
  const out = target ?? new Uint8Array(bytes);
  let at = 0;
  for (const b of value) {
    out.set(b, at);
    at += b.byteLength;
  }
  return out.subarray(0, bytes);
}

function toBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A table stored by reference: the DataRef of a value written by putTable. */
export type TableRef = Extract<DataRef, { kind: 'ref' }>;

/**
 * Write a table's IPC stream bytes under a fresh key (`t/<uuid>`), committed when the promise
 * resolves, and describe it for another process on the same host.
 *
 * ```ts
 * const ref = await putTable(store, table);   // { kind: 'ref', key, bytes, store: store.id }
 * const back = getTable(otherStore, ref);      // in another process
 * await store.delete(ref.key);                 // once no reader needs it
 * ```
 * A table of 6 MiB to 16 MiB is padded with zeros to just over 16 MiB so that getTable can view
 * it instead of copying it (`bytes` is the unpadded length). Rejects as Store.put.
 */
export function putTable(store: Store, table: Table): Promise<TableRef> {
  try {
    return Promise.resolve(putTableSync(store, table));
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

/**
 * putTable, committing before it returns (the write is synchronous either way: for large
 * values putSync is the fastest lmdb-js write).
 *
 * ```ts
 * const ref = putTableSync(store, table);
 * ```
 * Throws as Store.putSync.
 */
export function putTableSync(store: Store, table: Table): TableRef {
  const frames = encodeTable(table);
  let bytes = 0;
  for (const f of frames) bytes += f.byteLength;
  const key = `t/${randomUUID()}`;
  if (bytes >= PAD_TO_ZERO_COPY_FROM && bytes < LMDB_ZERO_COPY_BYTES) {
    store.putSyncPadded(key, frames, LMDB_ZERO_COPY_BYTES);
  } else {
    store.putSync(key, frames);
  }
  return { kind: 'ref', key, bytes, store: store.id };
}

export interface GetTableOptions {
  /** true: decode a stable copy, independent of the store (for tables kept long). */
  readonly copy?: boolean;
}

/**
 * Read a table written by putTable, zero-copy where the value is large enough (see getView):
 * its columns then view LMDB's memory map, with getView's lifetime rules (the table is valid
 * while `ref.key` is not deleted and the store is open). Pass `{ copy: true }` for a table
 * to keep after that.
 *
 * ```ts
 * const table = getTable(store, ref);
 * const kept = getTable(store, ref, { copy: true });
 * ```
 * Throws RtlError RTL_ERR_STORE when the ref belongs to another store (host or path), the key
 * is missing, or the entry is shorter than the ref says or not a table.
 */
export function getTable(store: Store, ref: TableRef, opts: GetTableOptions = {}): Table {
  if (ref.store !== store.id) {
    throw new RtlError(
      'RTL_ERR_STORE',
      `table "${ref.key}" is in store ${ref.store}, which is not this one (${store.id}): another host or path`,
      { key: ref.key, file: store.path },
    );
  }
  const value = opts.copy === true ? store.get(ref.key) : store.getView(ref.key);
  if (value === undefined) {
    throw new RtlError(
      'RTL_ERR_STORE',
      `store ${store.path}: no table under "${ref.key}" (deleted already?)`,
      { key: ref.key, file: store.path },
    );
  }
  if (value.byteLength < ref.bytes) {
    throw new RtlError(
      'RTL_ERR_STORE',
      `store ${store.path}: entry "${ref.key}" has ${value.byteLength} bytes, the ref says ${ref.bytes}: corrupt entry`,
      { key: ref.key, file: store.path },
    );
  }
  try {
    return decodeTable([new Uint8Array(value.buffer, value.byteOffset, ref.bytes)]);
  } catch (err) {
    throw new RtlError(
      'RTL_ERR_STORE',
      `store ${store.path}: entry "${ref.key}" is not a table: ${errorText(err)}`,
      { key: ref.key, file: store.path },
      { cause: err },
    );
  }
}
