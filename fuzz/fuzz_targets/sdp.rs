//! SDP (RFC 4566) parse, offer/answer negotiation (RFC 3264) and answer building on arbitrary
//! bytes: no panic, and every answer we build is SDP we accept ourselves, with the offer's m=
//! line count and the negotiated codec on the offerer's payload type; with SRTP (SDES,
//! RFC 4568) the answer's one a=crypto carries the offer's tag and suite and our key.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip_proto::sdp::{self, Codec, Direction, LocalMedia, SrtpKey, SrtpPolicy};

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = sdp::parse(data) else { return };
    let prefs: [&[Codec]; 2] = [
        &[Codec::Pcmu, Codec::Pcma],
        &[Codec::Opus, Codec::Pcmu, Codec::Pcma],
    ];
    let policies = [SrtpPolicy::Off, SrtpPolicy::Optional, SrtpPolicy::Required];
    for (n, (prefs, policy)) in prefs
        .into_iter()
        .flat_map(|p| policies.into_iter().map(move |s| (p, s)))
        .enumerate()
    {
        let n = n % 2;
        let Ok(neg) = sdp::negotiate_srtp(&offer, prefs, policy) else {
            continue;
        };
        assert!(policy != SrtpPolicy::Off || neg.srtp.is_none());
        assert!(policy != SrtpPolicy::Required || neg.srtp.is_some());
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
            srtp_key: Some(SrtpKey([0x5a; 30])),
        };
        for dir in [Direction::SendRecv, Direction::RecvOnly] {
            let answer = sdp::answer(&offer, &neg, &local, dir, 1, 2);
            let parsed = match sdp::parse(answer.as_bytes()) {
                Ok(p) => p,
                Err(e) => panic!("our answer does not parse: {e}\n{answer}"),
            };
            assert_eq!(parsed.media.len(), offer.media.len(), "m= lines\n{answer}");
            let again = if neg.srtp.is_some() {
                SrtpPolicy::Required
            } else {
                SrtpPolicy::Off
            };
            let back = match sdp::negotiate_srtp(&parsed, &[neg.codec], again) {
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
            if let (Some(theirs), Some(ours)) = (&neg.srtp, &back.srtp) {
                assert_eq!(
                    (ours.tag, ours.suite),
                    (theirs.tag, theirs.suite),
                    "{answer}"
                );
                assert_eq!(ours.key, SrtpKey([0x5a; 30]), "{answer}");
            }
            let _ = sdp::answer_direction(neg.remote_direction, dir);
        }
    }
});
