//! Parser, stream framer and salvage on arbitrary bytes: no panic, and what parses round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip_msg::{frame_stream, salvage::Salvaged, Message};

fuzz_target!(|data: &[u8]| {
    let _ = frame_stream(data);
    if let Some(s) = Salvaged::scan(data) {
        let _ = s.response(400, "fuzz", "t", &[]);
    }
    if let Ok(m) = Message::parse(data) {
        let bytes = m.to_bytes();
        match Message::parse(&bytes) {
            Ok(again) => assert_eq!(again, m),
            Err(e) => panic!("serialized message does not re-parse: {e}"),
        }
    }
});
