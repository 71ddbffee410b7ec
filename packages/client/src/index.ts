export {
  Client,
  defaultRelayEndpoint,
  type ClientOptions,
  type DeployOptions,
  type DeployResult,
  type ExecuteOptions,
  type SubmitCanvasOptions,
  type TaskEntry,
} from './client.js';
export { Job, type JobEvent, type JobState } from './job.js';
export { Transform, type TransformFactory, type TransformHandle } from './transform.js';
export {
  AsyncResult,
  Canvas,
  Chain,
  Chord,
  Group,
  MapSignature,
  Signature,
  asyncResult,
  chain,
  chord,
  closeDefaultClient,
  defaultClient,
  group,
  setDefaultClient,
  task,
  type ApplyOptions,
  type CanvasWire,
  type ResultState,
  type TaskHandle,
} from './canvas.js';
