import { describe, expect, it } from 'vitest';
import { Scheduler, type NodeHello, type Placement } from '@rtl/relay';

interface Run {
  key: string;
  placement: Placement;
}

const hello = (
  name: string,
  credit: number,
  tasks = ['add', 'null'],
  queues: string[] = [],
): NodeHello => ({
  name,
  queues,
  tasks,
  credit,
  host: 'h',
  store: '',
  pid: 1,
});
const run = (key: string, tasks = ['add'], route?: string): Run => ({
  key,
  placement: { tasks, route },
});

describe('Scheduler', () => {
  it('gives work only to nodes with credit, and returns credit on completion', () => {
    const s = new Scheduler<Run>();
    const a = s.addNode(Buffer.from('a'), hello('a', 1), 0);
    s.enqueue(run('j1'));
    s.enqueue(run('j2'));
    const first = s.dispatch(1);
    expect(first.map((x) => x.run.key)).toEqual(['j1']);
    expect(a.credit).toBe(0);
    expect(s.waiting.map((r) => r.key)).toEqual(['j2']);
    expect(s.dispatch(2)).toEqual([]);
    expect(s.complete(a.id, 'j1')?.key).toBe('j1');
    expect(s.dispatch(3).map((x) => x.run.key)).toEqual(['j2']);
  });

  it('spreads consecutive stages over free nodes (idle longest first)', () => {
    const s = new Scheduler<Run>();
    const ids = ['a', 'b', 'c'].map((n) => s.addNode(Buffer.from(n), hello(n, 1), 0).id);
    const used: string[] = [];
    for (let i = 0; i < 3; i++) {
      s.enqueue(run(`s${String(i)}`));
      const [asg] = s.dispatch(10 + i);
      if (asg === undefined) throw new Error('no assignment');
      used.push(asg.node.hello.name);
      s.complete(asg.node.id, asg.run.key);
    }
    expect(new Set(used).size).toBe(3);
    expect(ids).toHaveLength(3);
  });

  it('matches tasks and routes, and does not let a blocked run hold up others', () => {
    const s = new Scheduler<Run>();
    s.addNode(Buffer.from('a'), hello('a', 2, ['add'], ['gpu']), 0);
    s.enqueue(run('needs-mul', ['multiply']));
    s.enqueue(run('routed-elsewhere', ['add'], 'esp32'));
    s.enqueue(run('routed-gpu', ['add'], 'gpu'));
    s.enqueue(run('by-name', ['add'], 'a'));
    const got = s.dispatch(1).map((x) => x.run.key);
    expect(got).toEqual(['routed-gpu', 'by-name']);
    expect(s.waiting.map((r) => r.key)).toEqual(['needs-mul', 'routed-elsewhere']);
    expect(s.anyCanRun({ tasks: ['multiply'], route: undefined })).toBe(false);
  });

  it('reports silent nodes and hands back their in-flight runs when removed', () => {
    const s = new Scheduler<Run>();
    const a = s.addNode(Buffer.from('a'), hello('a', 2), 0);
    s.addNode(Buffer.from('b'), hello('b', 2), 0);
    s.enqueue(run('x'));
    s.enqueue(run('y'));
    s.dispatch(0);
    s.touch(a.id, 900);
    const silent = s.silent(1000, 300).map((n) => n.hello.name);
    expect(silent).toEqual(['b']);
    const lost = s.removeNode(Buffer.from('b').toString('hex'));
    expect(lost.length + a.inflight.size).toBe(2);
    expect(s.nodes.size).toBe(1);
  });

  it('keeps in-flight runs and their credit use when a node says HELLO again', () => {
    const s = new Scheduler<Run>();
    const a = s.addNode(Buffer.from('a'), hello('a', 2), 0);
    s.enqueue(run('x'));
    s.dispatch(0);
    expect(a.credit).toBe(1);
    const again = s.addNode(Buffer.from('a'), hello('a', 2), 5);
    expect(again.inflight.size).toBe(1);
    expect(again.credit).toBe(1);
  });
  it('a long queue behind busy nodes, beside many free nodes that cannot run it, keeps its order', () => {
    const s = new Scheduler<Run>();
    const worker = s.addNode(Buffer.from('w'), hello('w', 1), 0);
    for (let i = 0; i < 100; i++)
      s.addNode(
        Buffer.from(`e${String(i)}`),
        hello(`esp32/${String(i)}`, 1, ['mean'], ['esp32']),
        0,
      );
    for (let i = 0; i < 50; i++) s.enqueue(run(`a${String(i)}`));
    s.enqueue(run('m', ['mean']));
    s.enqueue(run('r', ['mean'], 'esp32/7'));
    const first = s.dispatch(1);
    expect(first.map((x) => [x.run.key, x.node.hello.name])).toEqual([
      ['a0', 'w'],
      ['m', first[1]?.node.hello.name],
      ['r', 'esp32/7'],
    ]);
    expect(first[1]?.node.hello.name).toMatch(/^esp32\//);
    expect(s.waitingCount).toBe(49);
    s.complete(worker.id, 'a0');
    expect(s.dispatch(2).map((x) => x.run.key)).toEqual(['a1']);
    expect(s.waiting[0]?.key).toBe('a2');
  });
});
