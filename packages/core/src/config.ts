// Owned by the config work: SETTINGS table, loadConfig. Interim shape.
export interface Config {
  readonly [key: string]: unknown;
}
