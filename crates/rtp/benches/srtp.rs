//! SRTP cost per 20 ms PCMU packet (12 + 160 bytes): protect (encrypt + HMAC-SHA1-80) and
//! unprotect (replay check, HMAC, decrypt), and one SRTCP report each way.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rtp::srtp::{MasterKey, SrtpContext, Suite};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let key = MasterKey {
        key: [7; 16],
        salt: [9; 14],
    };
    let mut plain = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 42];
    plain.extend([0xd5; 160]);
    let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &key);
    let mut seq = 0u16;
    let mut buf = Vec::with_capacity(200);
    c.bench_function("srtp_protect_pcmu_172B", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            buf.clear();
            buf.extend_from_slice(&plain);
            buf[2..4].copy_from_slice(&seq.to_be_bytes());
            tx.protect_rtp(black_box(&mut buf)).map(|()| buf.len())
        })
    });
    // Unprotect needs fresh packets (the replay window refuses repeats): each iteration gets
    // the next one, protected in the untimed setup.
    let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &key);
    let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &key);
    let mut seq = 0u16;
    c.bench_function("srtp_unprotect_pcmu_182B", |b| {
        b.iter_batched(
            || {
                seq = seq.wrapping_add(1);
                let mut p = plain.clone();
                p[2..4].copy_from_slice(&seq.to_be_bytes());
                let _ = tx.protect_rtp(&mut p);
                p
            },
            |mut p| {
                let ok = rx.unprotect_rtp(black_box(&mut p)).is_ok();
                assert!(ok);
                p
            },
            BatchSize::SmallInput,
        )
    });
    let mut sr = vec![0x80, 200, 0, 6, 0, 0, 0, 42];
    sr.extend([0x11; 20]);
    let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &key);
    c.bench_function("srtcp_protect_sr_28B", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(&sr);
            tx.protect_rtcp(black_box(&mut buf)).map(|()| buf.len())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
