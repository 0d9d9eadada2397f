//! G.711 against a line-by-line transcription of the ITU-T G.191 STL reference (`g711.c`:
//! `alaw_compress`, `alaw_expand`, `ulaw_compress`, `ulaw_expand`), loops and all, kept
//! independent of the table builders in `src/g711.rs` (which use bit tricks instead).

use codec::g711::{alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear};

/// G.191 `alaw_compress` for one sample (C `short` arithmetic).
fn g191_alaw_compress(lin: i16) -> u8 {
    let mut ix: i16 = if lin < 0 { (!lin) >> 4 } else { lin >> 4 };
    if ix > 15 {
        let mut iexp: i16 = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            iexp += 1;
        }
        ix -= 16;
        ix += iexp << 4;
    }
    if lin >= 0 {
        ix |= 0x0080;
    }
    (ix ^ 0x0055) as u8
}

/// G.191 `alaw_expand` for one code.
fn g191_alaw_expand(log: u8) -> i16 {
    let mut ix: i16 = i16::from(log) ^ 0x0055;
    ix &= 0x007F;
    let iexp = ix >> 4;
    let mut mant = ix & 0x000F;
    if iexp > 0 {
        mant += 16;
    }
    mant = (mant << 4) + 0x0008;
    if iexp > 1 {
        mant <<= iexp - 1;
    }
    if log > 127 {
        mant
    } else {
        -mant
    }
}

/// G.191 `ulaw_compress` for one sample.
fn g191_ulaw_compress(lin: i16) -> u8 {
    let mut absno: i16 = if lin < 0 {
        ((!lin) >> 2) + 33
    } else {
        (lin >> 2) + 33
    };
    if absno > 0x1FFF {
        absno = 0x1FFF;
    }
    let mut i = absno >> 6;
    let mut segno: i16 = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high_nibble = 0x0008 - segno;
    let mut low_nibble = (absno >> segno) & 0x000F;
    low_nibble = 0x000F - low_nibble;
    let mut log = (high_nibble << 4) | low_nibble;
    if lin >= 0 {
        log |= 0x0080;
    }
    log as u8
}

/// G.191 `ulaw_expand` for one code.
fn g191_ulaw_expand(log: u8) -> i16 {
    let log = i16::from(log);
    let sign: i16 = if log < 0x0080 { -1 } else { 1 };
    let mut mantissa: i16 = !log;
    let exponent = (mantissa >> 4) & 0x0007;
    let segment = exponent + 1;
    mantissa &= 0x000F;
    let step: i16 = 4 << segment;
    sign * ((0x0080 << exponent) + step * mantissa + step / 2 - 4 * 33)
}

#[test]
fn g711_ulaw_encode_all_65536_inputs_match_g191() {
    for x in i16::MIN..=i16::MAX {
        assert_eq!(linear_to_ulaw(x), g191_ulaw_compress(x), "input {x}");
    }
}

#[test]
fn g711_alaw_encode_all_65536_inputs_match_g191() {
    for x in i16::MIN..=i16::MAX {
        assert_eq!(linear_to_alaw(x), g191_alaw_compress(x), "input {x}");
    }
}

#[test]
fn g711_ulaw_decode_all_256_codes_match_g191() {
    for c in 0..=255u8 {
        assert_eq!(ulaw_to_linear(c), g191_ulaw_expand(c), "code {c:#04x}");
    }
}

#[test]
fn g711_alaw_decode_all_256_codes_match_g191() {
    for c in 0..=255u8 {
        assert_eq!(alaw_to_linear(c), g191_alaw_expand(c), "code {c:#04x}");
    }
}

#[test]
fn g711_ulaw_every_code_reencodes_to_itself_except_negative_zero() {
    for c in 0..=255u8 {
        let back = linear_to_ulaw(ulaw_to_linear(c));
        // 0x7F is u-law's "negative zero": it decodes to 0, and 0 encodes as +0 (0xFF) in
        // G.191 (sign bit set for lin >= 0). Every other code is its own round trip.
        let expected = if c == 0x7F { 0xFF } else { c };
        assert_eq!(back, expected, "code {c:#04x}");
    }
    assert_eq!(ulaw_to_linear(0x7F), 0);
    assert_eq!(ulaw_to_linear(0xFF), 0);
}

#[test]
fn g711_alaw_every_code_reencodes_to_itself() {
    // A-law has no zero code: its smallest levels are +-8, so all 256 codes round trip.
    for c in 0..=255u8 {
        assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "code {c:#04x}");
    }
}

#[test]
fn g711_encoders_are_monotonic_in_decoded_value() {
    // Quantization is monotonic: a larger input never decodes to a smaller level.
    let mut prev_u = i16::MIN;
    let mut prev_a = i16::MIN;
    for x in i16::MIN..=i16::MAX {
        let u = ulaw_to_linear(linear_to_ulaw(x));
        let a = alaw_to_linear(linear_to_alaw(x));
        assert!(u >= prev_u && a >= prev_a, "input {x}");
        prev_u = u;
        prev_a = a;
    }
}
