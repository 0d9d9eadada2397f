//! Jitter buffer cost per packet: one push and one pop (a 20 ms slot), in order and with
//! every fourth pair swapped.

use criterion::{criterion_group, criterion_main, Criterion};
use rtp::jitter::{JitterBuffer, JitterConfig, PacketKind};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn bench(c: &mut Criterion) {
    let payload = [0xd5u8; 160];
    for (name, swap) in [
        ("jitter_push_pop_in_order", false),
        ("jitter_push_pop_reordered", true),
    ] {
        c.bench_function(name, |b| {
            let t0 = Instant::now();
            let mut jb = JitterBuffer::new(JitterConfig::new(160));
            let mut i: u64 = 0;
            b.iter(|| {
                // Swap packets 4k+1 and 4k+2 on arrival.
                let seq = match (swap, i % 4) {
                    (true, 1) => i + 1,
                    (true, 2) => i - 1,
                    _ => i,
                };
                let now = t0 + Duration::from_millis(20 * i);
                jb.push(
                    now,
                    seq,
                    (seq * 160) as u32,
                    PacketKind::Audio {
                        payload_type: 0,
                        payload: black_box(&payload),
                    },
                );
                let slot = jb.pop(now);
                i += 1;
                black_box(slot)
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
