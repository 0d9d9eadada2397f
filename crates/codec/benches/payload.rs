//! Per 20 ms frame, each way, through the API the media engine calls: RTP payload -> 24 kHz
//! Frame (`decode`) and Frame -> payload (`encode`), for PCMU and Opus; plus the G.711 tables
//! alone. Issue goal: G.711 full path <= 5 us per frame each way. Calls per core printed by
//! criterion's figure: 1 s / (50 frames x (decode + encode)).

use std::hint::black_box;

use codec::{g711, Decoder, Encoder, Frame, PayloadCodec};
use criterion::{criterion_group, criterion_main, Criterion};

fn speechlike(i: usize) -> Frame {
    let mut f = Frame::silence();
    for (n, s) in f.as_mut_slice().iter_mut().enumerate() {
        let t = (i * Frame::SAMPLES + n) as f64 / f64::from(Frame::RATE);
        let env = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
        *s = (env
            * (6000.0 * (2.0 * std::f64::consts::PI * 180.0 * t).sin()
                + 2500.0 * (2.0 * std::f64::consts::PI * 1250.0 * t).sin()
                + 900.0 * (2.0 * std::f64::consts::PI * 2900.0 * t).sin())) as i16;
    }
    f
}

fn payload(c: &mut Criterion) {
    let frames: Vec<Frame> = (0..50).map(speechlike).collect();
    for (name, codec) in [("pcmu", PayloadCodec::Pcmu), ("opus", PayloadCodec::Opus)] {
        let mut group = c.benchmark_group(format!("{name}_20ms"));
        let mut enc = Encoder::new(codec).expect("encoder");
        let mut out = Vec::with_capacity(1500);
        let mut i = 0;
        group.bench_function("encode_frame_to_payload", |b| {
            b.iter(|| {
                enc.encode(black_box(&frames[i % 50]), &mut out)
                    .expect("encode");
                i += 1;
                black_box(&out);
            })
        });
        let mut enc = Encoder::new(codec).expect("encoder");
        let payloads: Vec<Vec<u8>> = frames
            .iter()
            .map(|f| {
                let mut p = Vec::new();
                enc.encode(f, &mut p).expect("encode");
                p
            })
            .collect();
        let mut dec = Decoder::new(codec).expect("decoder");
        let mut i = 0;
        group.bench_function("decode_payload_to_frame", |b| {
            b.iter(|| {
                let f = dec.decode(black_box(&payloads[i % 50])).expect("decode");
                i += 1;
                black_box(f);
            })
        });
        group.bench_function("decode_missing", |b| {
            b.iter(|| black_box(dec.decode_missing(None)))
        });
        group.finish();
    }

    let mut group = c.benchmark_group("g711_tables_160_samples");
    let pcm: Vec<i16> = frames[7].as_slice()[..160].to_vec();
    let mut codes = [0u8; 160];
    group.bench_function("encode_ulaw", |b| {
        b.iter(|| {
            g711::encode_ulaw(black_box(&pcm), &mut codes);
            black_box(&codes);
        })
    });
    let mut back = [0i16; 160];
    group.bench_function("decode_ulaw", |b| {
        b.iter(|| {
            g711::decode_ulaw(black_box(&codes), &mut back);
            black_box(&back);
        })
    });
    group.finish();
}

criterion_group!(benches, payload);
criterion_main!(benches);
