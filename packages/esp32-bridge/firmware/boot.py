# Runs first at every boot: join Wi-Fi from /rtl.json (gives up after wifi.timeout_ms).
import time
from rtl import config


def _wifi():
    try:
        import network
    except ImportError:
        return
    w = config.load().get("wifi") or {}
    if not w.get("ssid"):
        return
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    if sta.isconnected():
        return
    sta.connect(w["ssid"], w.get("password", ""))
    t0 = time.ticks_ms()
    limit = w.get("timeout_ms", 15000)
    while not sta.isconnected() and time.ticks_diff(time.ticks_ms(), t0) < limit:
        time.sleep_ms(100)


_wifi()
