//! Media through the running bridge over loopback: echo mode returns the caller's audio on
//! one continuous RTP stream, and a call without RTP is hung up after the media timeout.

mod common;

use bridge::{Bridge, BridgeConfig};
use codec::{Decoder, Encoder, Frame, PayloadCodec};
use common::{port_media, rtp_packet, tone, tone_ratio, toned_frames};
use sip_msg::{Request, Response, SipHeaders};
use std::net::SocketAddr;
use std::time::Duration;
use testkit::uac::Uac;
use tokio::net::UdpSocket;
use tokio::time::timeout;

fn config() -> BridgeConfig {
    BridgeConfig {
        sip_listen: vec!["127.0.0.1:0".parse().unwrap()],
        admin_listen: None,
        sip_t1: Duration::from_millis(10),
        session_expires: 0,
        rtp_ports: 31000..=31999,
        ..BridgeConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_mode_returns_the_callers_audio_on_one_continuous_stream() {
    let bridge = Bridge::start(BridgeConfig {
        echo: true,
        ..config()
    })
    .await
    .unwrap();
    let server = bridge.sip_addrs[0];
    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let media = UdpSocket::bind("127.0.0.1:40000").await.unwrap();
    let mut uac = Uac::new("echo", sip.local_addr().unwrap(), server);
    let invite = uac.invite(&[]);
    let bridge_rtp = common::call(&sip, server, &mut uac, &invite).await;

    let mut enc = Encoder::new(PayloadCodec::Pcmu).unwrap();
    let mut dec = Decoder::new(PayloadCodec::Pcmu).unwrap();
    let mut payload = Vec::new();
    let mut received: Vec<(u16, u32, u32, Vec<u8>)> = Vec::new();
    let mut buf = vec![0u8; 2048];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..150usize {
        tick.tick().await;
        enc.encode(&tone(i), &mut payload).unwrap();
        media
            .send_to(
                &rtp_packet(i as u16, (i * 160) as u32, 0x1234, &payload),
                bridge_rtp,
            )
            .await
            .unwrap();
        while let Ok(Ok((n, from))) =
            timeout(Duration::from_millis(1), media.recv_from(&mut buf)).await
        {
            // Other tests' calls also name port 40000 in their SDP: keep this call's stream.
            if from == bridge_rtp && n > 12 && buf[0] >> 6 == 2 {
                let seq = u16::from_be_bytes([buf[2], buf[3]]);
                let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
                received.push((seq, ts, ssrc, buf[12..n].to_vec()));
            }
        }
    }
    assert!(
        received.len() > 100,
        "the bridge sent {} packets in 3 s",
        received.len()
    );
    let ssrc = received[0].2;
    for w in received.windows(2) {
        assert_eq!(w[1].2, ssrc, "one SSRC");
        assert_eq!(
            w[1].0,
            w[0].0.wrapping_add(1),
            "continuous sequence numbers"
        );
        assert_eq!(
            w[1].1,
            w[0].1.wrapping_add(160),
            "timestamps advance 20 ms per packet"
        );
    }
    // The second half of what came back is our tone (echo after the jitter buffer).
    let mut heard = Vec::new();
    for (_, _, _, p) in &received[received.len() / 2..] {
        heard.extend_from_slice(&dec.decode(p).unwrap().0);
    }
    let ratio = tone_ratio(&heard);
    assert!(
        ratio > 0.9,
        "1 kHz tone energy ratio in the echo: {ratio:.3}"
    );
    sip.send_to(&uac.bye(), server).await.unwrap();
}

#[tokio::test]
async fn no_rtp_for_the_media_timeout_hangs_up_with_a_reason() {
    let bridge = Bridge::start(BridgeConfig {
        media_timeout: Duration::from_millis(500),
        ..config()
    })
    .await
    .unwrap();
    let server = bridge.sip_addrs[0];
    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut uac = Uac::new("silent", sip.local_addr().unwrap(), server);
    let invite = uac.invite(&[]);
    common::call(&sip, server, &mut uac, &invite).await;
    let mut buf = vec![0u8; 65535];
    let bye = loop {
        let (n, _) = timeout(Duration::from_secs(5), sip.recv_from(&mut buf))
            .await
            .expect("BYE in time")
            .unwrap();
        if let Ok(r) = Request::parse(&buf[..n]) {
            break r;
        }
    };
    assert_eq!(bye.method, sip_msg::Method::Bye);
    assert!(bye
        .headers
        .get(&sip_msg::HeaderName::Reason)
        .unwrap()
        .contains("media timeout"));
    let ok = Response::for_request(&bye, 200, "OK");
    sip.send_to(&ok.to_bytes(), bye.top_via().map(|_| server).unwrap())
        .await
        .unwrap();
}

/// The AI side's view: caller audio comes out as 24 kHz frames, audio played in goes out as
/// RTP, a flush silences the caller's ear at once and reports what was really played.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_port_frames_in_play_out_and_flush_reports_played_ms() {
    use bridge::media::MediaCmd;
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let bridge_rtp: SocketAddr = "127.0.0.1:32100".parse().unwrap();
    let ops = std::sync::Arc::new(bridge::metrics::OpsMetrics::new());
    let (mut handle, _notes) =
        port_media(32100, caller.local_addr().unwrap(), Some(ops.clone()), 1);
    let mut frames = handle.frames.take().unwrap();

    // Caller -> frames.
    // Sent on an absolute 20 ms schedule: on a loaded machine, a relative sleep drifts later
    // every packet, the jitter buffer runs dry and conceals between tone frames.
    let mut enc = Encoder::new(PayloadCodec::Pcmu).unwrap();
    let mut payload = Vec::new();
    let t0 = tokio::time::Instant::now();
    for i in 0..20usize {
        enc.encode(&tone(i), &mut payload).unwrap();
        caller
            .send_to(
                &rtp_packet(i as u16, (i * 160) as u32, 9, &payload),
                bridge_rtp,
            )
            .await
            .unwrap();
        tokio::time::sleep_until(t0 + Duration::from_millis(20 * (i as u64 + 1))).await;
    }
    // Frames keep coming every 20 ms (concealment once the caller stops): take 20.
    let mut heard = Vec::new();
    for _ in 0..20 {
        match timeout(Duration::from_millis(500), frames.recv()).await {
            Ok(Some(f)) => heard.extend_from_slice(&f.0),
            _ => break,
        }
    }
    assert!(
        heard.len() >= 10 * Frame::SAMPLES,
        "frames delivered: {}",
        heard.len() / Frame::SAMPLES
    );
    let toned = toned_frames(&heard);
    assert!(
        toned >= 10,
        "frames carrying the caller's tone: {toned} of {}",
        heard.len() / Frame::SAMPLES
    );

    // Play 2 s of tone as item "resp1", flush after ~300 ms.
    let item: bridge::media::playout::ItemId = "resp1".into();
    let samples: Vec<i16> = (0..100).flat_map(|i| tone(i).0).collect();
    handle
        .commands()
        .send(MediaCmd::Play {
            item: item.clone(),
            samples,
            last: true,
        })
        .await
        .unwrap();
    let mut dec = Decoder::new(PayloadCodec::Pcmu).unwrap();
    let mut buf = vec![0u8; 2048];
    let start = tokio::time::Instant::now();
    let mut loud_before = 0;
    while start.elapsed() < Duration::from_millis(300) {
        if let Ok(Ok((n, _))) = timeout(Duration::from_millis(50), caller.recv_from(&mut buf)).await
        {
            if n > 12 && buf[1] & 0x7f == 0 {
                let f = dec.decode(&buf[12..n]).unwrap();
                if f.0.iter().map(|s| i64::from(*s).abs()).max().unwrap_or(0) > 2000 {
                    loud_before += 1;
                }
            }
        }
    }
    assert!(
        loud_before >= 5,
        "played audio reached the caller: {loud_before} loud packets"
    );
    let (tx, rx) = tokio::sync::oneshot::channel();
    handle.send(MediaCmd::Flush(tx));
    let report = rx.await.unwrap();
    let played = report
        .played
        .iter()
        .find(|(i, _)| **i == *"resp1")
        .map(|(_, ms)| *ms)
        .unwrap();
    // Every one of the 100 frames is either played, dropped by the flush, or was among the
    // few already handed to the RTP session (cleared too): nothing is counted twice.
    let accounted = report.dropped_frames + played as usize / 20;
    assert!(
        played >= 100,
        "some of resp1 was played before the flush: {played} ms"
    );
    assert!(
        (85..=100).contains(&accounted),
        "played {played} ms + dropped {} frames",
        report.dropped_frames
    );
    let (tx, rx) = tokio::sync::oneshot::channel();
    handle.send(MediaCmd::PlayedMs(item, tx));
    assert_eq!(rx.await.unwrap(), played);
    // After the flush the caller hears silence within a few packets.
    let mut loud_after = 0;
    for _ in 0..15 {
        if let Ok(Ok((n, _))) =
            timeout(Duration::from_millis(100), caller.recv_from(&mut buf)).await
        {
            if n > 12 && buf[1] & 0x7f == 0 {
                let f = dec.decode(&buf[12..n]).unwrap();
                if f.0.iter().map(|s| i64::from(*s).abs()).max().unwrap_or(0) > 2000 {
                    loud_after += 1;
                }
            }
        }
    }
    assert!(loud_after <= 2, "{loud_after} loud packets after the flush");
    handle.send(MediaCmd::Stop);
    // Every packet sent was timed against its deadline (`/metrics`).
    let mut text = String::new();
    ops.render_into(&mut text, &[], &[]);
    let count = common::metric(&text, "switchboard_rtp_send_lateness_seconds_count");
    assert!(count >= 20, "send lateness observed per packet: {count}");
    // And every media engine step, its work and how late its thread woke.
    let mut engine = String::new();
    bridge::metrics::render_media_engine(&mut engine);
    for name in [
        "switchboard_media_step_seconds_count",
        "switchboard_media_wakeup_lateness_seconds_count",
    ] {
        let steps = common::metric(&engine, name);
        assert!(steps >= 100, "{name}: {steps}");
    }
}

/// A caller-audio sink that records what the media thread gives it.
struct Recorder {
    raw: Option<PayloadCodec>,
    got: std::sync::Mutex<(Vec<Vec<u8>>, Vec<i16>, usize)>,
}

impl bridge::media::CallerAudio for Recorder {
    fn raw_codec(&self) -> Option<PayloadCodec> {
        self.raw
    }
    fn frame(&self, frame: &Frame) -> bool {
        self.got.lock().unwrap().1.extend_from_slice(&frame.0);
        true
    }
    fn payload(&self, payload: &[u8]) -> bool {
        self.got.lock().unwrap().0.push(payload.to_vec());
        true
    }
    fn hand_over(&self) {
        self.got.lock().unwrap().2 += 1;
    }
}

/// One call with `sink` attached; the caller sends 30 packets of tone in PCMU. Returns the
/// payloads sent.
async fn call_into_sink(port: u16, sink: std::sync::Arc<Recorder>) -> Vec<Vec<u8>> {
    use bridge::media::{CallerSink, MediaCmd};
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let bridge_rtp = SocketAddr::from(([127, 0, 0, 1], port));
    let (mut handle, _notes) = port_media(port, caller.local_addr().unwrap(), None, 2);
    let mut frames = handle.frames.take().unwrap();
    handle.send(MediaCmd::Attach(CallerSink(sink)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut enc = Encoder::new(PayloadCodec::Pcmu).unwrap();
    let mut sent = Vec::new();
    let t0 = tokio::time::Instant::now();
    for i in 0..30usize {
        let mut payload = Vec::new();
        enc.encode(&tone(i), &mut payload).unwrap();
        caller
            .send_to(
                &rtp_packet(i as u16, (i * 160) as u32, 9, &payload),
                bridge_rtp,
            )
            .await
            .unwrap();
        sent.push(payload);
        tokio::time::sleep_until(t0 + Duration::from_millis(20 * (i as u64 + 1))).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    handle.send(MediaCmd::Stop);
    // Attached: nothing comes through the channel; it closes when the media ends.
    let end = timeout(Duration::from_secs(5), frames.recv()).await;
    assert!(
        matches!(end, Ok(None)),
        "channel closed, no frames: {end:?}"
    );
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_raw_sink_gets_the_callers_g711_payloads_byte_exact() {
    let sink = std::sync::Arc::new(Recorder {
        raw: Some(PayloadCodec::Pcmu),
        got: Default::default(),
    });
    let sent = call_into_sink(32110, sink.clone()).await;
    let (payloads, frames, handovers) = std::mem::take(&mut *sink.got.lock().unwrap());
    assert!(
        frames.is_empty(),
        "nothing decoded: {} samples",
        frames.len()
    );
    assert!(handovers > 0, "batches handed over");
    // From the caller's first payload on, each 20 ms slot is the caller's own bytes, in order,
    // or u-law silence where a packet came too late for the jitter buffer (this test's sender
    // sleeps on a shared machine).
    let start = payloads
        .iter()
        .position(|p| *p == sent[0])
        .expect("the caller's first payload");
    let run: Vec<_> = payloads[start..].iter().take(sent.len()).collect();
    assert_eq!(run.len(), sent.len(), "a slot for every payload");
    let silence = vec![0xFFu8; 160];
    let mut exact = 0;
    for (i, (got, want)) in run.iter().zip(&sent).enumerate() {
        assert!(*got == want || **got == silence, "slot {i}: {got:?}");
        exact += usize::from(*got == want);
    }
    assert!(
        exact >= sent.len() - 3,
        "{exact} of {} byte-exact",
        sent.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_pcm_sink_gets_the_callers_tone_decoded() {
    let sink = std::sync::Arc::new(Recorder {
        raw: None,
        got: Default::default(),
    });
    call_into_sink(32120, sink.clone()).await;
    let (payloads, heard, handovers) = std::mem::take(&mut *sink.got.lock().unwrap());
    assert!(payloads.is_empty());
    assert!(handovers > 0);
    assert!(
        heard.len() >= 20 * Frame::SAMPLES,
        "{} samples",
        heard.len()
    );
    let toned = toned_frames(&heard);
    assert!(toned >= 15, "frames carrying the caller's tone: {toned}");
}

/// The nice value (field 19) of each of the engine's `media-N` threads.
fn media_thread_nices() -> Vec<i32> {
    common::media_thread_stats()
        .iter()
        .map(|f| f[19 - 3].parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_threads_run_at_the_raised_priority_when_allowed() {
    // Whether this process may lower a nice value (root or CAP_SYS_NICE), asked of a
    // scratch thread.
    let allowed = std::thread::spawn(|| rustix::process::setpriority_process(None, -1).is_ok())
        .join()
        .unwrap();
    let sink = std::sync::Arc::new(Recorder {
        raw: None,
        got: Default::default(),
    });
    call_into_sink(32130, sink).await;
    let nices = media_thread_nices();
    assert!(!nices.is_empty(), "media threads found");
    let want = if allowed {
        bridge::media::engine::DEFAULT_NICE
    } else {
        0
    };
    assert!(nices.iter().all(|&n| n == want), "{nices:?}, want {want}");
    assert_eq!(bridge::media::engine::nice_in_effect(), Some(want));
}
