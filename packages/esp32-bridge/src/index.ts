/** Placeholder package: the ESP32 bridge and plotnode are built in later issues. */
export const PACKAGE = '@rtl/esp32-bridge';
