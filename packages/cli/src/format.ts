/** Text output: aligned tables, durations, milliseconds, cell values. */

import { closest } from '@rtl/core';

export interface TableOptions {
  /** Columns (by index) aligned to the right; numbers read better that way. */
  readonly right?: readonly number[];
  /** Prefix of every line. */
  readonly indent?: string;
}

/**
 * Lay out rows under headers, columns padded to their widest cell.
 *
 * @example
 * renderTable(['NAME', 'PID'], [['relay', '12']]); // ['NAME   PID', 'relay  12']
 */
export function renderTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  opts: TableOptions = {},
): string[] {
  const right = new Set(opts.right ?? []);
  const indent = opts.indent ?? '';
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    indent +
    cells
      .map((c, i) => {
        const w = widths[i] ?? 0;
        if (i === cells.length - 1 && !right.has(i)) return c;
        return right.has(i) ? c.padStart(w) : c.padEnd(w);
      })
      .join('  ');
  return [line(headers), ...rows.map(line)];
}

/** 0.4 → "0.40 ms". */
export function formatMs(ms: number): string {
  return `${ms.toFixed(2)} ms`;
}

/** 192_000 → "3m 12s"; 950 → "950 ms". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${String(Math.round(ms))} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${String(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${String(m)}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${String(h)}h ${String(m % 60).padStart(2, '0')}m`;
  return `${String(Math.floor(h / 24))}d ${String(h % 24).padStart(2, '0')}h`;
}

/**
 * A table cell: numbers exactly as JavaScript prints them (so 0.1 + 0.2 shows as
 * 0.30000000000000004: the preview hides no rounding), null as "null".
 */
export function formatCell(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (ArrayBuffer.isView(value) || Array.isArray(value)) return JSON.stringify(toJsonValue(value));
  return JSON.stringify(toJsonValue(value));
}

/** A value JSON can hold: bigints become numbers when exact, else strings; views become arrays. */
export function toJsonValue(value: unknown): unknown {
  if (typeof value === 'bigint') {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : value.toString();
  }
  if (value instanceof Date) return value.toISOString();
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(value as unknown as ArrayLike<unknown>, toJsonValue);
  }
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (typeof value === 'object' && value !== null) {
    const maybe = value as { toJSON?: () => unknown };
    if (typeof maybe.toJSON === 'function') return toJsonValue(maybe.toJSON());
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJsonValue(v);
    return out;
  }
  return value;
}

/** "1 row" / "3 rows". */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${String(n)} ${n === 1 ? word : many}`;
}

/** The closest of `names` to `word` by edit distance, when it is close enough to be a typo. */
export function suggest(word: string, names: readonly string[]): string | undefined {
  return closest(word, names);
}
