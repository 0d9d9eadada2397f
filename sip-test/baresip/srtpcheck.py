#!/usr/bin/env python3
"""Checks one direction of an SRTP (RFC 3711) PCMU stream read from a capture by tshark.

Usage: tshark ... -T fields -e udp.payload | srtpcheck.py NAME TAG_LEN AS_PCMU.wav
       tshark ... -T fields -e udp.payload | srtpcheck.py --plain-rtcp

Each input line is one datagram's UDP payload in hex. Prints "NAME PASS|FAIL figures" and
exits 1 on failure:
  NAME  every datagram is an RTP version 2 packet of 12 + 160 + TAG_LEN bytes (a 20 ms PCMU
        payload followed by the SRTP authentication tag), at least 50 of them
and writes the 160 payload bytes of every packet, decoded as if they were plain PCMU
(G.711 u-law), to AS_PCMU.wav (8 kHz mono 16-bit): correlating that with what was sent
must give nothing if the payload is really encrypted.

--plain-rtcp prints how many of the datagrams (RTCP port) are plain RTCP compounds: their
packet headers (RFC 3550 6.4) walk exactly to the end of the datagram, where an SRTCP packet
(RFC 3711 3.4) has an encrypted body and 14 more bytes (E flag + index, 80-bit tag).
"""
import array
import sys
import wave


def ulaw_to_linear(u):
    """G.711 u-law byte -> 16-bit linear (ITU-T G.711, as in the usual reference decoder)."""
    u = ~u & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if (u & 0x80) else (t - 0x84)


def is_plain_rtcp(data):
    at = 0
    while at + 4 <= len(data):
        if data[at] >> 6 != 2 or not 192 <= data[at + 1] <= 223:
            return False
        at += 4 * (int.from_bytes(data[at + 2:at + 4], "big") + 1)
    return at == len(data) and at > 0


def plain_rtcp():
    n = 0
    for line in sys.stdin:
        try:
            data = bytes.fromhex(line.strip().replace(":", ""))
        except ValueError:
            continue
        if is_plain_rtcp(data):
            n += 1
    print(n)


def main():
    if sys.argv[1:] == ["--plain-rtcp"]:
        plain_rtcp()
        return
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    name, tag_len, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    want = 12 + 160 + tag_len
    sizes = {}
    bad_version = 0
    samples = array.array("h")
    table = [ulaw_to_linear(b) for b in range(256)]
    n = 0
    for line in sys.stdin:
        hexdata = line.strip().replace(":", "")
        if not hexdata:
            continue
        try:
            data = bytes.fromhex(hexdata)
        except ValueError:
            continue
        n += 1
        sizes[len(data)] = sizes.get(len(data), 0) + 1
        if not data or data[0] >> 6 != 2:
            bad_version += 1
            continue
        if len(data) >= 172:
            samples.extend(table[b] for b in data[12:172])
    if sys.byteorder == "big":
        samples.byteswap()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples.tobytes())
    others = {k: v for k, v in sizes.items() if k != want}
    ok = n >= 50 and not others and bad_version == 0
    figures = (
        f"{sizes.get(want, 0)} of {n} packets are 12 + 160 + {tag_len} (tag) bytes"
        + (f", other sizes {others}" if others else "")
        + (f", {bad_version} not RTP v2" if bad_version else "")
    )
    print(f"{name} {'PASS' if ok else 'FAIL'}  {figures}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
