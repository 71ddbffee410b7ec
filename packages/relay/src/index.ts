export {
  Relay,
  type RelayEndpoints,
  type RelayOptions,
  type RelaySettings,
  type RelayStatus,
  type NodeStatus,
  type TaskListing,
  type ModuleListing,
} from './relay.js';
export { MODULE_NAME } from './modules.js';
export {
  Scheduler,
  type Assignment,
  type NodeHello,
  type NodeState,
  type Placement,
} from './scheduler.js';
export {
  MemberBook,
  MAX_DEAD_MEMBERS,
  compareMembers,
  memberKind,
  type Member,
  type MemberKind,
} from './members.js';
