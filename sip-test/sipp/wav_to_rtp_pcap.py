#!/usr/bin/env python3
"""Turn a mono 16-bit WAV (any rate) into a pcap of PCMU RTP packets for SIPp's
play_pcap_audio: 8 kHz G.711 u-law, 160-byte payloads every 20 ms, PT 0, one SSRC.

Usage: wav_to_rtp_pcap.py IN.wav OUT.pcap [START_SECONDS]
(the WAV must already be 8 kHz: sox converts). Several pcaps played in one call continue one
stream: START_SECONDS (the line's place in the call) sets the first sequence number and
timestamp as if the caller had sent since 0 (silence suppressed in between), so a receiver's
jitter buffer sees time move forward, not a restarted stream.
Standard library only (the u-law encoder is the G.711 reference algorithm).
"""
import struct
import sys
import wave

BIAS = 0x84
CLIP = 32635


def ulaw(sample):
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, CLIP) + BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def main():
    src, dst = sys.argv[1], sys.argv[2]
    start = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    with wave.open(src, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getframerate() != 8000:
            sys.exit(f"{src}: need mono 16-bit 8 kHz")
        data = w.readframes(w.getnframes())
    samples = struct.unpack(f"<{len(data) // 2}h", data)
    with open(dst, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
        frames = int(round(start / 0.02))
        seq, ts, t = 1 + frames, 160 * frames, 0.0
        for i in range(0, len(samples) - 159, 160):
            payload = bytes(ulaw(s) for s in samples[i:i + 160])
            rtp = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, 0x51DE0001) + payload
            udp = struct.pack("!HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), seq & 0xFFFF, 0, 64, 17, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
            frame = b"\x00" * 12 + b"\x08\x00" + ip
            sec = int(t)
            out.write(struct.pack("<IIII", sec, int((t - sec) * 1e6), len(frame), len(frame)) + frame)
            seq, ts, t = seq + 1, ts + 160, t + 0.02


if __name__ == "__main__":
    main()
