//! INVITE client transaction (RFC 3261 17.1.1, RFC 6026 7.2): our re-INVITE for session
//! refresh when the peer does not allow UPDATE.

use super::{ClientEvent, Flow, Transmit};
use crate::timer::{TimerKind, TimerTable, Timers};
use sip_msg::{HeaderName, Method, Request, Response, SipHeaders};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IctState {
    Calling,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

#[derive(Debug)]
pub struct InviteClient {
    state: IctState,
    flow: Flow,
    timers: TimerTable,
    request: Request,
    bytes: Vec<u8>,
    ack: Option<Vec<u8>>,
    a_interval: Duration,
}

impl InviteClient {
    /// Send the INVITE; Timer A (unreliable only) and Timer B.
    pub fn start(
        now: Instant,
        flow: Flow,
        request: Request,
        t: &Timers,
        out: &mut Vec<Transmit>,
    ) -> Self {
        let bytes = request.to_bytes();
        out.push(Transmit {
            flow,
            data: bytes.clone(),
        });
        let mut timers = TimerTable::default();
        if !flow.transport.is_reliable() {
            timers.set(TimerKind::A, now + t.t1);
        }
        timers.set(TimerKind::B, now + t.t1x64());
        InviteClient {
            state: IctState::Calling,
            flow,
            timers,
            request,
            bytes,
            ack: None,
            a_interval: t.t1,
        }
    }

    pub fn state(&self) -> IctState {
        self.state
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    pub fn on_response(
        &mut self,
        now: Instant,
        resp: Response,
        t: &Timers,
        out: &mut Vec<Transmit>,
    ) -> Option<ClientEvent> {
        let status = resp.status;
        match self.state {
            IctState::Calling | IctState::Proceeding => {
                self.timers.stop(TimerKind::A);
                if status < 200 {
                    self.state = IctState::Proceeding;
                } else if status < 300 {
                    // RFC 6026: Accepted; the TU sends the ACK for a 2xx.
                    self.state = IctState::Accepted;
                    self.timers.stop(TimerKind::B);
                    self.timers.set(TimerKind::M, now + t.t1x64());
                } else {
                    self.state = IctState::Completed;
                    self.timers.stop(TimerKind::B);
                    let ack = self.ack_for(&resp).to_bytes();
                    out.push(Transmit {
                        flow: self.flow,
                        data: ack.clone(),
                    });
                    self.ack = Some(ack);
                    let wait = if self.flow.transport.is_reliable() {
                        Duration::ZERO
                    } else {
                        Duration::from_secs(32)
                    };
                    self.timers.set(TimerKind::D, now + wait);
                }
                Some(ClientEvent::Response(resp))
            }
            IctState::Completed if status >= 300 => {
                if let Some(ack) = &self.ack {
                    out.push(Transmit {
                        flow: self.flow,
                        data: ack.clone(),
                    });
                }
                None
            }
            IctState::Accepted if (200..300).contains(&status) => Some(ClientEvent::Response(resp)),
            _ => None,
        }
    }

    /// ACK for a non-2xx final response (RFC 3261 17.1.1.3): same Request-URI, Call-ID,
    /// From, CSeq number and top Via as the INVITE, To from the response, Route copied.
    fn ack_for(&self, resp: &Response) -> Request {
        let mut ack = Request::new(Method::Ack, self.request.uri.clone());
        if let Some(via) = self.request.headers.list(&HeaderName::Via).first() {
            ack.headers.push(HeaderName::Via, via.clone());
        }
        for name in [
            HeaderName::MaxForwards,
            HeaderName::From,
            HeaderName::CallId,
        ] {
            if let Some(v) = self.request.headers.get(&name) {
                ack.headers.push(name, v);
            }
        }
        if let Some(to) = resp.headers.get(&HeaderName::To) {
            ack.headers.push(HeaderName::To, to);
        }
        let seq = self.request.cseq().map(|c| c.seq).unwrap_or(1);
        ack.headers.push(HeaderName::CSeq, format!("{seq} ACK"));
        for r in self.request.headers.get_all(&HeaderName::Route) {
            ack.headers.push(HeaderName::Route, r);
        }
        ack.headers.push(HeaderName::ContentLength, "0");
        ack
    }

    pub fn on_timeout(
        &mut self,
        now: Instant,
        _t: &Timers,
        out: &mut Vec<Transmit>,
    ) -> Option<ClientEvent> {
        let mut result = None;
        while let Some(kind) = self.timers.pop_expired(now) {
            match kind {
                TimerKind::A if self.state == IctState::Calling => {
                    out.push(Transmit {
                        flow: self.flow,
                        data: self.bytes.clone(),
                    });
                    // Timer A doubles without the T2 cap (RFC 3261 17.1.1.2).
                    self.a_interval *= 2;
                    self.timers.set(TimerKind::A, now + self.a_interval);
                }
                TimerKind::B => {
                    self.terminate();
                    result = Some(ClientEvent::Timeout);
                }
                TimerKind::D | TimerKind::M => self.terminate(),
                _ => {}
            }
        }
        result
    }

    pub fn is_terminated(&self) -> bool {
        self.state == IctState::Terminated
    }

    fn terminate(&mut self) {
        self.state = IctState::Terminated;
        self.timers.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::test_flow as flow;
    use crate::transaction::Transport;
    use sip_msg::Uri;

    fn invite() -> Request {
        let mut r = Request::new(Method::Invite, Uri::parse("sip:a@127.0.0.1:5070").unwrap());
        r.headers.push(
            HeaderName::Via,
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKict1",
        );
        r.headers.push(HeaderName::From, "<sip:sb@127.0.0.1>;tag=l");
        r.headers.push(HeaderName::To, "<sip:a@127.0.0.1>;tag=r");
        r.headers.push(HeaderName::CallId, "c");
        r.headers.push(HeaderName::CSeq, "7 INVITE");
        r.headers.push(HeaderName::Route, "<sip:p@127.0.0.1;lr>");
        r
    }

    fn response(status: u16) -> Response {
        let mut r = Response::for_request(&invite(), status, "x");
        r.headers.set(HeaderName::To, "<sip:a@127.0.0.1>;tag=r");
        r
    }

    #[test]
    fn rfc3261_17_1_1_2_ict_timer_a_doubles_until_timer_b() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut tx = InviteClient::start(t0, flow(Transport::Udp), invite(), &t, &mut out);
        let mut fires = Vec::new();
        while let Some(next) = tx.next_timeout() {
            out.clear();
            if tx.on_timeout(next, &t, &mut out) == Some(ClientEvent::Timeout) {
                assert_eq!(next - t0, Duration::from_secs(32));
                break;
            }
            fires.push((next - t0).as_millis() as u64);
        }
        assert_eq!(fires, [500, 1500, 3500, 7500, 15500, 31500]);
    }

    #[test]
    fn rfc3261_17_1_1_3_ict_acks_non_2xx_itself_and_timer_d() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut tx = InviteClient::start(t0, flow(Transport::Udp), invite(), &t, &mut out);
        out.clear();
        assert!(tx.on_response(t0, response(491), &t, &mut out).is_some());
        let ack = Request::parse(&out[0].data).unwrap();
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.cseq().unwrap().seq, 7);
        assert_eq!(ack.top_via().unwrap().branch(), Some("z9hG4bKict1"));
        assert_eq!(ack.to_header().unwrap().tag(), Some("r"));
        assert!(ack.headers.get(&HeaderName::Route).is_some());
        out.clear();
        assert!(tx.on_response(t0, response(491), &t, &mut out).is_none());
        assert_eq!(
            out.len(),
            1,
            "retransmitted final response gets the ACK again"
        );
        assert_eq!(tx.next_timeout(), Some(t0 + Duration::from_secs(32)));
        tx.on_timeout(t0 + Duration::from_secs(32), &t, &mut out);
        assert!(tx.is_terminated());
    }

    #[test]
    fn rfc6026_7_2_ict_accepted_passes_2xx_retransmissions_until_timer_m() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut tx = InviteClient::start(t0, flow(Transport::Tcp), invite(), &t, &mut out);
        assert!(tx.on_response(t0, response(200), &t, &mut out).is_some());
        assert_eq!(tx.state(), IctState::Accepted);
        assert!(tx.on_response(t0, response(200), &t, &mut out).is_some());
        tx.on_timeout(t0 + t.t1x64(), &t, &mut out);
        assert!(tx.is_terminated());
    }
}
