//! SDP (RFC 4566) parse, offer/answer negotiation (RFC 3264) and answer building on arbitrary
//! bytes: no panic, and every answer we build is SDP we accept ourselves, with the offer's m=
//! line count and the negotiated codec on the offerer's payload type.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip_proto::sdp::{self, Codec, Direction, LocalMedia};

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = sdp::parse(data) else { return };
    let prefs: [&[Codec]; 2] = [
        &[Codec::Pcmu, Codec::Pcma],
        &[Codec::Opus, Codec::Pcmu, Codec::Pcma],
    ];
    for (n, prefs) in prefs.into_iter().enumerate() {
        let Ok(neg) = sdp::negotiate(&offer, prefs) else {
            continue;
        };
        let local = LocalMedia {
            addr: if n == 0 {
                "203.0.113.5".parse().unwrap()
            } else {
                "2001:db8::5".parse().unwrap()
            },
            port: 30000,
            codecs: prefs.to_vec(),
            telephone_event: n == 0,
            ptime: neg.ptime,
        };
        for dir in [Direction::SendRecv, Direction::RecvOnly] {
            let answer = sdp::answer(&offer, &neg, &local, dir, 1, 2);
            let parsed = match sdp::parse(answer.as_bytes()) {
                Ok(p) => p,
                Err(e) => panic!("our answer does not parse: {e}\n{answer}"),
            };
            assert_eq!(parsed.media.len(), offer.media.len(), "m= lines\n{answer}");
            let back = match sdp::negotiate(&parsed, &[neg.codec]) {
                Ok(b) => b,
                Err(e) => panic!(
                    "our answer does not negotiate {:?}: {e}\n{answer}",
                    neg.codec
                ),
            };
            assert_eq!(
                (back.codec, back.pt, back.audio_index),
                (neg.codec, neg.pt, neg.audio_index),
                "{answer}"
            );
            let _ = sdp::answer_direction(neg.remote_direction, dir);
        }
    }
});
