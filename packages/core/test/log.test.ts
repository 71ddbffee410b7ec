import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  RtlError,
  createLogger,
  effectiveLogLevel,
  loadConfig,
  silentLogger,
  type Logger,
} from '@rtl/core';

/** A destination that keeps every written line (pino's `sink()` idea, synchronous). */
function sink(): { write: (line: string) => void; lines: string[]; json: () => unknown[] } {
  const lines: string[] = [];
  return {
    lines,
    write: (line) => {
      lines.push(line);
    },
    json: () => lines.map((line) => JSON.parse(line) as unknown),
  };
}

describe('createLogger', () => {
  it('writes one JSON object a line, with name, level, message and fields', () => {
    const out = sink();
    const log = createLogger({ name: 'relay', destination: out });
    log.info({ jobId: 'j1', ms: 0.4 }, 'stage completed');
    expect(out.lines).toHaveLength(1);
    expect(out.lines[0]?.endsWith('\n')).toBe(true);
    expect(out.json()[0]).toMatchObject({
      name: 'relay',
      level: 30,
      msg: 'stage completed',
      jobId: 'j1',
      ms: 0.4,
    });
  });

  it('defaults to info and drops less severe lines', () => {
    const out = sink();
    const log = createLogger({ name: 'n', destination: out });
    log.debug('hidden');
    log.info('shown');
    expect(log.level).toBe('info');
    expect(out.json()).toEqual([expect.objectContaining({ msg: 'shown' })]);
  });

  it('honours the level it is given', () => {
    const out = sink();
    const log = createLogger({ name: 'n', level: 'warn', destination: out });
    log.info('hidden');
    log.warn('careful');
    log.error('broken');
    expect(out.json().map((l) => (l as { msg: string }).msg)).toEqual(['careful', 'broken']);

    const verbose = sink();
    const trace = createLogger({ name: 'n', level: 'trace', destination: verbose });
    trace.trace('frame');
    expect(verbose.json()).toEqual([expect.objectContaining({ level: 10, msg: 'frame' })]);
  });

  it('writes debug lines when the config says DEBUG', () => {
    const out = sink();
    const config = loadConfig({ env: { RTL_DEBUG: 'true' } });
    const log = createLogger({ name: 'n', level: effectiveLogLevel(config), destination: out });
    log.debug('per message');
    expect(out.json()).toEqual([expect.objectContaining({ level: 20, msg: 'per message' })]);
  });

  it('carries child bindings on every line', () => {
    const out = sink();
    const log = createLogger({ name: 'relay', destination: out });
    const sched = log.child({ component: 'scheduler' }).child({ jobId: 'j2' });
    sched.info({ node: 'tn-1' }, 'stage sent');
    expect(out.json()[0]).toMatchObject({
      name: 'relay',
      component: 'scheduler',
      jobId: 'j2',
      node: 'tn-1',
      msg: 'stage sent',
    });
  });

  it('serializes errors under err with their code and detail', () => {
    const out = sink();
    const log = createLogger({ name: 'n', destination: out });
    const err = new RtlError('RTL_ERR_STORE', 'map full', { key: 'job/1' });
    log.error({ err }, 'store write failed');
    const line = out.json()[0] as { err: { type: string; message: string; stack: string } };
    expect(line).toMatchObject({
      msg: 'store write failed',
      err: {
        type: 'RtlError',
        message: 'map full',
        code: 'RTL_ERR_STORE',
        detail: { key: 'job/1' },
      },
    });
    expect(line.err.stack).toContain('map full');
  });

  it('writes human-readable lines, synchronously, when pretty', () => {
    const out = sink();
    const log = createLogger({ name: 'tasknode', destination: out, pretty: true });
    log.warn({ peer: 'p1' }, 'bad frame');
    expect(out.lines).toHaveLength(1);
    const line = out.lines[0] ?? '';
    expect(() => JSON.parse(line) as unknown).toThrow();
    expect(line).toContain('WARN');
    expect(line).toContain('tasknode');
    expect(line).toContain('bad frame');
    expect(line).toContain('peer: "p1"');
    expect(line).not.toContain('\u001b['); // no colour codes into a destination
  });

  it('rejects an unknown level with RTL_ERR_CONFIG', () => {
    expect(() => createLogger({ name: 'n', level: 'loud', destination: sink() })).toThrow(
      expect.objectContaining({
        code: 'RTL_ERR_CONFIG',
        message: expect.stringContaining('loud') as unknown,
      }),
    );
    expect(() => createLogger({ name: 'n', level: 'loud', destination: sink() })).toThrow(RtlError);
  });

  it("is typed as pino's Logger", () => {
    expectTypeOf(createLogger).returns.toEqualTypeOf<Logger>();
    expectTypeOf<Logger['child']>().toBeFunction();
  });
});

describe('silentLogger', () => {
  it('writes nothing at any level and still makes children', () => {
    const log = silentLogger();
    expect(log.level).toBe('silent');
    expect(log.isLevelEnabled('fatal')).toBe(false);
    const child = log.child({ component: 'x' });
    expect(child.isLevelEnabled('error')).toBe(false);
    expect(() => {
      child.fatal('nothing');
    }).not.toThrow();
  });
});
