//! Per-call CPU of the Realtime wire encoding (issue 5): what one call costs each 20 ms each way.
//!
//! - `append_encode`: caller audio -> `input_audio_buffer.append` JSON text. `pcm24k_20ms` is a
//!   24 kHz [`codec::Frame`] -> s16le (960 B) -> base64 -> JSON; `g711_20ms` is a 160 B PCMU
//!   RTP payload passed through (`audio/pcmu` session) -> base64 -> JSON.
//! - `delta_decode`: a `response.output_audio.delta` JSON text -> `ServerEvent::parse` -> base64
//!   decode -> i16 samples, for 20 ms and 100 ms of 24 kHz PCM per delta.
//!
//! Throughput is one event per iteration (so criterion's `elem/s` is events/s on one core) and
//! the JSON text length (bytes on the wire per event, before WebSocket framing).
//! `sip-test/bench-realtime-events` runs this and the callgrind count of the same code.

mod support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn append_encode(c: &mut Criterion) {
    let frame = support::pcm_frame();
    let g711 = support::g711_payload();
    let pcm_json = support::encode_pcm_append(&frame);
    let g711_json = support::encode_g711_append(&g711);
    assert_eq!(frame.to_le_bytes().len(), 960);
    assert_eq!(g711.len(), 160);
    println!(
        "wire bytes per 20 ms append: pcm24k {} B, g711 {} B",
        pcm_json.len(),
        g711_json.len()
    );

    let mut g = c.benchmark_group("append_encode");
    g.throughput(Throughput::ElementsAndBytes {
        elements: 1,
        bytes: pcm_json.len() as u64,
    });
    g.bench_function("pcm24k_20ms", |b| {
        b.iter(|| support::encode_pcm_append(black_box(&frame)))
    });
    g.throughput(Throughput::ElementsAndBytes {
        elements: 1,
        bytes: g711_json.len() as u64,
    });
    g.bench_function("g711_20ms", |b| {
        b.iter(|| support::encode_g711_append(black_box(&g711)))
    });
    // The hot path's text (SIMD base64) against the `base64` crate's scalar engine on one
    // 40 ms PCM append (what every call sends 25 times a second by default).
    let pcm40: Vec<u8> = [frame.to_le_bytes(), frame.to_le_bytes()].concat();
    g.throughput(Throughput::Bytes(pcm40.len() as u64));
    g.bench_function("append_json_pcm24k_40ms", |b| {
        b.iter(|| realtime::ClientEvent::append_json(black_box(&pcm40)))
    });
    g.bench_function("base64_crate_pcm24k_40ms", |b| {
        b.iter(|| {
            use base64::Engine as _;
            let mut out = String::with_capacity(pcm40.len() / 3 * 4 + 4);
            base64::engine::general_purpose::STANDARD.encode_string(black_box(&pcm40), &mut out);
            out
        })
    });
    g.finish();
}

fn delta_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("delta_decode");
    for ms in [20usize, 100] {
        let json = support::delta_json(ms);
        assert_eq!(support::decode_delta(&json).len(), ms * 24);
        println!("wire bytes per {ms} ms delta: {} B", json.len());
        g.throughput(Throughput::ElementsAndBytes {
            elements: 1,
            bytes: json.len() as u64,
        });
        g.bench_function(format!("pcm24k_{ms}ms"), |b| {
            b.iter(|| support::decode_delta(black_box(&json)))
        });
    }
    g.finish();
}

criterion_group!(benches, append_encode, delta_decode);
criterion_main!(benches);
