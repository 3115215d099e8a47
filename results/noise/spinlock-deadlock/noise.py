"""Bursty host load, one busy process: busy 5-150 ms, idle 5-300 ms, at random."""
import time, random, os
random.seed(os.getpid())
while True:
    end = time.time() + random.uniform(0.005, 0.15)
    while time.time() < end: pass
    time.sleep(random.uniform(0.005, 0.3))
