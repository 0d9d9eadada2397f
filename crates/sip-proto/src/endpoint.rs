//! The UAS core: routes messages to transactions and calls, applies RFC 3261 8.2 request
//! checks, and runs the call flow of RFC 3261 13/15 with RFC 4028 session timers.

use crate::auth::Verdict;
use crate::config::{DenyAction, EndpointConfig, ALLOW, SUPPORTED};
use crate::dialog::{Dialog, DialogId};
use crate::ratelimit::{Admit, Limiter};
use crate::rng::Rng;
use crate::sdp::{self, Direction, LocalMedia, Negotiated, SessionDescription};
use crate::timer::{TimerKey, TimerTable};
use crate::transaction::{
    ClientEvent, Flow, InviteClient, InviteServer, NonInviteClient, NonInviteServer, Transmit,
    Transport,
};
use sip_msg::salvage::Salvaged;
use sip_msg::{
    HeaderName, Message, Method, ParseError, Refresher, Request, Response, SipHeaders, Uri,
    BRANCH_COOKIE,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Our handle for a call (one INVITE dialog).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

/// A new call for the application to answer, ring or reject.
#[derive(Debug, Clone)]
pub struct IncomingCall {
    pub call: CallHandle,
    pub call_id: String,
    pub from: String,
    pub to: String,
    pub p_asserted_identity: Option<String>,
    pub flow: Flow,
    /// `None` for a late-offer INVITE (we offer in the 200, the answer comes in the ACK).
    pub negotiated: Option<Negotiated>,
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    RemoteBye,
    LocalBye(String),
    Cancelled,
    /// No ACK for our 2xx within 64*T1 (RFC 3261 13.3.1.4).
    AckTimeout,
    /// No refresh before the session interval ran out (RFC 4028 10).
    SessionExpired,
    /// Our session refresh failed with 408/481 or timed out (RFC 4028 10).
    RefreshFailed,
    Rejected(u16),
}

/// What the endpoint tells the application.
#[derive(Debug, Clone)]
pub enum Event {
    IncomingCall(IncomingCall),
    /// The ACK for our 2xx arrived; media negotiated (for late offers, from the ACK).
    CallConfirmed {
        call: CallHandle,
        negotiated: Option<Negotiated>,
    },
    /// re-INVITE/UPDATE changed the remote media: address, codec or direction (hold).
    MediaUpdate {
        call: CallHandle,
        negotiated: Negotiated,
    },
    /// DTMF by SIP INFO (application/dtmf-relay or application/dtmf).
    Dtmf {
        call: CallHandle,
        digit: char,
        duration_ms: u32,
    },
    CallEnded {
        call: CallHandle,
        reason: EndReason,
    },
}

/// Live object counts (for leak tests and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub calls: usize,
    pub dialogs: usize,
    pub server_transactions: usize,
    pub client_transactions: usize,
    pub scheduled_timers: usize,
    pub malformed: u64,
    pub stray_responses: u64,
    /// Messages from sources outside the allow-list.
    pub denied: u64,
    /// INVITEs with wrong credentials (RFC 3261 22).
    pub auth_failures: u64,
    /// Messages dropped because their source exceeded its rate.
    pub rate_limited: u64,
    /// Messages dropped because their source is banned, and bans imposed.
    pub banned_drops: u64,
    pub bans: u64,
    /// Sources with rate-limit state.
    pub tracked_sources: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ServerKey {
    branch: String,
    sent_by: String,
    method: String,
}

/// Requests merged by a forking proxy upstream (RFC 3261 8.2.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MergeKey {
    from_tag: String,
    call_id: String,
    cseq: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    Server(ServerKey),
    Client(String),
    Call(CallHandle),
}

enum ServerTx {
    Invite(InviteServer),
    NonInvite(NonInviteServer),
}

struct ServerEntry {
    tx: ServerTx,
    scheduled: Option<Instant>,
    call: Option<CallHandle>,
    merge: Option<MergeKey>,
}

enum ClientTx {
    Invite(Box<InviteClient>),
    NonInvite(Box<NonInviteClient>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Bye,
    Refresh,
}

struct ClientEntry {
    tx: ClientTx,
    scheduled: Option<Instant>,
    call: Option<CallHandle>,
    purpose: Purpose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallTimer {
    /// 2xx retransmission (RFC 3261 13.3.1.4).
    Retransmit2xx,
    /// 64*T1 without ACK.
    AckTimeout,
    /// We are the refresher: refresh at half the interval (RFC 4028 10).
    Refresh,
    /// The peer refreshes: BYE if nothing came by then (RFC 4028 10).
    Expire,
}

impl TimerKey for CallTimer {
    const ALL: &'static [Self] = &[
        CallTimer::Retransmit2xx,
        CallTimer::AckTimeout,
        CallTimer::Refresh,
        CallTimer::Expire,
    ];
    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// INVITE received, waiting for the application.
    Offered,
    /// 2xx sent, waiting for its ACK.
    Answered,
    Confirmed,
}

struct Pending2xx {
    data: Vec<u8>,
    cseq: u32,
    interval: Duration,
    /// We offered in the 2xx; the answer comes in the ACK.
    late_offer: bool,
}

struct Call {
    state: CallState,
    invite: Request,
    invite_key: ServerKey,
    dialog: Dialog,
    offer: Option<SessionDescription>,
    negotiated: Option<Negotiated>,
    local: Option<LocalMedia>,
    sdp_id: u64,
    sdp_version: u64,
    last_sdp: Option<String>,
    pending_2xx: Option<Pending2xx>,
    timers: TimerTable<CallTimer>,
    scheduled: Option<Instant>,
    /// Session interval and whether we refresh.
    session: Option<(u32, bool)>,
    refresh_in_flight: bool,
    bye_after_ack: Option<String>,
    peer_allows_update: bool,
}

/// The sans-IO SIP user agent server.
pub struct Endpoint {
    cfg: EndpointConfig,
    rng: Rng,
    server_tx: HashMap<ServerKey, ServerEntry>,
    merged: HashMap<MergeKey, ServerKey>,
    client_tx: HashMap<String, ClientEntry>,
    calls: HashMap<CallHandle, Call>,
    dialogs: HashMap<DialogId, CallHandle>,
    timers: BinaryHeap<Reverse<(Instant, Owner)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    out: Vec<Transmit>,
    next_call: u64,
    draining: bool,
    malformed: u64,
    stray_responses: u64,
    denied: u64,
    auth_failures: u64,
    /// Clock origin for nonce timestamps (the first instant we were given).
    epoch: Option<Instant>,
    limiter: Limiter,
}

impl Endpoint {
    pub fn new(cfg: EndpointConfig) -> Self {
        let limiter = Limiter::new(cfg.rate_limit);
        Endpoint {
            rng: Rng::new(cfg.seed),
            cfg,
            server_tx: HashMap::new(),
            merged: HashMap::new(),
            client_tx: HashMap::new(),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            timers: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            out: Vec::new(),
            next_call: 1,
            draining: false,
            malformed: 0,
            stray_responses: 0,
            denied: 0,
            auth_failures: 0,
            epoch: None,
            limiter,
        }
    }

    pub fn config(&self) -> &EndpointConfig {
        &self.cfg
    }

    /// Stop taking calls: new INVITEs and OPTIONS get 503 with Retry-After.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    pub fn stats(&self) -> Stats {
        Stats {
            calls: self.calls.len(),
            dialogs: self.dialogs.len(),
            server_transactions: self.server_tx.len(),
            client_transactions: self.client_tx.len(),
            scheduled_timers: self.timers.len(),
            malformed: self.malformed,
            stray_responses: self.stray_responses,
            denied: self.denied,
            auth_failures: self.auth_failures,
            rate_limited: self.limiter.rate_limited,
            banned_drops: self.limiter.banned_drops,
            bans: self.limiter.bans,
            tracked_sources: self.limiter.tracked(),
        }
    }

    /// Return memory after a load peak: hash maps and queues keep their peak capacity until
    /// told otherwise. Cheap when nothing is oversized; returns whether anything shrank.
    /// Also forgets rate-limit state of quiet sources.
    pub fn shrink(&mut self, now: Instant) -> bool {
        self.limiter.forget_idle(now);
        fn oversized(len: usize, cap: usize) -> bool {
            cap > 256 && len * 4 < cap
        }
        let mut shrank = false;
        macro_rules! shrink {
            ($($field:ident),*) => {$(
                if oversized(self.$field.len(), self.$field.capacity()) {
                    self.$field.shrink_to_fit();
                    shrank = true;
                }
            )*};
        }
        shrink!(server_tx, merged, client_tx, calls, dialogs, timers, transmits, events, out);
        shrank
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Earliest deadline; may be early (a stale entry), never late.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// One datagram or one stream frame (cut with [`sip_msg::frame_stream`]) from `flow`.
    pub fn handle_input(&mut self, now: Instant, flow: Flow, data: &[u8]) {
        if data
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
        {
            // RFC 5626 4.4.1: a CRLFCRLF ping on a stream gets a CRLF pong; UDP keep-alives are
            // ignored.
            if flow.transport.is_reliable() && data.windows(4).any(|w| w == b"\r\n\r\n") {
                self.transmits.push_back(Transmit {
                    flow,
                    data: b"\r\n".to_vec(),
                });
            }
            return;
        }
        if self.limiter.admit(flow.remote.ip(), now) != Admit::Yes {
            return;
        }
        if !self.cfg.access.allows(flow.remote.ip()) {
            self.on_denied(flow, data);
            self.flush_out();
            return;
        }
        match Message::parse(data) {
            Ok(Message::Request(req)) => self.on_request(now, flow, req),
            Ok(Message::Response(resp)) => self.on_response(now, resp),
            Err(e) => self.on_malformed(flow, data, &e),
        }
        self.flush_out();
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, owner))) = self.timers.pop() else {
                break;
            };
            match owner {
                Owner::Server(key) => self.server_timeout(now, at, key),
                Owner::Client(branch) => self.client_timeout(now, at, branch),
                Owner::Call(h) => self.call_timeout(now, at, h),
            }
        }
        self.flush_out();
    }

    fn flush_out(&mut self) {
        self.transmits.extend(self.out.drain(..));
    }

    // ----- application commands -----

    /// Send 180 Ringing (with our tag, so an early dialog exists).
    pub fn ring(&mut self, now: Instant, call: CallHandle) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if c.state != CallState::Offered {
            return;
        }
        let resp = self.dialog_response(c, &c.invite, 180, "Ringing");
        let key = c.invite_key.clone();
        self.respond(now, &key, resp);
        self.flush_out();
    }

    /// Answer with 200 OK carrying our SDP (an answer, or an offer for a late-offer INVITE).
    pub fn answer(&mut self, now: Instant, call: CallHandle, media: LocalMedia) -> bool {
        let Some(mut c) = self.calls.remove(&call) else {
            return false;
        };
        if c.state != CallState::Offered {
            self.calls.insert(call, c);
            return false;
        }
        let body = self.local_sdp(&mut c, &media, None);
        c.local = Some(media);
        let mut resp = self.dialog_response(&c, &c.invite, 200, "OK");
        if let Some((secs, we_refresh)) = c.session {
            resp.headers.push(
                HeaderName::SessionExpires,
                session_expires_value(secs, we_refresh),
            );
            if c.invite.has_tag(&HeaderName::Supported, "timer") {
                resp.headers.push(HeaderName::Require, "timer");
            }
        }
        resp.set_body("application/sdp", body.into_bytes());
        let data = resp.to_bytes();
        let cseq = c.invite.cseq().map(|s| s.seq).unwrap_or(0);
        c.pending_2xx = Some(Pending2xx {
            data,
            cseq,
            interval: self.cfg.timers.t1,
            late_offer: c.offer.is_none(),
        });
        c.state = CallState::Answered;
        self.arm_2xx(now, &mut c);
        self.arm_session(now, &mut c);
        let key = c.invite_key.clone();
        self.calls.insert(call, c);
        self.respond(now, &key, resp);
        self.schedule(Owner::Call(call), now);
        self.flush_out();
        true
    }

    /// Refuse an unanswered call with a final response.
    pub fn reject(&mut self, now: Instant, call: CallHandle, status: u16, reason: &str) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if c.state != CallState::Offered {
            return;
        }
        let mut resp = self.dialog_response(c, &c.invite, status, reason);
        if status == 503 {
            resp.headers
                .push(HeaderName::RetryAfter, self.cfg.retry_after.to_string());
        }
        let key = c.invite_key.clone();
        self.respond(now, &key, resp);
        self.end_call(call, EndReason::Rejected(status));
        self.flush_out();
    }

    /// Hang up: BYE for an established call (after the ACK, RFC 3261 15), 480 before answer.
    pub fn hangup(&mut self, now: Instant, call: CallHandle, reason: &str) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        match c.state {
            CallState::Offered => self.reject(now, call, 480, "Temporarily Unavailable"),
            CallState::Answered => c.bye_after_ack = Some(reason.to_string()),
            CallState::Confirmed => {
                self.send_bye(now, call, reason);
                self.end_call(call, EndReason::LocalBye(reason.to_string()));
            }
        }
        self.flush_out();
    }

    // ----- inbound -----

    /// A source outside the allow-list: 403 to requests (statelessly, nothing is kept), or
    /// silence when configured to drop.
    fn on_denied(&mut self, flow: Flow, data: &[u8]) {
        self.denied += 1;
        if self.cfg.access.on_deny == DenyAction::Drop {
            return;
        }
        let Some(s) = Salvaged::scan(data) else {
            return;
        };
        let tag = self.rng.token();
        if let Some(bytes) = s.response(403, "Forbidden", &tag, &[]) {
            self.out.push(Transmit { flow, data: bytes });
        }
    }

    fn on_malformed(&mut self, flow: Flow, data: &[u8], e: &ParseError) {
        self.malformed += 1;
        let Some(s) = Salvaged::scan(data) else {
            return;
        };
        let (status, reason) = match e {
            ParseError::UnsupportedVersion(_) => (505, "Version Not Supported".to_string()),
            ParseError::CSeqMethodMismatch { method, .. }
                if matches!(Method::from_token(method), Method::Extension(_)) =>
            {
                (501, "Not Implemented".to_string())
            }
            other => (400, other.to_string()),
        };
        let tag = self.rng.token();
        let extra: &[(&str, &str)] = if status == 501 {
            &[("Allow", ALLOW)]
        } else {
            &[]
        };
        if let Some(bytes) = s.response(status, &reason, &tag, extra) {
            self.out.push(Transmit { flow, data: bytes });
        }
    }

    fn on_request(&mut self, now: Instant, flow: Flow, mut req: Request) {
        if flow.transport.is_reliable() && req.headers.get(&HeaderName::ContentLength).is_none() {
            let resp = Response::for_request(
                &req,
                400,
                "Content-Length required on stream transports (RFC 3261 18.3)",
            );
            self.send_stateless(flow, &req, resp);
            return;
        }
        fix_top_via(&mut req, flow);
        let Some(key) = server_key(&req) else { return };
        if req.method == Method::Ack {
            if let Some(entry) = self.server_tx.get_mut(&key) {
                if let ServerTx::Invite(ist) = &mut entry.tx {
                    ist.on_ack(now, &self.cfg.timers);
                }
                self.schedule(Owner::Server(key), now);
            } else {
                self.on_ack_2xx(now, &req);
            }
            return;
        }
        if let Some(entry) = self.server_tx.get_mut(&key) {
            match &mut entry.tx {
                ServerTx::Invite(t) => t.on_retransmit(&mut self.out),
                ServerTx::NonInvite(t) => t.on_retransmit(&mut self.out),
            }
            return;
        }
        // A new request: its own server transaction (RFC 3261 17.2.3).
        let merge = merge_key(&req);
        let tx = if req.method == Method::Invite {
            ServerTx::Invite(InviteServer::new(response_flow(&req, flow)))
        } else {
            ServerTx::NonInvite(NonInviteServer::new(response_flow(&req, flow)))
        };
        if let Some(m) = &merge {
            if let Some(other) = self.merged.get(m) {
                if *other != key {
                    self.insert_server(key.clone(), tx, None);
                    let resp = self.plain_response(&req, 482, "Loop Detected");
                    self.respond(now, &key, resp);
                    return;
                }
            }
        }
        self.insert_server(key.clone(), tx, merge);
        if let Some(resp) = self.check_request(&req, flow) {
            self.respond(now, &key, resp);
            return;
        }
        if req.method == Method::Cancel {
            self.on_cancel(now, &key, &req);
            return;
        }
        let in_dialog = req.to_header().and_then(|t| t.tag().map(str::to_string));
        match in_dialog {
            Some(local_tag) => self.on_in_dialog(now, &key, req, local_tag),
            None => match req.method {
                Method::Invite => self.on_invite(now, &key, flow, req),
                Method::Options => {
                    let resp = if self.draining {
                        let mut r = self.plain_response(&req, 503, "Service Unavailable");
                        r.headers
                            .push(HeaderName::RetryAfter, self.cfg.retry_after.to_string());
                        r
                    } else {
                        self.options_response(&req)
                    };
                    self.respond(now, &key, resp);
                }
                _ => {
                    let resp = self.plain_response(&req, 481, "Call/Transaction Does Not Exist");
                    self.respond(now, &key, resp);
                }
            },
        }
    }

    /// RFC 3261 8.2.1-8.2.3 checks in order; `Some(response)` rejects the request.
    fn check_request(&mut self, req: &Request, flow: Flow) -> Option<Response> {
        match &req.method {
            Method::Extension(_) => {
                let mut r = self.plain_response(req, 501, "Not Implemented");
                r.headers.push(HeaderName::Allow, ALLOW);
                return Some(r);
            }
            Method::Register
            | Method::Subscribe
            | Method::Notify
            | Method::Refer
            | Method::Message
            | Method::Publish
            | Method::Prack => {
                let mut r = self.plain_response(req, 405, "Method Not Allowed");
                r.headers.push(HeaderName::Allow, ALLOW);
                return Some(r);
            }
            _ => {}
        }
        if !matches!(req.uri, Uri::Sip(_)) {
            return Some(self.plain_response(req, 416, "Unsupported URI Scheme"));
        }
        // A sips: Request-URI demands TLS on every hop up to us (RFC 3261 26.2.2; RFC 5630
        // removed the last-hop exception). Over UDP or TCP we do not serve the scheme: 416 as
        // 8.2.2.1 says for a scheme the UAS will not take, and no dialog is made.
        if req.uri.as_sip().is_some_and(|u| u.secure) && !flow.transport.is_secure() {
            let mut r = self.plain_response(req, 416, "Unsupported URI Scheme");
            r.headers.push(
                HeaderName::Warning,
                format!(
                    "399 switchboard \"sips: needs TLS, this request came over {}\"",
                    flow.transport.as_via()
                ),
            );
            return Some(r);
        }
        // We are a B2BUA: a request that would be forwarded on needs hops left. OPTIONS with
        // Max-Forwards 0 is answered (RFC 3261 11), so trunks can probe us.
        if req.max_forwards() == Some(0) && req.method != Method::Options {
            return Some(self.plain_response(req, 483, "Too Many Hops"));
        }
        if req.method != Method::Cancel {
            let unsupported: Vec<String> = req
                .tags(&HeaderName::Require)
                .into_iter()
                .filter(|t| !t.eq_ignore_ascii_case("timer"))
                .collect();
            if !unsupported.is_empty() {
                let mut r = self.plain_response(req, 420, "Bad Extension");
                r.headers
                    .push(HeaderName::Unsupported, unsupported.join(", "));
                return Some(r);
            }
        }
        if matches!(req.method, Method::Invite | Method::Update) && !req.body.is_empty() {
            let sdp = req
                .content_type()
                .is_some_and(|ct| ct.is("application", "sdp"));
            let encoded = req
                .headers
                .get(&HeaderName::ContentEncoding)
                .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
            if !sdp || encoded {
                let mut r = self.plain_response(req, 415, "Unsupported Media Type");
                r.headers.push(HeaderName::Accept, "application/sdp");
                r.headers.push(HeaderName::AcceptEncoding, "identity");
                return Some(r);
            }
        }
        if req.method == Method::Invite && req.headers.get(&HeaderName::Accept).is_some() {
            let ok = req.headers.list(&HeaderName::Accept).iter().any(|a| {
                let a = a
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                a == "application/sdp" || a == "application/*" || a == "*/*"
            });
            if !ok {
                let mut r = self.plain_response(req, 406, "Not Acceptable");
                r.headers.push(HeaderName::Accept, "application/sdp");
                return Some(r);
            }
        }
        None
    }

    fn on_invite(&mut self, now: Instant, key: &ServerKey, flow: Flow, req: Request) {
        if let Some(challenge) = self.authenticate(now, flow.remote.ip(), &req) {
            self.respond(now, key, challenge);
            return;
        }
        let at_limit = self.cfg.max_calls > 0 && self.calls.len() >= self.cfg.max_calls;
        if self.draining || at_limit {
            let mut r = self.plain_response(&req, 503, "Service Unavailable");
            r.headers
                .push(HeaderName::RetryAfter, self.cfg.retry_after.to_string());
            self.respond(now, key, r);
            return;
        }
        let session = match self.session_for(&req) {
            Ok(s) => s,
            Err(resp) => {
                self.respond(now, key, *resp);
                return;
            }
        };
        let (offer, negotiated) = match self.read_offer(&req) {
            Ok(x) => x,
            Err(resp) => {
                self.respond(now, key, *resp);
                return;
            }
        };
        let trying = Response::for_request(&req, 100, "Trying");
        self.respond(now, key, trying);
        let local_tag = self.rng.token();
        let Some(dialog) = Dialog::from_invite(&req, local_tag, flow) else {
            return;
        };
        let handle = CallHandle(self.next_call);
        self.next_call += 1;
        let info = IncomingCall {
            call: handle,
            call_id: dialog.id.call_id.clone(),
            from: dialog.remote_party.clone(),
            to: dialog.local_party.clone(),
            p_asserted_identity: req
                .headers
                .get(&HeaderName::PAssertedIdentity)
                .map(str::to_string),
            flow,
            negotiated: negotiated.clone(),
        };
        let peer_allows_update = req.has_tag(&HeaderName::Allow, "UPDATE");
        self.dialogs.insert(dialog.id.clone(), handle);
        if let Some(entry) = self.server_tx.get_mut(key) {
            entry.call = Some(handle);
        }
        self.calls.insert(
            handle,
            Call {
                state: CallState::Offered,
                invite: req,
                invite_key: key.clone(),
                dialog,
                offer,
                negotiated,
                local: None,
                sdp_id: self.rng.next_u64() >> 1,
                sdp_version: 1,
                last_sdp: None,
                pending_2xx: None,
                timers: TimerTable::default(),
                scheduled: None,
                session,
                refresh_in_flight: false,
                bye_after_ack: None,
                peer_allows_update,
            },
        );
        self.events.push_back(Event::IncomingCall(info));
    }

    /// RFC 3261 22.2: `None` when the INVITE may proceed, else the 401 to send.
    fn authenticate(&mut self, now: Instant, source: IpAddr, req: &Request) -> Option<Response> {
        let auth = self.cfg.auth.as_ref()?;
        let epoch = *self.epoch.get_or_insert(now);
        let secs = now.saturating_duration_since(epoch).as_secs();
        let stale = match auth.verify(req, secs) {
            Verdict::Authorized { username } => {
                let trunk_ok = auth
                    .users
                    .iter()
                    .find(|u| u.username == username)
                    .is_some_and(|u| u.valid_from(source));
                if trunk_ok {
                    self.limiter.auth_succeeded(source);
                    return None;
                }
                // Right password from outside the trunk's networks: a stolen credential, or a
                // misconfigured SBC. No new challenge would help.
                self.auth_failures += 1;
                self.limiter.auth_failed(source, now);
                return Some(self.plain_response(req, 403, "Forbidden"));
            }
            Verdict::Missing => false,
            Verdict::Stale => true,
            Verdict::Invalid(_) => {
                self.auth_failures += 1;
                self.limiter.auth_failed(source, now);
                false
            }
        };
        let challenges = auth.challenges(secs, stale);
        let mut r = self.plain_response(req, 401, "Unauthorized");
        for c in challenges {
            r.headers.push(HeaderName::WwwAuthenticate, c);
        }
        Some(r)
    }

    /// Parse and negotiate an SDP offer, or the error response for it.
    #[allow(clippy::type_complexity)]
    fn read_offer(
        &mut self,
        req: &Request,
    ) -> Result<(Option<SessionDescription>, Option<Negotiated>), Box<Response>> {
        if req.body.is_empty() {
            return Ok((None, None));
        }
        let offer = match sdp::parse(&req.body) {
            Ok(o) => o,
            Err(e) => {
                let reason = format!("Bad SDP: {e}");
                return Err(Box::new(self.plain_response(req, 400, &reason)));
            }
        };
        match sdp::negotiate_srtp(&offer, &self.cfg.codecs, self.cfg.srtp) {
            Ok(n) => Ok((Some(offer), Some(n))),
            Err(e) => {
                let mut r = self.plain_response(req, 488, "Not Acceptable Here");
                // RFC 3261 20.43 warning codes: the profile (RTP/AVP vs RTP/SAVP) is the
                // transport protocol of the m= line (302); a=crypto is an attribute (306).
                let warning = match e {
                    sdp::SdpError::SrtpRequired => {
                        "302 switchboard \"Incompatible transport protocol: SRTP (RTP/SAVP) required\""
                    }
                    sdp::SdpError::SrtpNotEnabled => {
                        "302 switchboard \"Incompatible transport protocol: SRTP not enabled\""
                    }
                    sdp::SdpError::NoUsableCrypto => {
                        "306 switchboard \"Attribute not understood: no usable a=crypto\""
                    }
                    _ => "305 switchboard \"Incompatible media format\"",
                };
                r.headers.push(HeaderName::Warning, warning);
                Err(Box::new(r))
            }
        }
    }

    /// RFC 4028 9: decide the session interval and refresher for a request, or 422.
    #[allow(clippy::type_complexity)]
    fn session_for(&mut self, req: &Request) -> Result<Option<(u32, bool)>, Box<Response>> {
        let uac_supports = req.has_tag(&HeaderName::Supported, "timer")
            || req.has_tag(&HeaderName::Require, "timer");
        match req.session_expires() {
            Some(se) => {
                if se.seconds < self.cfg.min_se {
                    let mut r = self.plain_response(req, 422, "Session Interval Too Small");
                    r.headers
                        .push(HeaderName::MinSe, self.cfg.min_se.to_string());
                    return Err(Box::new(r));
                }
                let refresher = match (uac_supports, se.refresher) {
                    (false, _) => Refresher::Uas,
                    (true, Some(r)) => r,
                    (true, None) => Refresher::Uac,
                };
                Ok(Some((se.seconds, refresher == Refresher::Uas)))
            }
            None if uac_supports && self.cfg.session_expires > 0 => {
                let secs = self.cfg.session_expires.max(req.min_se().unwrap_or(0));
                Ok(Some((secs, false)))
            }
            None => Ok(None),
        }
    }

    /// RFC 3261 9.2: 481 without a matching INVITE transaction; otherwise 200, and 487 for the
    /// INVITE if it has no final response yet (after one, CANCEL changes nothing).
    fn on_cancel(&mut self, now: Instant, key: &ServerKey, req: &Request) {
        let invite_key = ServerKey {
            method: "INVITE".into(),
            ..key.clone()
        };
        let Some(entry) = self.server_tx.get(&invite_key) else {
            let r = self.plain_response(req, 481, "Call/Transaction Does Not Exist");
            self.respond(now, key, r);
            return;
        };
        let call = entry.call;
        let ok = self.plain_response(req, 200, "OK");
        self.respond(now, key, ok);
        let Some(call) = call.filter(|h| {
            self.calls
                .get(h)
                .is_some_and(|c| c.state == CallState::Offered)
        }) else {
            return;
        };
        if let Some(c) = self.calls.get(&call) {
            let r = self.dialog_response(c, &c.invite, 487, "Request Terminated");
            self.respond(now, &invite_key, r);
        }
        self.end_call(call, EndReason::Cancelled);
    }

    fn on_in_dialog(&mut self, now: Instant, key: &ServerKey, req: Request, local_tag: String) {
        let id = DialogId {
            call_id: req.call_id().unwrap_or("").to_string(),
            local_tag,
            remote_tag: req
                .from_header()
                .and_then(|f| f.tag().map(str::to_string))
                .unwrap_or_default(),
        };
        let Some(handle) = self.dialogs.get(&id).copied() else {
            let r = self.plain_response(&req, 481, "Call/Transaction Does Not Exist");
            self.respond(now, key, r);
            return;
        };
        let Some(mut c) = self.calls.remove(&handle) else {
            return;
        };
        let seq = req.cseq().map(|s| s.seq).unwrap_or(0);
        if seq <= c.dialog.remote_seq && c.dialog.remote_seq != 0 {
            // RFC 3261 12.2.2: out of order.
            let r = self.dialog_response(&c, &req, 500, "CSeq Out of Order");
            self.calls.insert(handle, c);
            self.respond(now, key, r);
            return;
        }
        c.dialog.remote_seq = seq;
        match req.method {
            Method::Bye => {
                let r = self.dialog_response(&c, &req, 200, "OK");
                let early = c.state == CallState::Offered;
                if early {
                    let r487 = self.dialog_response(&c, &c.invite, 487, "Request Terminated");
                    let ik = c.invite_key.clone();
                    self.respond(now, &ik, r487);
                }
                self.calls.insert(handle, c);
                self.respond(now, key, r);
                self.end_call(handle, EndReason::RemoteBye);
            }
            Method::Invite | Method::Update => self.on_offer_in_dialog(now, key, req, handle, c),
            Method::Info => {
                let (status, reason) = match dtmf_from_info(&req) {
                    Ok(Some((digit, duration_ms))) => {
                        self.events.push_back(Event::Dtmf {
                            call: handle,
                            digit,
                            duration_ms,
                        });
                        (200, "OK")
                    }
                    Ok(None) => (200, "OK"),
                    Err(()) => (415, "Unsupported Media Type"),
                };
                let mut r = self.dialog_response(&c, &req, status, reason);
                if status == 415 {
                    r.headers.push(
                        HeaderName::Accept,
                        "application/dtmf-relay, application/dtmf",
                    );
                }
                self.calls.insert(handle, c);
                self.respond(now, key, r);
            }
            _ => {
                let r = self.options_response(&req);
                self.calls.insert(handle, c);
                self.respond(now, key, r);
            }
        }
    }

    /// re-INVITE or UPDATE inside a dialog: hold/unhold, media change, session refresh.
    fn on_offer_in_dialog(
        &mut self,
        now: Instant,
        key: &ServerKey,
        req: Request,
        handle: CallHandle,
        mut c: Call,
    ) {
        let is_invite = req.method == Method::Invite;
        let reject = |this: &mut Self, c: Call, status: u16, reason: &str, retry: bool| {
            let mut r = this.dialog_response(&c, &req, status, reason);
            if retry {
                r.headers.push(HeaderName::RetryAfter, "1");
            }
            this.calls.insert(handle, c);
            this.respond(now, key, r);
        };
        if c.state == CallState::Offered && is_invite {
            return reject(self, c, 500, "Initial INVITE Pending", true);
        }
        if is_invite && c.pending_2xx.is_some() {
            // RFC 3261 14.2: our previous 2xx is not ACKed yet.
            return reject(self, c, 500, "Previous INVITE Pending", true);
        }
        if c.refresh_in_flight && is_invite {
            return reject(self, c, 491, "Request Pending", false);
        }
        let session = match self.session_for(&req) {
            Ok(s) => s,
            Err(r) => {
                self.calls.insert(handle, c);
                self.respond(now, key, *r);
                return;
            }
        };
        let mut changed = None;
        if !req.body.is_empty() {
            match self.read_offer(&req) {
                Ok((offer, Some(neg))) => {
                    if c.negotiated.as_ref() != Some(&neg) {
                        changed = Some(neg.clone());
                    }
                    c.offer = offer;
                    c.negotiated = Some(neg);
                }
                Ok(_) => {}
                Err(r) => {
                    self.calls.insert(handle, c);
                    self.respond(now, key, *r);
                    return;
                }
            }
        }
        if let Some(contact) = req.contact() {
            c.dialog.remote_target = contact.uri;
        }
        let mut r = self.dialog_response(&c, &req, 200, "OK");
        if let Some(media) = c.local.clone() {
            if !req.body.is_empty() || is_invite {
                let offer = if req.body.is_empty() {
                    None
                } else {
                    c.offer.clone()
                };
                let body = self.local_sdp(&mut c, &media, offer.as_ref());
                r.set_body("application/sdp", body.into_bytes());
            }
        }
        c.session = session.or(c.session);
        if let Some((secs, we_refresh)) = session {
            r.headers.push(
                HeaderName::SessionExpires,
                session_expires_value(secs, we_refresh),
            );
            if req.has_tag(&HeaderName::Supported, "timer") {
                r.headers.push(HeaderName::Require, "timer");
            }
        }
        self.arm_session(now, &mut c);
        if is_invite {
            c.pending_2xx = Some(Pending2xx {
                data: r.to_bytes(),
                cseq: req.cseq().map(|s| s.seq).unwrap_or(0),
                interval: self.cfg.timers.t1,
                late_offer: req.body.is_empty(),
            });
            self.arm_2xx(now, &mut c);
        }
        self.calls.insert(handle, c);
        self.respond(now, key, r);
        self.schedule(Owner::Call(handle), now);
        if let Some(neg) = changed {
            self.events.push_back(Event::MediaUpdate {
                call: handle,
                negotiated: neg,
            });
        }
    }

    fn on_ack_2xx(&mut self, now: Instant, req: &Request) {
        let id = DialogId {
            call_id: req.call_id().unwrap_or("").to_string(),
            local_tag: req
                .to_header()
                .and_then(|t| t.tag().map(str::to_string))
                .unwrap_or_default(),
            remote_tag: req
                .from_header()
                .and_then(|f| f.tag().map(str::to_string))
                .unwrap_or_default(),
        };
        let Some(handle) = self.dialogs.get(&id).copied() else {
            return;
        };
        let Some(c) = self.calls.get_mut(&handle) else {
            return;
        };
        let seq = req.cseq().map(|s| s.seq).unwrap_or(0);
        let Some(p) = c.pending_2xx.take_if(|p| p.cseq == seq) else {
            return;
        };
        c.timers.stop(CallTimer::Retransmit2xx);
        c.timers.stop(CallTimer::AckTimeout);
        let mut neg_update = None;
        if p.late_offer && !req.body.is_empty() {
            if let Ok(answer) = sdp::parse(&req.body) {
                if let Ok(n) = sdp::negotiate_srtp(&answer, &self.cfg.codecs, self.cfg.srtp) {
                    c.negotiated = Some(n.clone());
                    neg_update = Some(n);
                }
            }
        }
        if c.state == CallState::Answered {
            c.state = CallState::Confirmed;
            let negotiated = c.negotiated.clone();
            let bye = c.bye_after_ack.take();
            self.events.push_back(Event::CallConfirmed {
                call: handle,
                negotiated,
            });
            if let Some(reason) = bye {
                self.send_bye(now, handle, &reason);
                self.end_call(handle, EndReason::LocalBye(reason));
                return;
            }
        } else if let Some(n) = neg_update {
            self.events.push_back(Event::MediaUpdate {
                call: handle,
                negotiated: n,
            });
        }
        self.schedule(Owner::Call(handle), now);
    }

    fn on_response(&mut self, now: Instant, resp: Response) {
        let Some(branch) = resp.top_via().and_then(|v| v.branch().map(str::to_string)) else {
            self.stray_responses += 1;
            return;
        };
        let Some(entry) = self.client_tx.get_mut(&branch) else {
            self.stray_responses += 1;
            return;
        };
        let t = self.cfg.timers;
        let ev = match &mut entry.tx {
            ClientTx::Invite(tx) => tx.on_response(now, resp, &t, &mut self.out),
            ClientTx::NonInvite(tx) => tx.on_response(now, resp, &t),
        };
        let (call, purpose) = (entry.call, entry.purpose);
        self.schedule(Owner::Client(branch), now);
        if let (Some(ev), Some(call)) = (ev, call) {
            self.client_event(now, call, purpose, ev);
        }
    }

    fn client_event(&mut self, now: Instant, call: CallHandle, purpose: Purpose, ev: ClientEvent) {
        if purpose != Purpose::Refresh {
            return;
        }
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        match ev {
            ClientEvent::Response(r) if r.status < 200 => {}
            ClientEvent::Response(r) if r.status < 300 => {
                c.refresh_in_flight = false;
                if r.cseq().is_some_and(|s| s.method == Method::Invite) {
                    self.send_ack_2xx(call, &r);
                }
                if let Some(c) = self.calls.get_mut(&call) {
                    if let Some(se) = r.session_expires() {
                        c.session = Some((se.seconds, se.refresher != Some(Refresher::Uac)));
                    }
                }
                if let Some(mut c) = self.calls.remove(&call) {
                    self.arm_session(now, &mut c);
                    self.calls.insert(call, c);
                }
                self.schedule(Owner::Call(call), now);
            }
            ClientEvent::Response(r) if matches!(r.status, 405 | 501) && c.peer_allows_update => {
                // UPDATE refused: refresh with re-INVITE instead.
                c.peer_allows_update = false;
                c.refresh_in_flight = false;
                c.timers.set(CallTimer::Refresh, now);
                self.schedule(Owner::Call(call), now);
            }
            ClientEvent::Response(r) if r.status == 491 => {
                c.refresh_in_flight = false;
                // RFC 3261 14.1: retry after 2.1-4 s as the owner of the Call-ID... we are not.
                let wait = Duration::from_millis(2100 + self.rng.next_u64() % 1900);
                c.timers.set(CallTimer::Refresh, now + wait);
                self.schedule(Owner::Call(call), now);
            }
            ClientEvent::Response(r) if matches!(r.status, 408 | 481) => {
                self.send_bye(now, call, "session refresh failed");
                self.end_call(call, EndReason::RefreshFailed);
            }
            ClientEvent::Response(_) => {
                c.refresh_in_flight = false;
            }
            ClientEvent::Timeout => {
                self.send_bye(now, call, "session refresh timed out");
                self.end_call(call, EndReason::RefreshFailed);
            }
        }
    }

    // ----- timers -----

    fn schedule(&mut self, owner: Owner, _now: Instant) {
        let (next, scheduled) = match &owner {
            Owner::Server(k) => match self.server_tx.get_mut(k) {
                Some(e) => {
                    let next = match &e.tx {
                        ServerTx::Invite(t) => t.next_timeout(),
                        ServerTx::NonInvite(t) => t.next_timeout(),
                    };
                    let terminated = match &e.tx {
                        ServerTx::Invite(t) => t.is_terminated(),
                        ServerTx::NonInvite(t) => t.is_terminated(),
                    };
                    if terminated {
                        let merge = e.merge.clone();
                        self.server_tx.remove(k);
                        if let Some(m) = merge {
                            if self.merged.get(&m) == Some(k) {
                                self.merged.remove(&m);
                            }
                        }
                        return;
                    }
                    (next, &mut e.scheduled)
                }
                None => return,
            },
            Owner::Client(b) => match self.client_tx.get_mut(b) {
                Some(e) => {
                    let (next, terminated) = match &e.tx {
                        ClientTx::Invite(t) => (t.next_timeout(), t.is_terminated()),
                        ClientTx::NonInvite(t) => (t.next_timeout(), t.is_terminated()),
                    };
                    if terminated {
                        self.client_tx.remove(b);
                        return;
                    }
                    (next, &mut e.scheduled)
                }
                None => return,
            },
            Owner::Call(h) => match self.calls.get_mut(h) {
                Some(c) => (c.timers.next_timeout(), &mut c.scheduled),
                None => return,
            },
        };
        if let Some(next) = next {
            if *scheduled != Some(next) {
                *scheduled = Some(next);
                self.timers.push(Reverse((next, owner)));
            }
        } else {
            *scheduled = None;
        }
    }

    fn server_timeout(&mut self, now: Instant, at: Instant, key: ServerKey) {
        let t = self.cfg.timers;
        let Some(e) = self.server_tx.get_mut(&key) else {
            return;
        };
        if e.scheduled != Some(at) {
            return;
        }
        e.scheduled = None;
        match &mut e.tx {
            ServerTx::Invite(tx) => {
                tx.on_timeout(now, &t, &mut self.out);
            }
            ServerTx::NonInvite(tx) => tx.on_timeout(now),
        }
        self.schedule(Owner::Server(key), now);
    }

    fn client_timeout(&mut self, now: Instant, at: Instant, branch: String) {
        let t = self.cfg.timers;
        let Some(e) = self.client_tx.get_mut(&branch) else {
            return;
        };
        if e.scheduled != Some(at) {
            return;
        }
        e.scheduled = None;
        let ev = match &mut e.tx {
            ClientTx::Invite(tx) => tx.on_timeout(now, &t, &mut self.out),
            ClientTx::NonInvite(tx) => tx.on_timeout(now, &t, &mut self.out),
        };
        let (call, purpose) = (e.call, e.purpose);
        self.schedule(Owner::Client(branch), now);
        if let (Some(ev), Some(call)) = (ev, call) {
            self.client_event(now, call, purpose, ev);
        }
    }

    fn call_timeout(&mut self, now: Instant, at: Instant, handle: CallHandle) {
        let t2 = self.cfg.timers.t2;
        let Some(c) = self.calls.get_mut(&handle) else {
            return;
        };
        if c.scheduled != Some(at) {
            return;
        }
        c.scheduled = None;
        while let Some(kind) = c.timers.pop_expired(now) {
            match kind {
                CallTimer::Retransmit2xx => {
                    if let Some(p) = &mut c.pending_2xx {
                        self.out.push(Transmit {
                            flow: c.dialog.flow_for_responses(),
                            data: p.data.clone(),
                        });
                        p.interval = (p.interval * 2).min(t2);
                        c.timers.set(CallTimer::Retransmit2xx, now + p.interval);
                    }
                }
                CallTimer::AckTimeout => {
                    c.pending_2xx = None;
                    c.timers.stop(CallTimer::Retransmit2xx);
                    self.send_bye(now, handle, "no ACK");
                    self.end_call(handle, EndReason::AckTimeout);
                    return;
                }
                CallTimer::Expire => {
                    self.send_bye(now, handle, "session timer expired");
                    self.end_call(handle, EndReason::SessionExpired);
                    return;
                }
                CallTimer::Refresh => {
                    self.send_refresh(now, handle);
                    break;
                }
            }
        }
        self.schedule(Owner::Call(handle), now);
    }

    fn arm_2xx(&self, now: Instant, c: &mut Call) {
        if !c.dialog.flow.transport.is_reliable() {
            c.timers
                .set(CallTimer::Retransmit2xx, now + self.cfg.timers.t1);
        }
        c.timers
            .set(CallTimer::AckTimeout, now + self.cfg.timers.t1x64());
    }

    /// RFC 4028 10: the refresher refreshes at half the interval; the other side sends BYE
    /// at the interval minus min(32 s, interval/3) if no refresh came.
    fn arm_session(&self, now: Instant, c: &mut Call) {
        c.timers.stop(CallTimer::Refresh);
        c.timers.stop(CallTimer::Expire);
        if let Some((secs, we_refresh)) = c.session {
            let secs = u64::from(secs);
            if we_refresh {
                c.timers
                    .set(CallTimer::Refresh, now + Duration::from_millis(secs * 500));
            } else {
                let margin = (secs / 3).min(32);
                c.timers
                    .set(CallTimer::Expire, now + Duration::from_secs(secs - margin));
            }
        }
    }

    // ----- outbound requests -----

    fn send_bye(&mut self, now: Instant, handle: CallHandle, reason: &str) {
        let Some(c) = self.calls.get_mut(&handle) else {
            return;
        };
        let (mut req, flow) = c.dialog.request(Method::Bye);
        req.headers.push(
            HeaderName::Reason,
            format!("SIP;cause=200;text=\"{}\"", reason.replace('"', "'")),
        );
        self.start_client(now, req, flow, None, Purpose::Bye);
    }

    fn send_ack_2xx(&mut self, handle: CallHandle, resp: &Response) {
        let Some(c) = self.calls.get_mut(&handle) else {
            return;
        };
        let seq = resp.cseq().map(|s| s.seq).unwrap_or(0);
        let (mut ack, flow) = c.dialog.request(Method::Ack);
        ack.headers.set(HeaderName::CSeq, format!("{seq} ACK"));
        ack.headers.push(HeaderName::ContentLength, "0");
        let branch = format!("{BRANCH_COOKIE}{}", self.rng.token());
        let via = self.via(flow, &branch);
        ack.headers.push_front(HeaderName::Via, via);
        self.out.push(Transmit {
            flow,
            data: ack.to_bytes(),
        });
    }

    /// Session refresh (RFC 4028 7.4/8): UPDATE if the peer allows it, else re-INVITE, with
    /// the SDP unchanged.
    fn send_refresh(&mut self, now: Instant, handle: CallHandle) {
        let Some(mut c) = self.calls.remove(&handle) else {
            return;
        };
        if c.refresh_in_flight {
            self.calls.insert(handle, c);
            return;
        }
        let method = if c.peer_allows_update {
            Method::Update
        } else {
            Method::Invite
        };
        let (mut req, flow) = c.dialog.request(method.clone());
        let contact = self.contact(flow, c.dialog.secure);
        req.headers.push(HeaderName::Contact, contact);
        if let Some((secs, _)) = c.session {
            req.headers
                .push(HeaderName::SessionExpires, format!("{secs};refresher=uas"));
        }
        req.headers.push(HeaderName::Supported, SUPPORTED);
        if method == Method::Invite {
            if let Some(sdp) = c.last_sdp.clone() {
                req.set_body("application/sdp", sdp.into_bytes());
            }
        }
        if req.headers.get(&HeaderName::ContentLength).is_none() {
            req.headers.push(HeaderName::ContentLength, "0");
        }
        c.refresh_in_flight = true;
        self.calls.insert(handle, c);
        self.start_client(now, req, flow, Some(handle), Purpose::Refresh);
    }

    fn start_client(
        &mut self,
        now: Instant,
        mut req: Request,
        mut flow: Flow,
        call: Option<CallHandle>,
        purpose: Purpose,
    ) {
        let branch = format!("{BRANCH_COOKIE}{}", self.rng.token());
        let t = self.cfg.timers;
        req.headers
            .push_front(HeaderName::Via, self.via(flow, &branch));
        req.headers
            .push(HeaderName::UserAgent, self.cfg.server.clone());
        if req.headers.get(&HeaderName::ContentLength).is_none() {
            req.headers.push(HeaderName::ContentLength, "0");
        }
        // RFC 3261 18.1.1: a request over 1300 octets on an unknown-MTU path goes over TCP.
        if flow.transport == Transport::Udp && req.to_bytes().len() > 1300 {
            flow.transport = Transport::Tcp;
            let via = self.via(flow, &branch);
            if let Some(v) = req.headers.first_mut(&HeaderName::Via) {
                *v = via;
            }
        }
        let tx = if req.method == Method::Invite {
            ClientTx::Invite(Box::new(InviteClient::start(
                now,
                flow,
                req,
                &t,
                &mut self.out,
            )))
        } else {
            ClientTx::NonInvite(Box::new(NonInviteClient::start(
                now,
                flow,
                req.to_bytes(),
                &t,
                &mut self.out,
            )))
        };
        self.client_tx.insert(
            branch.clone(),
            ClientEntry {
                tx,
                scheduled: None,
                call,
                purpose,
            },
        );
        self.schedule(Owner::Client(branch), now);
    }

    // ----- helpers -----

    fn insert_server(&mut self, key: ServerKey, tx: ServerTx, merge: Option<MergeKey>) {
        if let Some(m) = &merge {
            self.merged.insert(m.clone(), key.clone());
        }
        self.server_tx.insert(
            key,
            ServerEntry {
                tx,
                scheduled: None,
                call: None,
                merge,
            },
        );
    }

    fn respond(&mut self, now: Instant, key: &ServerKey, mut resp: Response) {
        self.add_server(&mut resp);
        let t = self.cfg.timers;
        let Some(entry) = self.server_tx.get_mut(key) else {
            return;
        };
        let data = resp.to_bytes();
        match &mut entry.tx {
            ServerTx::Invite(tx) => tx.send_response(now, resp.status, data, &t, &mut self.out),
            ServerTx::NonInvite(tx) => tx.send_response(now, resp.status, data, &t, &mut self.out),
        }
        self.schedule(Owner::Server(key.clone()), now);
    }

    fn add_server(&self, resp: &mut Response) {
        if resp.headers.get(&HeaderName::Server).is_none() {
            resp.headers
                .push(HeaderName::Server, self.cfg.server.clone());
        }
    }

    fn send_stateless(&mut self, flow: Flow, req: &Request, mut resp: Response) {
        if req.method == Method::Ack {
            return;
        }
        add_to_tag(&mut resp, &self.rng.token());
        self.out.push(Transmit {
            flow: response_flow(req, flow),
            data: resp.to_bytes(),
        });
    }

    /// A response outside any dialog: To gets a fresh tag (RFC 3261 8.2.6.2).
    fn plain_response(&mut self, req: &Request, status: u16, reason: &str) -> Response {
        let mut r = Response::for_request(req, status, reason);
        if status > 100 {
            add_to_tag(&mut r, &self.rng.token());
        }
        r
    }

    /// A response inside the call's dialog: our tag, Contact and Record-Route (12.1.1).
    fn dialog_response(&self, c: &Call, req: &Request, status: u16, reason: &str) -> Response {
        let mut r = Response::for_request(req, status, reason);
        if req.to_header().is_some_and(|t| t.tag().is_none()) {
            r.headers.set(HeaderName::To, c.dialog.local_with_tag());
        }
        if (101..300).contains(&status) && matches!(req.method, Method::Invite | Method::Update) {
            for rr in req.headers.get_all(&HeaderName::RecordRoute) {
                r.headers.push(HeaderName::RecordRoute, rr);
            }
            r.headers.push(
                HeaderName::Contact,
                self.contact(c.dialog.flow, c.dialog.secure),
            );
            r.headers.push(HeaderName::Allow, ALLOW);
            r.headers.push(HeaderName::Supported, SUPPORTED);
        }
        self.add_server(&mut r);
        r
    }

    fn options_response(&mut self, req: &Request) -> Response {
        let mut r = self.plain_response(req, 200, "OK");
        r.headers.push(HeaderName::Allow, ALLOW);
        r.headers.push(HeaderName::Accept, "application/sdp");
        r.headers.push(HeaderName::AcceptEncoding, "identity");
        r.headers.push(HeaderName::AcceptLanguage, "en");
        r.headers.push(HeaderName::Supported, SUPPORTED);
        r
    }

    fn advertised(&self, flow: Flow) -> SocketAddr {
        SocketAddr::new(
            self.cfg.public_ip.unwrap_or(flow.local.ip()),
            flow.local.port(),
        )
    }

    /// Our Contact on `flow` (RFC 3261 8.1.1.8, 12.1.1): `sips:` in a SIPS dialog over TLS,
    /// else `sip:` with the transport named when it is not UDP.
    fn contact(&self, flow: Flow, secure: bool) -> String {
        let addr = self.advertised(flow);
        let user = &self.cfg.contact_user;
        match flow.transport {
            Transport::Tls if secure => format!("<sips:{user}@{addr}>"),
            Transport::Tls => format!("<sip:{user}@{addr};transport=tls>"),
            Transport::Tcp => format!("<sip:{user}@{addr};transport=tcp>"),
            Transport::Udp => format!("<sip:{user}@{addr}>"),
        }
    }

    fn via(&self, flow: Flow, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={};rport",
            flow.transport.as_via(),
            self.advertised(flow),
            branch
        )
    }

    /// Our SDP for an answer (to `offer`, or the call's stored offer) or a fresh offer. The
    /// session version increases only when the description changes (RFC 3264 8).
    fn local_sdp(
        &self,
        c: &mut Call,
        media: &LocalMedia,
        offer: Option<&SessionDescription>,
    ) -> String {
        let mut media = media.clone();
        if let Some(ip) = self.cfg.public_ip {
            media.addr = ip;
        }
        // Our own offers are RTP/SAVP only when SRTP is required (no best-effort SRTP).
        let mut offer_media = media.clone();
        if self.cfg.srtp != sdp::SrtpPolicy::Required {
            offer_media.srtp_key = None;
        }
        let offer = offer.or(c.offer.as_ref()).cloned();
        let build = |version: u64, c: &Call| match (&offer, &c.negotiated) {
            (Some(o), Some(n)) => sdp::answer(o, n, &media, Direction::SendRecv, c.sdp_id, version),
            _ => sdp::offer(&offer_media, Direction::SendRecv, c.sdp_id, version),
        };
        let mut body = build(c.sdp_version, c);
        if let Some(last) = &c.last_sdp {
            if *last != body {
                c.sdp_version += 1;
                body = build(c.sdp_version, c);
            }
        }
        c.last_sdp = Some(body.clone());
        body
    }

    fn end_call(&mut self, handle: CallHandle, reason: EndReason) {
        if let Some(c) = self.calls.remove(&handle) {
            self.dialogs.remove(&c.dialog.id);
            if let Some(e) = self.server_tx.get_mut(&c.invite_key) {
                e.call = None;
            }
            self.events.push_back(Event::CallEnded {
                call: handle,
                reason,
            });
        }
    }
}

impl Dialog {
    /// Retransmitted 2xx responses follow the INVITE's response path.
    fn flow_for_responses(&self) -> Flow {
        self.flow
    }
}

fn session_expires_value(secs: u32, we_refresh: bool) -> String {
    format!(
        "{secs};refresher={}",
        if we_refresh { "uas" } else { "uac" }
    )
}

fn add_to_tag(resp: &mut Response, tag: &str) {
    if let Some(to) = resp.headers.first_mut(&HeaderName::To) {
        if !to.contains("tag=") {
            to.push_str(";tag=");
            to.push_str(tag);
        }
    }
}

/// RFC 3261 18.2.1 and RFC 3581 4: record the source address in the top Via.
fn fix_top_via(req: &mut Request, flow: Flow) {
    let Some(line) = req.headers.first_mut(&HeaderName::Via) else {
        return;
    };
    let Some(parts) = sip_msg_split_first(line) else {
        return;
    };
    let (first, rest) = parts;
    let Ok(mut via) = sip_msg::Via::parse(&first) else {
        return;
    };
    let src_ip = flow.remote.ip();
    let host_matches = via.host.ip() == Some(src_ip);
    let mut changed = false;
    if via.has_rport() {
        for p in &mut via.params {
            if p.name.eq_ignore_ascii_case("rport") && p.value.is_none() {
                p.value = Some(flow.remote.port().to_string());
                changed = true;
            }
        }
    }
    if (!host_matches || changed) && via.received().is_none() {
        via.params
            .push(sip_msg::Param::new("received", Some(src_ip.to_string())));
        changed = true;
    }
    if changed {
        *line = match rest {
            Some(rest) => format!("{via},{rest}"),
            None => via.to_string(),
        };
    }
}

/// Split a header line at the first top-level comma.
fn sip_msg_split_first(line: &str) -> Option<(String, Option<String>)> {
    let mut in_quote = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            ',' if !in_quote => {
                return Some((line[..i].to_string(), Some(line[i + 1..].to_string())))
            }
            _ => {}
        }
    }
    Some((line.to_string(), None))
}

/// Where responses to `req` go (RFC 3261 18.2.2, RFC 3581 4): the same connection on
/// streams; on UDP the received address and the rport (or sent-by) port.
fn response_flow(req: &Request, flow: Flow) -> Flow {
    if flow.transport.is_reliable() {
        return flow;
    }
    let Some(via) = req.top_via() else {
        return flow;
    };
    let ip = via
        .received()
        .and_then(|r| r.parse().ok())
        .or(via.host.ip())
        .unwrap_or(flow.remote.ip());
    let port = via
        .param("rport")
        .and_then(|p| p.value.as_deref())
        .and_then(|v| v.parse().ok())
        .or(via.port)
        .unwrap_or(5060);
    Flow {
        remote: SocketAddr::new(ip, port),
        ..flow
    }
}

/// RFC 3261 17.2.3 matching key; RFC 2543 peers without the magic cookie are matched by
/// Call-ID, From tag, CSeq number and sent-by.
fn server_key(req: &Request) -> Option<ServerKey> {
    let via = req.top_via()?;
    let default_port = if via.transport == "TLS" { 5061 } else { 5060 };
    let sent_by = format!("{}:{}", via.host, via.port.unwrap_or(default_port));
    let method = match req.method {
        Method::Ack => "INVITE".to_string(),
        ref m => m.to_string(),
    };
    let branch = match via.branch() {
        Some(b) if b.starts_with(BRANCH_COOKIE) => b.to_string(),
        _ => format!(
            "2543:{}:{}:{}",
            req.call_id()?,
            req.from_header()
                .and_then(|f| f.tag().map(str::to_string))
                .unwrap_or_default(),
            req.cseq()?.seq
        ),
    };
    Some(ServerKey {
        branch,
        sent_by,
        method,
    })
}

fn merge_key(req: &Request) -> Option<MergeKey> {
    if req.to_header()?.tag().is_some() || req.method == Method::Ack || req.method == Method::Cancel
    {
        return None;
    }
    Some(MergeKey {
        from_tag: req.from_header()?.tag()?.to_string(),
        call_id: req.call_id()?.to_string(),
        cseq: req.cseq()?.seq,
    })
}

/// DTMF from an INFO body: `Ok(None)` for an empty body, `Err` for a type we do not take.
fn dtmf_from_info(req: &Request) -> Result<Option<(char, u32)>, ()> {
    if req.body.is_empty() {
        return Ok(None);
    }
    let ct = req.content_type().ok_or(())?;
    let text = String::from_utf8_lossy(&req.body);
    let valid = |c: char| c.is_ascii_digit() || "*#ABCDabcd".contains(c);
    if ct.is("application", "dtmf-relay") {
        let mut digit = None;
        let mut duration = 250;
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "signal" => digit = v.trim().chars().next().filter(|c| valid(*c)),
                "duration" => duration = v.trim().parse().unwrap_or(250),
                _ => {}
            }
        }
        return Ok(digit.map(|d| (d.to_ascii_uppercase(), duration)));
    }
    if ct.is("application", "dtmf") {
        return Ok(text
            .trim()
            .chars()
            .next()
            .filter(|c| valid(*c))
            .map(|d| (d.to_ascii_uppercase(), 250)));
    }
    Err(())
}
