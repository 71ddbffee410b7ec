/**
 * What the bridge knows of each ESP node, from its retained hello and status and its beats
 * (E-2.1 to E-2.3). Pure: the clock is injected, the caller feeds it parsed payloads.
 */

export interface EspPins {
  readonly in: readonly number[];
  readonly out: readonly number[];
  readonly adc: readonly number[];
}

export interface EspStreamDecl {
  readonly name: string;
  readonly pin?: number;
  readonly hz?: number;
  readonly type?: string;
}

/** A node as the bridge sees it. */
export interface EspNode {
  readonly id: string;
  readonly fw: string;
  readonly platform: string;
  readonly tasks: readonly string[];
  readonly modules: readonly string[];
  readonly pins: EspPins;
  readonly streams: readonly EspStreamDecl[];
  /** Largest stage input the node takes, in bytes of its JSON form. */
  readonly maxInput: number;
  readonly memFree: number | null;
  /** Its retained status says online. */
  readonly online: boolean;
  /** Online, and heard (any live message) within liveness x beat. */
  readonly alive: boolean;
  /** When a live message of the node last came (epoch ms); null when only retained ones did. */
  readonly lastSeen: number | null;
  readonly busy: boolean;
  readonly boot: number | null;
}

export type NodeChange =
  | { readonly type: 'joined'; readonly id: string }
  | { readonly type: 'hello'; readonly id: string }
  | { readonly type: 'online' | 'offline'; readonly id: string }
  | { readonly type: 'alive' | 'dead'; readonly id: string };

interface Entry {
  id: string;
  fw: string;
  platform: string;
  tasks: string[];
  modules: string[];
  pins: EspPins;
  streams: EspStreamDecl[];
  maxInput: number;
  memFree: number | null;
  online: boolean;
  lastSeen: number | null;
  busy: boolean;
  boot: number | null;
  alive: boolean;
}

const str = (v: unknown, d: string): string => (typeof v === 'string' ? v : d);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const strs = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
const nums = (v: unknown): number[] =>
  Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : [];

function parseStreams(v: unknown): EspStreamDecl[] {
  if (!Array.isArray(v)) return [];
  const out: EspStreamDecl[] = [];
  for (const s of v as unknown[]) {
    if (typeof s !== 'object' || s === null) continue;
    const o = s as Record<string, unknown>;
    if (typeof o.name !== 'string') continue;
    const pin = num(o.pin);
    const hz = num(o.hz);
    out.push({
      name: o.name,
      ...(pin === null ? {} : { pin }),
      ...(hz === null ? {} : { hz }),
      ...(typeof o.type === 'string' ? { type: o.type } : {}),
    });
  }
  return out;
}

export class NodeRegistry {
  readonly #nodes = new Map<string, Entry>();
  readonly #now: () => number;
  /** A node is alive while heard within this many ms (liveness x beat). */
  readonly aliveMs: number;

  constructor(aliveMs: number, now: () => number = Date.now) {
    this.aliveMs = aliveMs;
    this.#now = now;
  }

  #entry(id: string, changes: NodeChange[]): Entry {
    let e = this.#nodes.get(id);
    if (e === undefined) {
      e = {
        id,
        fw: '',
        platform: '',
        tasks: [],
        modules: [],
        pins: { in: [], out: [], adc: [] },
        streams: [],
        maxInput: 0,
        memFree: null,
        online: false,
        lastSeen: null,
        busy: false,
        boot: null,
        alive: false,
      };
      this.#nodes.set(id, e);
      changes.push({ type: 'joined', id });
    }
    return e;
  }

  #heard(e: Entry, live: boolean): void {
    if (live) e.lastSeen = this.#now();
  }

  /** A node's hello (E-2.1). `live`: not a retained copy delivered at subscribe. */
  hello(id: string, msg: Record<string, unknown>, live: boolean): NodeChange[] {
    const changes: NodeChange[] = [];
    const e = this.#entry(id, changes);
    this.#heard(e, live);
    const pins = (typeof msg.pins === 'object' && msg.pins !== null ? msg.pins : {}) as Record<
      string,
      unknown
    >;
    e.fw = str(msg.fw, e.fw);
    e.platform = str(msg.platform, e.platform);
    e.tasks = strs(msg.tasks);
    e.modules = strs(msg.modules);
    e.pins = { in: nums(pins.in), out: nums(pins.out), adc: nums(pins.adc) };
    e.streams = parseStreams(msg.streams);
    e.maxInput = num(msg.max_input) ?? 0;
    e.memFree = num(msg.mem_free) ?? e.memFree;
    changes.push({ type: 'hello', id });
    this.#recheck(e, changes);
    return changes;
  }

  /** A node's status (E-2.2): online, or offline (its last will or a clean leave). */
  status(id: string, msg: Record<string, unknown>, live: boolean): NodeChange[] {
    const changes: NodeChange[] = [];
    const e = this.#entry(id, changes);
    const online = msg.state === 'online';
    if (online) this.#heard(e, live);
    if (online) e.boot = num(msg.boot) ?? e.boot;
    if (online !== e.online) {
      e.online = online;
      changes.push({ type: online ? 'online' : 'offline', id });
    }
    this.#recheck(e, changes);
    return changes;
  }

  /** A beat (E-2.3). */
  beat(id: string, msg: Record<string, unknown>): NodeChange[] {
    const changes: NodeChange[] = [];
    const e = this.#entry(id, changes);
    this.#heard(e, true);
    e.memFree = num(msg.mem_free) ?? e.memFree;
    e.busy = msg.busy === true;
    this.#recheck(e, changes);
    return changes;
  }

  /** Any other live message of the node (a reply, a sensor batch) counts as hearing it. */
  touch(id: string): NodeChange[] {
    const e = this.#nodes.get(id);
    if (e === undefined) return [];
    const changes: NodeChange[] = [];
    this.#heard(e, true);
    this.#recheck(e, changes);
    return changes;
  }

  /** Re-evaluate every node's liveness against the clock (call it on a timer). */
  tick(): NodeChange[] {
    const changes: NodeChange[] = [];
    for (const e of this.#nodes.values()) this.#recheck(e, changes);
    return changes;
  }

  #recheck(e: Entry, changes: NodeChange[]): void {
    const alive = e.online && e.lastSeen !== null && this.#now() - e.lastSeen < this.aliveMs;
    if (alive !== e.alive) {
      e.alive = alive;
      changes.push({ type: alive ? 'alive' : 'dead', id: e.id });
    }
  }

  get(id: string): EspNode | undefined {
    const e = this.#nodes.get(id);
    return e === undefined ? undefined : this.#view(e);
  }

  list(): EspNode[] {
    return [...this.#nodes.values()]
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((e) => this.#view(e));
  }

  #view(e: Entry): EspNode {
    return {
      id: e.id,
      fw: e.fw,
      platform: e.platform,
      tasks: [...e.tasks],
      modules: [...e.modules],
      pins: e.pins,
      streams: e.streams,
      maxInput: e.maxInput,
      memFree: e.memFree,
      online: e.online,
      alive: e.alive,
      lastSeen: e.lastSeen,
      busy: e.busy,
      boot: e.boot,
    };
  }
}
