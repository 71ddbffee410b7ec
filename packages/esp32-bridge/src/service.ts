/**
 * The bridge as `rtl start` runs it: the MQTT side (EspBridge) and the relay side (RelayLink)
 * together. Stages routed to `esp32` or `esp32/<id>` run on the live ESP nodes.
 *
 * ```ts
 * const service = await EspService.start(loadConfig({ env: process.env }), { log });
 * service.bridge.nodes();   // the ESP nodes the bridge has heard of
 * await service.close();
 * ```
 */
import { hostname } from 'node:os';
import { peerCurve, relayEndpoints, silentLogger, type Config, type Logger } from '@rtl/core';
import { EspBridge, type EspBridgeWindowOptions } from './bridge.js';
import { RelayLink, type EspCluster } from './relay-link.js';

/** The name the bridge itself has at the relay (a tasknode with no credit). */
export const BRIDGE_NODE_NAME = 'esp32-bridge';

export type EspServiceSettings = Pick<
  Config,
  | 'MQTT_URL'
  | 'MQTT_EMBEDDED'
  | 'RELAY_ADDR'
  | 'RELAY_LISTEN'
  | 'RELAY_RECV'
  | 'RELAY_SEND'
  | 'RELAY_PUBLISHER'
  | 'HEARTBEAT_MS'
  | 'HEARTBEAT_LIVENESS'
  | 'MAX_MESSAGE_BYTES'
  | 'CURVE_SERVER_PUBLIC'
  | 'CURVE_KEY_FILE'
>;

export interface EspServiceOptions {
  readonly log?: Logger;
  /** The bridge's name at the relay; default `esp32-bridge`. */
  readonly name?: string;
  /** The ESP nodes' beat interval in ms (E-2.3); default 5,000. */
  readonly beatMs?: number;
  /** The relay's SEND endpoint; default from RELAY_ADDR and RELAY_SEND. */
  readonly relay?: string;
  /** Window limits of the sensor streams (samples kept per stream, streams, pending windows). */
  readonly window?: EspBridgeWindowOptions;
}

export class EspService {
  readonly bridge: EspBridge;
  readonly link: RelayLink;

  private constructor(bridge: EspBridge, link: RelayLink) {
    this.bridge = bridge;
    this.link = link;
  }

  static async start(
    settings: EspServiceSettings,
    opts: EspServiceOptions = {},
  ): Promise<EspService> {
    const log = opts.log ?? silentLogger();
    const curve = peerCurve(settings, 'the ESP32 bridge');
    const bridge = await EspBridge.start({
      url: settings.MQTT_URL,
      embedded: settings.MQTT_EMBEDDED,
      log,
      ...(opts.beatMs === undefined ? {} : { beatMs: opts.beatMs }),
      ...(opts.window === undefined ? {} : { window: opts.window }),
    });
    const relay = opts.relay ?? relayEndpoints(settings).send;
    const link = new RelayLink(clusterOf(bridge), {
      relay,
      settings,
      log,
      ...(curve === undefined ? {} : { curve }),
      presence: opts.name ?? BRIDGE_NODE_NAME,
    });
    log.info(
      {
        broker: bridge.broker,
        mqtt: settings.MQTT_URL,
        relay,
        host: hostname(),
      },
      'ESP32 bridge running',
    );
    return new EspService(bridge, link);
  }

  async close(): Promise<void> {
    await this.link.close();
    await this.bridge.close();
  }
}

/** The bridge as the relay link sees it: its nodes, their changes, and `task` commands (E-3.1). */
export function clusterOf(bridge: EspBridge): EspCluster {
  return {
    nodes: () => bridge.nodes(),
    onChange: (listener) => bridge.onChange((change) => listener(change.id)),
    node: (id) => bridge.node(id),
    runTask: (id, task, args, input, opts) =>
      bridge.command(
        id,
        { op: 'task', task, args: [...args], ...(input === undefined ? {} : { input }) },
        opts ?? {},
      ),
  };
}
