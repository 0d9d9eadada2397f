//! G.711 u-law and A-law (ITU-T G.711), bit-exact with the ITU-T G.191 software tools
//! (`g711.c`: `ulaw_compress`/`ulaw_expand`, `alaw_compress`/`alaw_expand`).
//!
//! Table-driven: every table is built at compile time by a `const fn`, so the hot path is one
//! load per sample. The encoders depend only on the bits G.711 uses (u-law: the 14 most
//! significant bits, A-law: the 13 most significant, of which the lowest A-law segment step
//! spans two), so the encode tables have 16,384 and 4,096 entries instead of 65,536.
//!
//! G.191 detail kept on purpose: negative inputs are folded with the one's complement
//! (`~x`), not negation, so -1 is the "negative zero" of the law (u-law 0x7F, A-law 0x55).

/// G.711 samples per 20 ms at 8 kHz: one byte per sample, so also the payload length.
pub const SAMPLES_PER_20MS: usize = 160;
/// G.711 sample rate (RTP clock rate of PT 0 and PT 8, RFC 3551 section 4.5.14).
pub const RATE: u32 = 8_000;

/// Bit length of `v` (0 for 0): the segment search of G.191 done with one instruction.
const fn bit_length(v: u32) -> u32 {
    32 - v.leading_zeros()
}

/// u-law of the 14-bit value `q = x >> 2` (G.711 Table 2a; G.191 `ulaw_compress`).
const fn ulaw_from_14bit(q: i32) -> u8 {
    // One's complement fold: G.191 computes (~x) >> 2, which equals ~(x >> 2).
    let magnitude = if q < 0 { !q } else { q };
    // 33 is the bias that makes u-law segment boundaries powers of two (G.191 comment:
    // "the difference value between the thresholds for A-law and u-law").
    let mut biased = magnitude + 33;
    if biased > 0x1FFF {
        biased = 0x1FFF;
    }
    let segment = bit_length((biased >> 6) as u32); // 0..=7
    let mantissa = (biased >> (segment + 1)) & 0x0F;
    let code = ((segment as i32) << 4) | mantissa;
    // u-law transmits every bit inverted (G.711 section 3.2); the sign bit is 1 for >= 0.
    let mask = if q >= 0 { 0xFF } else { 0x7F };
    (code ^ mask) as u8
}

/// A-law of the 12-bit value `q = x >> 4` (G.711 Table 1a; G.191 `alaw_compress`).
const fn alaw_from_12bit(q: i32) -> u8 {
    let magnitude = if q < 0 { !q } else { q }; // 0..=2047
    let code = if magnitude < 16 {
        magnitude
    } else {
        let segment = bit_length(magnitude as u32) - 4; // 16..=31 -> 1, 1024..=2047 -> 7
        ((segment as i32) << 4) | ((magnitude >> (segment - 1)) & 0x0F)
    };
    let sign = if q >= 0 { 0x80 } else { 0 };
    // A-law inverts the even bits on the line (G.711 section 2.2, "ADI").
    ((code | sign) ^ 0x55) as u8
}

const fn ulaw_to_linear_calc(code: u8) -> i16 {
    let u = !code;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    // Decision midpoint of the interval, 14-bit left justified (G.191 `ulaw_expand`).
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_to_linear_calc(code: u8) -> i16 {
    let a = code ^ 0x55;
    let segment = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = if segment == 0 {
        (mantissa << 4) + 8
    } else {
        (((mantissa + 16) << 4) + 8) << (segment - 1)
    };
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

static ULAW_ENCODE: [u8; 1 << 14] = {
    let mut table = [0u8; 1 << 14];
    let mut i = 0;
    while i < table.len() {
        table[i] = ulaw_from_14bit(i as i32 - (1 << 13));
        i += 1;
    }
    table
};

static ALAW_ENCODE: [u8; 1 << 12] = {
    let mut table = [0u8; 1 << 12];
    let mut i = 0;
    while i < table.len() {
        table[i] = alaw_from_12bit(i as i32 - (1 << 11));
        i += 1;
    }
    table
};

static ULAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_to_linear_calc(i as u8);
        i += 1;
    }
    table
};

static ALAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_to_linear_calc(i as u8);
        i += 1;
    }
    table
};

/// Encodes one linear sample to u-law (uses its 14 most significant bits).
#[inline]
pub fn linear_to_ulaw(sample: i16) -> u8 {
    // (sample >> 2) + 8192 is in 0..16384: the index is always in bounds.
    ULAW_ENCODE[((sample >> 2) as i32 + (1 << 13)) as usize]
}

/// Encodes one linear sample to A-law (uses its 13 most significant bits).
#[inline]
pub fn linear_to_alaw(sample: i16) -> u8 {
    ALAW_ENCODE[((sample >> 4) as i32 + (1 << 11)) as usize]
}

/// Decodes one u-law code to linear, 16-bit scale (codes 0x7F and 0xFF both give 0).
#[inline]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// Decodes one A-law code to linear, 16-bit scale.
#[inline]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

/// Encodes `samples` into `codes` (pairwise; the shorter length wins).
pub fn encode_ulaw(samples: &[i16], codes: &mut [u8]) {
    for (c, &s) in codes.iter_mut().zip(samples) {
        *c = linear_to_ulaw(s);
    }
}

/// Encodes `samples` into `codes` (pairwise; the shorter length wins).
pub fn encode_alaw(samples: &[i16], codes: &mut [u8]) {
    for (c, &s) in codes.iter_mut().zip(samples) {
        *c = linear_to_alaw(s);
    }
}

/// Decodes `codes` into `samples` (pairwise; the shorter length wins).
pub fn decode_ulaw(codes: &[u8], samples: &mut [i16]) {
    for (s, &c) in samples.iter_mut().zip(codes) {
        *s = ulaw_to_linear(c);
    }
}

/// Decodes `codes` into `samples` (pairwise; the shorter length wins).
pub fn decode_alaw(codes: &[u8], samples: &mut [i16]) {
    for (s, &c) in samples.iter_mut().zip(codes) {
        *s = alaw_to_linear(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_known_codes() {
        // Silence: u-law 0xFF (+0), A-law 0xD5 (+0 with even bits inverted).
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_alaw(-1), 0x55);
        // Full scale.
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0xFF), 0);
    }
}
