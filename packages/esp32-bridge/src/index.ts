/** @rtl/esp32-bridge: ESP32 nodes over MQTT (docs/esp32-protocol.md). */
export { EspBridge } from './bridge.js';
export type {
  CommandOptions,
  EspBridgeOptions,
  EspBridgeStats,
  EspBridgeWindowOptions,
  EspCommand,
} from './bridge.js';
export { connectBroker, probeTcp } from './broker.js';
export type { BrokerConnectOptions, BrokerConnection, EmbeddedMode } from './broker.js';
export { NodeRegistry } from './node-registry.js';
export type { EspNode, EspPins, EspStreamDecl, NodeChange } from './node-registry.js';
export {
  BATCH_HEADER_BYTES,
  BATCH_MAGIC,
  BATCH_MAX_SAMPLES,
  BATCH_VERSION,
  SAMPLE_TYPES,
  decodeBatch,
} from './batch.js';
export type { DecodeBatchResult, SampleBatch, SampleTypeCode } from './batch.js';
export { SampleRing, StreamWindow, WindowSubscription } from './sensor-window.js';
export type { StreamInfo, WindowSpec } from './sensor-window.js';
export {
  BRIDGE_SUBSCRIPTIONS,
  TOPIC_PREFIX,
  isValidName,
  nodeTopic,
  parseTopic,
  sensorTopic,
} from './topics.js';
export type { NodeTopicKind, ParsedTopic } from './topics.js';
export { RelayLink, ESP_QUEUE, espTasknodeName } from './relay-link.js';
export type { EspCluster, EspNodeView, RelayLinkOptions, RelayLinkSettings } from './relay-link.js';
export { EspService, BRIDGE_NODE_NAME, clusterOf } from './service.js';
export type { EspServiceOptions, EspServiceSettings } from './service.js';
export { transformStream } from './stream-transform.js';
export type { TransformStreamOptions, WindowResult } from './stream-transform.js';
