//! RTP and RTCP parse/build per packet (20 ms PCMU frames, a typical SR+SDES compound).

use criterion::{criterion_group, criterion_main, Criterion};
use rtp::packet::rtcp::{build_compound, parse_compound, ReportBlock, ReportSpec, SenderInfo};
use rtp::packet::rtp::{RtpHeader, RtpPacket};
use std::hint::black_box;

const RTP_FULL: &[u8] = include_bytes!("../../../fixtures/rtp/pcmu-csrc-ext-pad.bin");
const RTCP: &[u8] = include_bytes!("../../../fixtures/rtp/rtcp-sr-rr-sdes-bye.bin");

fn bench(c: &mut Criterion) {
    let header = RtpHeader {
        marker: false,
        payload_type: 0,
        sequence: 1,
        timestamp: 160,
        ssrc: 7,
    };
    let mut plain = Vec::new();
    header.write(&[0xd5; 160], &mut plain).unwrap();
    c.bench_function("rtp_parse_pcmu_172B", |b| {
        b.iter(|| RtpPacket::parse(black_box(&plain)).map(|p| p.payload.len()))
    });
    c.bench_function("rtp_parse_csrc_ext_pad", |b| {
        b.iter(|| RtpPacket::parse(black_box(RTP_FULL)).map(|p| p.payload.len()))
    });
    let mut out = Vec::with_capacity(200);
    c.bench_function("rtp_build_pcmu_172B", |b| {
        b.iter(|| {
            black_box(&header)
                .write(black_box(&[0xd5; 160]), &mut out)
                .unwrap();
            out.len()
        })
    });
    c.bench_function("rtcp_parse_sr_rr_sdes_bye", |b| {
        b.iter(|| parse_compound(black_box(RTCP)).map(|s| s.report_blocks.len()))
    });
    let blocks = [ReportBlock {
        ssrc: 1,
        fraction_lost: 3,
        cumulative_lost: 9,
        extended_highest_seq: 70_000,
        jitter: 40,
        last_sr: 5,
        delay_since_last_sr: 6,
    }];
    let spec = ReportSpec {
        ssrc: 7,
        sender_info: Some(SenderInfo {
            ntp: 1 << 40,
            rtp_timestamp: 160,
            packet_count: 250,
            octet_count: 40_000,
        }),
        blocks: &blocks,
        cname: "switchboard",
        bye: false,
    };
    c.bench_function("rtcp_build_sr_sdes", |b| {
        b.iter(|| build_compound(black_box(&spec)).map(|v| v.len()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
