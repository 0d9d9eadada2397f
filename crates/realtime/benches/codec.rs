//! Per 20 ms of audio, each way, through the API the bridge calls: pcm16 24 kHz (960 bytes) ->
//! `input_audio_buffer.append` JSON (`ClientEvent::append` + `to_json`), and a
//! `response.output_audio.delta` JSON -> `ServerEvent::parse` -> decoded bytes, plus the
//! tracker's bookkeeping of that delta. Prints events/s for one core after the criterion runs.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use realtime::{ClientEvent, ServerEvent, SessionConfig, Tracker};

fn pcm20() -> Vec<u8> {
    (0..480u32)
        .flat_map(|n| (((n * 7919) % 20000) as i16 - 10000).to_le_bytes())
        .collect()
}

fn delta_json(pcm: &[u8]) -> String {
    let ClientEvent::InputAudioBufferAppend(a) = ClientEvent::append(pcm) else {
        unreachable!()
    };
    format!(
        r#"{{"type":"response.output_audio.delta","event_id":"event_CzbdbT6Jw0dfdQ9fuHrNe","response_id":"resp_CzbdbtSpJe8Ouv3OW1s1U","item_id":"item_CzbdbvD1tXGqHdB8KCsXH","output_index":0,"content_index":0,"delta":"{}"}}"#,
        a.audio
    )
}

fn encode_append(pcm: &[u8]) -> String {
    ClientEvent::append(pcm).to_json().unwrap_or_default()
}

fn decode_delta(json: &str) -> usize {
    match ServerEvent::parse(json) {
        Ok(ServerEvent::OutputAudioDelta(d)) => d.decode_audio().map_or(0, |b| b.len()),
        _ => 0,
    }
}

fn bench(c: &mut Criterion) {
    let pcm = pcm20();
    assert_eq!(pcm.len(), 960);
    let json = delta_json(&pcm);
    let mut g = c.benchmark_group("realtime_20ms_pcm16");
    g.throughput(Throughput::Elements(1));
    g.bench_function("append_encode_base64_json", |b| {
        b.iter(|| black_box(encode_append(black_box(&pcm))))
    });
    g.bench_function("delta_parse_decode_base64", |b| {
        b.iter(|| black_box(decode_delta(black_box(&json))))
    });
    let mut tracker = Tracker::new(
        &SessionConfig::builder()
            .build()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let ev = ServerEvent::parse(&json).unwrap_or_else(|e| panic!("{e}"));
    g.bench_function("delta_tracker_bookkeeping", |b| {
        b.iter(|| tracker.on_server_event(black_box(&ev)))
    });
    g.finish();

    // A plain figure for the note: events per second on one core, 200k of each.
    let n = 200_000u32;
    let t = Instant::now();
    for _ in 0..n {
        black_box(encode_append(black_box(&pcm)));
    }
    let enc = f64::from(n) / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..n {
        black_box(decode_delta(black_box(&json)));
    }
    let dec = f64::from(n) / t.elapsed().as_secs_f64();
    println!(
        "events/s per core: append encode {enc:.0} ({:.0} calls at 50/s), delta decode {dec:.0} ({:.0} calls at 50/s); append JSON {} bytes, delta JSON {} bytes",
        enc / 50.0,
        dec / 50.0,
        encode_append(&pcm).len(),
        json.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
