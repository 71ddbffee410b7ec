/**
 * Reading one setting's value: each kind accepts its typed value (from a JSON file or
 * code) or a string (from env or a flag), and says what it expected when it cannot.
 */
import { homedir } from 'node:os';
import { isCurveKey } from '../curve.js';
import type { Setting } from './schema.js';

export type Coerced<T = unknown> = { ok: true; value: T } | { ok: false; expected: string };

const KiB = 1024;
const MiB = KiB * 1024;
const GiB = MiB * 1024;
const TiB = GiB * 1024;

/** Size units, lower-cased: binary for k/m/g/t and KiB/MiB/…, decimal for kB/MB/…. */
const BYTE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: KiB,
  kib: KiB,
  kb: 1e3,
  m: MiB,
  mib: MiB,
  mb: 1e6,
  g: GiB,
  gib: GiB,
  gb: 1e9,
  t: TiB,
  tib: TiB,
  tb: 1e12,
};

const MS_UNITS: Readonly<Record<string, number>> = { '': 1, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

/** `~` or `~/x` at the start of a path becomes the home directory. */
export function expandHome(path: string, home: string = homedir()): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return home + path.slice(1);
  return path;
}

/** 536870912 → "512 MiB"; sizes that are not whole KiB stay in bytes. */
export function formatBytes(n: number): string {
  for (const [unit, size] of [
    ['TiB', TiB],
    ['GiB', GiB],
    ['MiB', MiB],
    ['KiB', KiB],
  ] as const) {
    if (n >= size && n % size === 0) return `${String(n / size)} ${unit}`;
  }
  return `${String(n)} B`;
}

function rangeText(min: number | undefined, max: number | undefined, fmt: (n: number) => string) {
  if (min !== undefined && max !== undefined) return ` ${fmt(min)}-${fmt(max)}`;
  if (min !== undefined) return ` >= ${fmt(min)}`;
  if (max !== undefined) return ` <= ${fmt(max)}`;
  return '';
}

function inRange(n: number, min: number | undefined, max: number | undefined): boolean {
  return (min === undefined || n >= min) && (max === undefined || n <= max);
}

function toInteger(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isSafeInteger(raw) ? raw : undefined;
  if (typeof raw === 'string' && /^\s*[+-]?\d+\s*$/.test(raw)) {
    const n = Number(raw);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
}

function toNumber(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : undefined;
  if (typeof raw === 'string' && raw.trim() !== '') {
    const n = Number(raw);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** A whole amount with an optional unit ("512MiB", "30s"); undefined when it is not one. */
function toUnits(raw: unknown, units: Readonly<Record<string, number>>): number | undefined {
  if (typeof raw === 'number') return Number.isSafeInteger(raw) && raw >= 0 ? raw : undefined;
  if (typeof raw !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(raw);
  if (!m) return undefined;
  const mult = units[(m[2] ?? '').toLowerCase()];
  if (mult === undefined) return undefined;
  const n = Number(m[1]) * mult;
  return Number.isSafeInteger(n) ? n : undefined;
}

function toBool(raw: unknown): boolean | undefined {
  if (typeof raw === 'boolean') return raw;
  if (raw === 1 || raw === 0) return raw === 1;
  if (typeof raw !== 'string') return undefined;
  const s = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(s)) return true;
  if (['false', '0', 'no', 'off'].includes(s)) return false;
  return undefined;
}

const ok = <T>(value: T): Coerced<T> => ({ ok: true, value });
const bad = (expected: string): Coerced<never> => ({ ok: false, expected });

/** Read `raw` as a value of `setting`, or say what was expected. */
export function coerceSetting(setting: Setting, raw: unknown): Coerced {
  switch (setting.kind) {
    case 'port': {
      const n = toInteger(raw);
      return n !== undefined && n >= 1 && n <= 65535 ? ok(n) : bad('expected a port 1-65535');
    }
    case 'int': {
      const n = toInteger(raw);
      return n !== undefined && inRange(n, setting.min, setting.max)
        ? ok(n)
        : bad('expected an integer' + rangeText(setting.min, setting.max, String));
    }
    case 'number': {
      const n = toNumber(raw);
      return n !== undefined && inRange(n, setting.min, setting.max)
        ? ok(n)
        : bad('expected a number' + rangeText(setting.min, setting.max, String));
    }
    case 'bytes': {
      const n = toUnits(raw, BYTE_UNITS);
      return n !== undefined && inRange(n, setting.min, setting.max)
        ? ok(n)
        : bad(
            'expected a size in bytes' +
              rangeText(setting.min, setting.max, formatBytes) +
              ' (like 1048576, 64k, 512MiB, 1GiB)',
          );
    }
    case 'ms': {
      const n = toUnits(raw, MS_UNITS);
      return n !== undefined && inRange(n, setting.min, setting.max)
        ? ok(n)
        : bad(
            'expected a duration in milliseconds' +
              rangeText(setting.min, setting.max, String) +
              ' (like 60000, 500ms, 30s, 2m)',
          );
    }
    case 'bool': {
      const b = toBool(raw);
      return b !== undefined ? ok(b) : bad('expected true or false');
    }
    case 'string':
      return typeof raw === 'string' ? ok(raw) : bad('expected a string');
    case 'path':
      if (setting.optional === true && raw === '') return ok('');
      return typeof raw === 'string' && raw.trim() !== ''
        ? ok(expandHome(raw))
        : bad(
            setting.optional === true
              ? 'expected a path, or "" for none'
              : 'expected a non-empty path',
          );
    case 'key': {
      const s = typeof raw === 'string' ? raw.trim() : undefined;
      return s !== undefined && (s === '' || isCurveKey(s))
        ? ok(s)
        : bad(
            'expected a CURVE public key (40 Z85 characters, as `rtl keys` prints), or "" for none',
          );
    }
    case 'enum': {
      const s = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
      const v = setting.values.find((value) => value.toLowerCase() === s);
      return v !== undefined ? ok(v) : bad(`expected one of ${setting.values.join(', ')}`);
    }
    case 'url': {
      const protocols = setting.protocols;
      const what = protocols ? `expected a URL (${protocols.join(' ')})` : 'expected a URL';
      if (typeof raw !== 'string') return bad(what);
      let url: URL;
      try {
        url = new URL(raw.trim());
      } catch {
        return bad(what);
      }
      return protocols && !protocols.includes(url.protocol) ? bad(what) : ok(raw.trim());
    }
  }
}
