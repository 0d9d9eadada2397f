//! Wire formats, one file each.

pub mod comfort_noise;
pub mod rtcp;
pub mod rtp;
pub mod telephone_event;

/// RFC 5761 4: with rtcp-mux, the second byte 192-223 (PT 64-95 with the marker set) is RTCP.
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.get(1).is_some_and(|b| (192..=223).contains(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc5761_4_demultiplex_by_second_byte() {
        assert!(super::is_rtcp(&[0x80, 200]));
        assert!(super::is_rtcp(&[0x81, 201]));
        assert!(!super::is_rtcp(&[0x80, 0]));
        assert!(!super::is_rtcp(&[0x80, 0x80 | 101]));
        assert!(!super::is_rtcp(&[0x80]));
    }
}
