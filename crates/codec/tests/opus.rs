//! Opus through libopus at 24 kHz: speech round trip, FEC and PLC on loss, malformed packets.

mod common;

use codec::opus::{RTP_CLOCK_RATE, RTP_TIMESTAMP_STEP};
use codec::{CodecError, Frame, OpusDecoder, OpusEncoder, OpusEncoderConfig};
use common::{best_lag, read_wav_fixture, snr_db};
use proptest::prelude::*;

fn speech_frames() -> Vec<Frame> {
    let (rate, pcm) = read_wav_fixture("billing-question-24k.wav");
    assert_eq!(rate, 24_000);
    pcm.chunks_exact(Frame::SAMPLES)
        .filter_map(Frame::from_slice)
        .collect()
}

fn encode_all(frames: &[Frame], config: OpusEncoderConfig) -> Vec<Vec<u8>> {
    let mut enc = OpusEncoder::new(config).unwrap();
    frames
        .iter()
        .map(|f| {
            let mut out = Vec::new();
            enc.encode(f, &mut out).unwrap();
            out
        })
        .collect()
}

#[test]
fn rfc7587_rtp_clock_is_48_khz_whatever_the_decode_rate() {
    assert_eq!(RTP_CLOCK_RATE, 48_000);
    assert_eq!(RTP_TIMESTAMP_STEP, 960);
}

#[test]
fn opus_speech_round_trip_correlates_after_delay() {
    let frames = speech_frames();
    let packets = encode_all(&frames, OpusEncoderConfig::default());
    let mut dec = OpusDecoder::new().unwrap();
    let decoded: Vec<i16> = packets
        .iter()
        .flat_map(|p| dec.decode(p).unwrap().0)
        .collect();
    let original: Vec<i16> = frames.iter().flat_map(|f| f.0).collect();
    let (lag, corr) = best_lag(&original[..original.len() - 2_000], &decoded, 1_000);
    let snr = snr_db(&original[..original.len() - lag], &decoded[lag..]);
    let bytes: usize = packets.iter().map(Vec::len).sum();
    println!(
        "opus 24 kHz speech: delay {lag} samples ({:.2} ms), correlation {corr:.4}, \
         waveform SNR {snr:.1} dB, {:.1} kbit/s",
        lag as f64 / 24.0,
        bytes as f64 * 8.0 / (frames.len() as f64 * 0.02) / 1000.0
    );
    assert!(corr >= 0.9, "correlation {corr:.4}");
    assert!(lag < 480, "delay {lag} samples");
}

#[test]
fn opus_fec_recovers_a_lost_frame_better_than_plc() {
    let frames = speech_frames();
    let config = OpusEncoderConfig {
        expected_loss_percent: 20,
        ..OpusEncoderConfig::default()
    };
    let packets = encode_all(&frames, config);
    let (mut better, mut total) = (0, 0);
    let (mut fec_snr_sum, mut plc_snr_sum) = (0.0, 0.0);
    // Lose one packet at a time, in speech (frames 20..180 of the 4 s fixture).
    for lost in (20..180).step_by(8) {
        let mut reference = OpusDecoder::new().unwrap();
        let mut with_fec = OpusDecoder::new().unwrap();
        let mut with_plc = OpusDecoder::new().unwrap();
        for p in &packets[..lost] {
            reference.decode(p).unwrap();
            with_fec.decode(p).unwrap();
            with_plc.decode(p).unwrap();
        }
        let truth = reference.decode(&packets[lost]).unwrap();
        let fec = with_fec.decode_missing(Some(&packets[lost + 1]));
        let plc = with_plc.decode_missing(None);
        if truth.0.iter().all(|&s| s == 0) {
            continue;
        }
        let (f, p) = (snr_db(&truth.0, &fec.0), snr_db(&truth.0, &plc.0));
        fec_snr_sum += f;
        plc_snr_sum += p;
        total += 1;
        if f > p {
            better += 1;
        }
        // After either, the next packet decodes normally.
        assert!(with_fec.decode(&packets[lost + 1]).is_ok());
        assert!(with_plc.decode(&packets[lost + 1]).is_ok());
    }
    println!(
        "opus loss of one packet: FEC beat PLC in {better} of {total}; mean SNR vs lossless \
         FEC {:.1} dB, PLC {:.1} dB",
        fec_snr_sum / f64::from(total),
        plc_snr_sum / f64::from(total)
    );
    assert!(total >= 10);
    // Measured 5.5 dB against -1.1 dB; the margin allows for libopus's per-CPU SIMD paths.
    let gain = (fec_snr_sum - plc_snr_sum) / f64::from(total);
    assert!(gain >= 3.0, "FEC only {gain:.1} dB better than PLC");
}

#[test]
fn opus_plc_gives_a_frame_repeatedly() {
    let frames = speech_frames();
    let packets = encode_all(&frames[..30], OpusEncoderConfig::default());
    let mut dec = OpusDecoder::new().unwrap();
    for p in &packets {
        dec.decode(p).unwrap();
    }
    for _ in 0..10 {
        assert_eq!(dec.decode_missing(None).0.len(), Frame::SAMPLES);
    }
    // A garbage "next packet" falls back to PLC rather than failing.
    assert_eq!(
        dec.decode_missing(Some(&[0x03, 0x00])).0.len(),
        Frame::SAMPLES
    );
    assert_eq!(dec.decode_missing(Some(&[])).0.len(), Frame::SAMPLES);
}

#[test]
fn rfc6716_3_4_malformed_packets_are_errors() {
    let mut dec = OpusDecoder::new().unwrap();
    // [R5] code 3 with a frame count of 0.
    assert!(matches!(
        dec.decode(&[0x03, 0x00]),
        Err(CodecError::Opus { .. })
    ));
    // [R3] code 1 (two equal frames) needs an even number of bytes after the TOC.
    assert!(matches!(
        dec.decode(&[0x01, 0xAA]),
        Err(CodecError::Opus { .. })
    ));
    assert_eq!(dec.decode(&[]), Err(CodecError::EmptyPayload));
    // A well-formed 40 ms packet (TOC config 10: SILK WB 40 ms) is not a 20 ms frame.
    let forty_ms = [10 << 3, 0x55, 0xAA, 0x12, 0x34];
    assert_eq!(
        dec.decode(&forty_ms),
        Err(CodecError::OpusPacketDuration { samples: 960 })
    );
    // The decoder still works afterwards.
    let packets = encode_all(&speech_frames()[..5], OpusEncoderConfig::default());
    for p in &packets {
        assert!(dec.decode(p).is_ok());
    }
}

proptest! {
    #[test]
    fn opus_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut dec = OpusDecoder::new().unwrap();
        let _ = dec.decode(&bytes);
        let frame = dec.decode_missing(Some(&bytes));
        prop_assert_eq!(frame.0.len(), Frame::SAMPLES);
    }
}
