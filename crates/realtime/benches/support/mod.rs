//! Inputs and per-event work shared by `benches/events.rs` and `examples/event_loop.rs`, so the
//! criterion times and the callgrind instruction counts measure the same code: what the bridge
//! does per 20 ms each way (`crates/bridge/src/ai.rs`).

// Each of the two users calls a different subset.
#![allow(dead_code)]

use codec::{g711, Frame};
use realtime::{ClientEvent, ServerEvent};

/// 20 ms of 24 kHz PCM: a 440 Hz tone with a little deterministic noise, so every base64
/// quantum differs as in speech (the encoder's cost does not depend on the content).
pub fn pcm_frame() -> Frame {
    let mut f = Frame::silence();
    let mut seed = 0x2545_f491_u32;
    for (n, s) in f.as_mut_slice().iter_mut().enumerate() {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let tone = (n as f32 * 440.0 * std::f32::consts::TAU / 24_000.0).sin() * 8_000.0;
        *s = tone as i16 + (seed >> 22) as i16 - 512;
    }
    f
}

/// 20 ms of PCMU as it arrives in an RTP payload (160 bytes), for a G.711 pass-through session
/// (`audio/pcmu` input format).
pub fn g711_payload() -> Vec<u8> {
    let samples: Vec<i16> = pcm_frame().as_slice().iter().step_by(3).copied().collect();
    let mut codes = vec![0u8; g711::SAMPLES_PER_20MS];
    g711::encode_ulaw(&samples, &mut codes);
    codes
}

/// `ms` of 24 kHz PCM as little-endian bytes (48 bytes per ms).
pub fn pcm_bytes(ms: usize) -> Vec<u8> {
    let frame = pcm_frame().to_le_bytes();
    frame.iter().copied().cycle().take(ms * 48).collect()
}

/// A `response.output_audio.delta` as the server sends it (ids shaped like real ones), carrying
/// `ms` of 24 kHz PCM.
pub fn delta_json(ms: usize) -> String {
    let ClientEvent::InputAudioBufferAppend(a) = ClientEvent::append(&pcm_bytes(ms)) else {
        unreachable!("append builds an append")
    };
    format!(
        r#"{{"type":"response.output_audio.delta","event_id":"event_CzbdbT6Jw0dfdQ9fuHrNe","response_id":"resp_CzbdbtSpJe8Ouv3OW1s1U","item_id":"item_CzbdbvD1tXGqHdB8KCsXH","output_index":0,"content_index":0,"delta":"{}"}}"#,
        a.audio
    )
}

/// Caller side, PCM session: frame -> s16le -> base64 -> `input_audio_buffer.append` JSON.
pub fn encode_pcm_append(frame: &Frame) -> String {
    ClientEvent::append(&frame.to_le_bytes())
        .to_json()
        .unwrap_or_default()
}

/// Caller side, G.711 session: the RTP payload as is -> base64 -> JSON.
pub fn encode_g711_append(payload: &[u8]) -> String {
    ClientEvent::append(payload).to_json().unwrap_or_default()
}

/// Model side: JSON text -> event -> base64 decode -> i16 samples for playout.
pub fn decode_delta(json: &str) -> Vec<i16> {
    match ServerEvent::parse(json) {
        Ok(ServerEvent::OutputAudioDelta(d)) => d
            .decode_audio()
            .map(|bytes| {
                bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}
