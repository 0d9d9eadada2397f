//! RTCP compound packets (RFC 3550 6.1): SR (6.4.1), RR (6.4.2), SDES CNAME (6.5), BYE (6.6),
//! through `rtcp-types`. Parsing keeps what a two-party call uses and ignores the rest.

use crate::error::RtcpError;
use rtcp_types::{
    Bye, Compound, Packet, ReceiverReport, ReportBlock as RbView, RtcpPacketWriter,
    RtcpPacketWriterExt, Sdes, SdesChunk, SdesItem, SenderReport,
};

/// One reception report block (RFC 3550 6.4.1), ours or the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256 (RFC 3550 A.3).
    pub fraction_lost: u8,
    /// Cumulative packets lost, 24-bit signed on the wire.
    pub cumulative_lost: i32,
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units (RFC 3550 A.8).
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received (LSR).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s (DLSR).
    pub delay_since_last_sr: u32,
}

/// Sender information of an SR (RFC 3550 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// What one compound packet told us.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtcpSummary {
    pub sender_ssrc: Option<u32>,
    pub sender_info: Option<SenderInfo>,
    pub report_blocks: Vec<ReportBlock>,
    pub cname: Option<Vec<u8>>,
    /// SSRCs that said goodbye (RFC 3550 6.6).
    pub bye: Vec<u32>,
}

/// Parses a compound packet. RFC 3550 6.1 requires it to start with SR or RR; a malformed
/// sub-packet fails the whole datagram, as the RFC's validity checks (A.2) do.
pub fn parse_compound(data: &[u8]) -> Result<RtcpSummary, RtcpError> {
    let first_type = data.get(1).copied().unwrap_or(0);
    if first_type != 200 && first_type != 201 {
        return Err(RtcpError::FirstNotReport(first_type));
    }
    let mut out = RtcpSummary::default();
    for packet in Compound::parse(data)? {
        match packet? {
            Packet::Sr(sr) => {
                out.sender_ssrc = Some(sr.ssrc());
                out.sender_info = Some(SenderInfo {
                    ntp: sr.ntp_timestamp(),
                    rtp_timestamp: sr.rtp_timestamp(),
                    packet_count: sr.packet_count(),
                    octet_count: sr.octet_count(),
                });
                out.report_blocks.extend(sr.report_blocks().map(block));
            }
            Packet::Rr(rr) => {
                out.sender_ssrc.get_or_insert(rr.ssrc());
                out.report_blocks.extend(rr.report_blocks().map(block));
            }
            Packet::Sdes(sdes) => {
                for chunk in sdes.chunks() {
                    for item in chunk.items() {
                        if item.type_() == SdesItem::CNAME && out.cname.is_none() {
                            out.cname = Some(item.value().to_vec());
                        }
                    }
                }
            }
            Packet::Bye(bye) => out.bye.extend(bye.ssrcs()),
            _ => {}
        }
    }
    Ok(out)
}

fn block(b: RbView<'_>) -> ReportBlock {
    // 24-bit two's complement (RFC 3550 6.4.1 "cumulative number of packets lost").
    let raw = b.cumulative_lost() & 0x00ff_ffff;
    let cumulative_lost = ((raw << 8) as i32) >> 8;
    ReportBlock {
        ssrc: b.ssrc(),
        fraction_lost: b.fraction_lost(),
        cumulative_lost,
        extended_highest_seq: b.extended_sequence_number(),
        jitter: b.interarrival_jitter(),
        last_sr: b.last_sender_report_timestamp(),
        delay_since_last_sr: b.delay_since_last_sender_report_timestamp(),
    }
}

/// What we put in one report (RFC 3550 6.1: SR or RR first, then SDES with CNAME, BYE last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSpec<'a> {
    pub ssrc: u32,
    /// Present when we sent RTP since the last report (6.4: SR, else RR).
    pub sender_info: Option<SenderInfo>,
    pub blocks: &'a [ReportBlock],
    pub cname: &'a str,
    pub bye: bool,
}

/// Writes a compound packet into a new vector.
pub fn build_compound(spec: &ReportSpec<'_>) -> Result<Vec<u8>, RtcpError> {
    if spec.blocks.len() > 31 {
        return Err(RtcpError::TooManyReportBlocks(spec.blocks.len()));
    }
    if spec.cname.len() > 255 {
        return Err(RtcpError::CnameTooLong);
    }
    let to_builder = |b: &ReportBlock| {
        RbView::builder(b.ssrc)
            .fraction_lost(b.fraction_lost)
            .cumulative_lost((b.cumulative_lost as u32) & 0x00ff_ffff)
            .extended_sequence_number(b.extended_highest_seq)
            .interarrival_jitter(b.jitter)
            .last_sender_report_timestamp(b.last_sr)
            .delay_since_last_sender_report_timestamp(b.delay_since_last_sr)
    };
    let mut compound = Compound::builder();
    compound = match spec.sender_info {
        Some(si) => {
            let mut sr = SenderReport::builder(spec.ssrc)
                .ntp_timestamp(si.ntp)
                .rtp_timestamp(si.rtp_timestamp)
                .packet_count(si.packet_count)
                .octet_count(si.octet_count);
            for b in spec.blocks {
                sr = sr.add_report_block(to_builder(b));
            }
            compound.add_packet(sr)
        }
        None => {
            let mut rr = ReceiverReport::builder(spec.ssrc);
            for b in spec.blocks {
                rr = rr.add_report_block(to_builder(b));
            }
            compound.add_packet(rr)
        }
    };
    compound = compound.add_packet(Sdes::builder().add_chunk(
        SdesChunk::builder(spec.ssrc).add_item(SdesItem::builder(SdesItem::CNAME, spec.cname)),
    ));
    if spec.bye {
        compound = compound.add_packet(Bye::builder().add_source(spec.ssrc));
    }
    let mut out = vec![0; compound.calculate_size()?];
    compound.write_into(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR_RR_SDES_BYE: &[u8] =
        include_bytes!("../../../../fixtures/rtp/rtcp-sr-rr-sdes-bye.bin");

    #[test]
    fn rfc3550_6_1_compound_sr_sdes_bye_round_trip() {
        let blocks = [ReportBlock {
            ssrc: 0x1111,
            fraction_lost: 13,
            cumulative_lost: -2,
            extended_highest_seq: 70_000,
            jitter: 77,
            last_sr: 5,
            delay_since_last_sr: 6,
        }];
        let si = SenderInfo {
            ntp: 0xdead_beef_0000_0001,
            rtp_timestamp: 160,
            packet_count: 3,
            octet_count: 480,
        };
        let bytes = build_compound(&ReportSpec {
            ssrc: 0x1234_5678,
            sender_info: Some(si),
            blocks: &blocks,
            cname: "sb@host",
            bye: true,
        })
        .unwrap();
        let s = parse_compound(&bytes).unwrap();
        assert_eq!(s.sender_ssrc, Some(0x1234_5678));
        assert_eq!(s.sender_info, Some(si));
        assert_eq!(s.report_blocks, blocks);
        assert_eq!(s.cname.as_deref(), Some(&b"sb@host"[..]));
        assert_eq!(s.bye, vec![0x1234_5678]);
    }

    #[test]
    fn rfc3550_6_1_fixture_sr_rr_sdes_bye() {
        // SR (1 block) + RR (1 block) + SDES CNAME + BYE with reason, as another stack sends it.
        let s = parse_compound(SR_RR_SDES_BYE).unwrap();
        assert_eq!(s.sender_ssrc, Some(0x1234_5678));
        assert_eq!(s.sender_info.map(|i| i.packet_count), Some(3));
        assert_eq!(s.report_blocks.len(), 2);
        assert_eq!(s.report_blocks[0].cumulative_lost, 42);
        assert_eq!(s.report_blocks[0].jitter, 77);
        assert_eq!(s.cname.as_deref(), Some(&b"switchboard@host"[..]));
        assert_eq!(s.bye, vec![0x1234_5678]);
    }

    #[test]
    fn rfc3550_6_1_first_packet_must_be_report() {
        let bytes = build_compound(&ReportSpec {
            ssrc: 1,
            sender_info: None,
            blocks: &[],
            cname: "x",
            bye: true,
        })
        .unwrap();
        let rr_len = 8;
        assert_eq!(
            parse_compound(&bytes[rr_len..]),
            Err(RtcpError::FirstNotReport(202))
        );
        assert!(
            parse_compound(&bytes[..bytes.len() - 2]).is_err(),
            "truncated BYE"
        );
        let mut v1 = bytes.clone();
        v1[rr_len] = (v1[rr_len] & 0x3f) | 0x40;
        assert!(parse_compound(&v1).is_err(), "second packet with version 1");
    }
}
