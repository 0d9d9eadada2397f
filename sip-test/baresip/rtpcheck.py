#!/usr/bin/env python3
"""Checks one direction of RTP read from a capture by tshark.

Usage: tshark ... -T fields -e frame.time_epoch -e rtp.ssrc -e rtp.seq -e rtp.timestamp \
           | rtpcheck.py TS_STEP [--host-stalls FILE]

Prints one line per check, "NAME PASS|FAIL figures", and exits 1 if any check failed:
  rtp-ssrc     exactly one SSRC
  rtp-seq      sequence numbers continuous (mod 2^16): no gap, no duplicate, no reordering
  rtp-ts       every timestamp step is TS_STEP (20 ms of the codec's clock)
  rtp-spacing  median inter-arrival 20 ms +- 2 ms and no gap > 40 ms after the first packet

--host-stalls FILE: the machine's own timer stalls in the same run (sip-test/hostclock.py: one
pinned reference per CPU at SCHED_FIFO, lines "CPU EXPECTED ACTUAL" in epoch seconds). An interval's
length counts minus the longest time one CPU's reference was stalled inside it: a VM whose idle
vCPU wakes 17 ms late delays the bridge's next packet as much, at any priority, and that is not
the bridge's gap; a gap the reference did not see is. A timestamp step of k x TS_STEP (the
sender skipped k-1 slots to stay on the clock, RFC 3550 5.1) passes when the reference stalled
at least (k-1) x 20 ms - 5 ms inside that interval. Both the raw and the adjusted figures are
printed.
"""
import statistics
import sys


def load_stalls(path):
    """CPU -> sorted [(start, end)] of the reference's stalls."""
    stalls = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if line.startswith("#") or len(p) != 3:
                continue
            try:
                stalls.setdefault(int(p[0]), []).append((float(p[1]), float(p[2])))
            except ValueError:
                continue
    for v in stalls.values():
        v.sort()
    return stalls


def host_stall_ms(stalls, a, b):
    """The longest time one CPU's reference was stalled inside [a, b], in ms."""
    best = 0.0
    for spans in stalls.values():
        total = sum(max(0.0, min(e, b) - max(s, a)) for s, e in spans if s < b and e > a)
        best = max(best, total)
    return best * 1000.0


def main():
    args = sys.argv[1:]
    stalls = None
    if len(args) == 3 and args[1] == "--host-stalls":
        stalls = load_stalls(args[2])
        args = args[:1]
    if len(args) != 1:
        sys.exit(__doc__)
    ts_step = int(args[0])
    pkts = []
    for line in sys.stdin:
        f = line.split()
        if len(f) < 4:
            continue
        pkts.append((float(f[0]), int(f[1], 0), int(f[2]), int(f[3])))
    results = []

    def check(name, ok, figures):
        results.append(ok)
        print(f"{name:<14} {'PASS' if ok else 'FAIL'}  {figures}")

    n = len(pkts)
    if n < 50:
        check("rtp-packets", False, f"packets={n} (need >= 50 from the bridge)")
        return 1
    ssrcs = sorted({p[1] for p in pkts})
    check("rtp-ssrc", len(ssrcs) == 1,
          f"packets={n} ssrcs={len(ssrcs)} ({', '.join(f'0x{s:08x}' for s in ssrcs)})")

    gaps = dups = back = 0
    for a, b in zip(pkts, pkts[1:]):
        d = (b[2] - a[2]) & 0xFFFF
        if d == 1:
            continue
        if d == 0:
            dups += 1
        elif d < 0x8000:
            gaps += 1
        else:
            back += 1
    check("rtp-seq", gaps == dups == back == 0,
          f"first={pkts[0][2]} last={pkts[-1][2]} gaps={gaps} duplicates={dups} reordered={back}")

    def stalled(a, b):
        return host_stall_ms(stalls, a[0], b[0]) if stalls else 0.0

    steps = {}
    bad = excused_ts = 0
    for a, b in zip(pkts, pkts[1:]):
        s = (b[3] - a[3]) & 0xFFFFFFFF
        steps[s] = steps.get(s, 0) + 1
        if s != ts_step:
            k = s // ts_step
            if s % ts_step == 0 and k >= 2 and stalled(a, b) >= (k - 1) * 20.0 - 5.0:
                excused_ts += 1
            else:
                bad += 1
    shown = ", ".join(f"{s}x{c}" for s, c in sorted(steps.items(), key=lambda kv: -kv[1])[:4])
    note = f" ({excused_ts} skip(s) during a host stall)" if excused_ts else ""
    check("rtp-ts", bad == 0, f"step={ts_step} expected; steps seen: {shown}{note}")

    deltas = [(b[0] - a[0]) * 1000.0 for a, b in zip(pkts, pkts[1:])]
    med = statistics.median(deltas)
    mx = max(deltas)
    mean = (pkts[-1][0] - pkts[0][0]) * 1000.0 / (n - 1)
    figures = (f"median={med:.2f}ms mean={mean:.2f}ms min={min(deltas):.2f}ms max={mx:.2f}ms "
               f"over {n - 1} intervals")
    worst = mx
    if stalls is not None:
        held = [stalled(a, b) for a, b in zip(pkts, pkts[1:])]
        adjusted = [(d - h, d, h) for d, h in zip(deltas, held)]
        worst, raw, host = max(adjusted)
        spans = sum(len(v) for v in stalls.values())
        longest = max((e - s for v in stalls.values() for s, e in v), default=0.0) * 1000.0
        figures += (f"; host reference: {spans} stall(s) > 3 ms, longest {longest:.1f}ms; "
                    f"worst interval less host stall {worst:.2f}ms ({raw:.2f} - {host:.2f})")
    check("rtp-spacing", abs(med - 20.0) <= 2.0 and worst <= 40.0, figures)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
