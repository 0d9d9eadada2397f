//! Property tests: serialize(parse(x)) round-trips, and no input makes the parser panic.

use proptest::prelude::*;
use sip_msg::{frame_stream, salvage::Salvaged, Message};

fn fixtures() -> Vec<Vec<u8>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sip/rfc4475");
    let mut out = Vec::new();
    for dir in ["wellformed", "malformed", "unlisted"] {
        let Ok(entries) = std::fs::read_dir(format!("{root}/{dir}")) else {
            continue;
        };
        for e in entries.flatten() {
            if let Ok(b) = std::fs::read(e.path()) {
                out.push(b);
            }
        }
    }
    assert!(out.len() >= 50, "fixtures found: {}", out.len());
    out
}

/// Everything a parser might be handed: never panics, and anything it accepts round-trips.
fn check(data: &[u8]) {
    let _ = frame_stream(data);
    let _ = Salvaged::scan(data).map(|s| s.response(400, "x", "t", &[]));
    if let Ok(m) = Message::parse(data) {
        let bytes = m.to_bytes();
        let again = Message::parse(&bytes).unwrap_or_else(|e| {
            panic!("re-parse failed: {e}\n{}", String::from_utf8_lossy(&bytes))
        });
        assert_eq!(again, m);
        assert_eq!(again.to_bytes(), bytes, "serialization is stable");
    }
}

fn header_line() -> impl Strategy<Value = String> {
    let names = prop_oneof![
        Just("Via"),
        Just("v"),
        Just("From"),
        Just("f"),
        Just("To"),
        Just("t"),
        Just("Call-ID"),
        Just("i"),
        Just("CSeq"),
        Just("Contact"),
        Just("m"),
        Just("Max-Forwards"),
        Just("Route"),
        Just("Record-Route"),
        Just("Supported"),
        Just("Require"),
        Just("Session-Expires"),
        Just("X-Custom"),
    ];
    (names, "[ -~]{0,60}").prop_map(|(n, v)| format!("{n}: {v}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        check(&data);
    }

    #[test]
    fn fixture_mutations_never_panic(idx in 0usize..50, edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8)) {
        let all = fixtures();
        let mut data = all[idx % all.len()].clone();
        for (pos, byte, op) in edits {
            if data.is_empty() { break; }
            let p = pos % data.len();
            match op {
                0 => data[p] = byte,
                1 => { data.remove(p); }
                _ => data.insert(p, byte),
            }
        }
        check(&data);
    }

    #[test]
    fn fixture_truncations_never_panic(idx in 0usize..50, cut in any::<usize>()) {
        let all = fixtures();
        let data = &all[idx % all.len()];
        check(&data[..cut % (data.len() + 1)]);
    }

    #[test]
    fn generated_requests_round_trip(lines in proptest::collection::vec(header_line(), 0..12)) {
        let mut m = String::from("OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n");
        for l in &lines {
            m.push_str(l);
            m.push_str("\r\n");
        }
        m.push_str("Content-Length: 0\r\n\r\n");
        check(m.as_bytes());
    }
}

#[test]
fn every_fixture_round_trips_or_is_rejected_cleanly() {
    for f in fixtures() {
        check(&f);
    }
}
