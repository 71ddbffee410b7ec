export { Client, defaultRelayEndpoint, type ClientOptions, type ExecuteOptions } from './client.js';
export { Job, type JobEvent, type JobState } from './job.js';
export { Transform, type TransformFactory, type TransformHandle } from './transform.js';
