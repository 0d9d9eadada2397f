//! `rtp-echo ADDR SECONDS`: a one-socket UDP echo for load tests. Every datagram that reaches
//! ADDR goes back to where it came from; after SECONDS it prints what it echoed and exits.
//!
//! `sip-test/bench-calls` points every SIPp call's SDP at this one port: the bridge's RTP of
//! all calls is echoed by one thread, as a carrier SBC would return it, instead of SIPp's
//! thread per call (`-rtp_echo`), whose wakeups the bridge's `sendto` paid for on loopback.
//! For the same reason it does not sleep in `recv`: it drains the socket every millisecond
//! (so a packet comes back at most 1 ms later), and the sender never has a sleeping receiver
//! to wake, as with an SBC across the network. Loopback only.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(secs)) = (args.next(), args.next()) else {
        eprintln!("usage: rtp-echo ADDR SECONDS");
        std::process::exit(2);
    };
    let addr: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rtp-echo: {addr}: {e}");
            std::process::exit(2);
        }
    };
    if !addr.ip().is_loopback() {
        eprintln!("rtp-echo: {addr} is not a loopback address");
        std::process::exit(2);
    }
    let secs: u64 = match secs.parse() {
        Ok(s) if s > 0 && s <= 3600 => s,
        _ => {
            eprintln!("rtp-echo: SECONDS must be 1..=3600");
            std::process::exit(2);
        }
    };
    let socket = match UdpSocket::bind(addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rtp-echo: bind {addr}: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = socket.set_nonblocking(true) {
        eprintln!("rtp-echo: {e}");
        std::process::exit(1);
    }
    println!("rtp-echo: listening on {addr} for {secs} s");
    let end = Instant::now() + Duration::from_secs(secs);
    let (mut echoed, mut failed) = (0u64, 0u64);
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        // Everything that arrived since the last pass, then a millisecond's nap.
        loop {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => match socket.send_to(&buf[..n], from) {
                    Ok(_) => echoed += 1,
                    Err(_) => failed += 1,
                },
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => failed += 1,
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("rtp-echo: echoed {echoed} datagrams, {failed} failed");
}
