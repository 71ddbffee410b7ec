import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ERROR_CODES,
  SETTINGS,
  SETTING_NAMES,
  loadConfig,
  renderConfigDoc,
  renderDefaultConfig,
  renderErrorsDoc,
  type ErrorCode,
} from '@rtl/core';

const root = new URL('../../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8');
const regenerate = 'regenerate with `npm run docs`';

/** The rows of a generated markdown table, as cells, keyed by the first cell's code span. */
function tableRows(markdown: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of markdown.split('\n')) {
    const m = /^\| `([A-Z_]+)` \|(.*)\|$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) {
      rows.set(
        m[1],
        m[2].split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|')),
      );
    }
  }
  return rows;
}

describe('config/default.json', () => {
  const defaults = JSON.parse(read('config/default.json')) as Record<string, unknown>;

  it('has exactly the settings of SETTINGS, in table order', () => {
    expect(Object.keys(defaults)).toEqual(SETTING_NAMES);
  });

  it("holds each setting's default", () => {
    for (const name of SETTING_NAMES) expect(defaults[name], name).toEqual(SETTINGS[name].default);
  });

  it('is what the generator writes', () => {
    expect(read('config/default.json'), regenerate).toBe(renderDefaultConfig());
  });
});

describe('config/example.json', () => {
  it('loads cleanly and moves the ports', () => {
    const file = new URL('config/example.json', root).pathname;
    expect(loadConfig({ file, env: {} })).toMatchObject({
      STARTING_PORT: 20000,
      RELAY_RECV: 20000,
      RELAY_SEND: 20001,
      RELAY_PUBLISHER: 20300,
      PLOT_LISTEN: 20006,
      CACHE_MAP_SIZE: 2 ** 30,
      RESPONSE_TIME: 120_000,
    });
  });
});

describe('docs/config.md', () => {
  it('is what the generator writes', () => {
    expect(read('docs/config.md'), regenerate).toBe(renderConfigDoc());
  });

  it('has one row per setting with its env var, flag and doc line', () => {
    const rows = tableRows(read('docs/config.md'));
    expect([...rows.keys()]).toEqual(SETTING_NAMES);
    for (const name of SETTING_NAMES) {
      const [kind, , env, flag, meaning] = rows.get(name) ?? [];
      expect(kind, name).toContain(SETTINGS[name].kind);
      expect(env).toBe(`\`RTL_${name}\``);
      expect(flag).toBe(`\`--${name.toLowerCase().replaceAll('_', '-')}\``);
      expect(meaning).toBe(SETTINGS[name].doc);
    }
  });

  it('states the precedence of the sources', () => {
    const doc = read('docs/config.md');
    const order = ['config/default.json', 'RTL_CONFIG', 'RTL_<NAME>', '--relay-recv 19100'];
    const at = order.map((s) => doc.indexOf(s));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
  });
});

describe('docs/errors.md', () => {
  it('is what the generator writes', () => {
    expect(read('docs/errors.md'), regenerate).toBe(renderErrorsDoc());
  });

  it('has one row per registered code with its meaning, fix and retry flag', () => {
    const rows = tableRows(read('docs/errors.md'));
    const codes = Object.keys(ERROR_CODES) as ErrorCode[];
    expect([...rows.keys()]).toEqual(codes);
    for (const code of codes) {
      const info = ERROR_CODES[code];
      expect(rows.get(code), code).toEqual([info.meaning, info.fix, info.retry ? 'yes' : 'no']);
    }
  });
});
