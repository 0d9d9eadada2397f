//! The UAS call flow end to end through the sans-IO endpoint, with a manual clock: every
//! timer and retransmission is checked without sleeping.

use sip_msg::{HeaderName, Message, Request, Response, SipHeaders};
use sip_proto::sdp::{Codec, LocalMedia};
use sip_proto::{
    CallHandle, EndReason, Endpoint, EndpointConfig, Event, Flow, Transmit, Transport,
};
use std::time::Duration;
use testkit::uac::Uac;
use testkit::ManualClock;

struct Harness {
    ep: Endpoint,
    clock: ManualClock,
    flow: Flow,
    uac: Uac,
}

fn media() -> LocalMedia {
    LocalMedia {
        addr: "127.0.0.1".parse().unwrap(),
        port: 30000,
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        telephone_event: true,
        ptime: 20,
        srtp_key: None,
    }
}

impl Harness {
    fn new(cfg: EndpointConfig) -> Self {
        let flow = Flow {
            transport: Transport::Udp,
            local: "127.0.0.1:5060".parse().unwrap(),
            remote: "127.0.0.1:5070".parse().unwrap(),
        };
        Harness {
            ep: Endpoint::new(cfg),
            clock: ManualClock::default(),
            flow,
            uac: Uac::new("c1", flow.remote, flow.local),
        }
    }

    fn tcp(mut self) -> Self {
        self.flow.transport = Transport::Tcp;
        self.uac = self.uac.tcp();
        self
    }

    /// A TLS connection to our 5061 from the caller's ephemeral port (the bridge decrypts).
    fn tls(mut self) -> Self {
        self.flow = Flow {
            transport: Transport::Tls,
            local: "127.0.0.1:5061".parse().unwrap(),
            remote: "127.0.0.1:40123".parse().unwrap(),
        };
        self.uac = Uac::new("c1", self.flow.remote, self.flow.local).tls();
        self
    }

    fn send(&mut self, data: &[u8]) -> Vec<Transmit> {
        self.ep.handle_input(self.clock.now(), self.flow, data);
        self.drain()
    }

    fn drain(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.ep.poll_transmit()).collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.ep.poll_event()).collect()
    }

    /// Fire every timer due up to `by` from now, returning what was sent with its time.
    fn run_for(&mut self, by: Duration) -> Vec<(Duration, Transmit)> {
        let end = self.clock.now() + by;
        let mut sent = Vec::new();
        while let Some(at) = self.ep.poll_timeout() {
            if at > end {
                break;
            }
            self.clock.advance_to(at);
            self.ep.handle_timeout(self.clock.now());
            for t in self.drain() {
                sent.push((self.clock.elapsed(), t));
            }
        }
        self.clock.advance_to(end);
        sent
    }

    /// INVITE, answer, return the 200 and the call handle.
    fn answered_call(&mut self, extra: &[&str]) -> (CallHandle, Response) {
        let inv = self.uac.invite(extra);
        self.answer_invite(&inv)
    }

    /// Send `inv`, answer it, return the 200 and the call handle.
    fn answer_invite(&mut self, inv: &[u8]) -> (CallHandle, Response) {
        let out = self.send(inv);
        assert_eq!(status(&out[0]), 100);
        let call = match self.events().pop() {
            Some(Event::IncomingCall(c)) => c.call,
            other => panic!("expected IncomingCall, got {other:?}"),
        };
        assert!(self.ep.answer(self.clock.now(), call, media()));
        let out = self.drain();
        let ok = resp(&out[0]);
        assert_eq!(ok.status, 200);
        assert_eq!(
            out[0].flow, self.flow,
            "the 200 goes back on the INVITE's flow"
        );
        self.uac.learn(&out[0].data);
        (call, ok)
    }

    fn established(&mut self) -> CallHandle {
        let (call, _) = self.answered_call(&[]);
        let ack = self.uac.ack_2xx();
        assert!(self.send(&ack).is_empty());
        assert!(matches!(
            self.events().as_slice(),
            [Event::CallConfirmed { .. }]
        ));
        call
    }
}

fn resp(t: &Transmit) -> Response {
    Response::parse(&t.data)
        .unwrap_or_else(|e| panic!("bad response {e}: {}", String::from_utf8_lossy(&t.data)))
}

fn status(t: &Transmit) -> u16 {
    resp(t).status
}

fn req(t: &Transmit) -> Request {
    match Message::parse(&t.data).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => panic!("expected request"),
    }
}

fn quiet_config() -> EndpointConfig {
    EndpointConfig {
        session_expires: 0,
        ..EndpointConfig::default()
    }
}

#[test]
fn rfc3261_13_3_1_basic_call_invite_100_200_ack_bye() {
    let mut h = Harness::new(quiet_config());
    let (_, ok) = h.answered_call(&[]);
    assert!(ok.to_header().unwrap().tag().is_some());
    assert!(ok.contact().is_some());
    let body = String::from_utf8(ok.body.clone()).unwrap();
    assert!(body.contains("m=audio 30000 RTP/AVP 0"), "{body}");
    let ack = h.uac.ack_2xx();
    h.send(&ack);
    assert!(matches!(
        h.events().as_slice(),
        [Event::CallConfirmed {
            negotiated: Some(_),
            ..
        }]
    ));
    let bye = h.uac.bye();
    let out = h.send(&bye);
    assert_eq!(status(&out[0]), 200);
    assert!(matches!(
        h.events().as_slice(),
        [Event::CallEnded {
            reason: EndReason::RemoteBye,
            ..
        }]
    ));
    // Everything is reclaimed once Timer J (64*T1) and Timer L have run.
    h.run_for(Duration::from_secs(40));
    let s = h.ep.stats();
    assert_eq!(
        (
            s.calls,
            s.dialogs,
            s.server_transactions,
            s.client_transactions
        ),
        (0, 0, 0, 0)
    );
}

#[test]
fn rfc3261_13_3_1_4_2xx_retransmitted_until_ack() {
    let mut h = Harness::new(quiet_config());
    let (_, ok) = h.answered_call(&[]);
    let sent = h.run_for(Duration::from_millis(7600));
    let times: Vec<u64> = sent.iter().map(|(t, _)| t.as_millis() as u64).collect();
    assert_eq!(
        times,
        [500, 1500, 3500, 7500],
        "T1, 2T1, 4T1, 8T1 capped at T2"
    );
    assert!(
        sent.iter().all(|(_, t)| resp(t) == ok),
        "retransmissions repeat the 200 exactly"
    );
    let ack = h.uac.ack_2xx();
    h.send(&ack);
    assert!(h
        .run_for(Duration::from_secs(10))
        .iter()
        .all(|(_, t)| !t.data.starts_with(b"SIP/2.0 200")));
}

#[test]
fn rfc3261_13_3_1_4_no_ack_in_64_t1_sends_bye() {
    let mut h = Harness::new(quiet_config());
    h.answered_call(&[]);
    let sent = h.run_for(Duration::from_secs(33));
    let byes: Vec<_> = sent
        .iter()
        .filter(|(_, t)| t.data.starts_with(b"BYE "))
        .collect();
    assert!(
        byes.iter().all(|(_, t)| t.data == byes[0].1.data),
        "one BYE (and its retransmissions)"
    );
    assert_eq!(byes[0].0, Duration::from_secs(32));
    let bye = req(&byes[0].1);
    assert!(bye.headers.get(&HeaderName::Reason).is_some());
    assert!(matches!(
        h.events().as_slice(),
        [Event::CallEnded {
            reason: EndReason::AckTimeout,
            ..
        }]
    ));
}

#[test]
fn rfc3261_9_2_cancel_before_answer_gets_200_and_487() {
    let mut h = Harness::new(quiet_config());
    let inv = h.uac.invite(&[]);
    h.send(&inv);
    h.events();
    let cancel = h.uac.cancel();
    let out = h.send(&cancel);
    let codes: Vec<u16> = out.iter().map(status).collect();
    assert_eq!(codes, [200, 487]);
    assert_eq!(
        resp(&out[0]).cseq().unwrap().method,
        sip_msg::Method::Cancel
    );
    assert!(matches!(
        h.events().as_slice(),
        [Event::CallEnded {
            reason: EndReason::Cancelled,
            ..
        }]
    ));
    // 487 is retransmitted (Timer G) until the ACK, which is then absorbed.
    let sent = h.run_for(Duration::from_millis(600));
    assert_eq!(sent.len(), 1);
    h.uac.learn(&out[1].data);
    let ack = h.uac.ack_non_2xx();
    assert!(h.send(&ack).is_empty());
    assert!(h.run_for(Duration::from_secs(5)).is_empty());
    h.run_for(Duration::from_secs(40));
    assert_eq!(h.ep.stats().server_transactions, 0);
}

#[test]
fn rfc3261_9_2_cancel_after_the_200_gets_200_and_changes_nothing() {
    let mut h = Harness::new(quiet_config());
    h.answered_call(&[]);
    let cancel = h.uac.cancel();
    let out = h.send(&cancel);
    assert_eq!(out.iter().map(status).collect::<Vec<_>>(), [200]);
    assert!(h.events().is_empty(), "the call goes on");
    let ack = h.uac.ack_2xx();
    h.send(&ack);
    assert!(matches!(
        h.events().as_slice(),
        [Event::CallConfirmed { .. }]
    ));
}

#[test]
fn rfc3261_9_2_cancel_without_transaction_gets_481() {
    let mut h = Harness::new(quiet_config());
    h.uac.invite_branch = "z9hG4bK-nothing".into();
    let cancel = h.uac.cancel();
    let out = h.send(&cancel);
    assert_eq!(status(&out[0]), 481);
}

#[test]
fn rfc3261_11_options_outside_dialog_lists_capabilities() {
    let mut h = Harness::new(quiet_config());
    let opt = h.uac.options();
    let out = h.send(&opt);
    let r = resp(&out[0]);
    assert_eq!(r.status, 200);
    assert!(r
        .headers
        .get(&HeaderName::Allow)
        .unwrap()
        .contains("INVITE"));
    assert_eq!(r.headers.get(&HeaderName::Accept), Some("application/sdp"));
    assert_eq!(r.headers.get(&HeaderName::Supported), Some("timer"));
    h.ep.set_draining(true);
    let opt = h.uac.options();
    let out = h.send(&opt);
    assert_eq!(status(&out[0]), 503);
}

#[test]
fn rfc3264_8_4_reinvite_hold_and_unhold() {
    let mut h = Harness::new(quiet_config());
    h.established();
    for (offered, answered) in [
        ("sendonly", "recvonly"),
        ("inactive", "inactive"),
        ("sendrecv", "sendrecv"),
    ] {
        let re = h.uac.reinvite(offered);
        let out = h.send(&re);
        let ok = resp(&out[0]);
        assert_eq!(ok.status, 200);
        let body = String::from_utf8(ok.body.clone()).unwrap();
        assert!(
            body.contains(&format!("a={answered}")),
            "{offered} -> {body}"
        );
        let ack = h.uac.ack_2xx();
        h.send(&ack);
        let ev = h.events();
        assert!(
            matches!(ev.as_slice(), [Event::MediaUpdate { .. }]),
            "{ev:?}"
        );
    }
}

#[test]
fn rfc3311_update_refreshes_session_and_answers_offer() {
    let mut h = Harness::new(quiet_config());
    h.established();
    let sdp = testkit::uac::sdp_offer([127, 0, 0, 1], 40002, "sendonly");
    let up = h.uac.in_dialog("UPDATE", Some(("application/sdp", &sdp)));
    let out = h.send(&up);
    let ok = resp(&out[0]);
    assert_eq!(ok.status, 200);
    assert!(String::from_utf8_lossy(&ok.body).contains("a=recvonly"));
}

#[test]
fn rfc4028_9_uas_sets_session_expires_and_byes_when_uac_does_not_refresh() {
    let mut h = Harness::new(EndpointConfig::default());
    let (_, ok) = h.answered_call(&["Supported: timer", "Session-Expires: 90;refresher=uac"]);
    assert_eq!(
        ok.headers.get(&HeaderName::SessionExpires),
        Some("90;refresher=uac")
    );
    assert!(ok.has_tag(&HeaderName::Require, "timer"));
    let ack = h.uac.ack_2xx();
    h.send(&ack);
    h.events();
    // BYE at 90 - min(32, 90/3) = 60 s.
    let sent = h.run_for(Duration::from_secs(61));
    let bye = sent
        .iter()
        .find(|(_, t)| t.data.starts_with(b"BYE "))
        .expect("BYE sent");
    assert_eq!(bye.0, Duration::from_secs(60));
    assert!(matches!(
        h.events().as_slice(),
        [Event::CallEnded {
            reason: EndReason::SessionExpired,
            ..
        }]
    ));
}

#[test]
fn rfc4028_9_refresh_by_uac_resets_the_timer() {
    let mut h = Harness::new(EndpointConfig::default());
    h.answered_call(&["Supported: timer", "Session-Expires: 90;refresher=uac"]);
    let ack = h.uac.ack_2xx();
    h.send(&ack);
    h.run_for(Duration::from_secs(45));
    h.uac.extra_headers = vec![
        "Supported: timer".into(),
        "Session-Expires: 90;refresher=uac".into(),
    ];
    let up = h.uac.in_dialog("UPDATE", None);
    let out = h.send(&up);
    assert_eq!(status(&out[0]), 200);
    let sent = h.run_for(Duration::from_secs(50));
    assert!(
        sent.iter().all(|(_, t)| !t.data.starts_with(b"BYE ")),
        "refreshed: no BYE at 60 s"
    );
    let sent = h.run_for(Duration::from_secs(20));
    assert!(
        sent.iter().any(|(_, t)| t.data.starts_with(b"BYE ")),
        "BYE 60 s after the refresh"
    );
}

#[test]
fn rfc4028_10_uas_refresher_sends_update_at_half_interval() {
    let mut h = Harness::new(EndpointConfig::default());
    h.answered_call(&[
        "Supported: timer",
        "Allow: INVITE, ACK, BYE, UPDATE",
        "Session-Expires: 120;refresher=uas",
    ]);
    let ack = h.uac.ack_2xx();
    h.send(&ack);
    let sent = h.run_for(Duration::from_secs(61));
    let (at, update) = sent
        .iter()
        .find(|(_, t)| t.data.starts_with(b"UPDATE "))
        .expect("UPDATE sent");
    assert_eq!(*at, Duration::from_secs(60));
    let update = req(update);
    assert_eq!(
        update.headers.get(&HeaderName::SessionExpires),
        Some("120;refresher=uas")
    );
    // The peer answers 200: the refresh is done and the next one is 60 s later.
    let mut ok = Response::for_request(&update, 200, "OK");
    ok.headers
        .push(HeaderName::SessionExpires, "120;refresher=uas");
    h.send(&ok.to_bytes());
    let sent = h.run_for(Duration::from_secs(61));
    let updates: Vec<_> = sent
        .iter()
        .filter(|(_, t)| t.data.starts_with(b"UPDATE "))
        .collect();
    assert_eq!(
        updates[0].0,
        Duration::from_secs(61 + 60),
        "next refresh half an interval after the 200 (sent at 61 s)"
    );
    assert!(
        updates.iter().all(|(_, t)| t.data == updates[0].1.data),
        "one new UPDATE"
    );
}

#[test]
fn rfc4028_6_small_session_expires_gets_422() {
    let mut h = Harness::new(EndpointConfig::default());
    let inv = h.uac.invite(&["Supported: timer", "Session-Expires: 30"]);
    let out = h.send(&inv);
    let r = resp(&out[0]);
    assert_eq!(r.status, 422);
    assert_eq!(r.headers.get(&HeaderName::MinSe), Some("90"));
}

#[test]
fn dtmf_relay_info_is_accepted() {
    let mut h = Harness::new(quiet_config());
    h.established();
    let info = h.uac.in_dialog(
        "INFO",
        Some(("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n")),
    );
    let out = h.send(&info);
    assert_eq!(status(&out[0]), 200);
    assert!(matches!(
        h.events().as_slice(),
        [Event::Dtmf {
            digit: '5',
            duration_ms: 160,
            ..
        }]
    ));
}

#[test]
fn rfc3261_15_1_2_local_hangup_sends_bye_over_the_dialog() {
    let mut h = Harness::new(quiet_config());
    let call = h.established();
    h.ep.hangup(h.clock.now(), call, "call limit");
    let out = h.drain();
    let bye = req(&out[0]);
    assert_eq!(bye.method, sip_msg::Method::Bye);
    assert_eq!(bye.to_header().unwrap().tag(), Some("ft-c1"));
    assert_eq!(bye.uri.to_string(), "sip:caller@127.0.0.1:5070");
    assert_eq!(out[0].flow.remote, h.flow.remote);
    // BYE is retransmitted by Timer E until answered.
    let sent = h.run_for(Duration::from_millis(600));
    assert_eq!(sent.len(), 1);
    let ok = Response::for_request(&bye, 200, "OK");
    h.send(&ok.to_bytes());
    assert!(h.run_for(Duration::from_secs(3)).is_empty());
}

#[test]
fn rfc3261_12_2_2_lower_cseq_in_dialog_gets_500() {
    let mut h = Harness::new(quiet_config());
    h.established();
    h.uac.cseq = 0;
    let info = h.uac.in_dialog("INFO", None);
    let out = h.send(&info);
    assert_eq!(status(&out[0]), 500);
}

#[test]
fn rfc3261_8_2_responses_a_trunk_expects() {
    type Build = Box<dyn Fn(&mut Uac) -> Vec<u8>>;
    let cases: Vec<(&str, Build, u16)> = vec![
        (
            "unknown method",
            Box::new(|u: &mut Uac| u.request("FOO", None, 1, None, &[])),
            501,
        ),
        (
            "REGISTER",
            Box::new(|u: &mut Uac| u.request("REGISTER", None, 1, None, &[])),
            405,
        ),
        (
            "BYE without dialog",
            Box::new(|u: &mut Uac| {
                u.to_tag = Some("nope".into());
                u.bye()
            }),
            481,
        ),
        (
            "Max-Forwards 0",
            Box::new(|u: &mut Uac| {
                let m = String::from_utf8(u.invite(&[])).unwrap();
                m.replace("Max-Forwards: 70", "Max-Forwards: 0")
                    .into_bytes()
            }),
            483,
        ),
        (
            "Require unknown",
            Box::new(|u: &mut Uac| u.invite(&["Require: 100rel, foo"])),
            420,
        ),
        (
            "tel: Request-URI",
            Box::new(|u: &mut Uac| {
                let m = String::from_utf8(u.invite(&[])).unwrap();
                m.replacen(
                    "INVITE sip:switchboard@127.0.0.1:5060",
                    "INVITE tel:+15551234",
                    1,
                )
                .into_bytes()
            }),
            416,
        ),
        (
            "no common codec",
            Box::new(|u: &mut Uac| {
                let m = String::from_utf8(u.invite(&[])).unwrap();
                let m = m.replace("RTP/AVP 0 8 101", "RTP/AVP 9 101").replace(
                    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n",
                    "a=rtpmap:9 G722/8000\r\n\r\n",
                );
                let (head, body) = m.split_once("\r\n\r\n").unwrap();
                let body = body.trim_end_matches("\r\n").to_string() + "\r\n";
                let head = head
                    .lines()
                    .map(|l| {
                        if l.starts_with("Content-Length") {
                            format!("Content-Length: {}", body.len())
                        } else {
                            l.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\r\n");
                format!("{head}\r\n\r\n{body}").into_bytes()
            }),
            488,
        ),
        (
            "bad version",
            Box::new(|u: &mut Uac| {
                let m = String::from_utf8(u.invite(&[])).unwrap();
                m.replacen("SIP/2.0\r\n", "SIP/3.0\r\n", 1).into_bytes()
            }),
            505,
        ),
        (
            "malformed",
            Box::new(|u: &mut Uac| {
                let m = String::from_utf8(u.options()).unwrap();
                m.replace(
                    "Contact: <sip:caller@127.0.0.1:5070>",
                    "Contact: <sip:caller@127.0.0.1:5070",
                )
                .into_bytes()
            }),
            400,
        ),
        (
            "unacceptable Accept",
            Box::new(|u: &mut Uac| u.invite(&["Accept: text/nonsense"])),
            406,
        ),
    ];
    for (what, build, code) in cases {
        let mut h = Harness::new(quiet_config());
        let msg = build(&mut h.uac);
        let out = h.send(&msg);
        let r = resp(out.last().unwrap_or_else(|| panic!("{what}: no response")));
        assert_eq!(r.status, code, "{what}: {} {}", r.status, r.reason);
        assert!(
            r.to_header().unwrap().tag().is_some(),
            "{what}: To tag on every non-100 response"
        );
        if code == 501 || code == 405 {
            assert!(r.headers.get(&HeaderName::Allow).is_some(), "{what}: Allow");
        }
        if code == 420 {
            assert_eq!(r.headers.get(&HeaderName::Unsupported), Some("100rel, foo"));
        }
        if code == 400 {
            assert!(
                r.reason.contains("Contact"),
                "reason names the problem: {}",
                r.reason
            );
        }
    }
}

#[test]
fn rfc3261_8_2_2_2_merged_request_gets_482() {
    let mut h = Harness::new(quiet_config());
    let inv = h.uac.invite(&[]);
    h.send(&inv);
    // Same From tag, Call-ID and CSeq, different branch: a fork that came back.
    let twin = String::from_utf8(inv)
        .unwrap()
        .replace(&h.uac.invite_branch, "z9hG4bK-fork")
        .into_bytes();
    let out = h.send(&twin);
    assert_eq!(status(&out[0]), 482);
}

#[test]
fn over_call_limit_gets_503_with_retry_after() {
    let mut h = Harness::new(EndpointConfig {
        max_calls: 1,
        ..quiet_config()
    });
    h.established();
    let mut second = Uac::new("c2", h.flow.remote, h.flow.local);
    let out = h.send(&second.invite(&[]));
    let r = resp(&out[0]);
    assert_eq!(r.status, 503);
    assert_eq!(r.headers.get(&HeaderName::RetryAfter), Some("5"));
}

#[test]
fn rfc3581_4_rport_and_received_on_responses() {
    let mut h = Harness::new(quiet_config());
    // The UAC says it is at 10.0.0.9:5999 but the packet came from 127.0.0.1:5070 (NAT).
    h.uac.local = "10.0.0.9:5999".parse().unwrap();
    let opt = h.uac.options();
    let out = h.send(&opt);
    let via = resp(&out[0]).top_via().unwrap();
    assert_eq!(via.received(), Some("127.0.0.1"));
    assert_eq!(via.param("rport").unwrap().value.as_deref(), Some("5070"));
    assert_eq!(
        out[0].flow.remote, h.flow.remote,
        "sent back to the source address and port"
    );
}

#[test]
fn rfc3261_18_3_tcp_requires_content_length() {
    let mut h = Harness::new(quiet_config()).tcp();
    let opt = String::from_utf8(h.uac.options())
        .unwrap()
        .replace("Content-Length: 0\r\n", "");
    let out = h.send(opt.as_bytes());
    assert_eq!(status(&out[0]), 400);
    assert_eq!(out[0].flow, h.flow, "answered on the same connection");
}

#[test]
fn rfc5626_4_4_1_crlf_keepalive_gets_pong_on_tcp_only() {
    let mut h = Harness::new(quiet_config()).tcp();
    let out = h.send(b"\r\n\r\n");
    assert_eq!(out[0].data, b"\r\n");
    let mut u = Harness::new(quiet_config());
    assert!(u.send(b"\r\n\r\n").is_empty());
}

#[test]
fn rfc3261_18_1_1_large_request_over_udp_goes_over_tcp() {
    let mut h = Harness::new(quiet_config());
    let routes: Vec<String> = (0..30)
        .map(|i| format!("Record-Route: <sip:proxy{i}.long-name-to-make-it-big.example.com;lr>"))
        .collect();
    let refs: Vec<&str> = routes.iter().map(String::as_str).collect();
    let (call, _) = h.answered_call(&refs);
    let ack = h.uac.ack_2xx();
    h.send(&ack);
    h.ep.hangup(h.clock.now(), call, "done");
    let out = h.drain();
    assert!(out[0].data.len() > 1300);
    assert_eq!(out[0].flow.transport, Transport::Tcp);
    assert!(req(&out[0]).top_via().unwrap().transport == "TCP");
}

#[test]
fn ten_thousand_calls_leave_nothing_behind() {
    let mut h = Harness::new(quiet_config());
    for i in 0..10_000 {
        let mut u = Uac::new(&format!("load{i}"), h.flow.remote, h.flow.local);
        let inv = u.invite(&[]);
        h.send(&inv);
        let call = match h.events().pop() {
            Some(Event::IncomingCall(c)) => c.call,
            other => panic!("{other:?}"),
        };
        h.ep.answer(h.clock.now(), call, media());
        let out = h.drain();
        u.learn(&out[0].data);
        h.send(&u.ack_2xx());
        h.send(&u.bye());
        h.events();
        h.clock.advance(Duration::from_millis(1));
        h.ep.handle_timeout(h.clock.now());
        h.drain();
    }
    let during = h.ep.stats();
    assert_eq!(during.calls, 0);
    assert!(during.server_transactions > 0);
    h.run_for(Duration::from_secs(65));
    let s = h.ep.stats();
    assert_eq!(
        (
            s.calls,
            s.dialogs,
            s.server_transactions,
            s.client_transactions,
            s.scheduled_timers
        ),
        (0, 0, 0, 0, 0)
    );
    assert!(
        h.ep.shrink(h.clock.now()),
        "maps sized for the peak are shrunk"
    );
    assert!(!h.ep.shrink(h.clock.now()), "and then left alone");
}

#[test]
fn source_outside_the_allow_list_gets_403_and_nothing_is_kept() {
    let mut h = Harness::new(quiet_config());
    h.flow.remote = "192.0.2.7:5060".parse().unwrap();
    let inv = h.uac.invite(&[]);
    let out = h.send(&inv);
    assert_eq!(status(&out[0]), 403);
    assert!(h.events().is_empty());
    let s = h.ep.stats();
    assert_eq!((s.calls, s.server_transactions, s.denied), (0, 0, 1));
}

#[test]
fn drop_mode_answers_nothing_and_allowed_networks_get_in() {
    let mut cfg = quiet_config();
    cfg.access.on_deny = sip_proto::DenyAction::Drop;
    cfg.access.allow.push("198.51.100.0/24".parse().unwrap());
    let mut h = Harness::new(cfg);
    h.flow.remote = "192.0.2.7:5060".parse().unwrap();
    let opt = h.uac.options();
    assert!(h.send(&opt).is_empty(), "a scanner learns nothing");
    h.flow.remote = "198.51.100.20:5060".parse().unwrap();
    let opt = h.uac.options();
    assert_eq!(status(&h.send(&opt)[0]), 200);
}

fn digest_config(from: Vec<ipnet::IpNet>) -> sip_proto::auth::DigestConfig {
    use sip_proto::auth::{Algorithm, Credentials, DigestConfig};
    DigestConfig {
        realm: "sb".into(),
        users: vec![Credentials {
            username: "trunk".into(),
            password: "pw-123".into(),
            from,
        }],
        nonce_ttl: Duration::from_secs(300),
        secret: [1; 32],
        algorithms: Algorithm::default_order(),
    }
}

/// Send an INVITE, take the 401's SHA-256 challenge, return the Authorization header line
/// with `password`'s response.
fn challenged_authorization(h: &mut Harness, password: &str) -> String {
    use sip_proto::auth::{compute_response, Algorithm};
    let inv = h.uac.invite(&[]);
    let out = h.send(&inv);
    let r = resp(&out[0]);
    assert_eq!(r.status, 401);
    let challenge = r
        .headers
        .get(&HeaderName::WwwAuthenticate)
        .unwrap()
        .to_string();
    assert!(challenge.contains("algorithm=SHA-256") && challenge.contains("qop=\"auth\""));
    assert!(h.events().is_empty());
    let nonce = challenge
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let uri = format!("sip:switchboard@{}", h.flow.local);
    let response = compute_response(
        Algorithm::Sha256,
        "trunk",
        "sb",
        password,
        "INVITE",
        &uri,
        &nonce,
        Some(("00000001", "cn")),
    );
    format!("Authorization: Digest username=\"trunk\", realm=\"sb\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"cn\"")
}

#[test]
fn rfc3261_22_2_invite_is_challenged_then_accepted_with_credentials() {
    let mut cfg = quiet_config();
    cfg.auth = Some(digest_config(Vec::new()));
    let mut h = Harness::new(cfg);
    let bad = challenged_authorization(&mut h, "wrong");
    let retry = h.uac.invite(&[&bad]);
    assert_eq!(status(&h.send(&retry)[0]), 401);
    assert_eq!(h.ep.stats().auth_failures, 1);
    let auth = challenged_authorization(&mut h, "pw-123");
    let retry = h.uac.invite(&[&auth]);
    let out = h.send(&retry);
    assert_eq!(status(&out[0]), 100);
    assert!(matches!(h.events().as_slice(), [Event::IncomingCall(_)]));
    assert!(
        out.iter()
            .all(|t| !String::from_utf8_lossy(&t.data).contains("pw-123")),
        "the password never goes on the wire"
    );
}

#[test]
fn rfc3261_22_2_a_trunks_credentials_from_outside_its_networks_get_403() {
    let mut cfg = quiet_config();
    cfg.access.allow = vec![
        "127.0.0.0/8".parse().unwrap(),
        "192.0.2.0/24".parse().unwrap(),
    ];
    cfg.auth = Some(digest_config(vec!["192.0.2.0/24".parse().unwrap()]));
    // From loopback (let in by the allow-list, but not the trunk's network): refused.
    let mut h = Harness::new(cfg.clone());
    let auth = challenged_authorization(&mut h, "pw-123");
    let retry = h.uac.invite(&[&auth]);
    let out = h.send(&retry);
    assert_eq!(status(&out[0]), 403);
    assert!(h.events().is_empty());
    assert_eq!(h.ep.stats().auth_failures, 1);
    // From the trunk's SBC: accepted.
    let mut h = Harness::new(cfg);
    h.flow.remote = "192.0.2.10:5060".parse().unwrap();
    let auth = challenged_authorization(&mut h, "pw-123");
    let retry = h.uac.invite(&[&auth]);
    assert_eq!(status(&h.send(&retry)[0]), 100);
    assert!(matches!(h.events().as_slice(), [Event::IncomingCall(_)]));
}

#[test]
fn rfc3261_17_2_2_bye_retransmissions_after_a_lost_ack_get_the_same_200() {
    let mut cfg = quiet_config();
    cfg.timers.t1 = Duration::from_millis(100);
    cfg.timers.t2 = Duration::from_millis(800);
    cfg.timers.t4 = Duration::from_secs(1);
    let mut h = Harness::new(cfg);
    h.answered_call(&[]);
    // The ACK is lost; after the caller's pause its BYE arrives and is retransmitted.
    h.run_for(Duration::from_millis(500));
    let bye = h.uac.bye();
    assert_eq!(status(&h.send(&bye)[0]), 200);
    for gap in [500u64, 1000, 2000] {
        h.run_for(Duration::from_millis(gap));
        let out = h.send(&bye);
        assert_eq!(out.len(), 1, "retransmitted BYE answered after {gap} ms");
        assert_eq!(status(&out[0]), 200);
    }
}

#[test]
fn a_flooding_source_is_rate_limited_while_others_still_get_in() {
    let mut cfg = quiet_config();
    cfg.rate_limit.messages_per_sec = 20;
    cfg.rate_limit.burst = 10;
    let mut h = Harness::new(cfg);
    let flooder = Flow {
        remote: "127.0.0.2:5099".parse().unwrap(),
        ..h.flow
    };
    let mut f = Uac::new("flood", flooder.remote, h.flow.local);
    let mut answered = 0;
    for _ in 0..200 {
        h.ep.handle_input(h.clock.now(), flooder, &f.options());
        answered += h.drain().len();
    }
    assert_eq!(answered, 10, "only the burst is answered");
    assert_eq!(h.ep.stats().rate_limited, 190);
    // A caller from another address is not slowed at all.
    h.established();
    assert_eq!(h.ep.stats().calls, 1);
}

// ----- SRTP with SDES (RFC 4568) through the endpoint -----

const SRTP_KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";

fn srtp_media() -> LocalMedia {
    LocalMedia {
        srtp_key: Some(sip_proto::sdp::SrtpKey([0x42; 30])),
        ..media()
    }
}

/// An INVITE whose offer is the typical one turned into RTP/SAVP with `crypto` lines
/// (`None`: left plain RTP/AVP).
fn invite_with(u: &mut Uac, crypto: Option<&[&str]>) -> Vec<u8> {
    u.cseq += 1;
    u.invite_branch = format!("z9hG4bK-srtp-{}", u.cseq);
    let mut sdp = testkit::uac::sdp_offer(u.local.ip(), 40000, "sendrecv");
    if let Some(lines) = crypto {
        sdp = sdp.replace("RTP/AVP", "RTP/SAVP");
        for l in lines {
            sdp.push_str(&format!("a=crypto:{l}\r\n"));
        }
    }
    let (b, c) = (u.invite_branch.clone(), u.cseq);
    u.request("INVITE", Some(&b), c, Some(&sdp), &[])
}

fn srtp_config(policy: sip_proto::sdp::SrtpPolicy) -> EndpointConfig {
    EndpointConfig {
        srtp: policy,
        ..quiet_config()
    }
}

#[test]
fn rfc4568_srtp_policy_at_the_endpoint() {
    use sip_proto::sdp::SrtpPolicy::*;
    let good = format!("5 AES_CM_128_HMAC_SHA1_80 inline:{SRTP_KEY_B64}");
    let mki = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{SRTP_KEY_B64}|2^20|1:4");
    let cases: Vec<(_, Option<Vec<&str>>, u16, &str)> = vec![
        (
            Off,
            Some(vec![good.as_str()]),
            488,
            "302 switchboard \"Incompatible transport protocol: SRTP not enabled\"",
        ),
        (Optional, Some(vec![good.as_str()]), 200, "RTP/SAVP"),
        (Optional, None, 200, "RTP/AVP"),
        (
            Required,
            None,
            488,
            "302 switchboard \"Incompatible transport protocol: SRTP (RTP/SAVP) required\"",
        ),
        (
            Required,
            Some(vec![mki.as_str()]),
            488,
            "306 switchboard \"Attribute not understood: no usable a=crypto\"",
        ),
        (
            Required,
            Some(vec![mki.as_str(), good.as_str()]),
            200,
            "RTP/SAVP",
        ),
    ];
    for (policy, crypto, code, want) in cases {
        let what = format!("{policy:?} {crypto:?}");
        let mut h = Harness::new(srtp_config(policy));
        let inv = invite_with(&mut h.uac, crypto.as_deref());
        let out = h.send(&inv);
        let last = resp(out.last().unwrap());
        if code == 488 {
            assert_eq!(last.status, 488, "{what}");
            assert_eq!(last.headers.get(&HeaderName::Warning), Some(want), "{what}");
            continue;
        }
        assert_eq!(last.status, 100, "{what}");
        let call = match h.events().pop() {
            Some(Event::IncomingCall(c)) => {
                let n = c.negotiated.clone().unwrap();
                assert_eq!(n.srtp.is_some(), want == "RTP/SAVP", "{what}");
                if let Some(cr) = &n.srtp {
                    assert_eq!(cr.tag, 5);
                    assert_eq!(cr.key.0[..4], [0, 1, 2, 3], "the offerer's key");
                }
                c.call
            }
            other => panic!("{what}: expected IncomingCall, got {other:?}"),
        };
        assert!(h.ep.answer(h.clock.now(), call, srtp_media()));
        let ok = resp(&h.drain()[0]);
        assert_eq!(ok.status, 200, "{what}");
        let body = String::from_utf8(ok.body.clone()).unwrap();
        assert!(
            body.contains(&format!("m=audio 30000 {want} ")),
            "{what}: {body}"
        );
        let crypto: Vec<&str> = body
            .lines()
            .filter(|l| l.starts_with("a=crypto:"))
            .collect();
        if want == "RTP/SAVP" {
            assert_eq!(crypto.len(), 1, "{body}");
            let c = sip_proto::sdp::parse_crypto(&crypto[0]["a=crypto:".len()..]).unwrap();
            assert_eq!(
                (c.tag, c.key.0),
                (5, [0x42; 30]),
                "{what}: same tag, our key"
            );
        } else {
            assert!(crypto.is_empty(), "{what}: {body}");
        }
    }
}

#[test]
fn rfc4568_late_offer_with_srtp_required_offers_savp_and_takes_the_ack_answer() {
    let mut h = Harness::new(srtp_config(sip_proto::sdp::SrtpPolicy::Required));
    h.uac.cseq += 1;
    let (b, c) = ("z9hG4bK-late-1".to_string(), h.uac.cseq);
    h.uac.invite_branch = b.clone();
    let inv = h.uac.request("INVITE", Some(&b), c, None, &[]);
    h.send(&inv);
    let call = match h.events().pop() {
        Some(Event::IncomingCall(c)) => c.call,
        other => panic!("expected IncomingCall, got {other:?}"),
    };
    assert!(h.ep.answer(h.clock.now(), call, srtp_media()));
    let out = h.drain();
    let ok = resp(&out[0]);
    h.uac.learn(&out[0].data);
    let body = String::from_utf8(ok.body.clone()).unwrap();
    assert!(body.contains("m=audio 30000 RTP/SAVP "), "{body}");
    assert_eq!(body.matches("a=crypto:").count(), 2, "{body}");
    // The caller answers in the ACK with suite 2 (_32) and its own key.
    let answer = testkit::uac::sdp_offer(h.uac.local.ip(), 40000, "sendrecv")
        .replace("RTP/AVP", "RTP/SAVP")
        + &format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{SRTP_KEY_B64}\r\n");
    let cseq = h.uac.cseq;
    let ack = h.uac.request("ACK", None, cseq, Some(&answer), &[]);
    h.send(&ack);
    match h.events().as_slice() {
        [Event::CallConfirmed {
            negotiated: Some(n),
            ..
        }] => {
            let c = n.srtp.as_ref().unwrap();
            assert_eq!(c.suite, sip_proto::sdp::CryptoSuite::AesCm128HmacSha1_32);
            assert_eq!(c.key.0[29], 29);
        }
        other => panic!("expected CallConfirmed with SRTP, got {other:?}"),
    }
}

/// `request` with a `sips:` Request-URI (the testkit UAC writes `sip:`).
fn sips(request: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(request.to_vec()).unwrap();
    let (line, rest) = text.split_once("\r\n").unwrap();
    format!("{}\r\n{rest}", line.replacen(" sip:", " sips:", 1)).into_bytes()
}

#[test]
fn rfc3261_26_2_call_over_tls_answers_on_the_connection_with_tls_via_and_contact() {
    let mut h = Harness::new(quiet_config()).tls();
    let (call, ok) = h.answered_call(&[]);
    assert_eq!(
        ok.headers.get(&HeaderName::Contact),
        Some("<sip:switchboard@127.0.0.1:5061;transport=tls>")
    );
    assert!(
        h.run_for(Duration::from_secs(5)).is_empty(),
        "no 2xx retransmission on a reliable transport"
    );
    let ack = h.uac.ack_2xx();
    assert!(h.send(&ack).is_empty());
    assert!(matches!(
        h.events().as_slice(),
        [Event::CallConfirmed { .. }]
    ));
    let opt = h.uac.options();
    let out = h.send(&opt);
    assert_eq!(status(&out[0]), 200, "in-dialog OPTIONS");
    assert_eq!(out[0].flow, h.flow, "same connection");
    // Our BYE goes back on the caller's connection, not to its Contact's port.
    h.ep.hangup(h.clock.now(), call, "done");
    let out = h.drain();
    let bye = req(&out[0]);
    assert_eq!(bye.method, sip_msg::Method::Bye);
    assert_eq!(out[0].flow, h.flow);
    let via = bye.top_via().unwrap();
    assert_eq!(via.transport, "TLS");
    assert_eq!(via.port, Some(5061));
}

#[test]
fn rfc3261_26_2_caller_bye_over_tls_gets_200_on_the_same_connection() {
    let mut h = Harness::new(quiet_config()).tls();
    h.established();
    let bye = h.uac.bye();
    let out = h.send(&bye);
    assert_eq!(status(&out[0]), 200);
    assert_eq!(out[0].flow, h.flow);
    assert!(matches!(
        h.events().as_slice(),
        [Event::CallEnded {
            reason: EndReason::RemoteBye,
            ..
        }]
    ));
    assert_eq!(h.ep.stats().dialogs, 0);
}

#[test]
fn rfc3261_12_1_1_sips_request_uri_over_tls_gets_a_sips_contact() {
    let mut h = Harness::new(quiet_config()).tls();
    let inv = sips(&h.uac.invite(&[]));
    let (_, ok) = h.answer_invite(&inv);
    assert_eq!(
        ok.headers.get(&HeaderName::Contact),
        Some("<sips:switchboard@127.0.0.1:5061>")
    );
}

#[test]
fn rfc3261_26_2_2_sips_request_uri_over_udp_or_tcp_gets_416_and_no_call() {
    for transport in [Transport::Udp, Transport::Tcp] {
        let mut h = Harness::new(quiet_config());
        if transport == Transport::Tcp {
            h = h.tcp();
        }
        let inv = sips(&h.uac.invite(&[]));
        let out = h.send(&inv);
        assert_eq!(
            out.len(),
            1,
            "{transport:?}: no 100 Trying, only the refusal"
        );
        let r = resp(&out[0]);
        assert_eq!(r.status, 416, "{transport:?}");
        let warning = r.headers.get(&HeaderName::Warning).unwrap();
        assert!(warning.starts_with("399 switchboard"), "{warning}");
        assert!(warning.contains(transport.as_via()), "{warning}");
        assert!(r.to_header().unwrap().tag().is_some());
        assert!(h.events().is_empty(), "{transport:?}: no IncomingCall");
        assert_eq!(h.ep.stats().calls, 0);
        assert_eq!(h.ep.stats().dialogs, 0);
        // The same request as sip: is a normal call.
        let mut plain = Harness::new(quiet_config());
        if transport == Transport::Tcp {
            plain = plain.tcp();
        }
        let inv = plain.uac.invite(&[]);
        assert_eq!(status(&plain.send(&inv)[0]), 100);
    }
}

#[test]
fn rfc5626_4_4_1_crlf_keepalive_gets_pong_on_tls() {
    let mut h = Harness::new(quiet_config()).tls();
    let out = h.send(b"\r\n\r\n");
    assert_eq!(out[0].data, b"\r\n");
    assert_eq!(out[0].flow, h.flow);
}

#[test]
fn rfc4568_7_1_4_reinvite_hold_keeps_our_key_and_a_new_caller_key_is_a_media_update() {
    let mut h = Harness::new(srtp_config(sip_proto::sdp::SrtpPolicy::Optional));
    let good = format!("5 AES_CM_128_HMAC_SHA1_80 inline:{SRTP_KEY_B64}");
    let inv = invite_with(&mut h.uac, Some(&[good.as_str()]));
    h.send(&inv);
    let call = match h.events().pop() {
        Some(Event::IncomingCall(c)) => c.call,
        other => panic!("expected IncomingCall, got {other:?}"),
    };
    assert!(h.ep.answer(h.clock.now(), call, srtp_media()));
    let out = h.drain();
    h.uac.learn(&out[0].data);
    let ack = h.uac.ack_2xx();
    h.send(&ack);
    h.events();
    let savp = |dir: &str, crypto: &str| {
        testkit::uac::sdp_offer("127.0.0.1".parse::<std::net::IpAddr>().unwrap(), 40000, dir)
            .replace("RTP/AVP", "RTP/SAVP")
            + &format!("a=crypto:{crypto}\r\n")
    };
    // Hold with the same crypto: our answer keeps our key; the update says sendonly.
    let reinv = h.uac.in_dialog(
        "INVITE",
        Some(("application/sdp", &savp("sendonly", &good))),
    );
    let out = h.send(&reinv);
    let ok = resp(out.iter().find(|t| status(t) == 200).unwrap());
    let body = String::from_utf8(ok.body.clone()).unwrap();
    let line = body.lines().find(|l| l.starts_with("a=crypto:")).unwrap();
    let c = sip_proto::sdp::parse_crypto(&line["a=crypto:".len()..]).unwrap();
    assert_eq!((c.tag, c.key.0), (5, [0x42; 30]), "{body}");
    assert!(body.contains("a=recvonly"), "{body}");
    match h.events().as_slice() {
        [Event::MediaUpdate { negotiated, .. }] => {
            assert_eq!(negotiated.srtp.as_ref().unwrap().key.0[..2], [0, 1]);
        }
        other => panic!("expected MediaUpdate, got {other:?}"),
    }
    h.uac.learn(&out.last().unwrap().data);
    let ack = h.uac.ack_2xx();
    h.send(&ack);
    // The caller re-keys (RFC 4568 7.1.4): the update carries its new key.
    let new_key = "1 AES_CM_128_HMAC_SHA1_32 inline:PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8";
    let reinv = h.uac.in_dialog(
        "INVITE",
        Some(("application/sdp", &savp("sendrecv", new_key))),
    );
    let out = h.send(&reinv);
    assert!(out.iter().any(|t| status(t) == 200));
    match h.events().as_slice() {
        [Event::MediaUpdate { negotiated, .. }] => {
            let c = negotiated.srtp.as_ref().unwrap();
            assert_eq!(c.suite, sip_proto::sdp::CryptoSuite::AesCm128HmacSha1_32);
            assert_eq!(c.key.0, [0x3c; 30]);
        }
        other => panic!("expected MediaUpdate, got {other:?}"),
    }
}
