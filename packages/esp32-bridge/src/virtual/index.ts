/** The virtual ESP32 node: `import { VirtualEsp32 } from '@rtl/esp32-bridge/virtual'`. */
export { VirtualEsp32, FIRMWARE_DIR } from './virtual-esp32.js';
export type { VirtualEsp32Options, VirtualStream, SignalSource } from './virtual-esp32.js';
