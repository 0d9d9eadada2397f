//! Parse throughput on a typical trunk INVITE and on the longest RFC 4475 message.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sip_msg::Message;
use std::hint::black_box;

/// A typical trunk INVITE: 17 headers and a G.711 SDP offer.
const INVITE: &[u8] = include_bytes!("../../../fixtures/sip/typical-invite.sip");

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
