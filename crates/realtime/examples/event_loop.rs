//! `event_loop N [WHAT]`: N Realtime events encoded and/or decoded, for
//! `valgrind --tool=callgrind` (`sip-test/bench-realtime-events`), which turns the instruction
//! count of two runs with different N into instructions per event.
//!
//! WHAT is `both` (default: N 20 ms PCM appends encoded + N 20 ms deltas decoded),
//! `append-pcm`, `append-g711`, `delta-20ms` or `delta-100ms`. The inputs and the per-event code
//! are the criterion bench's (`benches/support`).

#[path = "../benches/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let what = args.next().unwrap_or_else(|| "both".into());
    let frame = support::pcm_frame();
    let g711 = support::g711_payload();
    let delta20 = support::delta_json(20);
    let delta100 = support::delta_json(100);
    let (mut bytes, mut samples) = (0usize, 0usize);
    let (enc_pcm, enc_g711, dec20, dec100) = match what.as_str() {
        "both" => (true, false, true, false),
        "append-pcm" => (true, false, false, false),
        "append-g711" => (false, true, false, false),
        "delta-20ms" => (false, false, true, false),
        "delta-100ms" => (false, false, false, true),
        other => {
            eprintln!(
                "unknown WHAT {other:?}: both, append-pcm, append-g711, delta-20ms, delta-100ms"
            );
            return ExitCode::FAILURE;
        }
    };
    for _ in 0..n {
        if enc_pcm {
            bytes += support::encode_pcm_append(black_box(&frame)).len();
        }
        if enc_g711 {
            bytes += support::encode_g711_append(black_box(&g711)).len();
        }
        if dec20 {
            samples += support::decode_delta(black_box(&delta20)).len();
        }
        if dec100 {
            samples += support::decode_delta(black_box(&delta100)).len();
        }
    }
    println!("{what} x {n}: {bytes} JSON bytes encoded, {samples} samples decoded");
    ExitCode::SUCCESS
}
