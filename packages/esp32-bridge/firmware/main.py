# The agent loop: poll() never blocks for long; sleep until the next thing is due.
import time
from rtl import agent

node = agent.Agent()
while True:
    node.poll()
    time.sleep_ms(node.idle_ms())
