export {
  Plotnode,
  type PlotnodeInfo,
  type PlotnodeOptions,
  type PlotnodeSettings,
} from './plotnode.js';
export { HttpError, JsonServer, type JsonServerOptions, type Route } from './http-server.js';
