/**
 * Python sources of the hardware modules the firmware imports, written into the virtual
 * node's file system under /lib. They call the per-node JS modules `_vmqtt` and `_vmachine`.
 */
export const SHIMS: Record<string, string> = {
  '/lib/umqtt/__init__.py': '',
  '/lib/umqtt/simple.py': `import _vmqtt
import ubinascii


class MQTTException(Exception):
    pass


class _Sock:
    def __init__(self, h):
        self.h = h

    def close(self):
        _vmqtt.close(self.h)


class MQTTClient:
    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0, ssl=False, ssl_params={}):
        self.client_id = client_id
        self.server = server
        self.port = port or 1883
        self.user = user or ""
        self.pswd = password or ""
        self.keepalive = keepalive
        self.cb = None
        self.lw = None
        self.h = -1
        self.sock = None

    def set_callback(self, f):
        self.cb = f

    def set_last_will(self, topic, msg, retain=False, qos=0):
        if isinstance(msg, str):
            msg = msg.encode()
        self.lw = (topic, ubinascii.hexlify(msg).decode(), bool(retain), qos)

    def connect(self, clean_session=True, timeout=None):
        lw = self.lw or ("", "", False, 0)
        self.h = _vmqtt.connect(self.client_id, self.server, self.port, self.user, self.pswd, self.keepalive, lw[0], lw[1], lw[2], lw[3])
        self.sock = _Sock(self.h)
        self._check()
        return False

    def _check(self):
        err = _vmqtt.error(self.h)
        if err:
            raise OSError(err)

    def disconnect(self):
        _vmqtt.disconnect(self.h)

    def ping(self):
        self._check()

    def publish(self, topic, msg, retain=False, qos=0):
        self._check()
        if isinstance(msg, str):
            msg = msg.encode()
        _vmqtt.publish(self.h, topic, ubinascii.hexlify(msg).decode(), bool(retain), qos)

    def subscribe(self, topic, qos=0):
        self._check()
        _vmqtt.subscribe(self.h, topic, qos)

    def wait_msg(self):
        return self.check_msg()

    def check_msg(self):
        self._check()
        t = _vmqtt.next_topic(self.h)
        if t is None:
            return None
        p = ubinascii.unhexlify(_vmqtt.next_payload(self.h))
        if self.cb:
            self.cb(t.encode(), p)
`,
  '/lib/machine.py': `import _vmachine
import ubinascii


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        _vmachine.pin_init(self.id, mode, pull)
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return _vmachine.pin_get(self.id)
        _vmachine.pin_set(self.id, 1 if v else 0)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def __call__(self, v=None):
        return self.value(v)


class ADC:
    ATTN_0DB = 0
    ATTN_11DB = 3
    WIDTH_12BIT = 3

    def __init__(self, pin, atten=None):
        self.pin = pin.id if isinstance(pin, Pin) else pin

    def atten(self, a):
        pass

    def width(self, w):
        pass

    def read(self):
        return _vmachine.adc(self.pin)

    def read_u16(self):
        r = _vmachine.adc(self.pin)
        return (r << 4) | (r >> 8)


def unique_id():
    return ubinascii.unhexlify(_vmachine.unique_id())


def freq(f=None):
    return 240000000


def reset():
    _vmachine.reset()
    raise SystemExit("machine.reset")


def soft_reset():
    reset()
`,
  '/lib/network.py': `import machine

STA_IF = 0
AP_IF = 1


class WLAN:
    def __init__(self, interface=STA_IF):
        self.interface = interface
        self._active = False

    def active(self, a=None):
        if a is None:
            return self._active
        self._active = bool(a)

    def connect(self, ssid=None, key=None):
        pass

    def disconnect(self):
        pass

    def isconnected(self):
        return True

    def status(self):
        return 1010

    def config(self, name):
        if name == "mac":
            return b"\\x24\\x0a" + machine.unique_id()[-4:]
        return None

    def ifconfig(self):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
`,
};
