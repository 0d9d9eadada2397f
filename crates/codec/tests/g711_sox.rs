//! G.711 cross-checked against SoX (Debian package `sox`), an independent implementation, on
//! the speech fixture and on every code. `-D` turns SoX's automatic dither off, which it
//! would otherwise add when narrowing 16-bit samples to 8-bit codes.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use codec::g711::{decode_alaw, decode_ulaw, encode_alaw, encode_ulaw};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/audio")
        .join(name)
}

/// Runs `sox` with `args`, feeding `stdin`, returning its stdout.
fn sox(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new("sox")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`sox` not found: install the Debian package `sox` (test-all.sh does)");
    let mut pipe = child.stdin.take().expect("stdin");
    let input = stdin.to_vec();
    // Write from a thread so a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || pipe.write_all(&input));
    let out = child.wait_with_output().expect("sox ran");
    writer.join().expect("writer").expect("write to sox");
    assert!(
        out.status.success(),
        "sox {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn speech_8k() -> Vec<i16> {
    let path = fixture("billing-question-8k.wav");
    let path = path.to_str().expect("utf-8 path");
    let raw = sox(
        &[
            "-D", path, "-t", "raw", "-e", "signed", "-b", "16", "-L", "-",
        ],
        &[],
    );
    let pcm: Vec<i16> = raw
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(pcm.len(), 32_000, "4 s at 8 kHz");
    pcm
}

fn to_le(pcm: &[i16]) -> Vec<u8> {
    pcm.iter().flat_map(|s| s.to_le_bytes()).collect()
}

const RAW_IN: [&str; 10] = [
    "-t", "raw", "-r", "8000", "-c", "1", "-e", "signed", "-b", "16",
];

fn sox_encode(pcm: &[i16], law: &str) -> Vec<u8> {
    let mut args = vec!["-D"];
    args.extend(RAW_IN);
    args.extend(["-L", "-", "-t", law, "-"]);
    sox(&args, &to_le(pcm))
}

fn sox_decode(codes: &[u8], law: &str) -> Vec<i16> {
    let args = [
        "-D", "-t", law, "-r", "8000", "-c", "1", "-", "-t", "raw", "-e", "signed", "-b", "16",
        "-L", "-",
    ];
    let raw = sox(&args, codes);
    raw.chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Every 16-bit input, then the speech: both go through SoX in one run.
fn ramp_and_speech() -> Vec<i16> {
    let mut pcm: Vec<i16> = (i16::MIN..=i16::MAX).collect();
    pcm.extend(speech_8k());
    pcm
}

/// SoX (14.4.2, `sox_14linear2ulaw` / `sox_13linear2alaw` from Sun's g711.c) differs from
/// G.191 in two documented ways: it rounds the 16-bit sample to 14 (u-law) or 13 (A-law) bits
/// to nearest, where G.191 truncates (`x >> 2`, `x >> 3`), and its u-law folds negatives with
/// negation (`-q`) where G.191 uses the one's complement (`~q`; A-law uses `~q` in both).
/// This maps a sample to the input on which G.191 makes SoX's decision, so the comparison is
/// byte for byte over the same quantizer.
fn sox_rounding(x: i16, law: &str) -> i16 {
    let x = i32::from(x);
    let y = if law == "ul" {
        let q = ((x + 2) >> 2).min(8191); // round to nearest 14-bit value
        if q >= 0 {
            4 * q
        } else {
            4 * (q - 1) // G.191's ~(y >> 2) then equals SoX's -q
        }
    } else {
        8 * ((x + 4) >> 3).min(4095) // round to nearest 13-bit value
    };
    y.max(i32::from(i16::MIN)) as i16
}

fn check_encode(law: &str) {
    let pcm = ramp_and_speech();
    let theirs = sox_encode(&pcm, law);
    let encode = |input: &[i16]| {
        let mut out = vec![0u8; input.len()];
        if law == "ul" {
            encode_ulaw(input, &mut out);
        } else {
            encode_alaw(input, &mut out);
        }
        out
    };
    let decode = |c: u8| {
        if law == "ul" {
            codec::g711::ulaw_to_linear(c)
        } else {
            codec::g711::alaw_to_linear(c)
        }
    };
    let rounded: Vec<i16> = pcm.iter().map(|&x| sox_rounding(x, law)).collect();
    report_and_assert_same(law, &pcm, &encode(&rounded), &theirs);

    // Without SoX's rounding: how many codes differ, and never by more than one level.
    let ours = encode(&pcm);
    let speech = 65_536..pcm.len();
    let differing = speech.clone().filter(|&i| ours[i] != theirs[i]).count();
    println!(
        "{law}: G.191 and SoX codes differ on {differing} of {} speech samples, {} of 65536 ramp inputs (SoX rounds)",
        speech.len(),
        (0..65_536).filter(|&i| ours[i] != theirs[i]).count()
    );
    let mut levels: Vec<i16> = (0..=255u8).map(decode).collect();
    levels.sort_unstable();
    levels.dedup();
    let rank = |c: u8| levels.binary_search(&decode(c)).unwrap_or(usize::MAX) as i64;
    for i in 0..pcm.len() {
        let steps = (rank(ours[i]) - rank(theirs[i])).abs();
        assert!(steps <= 1, "input {}: {steps} levels apart", pcm[i]);
    }
}

#[test]
fn g711_ulaw_encode_matches_sox_byte_for_byte_given_its_rounding() {
    check_encode("ul");
}

#[test]
fn g711_alaw_encode_matches_sox_byte_for_byte_given_its_rounding() {
    check_encode("al");
}

#[test]
fn g711_decode_speech_and_all_codes_match_sox() {
    let pcm = speech_8k();
    for law in ["ul", "al"] {
        let mut codes = vec![0u8; pcm.len()];
        if law == "ul" {
            encode_ulaw(&pcm, &mut codes);
        } else {
            encode_alaw(&pcm, &mut codes);
        }
        codes.extend(0..=255u8);
        let theirs = sox_decode(&codes, law);
        let mut ours = vec![0i16; codes.len()];
        if law == "ul" {
            decode_ulaw(&codes, &mut ours);
        } else {
            decode_alaw(&codes, &mut ours);
        }
        assert_eq!(ours.len(), theirs.len());
        for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(o, t, "{law} decode of code {:#04x} (index {i})", codes[i]);
        }
    }
}

fn report_and_assert_same(what: &str, pcm: &[i16], ours: &[u8], theirs: &[u8]) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    let diffs: Vec<usize> = (0..ours.len()).filter(|&i| ours[i] != theirs[i]).collect();
    if let Some(&i) = diffs.first() {
        panic!(
            "{what}: {} of {} bytes differ; first at {i}: input {} ours {:#04x} sox {:#04x}",
            diffs.len(),
            ours.len(),
            pcm[i],
            ours[i],
            theirs[i]
        );
    }
}
