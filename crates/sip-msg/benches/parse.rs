//! Parse throughput on a typical trunk INVITE and on the longest RFC 4475 message.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
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

const LONGREQ: &[u8] = include_bytes!("../../../fixtures/sip/rfc4475/wellformed/longreq.dat");

fn bench(c: &mut Criterion) {
    assert!(Message::parse(INVITE).is_ok());
    assert!(Message::parse(LONGREQ).is_ok());
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("typical_invite", |b| {
        b.iter(|| Message::parse(black_box(INVITE)))
    });
    g.bench_function("rfc4475_longreq", |b| {
        b.iter(|| Message::parse(black_box(LONGREQ)))
    });
    g.finish();
    let msg = match Message::parse(INVITE) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    c.bench_function("serialize/typical_invite", |b| {
        b.iter(|| black_box(&msg).to_bytes())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
