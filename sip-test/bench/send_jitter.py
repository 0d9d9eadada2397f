#!/usr/bin/env python3
"""Send jitter of many RTP streams from one capture (tshark fields, one packet per line):

    tshark -r CAP -Y rtp -T fields -e frame.time_epoch -e rtp.ssrc | send_jitter.py

For every SSRC, the deviation of each inter-packet interval from 20 ms (the first 10 packets
of a stream are skipped: call setup). Prints streams, intervals, p50/p99/max deviation in ms
and how many intervals exceeded 40 ms ("late": a frame the caller's jitter buffer would have
had to conceal). Standard library only.
"""
import sys


def main():
    last = {}
    seen = {}
    devs = []
    late = 0
    for line in sys.stdin:
        f = line.split()
        if len(f) < 2:
            continue
        t = float(f[0])
        ssrc = f[1]
        n = seen.get(ssrc, 0) + 1
        seen[ssrc] = n
        if ssrc in last and n > 10:
            gap = (t - last[ssrc]) * 1000.0
            devs.append(abs(gap - 20.0))
            if gap > 40.0:
                late += 1
        last[ssrc] = t
    if not devs:
        print("streams=0 intervals=0")
        return
    devs.sort()
    p = lambda q: devs[min(len(devs) - 1, int(q * len(devs)))]
    print(f"streams={len(seen)} intervals={len(devs)} p50_ms={p(0.5):.2f} p99_ms={p(0.99):.2f} "
          f"max_ms={devs[-1]:.2f} late={late}")


if __name__ == "__main__":
    main()
