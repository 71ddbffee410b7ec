/**
 * `rtl keys` and a CURVE cluster as users run them: real child processes
 * (`node packages/cli/bin/rtl.js`), key files and RUN_DIR in temp dirs, ports from get-port.
 * Every process a test starts is killed by pid afterwards, whether the test passed or not.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import getPort from 'get-port';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { curvePublicKey, parseKeyFile, readAllowList, readKeyFile } from '@rtl/core';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(repo, 'packages/cli/bin/rtl.js');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

const running = new Set<ChildProcess>();
const tempDirs: string[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `rtl-keys-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** `rtl <args>` with no RTL_* of ours but `env`; resolves once it exits. */
function rtl(args: readonly string[], env: Record<string, string> = {}): Promise<Ran> {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RTL_')) clean[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: repo, env: { ...clean, ...env } });
    running.add(child);
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
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function recordedPids(runDir: string): number[] {
  const file = join(runDir, 'rtl.json');
  if (!existsSync(file)) return [];
  const record = JSON.parse(readFileSync(file, 'utf8')) as { services: { pid: number }[] };
  return record.services.map((s) => s.pid);
}

function mode(file: string): number {
  return statSync(file).mode & 0o777;
}

/** The public key `rtl keys` printed. */
function printedKey(out: string): string {
  const m = /^ {2}public key {2}(\S{40})$/m.exec(out);
  if (m?.[1] === undefined) throw new Error(`no public key in:\n${out}`);
  return m[1];
}

describe('rtl keys', () => {
  it('writes 0600 secret key files that load, and prints the settings and allow-list lines', async () => {
    const dir = join(tempDir('dir'), 'keys');
    const allow = join(dir, 'allow');
    const relay = await rtl(['keys', 'relay', '--dir', dir, '--allow', allow]);
    expect(relay.stderr).toBe('');
    expect(relay.code).toBe(0);
    const relayKey = printedKey(relay.stdout);
    expect(relay.stdout).toContain(
      `  RTL_CURVE_SERVER_KEY_FILE='${join(dir, 'relay.key_secret')}'`,
    );
    expect(relay.stdout).toContain(`  RTL_CURVE_ALLOW='${allow}'`);
    expect(relay.stdout).toContain(`  RTL_CURVE_SERVER_PUBLIC='${relayKey}'`);

    const alice = await rtl([
      'keys',
      'client',
      'alice',
      '--deployer',
      '--dir',
      dir,
      '--allow',
      allow,
    ]);
    expect(alice.code).toBe(0);
    const aliceKey = printedKey(alice.stdout);
    expect(alice.stdout).toContain(`\n  ${aliceKey} alice deployer\n`);
    const node = await rtl(['keys', 'tasknode', 'b1', '--dir', dir]);
    expect(node.code).toBe(0);
    const nodeKey = printedKey(node.stdout);
    expect(node.stdout).toContain(
      `Add this line to the relay's allow-list (CURVE_ALLOW):\n  ${nodeKey} b1\n`,
    );

    expect(mode(dir)).toBe(0o700);
    for (const [base, key] of [
      ['relay', relayKey],
      ['client-alice', aliceKey],
      ['tasknode-b1', nodeKey],
    ] as const) {
      const secret = join(dir, `${base}.key_secret`);
      expect(mode(secret), secret).toBe(0o600);
      expect(mode(join(dir, `${base}.key`))).toBe(0o644);
      const pair = readKeyFile(secret, 'CURVE_KEY_FILE');
      expect(pair.publicKey).toBe(key);
      expect(curvePublicKey(pair.secretKey)).toBe(key); // the secret key makes the printed key
      const pub = readFileSync(join(dir, `${base}.key`), 'utf8');
      expect(pub).toContain(`public-key = "${key}"`);
      expect(pub).not.toContain('secret-key');
      expect(() => parseKeyFile(pub, 'pub', 'CURVE_KEY_FILE')).toThrow('not a secret key file');
    }
    const list = readAllowList(allow);
    expect(list.entries().map((e) => [e.key, e.name, e.deployer])).toEqual([
      [aliceKey, 'alice', true],
    ]);

    // An existing pair is kept; --force replaces it, and the new secret file is 0600 again.
    const again = await rtl(['keys', 'tasknode', 'b1', '--dir', dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('exists already; keep using it, or pass --force');
    const forced = await rtl(['keys', 'tasknode', 'b1', '--dir', dir, '--force']);
    expect(forced.code).toBe(0);
    expect(printedKey(forced.stdout)).not.toBe(nodeKey);
    expect(mode(join(dir, 'tasknode-b1.key_secret'))).toBe(0o600);

    const usage = await rtl(['keys', 'tasknode', 'b2', '--deployer', '--dir', dir]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--deployer is for clients');
    const help = await rtl(['--help']);
    expect(help.stdout).toMatch(/^ {2}keys +Make a CURVE key pair/m);
  });
});

describe('rtl start with CURVE', () => {
  it('runs the quickstart and a deploy over CURVE; rtl without keys is refused with RTL_ERR_AUTH', async () => {
    const runDir = tempDir('run');
    const dir = tempDir('keys');
    const allow = join(dir, 'allow');
    const relay = await rtl(['keys', 'relay', '--dir', dir, '--allow', allow]);
    const host = await rtl([
      'keys',
      'client',
      'host-a',
      '--deployer',
      '--dir',
      dir,
      '--allow',
      allow,
    ]);
    expect([relay.code, host.code]).toEqual([0, 0]);
    const plain = {
      RTL_RUN_DIR: runDir,
      RTL_CACHE_PATH: tempDir('cache'),
      RTL_TASK_WORKERS: '1',
      RTL_TASK_THREADS: '1',
      RTL_RELAY_RECV: String(await getPort()),
      RTL_RELAY_SEND: String(await getPort()),
      RTL_RELAY_PUBLISHER: String(await getPort()),
      RTL_MQTT_URL: `mqtt://127.0.0.1:${String(await getPort())}`,
      RTL_PLOT_LISTEN: String(await getPort({ host: '127.0.0.1' })),
    };
    const env = {
      ...plain,
      RTL_CURVE_SERVER_KEY_FILE: join(dir, 'relay.key_secret'),
      RTL_CURVE_ALLOW: allow,
      RTL_CURVE_SERVER_PUBLIC: printedKey(relay.stdout),
      RTL_CURVE_KEY_FILE: join(dir, 'client-host-a.key_secret'),
    };
    const pids = new Set<number>();
    onTestFinished(() => {
      for (const pid of [...pids, ...recordedPids(runDir)])
        if (pid > 1 && isAlive(pid)) process.kill(pid, 'SIGKILL');
    });

    // Without the peer keys, `rtl start` says what is missing and starts nothing.
    const half = await rtl(['start'], {
      ...plain,
      RTL_CURVE_SERVER_KEY_FILE: env.RTL_CURVE_SERVER_KEY_FILE,
      RTL_CURVE_ALLOW: allow,
    });
    expect(half.code).toBe(1);
    expect(half.stderr).toContain('CURVE_SERVER_PUBLIC and CURVE_KEY_FILE are not set');
    expect(recordedPids(runDir)).toEqual([]);

    const started = await rtl(['start'], env);
    for (const pid of recordedPids(runDir)) pids.add(pid);
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);

    // The quickstart's expected rows, from its data with a plain loop: x > 4, sum = x + y.
    const example = JSON.parse(readFileSync(join(repo, 'examples/quickstart.json'), 'utf8')) as {
      data: { x: number[]; y: number[] };
    };
    const rows: { x: number; y: number; sum: number; product: number }[] = [];
    example.data.x.forEach((x, i) => {
      const y = example.data.y[i] ?? Number.NaN;
      if (x > 4) rows.push({ x, y, sum: x + y, product: x * y });
    });
    const mean = rows.reduce((s, r) => s + r.sum, 0) / rows.length;
    const ran = await rtl(['run', 'examples/quickstart.json', '--json'], env);
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    expect((JSON.parse(ran.stdout) as { rows: unknown[] }).rows).toEqual(
      rows.map((r) => ({ ...r, sum_mean: mean })),
    );

    const status = await rtl(['status'], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`security   CURVE, relay key ${env.RTL_CURVE_SERVER_PUBLIC}`);

    const mod = join(dir, 'twice.mjs');
    writeFileSync(
      mod,
      "import { defineFunctionTask } from '@rtl/tasks';\nexport const twice = defineFunctionTask({ name: 'twice', summary: '2x', run: (x) => 2 * x });\n",
    );
    const deployed = await rtl(['deploy', mod], env);
    expect(deployed.stderr).toBe('');
    expect(deployed.code).toBe(0);
    expect(deployed.stdout).toContain('deployed twice@1');

    // rtl with no keys: refused, with what to set.
    const refused = await rtl(['status'], plain);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^rtl status: RTL_ERR_AUTH: the relay at tcp:\/\/127\.0\.0\.1:\d+ /m,
    );
    expect(refused.stderr).toContain('this client has no keys');
    const relayLog = readFileSync(join(runDir, 'logs', 'relay.log'), 'utf8');
    expect(relayLog).toContain('refused a client');

    const stopped = await rtl(['stop'], env);
    expect(stopped.code).toBe(0);
    await expect.poll(() => [...pids].filter(isAlive), { timeout: 15_000 }).toEqual([]);
  });
});
