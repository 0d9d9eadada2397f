//! Runs 1,000 frames of one codec path, for instruction counts under callgrind (a figure
//! that does not move with machine load, unlike wall time):
//! `valgrind --tool=callgrind cargo run --release -p codec --example frame_cost -- up`.
//! Paths: up (8k -> 24k), down (24k -> 8k), pcmu-dec, pcmu-enc, opus-dec, opus-enc.

use std::hint::black_box;

use codec::{Decoder, Encoder, Frame, PayloadCodec, Resampler};

const FRAMES: usize = 1_000;

fn speech_frame(i: usize) -> Frame {
    let mut f = Frame::silence();
    for (n, s) in f.as_mut_slice().iter_mut().enumerate() {
        let t = (i * Frame::SAMPLES + n) as f64 / f64::from(Frame::RATE);
        *s = (6000.0 * (2.0 * std::f64::consts::PI * 220.0 * t).sin()
            + 2500.0 * (2.0 * std::f64::consts::PI * 1900.0 * t).sin()) as i16;
    }
    f
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "up".into());
    let frames: Vec<Frame> = (0..50).map(speech_frame).collect();
    let mut out = Vec::new();
    match path.as_str() {
        "up" | "down" => {
            let (from, to) = if path == "up" {
                (8_000, 24_000)
            } else {
                (24_000, 8_000)
            };
            let mut r = Resampler::new(from, to)?;
            let input: Vec<i16> = frames[0].as_slice()[..from as usize / 50].to_vec();
            let mut o = vec![0i16; to as usize / 50];
            for _ in 0..FRAMES {
                r.process(black_box(&input), &mut o)?;
                black_box(&o);
            }
        }
        "pcmu-enc" | "opus-enc" => {
            let codec = if path == "pcmu-enc" {
                PayloadCodec::Pcmu
            } else {
                PayloadCodec::Opus
            };
            let mut e = Encoder::new(codec)?;
            for i in 0..FRAMES {
                e.encode(black_box(&frames[i % frames.len()]), &mut out)?;
                black_box(&out);
            }
        }
        "pcmu-dec" | "opus-dec" => {
            let codec = if path == "pcmu-dec" {
                PayloadCodec::Pcmu
            } else {
                PayloadCodec::Opus
            };
            let mut e = Encoder::new(codec)?;
            let payloads: Vec<Vec<u8>> = frames
                .iter()
                .map(|f| e.encode(f, &mut out).map(|()| out.clone()))
                .collect::<Result<_, _>>()?;
            let mut d = Decoder::new(codec)?;
            for i in 0..FRAMES {
                black_box(d.decode(black_box(&payloads[i % payloads.len()]))?);
            }
        }
        other => return Err(format!("unknown path {other}").into()),
    }
    Ok(())
}
