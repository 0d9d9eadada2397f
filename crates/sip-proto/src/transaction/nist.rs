//! Non-INVITE server transaction (RFC 3261 17.2.2).

use super::{Flow, Transmit};
use crate::timer::{TimerKind, TimerTable, Timers};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NistState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct NonInviteServer {
    state: NistState,
    flow: Flow,
    timers: TimerTable,
    last: Option<Vec<u8>>,
}

impl NonInviteServer {
    pub fn new(flow: Flow) -> Self {
        NonInviteServer {
            state: NistState::Trying,
            flow,
            timers: TimerTable::default(),
            last: None,
        }
    }

    pub fn state(&self) -> NistState {
        self.state
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// A retransmitted request: absorbed in Trying, answered with the last response otherwise.
    pub fn on_retransmit(&mut self, out: &mut Vec<Transmit>) {
        if matches!(self.state, NistState::Proceeding | NistState::Completed) {
            if let Some(last) = &self.last {
                out.push(Transmit {
                    flow: self.flow,
                    data: last.clone(),
                });
            }
        }
    }

    /// The TU responds: 1xx -> Proceeding, final -> Completed with Timer J (64*T1 on UDP,
    /// zero on reliable transports). Responses after the final one are not sent.
    pub fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        data: Vec<u8>,
        t: &Timers,
        out: &mut Vec<Transmit>,
    ) {
        if !matches!(self.state, NistState::Trying | NistState::Proceeding) {
            return;
        }
        out.push(Transmit {
            flow: self.flow,
            data: data.clone(),
        });
        self.last = Some(data);
        if status < 200 {
            self.state = NistState::Proceeding;
        } else {
            self.state = NistState::Completed;
            let wait = if self.flow.transport.is_reliable() {
                Duration::ZERO
            } else {
                t.t1x64()
            };
            self.timers.set(TimerKind::J, now + wait);
        }
    }

    pub fn on_timeout(&mut self, now: Instant) {
        while let Some(kind) = self.timers.pop_expired(now) {
            if kind == TimerKind::J {
                self.state = NistState::Terminated;
                self.last = None;
            }
        }
    }

    pub fn is_terminated(&self) -> bool {
        self.state == NistState::Terminated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::Transport;

    fn flow(transport: Transport) -> Flow {
        Flow {
            transport,
            local: "127.0.0.1:5060".parse().unwrap(),
            remote: "[::1]:5070".parse().unwrap(),
        }
    }

    #[test]
    fn rfc3261_17_2_2_nist_trying_absorbs_then_completed_resends_final() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut tx = NonInviteServer::new(flow(Transport::Udp));
        let mut out = Vec::new();
        tx.on_retransmit(&mut out);
        assert!(out.is_empty(), "Trying absorbs retransmissions");
        tx.send_response(t0, 200, b"200".to_vec(), &t, &mut out);
        assert_eq!(tx.state(), NistState::Completed);
        out.clear();
        tx.on_retransmit(&mut out);
        assert_eq!(out[0].data, b"200");
        tx.send_response(t0, 500, b"500".to_vec(), &t, &mut out);
        assert_eq!(out.len(), 1, "no second final response");
    }

    #[test]
    fn rfc3261_17_2_2_nist_timer_j_is_64_t1_on_udp_and_zero_on_tcp() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut udp = NonInviteServer::new(flow(Transport::Udp));
        udp.send_response(t0, 200, b"200".to_vec(), &t, &mut out);
        assert_eq!(udp.next_timeout(), Some(t0 + Duration::from_secs(32)));
        udp.on_timeout(t0 + Duration::from_millis(31_999));
        assert!(!udp.is_terminated());
        udp.on_timeout(t0 + Duration::from_secs(32));
        assert!(udp.is_terminated());
        let mut tcp = NonInviteServer::new(flow(Transport::Tcp));
        tcp.send_response(t0, 200, b"200".to_vec(), &t, &mut out);
        tcp.on_timeout(t0);
        assert!(tcp.is_terminated());
    }

    #[test]
    fn rfc3261_17_2_2_nist_proceeding_resends_provisional() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut tx = NonInviteServer::new(flow(Transport::Udp));
        let mut out = Vec::new();
        tx.send_response(t0, 100, b"100".to_vec(), &t, &mut out);
        out.clear();
        tx.on_retransmit(&mut out);
        assert_eq!(out[0].data, b"100");
    }
}
