/**
 * The `rtl` command as users run it: real child processes (`node packages/cli/bin/rtl.js`),
 * on ports from get-port, with RUN_DIR and CACHE_PATH in temp dirs. Every process a test
 * starts is killed by pid afterwards, whether the test passed or not.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import getPort from 'get-port';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { COMMANDS } from '@rtl/cli';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(repo, 'packages/cli/bin/rtl.js');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** CLI processes still running (killed in afterAll if a test gave up on one). */
const running = new Set<ChildProcess>();
const tempDirs: string[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `rtl-cli-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

/** The environment without any RTL_* of ours, plus `extra`. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RTL_')) env[k] = v;
  return { ...env, ...extra };
}

/** `node <args>` in the repo root, running: `done` resolves once it exits. */
function spawnNode(
  args: readonly string[],
  env: Record<string, string>,
): { child: ChildProcess; done: Promise<Ran> } {
  const child = spawn(process.execPath, args, { cwd: repo, env: cleanEnv(env) });
  running.add(child);
  const done = new Promise<Ran>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => {
      running.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
  return { child, done };
}

/** `node <args>` in the repo root; resolves once it exits. */
function runNode(args: readonly string[], env: Record<string, string>): Promise<Ran> {
  return spawnNode(args, env).done;
}

function rtl(args: readonly string[], env: Record<string, string>): Promise<Ran> {
  return runNode([bin, ...args], env);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function killHard(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** The pids `rtl start` recorded in RUN_DIR/rtl.json (none when there is no record). */
function recordedPids(runDir: string): number[] {
  const file = join(runDir, 'rtl.json');
  if (!existsSync(file)) return [];
  const record = JSON.parse(readFileSync(file, 'utf8')) as { services: { pid: number }[] };
  return record.services.map((s) => s.pid);
}

/** Kill whatever a RUN_DIR's record names (for cleanup after a failed test). */
function killRecorded(runDir: string): void {
  for (const pid of recordedPids(runDir)) if (pid > 1) killHard(pid);
}

afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

interface Cluster {
  env: Record<string, string>;
  runDir: string;
  recv: number;
}

async function cluster(): Promise<Cluster> {
  const runDir = tempDir('run');
  const [recv, send, publish] = [await getPort(), await getPort(), await getPort()];
  const env = {
    RTL_RUN_DIR: runDir,
    RTL_CACHE_PATH: tempDir('cache'),
    RTL_TASK_WORKERS: '2',
    RTL_TASK_THREADS: '1',
    RTL_RELAY_RECV: String(recv),
    RTL_RELAY_SEND: String(send),
    RTL_RELAY_PUBLISHER: String(publish),
    // Each cluster's bridge gets a broker of its own (embedded: nothing listens there).
    RTL_MQTT_URL: `mqtt://127.0.0.1:${String(await getPort())}`,
    // And its plotnode an HTTP port of its own.
    RTL_PLOT_LISTEN: String(await getPort({ host: '127.0.0.1' })),
  };
  return { env, runDir, recv };
}

interface Quickstart {
  transform: Record<string, { tasks: Record<string, { operations: unknown[] }> }>;
  data: { x: number[]; y: number[] };
}

describe('rtl start, status, run, stop', () => {
  it('runs the quickstart on a started cluster and leaves no process behind', async () => {
    const c = await cluster();
    const pidsSeen = new Set<number>();
    onTestFinished(() => {
      for (const pid of recordedPids(c.runDir)) pidsSeen.add(pid);
      for (const pid of pidsSeen) if (pid > 1 && isAlive(pid)) killHard(pid);
    });

    const started = await rtl(['start', '--queues', 'neuron_h1,neuron_h2'], c.env);
    for (const pid of recordedPids(c.runDir)) pidsSeen.add(pid);
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    expect(started.stdout).toContain(`tcp://127.0.0.1:${String(c.recv)}`);
    expect(started.stdout).toContain(`tcp://127.0.0.1:${c.env.RTL_RELAY_SEND}`);
    expect(started.stdout).toContain(`tcp://127.0.0.1:${c.env.RTL_RELAY_PUBLISHER}`);
    expect(started.stdout).toContain('rtl run examples/quickstart.json');
    expect(started.stdout).toContain(`esp32     esp32-bridge (pid `);
    expect(started.stdout).toContain(c.env.RTL_MQTT_URL);
    const plotUrl = `http://127.0.0.1:${c.env.RTL_PLOT_LISTEN}`;
    expect(started.stdout).toMatch(
      new RegExp(`^  plotnode  ${plotUrl} +\\(pid \\d+\\) GET /members, /info$`, 'm'),
    );
    const pids = recordedPids(c.runDir);
    // The relay, two tasknodes, the ESP32 bridge and the plotnode.
    expect(pids).toHaveLength(5);
    for (const pid of pids) expect(isAlive(pid)).toBe(true);

    const again = await rtl(['start'], c.env);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(
      `rtl is already running (relay pid ${String(pids[0])}, tcp://127.0.0.1:${String(c.recv)})`,
    );
    expect(recordedPids(c.runDir)).toEqual(pids);

    const status = await rtl(['status'], c.env);
    expect(status.code).toBe(0);
    const nodeLines = status.stdout.split('\n').filter((l) => /^\s+tasknode-\d+\s/.test(l));
    expect(nodeLines).toHaveLength(2);
    for (const l of nodeLines)
      expect(l).toMatch(/^\s+tasknode-[12]\s+alive\s.*\sneuron_h1,neuron_h2$/);
    expect(status.stdout).toContain(`pid ${String(pids[0])}`);
    expect(status.stdout).toMatch(/^\s+esp32-bridge\s+alive\s/m);
    expect(status.stdout).toContain(`plotnode   ${plotUrl} pid ${String(pids[4])}, up `);

    // Membership: `rtl nodes --json` and the plotnode's GET /members list the same members.
    interface MemberJson {
      name: string;
      kind: string;
      state: string;
      pid: number;
      queues: string[];
    }
    const nodesJson = await rtl(['nodes', '--json'], c.env);
    expect(nodesJson.stderr).toBe('');
    expect(nodesJson.code).toBe(0);
    const members = JSON.parse(nodesJson.stdout) as MemberJson[];
    const summary = (list: MemberJson[]): unknown[] =>
      list.map((m) => [m.name, m.kind, m.state, m.pid, m.queues]);
    expect(summary(members)).toEqual([
      ['relay', 'relay', 'alive', pids[0], []],
      ['esp32-bridge', 'esp32-bridge', 'alive', pids[3], []],
      ['tasknode-1', 'tasknode', 'alive', pids[1], ['neuron_h1', 'neuron_h2']],
      ['tasknode-2', 'tasknode', 'alive', pids[2], ['neuron_h1', 'neuron_h2']],
    ]);
    const http = await fetch(`${plotUrl}/members`);
    expect(http.status).toBe(200);
    expect(summary((await http.json()) as MemberJson[])).toEqual(summary(members));
    const info = (await (await fetch(`${plotUrl}/info`)).json()) as Record<string, unknown>;
    expect(info).toMatchObject({ kind: 'plotnode', pid: pids[4], url: plotUrl });
    const nodesTable = await rtl(['nodes'], c.env);
    expect(nodesTable.code).toBe(0);
    expect(nodesTable.stdout).toMatch(
      /^NAME\s+KIND\s+STATE\s+LAST SEEN\s+CREDIT\s+RUNNING\s+HOST:PID\s+QUEUES$/m,
    );
    expect(nodesTable.stdout).toMatch(
      /^tasknode-1\s+tasknode\s+alive\s+\d+ ms ago\s+\d+\s+\d+\s+\S+:\d+\s+neuron_h1,neuron_h2$/m,
    );
    expect(nodesTable.stdout).toContain('3 nodes besides the relay: 3 alive, 0 dead');

    // The expected result, from the example's data with a plain loop: stage 0 adds and
    // multiplies x and y, stage 1 keeps x > 4, stage 2 averages sum.
    const example = JSON.parse(
      readFileSync(join(repo, 'examples/quickstart.json'), 'utf8'),
    ) as Quickstart;
    expect(example.transform['1']?.tasks.task_filter?.operations).toEqual([
      { column: 'x', value: 4, method: 'gt' },
    ]);
    const { x, y } = example.data;
    const expected: { x: number; y: number; sum: number; product: number }[] = [];
    let total = 0;
    for (let i = 0; i < x.length; i++) {
      const xi = x[i] as number;
      const yi = y[i] as number;
      if (!(xi > 4)) continue;
      expected.push({ x: xi, y: yi, sum: xi + yi, product: xi * yi });
      total += xi + yi;
    }
    const mean = total / expected.length;
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(x.length);

    const ran = await rtl(['run', 'examples/quickstart.json'], c.env);
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    const lines = ran.stdout.split('\n');
    const header = lines.findIndex((l) => /^\s*x\s+y\s+sum\s+product\s+sum_mean\s*$/.test(l));
    expect(header).toBeGreaterThanOrEqual(0);
    const rows = lines
      .slice(header + 1, header + 1 + expected.length)
      .map((l) => l.trim().split(/\s+/));
    expect(rows).toEqual(
      expected.map((r) => [r.x, r.y, r.sum, r.product, mean].map((v) => String(v))),
    );
    expect(ran.stdout).toContain(`(${String(expected.length)} rows, 5 columns)`);
    for (const task of ['add', 'multiply', 'filter', 'average'])
      expect(ran.stdout).toMatch(new RegExp(`^  Completed: \\d+\\.\\d\\d ms ${task}$`, 'm'));
    expect(ran.stdout.match(/Completed:/g)).toHaveLength(4);
    expect(ran.stdout).toMatch(/^Stage 0 on tasknode-[12]: \d+\.\d\d ms$/m);

    const json = await rtl(['run', 'examples/quickstart.json', '--json'], c.env);
    expect(json.code).toBe(0);
    const out = JSON.parse(json.stdout) as { rows: unknown[]; numRows: number; stages: unknown[] };
    expect(out.numRows).toBe(expected.length);
    expect(out.rows).toEqual(expected.map((r) => ({ ...r, sum_mean: mean })));
    expect(out.stages).toHaveLength(3);

    // The other examples run too: the client-API script, and a document given --data.
    const script = await runNode([join(repo, 'examples/quickstart.mjs')], c.env);
    expect(script.stderr).toBe('');
    expect(script.code).toBe(0);
    const scriptLines = script.stdout.split('\n');
    expect(scriptLines[0]).toBe('x\ty\tsum\tproduct\tsum_mean');
    expect(scriptLines.slice(1, 1 + expected.length).map((l) => l.split('\t'))).toEqual(
      expected.map((r) => [r.x, r.y, r.sum, r.product, mean].map((v) => String(v))),
    );

    const points = JSON.parse(readFileSync(join(repo, 'examples/points.json'), 'utf8')) as {
      t: number;
    }[];
    let tSum = 0;
    for (const p of points) tSum += p.t;
    const tMean = tSum / points.length;
    let squares = 0;
    for (const p of points) squares += (p.t - tMean) * (p.t - tMean);
    const std = Math.sqrt(squares / points.length);
    const sd = await rtl(
      ['run', 'examples/stddev.json', '--data', 'examples/points.json', '--json'],
      c.env,
    );
    expect(sd.code).toBe(0);
    const sdRows = (JSON.parse(sd.stdout) as { rows: { t: number; t_mean: number; std: number }[] })
      .rows;
    expect(sdRows.map((r) => r.t)).toEqual(points.map((p) => p.t));
    for (const r of sdRows) {
      expect(r.t_mean).toBe(tMean);
      expect(r.std).toBeCloseTo(std, 12);
    }

    // An Arrow IPC file as --data.
    const dir = tempDir('docs');
    const n = 50;
    const xs = Float64Array.from({ length: n }, (_, i) => i * 0.5 - 3);
    const ys = Int32Array.from({ length: n }, (_, i) => (i * 7) % 11);
    const arrowFile = join(dir, 'xy.arrow');
    writeFileSync(arrowFile, tableToIPC(tableFromArrays({ x: xs, y: ys }), 'file'));
    const mulDoc = join(dir, 'mul.json');
    writeFileSync(
      mulDoc,
      JSON.stringify({
        '0': { tasks: { task_multiply: { operations: [{ a: 'x', b: 'y', column: 'xy' }] } } },
      }),
    );
    const fromArrow = await rtl(['run', mulDoc, '--data', arrowFile, '--json'], c.env);
    expect(fromArrow.code).toBe(0);
    const arrowOut = JSON.parse(fromArrow.stdout) as { numRows: number; rows: { xy: number }[] };
    expect(arrowOut.numRows).toBe(n);
    const products: number[] = [];
    // `+ 0` turns -0 into 0, as JSON does.
    for (let i = 0; i < n; i++) products.push((xs[i] as number) * (ys[i] as number) + 0);
    expect(arrowOut.rows.map((r) => r.xy)).toEqual(products);

    // A parameter the relay rejects before any tasknode sees the job.
    const bad = join(dir, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({
        '0': { tasks: { task_null: {} } },
        '1': { tasks: { task_add: { operations: [{ a: 'x', b: true, column: 's' }] } } },
      }),
    );
    const data = join(dir, 'data.json');
    writeFileSync(data, JSON.stringify({ x: [1, 2, 3] }));
    const badParam = await rtl(['run', bad, '--data', data], c.env);
    expect(badParam.code).toBe(1);
    expect(badParam.stderr).toMatch(
      /^rtl run: RTL_ERR_BAD_PARAM: stage "1", task "task_add", param "operations\[0\]\.b": expected .*got true/m,
    );

    // A column the table lacks: found on the tasknode, reported with the same shape.
    const missing = join(dir, 'missing.json');
    writeFileSync(
      missing,
      JSON.stringify({
        '0': { tasks: { task_add: { operations: [{ a: 'nope', b: 1, column: 's' }] } } },
      }),
    );
    const runtime = await rtl(['run', missing, '--data', data], c.env);
    expect(runtime.code).toBe(1);
    expect(runtime.stderr).toMatch(/^rtl run: RTL_ERR_BAD_PARAM: .*param "operations\[0\]\.a"/m);
    expect(runtime.stderr).toContain('"nope"');

    // Setting flags win over env: a status on another port finds nothing, and points at the record.
    const otherPort = await getPort();
    const elsewhere = await rtl(
      ['status', '--relay-recv', String(otherPort), '--timeout', '300'],
      c.env,
    );
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr).toContain(
      `rtl is not running: no relay answered at tcp://127.0.0.1:${String(otherPort)} within 300 ms`,
    );
    expect(elsewhere.stderr).toContain(`--relay-recv ${String(c.recv)}`);

    const stopped = await rtl(['stop'], c.env);
    expect(stopped.code).toBe(0);
    for (const name of ['tasknode-1', 'tasknode-2', 'esp32-bridge', 'plotnode', 'relay'])
      expect(stopped.stdout).toMatch(new RegExp(`^stopped ${name} \\(pid \\d+\\)$`, 'm'));
    expect(existsSync(join(c.runDir, 'rtl.json'))).toBe(false);
    // An exited process may linger as a zombie until its new parent reaps it: poll, not sleep.
    await expect.poll(() => pids.filter(isAlive), { timeout: 15_000 }).toEqual([]);

    const after = await rtl(['status'], c.env);
    expect(after.code).toBe(1);
    expect(after.stderr).toContain(
      `rtl is not running: no relay answered at tcp://127.0.0.1:${String(c.recv)} within 2000 ms; start it with \`rtl start\``,
    );

    const nodesAfter = await rtl(['nodes', '--timeout', '300'], c.env);
    expect(nodesAfter.code).toBe(1);
    expect(nodesAfter.stderr).toContain(
      `rtl is not running: no relay answered at tcp://127.0.0.1:${String(c.recv)} within 300 ms`,
    );

    const stopAgain = await rtl(['stop'], c.env);
    expect(stopAgain.code).toBe(0);
    expect(stopAgain.stdout).toContain('rtl is not running');
    // It runs some twenty `rtl` processes against one cluster: more than the default 30 s on a
    // busy machine.
  }, 90_000);

  it('rtl esp manages simulated ESP32 nodes of a started cluster, and stages routed to esp32 run on them', async () => {
    const c = await cluster();
    onTestFinished(() => {
      for (const pid of recordedPids(c.runDir)) if (pid > 1 && isAlive(pid)) killHard(pid);
    });
    const started = await rtl(['start'], c.env);
    expect(started.code).toBe(0);

    const sim = spawnNode(
      [bin, 'esp', 'simulate', '--nodes', '2', '--prefix', 'clisim', '--duration', '120'],
      c.env,
    );
    onTestFinished(() => {
      if (sim.child.pid !== undefined && isAlive(sim.child.pid)) killHard(sim.child.pid);
    });
    await expect
      .poll(
        async () =>
          (await rtl(['esp', 'list'], c.env)).stdout
            .split('\n')
            .filter((l) => /^clisim-\d\s+online\s/.test(l)).length,
        { timeout: 30_000, interval: 500 },
      )
      .toBe(2);

    const five = await rtl(['esp', 'eval', 'clisim-0', '2+3'], c.env);
    expect(five).toMatchObject({ code: 0, stdout: '5\n' });
    const raised = await rtl(['esp', 'exec', 'clisim-0', 'def f():\n    return 1 / 0\nf()'], c.env);
    expect(raised.code).toBe(1);
    expect(raised.stderr).toContain('RTL_ERR_ESP_RAISED');
    expect(raised.stderr).toContain('Traceback (most recent call last):');
    expect(raised.stderr).toMatch(/ZeroDivisionError/);
    expect(await rtl(['esp', 'gpio', 'clisim-1', '2', '1'], c.env)).toMatchObject({
      code: 0,
      stdout: '1\n',
    });
    expect(await rtl(['esp', 'gpio', 'clisim-1', '2'], c.env)).toMatchObject({
      code: 0,
      stdout: '1\n',
    });
    const unknown = await rtl(['esp', 'eval', 'nosuch', '1'], c.env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no ESP node nosuch on');

    const dir = tempDir('esp');
    writeFileSync(join(dir, 'answer.py'), 'result = 6 * 7\n');
    expect(await rtl(['esp', 'script', 'clisim-0', join(dir, 'answer.py')], c.env)).toMatchObject({
      code: 0,
      stdout: '42\n',
    });
    writeFileSync(
      join(dir, 'gain.py'),
      'def gain(cols, p):\n    return {k: [v * p["k"] + 1 for v in vs] for k, vs in cols.items()}\n',
    );
    const deployed = await rtl(['esp', 'deploy', 'all', join(dir, 'gain.py')], c.env);
    expect(deployed.code).toBe(0);
    for (const id of ['clisim-0', 'clisim-1'])
      expect(deployed.stdout).toContain(`${id}: gain deployed; tasks gain`);

    // The bridge `rtl start` runs hears the new task and takes stages routed to esp32.
    writeFileSync(
      join(dir, 'doc.json'),
      JSON.stringify({ '0': { tasks: { task_gain: { k: 3 } }, route: 'esp32' } }),
    );
    writeFileSync(join(dir, 'data.json'), JSON.stringify({ x: [1, -2, 0.5] }));
    const ran = await rtl(
      ['run', join(dir, 'doc.json'), '--data', join(dir, 'data.json'), '--json'],
      c.env,
    );
    expect(ran.stderr).toBe('');
    expect((JSON.parse(ran.stdout) as { rows: { x: number }[] }).rows.map((r) => r.x)).toEqual([
      4, -5, 2.5,
    ]);

    sim.child.kill('SIGINT');
    const simDone = await sim.done;
    expect(simDone.code).toBe(0);
    expect(simDone.stdout).toContain('2 virtual ESP32 nodes clisim-0..clisim-1 on');
    expect(simDone.stdout).toContain('stopped 2 virtual nodes');
    const after = await rtl(['esp', 'list'], c.env);
    expect(after.stdout).toMatch(/^clisim-0\s+offline\s/m);
    expect((await rtl(['stop'], c.env)).code).toBe(0);
  });

  it('stops what it started and shows the relay log when the relay cannot bind its port', async () => {
    const c = await cluster();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(c.recv, '127.0.0.1', resolve));
    onTestFinished(() => {
      blocker.close();
      killRecorded(c.runDir);
    });

    const started = await rtl(['start'], c.env);
    expect(started.code).toBe(1);
    expect(started.stderr).toMatch(/^rtl start: relay exited \(code 1\) before it was ready$/m);
    expect(started.stderr).toContain(`last lines of ${join(c.runDir, 'logs', 'relay.log')}`);
    expect(started.stderr).toContain(`cannot bind tcp://127.0.0.1:${String(c.recv)}`);
    const stoppedPids = [...started.stderr.matchAll(/^stopped tasknode-\d \(pid (\d+)\)$/gm)].map(
      (m) => Number(m[1]),
    );
    expect(stoppedPids).toHaveLength(2);
    expect(existsSync(join(c.runDir, 'rtl.json'))).toBe(false);
    await expect.poll(() => stoppedPids.filter(isAlive), { timeout: 15_000 }).toEqual([]);
  });
});

describe('rtl without a cluster', () => {
  it('has --help for every command, and rtl --help lists them', async () => {
    const names = COMMANDS.map((c) => c.name);
    expect(names).toEqual(
      expect.arrayContaining(['start', 'status', 'stop', 'restart', 'run', 'nodes', 'tasks']),
    );
    const env = { RTL_RUN_DIR: tempDir('help') };
    const main = await rtl(['--help'], env);
    expect(main.code).toBe(0);
    for (const name of names) expect(main.stdout).toMatch(new RegExp(`^  ${name}\\s+\\S`, 'm'));
    for (const name of names) {
      const help = await rtl([name, '--help'], env);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`Usage: rtl ${name}`);
      expect(help.stdout).toContain('--relay-recv <port>');
    }
    const short = await rtl(['run', '-h'], env);
    expect(short.code).toBe(0);
    expect(short.stdout).toContain('Usage: rtl run <doc.json>');
  });

  it('prints the version of the package', async () => {
    const pkg = JSON.parse(readFileSync(join(repo, 'packages/cli/package.json'), 'utf8')) as {
      version: string;
    };
    const ran = await rtl(['--version'], {});
    expect(ran.code).toBe(0);
    expect(ran.stdout.trim()).toBe(pkg.version);
  });

  it('names what exists for an unknown command or flag', async () => {
    const env = { RTL_RUN_DIR: tempDir('usage') };
    const cmd = await rtl(['strat'], env);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toContain('unknown command "strat"; did you mean "start"?');
    expect(cmd.stderr).toContain('Commands: start, ');
    const flag = await rtl(['run', 'examples/quickstart.json', '--jsn'], env);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('unknown flag --jsn; did you mean --json?');
    const setting = await rtl(['status', '--relay-rcv', '19100'], env);
    expect(setting.code).toBe(2);
    expect(setting.stderr).toContain('did you mean --relay-recv?');
    const badValue = await rtl(['status', '--relay-recv', 'abc'], env);
    expect(badValue.code).toBe(1);
    expect(badValue.stderr).toContain('RTL_ERR_CONFIG');
    expect(badValue.stderr).toContain('RELAY_RECV=abc (from flag --relay-recv)');
    const noArg = await rtl(['run'], env);
    expect(noArg.code).toBe(2);
    expect(noArg.stderr).toContain('usage: rtl run <doc.json>');
  });

  it('names the file when a document is missing or is not JSON', async () => {
    const dir = tempDir('files');
    const env = { RTL_RUN_DIR: dir };
    const absent = join(dir, 'absent.json');
    const missing = await rtl(['run', absent], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`rtl run: document ${absent} does not exist`);
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{\n  "0": 1\n  "1": 2\n}\n');
    const parsed = await rtl(['run', broken], env);
    expect(parsed.code).toBe(1);
    expect(parsed.stderr).toContain(`rtl run: ${broken} is not valid JSON`);
    expect(parsed.stderr).toMatch(/line 3,? column 3/);
  });

  it('lists the bundled tasks with origin and summary', async () => {
    const ran = await rtl(['tasks'], {});
    expect(ran.code).toBe(0);
    const names = [
      'null',
      'add',
      'subtract',
      'multiply',
      'divide',
      'power',
      'squareRoot',
      'log',
      'average',
      'filter',
    ];
    for (const name of names)
      expect(ran.stdout).toMatch(new RegExp(`^${name}\\s+bundled\\s+\\S`, 'm'));
    const one = await rtl(['tasks', 'task_square_root'], {});
    expect(one.code).toBe(0);
    expect(one.stdout).toContain('squareRoot:');
    expect(one.stdout).toContain('operations');
  });

  it('says nothing runs for stop, and exits 1 for status, when nothing was started', async () => {
    const port = await getPort();
    const env = { RTL_RUN_DIR: tempDir('idle'), RTL_RELAY_RECV: String(port) };
    const stop = await rtl(['stop'], env);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain('rtl is not running');
    const status = await rtl(['status', '--timeout', '200'], env);
    expect(status.code).toBe(1);
    expect(status.stderr.trim()).toBe(
      `rtl is not running: no relay answered at tcp://127.0.0.1:${String(port)} within 200 ms; start it with \`rtl start\``,
    );
  });
});
