# Sampled streams and their binary batches (E-4.1).
import struct
import machine

TYPES = {"f32": (1, "f", 4), "i16": (2, "h", 2), "u16": (3, "H", 2), "i32": (4, "i", 4), "f64": (5, "d", 8)}
HEADER = "<2sBBIQIHH"


class Stream:
    def __init__(self, spec, batch_n, batch_ms):
        self.name = spec["name"]
        self.pin = spec["pin"]
        self.hz = spec.get("hz", 10)
        self.type = spec.get("type", "u16")
        self.code, self.fmt, self.size = TYPES[self.type]
        self.batch_n = max(1, min(batch_n, 1024))
        self.batch_ms = batch_ms
        self.dt_us = int(1000000 // self.hz)
        self.buf = bytearray(24 + self.batch_n * self.size)
        self.count = 0
        self.seq = 0
        self.t0_us = 0
        self.next_us = None
        if spec.get("src") == "pin":
            self.adc = None
            self.dpin = machine.Pin(self.pin, machine.Pin.IN)
        else:
            self.adc = machine.ADC(machine.Pin(self.pin))

    def read(self):
        if self.adc is None:
            return self.dpin.value()
        return self.adc.read_u16() >> 4

    def step(self, up_us, send):
        """Takes the samples that are due at up_us; send(topic_suffix, payload) a full batch."""
        if self.next_us is None:
            self.next_us = up_us
        if up_us - self.next_us > self.batch_ms * 1000:
            # Far behind (a long command): drop the backlog and restart from now.
            self.flush(send)
            self.next_us = up_us
        while up_us >= self.next_us:
            if self.count == 0:
                self.t0_us = self.next_us
            struct.pack_into("<" + self.fmt, self.buf, 24 + self.count * self.size, self.read())
            self.count += 1
            self.next_us += self.dt_us
            if self.count >= self.batch_n:
                self.flush(send)
        if self.count and up_us - self.t0_us >= self.batch_ms * 1000:
            self.flush(send)

    def flush(self, send):
        if not self.count:
            return
        struct.pack_into(HEADER, self.buf, 0, b"RS", 1, self.code, self.seq, self.t0_us // 1000, self.dt_us, self.count, 0)
        n = 24 + self.count * self.size
        send(self.name, memoryview(self.buf)[:n])
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        self.count = 0

    def describe(self):
        return {"name": self.name, "pin": self.pin, "hz": self.hz, "type": self.type}
