/**
 * Deployed task modules at the relay (P-8): checking that a module loads (in a child process,
 * with a timeout), and the book of modules kept in the LMDB store, content-hashed and
 * versioned, so a relay restart keeps them.
 *
 * Store layout: `m/src/<sha256>` holds a source (UTF-8), once per distinct source;
 * `m/index` holds the book as JSON: `{ format: 1, modules: { <name>: { current, versions:
 * [{ version, sha256, bytes, deployedAt, tasks }] } } }`.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RtlError, type Logger, type Store } from '@rtl/core';
import type { TaskKind } from '@rtl/tasks';

/** A task a module exports, as the check process reports it. */
export interface CheckedTask {
  /** The export's name. */
  readonly exportName: string;
  readonly name: string;
  readonly kind: TaskKind;
  readonly aliases: readonly string[];
  readonly summary: string;
  /** A table task's parameter description (ParamDoc), for listings. */
  readonly params?: unknown;
}

/** What module-check.js answers over IPC. */
export type CheckReply =
  | { readonly ok: true; readonly tasks: readonly CheckedTask[] }
  | {
      readonly ok: false;
      readonly name: string;
      readonly message: string;
      readonly stack: string;
      readonly where?: { readonly line: number; readonly column: number; readonly text?: string };
    };

/** A module name: a letter, then letters, digits, `_` or `-`; at most 64. [P-8.1] */
export const MODULE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/** sha256 of a source's UTF-8 bytes, lower-case hex. */
export function sourceHash(source: string): string {
  return createHash('sha256').update(source, 'utf8').digest('hex');
}

/** The error code of a module that is refused (does not load, exports nothing, clashes). */
export const MODULE_ERROR = 'RTL_ERR_BAD_MODULE' as const;

export interface CheckOptions {
  /** Directory for the temporary module file (a fresh subdirectory is made and removed). */
  readonly dir: string;
  readonly name: string;
  readonly source: string;
  readonly timeoutMs: number;
  /** Called with the child process while it runs (so a closing relay can end it). */
  readonly onChild?: (kill: (() => void) | undefined) => void;
}

const CHECK_SCRIPT = fileURLToPath(new URL('./module-check.js', import.meta.url));

/**
 * Load a module in a child process and return the tasks it exports. Rejects with RtlError
 * MODULE_ERROR naming the module, the error and where it happened; or when the module takes
 * longer than `timeoutMs` to load, or ends the process.
 */
export function checkModule(opts: CheckOptions): Promise<CheckedTask[]> {
  const { name, timeoutMs } = opts;
  mkdirSync(opts.dir, { recursive: true });
  const dir = mkdtempSync(join(opts.dir, 'check-'));
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, opts.source);
  const cleanup = (): void => {
    opts.onChild?.(undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  return new Promise<CheckedTask[]>((resolve, reject) => {
    const child = spawn(process.execPath, [CHECK_SCRIPT, file, name], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    let reply: CheckReply | undefined;
    let settled = false;
    const finish = (err: RtlError | undefined, tasks?: CheckedTask[]): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      cleanup();
      if (err !== undefined) reject(err);
      else resolve(tasks ?? []);
    };
    const timer = setTimeout(() => {
      finish(
        new RtlError(
          MODULE_ERROR,
          `module "${name}" did not finish loading within ${String(timeoutMs)} ms (a top-level loop, or an await that never settles?)`,
          { module: name, limit: timeoutMs },
        ),
      );
    }, timeoutMs);
    opts.onChild?.(() => {
      finish(
        new RtlError(
          'RTL_ERR_SHUTTING_DOWN',
          `relay is shutting down; module "${name}" was not deployed`,
          { module: name },
        ),
      );
    });
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      stderr = (stderr + s).slice(-4096);
    });
    child.on('message', (m: CheckReply) => {
      reply = m;
      if (m.ok) {
        finish(undefined, [...m.tasks]);
        return;
      }
      const at =
        m.where === undefined
          ? ''
          : ` at line ${String(m.where.line)}, column ${String(m.where.column)}${m.where.text ? `: ${m.where.text.slice(0, 120)}` : ''}`;
      finish(
        new RtlError(
          MODULE_ERROR,
          `module "${name}" failed to load: ${m.name}: ${m.message}${at}`,
          {
            module: name,
            ...(m.where === undefined ? {} : { line: m.where.line, column: m.where.column }),
            remoteStack: m.stack,
          },
        ),
      );
    });
    child.on('error', (err) => {
      finish(
        new RtlError(
          'RTL_ERR_INTERNAL',
          `cannot start the module check process: ${err.message}`,
          { module: name },
          { cause: err },
        ),
      );
    });
    child.on('exit', (code, signal) => {
      if (reply !== undefined) return;
      const how = signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
      const tail = stderr.trim().split('\n').slice(-3).join(' | ');
      // Node exits with 13 when the module's top-level await can never settle.
      const why =
        code === 13 ? ': a top-level await never settled' : tail === '' ? '' : `: ${tail}`;
      finish(
        new RtlError(
          MODULE_ERROR,
          `module "${name}" ended the process loading it (${how}) before it finished loading${why}`,
          { module: name },
        ),
      );
    });
  });
}

/** One stored version of a module. */
export interface ModuleVersion {
  readonly version: number;
  readonly sha256: string;
  readonly bytes: number;
  /** ms since the epoch. */
  readonly deployedAt: number;
  readonly tasks: readonly CheckedTask[];
}

/** A module's current version, with its source. */
export interface CurrentModule extends ModuleVersion {
  readonly name: string;
  /** `name@version`. */
  readonly label: string;
  readonly source: string;
}

interface BookEntry {
  current: number;
  versions: ModuleVersion[];
}

const INDEX_KEY = 'm/index';
const srcKey = (sha256: string): string => `m/src/${sha256}`;

/**
 * The modules the relay keeps: every version of each, and which one is current. Persisted
 * in the store when there is one (else kept in memory only).
 */
export class ModuleBook {
  readonly #store: Store | undefined;
  readonly #log: Logger;
  readonly #entries = new Map<string, BookEntry>();
  /** Sources of current versions, by sha256. */
  readonly #sources = new Map<string, string>();

  private constructor(store: Store | undefined, log: Logger) {
    this.#store = store;
    this.#log = log;
  }

  /** Read the book from the store (an unreadable index is logged and read as empty). */
  static open(store: Store | undefined, log: Logger): ModuleBook {
    const book = new ModuleBook(store, log);
    const raw = store?.get(INDEX_KEY);
    if (raw === undefined) return book;
    try {
      const parsed = JSON.parse(raw.toString('utf8')) as { modules?: Record<string, BookEntry> };
      for (const [name, entry] of Object.entries(parsed.modules ?? {})) {
        const cur = entry.versions.find((v) => v.version === entry.current);
        const src = cur === undefined ? undefined : store?.get(srcKey(cur.sha256));
        if (cur === undefined || src === undefined) {
          log.error(
            { module: name, version: entry.current },
            'deployed module: its current version or source is missing from the store; skipped',
          );
          continue;
        }
        book.#entries.set(name, { current: entry.current, versions: [...entry.versions] });
        book.#sources.set(cur.sha256, src.toString('utf8'));
      }
    } catch (err) {
      log.error(
        { err, key: INDEX_KEY },
        'deployed modules: the index in the store is not readable; starting with none',
      );
    }
    if (book.#entries.size > 0)
      log.info(
        { modules: book.current().map((m) => m.label) },
        'deployed modules restored from the store',
      );
    return book;
  }

  /** Current version of every module, by name. */
  current(): CurrentModule[] {
    return [...this.#entries.keys()].sort().flatMap((name) => {
      const m = this.get(name);
      return m === undefined ? [] : [m];
    });
  }

  /** A module's current version. */
  get(name: string): CurrentModule | undefined {
    const entry = this.#entries.get(name);
    const v = entry?.versions.find((x) => x.version === entry.current);
    if (v === undefined) return undefined;
    const source =
      this.#sources.get(v.sha256) ?? this.#store?.get(srcKey(v.sha256))?.toString('utf8') ?? '';
    return { ...v, name, label: `${name}@${String(v.version)}`, source };
  }

  /** A stored version (current or not). */
  version(name: string, version: number): ModuleVersion | undefined {
    return this.#entries.get(name)?.versions.find((v) => v.version === version);
  }

  /** The version the next deploy of `name` gets. */
  nextVersion(name: string): number {
    const entry = this.#entries.get(name);
    return entry === undefined ? 1 : Math.max(0, ...entry.versions.map((v) => v.version)) + 1;
  }

  /** Store a new version and make it current (the store is written before this resolves). */
  async add(
    name: string,
    source: string,
    sha256: string,
    tasks: readonly CheckedTask[],
    now: number,
  ): Promise<CurrentModule> {
    const version = this.nextVersion(name);
    const v: ModuleVersion = {
      version,
      sha256,
      bytes: Buffer.byteLength(source),
      deployedAt: now,
      tasks,
    };
    const prev = this.#entries.get(name);
    const next: BookEntry = { current: version, versions: [...(prev?.versions ?? []), v] };
    if (this.#store !== undefined) {
      if (!this.#store.has(srcKey(sha256)))
        await this.#store.put(srcKey(sha256), Buffer.from(source, 'utf8'));
      const modules: Record<string, BookEntry> = Object.fromEntries(this.#entries);
      modules[name] = next;
      await this.#store.put(INDEX_KEY, Buffer.from(JSON.stringify({ format: 1, modules }), 'utf8'));
    }
    const old = prev?.versions.find((x) => x.version === prev.current);
    this.#entries.set(name, next);
    if (
      old !== undefined &&
      old.sha256 !== sha256 &&
      !this.current().some((m) => m.sha256 === old.sha256)
    )
      this.#sources.delete(old.sha256);
    this.#sources.set(sha256, source);
    this.#log.info(
      { module: `${name}@${String(version)}`, sha256, tasks: tasks.map((t) => t.name) },
      'module deployed',
    );
    return { ...v, name, label: `${name}@${String(version)}`, source };
  }
}

/** Where a relay without a store checks modules. */
export function defaultModuleDir(store: Store | undefined): string {
  return store === undefined
    ? join(tmpdir(), `rtl-modules-${String(process.pid)}`)
    : join(store.path, 'modules');
}
