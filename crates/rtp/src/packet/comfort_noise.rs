//! RFC 3389 3 comfort-noise payload: noise level (-dBov) and optional spectral coefficients.

use crate::error::CnError;

/// Static payload type 13 (RFC 3551 6, RFC 3389 4).
pub const PT_CN: u8 = 13;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComfortNoise<'a> {
    /// Noise level in -dBov, 0-127.
    pub level: u8,
    /// Reflection coefficients, opaque here: we play CN as silence.
    pub spectral: &'a [u8],
}

impl<'a> ComfortNoise<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, CnError> {
        let (&level, spectral) = payload.split_first().ok_or(CnError::Empty)?;
        // RFC 3389 3.1: the top bit is reserved zero; the level is 7 bits.
        if level > 127 {
            return Err(CnError::Level(level));
        }
        Ok(ComfortNoise { level, spectral })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3389_3_level_and_spectral() {
        assert_eq!(
            ComfortNoise::parse(&[64, 1, 2]),
            Ok(ComfortNoise {
                level: 64,
                spectral: &[1, 2]
            })
        );
        assert_eq!(ComfortNoise::parse(&[]), Err(CnError::Empty));
        assert_eq!(ComfortNoise::parse(&[200]), Err(CnError::Level(200)));
    }
}
