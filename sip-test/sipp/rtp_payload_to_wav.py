#!/usr/bin/env python3
"""Decode one PCMU RTP stream into a WAV, placing each packet by its RTP timestamp.

Usage: tshark -r CAP -d udp.port==PORT,rtp -Y 'rtp && udp.dstport==PORT' \
           -T fields -e rtp.timestamp -e rtp.payload | rtp_payload_to_wav.py OUT.wav
Standard library only (G.711 u-law decode).
"""
import struct
import sys
import wave


def ulaw_decode(b):
    b = ~b & 0xFF
    sign = b & 0x80
    exponent = (b >> 4) & 0x07
    mantissa = b & 0x0F
    sample = ((mantissa << 3) + 0x84) << exponent
    sample -= 0x84
    return -sample if sign else sample


TABLE = [ulaw_decode(i) for i in range(256)]


def main():
    out = sys.argv[1]
    first = None
    pcm = []
    for line in sys.stdin:
        f = line.split()
        if len(f) < 2:
            continue
        ts = int(f[0])
        payload = bytes.fromhex(f[1].replace(":", ""))
        if first is None:
            first = ts
        at = (ts - first) & 0xFFFFFFFF
        if at > 8000 * 600:
            continue
        if len(pcm) < at:
            pcm.extend([0] * (at - len(pcm)))
        for i, b in enumerate(payload):
            if at + i < len(pcm):
                pcm[at + i] = TABLE[b]
            else:
                pcm.append(TABLE[b])
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack(f"<{len(pcm)}h", *pcm))


if __name__ == "__main__":
    main()
