//! Non-INVITE client transaction (RFC 3261 17.1.2): our BYE, UPDATE and OPTIONS.

use super::{ClientEvent, Flow, Transmit};
use crate::timer::{TimerKind, TimerTable, Timers};
use sip_msg::Response;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NictState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct NonInviteClient {
    state: NictState,
    flow: Flow,
    timers: TimerTable,
    request: Vec<u8>,
    e_interval: Duration,
}

impl NonInviteClient {
    /// Send `request` and arm Timer E (unreliable only) and Timer F.
    pub fn start(
        now: Instant,
        flow: Flow,
        request: Vec<u8>,
        t: &Timers,
        out: &mut Vec<Transmit>,
    ) -> Self {
        out.push(Transmit {
            flow,
            data: request.clone(),
        });
        let mut timers = TimerTable::default();
        if !flow.transport.is_reliable() {
            timers.set(TimerKind::E, now + t.t1);
        }
        timers.set(TimerKind::F, now + t.t1x64());
        NonInviteClient {
            state: NictState::Trying,
            flow,
            timers,
            request,
            e_interval: t.t1,
        }
    }

    pub fn state(&self) -> NictState {
        self.state
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    pub fn on_response(&mut self, now: Instant, resp: Response, t: &Timers) -> Option<ClientEvent> {
        match self.state {
            NictState::Trying | NictState::Proceeding if resp.status < 200 => {
                self.state = NictState::Proceeding;
                Some(ClientEvent::Response(resp))
            }
            NictState::Trying | NictState::Proceeding => {
                self.state = NictState::Completed;
                self.timers.stop(TimerKind::E);
                self.timers.stop(TimerKind::F);
                let wait = if self.flow.transport.is_reliable() {
                    Duration::ZERO
                } else {
                    t.t4
                };
                self.timers.set(TimerKind::K, now + wait);
                Some(ClientEvent::Response(resp))
            }
            _ => None,
        }
    }

    /// Timer E retransmits (doubling to T2 in Trying, every T2 in Proceeding); F times out;
    /// K ends the Completed state.
    pub fn on_timeout(
        &mut self,
        now: Instant,
        t: &Timers,
        out: &mut Vec<Transmit>,
    ) -> Option<ClientEvent> {
        let mut result = None;
        while let Some(kind) = self.timers.pop_expired(now) {
            match kind {
                TimerKind::E => {
                    out.push(Transmit {
                        flow: self.flow,
                        data: self.request.clone(),
                    });
                    self.e_interval = match self.state {
                        NictState::Trying => (self.e_interval * 2).min(t.t2),
                        _ => t.t2,
                    };
                    self.timers.set(TimerKind::E, now + self.e_interval);
                }
                TimerKind::F => {
                    self.terminate();
                    result = Some(ClientEvent::Timeout);
                }
                TimerKind::K => self.terminate(),
                _ => {}
            }
        }
        result
    }

    pub fn is_terminated(&self) -> bool {
        self.state == NictState::Terminated
    }

    fn terminate(&mut self) {
        self.state = NictState::Terminated;
        self.timers.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::test_flow as flow;
    use crate::transaction::Transport;

    #[test]
    fn rfc3261_17_1_2_2_nict_timer_e_doubles_to_t2_and_timer_f_times_out() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut tx =
            NonInviteClient::start(t0, flow(Transport::Udp), b"BYE".to_vec(), &t, &mut out);
        assert_eq!(out.len(), 1);
        let mut fires = Vec::new();
        let mut now = t0;
        while let Some(next) = tx.next_timeout() {
            now = next;
            out.clear();
            if let Some(ev) = tx.on_timeout(now, &t, &mut out) {
                assert_eq!(ev, ClientEvent::Timeout);
                break;
            }
            assert_eq!(out.len(), 1);
            fires.push((now - t0).as_millis() as u64);
        }
        assert_eq!(&fires[..6], &[500, 1500, 3500, 7500, 11500, 15500]);
        assert_eq!(now - t0, Duration::from_secs(32), "Timer F = 64*T1");
        assert!(tx.is_terminated());
    }

    #[test]
    fn rfc3261_17_1_2_2_nict_proceeding_retransmits_every_t2() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut tx =
            NonInviteClient::start(t0, flow(Transport::Udp), b"BYE".to_vec(), &t, &mut out);
        let ev = tx.on_response(t0, Response::new(100, "Trying"), &t);
        assert!(matches!(ev, Some(ClientEvent::Response(_))));
        tx.on_timeout(t0 + t.t1, &t, &mut out);
        assert_eq!(tx.next_timeout(), Some(t0 + t.t1 + t.t2));
    }

    #[test]
    fn rfc3261_17_1_2_2_nict_final_response_then_timer_k() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut tx =
            NonInviteClient::start(t0, flow(Transport::Udp), b"BYE".to_vec(), &t, &mut out);
        assert!(tx.on_response(t0, Response::new(200, "OK"), &t).is_some());
        assert!(
            tx.on_response(t0, Response::new(200, "OK"), &t).is_none(),
            "retransmits absorbed"
        );
        assert_eq!(tx.next_timeout(), Some(t0 + t.t4));
        tx.on_timeout(t0 + t.t4, &t, &mut out);
        assert!(tx.is_terminated());
        let mut tcp =
            NonInviteClient::start(t0, flow(Transport::Tcp), b"BYE".to_vec(), &t, &mut out);
        assert_eq!(
            tcp.next_timeout(),
            Some(t0 + t.t1x64()),
            "no Timer E on TCP"
        );
        tcp.on_response(t0, Response::new(200, "OK"), &t);
        tcp.on_timeout(t0, &t, &mut out);
        assert!(
            tcp.is_terminated(),
            "Timer K is zero on reliable transports"
        );
    }
}
