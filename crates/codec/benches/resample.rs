//! Resampler choice by measurement: our polyphase FIR against `rubato` 5.1 (the design card's
//! crate) for 8k -> 24k and 24k -> 8k, one 20 ms frame per iteration, i16 in and out (the
//! codec path's format, so the f32 conversions rubato needs are counted too). Prints each
//! variant's algorithmic delay.

use std::hint::black_box;

use codec::Resampler as Polyphase;
use criterion::{criterion_group, criterion_main, Criterion};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Resampler, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

fn speechlike(rate: u32) -> Vec<i16> {
    let n = rate as usize / 50;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (6000.0 * (2.0 * std::f64::consts::PI * 300.0 * t).sin()
                + 3000.0 * (2.0 * std::f64::consts::PI * 1700.0 * t).sin()) as i16
        })
        .collect()
}

type Rubato = Box<dyn Resampler<f32>>;

fn rubato_variants(from: u32, to: u32) -> Vec<(&'static str, Rubato)> {
    let chunk = from as usize / 50;
    let sinc = |len| SincInterpolationParameters {
        sinc_len: len,
        f_cutoff: None,
        oversampling_factor: 128,
        interpolation: SincInterpolationType::Cubic,
        window: WindowFunction::BlackmanHarris2,
    };
    let ratio = f64::from(to) / f64::from(from);
    let mut v: Vec<(&'static str, Rubato)> = Vec::new();
    if let Ok(r) = Fft::<f32>::new(from as usize, to as usize, chunk, 1, FixedSync::Both) {
        v.push(("rubato_fft", Box::new(r)));
    }
    for (name, len) in [("rubato_sinc64", 64), ("rubato_sinc256", 256)] {
        if let Ok(r) = Async::<f32>::new_sinc(ratio, 1.0, &sinc(len), chunk, 1, FixedAsync::Input) {
            v.push((name, Box::new(r)));
        }
    }
    v
}

fn bench_direction(c: &mut Criterion, from: u32, to: u32) {
    let input = speechlike(from);
    let out_len = to as usize / 50;
    let mut group = c.benchmark_group(format!("resample_{}k_to_{}k", from / 1000, to / 1000));

    let mut ours = Polyphase::new(from, to).expect("supported pair");
    println!(
        "delay {from}->{to} polyphase ({} taps): {} samples = {:.3} ms",
        ours.prototype_taps(),
        ours.delay_samples(),
        ours.delay_micros() as f64 / 1000.0
    );
    let mut out = vec![0i16; out_len];
    group.bench_function("polyphase", |b| {
        b.iter(|| {
            ours.process(black_box(&input), &mut out)
                .expect("20 ms frame");
            black_box(&out);
        })
    });
    // The same filter without the AVX2 path (what a CPU without AVX2 runs).
    group.bench_function("polyphase_sse2", |b| {
        b.iter(|| {
            ours.process_portable(black_box(&input), &mut out)
                .expect("20 ms frame");
            black_box(&out);
        })
    });

    for (name, mut r) in rubato_variants(from, to) {
        println!(
            "delay {from}->{to} {name}: {} samples = {:.3} ms",
            r.output_delay(),
            r.output_delay() as f64 * 1000.0 / f64::from(to)
        );
        let mut fin = vec![0f32; input.len()];
        let mut fout = vec![0f32; r.output_frames_max()];
        let mut out = vec![0i16; fout.len()];
        group.bench_function(name, |b| {
            b.iter(|| {
                for (f, &s) in fin.iter_mut().zip(black_box(&input)) {
                    *f = f32::from(s) / 32768.0;
                }
                let frames_out = fout.len();
                let a_in = InterleavedSlice::new(&fin, 1, fin.len()).expect("sized");
                let mut a_out = InterleavedSlice::new_mut(&mut fout, 1, frames_out).expect("sized");
                let (_, n) = r
                    .process_into_buffer(&a_in, &mut a_out, None)
                    .expect("chunk");
                for (o, &f) in out.iter_mut().zip(&fout[..n]) {
                    *o = (f * 32768.0).round() as i16;
                }
                black_box(&out);
            })
        });
    }
    group.finish();
}

fn resample(c: &mut Criterion) {
    bench_direction(c, 8_000, 24_000);
    bench_direction(c, 24_000, 8_000);
}

criterion_group!(benches, resample);
criterion_main!(benches);
