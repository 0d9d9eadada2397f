#!/usr/bin/env python3
"""Checks one direction of RTP read from a capture by tshark.

Usage: tshark ... -T fields -e frame.time_epoch -e rtp.ssrc -e rtp.seq -e rtp.timestamp \
           | rtpcheck.py TS_STEP

Prints one line per check, "NAME PASS|FAIL figures", and exits 1 if any check failed:
  rtp-ssrc     exactly one SSRC
  rtp-seq      sequence numbers continuous (mod 2^16): no gap, no duplicate, no reordering
  rtp-ts       every timestamp step is TS_STEP (20 ms of the codec's clock)
  rtp-spacing  median inter-arrival 20 ms +- 2 ms and no gap > 40 ms after the first packet
"""
import statistics
import sys


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    ts_step = int(sys.argv[1])
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

    steps = {}
    for a, b in zip(pkts, pkts[1:]):
        s = (b[3] - a[3]) & 0xFFFFFFFF
        steps[s] = steps.get(s, 0) + 1
    bad = sum(c for s, c in steps.items() if s != ts_step)
    shown = ", ".join(f"{s}x{c}" for s, c in sorted(steps.items(), key=lambda kv: -kv[1])[:4])
    check("rtp-ts", bad == 0, f"step={ts_step} expected; steps seen: {shown}")

    deltas = [(b[0] - a[0]) * 1000.0 for a, b in zip(pkts, pkts[1:])]
    med = statistics.median(deltas)
    mx = max(deltas)
    mean = (pkts[-1][0] - pkts[0][0]) * 1000.0 / (n - 1)
    check("rtp-spacing", abs(med - 20.0) <= 2.0 and mx <= 40.0,
          f"median={med:.2f}ms mean={mean:.2f}ms min={min(deltas):.2f}ms max={mx:.2f}ms "
          f"over {n - 1} intervals")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
