//! RTP fixed header, CSRC list, header extension and padding (RFC 3550 5.1, 5.3.1), parsed and
//! written through `rtp-types`; this file adds the checks our receive path relies on.

use crate::error::RtpError;

/// A parsed RTP packet borrowing the datagram. Only what the receive path needs is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrc_count: u8,
    /// Profile-defined header extension (RFC 3550 5.3.1): id and data, opaque to us.
    pub extension: Option<(u16, &'a [u8])>,
    /// Payload without padding.
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses one RTP packet; malformed input is an error naming the rule, never a panic.
    pub fn parse(data: &'a [u8]) -> Result<Self, RtpError> {
        let p = rtp_types::RtpPacket::parse(data).map_err(map_parse_error(data))?;
        let pt = p.payload_type();
        // RFC 5761 4: 64-95 would be mistaken for RTCP SR/RR etc. when multiplexed.
        if (64..96).contains(&pt) {
            return Err(RtpError::PayloadTypeIsRtcp(pt));
        }
        // rtp-types borrows from its view; re-slice the datagram so ours borrows the bytes.
        let ext_start = 12 + 4 * usize::from(p.n_csrcs()) + 4;
        let extension = p.extension().map(|(id, d)| {
            (
                id,
                data.get(ext_start..ext_start + d.len()).unwrap_or_default(),
            )
        });
        let start = p.payload_offset();
        let payload = data.get(start..start + p.payload_len()).unwrap_or_default();
        Ok(RtpPacket {
            marker: p.marker_bit(),
            payload_type: pt,
            sequence: p.sequence_number(),
            timestamp: p.timestamp(),
            ssrc: p.ssrc(),
            csrc_count: p.n_csrcs(),
            extension,
            payload,
        })
    }
}

fn map_parse_error(data: &[u8]) -> impl Fn(rtp_types::RtpParseError) -> RtpError + '_ {
    move |e| match e {
        rtp_types::RtpParseError::UnsupportedVersion(v) => RtpError::Version(v),
        rtp_types::RtpParseError::PaddingInvalid(n) => RtpError::Padding(n),
        rtp_types::RtpParseError::Truncated { expected, actual } => {
            // rtp-types reports an over-long padding count as truncation; name the real rule.
            let padded = data.first().is_some_and(|b| b & 0x20 != 0);
            match data.last() {
                Some(&n) if padded && expected > actual && usize::from(n) > 0 && actual >= 12 => {
                    RtpError::Padding(n)
                }
                _ => RtpError::Truncated { expected, actual },
            }
        }
    }
}

/// What the sender puts in the fixed header (RFC 3550 5.1). No CSRCs: we are an end system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

impl RtpHeader {
    /// Appends header + payload to `out` (cleared first), reusing its allocation.
    pub fn write(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), RtpError> {
        if self.payload_type > 127 {
            return Err(RtpError::PayloadTypeRange(self.payload_type));
        }
        if (64..96).contains(&self.payload_type) {
            return Err(RtpError::PayloadTypeIsRtcp(self.payload_type));
        }
        out.clear();
        out.reserve(12 + payload.len());
        out.push(0x80);
        out.push(u8::from(self.marker) << 7 | self.payload_type);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(payload);
        Ok(())
    }
}

/// Builds a packet with CSRCs, an extension and padding through `rtp-types` (tests and tools;
/// the send path uses [`RtpHeader::write`], which is faster and never needs these).
pub fn build_full(
    header: &RtpHeader,
    csrcs: &[u32],
    extension: Option<(u16, &[u8])>,
    padding: u8,
    payload: &[u8],
) -> Result<Vec<u8>, RtpError> {
    let mut b = rtp_types::RtpPacketBuilder::<&[u8], &[u8]>::new()
        .marker_bit(header.marker)
        .payload_type(header.payload_type)
        .sequence_number(header.sequence)
        .timestamp(header.timestamp)
        .ssrc(header.ssrc)
        .payload(payload);
    for c in csrcs {
        b = b.add_csrc(*c);
    }
    if let Some((id, data)) = extension {
        b = b.extension(id, data);
    }
    if padding > 0 {
        b = b.padding(padding);
    }
    b.write_vec().map_err(|e| match e {
        rtp_types::RtpWriteError::InvalidPayloadType(pt) => RtpError::PayloadTypeRange(pt),
        rtp_types::RtpWriteError::InvalidPadding => RtpError::Padding(padding),
        _ => RtpError::TooLarge(usize::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PCMU_CSRC_EXT_PAD: &[u8] =
        include_bytes!("../../../../fixtures/rtp/pcmu-csrc-ext-pad.bin");

    fn header() -> RtpHeader {
        RtpHeader {
            marker: true,
            payload_type: 0,
            sequence: 65535,
            timestamp: 0xffff_ff60,
            ssrc: 0x1234_5678,
        }
    }

    #[test]
    fn rfc3550_5_1_round_trip_plain() {
        let mut out = Vec::new();
        header().write(&[0xd5; 160], &mut out).unwrap();
        assert_eq!(out.len(), 172);
        let p = RtpPacket::parse(&out).unwrap();
        assert!(p.marker);
        assert_eq!(
            (p.payload_type, p.sequence, p.timestamp, p.ssrc),
            (0, 65535, 0xffff_ff60, 0x1234_5678)
        );
        assert_eq!(p.payload, &[0xd5; 160][..]);
    }

    #[test]
    fn rfc3550_5_1_csrc_extension_padding_fixture() {
        let built = build_full(
            &header(),
            &[0xaaaa_aaaa, 0xbbbb_bbbb],
            Some((0xbede, &[1, 2, 3, 4, 5, 6, 7, 8])),
            4,
            &[0xd5; 160],
        )
        .unwrap();
        assert_eq!(built, PCMU_CSRC_EXT_PAD, "fixture is what we build");
        let p = RtpPacket::parse(PCMU_CSRC_EXT_PAD).unwrap();
        assert_eq!(p.csrc_count, 2);
        assert_eq!(p.extension, Some((0xbede, &[1u8, 2, 3, 4, 5, 6, 7, 8][..])));
        assert_eq!(p.payload.len(), 160, "padding stripped");
    }

    #[test]
    fn rfc3550_5_1_malformed_are_named_errors() {
        let mut v1 = PCMU_CSRC_EXT_PAD.to_vec();
        v1[0] = (v1[0] & 0x3f) | 0x40;
        assert_eq!(RtpPacket::parse(&v1), Err(RtpError::Version(1)));
        let mut pad = PCMU_CSRC_EXT_PAD.to_vec();
        *pad.last_mut().unwrap() = 0;
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::Padding(0)));
        *pad.last_mut().unwrap() = 250;
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::Padding(250)));
        let mut cc = PCMU_CSRC_EXT_PAD[..12].to_vec();
        cc[0] = 0x8f;
        assert!(matches!(
            RtpPacket::parse(&cc),
            Err(RtpError::Truncated { .. })
        ));
        assert!(matches!(
            RtpPacket::parse(&[0x80; 11]),
            Err(RtpError::Truncated {
                expected: 12,
                actual: 11
            })
        ));
    }

    #[test]
    fn rfc5761_4_rtcp_range_payload_types_rejected() {
        let mut out = Vec::new();
        let h = RtpHeader {
            payload_type: 72,
            ..header()
        };
        assert_eq!(h.write(&[], &mut out), Err(RtpError::PayloadTypeIsRtcp(72)));
        let mut raw = vec![0x80, 200, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(RtpPacket::parse(&raw), Err(RtpError::PayloadTypeIsRtcp(72)));
        raw[1] = 0x80 | 8;
        assert_eq!(
            RtpPacket::parse(&raw).map(|p| (p.marker, p.payload_type)),
            Ok((true, 8))
        );
    }
}
