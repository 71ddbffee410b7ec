/**
 * Cluster membership: every tasknode the relay has seen, alive or dead, and the relay itself.
 * The live ones come from the scheduler; this module keeps the dead ones (bounded, the most
 * recent first to stay) and names each member's kind. Pure: no sockets, no timers.
 *
 * ```ts
 * const book = new MemberBook(1000);
 * book.left({ ...member, state: 'dead', leftAt: now });  // a tasknode fell silent
 * book.joined(member.name);                               // it came back: no longer listed dead
 * ```
 */

/** What a member is. ESP nodes join through the bridge as tasknodes named `esp32/<id>`. */
export type MemberKind = 'relay' | 'tasknode' | 'esp32' | 'esp32-bridge';

/** One member in a STATUS `{ what: 'members' }` answer. [P-6.5] */
export interface Member {
  readonly name: string;
  readonly kind: MemberKind;
  /** `dead`: silent past liveness (HEARTBEAT_MS x HEARTBEAT_LIVENESS). */
  readonly state: 'alive' | 'dead';
  readonly host: string;
  readonly pid: number;
  /** Where the member is reached: the relay's RECV endpoint; '' for a tasknode (it connects out). */
  readonly addr: string;
  readonly queues: readonly string[];
  /** Table tasks it runs. */
  readonly tasks: number;
  /** Free worker slots (0 once dead). */
  readonly credit: number;
  /** Stages it runs now (for the relay: jobs running). */
  readonly running: number;
  /** When it joined (epoch ms). */
  readonly joinedAt: number;
  /** When it was last heard from (epoch ms). */
  readonly lastSeenAt: number;
  /** Milliseconds since it was last heard from, when the answer was made. */
  readonly lastSeenMs: number;
  /** When the relay declared it dead (epoch ms); null while it is listed alive. */
  readonly leftAt: number | null;
}

/** Dead members a relay keeps by default. */
export const MAX_DEAD_MEMBERS = 1000;

const ESP_PREFIX = 'esp32/';
const BRIDGE_NAME = 'esp32-bridge';

/**
 * A tasknode's kind, from its name: `esp32/<id>` is an ESP node (the bridge registers each
 * under that name), `esp32-bridge` the bridge itself, anything else a tasknode.
 */
export function memberKind(name: string): MemberKind {
  if (name.startsWith(ESP_PREFIX)) return 'esp32';
  if (name === BRIDGE_NAME) return 'esp32-bridge';
  return 'tasknode';
}

/** Order for listings: the relay first, then by name (numbers in names sort as numbers). */
export function compareMembers(a: Member, b: Member): number {
  if ((a.kind === 'relay') !== (b.kind === 'relay')) return a.kind === 'relay' ? -1 : 1;
  return (
    a.name.localeCompare(b.name, undefined, { numeric: true }) ||
    (a.state === b.state ? 0 : a.state === 'alive' ? -1 : 1) ||
    b.lastSeenAt - a.lastSeenAt
  );
}

/** The dead members, by name: a node that rejoins under its name is no longer listed dead. */
export class MemberBook {
  readonly #limit: number;
  /** Insertion order is the order they died in: the first is the oldest. */
  readonly #dead = new Map<string, Member>();

  constructor(limit = MAX_DEAD_MEMBERS) {
    this.#limit = Math.max(0, limit);
  }

  /** A member died: list it dead (replacing an older death under its name); drop the oldest past the limit. */
  left(member: Member): void {
    this.#dead.delete(member.name);
    this.#dead.set(member.name, member);
    while (this.#dead.size > this.#limit) {
      const oldest = this.#dead.keys().next();
      if (oldest.done === true) break;
      this.#dead.delete(oldest.value);
    }
  }

  /** A member under this name joined (again). */
  joined(name: string): void {
    this.#dead.delete(name);
  }

  /** The dead members, with `lastSeenMs` as of `now`. */
  dead(now: number): Member[] {
    return [...this.#dead.values()].map((m) => ({ ...m, lastSeenMs: now - m.lastSeenAt }));
  }

  get size(): number {
    return this.#dead.size;
  }
}
