/**
 * open / write errors say what to fix: the stage, the task as written, the parameter for a
 * parameter problem, and for a bad file its name and the byte offset or line.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CompressionType, compressionRegistry, tableFromArrays, tableToIPC } from 'apache-arrow';
import type { Table } from 'apache-arrow';
import { RtlError, emptyTable } from '@rtl/core';
import { createBundledRegistry, tableToNpy } from '@rtl/tasks';
import { buildTable, randomColumns } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rtl-io-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const registry = createBundledRegistry();

function run(task: string, params: Record<string, unknown>, input: Table = emptyTable()) {
  return registry.runStage(input, [{ task, params }], { stage: '2' });
}

/** The RtlError `p` rejects with (fails the test when it resolves). */
async function failure(p: Promise<unknown>): Promise<RtlError> {
  const err: unknown = await p.then(
    () => new Error('expected a rejection, but the stage ran'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RtlError);
  return err as RtlError;
}

async function openFails(filename: string, extension: string, extra: Record<string, unknown> = {}) {
  return failure(run('task_open_array', { filename, path: dir, extension, ...extra }));
}

function file(name: string, bytes: Uint8Array | string): string {
  const f = join(dir, name);
  writeFileSync(f, bytes);
  return f;
}

const npyHeader = (dict: string, version = 1): Buffer => {
  const pre = version === 1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  const out = Buffer.alloc(total, 0x20);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  if (version === 1) out.writeUInt16LE(total - pre, 8);
  else out.writeUInt32LE(total - pre, 8);
  out.write(dict, pre, 'latin1');
  out[total - 1] = 0x0a;
  return out;
};

describe('missing files name the directory searched', () => {
  it('a missing file: param filename, the directory, the files of that extension there', async () => {
    file('present.npy', tableToNpy(tableFromArrays({ x: new Float64Array(2) })));
    const err = await openFails('presnt', 'npy');
    expect(err.code).toBe('RTL_ERR_BAD_PARAM');
    expect(err.detail).toMatchObject({
      stage: '2',
      task: 'task_open_array',
      param: 'filename',
      file: join(dir, 'presnt.npy'),
    });
    expect(err.message).toContain('stage "2", task "task_open_array", param "filename"');
    expect(err.message).toContain(`no such file in the directory "${dir}"`);
    expect(err.message).toContain('present.npy');
    expect(err.message).toContain('did you mean "present.npy"?');
  });

  it('the extension written twice', async () => {
    const err = await openFails('present.npy', 'npy');
    expect(err.message).toContain(
      'the extension is added to the filename, so give it as "present"',
    );
  });

  it('a directory that does not exist: param path', async () => {
    const err = await failure(
      run('open', { filename: 'x', path: join(dir, 'nope', 'deeper'), extension: 'csv' }),
    );
    expect(err.code).toBe('RTL_ERR_BAD_PARAM');
    expect(err.detail).toMatchObject({ stage: '2', task: 'open', param: 'path' });
    expect(err.message).toContain(`the directory "${join(dir, 'nope', 'deeper')}" does not exist`);
  });

  it('a .dat without its .meta names the .meta it looked for', async () => {
    file('lonely.dat', new Uint8Array(16));
    const err = await openFails('lonely', 'dat');
    expect(err.code).toBe('RTL_ERR_BAD_DATA');
    expect(err.detail.file).toBe(join(dir, 'lonely.meta'));
    expect(err.message).toContain(`file "${join(dir, 'lonely.meta')}": not found`);
    expect(err.message).toContain("[('x', '<f8'), ('y', '<i8')]");
  });

  it('a directory where the file should be', async () => {
    mkdirSync(join(dir, 'adir.csv'));
    const err = await openFails('adir', 'csv');
    expect(err.code).toBe('RTL_ERR_BAD_PARAM');
    expect(err.message).toContain('is a directory, not a file');
  });
});

describe('.npy files that do not match their header', () => {
  it.each([
    [
      'not a .npy file',
      Buffer.from('PK\x03\x04 zip'),
      'expected the magic "\\x93NUMPY" at byte 0, found byte 0x50 at byte 0',
      0,
    ],
    [
      'a wrong magic byte',
      Buffer.from('\x93NUMPX\x01\x00', 'latin1'),
      'found byte 0x58 at byte 5',
      5,
    ],
    [
      'a file shorter than the magic',
      Buffer.from('\x93NU', 'latin1'),
      'the file ends after 3 bytes',
      3,
    ],
    [
      'an unknown version',
      Buffer.from('\x93NUMPY\x04\x00\x10\x00', 'latin1'),
      'format version 4.0 is not supported',
      6,
    ],
  ])('%s', async (_, bytes, message, offset) => {
    const f = file('bad.npy', bytes);
    const err = await openFails('bad', 'npy');
    expect(err.code).toBe('RTL_ERR_BAD_DATA');
    expect(err.message).toContain(
      `stage "2", task "task_open_array": file "${f}", byte ${offset}: `,
    );
    expect(err.message).toContain(message);
    expect(err.detail).toMatchObject({ file: f, offset, stage: '2' });
  });

  it('a header that is not a dict literal: the byte offset of the syntax error', async () => {
    const dict = "{'descr': '<f8' 'fortran_order': False, 'shape': (3,), }";
    const f = file('syntax.npy', npyHeader(dict));
    const err = await openFails('syntax', 'npy');
    expect(err.message).toContain(
      `file "${f}", byte ${10 + dict.indexOf(" 'fortran") + 1}: the header is not a Python dict literal`,
    );
    expect(err.message).toContain('expected "," or "}"');
  });

  it.each([
    ["{'descr': '<f8', 'shape': (3,), }", "the header dict lacks 'fortran_order'"],
    [
      "{'descr': '<U8', 'fortran_order': False, 'shape': (3,), }",
      "byte 21: header 'descr' is not a dtype rtl can read: '<U8': unicode strings cannot be read as a column",
    ],
    ["{'descr': [('x', '<f8', (2,))], 'fortran_order': False, 'shape': (3,), }", 'subarray fields'],
    [
      "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2, 2), }",
      'an array of shape (2, 2, 2) with dtype',
    ],
    [
      "{'descr': '<c16', 'fortran_order': False, 'shape': (3,), }",
      'complex numbers cannot be read',
    ],
  ])('header %s', async (dict, message) => {
    const f = file('hdr.npy', Buffer.concat([npyHeader(dict), Buffer.alloc(64)]));
    const err = await openFails('hdr', 'npy');
    expect(err.code).toBe('RTL_ERR_BAD_DATA');
    expect(err.message).toContain(`file "${f}", byte `);
    expect(err.message).toContain(message);
  });

  it('truncated data: expected and found byte counts for the records', async () => {
    const header = npyHeader(
      "{'descr': [('x', '<f8'), ('y', '<i8')], 'fortran_order': False, 'shape': (10,), }",
    );
    const f = file('short.npy', Buffer.concat([header, Buffer.alloc(100)]));
    const err = await openFails('short', 'npy');
    expect(err.message).toContain(
      `file "${f}", byte ${header.length + 100}: truncated: expected 160 bytes of data from byte ${header.length} for 10 items of 16 bytes`,
    );
    expect(err.message).toContain('got 100');
  });

  it('a header longer than the file', async () => {
    const f = file(
      'cut.npy',
      npyHeader("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }").subarray(0, 40),
    );
    const err = await openFails('cut', 'npy');
    expect(err.message).toContain(
      `file "${f}", byte 40: truncated: the header is 118 bytes from byte 10`,
    );
  });
});

describe('.dat and .meta that do not match', () => {
  it('a partial last record: offset and sizes', async () => {
    const f = file('part.dat', new Uint8Array(16 * 3 + 5));
    file('part.meta', "[('x', '<f8'), ('y', '<i8')]");
    const err = await openFails('part', 'dat');
    expect(err.code).toBe('RTL_ERR_BAD_DATA');
    expect(err.message).toContain(
      `file "${f}", byte 48: truncated: expected a whole number of 16-byte records`,
    );
    expect(err.message).toContain(
      'got 53 bytes: 3 records, then 5 bytes of a last record from byte 48',
    );
    expect(err.detail.offset).toBe(48);
  });

  it.each([
    ["[('x', '<f8'), ('y' '<i8')]", 20, 'expected "," or ")"'],
    ["\n  [('x', '<f8'), ('y', '<q9')]", 25, "'<q9': type kind 'q' cannot be read"],
    ["[('x', '<f8'), ('x', '<i8')]", 0, "field name 'x' appears twice"],
    ['[]', 0, 'a structured dtype without fields'],
    ['<f3', 0, 'no 3-byte float type'],
    ["[('x', 'f8'), ('s', 'S10')]", 21, "'S10': byte strings cannot be read as a column"],
  ])(
    'meta %j: names the .meta file, the offset and what was expected',
    async (meta, offset, message) => {
      file('m.dat', new Uint8Array(16));
      const metaFile = file('m.meta', meta);
      const err = await openFails('m', 'dat');
      expect(err.code).toBe('RTL_ERR_BAD_DATA');
      expect(err.message).toContain(
        `file "${metaFile}", byte ${offset}: expected a NumPy dtype such as [('x', '<f8'), ('y', '<i8')] or '<f8'`,
      );
      expect(err.message).toContain(message);
    },
  );
});

describe('.arrow files that are not whole', () => {
  const bytes = tableToIPC(tableFromArrays({ x: new Float64Array(100) }), 'file');

  it('truncated: the magic is missing at the end', async () => {
    const f = file('cut.arrow', bytes.subarray(0, bytes.length - 20));
    const err = await openFails('cut', 'arrow');
    expect(err.code).toBe('RTL_ERR_BAD_DATA');
    expect(err.message).toContain(
      `file "${f}", byte ${bytes.length - 20}: truncated: the file starts with the Arrow file magic "ARROW1" but does not end with it`,
    );
  });

  const stream = tableToIPC(
    tableFromArrays({ x: new Float64Array(100), y: new Int32Array(100) }),
    'stream',
  );

  it('a stream cut inside a message body', async () => {
    const f = file('cut-stream.arrow', stream.subarray(0, stream.length - 300));
    const err = await openFails('cut-stream', 'arrow');
    expect(err.code).toBe('RTL_ERR_BAD_DATA');
    expect(err.message).toMatch(
      new RegExp(
        `file "${f}", byte \\d+: truncated: the message at byte \\d+ has a body of \\d+ bytes, the file ends at byte ${stream.length - 300}`,
      ),
    );
  });

  it('a stream whose message was zeroed (arrow-js alone would return no rows)', async () => {
    const damaged = stream.slice();
    damaged.fill(0, 100, 200);
    const f = file('zeroed.arrow', damaged);
    const err = await openFails('zeroed', 'arrow');
    expect(err.message).toContain(
      `file "${f}", byte 184: damaged: an end-of-stream marker at byte 184, but`,
    );
  });

  it('a file whose record batch was damaged: the batch and its offset from the footer', async () => {
    const damaged = bytes.slice();
    damaged.fill(0, 8, 12);
    const f = file('hurt.arrow', damaged);
    const err = await openFails('hurt', 'arrow');
    expect(err.message).toContain(
      `file "${f}", byte 8: record batch 0 of the 1 its footer lists cannot be read`,
    );
  });

  it('compressed record batches (no codec): says how to save it uncompressed', async () => {
    // A "codec" writing LZ4 frames of stored (uncompressed) blocks lets arrow-js write the
    // compressed layout; then it is removed again.
    const frame = (b: Uint8Array): Uint8Array => {
      const size = Buffer.alloc(4);
      size.writeUInt32LE((b.length | 0x80000000) >>> 0);
      return Buffer.concat([
        Buffer.from([4, 34, 77, 24, 0x60, 0x40, 0x82]),
        size,
        b,
        Buffer.alloc(4),
      ]);
    };
    compressionRegistry.set(CompressionType.LZ4_FRAME, { encode: frame });
    let packed: Uint8Array;
    try {
      packed = tableToIPC(
        tableFromArrays({ x: new Float64Array(10) }),
        'file',
        CompressionType.LZ4_FRAME,
      );
    } finally {
      compressionRegistry.set(CompressionType.LZ4_FRAME, {});
    }
    const f = file('packed.feather', packed);
    const err = await openFails('packed', 'feather');
    expect(err.code).toBe('RTL_ERR_BAD_DATA');
    expect(err.message).toContain(`file "${f}": its record batches are compressed`);
    expect(err.message).toContain("compression='uncompressed'");
  });

  it.each([
    ['not Arrow', Buffer.from('a,b\n1,2\n'), 'not an Arrow IPC file: expected the magic "ARROW1"'],
    ['Feather v1', Buffer.from('FEA1\0\0\0\0'), 'Feather v1 file'],
    ['empty', Buffer.alloc(0), 'the file is empty'],
  ])('%s', async (_, content, message) => {
    const f = file('no.feather', content);
    const err = await openFails('no', 'feather');
    expect(err.message).toContain(`file "${f}", byte 0: `);
    expect(err.message).toContain(message);
  });
});

describe('CSV problems name the line', () => {
  it.each([
    [
      'too few fields',
      'a,b,c\n1,2,3\n4,5\n',
      'line 3, byte 12: expected 3 fields (as the header has), got 2',
    ],
    [
      'too many fields',
      'a,b\n1,2\n\n3,4,5,6\n',
      'line 4, byte 9: expected 2 fields (as the header has), got 4',
    ],
    [
      'a count after a quoted line end',
      'a,b\n"x\ny",1\n"z",2,3\n',
      'line 4, byte 12: expected 2 fields',
    ],
    [
      'an unclosed quote',
      'a,b\n1,2\n"open,3\n',
      'line 3, byte 8: field 1 opens a quote that is never closed',
    ],
    [
      'junk after a closing quote',
      'a,b\n"x"y,1\n',
      'line 2, byte 7: field 1: unexpected "y,1" after the closing quote',
    ],
    ['an empty file', '', 'line 1, byte 0: the file is empty; expected a header row'],
    [
      'a repeated column name',
      'a,b,a\n1,2,3\n',
      'line 1, byte 0: the header names column "a" twice (fields 1 and 3)',
    ],
  ])('%s', async (_, text, message) => {
    const f = file('e.csv', text);
    const err = await openFails('e', 'csv');
    expect(err.code).toBe('RTL_ERR_BAD_DATA');
    expect(
      err.message.startsWith(`stage "2", task "task_open_array": file "${f}", ${message}`),
      err.message,
    ).toBe(true);
    expect(err.detail).toMatchObject({ file: f, stage: '2', task: 'task_open_array' });
  });

  it('a headerless CSV whose field is not a number of the .meta type', async () => {
    const f = file('hl.csv', '1,2\n3,x\n');
    file('hl.meta', "[('a', '<f8'), ('b', '<i8')]");
    const err = await openFails('hl', 'csv');
    expect(err.message).toContain(
      `file "${f}", line 2, byte 6: field 2 ("x") is not a number; the .meta dtype says column "b" is <i8`,
    );
  });

  it('a headerless CSV with a fraction in an integer column', async () => {
    const f = file('hf.csv', '1,2\n3,4.5\n');
    file('hf.meta', "[('a', '<f8'), ('b', '<i4')]");
    const err = await openFails('hf', 'csv');
    expect(err.message).toContain(`file "${f}": data row 2, column "b": 4.5 is not a <i4 integer`);
  });
});

describe('parameter errors name stage, task and parameter', () => {
  it.each([
    [
      { filename: 'x', extension: 'xlsx' },
      'extension',
      'expected one of "dat", "csv", "npy", "arrow", "feather", got "xlsx"',
    ],
    [{ filename: 'x', extension: 'csvv' }, 'extension', 'did you mean "csv"?'],
    [{ filename: '', extension: 'csv' }, 'filename', 'expected a non-empty string'],
    [{ extension: 'csv' }, 'filename', 'missing'],
    [
      { filename: 'x', extension: 'csv', delimiter: ';;' },
      'delimiter',
      'expected one ASCII character',
    ],
    [{ filename: 'x', extension: 'csv', delimiter: '"' }, 'delimiter', 'the quote character'],
    [
      { filename: 'x', extension: 'csv', delimiter: '.' },
      'delimiter',
      '"." can be part of a number',
    ],
    [{ filename: 'x', extension: 'csv', delimiter: 9 }, 'delimiter', 'got 9'],
    [{ filename: 'x', extension: 'csv', path: 3 }, 'path', 'expected a string, got 3'],
    [
      { filename: 'x', extension: 'csv', delim: ',' },
      'delim',
      'Parameters are filename, path, extension, delimiter',
    ],
  ])('%j', async (params, param, message) => {
    for (const task of ['task_open_array', 'task_write', 'array_write']) {
      const err = await failure(run(task, params));
      expect(err.code).toBe('RTL_ERR_BAD_PARAM');
      expect(err.detail).toMatchObject({ stage: '2', task, param });
      expect(err.message).toContain(`stage "2", task "${task}", param "${param}": `);
      expect(err.message).toContain(message);
    }
  });

  it('a delimiter of null (as raspi-rtl documents write) means ","', async () => {
    file('nd.csv', 'a,b\n1,2\n');
    const { table } = await run('open_array', {
      filename: 'nd',
      path: dir,
      extension: 'csv',
      delimiter: null,
    });
    expect(table.numRows).toBe(1);
  });
});

describe('write refuses what the format cannot hold', () => {
  const cols = randomColumns(50, 3, 0.2);
  const table = buildTable(cols, [20, 30]);

  it('text columns in .npy / .dat', async () => {
    for (const extension of ['npy', 'dat']) {
      const err = await failure(
        run('task_write', { filename: 'w', path: dir, extension }, table.select(['f64', 'name'])),
      );
      expect(err.code).toBe('RTL_ERR_BAD_DATA');
      expect(err.message).toContain(
        `stage "2", task "task_write": file "${join(dir, `w.${extension}`)}": column "name" is Utf8; .npy and .dat files hold number and bool columns only`,
      );
    }
  });

  it('a null in an integer column: names the column and the row', async () => {
    const i32 = cols.find((c) => c.name === 'i32')?.values ?? [];
    const firstNull = i32.indexOf(null);
    expect(firstNull).toBeGreaterThanOrEqual(0);
    const err = await failure(
      run('write', { filename: 'w', path: dir, extension: 'npy' }, table.select(['f64', 'i32'])),
    );
    expect(err.message).toContain(
      `column "i32" (Int32) is null at row ${firstNull}; .npy and .dat files cannot mark a missing integer`,
    );
  });

  it('a path through a file: param path', async () => {
    file('plain', 'x');
    const err = await failure(
      run('write', { filename: 'w', path: join(dir, 'plain', 'sub'), extension: 'csv' }, table),
    );
    expect(err.code).toBe('RTL_ERR_BAD_PARAM');
    expect(err.detail).toMatchObject({ stage: '2', task: 'write', param: 'path' });
    expect(err.message).toContain('cannot write it');
  });
});
