export { Tasknode, type TasknodeOptions, type TasknodeSettings } from './tasknode.js';
