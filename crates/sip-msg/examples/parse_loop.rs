//! Parses a typical trunk INVITE N times (argument, default 10,000): run under
//! `valgrind --tool=callgrind` by `sip-test/bench-parse-callgrind` for a stable instruction
//! count per message.

use sip_msg::Message;
use std::hint::black_box;

const INVITE: &[u8] = b"INVITE sip:+15550100@10.0.0.2:5060;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-524287-1---a7c2;rport\r\n\
Max-Forwards: 69\r\n\
Record-Route: <sip:10.0.0.1;lr;ftag=as1234>\r\n\
From: \"Caller\" <sip:+15550199@carrier.example.com;user=phone>;tag=as1234\r\n\
To: <sip:+15550100@10.0.0.2;user=phone>\r\n\
Call-ID: 4f1b6e5a3c2d1e0f@10.0.0.1\r\n\
CSeq: 102 INVITE\r\n\
Contact: <sip:+15550199@10.0.0.1:5060>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, UPDATE, INFO\r\n\
Supported: replaces, timer\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Min-SE: 90\r\n\
P-Asserted-Identity: <sip:+15550199@carrier.example.com>\r\n\
User-Agent: CarrierSBC/4.2\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 227\r\n\r\n\
v=0\r\no=SBC 1234 5678 IN IP4 10.0.0.1\r\ns=SIP Call\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

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
