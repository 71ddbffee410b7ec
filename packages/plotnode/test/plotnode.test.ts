/**
 * The plotnode's HTTP membership API against a real relay and tasknodes (in-process, real
 * ZeroMQ on loopback ports) and real HTTP on ports from get-port.
 */
import { createServer } from 'node:net';
import getPort from 'get-port';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Plotnode } from '@rtl/plotnode';
import type { Member } from '@rtl/relay';
import { world } from '../../relay/test/helpers.js';

interface Got {
  status: number;
  headers: Headers;
  body: unknown;
}

async function get(url: string, method = 'GET'): Promise<Got> {
  const res = await fetch(url, { method });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

async function members(url: string): Promise<Member[]> {
  const got = await get(`${url}/members`);
  expect(got.status).toBe(200);
  return got.body as Member[];
}

async function plotnode(relay: string): Promise<Plotnode> {
  const plot = await Plotnode.start(
    {
      PLOT_ADDR: '127.0.0.1',
      PLOT_LISTEN: await getPort({ host: '127.0.0.1' }),
      RELAY_ADDR: '127.0.0.1',
      RELAY_LISTEN: '127.0.0.1',
      RELAY_RECV: 0,
      RELAY_SEND: 0,
      RELAY_PUBLISHER: 0,
    },
    { relay, relayTimeoutMs: 500 },
  );
  onTestFinished(() => plot.close());
  return plot;
}

describe('plotnode membership API', () => {
  it('GET /members lists the relay and both tasknodes alive; a stopped one is listed dead', async () => {
    const w = await world(0);
    const a = await w.addNode({ name: 'node-a', queues: ['qa'] });
    await w.addNode({ name: 'node-b', queues: ['qb', 'qc'] });
    const plot = await plotnode(w.relay.endpoints.recv);

    await expect.poll(async () => (await members(plot.url)).length, { timeout: 5000 }).toBe(3);
    const list = await members(plot.url);
    expect(list.map((m) => [m.name, m.kind, m.state, m.queues])).toEqual([
      ['relay', 'relay', 'alive', []],
      ['node-a', 'tasknode', 'alive', ['qa']],
      ['node-b', 'tasknode', 'alive', ['qb', 'qc']],
    ]);
    for (const m of list) expect(m.pid).toBe(process.pid);

    await a.close();
    await expect
      .poll(
        async () => (await members(plot.url)).find((m) => m.name === 'node-a')?.leftAt ?? null,
        { timeout: 5000 },
      )
      .not.toBeNull();
    const after = await members(plot.url);
    expect(after.map((m) => [m.name, m.state])).toEqual([
      ['relay', 'alive'],
      ['node-a', 'dead'],
      ['node-b', 'alive'],
    ]);
  });

  it('GET /info describes the plotnode; unknown paths are 404 and other methods 405, in JSON', async () => {
    const w = await world(0);
    const plot = await plotnode(w.relay.endpoints.recv);

    const info = await get(`${plot.url}/info`);
    expect(info.status).toBe(200);
    expect(info.headers.get('content-type')).toMatch(/^application\/json/);
    expect(info.body).toMatchObject({
      name: 'plotnode',
      kind: 'plotnode',
      version: '0.1.0',
      pid: process.pid,
      url: plot.url,
      relay: w.relay.endpoints.recv,
      routes: ['/info', '/members'],
    });
    expect((info.body as { uptimeMs: number }).uptimeMs).toBeGreaterThanOrEqual(0);

    const missing = await get(`${plot.url}/nope?x=1`);
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({
      error: { code: 'NOT_FOUND', message: 'no route /nope; routes: /info, /members' },
    });

    const post = await get(`${plot.url}/members`, 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(post.body).toEqual({
      error: { code: 'METHOD_NOT_ALLOWED', message: 'POST /members: only GET is served' },
    });

    // Closing twice is fine.
    await plot.close();
    await plot.close();
  });

  it('answers 503 on /members when the relay does not answer', async () => {
    const port = await getPort({ host: '127.0.0.1' });
    const plot = await plotnode(`tcp://127.0.0.1:${String(port)}`);
    const got = await get(`${plot.url}/members`);
    expect(got.status).toBe(503);
    expect(got.body).toMatchObject({ error: { code: 'RTL_ERR_RELAY_UNREACHABLE' } });
    const info = await get(`${plot.url}/info`);
    expect(info.status).toBe(200);
  });

  it('names the port when it cannot bind it', async () => {
    const blocker = createServer();
    const port = await getPort({ host: '127.0.0.1' });
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    onTestFinished(() => {
      blocker.close();
    });
    await expect(
      Plotnode.start({
        PLOT_ADDR: '127.0.0.1',
        PLOT_LISTEN: port,
        RELAY_ADDR: '127.0.0.1',
        RELAY_LISTEN: '127.0.0.1',
        RELAY_RECV: 19000,
        RELAY_SEND: 19001,
        RELAY_PUBLISHER: 19300,
      }),
    ).rejects.toMatchObject({
      code: 'RTL_ERR_CONFIG',
      message: `plotnode cannot listen on http://127.0.0.1:${String(port)}: port ${String(port)} is in use (is another plotnode running? set PLOT_LISTEN to a free port)`,
    });
  });
});
