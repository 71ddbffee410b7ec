/**
 * A virtual ESP32: the firmware in `packages/esp32-bridge/firmware/` run unchanged under the
 * MicroPython WebAssembly port, with `umqtt.simple` over MQTT.js, a simulated `machine`
 * (pins, ADC from signal functions, reset) and an always-connected `network`.
 *
 * ```ts
 * const node = await VirtualEsp32.start({ brokerUrl: 'mqtt://127.0.0.1:1883', id: 'v1' });
 * // ... drive it over MQTT per docs/esp32-protocol.md ...
 * await node.stop();
 * ```
 * Gotcha: `kill()` drops the TCP connection without DISCONNECT, so the broker publishes the
 * node's last will (retained offline status); `stop()` goes away cleanly.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { Interpreter } from './interpreter.js';
import { SHIMS } from './shims.js';

/** A stream the node samples (E-4.1); `pin` is read through the simulated ADC. */
export interface VirtualStream {
  name: string;
  pin: number;
  hz: number;
  type: 'f32' | 'i16' | 'u16' | 'i32' | 'f64';
}

/** Gives the raw 12-bit ADC reading (0..4095) of `pin` at `tMs` ms since the node's boot. */
export type SignalSource = (pin: number, tMs: number) => number;

export interface VirtualEsp32Options {
  /** `mqtt://host:port` of the broker. */
  brokerUrl: string;
  /** Node id, 1 to 32 characters of `[A-Za-z0-9_-]`. */
  id: string;
  /** Levels that external circuits put on input pins. */
  pins?: Record<number, 0 | 1>;
  /** ADC signal per pin; pins without one read 0. */
  signals?: Record<number, SignalSource>;
  streams?: VirtualStream[];
  beatMs?: number;
  /** Samples per batch (default 10). */
  batchN?: number;
  /** MicroPython heap of the node, bytes (default 256 KiB). */
  heapBytes?: number;
  /** Lines the firmware prints (default: dropped). */
  stdout?: (line: string) => void;
}

interface Conn {
  client: MqttClient;
  queue: { topic: string; payload: string }[];
  error: string;
  /**
   * Publishes and subscribes the firmware made before the CONNACK, sent in order once it
   * comes (umqtt's connect blocks until then; MQTT.js's offline queue may not keep order).
   */
  early: (() => void)[] | undefined;
}

const ID_RE = /^[A-Za-z0-9_-]{1,32}$/;
const here = dirname(fileURLToPath(import.meta.url));
/** The firmware directory (src/virtual and dist/virtual are both two levels down). */
export const FIRMWARE_DIR = join(here, '..', '..', 'firmware');
/**
 * The longest the node sleeps between polls. A board polls its socket every 20 ms; here an
 * arriving message wakes the node at once, so it sleeps until its next sample, beat or this.
 */
const IDLE_CAP_MS = 100;
const SKIP = new Set(['dev', 'proc', 'tmp', 'home', 'lib']);

function firmwareFiles(dir: string, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      for (const [k, v] of firmwareFiles(p, prefix + '/' + name)) out.set(k, v);
    } else if (name.endsWith('.py')) {
      out.set(prefix + '/' + name, readFileSync(p, 'utf8'));
    }
  }
  return out;
}

export class VirtualEsp32 {
  readonly id: string;
  private interp: Interpreter | undefined;
  private step: { poll: () => unknown; idle: (cap: number) => unknown } | undefined;
  private conns = new Map<number, Conn>();
  /** Connections the firmware closed whose close has not finished. */
  private closing = new Set<Promise<void>>();
  private nextHandle = 1;
  private timer: NodeJS.Timeout | undefined;
  private bootAt = 0;
  private resetRequested = false;
  private running = false;
  private files = new Map<string, Uint8Array>();
  private readonly pinOut = new Map<number, 0 | 1>();
  private readonly pinPull = new Map<number, number>();
  private readonly opts: VirtualEsp32Options;
  /** Boots done by this node (1 after start). */
  boots = 0;

  private constructor(opts: VirtualEsp32Options) {
    if (!ID_RE.test(opts.id)) throw new Error(`virtual ESP32: bad node id "${opts.id}"`);
    this.opts = opts;
    this.id = opts.id;
    const url = new URL(opts.brokerUrl);
    const cfg = {
      id: opts.id,
      platform: 'esp32-virtual',
      broker: {
        host: url.hostname,
        port: Number(url.port || 1883),
        user: url.username || undefined,
        password: url.password || undefined,
        keepalive: 15,
      },
      beat_ms: opts.beatMs ?? 5000,
      streams: opts.streams ?? [],
      batch_n: opts.batchN ?? 10,
      max_input: 4096,
    };
    this.files.set('/rtl.json', new TextEncoder().encode(JSON.stringify(cfg)));
  }

  /** Boots a node and starts its poll loop; resolves once the agent is constructed. */
  static async start(opts: VirtualEsp32Options): Promise<VirtualEsp32> {
    const node = new VirtualEsp32(opts);
    await node.boot();
    return node;
  }

  private async boot(): Promise<void> {
    const stdout = this.opts.stdout ?? (() => undefined);
    const interp = await Interpreter.load(this.opts.heapBytes ?? 256 * 1024, stdout);
    this.interp = interp;
    this.bootAt = Date.now();
    this.resetRequested = false;
    this.pinOut.clear();
    this.pinPull.clear();
    const fs = interp.fs;
    const mkdirs = (path: string): void => {
      const parts = path.split('/').slice(1, -1);
      let cur = '';
      for (const p of parts) {
        cur += '/' + p;
        try {
          fs.mkdir(cur);
        } catch {
          // exists
        }
      }
    };
    const write = (path: string, data: string | Uint8Array): void => {
      mkdirs(path);
      fs.writeFile(path, data);
    };
    for (const [p, src] of firmwareFiles(FIRMWARE_DIR)) write(p, src);
    for (const [p, src] of Object.entries(SHIMS)) write(p, src);
    for (const [p, data] of this.files) write(p, data);
    interp.registerJsModule('_vmqtt', this.mqttModule());
    interp.registerJsModule('_vmachine', this.machineModule());
    interp.exec('import os\nos.chdir("/")\nexec(open("/boot.py").read(), {"__name__": "boot"})');
    interp.exec('from rtl import agent as _rtl_agent\n_node = _rtl_agent.Agent()');
    this.step = { poll: interp.fn('_node.poll'), idle: interp.fn('_node.idle_ms') };
    this.boots++;
    this.running = true;
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.poll();
    }, ms);
  }

  private poll(): void {
    const step = this.step;
    if (!this.running || step === undefined) return;
    let idle = IDLE_CAP_MS;
    try {
      step.poll();
      idle = Number(step.idle(IDLE_CAP_MS));
    } catch (e) {
      if (!this.resetRequested) {
        process.stderr.write(`virtual ESP32 ${this.id}: ${String(e).slice(0, 2000)}\n`);
      }
    }
    if (this.resetRequested) {
      void this.restart();
      return;
    }
    this.schedule(Math.max(1, Math.min(idle, IDLE_CAP_MS)));
  }

  private snapshot(): void {
    const interp = this.interp;
    if (interp === undefined) return;
    const fs = interp.fs;
    const files = new Map<string, Uint8Array>();
    const walk = (dir: string): void => {
      for (const name of fs.readdir(dir)) {
        if (name === '.' || name === '..') continue;
        if (dir === '/' && SKIP.has(name)) continue;
        const p = (dir === '/' ? '' : dir) + '/' + name;
        if (fs.isDir(fs.stat(p).mode)) walk(p);
        else files.set(p, fs.readFile(p));
      }
    };
    walk('/');
    this.files = files;
  }

  private async restart(): Promise<void> {
    this.running = false;
    this.snapshot();
    await this.closeAll(false);
    this.interp = undefined;
    this.step = undefined;
    await this.boot();
  }

  private async closeAll(abrupt: boolean): Promise<void> {
    const ends: Promise<void>[] = [];
    for (const c of this.conns.values()) {
      if (abrupt) c.client.stream.destroy();
      ends.push(
        new Promise<void>((resolve) => {
          c.client.end(abrupt, {}, () => resolve());
        }),
      );
    }
    this.conns.clear();
    // A reboot must not connect again (same client id) before the old DISCONNECT is done:
    // the broker would take the old session over and publish its last will.
    await Promise.all([...ends, ...this.closing]);
  }

  /** Drops the MQTT connection without DISCONNECT (the broker publishes the will) and halts. */
  async kill(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.closeAll(true);
    this.interp = undefined;
    this.step = undefined;
  }

  /** Goes away cleanly: the agent publishes its offline status and disconnects. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    try {
      this.interp?.exec('_node.shutdown()');
    } catch {
      // the node is going away either way
    }
    await this.closeAll(false);
    this.interp = undefined;
    this.step = undefined;
  }

  /**
   * Stops running the firmware but keeps the connection up, as a board stuck in a long
   * computation: commands queue up unanswered and beats stop. `kill()` or `stop()` after.
   */
  freeze(): void {
    this.running = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  /**
   * Evaluates a Python expression in the node's interpreter (`_node` is its agent), for tests
   * and debugging: a str, int, float, bool or None.
   */
  inspect(expr: string): unknown {
    if (this.interp === undefined) throw new Error(`virtual ESP32 ${this.id} is not running`);
    return this.interp.value(expr);
  }

  /** Messages that arrived and the firmware has not taken yet. */
  get inbox(): number {
    let n = 0;
    for (const c of this.conns.values()) n += c.queue.length;
    return n;
  }

  /** Sets the level an external circuit puts on an input pin. */
  setPin(pin: number, level: 0 | 1): void {
    (this.opts.pins ??= {})[pin] = level;
  }

  private mqttModule(): object {
    const conn = (h: number): Conn | undefined => this.conns.get(h);
    return {
      connect: (
        clientId: string,
        host: string,
        port: number,
        user: string,
        password: string,
        keepalive: number,
        willTopic: string,
        willHex: string,
        willRetain: boolean,
        willQos: number,
      ): number => {
        const h = this.nextHandle++;
        const client = mqtt.connect(`mqtt://${host}:${String(port)}`, {
          clientId,
          clean: true,
          keepalive,
          reconnectPeriod: 0,
          protocolVersion: 4,
          ...(user ? { username: user, password } : {}),
          ...(willTopic
            ? {
                will: {
                  topic: willTopic,
                  payload: Buffer.from(willHex, 'hex'),
                  retain: willRetain,
                  qos: willQos === 1 ? 1 : 0,
                },
              }
            : {}),
        });
        const c: Conn = { client, queue: [], error: '', early: [] };
        client.once('connect', () => {
          const early = c.early ?? [];
          c.early = undefined;
          for (const f of early) f();
        });
        client.on('message', (topic, payload) => {
          c.queue.push({ topic, payload: payload.toString('hex') });
          this.schedule(0);
        });
        client.on('error', (e) => {
          c.error ||= e.message || 'ECONNRESET';
        });
        client.on('close', () => {
          c.error ||= 'ECONNRESET';
        });
        this.conns.set(h, c);
        return h;
      },
      error: (h: number): string => conn(h)?.error ?? 'EBADF',
      publish: (h: number, topic: string, hex: string, retain: boolean, qos: number): void => {
        const c = conn(h);
        if (c === undefined) return;
        const payload = Buffer.from(hex, 'hex');
        const send = (): void => {
          c.client.publish(topic, payload, { retain, qos: qos === 1 ? 1 : 0 });
        };
        if (c.early === undefined) send();
        else c.early.push(send);
      },
      subscribe: (h: number, topic: string, qos: number): void => {
        const c = conn(h);
        if (c === undefined) return;
        const send = (): void => {
          c.client.subscribe(topic, { qos: qos === 1 ? 1 : 0 });
        };
        if (c.early === undefined) send();
        else c.early.push(send);
      },
      next_topic: (h: number): string | null => conn(h)?.queue[0]?.topic ?? null,
      next_payload: (h: number): string => conn(h)?.queue.shift()?.payload ?? '',
      disconnect: (h: number): void => {
        const c = conn(h);
        if (c === undefined) return;
        this.conns.delete(h);
        const done = new Promise<void>((resolve) => {
          c.client.end(false, {}, () => resolve());
        });
        this.closing.add(done);
        void done.then(() => this.closing.delete(done));
      },
      close: (h: number): void => {
        const c = conn(h);
        if (c === undefined) return;
        this.conns.delete(h);
        c.client.stream.destroy();
        c.client.end(true);
      },
    };
  }

  private machineModule(): object {
    return {
      pin_init: (pin: number, _mode: number, pull: number): void => {
        if (pull >= 0) this.pinPull.set(pin, pull);
      },
      pin_get: (pin: number): number => {
        const ext = this.opts.pins?.[pin];
        if (ext !== undefined) return ext;
        const out = this.pinOut.get(pin);
        if (out !== undefined) return out;
        return this.pinPull.get(pin) === 2 ? 1 : 0;
      },
      pin_set: (pin: number, v: number): void => {
        this.pinOut.set(pin, v ? 1 : 0);
      },
      adc: (pin: number): number => {
        const f = this.opts.signals?.[pin];
        if (f === undefined) return 0;
        const raw = Math.round(f(pin, Date.now() - this.bootAt));
        return Math.max(0, Math.min(4095, raw));
      },
      unique_id: (): string => {
        let h = 0x811c9dc5;
        for (const ch of this.id) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
        return '0000' + h.toString(16).padStart(8, '0');
      },
      reset: (): void => {
        this.resetRequested = true;
      },
    };
  }
}
