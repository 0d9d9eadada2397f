#!/usr/bin/env python3
"""The bridge's late packets held against the machine's own stalls (bench-calls).

Usage: late_vs_host.py STATS_JSON STALLS T0 T1

STATS_JSON: the bridge's GET /stats body, whose "late_sends" lists, per wall-clock millisecond,
the packets sent more than 20 ms after their deadline and the latest of them. STALLS: what
sip-test/hostclock.py saw (one SCHED_FIFO reference per CPU). T0..T1: the measuring window
(epoch seconds).

For each millisecond with late packets in the window, the longest time one CPU's reference was
stalled between the latest packet's deadline and its send is taken off its lateness; what is
still over 20 ms is the bridge's own. Prints one line:

  late_ms=M packets=P host_excused=E own=O longest_host_ms=L host_stalls=S forgotten_ms=F
  slow_steps=N slow_woke_late_max_ms=W slow_work_max_ms=K

own counts every packet of a millisecond whose latest packet is still over 20 ms late. When the
bridge's log no longer reaches back to T0 (more late milliseconds than it holds), nothing is
excused: own=-1, and the histogram's count is the figure.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "baresip"))
from rtpcheck import host_stall_ms, load_stalls  # noqa: E402


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        stats = json.load(f)
    stalls = load_stalls(sys.argv[2])
    t0, t1 = float(sys.argv[3]), float(sys.argv[4])
    log = stats.get("late_sends") or {}
    everything = log.get("recent", [])
    recent = [e for e in everything if t0 <= e["at_ms"] / 1000.0 <= t1]
    packets = sum(e["packets"] for e in recent)
    own = excused = 0
    for e in recent:
        at = e["at_ms"] / 1000.0 + 0.001  # the end of that millisecond
        late = e["max_late_us"] / 1e6
        host = host_stall_ms(stalls, at - late, at)
        if late * 1000.0 - host > 20.0:
            own += e["packets"]
        else:
            excused += e["packets"]
    forgotten = int(log.get("forgotten_ms", 0))
    if forgotten and everything and everything[0]["at_ms"] / 1000.0 > t0:
        # The log no longer reaches back to the window's start: the histogram's count stands.
        own, excused = -1, 0
    in_window = [(s, e) for v in stalls.values() for s, e in v if s < t1 and e > t0]
    longest = max((e - s for s, e in in_window), default=0.0) * 1000.0
    # The media engine's steps that ended over 10 ms after their timer: woken late (scheduler
    # or machine) or slow work (its calls).
    slow = [x for x in stats.get("media_slow_steps") or [] if t0 <= x["at_ms"] / 1000.0 <= t1]
    woke = max((x["woke_late_us"] for x in slow), default=0) / 1000.0
    work = max((x["work_us"] for x in slow), default=0) / 1000.0
    print(f"late_ms={len(recent)} packets={packets} host_excused={excused} own={own} "
          f"longest_host_ms={longest:.1f} host_stalls={len(in_window)} forgotten_ms={forgotten} "
          f"slow_steps={len(slow)} slow_woke_late_max_ms={woke:.1f} slow_work_max_ms={work:.1f}")


if __name__ == "__main__":
    main()
