#!/usr/bin/env python3
"""The machine's own timer stalls, as a reference for RTP spacing checks.

Usage: hostclock.py OUT SECONDS

One process per CPU this runs on, each pinned to its CPU, wakes every 2 ms like a media shard
and writes to OUT one line per wakeup more than 3 ms late:

    CPU EXPECTED_EPOCH ACTUAL_EPOCH

The reference runs above every ordinary thread and above the bridge's real-time media threads
(`--media-priority rt` is SCHED_RR 10): SCHED_FIFO priority 50 where allowed (root or
CAP_SYS_NICE; it is awake a few microseconds per wakeup), else nice -20, else as started. So
the bridge's own load cannot delay it, and what it sees late is the machine: the host not
running the vCPU, interrupts. OUT's first line says which ("# policy fifo|nice-20|nice0").

A VM's idle vCPU whose timer interrupt comes late (perf sched timehist on this machine,
2026-12-02: CPU 0 idle for 16.9 ms, then the media thread, baresip's audio thread and an
unrelated process woken in the same microsecond) delays every thread on that CPU, whatever
its priority. rtpcheck.py --host-stalls subtracts what this saw from the bridge's intervals:
a stall the reference did not see is the bridge's. Stops by itself after SECONDS, or on
SIGTERM/SIGINT.
"""
import os
import signal
import sys
import time

STEP = 0.002
LATE = 0.003


def raise_priority():
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
        return "fifo"
    except (OSError, AttributeError):
        pass
    try:
        os.nice(-20)
        return "nice-20"
    except OSError:
        return "nice0"


def probe(cpu, out, seconds):
    os.sched_setaffinity(0, {cpu})
    end = time.monotonic() + seconds
    nxt = time.monotonic() + STEP
    with open(out, "a", buffering=1) as f:
        while True:
            now = time.monotonic()
            if now >= end:
                return
            if nxt > now:
                time.sleep(nxt - now)
            now = time.monotonic()
            late = now - nxt
            if late > LATE:
                wall = time.time()
                f.write(f"{cpu} {wall - late:.6f} {wall:.6f}\n")
            nxt += STEP
            if nxt < now:
                nxt = now + STEP


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    out, seconds = sys.argv[1], float(sys.argv[2])
    # Before the fork: the children inherit it (the parent only waits).
    policy = raise_priority()
    with open(out, "w") as f:
        f.write(f"# policy {policy}\n")
    children = []
    for cpu in sorted(os.sched_getaffinity(0)):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
            signal.signal(signal.SIGINT, lambda *_: os._exit(0))
            try:
                probe(cpu, out, seconds)
            finally:
                os._exit(0)
        children.append(pid)

    def stop(*_):
        for c in children:
            try:
                os.kill(c, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for c in children:
        while True:
            try:
                os.waitpid(c, 0)
                break
            except ChildProcessError:
                break
            except InterruptedError:
                continue


if __name__ == "__main__":
    main()
