//! Helpers shared by the bridge's loopback tests: placing a call and building RTP packets.

#![allow(dead_code)] // each test file uses a different part of it

use codec::{Decoder, Encoder, Frame, PayloadCodec};
use sip_msg::Response;
use std::net::SocketAddr;
use std::time::Duration;
use testkit::uac::Uac;
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// Send `invite` (from `uac`), ACK the 200, and return the bridge's RTP address from its SDP.
pub async fn call(sip: &UdpSocket, server: SocketAddr, uac: &mut Uac, invite: &[u8]) -> SocketAddr {
    call_losing_acks(sip, server, uac, invite, 0).await
}

/// As [`call`], but the first `lost` ACKs are "lost": the 200 must come again (RFC 3261
/// 13.3.1.4) before the ACK that gets through.
pub async fn call_losing_acks(
    sip: &UdpSocket,
    server: SocketAddr,
    uac: &mut Uac,
    invite: &[u8],
    mut lost: usize,
) -> SocketAddr {
    sip.send_to(invite, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, _) = timeout(Duration::from_secs(5), sip.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let Ok(r) = Response::parse(&buf[..n]) else {
            continue;
        };
        if r.status == 200 {
            uac.learn(&buf[..n]);
            if lost > 0 {
                lost -= 1;
                continue;
            }
            sip.send_to(&uac.ack_2xx(), server).await.unwrap();
            let body = String::from_utf8_lossy(&r.body).to_string();
            let port: u16 = body
                .lines()
                .find_map(|l| l.strip_prefix("m=audio "))
                .and_then(|l| l.split(' ').next())
                .and_then(|p| p.parse().ok())
                .unwrap();
            return SocketAddr::new(server.ip(), port);
        }
    }
}

/// A PCMU (PT 0) RTP packet.
pub fn rtp_packet(seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Pseudo-random loud noise: "speech" for an energy VAD.
pub fn noise(i: usize) -> Frame {
    let mut f = Frame::silence();
    let mut x = (i as u32).wrapping_mul(2_654_435_761) | 1;
    for s in f.0.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *s = ((x >> 16) as i16) / 3;
    }
    f
}

/// A SIP caller with a PCMU RTP leg.
pub struct Caller {
    pub sip: UdpSocket,
    pub media: UdpSocket,
    pub uac: Uac,
    pub server: SocketAddr,
    pub bridge_rtp: SocketAddr,
    enc: Encoder,
    dec: Decoder,
    seq: usize,
    tick: tokio::time::Interval,
    /// Everything heard from the bridge, decoded to 24 kHz (when `record` is set).
    pub heard: Vec<i16>,
    pub record: bool,
}

impl Caller {
    pub async fn dial(server: SocketAddr, user: &str) -> Caller {
        Self::dial_losing_acks(server, user, 0).await
    }

    /// [`Caller::dial`] with the first `lost` ACKs lost ([`call_losing_acks`]).
    pub async fn dial_losing_acks(server: SocketAddr, user: &str, lost: usize) -> Caller {
        let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut uac = Uac::new(user, sip.local_addr().unwrap(), server);
        let inv = String::from_utf8(uac.invite(&[])).unwrap().replace(
            "m=audio 40000",
            &format!("m=audio {}", media.local_addr().unwrap().port()),
        );
        let bridge_rtp = call_losing_acks(&sip, server, &mut uac, inv.as_bytes(), lost).await;
        Caller {
            sip,
            media,
            uac,
            server,
            bridge_rtp,
            enc: Encoder::new(PayloadCodec::Pcmu).unwrap(),
            dec: Decoder::new(PayloadCodec::Pcmu).unwrap(),
            seq: 0,
            tick: tokio::time::interval(Duration::from_millis(20)),
            heard: Vec::new(),
            record: false,
        }
    }

    /// One 20 ms tick: send a frame (noise if `speak`), return the peak of what was heard.
    pub async fn step(&mut self, speak: bool) -> i32 {
        self.tick.tick().await;
        let i = self.seq;
        self.seq += 1;
        let frame = if speak { noise(i) } else { Frame::silence() };
        let mut payload = Vec::new();
        self.enc.encode(&frame, &mut payload).unwrap();
        self.media
            .send_to(
                &rtp_packet(i as u16, (i * 160) as u32, 0x4242, &payload),
                self.bridge_rtp,
            )
            .await
            .unwrap();
        let mut buf = vec![0u8; 2048];
        let mut peak = 0;
        while let Ok(Ok((n, from))) =
            timeout(Duration::from_millis(1), self.media.recv_from(&mut buf)).await
        {
            if from == self.bridge_rtp && n > 12 && buf[0] >> 6 == 2 && buf[1] & 0x7f == 0 {
                let f = self.dec.decode(&buf[12..n]).unwrap();
                if self.record {
                    self.heard.extend_from_slice(f.as_slice());
                }
                peak = peak.max(f.0.iter().map(|s| i32::from(*s).abs()).max().unwrap_or(0));
            }
        }
        peak
    }

    /// Speak for `speech` ticks, then listen; true once the agent is heard (within `max` ticks).
    pub async fn speak_and_hear(&mut self, speech: usize, max: usize) -> bool {
        for i in 0..max {
            let peak = self.step(i < speech).await;
            if i >= speech && peak > 3000 {
                return true;
            }
        }
        false
    }

    /// No BYE (or anything but retransmitted 200s) came from the bridge.
    pub async fn assert_no_bye(&self) {
        let mut buf = vec![0u8; 65535];
        while let Ok(Ok((n, _))) =
            timeout(Duration::from_millis(5), self.sip.recv_from(&mut buf)).await
        {
            let text = String::from_utf8_lossy(&buf[..n]);
            assert!(!text.starts_with("BYE "), "the bridge hung up:\n{text}");
        }
    }

    pub async fn hang_up(mut self) {
        self.sip
            .send_to(&self.uac.bye(), self.server)
            .await
            .unwrap();
        let mut buf = vec![0u8; 65535];
        loop {
            let (n, _) = timeout(Duration::from_secs(5), self.sip.recv_from(&mut buf))
                .await
                .expect("200 to BYE")
                .unwrap();
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.starts_with("SIP/2.0 200") && text.contains("BYE") {
                return;
            }
        }
    }
}

/// Frame `frame_index` of a continuous 1 kHz tone at 8000 peak.
pub fn tone(frame_index: usize) -> Frame {
    let mut f = Frame::silence();
    for (i, s) in f.0.iter_mut().enumerate() {
        let n = (frame_index * Frame::SAMPLES + i) as f64;
        *s = (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * n / 24000.0).sin()) as i16;
    }
    f
}

/// Energy of the `hz` component of 24 kHz `samples` relative to the whole signal, 0..1
/// (Goertzel).
pub fn tone_share(samples: &[i16], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(Frame::RATE);
    let (mut s1, mut s2, mut total) = (0.0f64, 0.0f64, 0.0f64);
    for &x in samples {
        let x = f64::from(x);
        total += x * x;
        let s0 = x + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    if total == 0.0 {
        0.0
    } else {
        2.0 * power / (samples.len() as f64 * total)
    }
}

/// The share of [`tone`]'s 1 kHz in `samples`.
pub fn tone_ratio(samples: &[i16]) -> f64 {
    tone_share(samples, 1000.0)
}

/// How many whole 20 ms frames of 24 kHz `samples` are mostly [`tone`]'s 1 kHz. Judged frame
/// by frame (a frame holds whole 1 kHz periods, so its share does not depend on its phase): a
/// concealed frame between two late packets breaks the phase of a long window without the
/// caller's audio being any less there.
pub fn toned_frames(samples: &[i16]) -> usize {
    samples
        .chunks_exact(Frame::SAMPLES)
        .filter(|f| tone_ratio(f) > 0.9)
        .count()
}

/// An unlabelled sample's value in Prometheus text (0 when absent).
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// A PCMU call's media in port mode (what the AI side drives) on `port`, the caller at
/// `caller`; `frames_batch` caller frames per hand-over. The notes receiver keeps the
/// endpoint's side open.
pub fn port_media(
    port: u16,
    caller: SocketAddr,
    ops: Option<std::sync::Arc<bridge::metrics::OpsMetrics>>,
    frames_batch: usize,
) -> (
    bridge::media::MediaHandle,
    tokio::sync::mpsc::Receiver<bridge::media::MediaNote>,
) {
    use bridge::media::{self, MediaMode, MediaSettings, PortPair};
    use sip_proto::sdp::{Codec, Direction, Negotiated};
    let pair = PortPair::bind("127.0.0.1".parse().unwrap(), port).unwrap();
    let neg = Negotiated {
        codec: Codec::Pcmu,
        pt: 0,
        dtmf_pt: Some(101),
        remote_rtp: Some(caller),
        remote_direction: Direction::SendRecv,
        ptime: 20,
        audio_index: 0,
        srtp: None,
    };
    let settings = MediaSettings {
        mode: MediaMode::Port,
        media_timeout: Duration::from_secs(30),
        max_buffer_ms: 10_000,
        ops,
        frames_batch,
    };
    let (notes_tx, notes_rx) = tokio::sync::mpsc::channel(8);
    let handle = media::start(
        sip_proto::CallHandle(1),
        pair,
        neg,
        None,
        settings,
        notes_tx,
        7,
    )
    .unwrap();
    (handle, notes_rx)
}

/// The /proc stat fields of each of this process's threads named `media-N` (the engine's),
/// from field 3 (state) on: field `n` of proc(5) is at index `n - 3`.
pub fn media_thread_stats() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let is_media = comm
            .trim_end()
            .strip_prefix("media-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !is_media {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap();
        // After "(comm)", which may itself hold spaces.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        out.push(rest.split(' ').map(str::to_string).collect());
    }
    out
}
