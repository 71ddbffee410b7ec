export {
  Client,
  defaultRelayEndpoint,
  type ClientOptions,
  type DeployOptions,
  type DeployResult,
  type ExecuteOptions,
  type TaskEntry,
} from './client.js';
export { Job, type JobEvent, type JobState } from './job.js';
export { Transform, type TransformFactory, type TransformHandle } from './transform.js';
