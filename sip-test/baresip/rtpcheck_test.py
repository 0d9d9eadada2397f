#!/usr/bin/env python3
"""Self-test of rtpcheck.py's spacing and timestamp rules, host stalls included.

Synthetic streams through the real script. Exits 1 with the failing case named. Run by
run-baresip before its calls.
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = 1796216000.0


def stream(n=200, late=None, skip_at=None):
    """n packets 20 ms apart; late = (index, ms): that packet leaves ms late, the next on time;
    skip_at: from that index on the timestamps are one slot further (a skipped slot)."""
    lines = []
    ts = 1000
    prev = 0.0
    for i in range(n):
        t = T0 + i * 0.020
        if late and i == late[0]:
            t += late[1] / 1000.0
        t = max(t, prev + 0.00005)  # what was held back leaves back to back
        prev = t
        if skip_at is not None and i == skip_at:
            ts += 160
        lines.append(f"{t:.6f}\t0x1234abcd\t{(100 + i) & 0xFFFF}\t{ts & 0xFFFFFFFF}")
        ts += 160
    return "\n".join(lines) + "\n"


def run(rtp, stalls=None):
    args = [sys.executable, os.path.join(HERE, "rtpcheck.py"), "160"]
    path = None
    if stalls is not None:
        fd, path = tempfile.mkstemp(suffix=".stalls")
        with os.fdopen(fd, "w") as f:
            for cpu, a, b in stalls:
                f.write(f"{cpu} {T0 + a / 1000.0:.6f} {T0 + b / 1000.0:.6f}\n")
        args += ["--host-stalls", path]
    try:
        p = subprocess.run(args, input=rtp, capture_output=True, text=True, timeout=30)
    finally:
        if path:
            os.unlink(path)
    verdict = {}
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            verdict[parts[0]] = parts[1]
    return p.returncode, verdict, p.stdout


CASES = [
    # (name, rtp, stalls, expect rc, expect {check: PASS|FAIL})
    ("clean stream", stream(), None, 0, {"rtp-spacing": "PASS", "rtp-ts": "PASS"}),
    ("clean stream, empty reference", stream(), [], 0, {"rtp-spacing": "PASS"}),
    ("30 ms late packet, no reference", stream(late=(100, 30)), None, 1,
     {"rtp-spacing": "FAIL"}),
    ("30 ms late packet, the reference saw nothing", stream(late=(100, 30)), [], 1,
     {"rtp-spacing": "FAIL"}),
    ("30 ms late packet, the host stalled 28 ms in it",
     stream(late=(100, 30)), [(0, 1985.0, 2013.0)], 0, {"rtp-spacing": "PASS"}),
    ("30 ms late packet, the host stalled elsewhere",
     stream(late=(100, 30)), [(0, 500.0, 530.0)], 1, {"rtp-spacing": "FAIL"}),
    ("40 ms late packet, the host stalled 28 ms in it",
     stream(late=(100, 40)), [(1, 1985.0, 2013.0)], 0, {"rtp-spacing": "PASS"}),
    ("40 ms late packet, two CPUs' 14 ms stalls do not add up",
     stream(late=(100, 40)), [(0, 1985.0, 1999.0), (1, 2000.0, 2014.0)], 1,
     {"rtp-spacing": "FAIL"}),
    ("a skipped timestamp slot, no reference", stream(skip_at=100), None, 1, {"rtp-ts": "FAIL"}),
    ("a skipped slot during a 22 ms host stall",
     stream(skip_at=100, late=(100, 2)), [(1, 1981.0, 2003.0)], 0, {"rtp-ts": "PASS"}),
    ("a skipped slot, the host stalled only 5 ms",
     stream(skip_at=100), [(0, 1990.0, 1995.0)], 1, {"rtp-ts": "FAIL"}),
]


def main():
    failed = 0
    for name, rtp, stalls, rc, want in CASES:
        got_rc, verdict, out = run(rtp, stalls)
        ok = got_rc == rc and all(verdict.get(k) == v for k, v in want.items())
        if not ok:
            failed += 1
            print(f"FAIL {name}: rc={got_rc} (want {rc})\n{out}")
    print(f"rtpcheck self-test: {len(CASES) - failed} of {len(CASES)} cases as expected")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
