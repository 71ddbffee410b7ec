/**
 * CSV reading: quoted fields, empty fields, line ends, number forms, text columns, the
 * headerless raspi-rtl form with a .meta, and number parsing that matches Number() exactly.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Table } from 'apache-arrow';
import { readTableFile, tableFromCsv } from '@rtl/tasks';
import type { CsvReadOptions } from '@rtl/tasks';
import { cellsOf, firstMismatch, rng } from './helpers.js';
import type { Cell } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rtl-io-csv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function csv(text: string, opts: CsvReadOptions = {}): Table {
  return tableFromCsv(Buffer.from(text, 'utf8'), 'test.csv', opts);
}

function columns(t: Table): Record<string, Cell[]> {
  return Object.fromEntries(t.schema.fields.map((f) => [f.name, cellsOf(t, f.name)]));
}

function types(t: Table): string[] {
  return t.schema.fields.map((f) => `${f.name}:${String(f.type)}`);
}

describe('records and fields', () => {
  it.each([
    ['\\n, with a trailing line end', 'a,b\n1,2\n3,4\n'],
    ['\\n, without one', 'a,b\n1,2\n3,4'],
    ['\\r\\n, with one', 'a,b\r\n1,2\r\n3,4\r\n'],
    ['\\r\\n, without one', 'a,b\r\n1,2\r\n3,4'],
    ['\\r alone', 'a,b\r1,2\r3,4\r'],
    ['blank lines anywhere', '\n\na,b\n\n1,2\r\n\r\n3,4\n\n\n'],
    ['a UTF-8 byte-order mark', '\ufeffa,b\n1,2\n3,4\n'],
    ['spaces around numbers', 'a , b\n 1 ,\t2\n3,  4  \n'],
  ])('line ends: %s', (_, text) => {
    const t = csv(text);
    expect(types(t)).toEqual(['a:Float64', 'b:Float64']);
    expect(columns(t)).toEqual({ a: [1, 3], b: [2, 4] });
  });

  it('quoted fields: delimiters, "" escapes and line ends inside; quoted numbers are numbers', () => {
    const t = csv(
      'name,n,note\n"Smith, J",1,"say ""hi"""\n"two\nlines","2","a\r\nb"\nplain,"-3.5e1",""\n',
    );
    expect(types(t)).toEqual(['name:Utf8', 'n:Float64', 'note:Utf8']);
    expect(columns(t)).toEqual({
      name: ['Smith, J', 'two\nlines', 'plain'],
      n: [1, 2, -35],
      note: ['say "hi"', 'a\r\nb', ''],
    });
  });

  it('empty fields: null in number columns; in text columns null, and "" is the empty string', () => {
    const t = csv('x,y,s\n1,,a\n,2,\n,,""\n4,5,  \n');
    expect(types(t)).toEqual(['x:Float64', 'y:Float64', 's:Utf8']);
    expect(columns(t)).toEqual({
      x: [1, null, null, 4],
      y: [null, 2, null, 5],
      s: ['a', null, '', null],
    });
    expect(t.getChild('x')?.nullCount).toBe(2);
  });

  it('a column with one non-number becomes text, every field verbatim (not reformatted)', () => {
    const t = csv('a,b\n1.50,1\n2e3,2\n-0,3\nN/A,4\n');
    expect(types(t)).toEqual(['a:Utf8', 'b:Float64']);
    expect(columns(t).a).toEqual(['1.50', '2e3', '-0', 'N/A']);
  });

  it('header names: trimmed, quoted names kept as written, empty names become c<index>', () => {
    const t = csv(' a ,"b, c",,"" \n1,2,3,4\n');
    expect(t.schema.fields.map((f) => f.name)).toEqual(['a', 'b, c', 'c2', 'c3']);
  });

  it.each([
    [';', 'a;b\n1,5;2\n'],
    ['\t', 'a\tb\n1,5\t2\n'],
    ['|', 'a|b\n1,5|2\n'],
    [' ', 'a b\n1,5 2\n'],
  ])('delimiter %j (a comma is then data)', (delimiter, text) => {
    const t = csv(text, { delimiter });
    expect(columns(t)).toEqual({ a: ['1,5'], b: [2] });
  });

  it('a header and no rows: zero rows of Float64 columns', () => {
    const t = csv('a,b\n');
    expect(t.numRows).toBe(0);
    expect(types(t)).toEqual(['a:Float64', 'b:Float64']);
  });

  it('many rows: the row estimate grows (short first row, long rows after)', () => {
    const lines = ['a,b', '1,2'];
    for (let i = 0; i < 20_000; i++) lines.push(`${i * 123456.789},${-i}.000000000001`);
    const t = csv(lines.join('\n'));
    expect(t.numRows).toBe(20_001);
    expect(cellsOf(t, 'a')[20_000]).toBe(19_999 * 123456.789);
    expect(cellsOf(t, 'b')[20_000]).toBe(Number('-19999.000000000001'));
  });
});

describe('numbers', () => {
  it('decimal forms, signs, exponents, nan and inf in any case', () => {
    const fields = [
      '0',
      '-0',
      '+7',
      '.5',
      '7.',
      '-1.5e-3',
      '1E+5',
      '6.02214076e23',
      '1e400',
      '-1e400',
      '4.9e-324',
      '1e-400',
      '9007199254740993',
      '123456789012345678901234567890',
      '0.1',
      '0.30000000000000004',
      'nan',
      'NaN',
      '-nan',
      'inf',
      '-Inf',
      'Infinity',
      '-infinity',
      '00012',
      '1.7976931348623157e308',
    ];
    const t = csv(`v\n${fields.join('\n')}\n`);
    expect(types(t)).toEqual(['v:Float64']);
    const want = fields.map((f) => {
      const low = f.toLowerCase().replace(/^[+-]/, '');
      if (low === 'nan') return NaN;
      if (low === 'inf' || low === 'infinity') return f.startsWith('-') ? -Infinity : Infinity;
      return Number(f);
    });
    expect(firstMismatch(cellsOf(t, 'v'), want)).toBeUndefined();
  });

  it.each([
    ['1e'],
    ['1.2.3'],
    ['--1'],
    ['0x10'],
    ['1_000'],
    ['e5'],
    ['.'],
    ['-'],
    ['1e5x'],
    ['١٢'],
  ])('%j is text, not a number', (field) => {
    const t = csv(`v,w\n1,1\n${field},2\n`);
    expect(types(t)).toEqual(['v:Utf8', 'w:Float64']);
    expect(cellsOf(t, 'v')).toEqual(['1', field]);
  });

  it('300 000 random decimals of 1 to 25 digits parse exactly as Number() does', () => {
    const r = rng(99);
    const fields: string[] = [];
    for (let i = 0; i < 300_000; i++) {
      const kind = i % 4;
      const x = r() * 10 ** Math.floor(r() * 40 - 20) * (r() < 0.5 ? -1 : 1);
      if (kind === 0) fields.push(String(x));
      else if (kind === 1) fields.push(x.toExponential(Math.floor(r() * 20)));
      else if (kind === 2) fields.push(x.toPrecision(1 + Math.floor(r() * 21)));
      else {
        let digits = '';
        const len = 1 + Math.floor(r() * 25);
        for (let k = 0; k < len; k++) digits += String(Math.floor(r() * 10));
        const dot = Math.floor(r() * (len + 1));
        const exp = r() < 0.5 ? '' : `e${Math.floor(r() * 60) - 30}`;
        fields.push(`${r() < 0.3 ? '-' : ''}${digits.slice(0, dot)}.${digits.slice(dot)}${exp}`);
      }
    }
    // Halfway cases just above 2^53, 2^54, 2^60 (ties to even).
    for (let k = 0; k < 500; k++) {
      fields.push(String(2n ** 53n + BigInt(2 * k + 1)));
      fields.push(String(2n ** 54n + BigInt(4 * k + 2)));
      fields.push(String(2n ** 60n + BigInt(128 * k + 64)));
      fields.push(`${String(2n ** 53n + BigInt(2 * k + 1))}e-5`);
    }
    const t = csv(`v\n${fields.join('\n')}\n`);
    expect(firstMismatch(cellsOf(t, 'v'), fields.map(Number))).toBeUndefined();
  });
});

describe("raspi-rtl's headerless CSV with a .meta beside it", () => {
  it('names and types come from the .meta when the first line is numbers', () => {
    writeFileSync(join(dir, 'h.csv'), '1.5,2,1\n-3,-4,0\n');
    writeFileSync(join(dir, 'h.meta'), "[('x', '<f8'), ('n', '<i8'), ('ok', '|b1')]");
    const t = readTableFile(join(dir, 'h.csv'), 'csv');
    expect(types(t)).toEqual(['x:Float64', 'n:Int64', 'ok:Bool']);
    expect(columns(t)).toEqual({ x: [1.5, -3], n: [2n, -4n], ok: [true, false] });
  });

  it('a header row wins over a .meta', () => {
    writeFileSync(join(dir, 'hh.csv'), 'a,b\n1,2\n');
    writeFileSync(join(dir, 'hh.meta'), "[('x', '<f8'), ('y', '<f8')]");
    expect(types(readTableFile(join(dir, 'hh.csv'), 'csv'))).toEqual(['a:Float64', 'b:Float64']);
  });

  it('integers of every width, and floats of 4 bytes', () => {
    const t = csv('-128,65535,-7,3.5\n127,0,9007199254740991,-1e-3\n', {
      layout: {
        simple: false,
        itemsize: 0,
        fields: [
          { name: 'a', type: { kind: 'i', size: 1, bigEndian: false }, offset: 0 },
          { name: 'b', type: { kind: 'u', size: 2, bigEndian: false }, offset: 0 },
          { name: 'c', type: { kind: 'i', size: 8, bigEndian: false }, offset: 0 },
          { name: 'd', type: { kind: 'f', size: 4, bigEndian: false }, offset: 0 },
        ],
      },
    });
    expect(types(t)).toEqual(['a:Int8', 'b:Uint16', 'c:Int64', 'd:Float32']);
    expect(columns(t)).toEqual({
      a: [-128, 127],
      b: [65535, 0],
      c: [-7n, 9007199254740991n],
      d: [3.5, Math.fround(-1e-3)],
    });
  });
});
