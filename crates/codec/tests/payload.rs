//! The media engine's API: payload <-> 24 kHz frame for PCMU, PCMA and Opus.

mod common;

use codec::{CodecError, Decoder, Encoder, Frame, PayloadCodec};
use common::{best_lag, read_wav_fixture, snr_db, tone};

fn frames_of(pcm: &[i16]) -> Vec<Frame> {
    pcm.chunks_exact(Frame::SAMPLES)
        .filter_map(Frame::from_slice)
        .collect()
}

fn round_trip(codec: PayloadCodec, frames: &[Frame]) -> (Vec<i16>, Vec<usize>) {
    let mut enc = Encoder::new(codec).unwrap();
    let mut dec = Decoder::new(codec).unwrap();
    let mut out = Vec::new();
    let mut sizes = Vec::new();
    let mut pcm = Vec::new();
    for f in frames {
        enc.encode(f, &mut out).unwrap();
        sizes.push(out.len());
        pcm.extend_from_slice(dec.decode(&out).unwrap().as_slice());
    }
    (pcm, sizes)
}

#[test]
fn rfc3551_payload_types_and_clock_rates() {
    assert_eq!(PayloadCodec::Pcmu.static_payload_type(), Some(0));
    assert_eq!(PayloadCodec::Pcma.static_payload_type(), Some(8));
    assert_eq!(PayloadCodec::Opus.static_payload_type(), None);
    assert_eq!(PayloadCodec::Pcmu.rtp_timestamp_step(), 160);
    assert_eq!(PayloadCodec::Opus.rtp_clock_rate(), 48_000);
    assert_eq!(PayloadCodec::Opus.rtp_timestamp_step(), 960);
}

#[test]
fn g711_tone_round_trip_snr_and_delay() {
    let input = tone(1_000.0, 24_000, 12_000.0, 24_000);
    let frames = frames_of(&input);
    for codec in [PayloadCodec::Pcmu, PayloadCodec::Pcma] {
        let (out, sizes) = round_trip(codec, &frames);
        assert!(sizes.iter().all(|&n| n == 160));
        let delay = 102; // measured on speech below
        let snr = snr_db(&input[2_400..input.len() - delay], &out[2_400 + delay..]);
        println!("{codec:?}: 1 kHz tone 24k -> 8k -> G.711 -> 8k -> 24k SNR {snr:.1} dB");
        // G.711 gives about 38 dB SNR on a loud tone (G.711 sec. 1, segment quantization).
        assert!(snr >= 33.0, "{codec:?}: SNR {snr:.1} dB");
    }
}

#[test]
fn speech_round_trip_every_codec() {
    let (_, pcm) = read_wav_fixture("billing-question-24k.wav");
    let frames = frames_of(&pcm);
    for codec in [PayloadCodec::Pcmu, PayloadCodec::Pcma, PayloadCodec::Opus] {
        let (out, sizes) = round_trip(codec, &frames);
        let (lag, corr) = best_lag(&pcm[..pcm.len() - 2_000], &out, 600);
        let kbps = sizes.iter().sum::<usize>() as f64 * 8.0 / (frames.len() as f64 * 20.0);
        println!("{codec:?}: speech delay {lag} samples, correlation {corr:.4}, {kbps:.1} kbit/s");
        if codec != PayloadCodec::Opus {
            // Down (17 samples at 8 kHz) + up (51 at 24 kHz): 102 samples at 24 kHz, 4.25 ms.
            assert_eq!(lag, 102, "{codec:?}");
        }
        assert!(corr >= 0.9, "{codec:?}: correlation {corr:.4}");
    }
}

#[test]
fn g711_payload_of_wrong_length_is_rejected() {
    let mut dec = Decoder::new(PayloadCodec::Pcmu).unwrap();
    assert_eq!(
        dec.decode(&[0xFF; 159]),
        Err(CodecError::G711PayloadLength(159))
    );
    assert_eq!(
        dec.decode(&[0xFF; 320]),
        Err(CodecError::G711PayloadLength(320))
    );
    assert_eq!(dec.decode(&[]), Err(CodecError::EmptyPayload));
    assert!(dec.decode(&[0xFF; 160]).is_ok());
}

#[test]
fn g711_concealment_fades_from_the_last_sample_then_silence() {
    let input = tone(440.0, 24_000, 10_000.0, 4_800);
    let frames = frames_of(&input);
    let mut enc = Encoder::new(PayloadCodec::Pcma).unwrap();
    let mut dec = Decoder::new(PayloadCodec::Pcma).unwrap();
    let mut out = Vec::new();
    let mut last = Frame::silence();
    for f in &frames {
        enc.encode(f, &mut out).unwrap();
        last = dec.decode(&out).unwrap();
    }
    let first = dec.decode_missing(None);
    let second = dec.decode_missing(None);
    let third = dec.decode_missing(None);
    // No step where the loss starts: the jump is no larger than the tone's own slope.
    let max_step = last
        .0
        .windows(2)
        .map(|w| (w[1] - w[0]).unsigned_abs())
        .max()
        .unwrap();
    let seam = (first.0[0] - last.0[Frame::SAMPLES - 1]).unsigned_abs();
    println!("G.711 PLC: seam step {seam}, largest step in the last frame {max_step}");
    assert!(seam <= max_step, "seam {seam} > {max_step}");
    let peak = |f: &Frame| f.0.iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert!(peak(&first) > 1_000, "first concealed frame carries signal");
    // The fade ends at zero; after the filter's 2 ms tail, the second frame is silent.
    assert!(second.0[60..].iter().all(|&s| s.abs() <= 1));
    assert_eq!(peak(&third), 0);
    // Reception resumes normally.
    enc.encode(&frames[0], &mut out).unwrap();
    assert!(dec.decode(&out).is_ok());
}

#[test]
fn opus_missing_packet_through_the_payload_api() {
    let (_, pcm) = read_wav_fixture("billing-question-24k.wav");
    let frames = frames_of(&pcm);
    let mut enc = Encoder::new(PayloadCodec::Opus).unwrap();
    enc.set_expected_loss_percent(15).unwrap();
    let packets: Vec<Vec<u8>> = frames[..40]
        .iter()
        .map(|f| {
            let mut out = Vec::new();
            enc.encode(f, &mut out).unwrap();
            out
        })
        .collect();
    let mut dec = Decoder::new(PayloadCodec::Opus).unwrap();
    for (i, p) in packets.iter().enumerate() {
        if i % 10 == 5 {
            let next = packets.get(i + 1).map(Vec::as_slice);
            assert_eq!(dec.decode_missing(next).0.len(), Frame::SAMPLES);
        } else {
            dec.decode(p).unwrap();
        }
    }
    assert_eq!(dec.decode_missing(None).0.len(), Frame::SAMPLES);
}
