//! RFC 4733 2.3 telephone-event payload: event, E bit, volume, duration (4 bytes).

use crate::error::EventError;

/// One telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// RFC 4733 3.2: 0-9, 10 = '*', 11 = '#', 12-15 = A-D.
    pub event: u8,
    pub end: bool,
    /// Power level in -dBm0, 0-63 (RFC 4733 2.3.5).
    pub volume: u8,
    /// Samples since the event's timestamp (RFC 4733 2.3.6).
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the payload; extra bytes (RFC 4733 2.5.1.5 redundancy) are ignored.
    pub fn parse(payload: &[u8]) -> Result<Self, EventError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(EventError::Truncated(payload.len()));
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    pub fn write(&self) -> Result<[u8; 4], EventError> {
        if self.volume > 63 {
            return Err(EventError::Volume(self.volume));
        }
        let d = self.duration.to_be_bytes();
        Ok([
            self.event,
            u8::from(self.end) << 7 | self.volume,
            d[0],
            d[1],
        ])
    }

    /// The DTMF character, if the event is one (RFC 4733 3.2 table 3).
    pub fn digit(&self) -> Option<char> {
        digit_of(self.event)
    }
}

/// Event code -> DTMF character (RFC 4733 3.2).
pub fn digit_of(event: u8) -> Option<char> {
    match event {
        0..=9 => char::from_digit(u32::from(event), 10),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + (event - 12))),
        _ => None,
    }
}

/// DTMF character -> event code (RFC 4733 3.2).
pub fn event_of(digit: char) -> Option<u8> {
    match digit.to_ascii_uppercase() {
        c @ '0'..='9' => c.to_digit(10).and_then(|d| u8::try_from(d).ok()),
        '*' => Some(10),
        '#' => Some(11),
        c @ 'A'..='D' => Some(12 + (c as u8 - b'A')),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4733_2_3_payload_round_trip() {
        let e = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 1280,
        };
        let b = e.write().unwrap();
        assert_eq!(b, [11, 0x8a, 0x05, 0x00]);
        assert_eq!(TelephoneEvent::parse(&b), Ok(e));
        assert_eq!(e.digit(), Some('#'));
        assert_eq!(
            TelephoneEvent::parse(&b[..3]),
            Err(EventError::Truncated(3))
        );
        assert_eq!(
            TelephoneEvent { volume: 64, ..e }.write(),
            Err(EventError::Volume(64))
        );
    }

    #[test]
    fn rfc4733_3_2_digit_codes() {
        for (i, c) in "0123456789*#ABCD".chars().enumerate() {
            assert_eq!(event_of(c), Some(i as u8));
            assert_eq!(digit_of(i as u8), Some(c));
        }
        assert_eq!(event_of('x'), None);
        assert_eq!(digit_of(16), None);
    }
}
