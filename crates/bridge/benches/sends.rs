//! RTP sends per packet, `sendto` against one io_uring submission per round (the media
//! engine's `--media-sends sendto` and `batched`), side by side in one run.
//!
//! 1,000 sockets (a media thread's calls) each send one 172-byte datagram (G.711 RTP) per
//! round to one of 8 loopback receivers (a socket's default buffer holds a few hundred such
//! datagrams, so every packet is delivered, none dropped), 200 rounds 20 ms apart, the two
//! modes alternating round by round so the machine's noise falls on both. The receivers are
//! drained every millisecond on their own thread, as `rtp-echo` does, so no send wakes a
//! sleeping reader.
//! Printed: the sending thread's CPU time per packet (CLOCK_THREAD_CPUTIME_ID) for each mode,
//! and how many sends failed. `cargo bench -p bridge --bench sends`. Loopback only; bounded.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn main() {
    use bridge::media::send::{set_mode, Mode, Sender};
    use std::net::UdpSocket;
    use std::time::Duration;

    fn thread_cpu() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid clock id and a pointer to a live timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    const CALLS: usize = 1_000;
    const ROUNDS: usize = 200;
    let rxs: Vec<UdpSocket> = (0..8)
        .map(|_| {
            let rx = UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
            rx.set_nonblocking(true).expect("nonblocking");
            rx
        })
        .collect();
    let tos: Vec<_> = rxs.iter().map(|r| r.local_addr().expect("addr")).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut got = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for rx in &rxs {
                    while rx.recv_from(&mut buf).is_ok() {
                        got += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            got
        })
    };
    let sockets: Vec<mio::net::UdpSocket> = (0..CALLS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
            s.set_nonblocking(true).expect("nonblocking");
            mio::net::UdpSocket::from_std(s)
        })
        .collect();
    set_mode(Mode::Sendto);
    let mut plain = Sender::new(false);
    set_mode(Mode::Batched);
    let mut batched = Sender::new(false);
    if !batched.batched() {
        println!("io_uring refused here: both columns are sendto");
    }
    let mut cpu = [Duration::ZERO; 2];
    let mut failed = [0usize; 2];
    for round in 0..2 * ROUNDS {
        let which = round % 2;
        let sender = if which == 0 { &mut plain } else { &mut batched };
        let c0 = thread_cpu();
        for (i, s) in sockets.iter().enumerate() {
            sender.send(s, i, vec![0x80; 172], tos[i % tos.len()]);
        }
        sender.flush();
        failed[which] += sender.take_errors().count();
        cpu[which] += thread_cpu() - c0;
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let received = drain.join().unwrap_or(0);
    let per = |d: Duration| d.as_nanos() as f64 / (CALLS * ROUNDS) as f64;
    println!(
        "{CALLS} sockets x {ROUNDS} rounds each: sendto {:.0} ns CPU per packet ({} failed), io_uring batch {:.0} ns ({} failed); {received} of {} received",
        per(cpu[0]),
        failed[0],
        per(cpu[1]),
        failed[1],
        2 * CALLS * ROUNDS
    );
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn main() {
    println!("sends: Linux only (io_uring)");
}
