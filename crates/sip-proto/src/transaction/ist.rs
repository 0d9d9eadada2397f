//! INVITE server transaction (RFC 3261 17.2.1, RFC 6026 7.1).

use super::{Flow, Transmit};
use crate::timer::{TimerKind, TimerTable, Timers};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IstState {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

#[derive(Debug)]
pub struct InviteServer {
    state: IstState,
    flow: Flow,
    timers: TimerTable,
    /// Last response sent, for retransmission.
    last: Option<Vec<u8>>,
    g_interval: Duration,
}

/// Reported when Timer H fires: the ACK for our non-2xx never came (RFC 3261 17.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckTimeout;

impl InviteServer {
    pub fn new(flow: Flow) -> Self {
        InviteServer {
            state: IstState::Proceeding,
            flow,
            timers: TimerTable::default(),
            last: None,
            g_interval: Duration::ZERO,
        }
    }

    pub fn state(&self) -> IstState {
        self.state
    }

    pub fn flow(&self) -> Flow {
        self.flow
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// The INVITE arrived again: resend the last provisional (Proceeding) or final
    /// (Completed) response; absorb in Confirmed and Accepted (RFC 6026 7.1).
    pub fn on_retransmit(&mut self, out: &mut Vec<Transmit>) {
        if matches!(self.state, IstState::Proceeding | IstState::Completed) {
            if let Some(last) = &self.last {
                out.push(Transmit {
                    flow: self.flow,
                    data: last.clone(),
                });
            }
        }
    }

    /// The TU sends a response. 1xx keeps Proceeding; 2xx moves to Accepted (Timer L);
    /// 3xx-6xx to Completed (Timers G and H). In Accepted, further 2xx (the TU's
    /// retransmissions, 13.3.1.4) pass straight through.
    pub fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        data: Vec<u8>,
        t: &Timers,
        out: &mut Vec<Transmit>,
    ) {
        match self.state {
            IstState::Proceeding => {
                out.push(Transmit {
                    flow: self.flow,
                    data: data.clone(),
                });
                self.last = Some(data);
                if (200..300).contains(&status) {
                    // Accepted absorbs INVITE retransmissions; the TU resends the 2xx.
                    self.last = None;
                    self.state = IstState::Accepted;
                    self.timers.set(TimerKind::L, now + t.t1x64());
                } else if status >= 300 {
                    self.state = IstState::Completed;
                    if !self.flow.transport.is_reliable() {
                        self.g_interval = t.t1;
                        self.timers.set(TimerKind::G, now + t.t1);
                    }
                    self.timers.set(TimerKind::H, now + t.t1x64());
                }
            }
            IstState::Accepted if (200..300).contains(&status) => {
                out.push(Transmit {
                    flow: self.flow,
                    data,
                });
            }
            _ => {}
        }
    }

    /// ACK for our non-2xx final response (17.2.1): stop retransmitting, wait Timer I.
    pub fn on_ack(&mut self, now: Instant, t: &Timers) {
        if self.state == IstState::Completed {
            self.state = IstState::Confirmed;
            self.timers.stop(TimerKind::G);
            self.timers.stop(TimerKind::H);
            let wait = if self.flow.transport.is_reliable() {
                Duration::ZERO
            } else {
                t.t4
            };
            self.timers.set(TimerKind::I, now + wait);
        }
    }

    /// Fire expired timers. Returns `Some(AckTimeout)` when Timer H fired.
    pub fn on_timeout(
        &mut self,
        now: Instant,
        t: &Timers,
        out: &mut Vec<Transmit>,
    ) -> Option<AckTimeout> {
        let mut result = None;
        while let Some(kind) = self.timers.pop_expired(now) {
            match kind {
                TimerKind::G if self.state == IstState::Completed => {
                    if let Some(last) = &self.last {
                        out.push(Transmit {
                            flow: self.flow,
                            data: last.clone(),
                        });
                    }
                    self.g_interval = (self.g_interval * 2).min(t.t2);
                    self.timers.set(TimerKind::G, now + self.g_interval);
                }
                TimerKind::H if self.state == IstState::Completed => {
                    self.terminate();
                    result = Some(AckTimeout);
                }
                TimerKind::I | TimerKind::L => self.terminate(),
                _ => {}
            }
        }
        result
    }

    pub fn is_terminated(&self) -> bool {
        self.state == IstState::Terminated
    }

    fn terminate(&mut self) {
        self.state = IstState::Terminated;
        self.timers.stop_all();
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::test_flow as flow;
    use crate::transaction::Transport;

    #[test]
    fn rfc3261_17_2_1_ist_retransmits_final_response_with_timer_g_until_h() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut tx = InviteServer::new(flow(Transport::Udp));
        let mut out = Vec::new();
        tx.send_response(t0, 486, b"486".to_vec(), &t, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(tx.state(), IstState::Completed);
        // G fires at T1, 2T1, 4T1, then every T2 (RFC 3261 17.2.1).
        for fire_ms in [500u64, 1500, 3500, 7500, 11500, 15500] {
            let at = t0 + Duration::from_millis(fire_ms);
            out.clear();
            tx.on_timeout(at - Duration::from_millis(1), &t, &mut out);
            assert!(out.is_empty(), "nothing before {fire_ms} ms");
            tx.on_timeout(at, &t, &mut out);
            assert_eq!(out.len(), 1, "retransmission at {fire_ms} ms");
            assert_eq!(out[0].data, b"486");
        }
        // Timer H at 64*T1 ends the transaction and reports the missing ACK.
        let h = tx.timers.get(TimerKind::H).unwrap();
        assert_eq!(h - t0, Duration::from_secs(32));
        let r = tx.on_timeout(h, &t, &mut out);
        assert_eq!(r, Some(AckTimeout));
        assert!(tx.is_terminated());
    }

    #[test]
    fn rfc3261_17_2_1_ist_ack_stops_retransmissions_then_timer_i() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut tx = InviteServer::new(flow(Transport::Udp));
        let mut out = Vec::new();
        tx.send_response(t0, 487, b"487".to_vec(), &t, &mut out);
        tx.on_ack(t0 + Duration::from_millis(100), &t);
        assert_eq!(tx.state(), IstState::Confirmed);
        assert_eq!(
            tx.next_timeout(),
            Some(t0 + Duration::from_millis(100) + t.t4)
        );
        out.clear();
        tx.on_retransmit(&mut out);
        assert!(out.is_empty(), "Confirmed absorbs retransmitted INVITEs");
        tx.on_timeout(t0 + Duration::from_secs(6), &t, &mut out);
        assert!(tx.is_terminated());
        assert!(out.is_empty());
    }

    #[test]
    fn rfc3261_17_2_1_ist_reliable_transport_has_no_timer_g_and_zero_timer_i() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut tx = InviteServer::new(flow(Transport::Tcp));
        let mut out = Vec::new();
        tx.send_response(t0, 603, b"603".to_vec(), &t, &mut out);
        assert_eq!(tx.timers.get(TimerKind::G), None);
        assert_eq!(tx.next_timeout(), Some(t0 + t.t1x64()));
        tx.on_ack(t0, &t);
        tx.on_timeout(t0, &t, &mut out);
        assert!(tx.is_terminated());
    }

    #[test]
    fn rfc3261_17_2_1_ist_proceeding_resends_last_provisional() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut tx = InviteServer::new(flow(Transport::Udp));
        let mut out = Vec::new();
        tx.on_retransmit(&mut out);
        assert!(out.is_empty());
        tx.send_response(t0, 100, b"100".to_vec(), &t, &mut out);
        tx.send_response(t0, 180, b"180".to_vec(), &t, &mut out);
        out.clear();
        tx.on_retransmit(&mut out);
        assert_eq!(out[0].data, b"180");
    }

    #[test]
    fn rfc6026_7_1_ist_accepted_absorbs_invites_passes_2xx_and_ends_on_timer_l() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut tx = InviteServer::new(flow(Transport::Udp));
        let mut out = Vec::new();
        tx.send_response(t0, 200, b"200".to_vec(), &t, &mut out);
        assert_eq!(tx.state(), IstState::Accepted);
        out.clear();
        tx.on_retransmit(&mut out);
        assert!(out.is_empty());
        tx.send_response(t0 + t.t1, 200, b"200".to_vec(), &t, &mut out);
        assert_eq!(out.len(), 1, "2xx retransmission by the TU passes through");
        assert_eq!(tx.next_timeout(), Some(t0 + t.t1x64()));
        tx.on_timeout(t0 + t.t1x64(), &t, &mut out);
        assert!(tx.is_terminated());
    }
}
