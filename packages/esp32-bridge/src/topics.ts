/**
 * MQTT topics of the ESP32 protocol (docs/esp32-protocol.md, E-1.3); no other module builds
 * or parses them.
 */

export const TOPIC_PREFIX = 'rtl/v1/';

/** What a node publishes under `rtl/v1/nodes/<id>/`, and what the bridge sends there. */
export type NodeTopicKind = 'hello' | 'status' | 'beat' | 'cmd' | 'reply';

const ID = /^[A-Za-z0-9_-]{1,32}$/;

/** Whether `id` is a valid node id or stream name (1 to 32 of `[A-Za-z0-9_-]`, E-1.1, E-4.1). */
export function isValidName(id: string): boolean {
  return ID.test(id);
}

export function nodeTopic(id: string, kind: NodeTopicKind): string {
  return `${TOPIC_PREFIX}nodes/${id}/${kind}`;
}

export function sensorTopic(id: string, stream: string): string {
  return `${TOPIC_PREFIX}sensors/${id}/${stream}`;
}

/** The subscriptions of the bridge: everything nodes publish. */
export const BRIDGE_SUBSCRIPTIONS = {
  nodes: `${TOPIC_PREFIX}nodes/+/+`,
  sensors: `${TOPIC_PREFIX}sensors/+/+`,
} as const;

export type ParsedTopic =
  | { readonly type: 'node'; readonly id: string; readonly kind: NodeTopicKind }
  | { readonly type: 'sensor'; readonly id: string; readonly stream: string };

const KINDS: readonly string[] = ['hello', 'status', 'beat', 'cmd', 'reply'];

/** Parse a topic of the protocol; undefined for anything else (wrong prefix, bad id). */
export function parseTopic(topic: string): ParsedTopic | undefined {
  if (!topic.startsWith(TOPIC_PREFIX)) return undefined;
  const parts = topic.slice(TOPIC_PREFIX.length).split('/');
  if (parts.length !== 3) return undefined;
  const [group, id, last] = parts as [string, string, string];
  if (!isValidName(id)) return undefined;
  if (group === 'nodes' && KINDS.includes(last))
    return { type: 'node', id, kind: last as NodeTopicKind };
  if (group === 'sensors' && isValidName(last)) return { type: 'sensor', id, stream: last };
  return undefined;
}
