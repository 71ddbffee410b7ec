export { Relay, type RelayEndpoints, type RelayOptions, type RelaySettings, type RelayStatus, type NodeStatus } from './relay.js';
export { Scheduler, type Assignment, type NodeHello, type NodeState, type Placement } from './scheduler.js';
