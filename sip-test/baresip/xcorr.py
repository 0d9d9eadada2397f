#!/usr/bin/env python3
"""Delay-aligned normalised cross-correlation of two mono 16-bit WAV files of the same rate.

Usage: xcorr.py REFERENCE.wav RECORDING.wav MAX_DELAY_MS

Finds the lag d in [0, MAX_DELAY_MS] (the recording lags the reference) that maximises
    c(d) = sum_n ref[n] * rec[n + d] / (||ref|| * ||rec||)
(norms over the whole files, so silence or noise in the recording lowers the figure) and
prints "corr=<c> delay_ms=<d> ref_rms=<..> rec_rms=<..>". Standard library only: the
correlation is computed for every lag at once with an iterative radix-2 FFT.
"""
import array
import cmath
import math
import sys
import wave


def read_mono16(path):
    with wave.open(path, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            sys.exit(f"{path}: need mono 16-bit PCM (got {w.getnchannels()} ch, {8 * w.getsampwidth()} bit)")
        rate = w.getframerate()
        data = array.array("h")
        data.frombytes(w.readframes(w.getnframes()))
    if sys.byteorder == "big":
        data.byteswap()
    return rate, [float(v) for v in data]


def fft(a, invert=False):
    """In-place iterative radix-2 FFT of a list of complex numbers (len a power of two)."""
    n = len(a)
    j = 0
    for i in range(1, n):
        bit = n >> 1
        while j & bit:
            j ^= bit
            bit >>= 1
        j |= bit
        if i < j:
            a[i], a[j] = a[j], a[i]
    length = 2
    sign = 1.0 if invert else -1.0
    while length <= n:
        half = length >> 1
        w_len = cmath.exp(sign * 2j * math.pi / length)
        tw = [1 + 0j] * half
        for k in range(1, half):
            tw[k] = tw[k - 1] * w_len
        for start in range(0, n, length):
            for k in range(half):
                u = a[start + k]
                v = a[start + k + half] * tw[k]
                a[start + k] = u + v
                a[start + k + half] = u - v
        length <<= 1
    if invert:
        a[:] = [x / n for x in a]
    return a


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    r1, ref = read_mono16(sys.argv[1])
    r2, rec = read_mono16(sys.argv[2])
    if r1 != r2:
        sys.exit(f"sample rates differ: {r1} vs {r2}")
    max_lag = int(float(sys.argv[3]) * r1 / 1000)
    e_ref = math.sqrt(sum(v * v for v in ref))
    e_rec = math.sqrt(sum(v * v for v in rec))
    ref_rms = e_ref / math.sqrt(max(len(ref), 1))
    rec_rms = e_rec / math.sqrt(max(len(rec), 1))
    if e_ref == 0 or e_rec == 0:
        print(f"corr=0.0000 delay_ms=nan ref_rms={ref_rms:.1f} rec_rms={rec_rms:.1f}")
        return
    n = 1
    while n < len(ref) + len(rec):
        n <<= 1
    # xcorr[d] = sum ref[k] * rec[k + d] = IFFT(conj(FFT(ref)) * FFT(rec))[d]
    fa = fft([complex(v) for v in ref] + [0j] * (n - len(ref)))
    fb = fft([complex(v) for v in rec] + [0j] * (n - len(rec)))
    prod = fft([x.conjugate() * y for x, y in zip(fa, fb)], invert=True)
    best, best_lag = -1.0, 0
    for d in range(0, min(max_lag, len(rec) - 1) + 1):
        c = prod[d].real
        if c > best:
            best, best_lag = c, d
    corr = best / (e_ref * e_rec)
    print(f"corr={corr:.4f} delay_ms={1000.0 * best_lag / r1:.1f} ref_rms={ref_rms:.1f} rec_rms={rec_rms:.1f}")


if __name__ == "__main__":
    main()
