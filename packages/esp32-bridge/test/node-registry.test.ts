import { describe, expect, it } from 'vitest';
import { NodeRegistry } from '../src/index.js';

describe('NodeRegistry (injected clock)', () => {
  it('[E-2.3] alive while online and heard within liveness x beat; retained-only is not heard', () => {
    let now = 1_000;
    const reg = new NodeRegistry(3 * 100, () => now);
    expect(
      reg.hello('n1', { v: 1, tasks: ['a'], max_input: 10 }, false).map((c) => c.type),
    ).toEqual(['joined', 'hello']);
    expect(reg.status('n1', { v: 1, state: 'online' }, false).map((c) => c.type)).toEqual([
      'online',
    ]);
    expect(reg.get('n1')).toMatchObject({ online: true, alive: false, lastSeen: null });
    expect(reg.beat('n1', { v: 1, mem_free: 5, busy: true }).map((c) => c.type)).toEqual(['alive']);
    expect(reg.get('n1')).toMatchObject({ alive: true, lastSeen: 1_000, memFree: 5, busy: true });
    now += 299;
    expect(reg.tick()).toEqual([]);
    now += 1;
    expect(reg.tick()).toEqual([{ type: 'dead', id: 'n1' }]);
    expect(reg.touch('n1')).toEqual([{ type: 'alive', id: 'n1' }]);
    expect(reg.status('n1', { v: 1, state: 'offline' }, true).map((c) => c.type)).toEqual([
      'offline',
      'dead',
    ]);
    expect(reg.list().map((n) => n.id)).toEqual(['n1']);
  });

  it('[E-2.1] takes the fields it knows and ignores junk in them', () => {
    const reg = new NodeRegistry(1000, () => 0);
    reg.hello(
      'x',
      { v: 1, tasks: ['a', 3], pins: { in: [1, 'b'] }, streams: [{ name: 's', hz: 2 }, 7] },
      true,
    );
    expect(reg.get('x')).toMatchObject({
      tasks: ['a'],
      pins: { in: [1], out: [], adc: [] },
      streams: [{ name: 's', hz: 2 }],
      maxInput: 0,
    });
  });
});
