# The node agent (docs/esp32-protocol.md): a non-blocking poll() step, driven by main.py on a
# board and by a JS timer in the virtual node.
import gc
import io
import os
import sys
import time

try:
    import ujson as json
except ImportError:
    import json

import machine
from umqtt.simple import MQTTClient
from rtl import config
from rtl.sensors import Stream
from rtl.values import plain

FW = "0.1.0"
OFFLINE = b'{"v":1,"state":"offline"}'
# A connection that lasts this long resets the reconnect backoff to 1 s.
STABLE_MS = 3000
OPS = ("ping", "task", "eval", "exec", "gpio_read", "gpio_write", "adc_read", "script", "deploy", "reboot")


def _mean(xs):
    return sum(xs) / len(xs)


BUILTINS = {"add": lambda a, b: a + b, "mean": _mean, "sum": lambda xs: sum(xs), "echo": lambda x: x}


class CommandError(Exception):
    pass


class BadCommand(Exception):
    pass


def _ensure_dir(path):
    try:
        os.mkdir(path)
    except OSError:
        pass


def _listpy(path):
    try:
        return sorted(n[:-3] for n in os.listdir(path) if n.endswith(".py"))
    except OSError:
        return []


class Agent:
    def __init__(self, cfg=None):
        self.cfg = cfg or config.load()
        self.id = self.cfg["id"]
        base = "rtl/v1/nodes/" + self.id + "/"
        self.t_hello = base + "hello"
        self.t_status = base + "status"
        self.t_beat = base + "beat"
        self.t_cmd = base + "cmd"
        self.t_reply = base + "reply"
        self.t_sensors = "rtl/v1/sensors/" + self.id + "/"
        self.boot = config.bump_boot()
        self.client = None
        self.backoff_ms = 1000
        self._stable_at = None
        self._last = time.ticks_ms()
        self._up_us = 0
        self._next_connect = 0
        self._next_beat = 0
        self._last_tx = 0
        self._got = False
        self.tasks = {}
        for k in BUILTINS:
            self.tasks[k] = BUILTINS[k]
        self.modules = {}
        self.ns = {"agent": self, "__name__": "__rtl__"}
        self.boot_results = {}
        self.streams = []
        for spec in self.cfg["streams"]:
            try:
                self.streams.append(Stream(spec, self.cfg["batch_n"], self.cfg["batch_ms"]))
            except Exception as e:
                sys.print_exception(e)
        _ensure_dir("/tasks")
        _ensure_dir("/scripts")
        if "/tasks" not in sys.path:
            sys.path.append("/tasks")
        for m in _listpy("/tasks"):
            try:
                self._load_module(m)
            except Exception as e:
                sys.print_exception(e)
        for name in self._boot_scripts():
            try:
                self.boot_results[name] = plain(self._run_script(name))
            except Exception as e:
                self.boot_results[name] = {"error": type(e).__name__}

    # -- time ---------------------------------------------------------------------------------
    def _tick(self):
        now = time.ticks_ms()
        self._up_us += time.ticks_diff(now, self._last) * 1000
        self._last = now
        return self._up_us // 1000

    def up_ms(self):
        return self._tick()

    def idle_ms(self, cap=20):
        """How long main.py may sleep before the next poll (at most cap ms)."""
        up = self._up_us // 1000
        if self.client is None:
            d = min(cap, self._next_connect - up)
        else:
            d = min(cap, self._next_beat - up, self._last_tx + self.cfg["broker"]["keepalive"] * 500 - up)
        d = max(0, d)
        for s in self.streams:
            if s.next_us is not None:
                d = min(d, max(0, (s.next_us - self._up_us) // 1000))
        return d

    # -- the step -----------------------------------------------------------------------------
    def poll(self):
        up = self._tick()
        if self.client is None:
            if up >= self._next_connect:
                self._connect(up)
        else:
            try:
                for _ in range(4):
                    self._got = False
                    self.client.check_msg()
                    if not self._got:
                        break
                up = self._tick()
                if self._stable_at is not None and up >= self._stable_at:
                    # Up for a while: the next loss starts again at 1 s.
                    self.backoff_ms = 1000
                    self._stable_at = None
                if up >= self._next_beat:
                    self._next_beat = up + self.cfg["beat_ms"]
                    self._pub(self.t_beat, self._json({"v": 1, "up_ms": up, "mem_free": gc.mem_free(), "busy": False}))
                elif up - self._last_tx > self.cfg["broker"]["keepalive"] * 500:
                    self.client.ping()
                    self._last_tx = up
            except Exception as e:
                self._lost(e)
        for s in self.streams:
            s.step(self._up_us, self._send_batch)

    def _send_batch(self, name, payload):
        if self.client is None:
            return
        try:
            self._pub(self.t_sensors + name, payload)
        except Exception as e:
            self._lost(e)

    def _pub(self, topic, msg, retain=False, qos=0):
        self.client.publish(topic, msg, retain, qos)
        self._last_tx = self._up_us // 1000

    def _json(self, obj):
        return json.dumps(obj)

    # -- connection ---------------------------------------------------------------------------
    def _connect(self, up):
        b = self.cfg["broker"]
        c = MQTTClient("rtl-" + self.id, b["host"], b["port"], b.get("user"), b.get("password"), b["keepalive"])
        c.set_callback(self._on_msg)
        c.set_last_will(self.t_status, OFFLINE, True, 1)
        try:
            c.connect()
            self.client = c
            c.subscribe(self.t_cmd, 1)
            self._hello()
            self._pub(self.t_status, self._json({"v": 1, "state": "online", "boot": self.boot}), True, 1)
            self._stable_at = up + STABLE_MS
            self._next_beat = up
        except Exception as e:
            self.client = c
            self._lost(e)

    def _lost(self, e):
        c = self.client
        self.client = None
        self._stable_at = None
        try:
            c.sock.close()
        except Exception:
            pass
        self._next_connect = self._tick() + self.backoff_ms
        self.backoff_ms = min(self.backoff_ms * 2, 30000)

    def _hello(self):
        msg = {
            "v": 1,
            "id": self.id,
            "fw": FW,
            "platform": self.cfg.get("platform", sys.platform),
            "mem_free": gc.mem_free(),
            "tasks": sorted(self.tasks.keys()),
            "modules": sorted(self.modules.keys()),
            "pins": self.cfg["pins"],
            "streams": [s.describe() for s in self.streams],
            "max_input": self.cfg["max_input"],
        }
        self._pub(self.t_hello, self._json(msg), True, 1)

    def shutdown(self):
        """Goes away cleanly: offline status, then DISCONNECT (E-2.2)."""
        if self.client is None:
            return
        try:
            self._pub(self.t_status, OFFLINE, True, 1)
            self.client.disconnect()
        except Exception:
            pass
        self.client = None

    # -- commands -----------------------------------------------------------------------------
    def _on_msg(self, topic, msg):
        self._got = True
        rid = None
        reboot = False
        try:
            try:
                cmd = json.loads(msg)
            except Exception:
                raise BadCommand("payload is not valid JSON")
            if not isinstance(cmd, dict):
                raise BadCommand("payload is not an object")
            rid = cmd.get("rid")
            if not isinstance(rid, str):
                rid = None
            if cmd.get("v") != 1:
                raise BadCommand("unknown version %r" % (cmd.get("v"),))
            if rid is None:
                raise BadCommand("rid missing")
            op = cmd.get("op")
            if op not in OPS:
                raise BadCommand("unknown op %r" % (op,))
            value = self._run(op, cmd)
            reboot = op == "reboot"
            out = {"v": 1, "rid": rid, "ok": True, "value": plain(value)}
        except Exception as e:
            buf = io.StringIO()
            sys.print_exception(e, buf)
            name = type(e).__name__
            out = {"v": 1, "rid": rid, "ok": False, "error": {"type": name, "message": str(e), "traceback": buf.getvalue()}}
        cmd = None
        gc.collect()
        self._pub(self.t_reply, self._json(out), False, 1)
        out = None
        gc.collect()
        if reboot:
            self.shutdown()
            machine.reset()

    def _run(self, op, cmd):
        if op == "ping":
            return {"up_ms": self._tick(), "mem_free": gc.mem_free()}
        if op == "eval":
            return eval(cmd["code"], self.ns)
        if op == "exec":
            exec(cmd["code"], self.ns)
            return None
        if op == "task":
            name = cmd.get("task")
            fn = self.tasks.get(name)
            if fn is None:
                raise CommandError("unknown task %r" % (name,))
            args = cmd.get("args") or []
            if "input" in cmd:
                return fn(cmd["input"], *args)
            return fn(*args)
        if op == "gpio_read":
            pin = self._pin(cmd, "in")
            pull = cmd.get("pull")
            if pull == "up":
                p = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
            elif pull == "down":
                p = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_DOWN)
            else:
                p = machine.Pin(pin)
            return p.value()
        if op == "gpio_write":
            pin = self._pin(cmd, "out")
            v = cmd.get("value")
            if v not in (0, 1):
                raise ValueError("value must be 0 or 1")
            p = machine.Pin(pin, machine.Pin.OUT)
            p.value(v)
            return p.value()
        if op == "adc_read":
            pin = self._pin(cmd, "adc")
            return machine.ADC(machine.Pin(pin)).read_u16() >> 4
        if op == "script":
            return self._script(cmd)
        if op == "deploy":
            return self._deploy(cmd)
        return None  # reboot: the reset follows the reply

    def _pin(self, cmd, kind):
        pin = cmd.get("pin")
        if not isinstance(pin, int) or pin not in self.cfg["pins"][kind]:
            raise ValueError("pin %r is not an %s pin" % (pin, kind))
        return pin

    # -- scripts and modules ------------------------------------------------------------------
    def _name(self, s):
        if not isinstance(s, str) or not s or len(s) > 32:
            raise ValueError("bad name %r" % (s,))
        for ch in s:
            if not (ch.isalpha() or ch.isdigit() or ch == "_"):
                raise ValueError("bad name %r" % (s,))
        if s[0].isdigit():
            raise ValueError("bad name %r" % (s,))
        return s

    def _boot_scripts(self):
        try:
            with open("/scripts/boot.json") as f:
                return sorted(json.load(f))
        except Exception:
            return []

    def _script(self, cmd):
        name = self._name(cmd.get("name"))
        with open("/scripts/" + name + ".py", "w") as f:
            f.write(cmd.get("code", ""))
        names = self._boot_scripts()
        if cmd.get("persist"):
            if name not in names:
                names.append(name)
        elif name in names:
            names.remove(name)
        with open("/scripts/boot.json", "w") as f:
            json.dump(sorted(names), f)
        if cmd.get("run"):
            return self._run_script(name)
        return None

    def _run_script(self, name):
        with open("/scripts/" + name + ".py") as f:
            code = f.read()
        ns = {"__name__": "__script__", "agent": self}
        exec(code, ns)
        return ns.get("result")

    def _load_module(self, name):
        if name in sys.modules:
            del sys.modules[name]
        for t in self.modules.get(name, []):
            self.tasks.pop(t, None)
        self.modules.pop(name, None)
        mod = __import__(name)
        names = []
        for k in dir(mod):
            v = getattr(mod, k)
            if not k.startswith("_") and callable(v) and not isinstance(v, type):
                self.tasks[k] = v
                names.append(k)
        names.sort()
        self.modules[name] = names
        return names

    def _deploy(self, cmd):
        name = self._name(cmd.get("module"))
        path = "/tasks/" + name + ".py"
        with open(path, "w") as f:
            f.write(cmd.get("code", ""))
        try:
            names = self._load_module(name)
        except Exception:
            os.remove(path)
            raise
        self._hello()
        return {"tasks": names}
