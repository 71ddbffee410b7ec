/**
 * Cluster membership: the relay lists itself and every tasknode it has seen, alive or dead,
 * over STATUS `{ what: 'members' }` [P-6.5]. Real sockets; the book of dead members is pure.
 */
import { describe, expect, it } from 'vitest';
import { MemberBook, memberKind, type Member } from '@rtl/relay';
import { world } from './helpers.js';

function dead(name: string, at: number): Member {
  return {
    name,
    kind: 'tasknode',
    state: 'dead',
    host: 'h',
    pid: 1,
    addr: '',
    queues: [],
    tasks: 0,
    credit: 0,
    running: 0,
    joinedAt: 0,
    lastSeenAt: at,
    lastSeenMs: 0,
    leftAt: at,
  };
}

describe('MemberBook', () => {
  it('keeps the last `limit` dead members, and forgets one that rejoins', () => {
    const book = new MemberBook(3);
    for (let i = 0; i < 5; i++) book.left(dead(`n${String(i)}`, i * 10));
    expect(book.dead(100).map((m) => m.name)).toEqual(['n2', 'n3', 'n4']);
    expect(book.dead(100).map((m) => m.lastSeenMs)).toEqual([80, 70, 60]);
    // Dying again under the same name replaces the older record and counts as the newest.
    book.left(dead('n2', 50));
    book.left(dead('n5', 60));
    expect(book.dead(100).map((m) => m.name)).toEqual(['n4', 'n2', 'n5']);
    book.joined('n2');
    expect(book.dead(100).map((m) => m.name)).toEqual(['n4', 'n5']);
    expect(book.size).toBe(2);
  });

  it('names ESP nodes and the bridge by their names', () => {
    expect(memberKind('esp32/a1b2')).toBe('esp32');
    expect(memberKind('esp32-bridge')).toBe('esp32-bridge');
    expect(memberKind('tasknode-1')).toBe('tasknode');
    expect(memberKind('esp32')).toBe('tasknode');
  });
});

describe('relay members', () => {
  it('lists the relay and live tasknodes; a stopped tasknode stays listed dead, until it rejoins', async () => {
    const w = await world(0);
    const a = await w.addNode({ name: 'alpha', queues: ['q1'] });
    await w.addNode({ name: 'esp32/dev1', queues: ['esp32'] });
    await expect.poll(() => w.relay.members().length).toBe(3);

    const answer = await w.client.request({ what: 'members' }, 2000);
    const members = answer.members as Member[];
    expect(members.map((m) => [m.name, m.kind, m.state])).toEqual([
      ['relay', 'relay', 'alive'],
      ['alpha', 'tasknode', 'alive'],
      ['esp32/dev1', 'esp32', 'alive'],
    ]);
    const relay = members[0];
    expect(relay).toMatchObject({ pid: process.pid, addr: w.relay.endpoints.recv, leftAt: null });
    const alpha = members.find((m) => m.name === 'alpha');
    const credit = w.relay.nodes().find((n) => n.name === 'alpha')?.credit;
    expect(credit).toBeGreaterThan(0);
    expect(alpha).toMatchObject({ queues: ['q1'], credit, pid: process.pid, leftAt: null });
    expect(alpha?.tasks).toBeGreaterThan(0);
    expect(alpha?.joinedAt).toBeLessThanOrEqual(alpha?.lastSeenAt ?? 0);

    const closedAt = Date.now();
    await a.close();
    await expect
      .poll(() => w.relay.members().find((m) => m.name === 'alpha')?.leftAt ?? null, {
        timeout: 5000,
      })
      .not.toBeNull();
    const gone = w.relay.members().find((m) => m.name === 'alpha');
    expect(gone).toMatchObject({ state: 'dead', credit: 0, queues: ['q1'], kind: 'tasknode' });
    expect(gone?.leftAt).toBeGreaterThanOrEqual(closedAt);
    // Declared dead only after the liveness window of silence.
    const silence = w.config.HEARTBEAT_MS * w.config.HEARTBEAT_LIVENESS;
    expect((gone?.leftAt ?? 0) - (gone?.lastSeenAt ?? 0)).toBeGreaterThan(silence);
    expect(w.relay.members().find((m) => m.name === 'esp32/dev1')?.state).toBe('alive');

    await w.addNode({ name: 'alpha', queues: ['q2'] });
    await expect
      .poll(() =>
        w.relay
          .members()
          .filter((m) => m.name === 'alpha')
          .map((m) => m.state),
      )
      .toEqual(['alive']);
    expect(w.relay.members().find((m) => m.name === 'alpha')?.queues).toEqual(['q2']);
  });
});
