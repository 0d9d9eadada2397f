//! The whole UAS endpoint on arbitrary datagrams (split on a NUL byte into several messages),
//! with the clock advanced between them: no panic whatever arrives in whatever order.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip_proto::{Endpoint, EndpointConfig, Event, Flow, Transport};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    // SRTP optional: RTP/SAVP offers with a=crypto are negotiated and answered too.
    let mut ep = Endpoint::new(EndpointConfig {
        srtp: sip_proto::sdp::SrtpPolicy::Optional,
        ..EndpointConfig::default()
    });
    let mut now = Instant::now();
    let flow = Flow {
        transport: if data.first().is_some_and(|b| b & 1 == 1) { Transport::Tcp } else { Transport::Udp },
        local: "127.0.0.1:5060".parse().unwrap(),
        remote: "127.0.0.1:5070".parse().unwrap(),
    };
    for chunk in data.split(|b| *b == 0) {
        ep.handle_input(now, flow, chunk);
        while let Some(ev) = ep.poll_event() {
            if let Event::IncomingCall(c) = ev {
                ep.answer(now, c.call, sip_proto::sdp::LocalMedia {
                    addr: "127.0.0.1".parse().unwrap(),
                    port: 20000,
                    codecs: vec![sip_proto::sdp::Codec::Pcmu],
                    telephone_event: true,
                    ptime: 20,
                    srtp_key: Some(sip_proto::sdp::SrtpKey([7; 30])),
                });
            }
        }
        while ep.poll_transmit().is_some() {}
        now += Duration::from_millis(700);
        ep.handle_timeout(now);
        while ep.poll_transmit().is_some() {}
    }
});
