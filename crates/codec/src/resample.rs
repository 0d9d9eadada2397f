//! Streaming sample-rate conversion between the rates a call meets (8, 16, 48 kHz) and the
//! 24 kHz of a [`Frame`](crate::Frame): a rational polyphase FIR (up by L, filter, down by M).
//!
//! Why not `rubato`: measured in `benches/resample.rs` and recorded in `docs/dependencies.md`.
//! Its FFT resampler adds 10 ms of delay, its sinc resamplers cost several times more per frame;
//! for fixed integer ratios a windowed-sinc polyphase filter is short and exact.
//!
//! The prototype is a Kaiser-windowed sinc designed for 80 dB stopband attenuation, so images
//! (upsampling) and aliases (downsampling) of the protected band stay >= 70 dB down with margin
//! for the f32 arithmetic and i16 output rounding. Its length is rounded up so that its group
//! delay, `(N - 1) / 2` samples at the high rate `from * L`, is a whole number of samples at
//! both the input and the output rate: a round trip (8k -> 24k -> 8k) then lines up exactly.

use crate::error::ResampleError;
use std::sync::{Arc, OnceLock};

/// Stopband attenuation the Kaiser design aims at, in dB.
const DESIGN_ATTENUATION_DB: f64 = 80.0;
/// Dot products run over 8 lanes at a time (two SSE registers); taps are zero-padded to fit.
const LANES: usize = 8;

/// One supported conversion: ratio and the band it keeps.
#[derive(Clone, Copy, Debug)]
struct Spec {
    from: u32,
    to: u32,
    up: usize,
    down: usize,
    /// Highest frequency passed untouched, Hz.
    pass_hz: f64,
    /// Lowest frequency rejected (and lowest image or alias of `pass_hz`), Hz.
    stop_hz: f64,
}

/// The conversions a call needs. Telephone band edges: G.712 keeps 300-3400 Hz at 8 kHz; the
/// wideband (16 kHz) codecs keep up to 7 kHz (G.722 / ITU-T P.341); 24 <-> 48 kHz keeps 10 kHz.
/// `stop_hz` mirrors `pass_hz` around the lower Nyquist frequency, so the image or alias of the
/// highest kept frequency is the first thing the filter must remove.
const SPECS: [Spec; 6] = [
    Spec {
        from: 8_000,
        to: 24_000,
        up: 3,
        down: 1,
        pass_hz: 3_400.0,
        stop_hz: 4_600.0,
    },
    Spec {
        from: 24_000,
        to: 8_000,
        up: 1,
        down: 3,
        pass_hz: 3_400.0,
        stop_hz: 4_600.0,
    },
    Spec {
        from: 16_000,
        to: 24_000,
        up: 3,
        down: 2,
        pass_hz: 7_000.0,
        stop_hz: 9_000.0,
    },
    Spec {
        from: 24_000,
        to: 16_000,
        up: 2,
        down: 3,
        pass_hz: 7_000.0,
        stop_hz: 9_000.0,
    },
    Spec {
        from: 24_000,
        to: 48_000,
        up: 2,
        down: 1,
        pass_hz: 10_000.0,
        stop_hz: 14_000.0,
    },
    Spec {
        from: 48_000,
        to: 24_000,
        up: 1,
        down: 2,
        pass_hz: 10_000.0,
        stop_hz: 14_000.0,
    },
];

/// A streaming resampler for one direction of one call. Keeps the last input samples the
/// filter needs, so consecutive 20 ms chunks join without a seam: processing a signal in
/// chunks gives bit for bit the output of processing it at once.
#[derive(Clone)]
pub struct Resampler {
    spec: Spec,
    /// Prototype length before padding.
    prototype_len: usize,
    /// Taps per polyphase branch, a multiple of [`LANES`].
    taps_per_phase: usize,
    /// `up` branches of `taps_per_phase` taps, each reversed so a branch is a forward dot
    /// product over the input history. Shared by every resampler of the same rates: a
    /// thousand calls read one copy, which stays in cache.
    branches: Arc<[f32]>,
    /// `taps_per_phase - 1` samples of history, then the chunk being processed.
    window: Vec<f32>,
    /// Downsampling only: the taps split by input phase, `down` runs of
    /// `taps_per_phase / down` taps (tap `down * i + r` of the branch is tap `i` of run `r`).
    down_taps: Arc<[f32]>,
    /// Downsampling scratch: one input phase, and the output summed over phases.
    phase_window: Vec<f32>,
    partial: Vec<f32>,
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz. Supported: 8 000 <-> 24 000, 16 000 <-> 24 000,
    /// 24 000 <-> 48 000.
    pub fn new(from: u32, to: u32) -> Result<Self, ResampleError> {
        let index = SPECS
            .iter()
            .position(|s| s.from == from && s.to == to)
            .ok_or(ResampleError::UnsupportedRates { from, to })?;
        static DESIGNED: [OnceLock<Resampler>; SPECS.len()] =
            [const { OnceLock::new() }; SPECS.len()];
        // The filter is designed once per rate pair; each resampler clones the shared taps and
        // gets its own history.
        Ok(DESIGNED[index]
            .get_or_init(|| Resampler::design(SPECS[index]))
            .clone())
    }

    fn design(spec: Spec) -> Self {
        let prototype = design(&spec);
        let prototype_len = prototype.len();
        // Downsampling splits the taps into `down` runs, each a whole number of lanes.
        let lanes = if spec.up == 1 {
            LANES * spec.down
        } else {
            LANES
        };
        let taps_per_phase = prototype_len.div_ceil(spec.up).next_multiple_of(lanes);
        let mut branches = vec![0.0f32; spec.up * taps_per_phase];
        for phase in 0..spec.up {
            let branch = &mut branches[phase * taps_per_phase..(phase + 1) * taps_per_phase];
            for (k, tap) in branch.iter_mut().enumerate() {
                // Branch `phase` holds h[phase + up * j]; reversed: index k holds j = T - 1 - k.
                let j = taps_per_phase - 1 - k;
                *tap = prototype.get(phase + spec.up * j).copied().unwrap_or(0.0) as f32;
            }
        }
        let down_taps: Vec<f32> = if spec.up == 1 {
            let runs = taps_per_phase / spec.down;
            (0..spec.down)
                .flat_map(|r| (0..runs).map(move |i| (r, i)))
                .map(|(r, i)| branches[spec.down * i + r])
                .collect()
        } else {
            Vec::new()
        };
        Resampler {
            spec,
            prototype_len,
            taps_per_phase,
            branches: branches.into(),
            window: vec![0.0; taps_per_phase - 1],
            down_taps: down_taps.into(),
            phase_window: Vec::new(),
            partial: Vec::new(),
        }
    }

    /// Input rate in Hz.
    pub fn from_rate(&self) -> u32 {
        self.spec.from
    }

    /// Output rate in Hz.
    pub fn to_rate(&self) -> u32 {
        self.spec.to
    }

    /// Input chunks must be a multiple of this many samples (so every chunk maps to a whole
    /// number of output samples). Every 20 ms chunk at the supported rates is.
    pub fn input_multiple(&self) -> usize {
        self.spec.down
    }

    /// Output samples produced for `input_len` input samples.
    pub fn output_len(&self, input_len: usize) -> usize {
        input_len / self.spec.down * self.spec.up
    }

    /// Filter taps before polyphase split (the prototype's length at the high rate).
    pub fn prototype_taps(&self) -> usize {
        self.prototype_len
    }

    /// Algorithmic delay in output samples (the FIR's group delay; linear phase, so the same
    /// at every frequency).
    pub fn delay_samples(&self) -> usize {
        (self.prototype_len - 1) / 2 / self.spec.down
    }

    /// Algorithmic delay in microseconds.
    pub fn delay_micros(&self) -> u64 {
        self.delay_samples() as u64 * 1_000_000 / u64::from(self.spec.to)
    }

    /// Forgets the history (a new stream starts from silence).
    pub fn reset(&mut self) {
        self.window.clear();
        self.window.resize(self.taps_per_phase - 1, 0.0);
    }

    /// Converts `input` and writes [`Resampler::output_len`] samples to the start of `output`;
    /// returns that count. `input.len()` must be a multiple of [`Resampler::input_multiple`].
    ///
    /// On an x86-64 CPU with AVX2 the same arithmetic runs on 256-bit registers (one per
    /// eight lanes instead of two): the same multiplies and additions in the same order, so
    /// the output is bit for bit what SSE2 gives, in about half the instructions.
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) -> Result<usize, ResampleError> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: `process_avx2` only needs AVX2, which the CPU has (checked just above).
            return unsafe { self.process_avx2(input, output) };
        }
        self.process_portable(input, output)
    }

    /// [`Resampler::process`] compiled for AVX2 (everything it calls is inlined into it).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn process_avx2(
        &mut self,
        input: &[i16],
        output: &mut [i16],
    ) -> Result<usize, ResampleError> {
        self.process_portable(input, output)
    }

    /// [`Resampler::process`] without assuming more than the target's baseline (SSE2 on
    /// x86-64): for comparison in tests and benchmarks.
    #[inline(always)]
    pub fn process_portable(
        &mut self,
        input: &[i16],
        output: &mut [i16],
    ) -> Result<usize, ResampleError> {
        let Spec { up, down, .. } = self.spec;
        if input.len() % down != 0 {
            return Err(ResampleError::InputNotMultiple {
                len: input.len(),
                multiple: down,
            });
        }
        let out_len = self.output_len(input.len());
        let got = output.len();
        let output = output
            .get_mut(..out_len)
            .ok_or(ResampleError::OutputTooShort {
                needed: out_len,
                got,
            })?;
        let history = self.taps_per_phase - 1;
        self.window.truncate(history);
        self.window.extend(input.iter().map(|&s| f32::from(s)));
        let taps = self.taps_per_phase;
        match (up, down) {
            // Pure upsampling: branch p makes outputs p, p + up, p + 2 up, ...
            (up, 1) => {
                for (p, branch) in self.branches.chunks_exact(taps).enumerate() {
                    fir(branch, &self.window, 1, input.len(), |q, v| {
                        output[q * up + p] = to_i16(v);
                    });
                }
            }
            // Pure downsampling: split the input into its `down` phases (x_r[m] = x[down m + r])
            // and the taps alike; each phase is then a stride-1 filter, the fast case above,
            // and the output is the sum of the phases' outputs.
            (1, down) => {
                let phase_taps = self.taps_per_phase / down;
                let span = out_len + phase_taps - 1;
                self.partial.clear();
                self.partial.resize(out_len, 0.0);
                for r in 0..down {
                    self.phase_window.clear();
                    self.phase_window
                        .extend(self.window.iter().skip(r).step_by(down).take(span));
                    let taps = &self.down_taps[r * phase_taps..(r + 1) * phase_taps];
                    let partial = &mut self.partial;
                    fir(taps, &self.phase_window, 1, out_len, |n, v| partial[n] += v);
                }
                for (out, &v) in output.iter_mut().zip(&self.partial) {
                    *out = to_i16(v);
                }
            }
            _ => {
                for (n, out) in output.iter_mut().enumerate() {
                    // Output n sits at index n * down of the upsampled (rate from * up)
                    // stream: branch (n * down) % up over the input ending at (n * down) / up.
                    let high = n * down;
                    let phase = high % up;
                    let start = high / up;
                    let branch = &self.branches[phase * taps..(phase + 1) * taps];
                    *out = to_i16(dot(branch, &self.window[start..start + taps]));
                }
            }
        }
        let consumed = self.window.len() - history;
        self.window.copy_within(consumed.., 0);
        self.window.truncate(history);
        Ok(out_len)
    }
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from", &self.spec.from)
            .field("to", &self.spec.to)
            .field("prototype_taps", &self.prototype_len)
            .finish_non_exhaustive()
    }
}

/// Eight independent partial sums let the compiler keep two SSE registers busy (a single
/// float accumulator cannot be vectorised: float addition is not associative).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    for (x, y) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    reduce(&acc)
}

/// Sums the lanes in a fixed order (so chunked and whole-signal runs agree bit for bit).
#[inline(always)]
fn reduce(acc: &[f32; LANES]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// Runs one branch `taps` over `count` windows starting `step` input samples apart, handing
/// each output to `put(index, value)`. Four outputs per pass share the tap loads and
/// keep eight independent sums in flight, which is what makes this fast on plain SSE2.
#[inline(always)]
fn fir(taps: &[f32], window: &[f32], step: usize, count: usize, mut put: impl FnMut(usize, f32)) {
    const BLOCK: usize = 4;
    let t = taps.len();
    let blocks = count / BLOCK;
    for b in 0..blocks {
        let base = b * BLOCK * step;
        let w: [&[f32]; BLOCK] =
            std::array::from_fn(|k| &window[base + k * step..base + k * step + t]);
        let mut acc = [[0.0f32; LANES]; BLOCK];
        for (j, h) in taps.chunks_exact(LANES).enumerate() {
            for (a, x) in acc.iter_mut().zip(&w) {
                let xs = &x[j * LANES..(j + 1) * LANES];
                for i in 0..LANES {
                    a[i] += h[i] * xs[i];
                }
            }
        }
        for (k, a) in acc.iter().enumerate() {
            put(b * BLOCK + k, reduce(a));
        }
    }
    for n in blocks * BLOCK..count {
        let start = n * step;
        put(n, dot(taps, &window[start..start + t]));
    }
}

/// Round half away from zero, saturating (`as` saturates; `f32::round` is a libm call
/// without SSE4.1).
#[inline(always)]
fn to_i16(y: f32) -> i16 {
    let r = if y >= 0.0 { y + 0.5 } else { y - 0.5 };
    r as i16
}

/// Kaiser-windowed sinc low-pass at the high rate `from * up`, DC gain `up` (each polyphase
/// branch then has unit gain). Kaiser's formulas (Oppenheim & Schafer, 7.6.1) give the window
/// shape and length for the attenuation and transition width.
fn design(spec: &Spec) -> Vec<f64> {
    let high_rate = f64::from(spec.from) * spec.up as f64;
    let transition = 2.0 * std::f64::consts::PI * (spec.stop_hz - spec.pass_hz) / high_rate;
    let a = DESIGN_ATTENUATION_DB;
    let min_order = ((a - 7.95) / (2.285 * transition)).ceil() as usize;
    // Group delay (N - 1) / 2 must be a multiple of up * down to be whole at both rates.
    let order = min_order.next_multiple_of(2 * spec.up * spec.down);
    let beta = 0.1102 * (a - 8.7);
    let cutoff = (spec.pass_hz + spec.stop_hz) / 2.0 / high_rate; // cycles per sample
    let center = order as f64 / 2.0;
    let i0_beta = bessel_i0(beta);
    let mut h: Vec<f64> = (0..=order)
        .map(|n| {
            let t = n as f64 - center;
            let x = 2.0 * cutoff * t;
            let sinc = if t == 0.0 {
                1.0
            } else {
                (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
            };
            let r = t / center;
            let window = bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / i0_beta;
            2.0 * cutoff * sinc * window
        })
        .collect();
    let sum: f64 = h.iter().sum();
    let gain = spec.up as f64 / sum;
    h.iter_mut().for_each(|v| *v *= gain);
    h
}

/// Modified Bessel function of the first kind, order 0 (power series; converges fast for the
/// beta values of an 80 dB Kaiser window).
fn bessel_i0(x: f64) -> f64 {
    let half_sq = (x / 2.0) * (x / 2.0);
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..64 {
        term *= half_sq / (k as f64 * k as f64);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_rates_are_named() {
        assert!(matches!(
            Resampler::new(8_000, 44_100),
            Err(ResampleError::UnsupportedRates {
                from: 8_000,
                to: 44_100
            })
        ));
    }

    #[test]
    fn delay_is_whole_at_both_rates() {
        for spec in SPECS {
            let r = Resampler::new(spec.from, spec.to).unwrap();
            let half = (r.prototype_len - 1) / 2;
            assert_eq!(half % (spec.up * spec.down), 0, "{spec:?}");
            assert!(
                r.delay_micros() <= 3_000,
                "{spec:?}: {} us",
                r.delay_micros()
            );
        }
    }

    #[test]
    fn chunk_not_multiple_is_rejected() {
        let mut r = Resampler::new(24_000, 8_000).unwrap();
        let mut out = [0i16; 10];
        assert!(matches!(
            r.process(&[0; 4], &mut out),
            Err(ResampleError::InputNotMultiple {
                len: 4,
                multiple: 3
            })
        ));
        assert!(matches!(
            r.process(&[0; 60], &mut out),
            Err(ResampleError::OutputTooShort {
                needed: 20,
                got: 10
            })
        ));
    }

    #[test]
    fn the_avx2_path_gives_the_portable_output_bit_for_bit() {
        // Speech-like content at full scale, clipping included, in 20 ms chunks.
        for spec in SPECS {
            let mut fast = Resampler::new(spec.from, spec.to).unwrap();
            let mut plain = fast.clone();
            let chunk = spec.from as usize / 50;
            let mut a = vec![0i16; fast.output_len(chunk)];
            let mut b = a.clone();
            for c in 0..20 {
                let input: Vec<i16> = (0..chunk)
                    .map(|i| {
                        let t = (c * chunk + i) as f64 / f64::from(spec.from);
                        let x = 30_000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                            + 9_000.0 * (2.0 * std::f64::consts::PI * 2_900.0 * t).sin();
                        x.clamp(-32_768.0, 32_767.0) as i16
                    })
                    .collect();
                fast.process(&input, &mut a).unwrap();
                plain.process_portable(&input, &mut b).unwrap();
                assert_eq!(a, b, "{spec:?} chunk {c}");
            }
        }
    }

    #[test]
    fn bessel_i0_known_values() {
        assert!((bessel_i0(0.0) - 1.0).abs() < 1e-15);
        assert!((bessel_i0(1.0) - 1.266_065_877_752_008_4).abs() < 1e-12);
    }
}
