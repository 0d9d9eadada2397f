//! Parses a typical trunk INVITE N times (argument, default 10,000): run under
//! `valgrind --tool=callgrind` by `sip-test/bench-parse-callgrind` for a stable instruction
//! count per message.

use sip_msg::Message;
use std::hint::black_box;

/// A typical trunk INVITE: 17 headers and a G.711 SDP offer.
const INVITE: &[u8] = include_bytes!("../../../fixtures/sip/typical-invite.sip");

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let mut ok = 0;
    for _ in 0..n {
        if Message::parse(black_box(INVITE)).is_ok() {
            ok += 1;
        }
    }
    println!("parsed {ok} of {n}");
}
