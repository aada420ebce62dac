//! The proxy core for one call: RFC 3261 §16's response context, with
//! serial forking over the routing decision's targets.
//!
//! ```text
//!  INVITE ──> Call::new: 100 Trying upstream (§16.2); Max-Forwards 0: 483
//!             (§16.3 step 3); our Via already in it with the same routing
//!             inputs: 482 (§16.3 step 4); else leg 0
//!
//!  per leg:   start ──> Ringing ──2xx──────────> Answered (forwarded at once)
//!                        │  │ └─3xx-5xx, B, transport──> Failed ──> next leg
//!                        │  └─6xx──> Failed, no more legs (§16.7 step 5)
//!                        │ ring_seconds over (not the last leg):
//!                        │   provisional seen: CANCEL, next leg at once
//!                        │   none yet: wait for one (then CANCEL, next
//!                        │   leg) or for Timer B (408: next leg) (§9.1)
//!                        │ Timer C (§16.8): CANCEL (or 408 without a
//!                        │   provisional)
//!                        └ caller's CANCEL: CANCEL (deferred likewise),
//!                          no next leg, 487 upstream once legs are done
//!
//!  the call:  every leg finished, none answered ──> best response
//!             upstream (best.rs); done when every transaction ended
//! ```
//!
//! Rules, with their sources:
//!
//! - 1xx other than 100 are forwarded upstream (§16.7 step 5), except
//!   from a leg we are cancelling; each resets the leg's Timer C (§16.8).
//! - A 2xx is forwarded the moment it arrives, from any leg, at any time,
//!   retransmissions and late answers included, even after a non-2xx or
//!   a local 408 went upstream (§16.7 step 5, RFC 6026 §7). Other pending
//!   legs are then cancelled (§16.7 step 10). Nothing ever replaces it.
//! - Failover happens at once on any 3xx–5xx (the issue names 486, 408,
//!   480 and 5xx; a 404 or 403 from the phone's registrar also means the
//!   phone will not answer, and 3xx are not recursed on), on Timer B and
//!   on a transport error (§16.9).
//! - A 6xx stops forking: the RFC forbids new branches after one (§16.7
//!   step 5), so the forwarding number is not tried; the 6xx goes
//!   upstream (it outranks everything, §16.7 step 6).
//! - After the ring time, a leg is cancelled and the next one started
//!   without waiting for the 487: the caller hears the next phone sooner.
//!   The cancelled leg can still answer; its 2xx is forwarded and the
//!   newer leg is cancelled in turn.
//! - A CANCEL is never sent before a provisional response (§9.1); one that
//!   is wanted earlier waits for it, and Timer B ends the leg otherwise.
//!   After our CANCEL a leg gets 64*T1 to send its final response, then
//!   counts as not answered (§9.1).
//! - The caller's CANCEL (§16.10) gets 200 at once, retransmissions of it
//!   get the same 200 again; pending legs are cancelled and no new leg
//!   starts. The INVITE gets 487 when every leg has ended (a 2xx still
//!   wins: the caller then hangs up, §9.1). Once a final response went
//!   upstream a CANCEL changes nothing but is still answered 200.
//! - Locally made responses (100, 408, 482, 483, 487, 500, the 200 to a
//!   CANCEL) are built with `sip::write_response`. The 200 to a CANCEL
//!   gets its own To tag, not the 487's (§9.2 says SHOULD match; a
//!   stateless derivation cannot, and clients match on Via and CSeq).
//!
//! Memory: the Call keeps the received INVITE once, each live leg its
//! forwarded copy (dropped when its transaction ends), the latest response
//! the server transaction may resend and the best failure so far.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sip::diversion::{finish_history_dialed, finish_history_left, finish_history_target};
use crate::sip::hop::HopTransport;
use crate::sip::host::split_host_port;
use crate::sip::response_head::ResponseHead;
use crate::sip::via::TopVia;
use crate::sip::{Framing, Method, Request, Status, write_response};

use super::best::{Best, Choice, LocalFailure};
use super::branch::{self, Branch, BranchParts, LoopCheck};
use super::client_invite::{ClientEvent, ClientInvite};
use super::client_non_invite::ClientNonInvite;
use super::forward::{ForwardSpec, ViaSpec, build_cancel, forward_request, relay_response};
use super::server_invite::{ServerInvite, ServerInviteState};
use super::timers::Timers;
use super::transaction::{Action, earliest};

/// The transport a leg or the caller uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl From<HopTransport> for Transport {
    fn from(transport: HopTransport) -> Transport {
        match transport {
            HopTransport::Udp => Transport::Udp,
            HopTransport::Tcp => Transport::Tcp,
            HopTransport::Tls => Transport::Tls,
        }
    }
}

impl Transport {
    /// The Via token (§18).
    pub fn via_token(self) -> &'static [u8] {
        match self {
            Transport::Udp => b"UDP",
            Transport::Tcp => b"TCP",
            Transport::Tls => b"TLS",
        }
    }

    /// Reliable transports have no retransmission timers (§17).
    pub fn is_reliable(self) -> bool {
        self != Transport::Udp
    }
}

/// Settings shared by every call.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub timers: Timers,
    /// Our Via sent-by, `host[:port]`: responses come back there, and a
    /// request holding a Via with it has been here (loop detection).
    pub via_sent_by: Box<[u8]>,
    /// Our URI for Record-Route (without `;lr`); `None`: off the path.
    pub record_route: Option<Box<[u8]>>,
    /// The `Server` header of locally made responses (empty: none).
    pub server: Box<str>,
}

/// One target of the routing decision, in the order to try them.
#[derive(Debug, Clone)]
pub struct Target {
    /// The Request-URI of this leg.
    pub uri: Box<[u8]>,
    pub transport: Transport,
    /// How long it rings before the next target is tried; ignored on the
    /// last target, which rings until Timer C or the caller hangs up.
    pub ring: Duration,
    /// Whole header lines (CRLF-terminated) put on top of this leg's
    /// INVITE (§16.6 step 5).
    pub top_headers: Box<[u8]>,
    /// Whole header lines put last (History-Info entries, RFC 7044).
    pub bottom_headers: Box<[u8]>,
    /// A Diversion (RFC 5806) whose reason says why the previous leg
    /// failed: the caller gives the name-addr of the diverting number
    /// (`<sip:+18005550100@example.com>`), the call adds
    /// `;reason=...;counter=1` (`unconditional` on the first leg).
    pub diversion: Option<Box<[u8]>>,
    /// The dialed number's URI, for a `History-Info` (RFC 7044) that the
    /// call writes last: the dialed entry, one entry per earlier leg with
    /// the cause it was left for, and this leg's.
    pub history_dialed: Option<Box<[u8]>>,
    /// How many more servers the target has (RFC 3263 §4.3: DNS gave
    /// them, in order): a leg whose server stays silent for
    /// `Timers::server_silence` is sent to the next
    /// ([`Destination::NextServer`]).
    pub other_servers: u8,
}

/// Where the caller of the call sent the INVITE from.
#[derive(Debug, Clone, Copy)]
pub struct Upstream {
    pub source: SocketAddr,
    pub transport: Transport,
}

/// Where bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Back to whoever sent the INVITE (responses go by its Via, §18.2.2).
    Upstream,
    /// To target `i`'s next hop.
    Leg(usize),
    /// To target `i`'s next server (RFC 3263 §4.3), which is its next hop
    /// from now on: the one before stayed silent.
    NextServer(usize),
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: Destination,
    pub bytes: Vec<u8>,
}

/// Why a call could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("not a well-formed INVITE with a usable Via")]
    NotAnInvite,
    #[error("no target to forward to")]
    NoTargets,
    #[error("more than 255 targets")]
    TooManyTargets,
}

/// What became of a response given to [`Call::on_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFate {
    /// It belonged to this call and was handled.
    Handled,
    /// Not this call's (the branch is not one of its legs'): the driver
    /// forwards a 2xx of that kind statelessly (§16.7, RFC 6026 §7) and
    /// drops the rest.
    NotOurs,
    /// Unparsable: dropped.
    Malformed,
}

/// Why a leg was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// It rang for its ring time with no answer.
    RingTimeout,
    /// Timer C fired (§16.8).
    TimerC,
    /// The caller cancelled (§16.10).
    Caller,
    /// Another leg answered (§16.7 step 10).
    AnsweredElsewhere,
    /// A 6xx arrived (§16.7 step 5).
    GlobalFailure,
}

/// How a leg ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegOutcome {
    /// A 2xx.
    Answered(u16),
    /// A final 3xx–6xx from the next hop.
    Rejected(u16),
    /// No final response in time (Timer B or C, or after our CANCEL).
    NoAnswer,
    TransportError,
}

/// One leg, for call records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegSummary {
    pub target: usize,
    /// `None` while it is still pending.
    pub outcome: Option<LegOutcome>,
    /// From its INVITE to its final response, its CANCEL, or now.
    pub ring_time: Duration,
    pub cancelled: Option<CancelReason>,
}

/// The call, for call records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSummary {
    /// The first final response sent upstream.
    pub final_status: Option<u16>,
    /// The target whose 2xx went upstream first.
    pub answered_by: Option<usize>,
    pub cancelled_by_caller: bool,
    pub legs: Vec<LegSummary>,
}

#[derive(Debug)]
struct Leg {
    branch: Branch,
    invite: Option<ClientInvite>,
    cancel: Option<ClientNonInvite>,
    reliable: bool,
    started: Instant,
    /// When the leg's ring time is over (never on the last target).
    ring_deadline: Option<Instant>,
    timer_c: Option<Instant>,
    /// 64*T1 after our CANCEL: then stop waiting for its final (§9.1).
    cancel_guard: Option<Instant>,
    /// When its server has been silent too long and the target has
    /// another (RFC 3263 §4.3); cleared by any response.
    silence_deadline: Option<Instant>,
    /// The target's servers tried after the first.
    servers_tried: u8,
    /// The next INVITE sent goes to the target's next server.
    to_next_server: bool,
    provisional: bool,
    /// A CANCEL to send once a provisional arrives (§9.1).
    cancel_wanted: Option<CancelReason>,
    /// The CANCEL sent, and when (the end of its ringing).
    cancelled: Option<(CancelReason, Instant)>,
    outcome: Option<LegOutcome>,
    ended: Option<Instant>,
}

impl Leg {
    fn pending(&self) -> bool {
        self.outcome.is_none()
    }

    /// The SIP cause the call moved on from this leg for, as History-Info
    /// gives it (RFC 7044 §9.4, RFC 4458 §3): 408 for no answer (the ring
    /// time, Timer B or C), the final answer's status when one came, 503
    /// for a transport error (§16.9).
    fn left_for(&self) -> u16 {
        if matches!(
            self.cancelled,
            Some((CancelReason::RingTimeout | CancelReason::TimerC, _))
        ) {
            return 408;
        }
        match self.outcome {
            Some(LegOutcome::Answered(code) | LegOutcome::Rejected(code)) => code,
            Some(LegOutcome::TransportError) => 503,
            Some(LegOutcome::NoAnswer) | None => 408,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        earliest([
            self.invite.as_ref().and_then(ClientInvite::next_deadline),
            self.cancel
                .as_ref()
                .and_then(ClientNonInvite::next_deadline),
            self.ring_deadline,
            self.timer_c,
            self.cancel_guard,
            self.silence_deadline,
        ])
    }
}

/// One proxied call. See the module docs.
#[derive(Debug)]
pub struct Call {
    config: Arc<ProxyConfig>,
    /// The INVITE as received: parsed again when a leg or a local
    /// response needs it, so nothing borrows from it.
    /// Shared so that the first leg is built from `Call::new`'s own parse
    /// of it (one parse less per call).
    invite: Arc<[u8]>,
    upstream: Upstream,
    targets: Vec<Target>,
    legs: Vec<Leg>,
    server: ServerInvite,
    nonce: u64,
    loop_hash: u64,
    best: Best,
    answered_by: Option<usize>,
    caller_cancelled: bool,
    /// No more legs: a 2xx, a 6xx or the caller's CANCEL.
    stop_forking: bool,
    final_status: Option<u16>,
    /// The 200 to the caller's CANCEL, resent to its retransmissions.
    cancel_ok: Option<Vec<u8>>,
    out: VecDeque<Transmit>,
}

impl Call {
    /// Starts a call for `invite` (received from `upstream`), trying
    /// `targets` in order. `nonce` must differ between calls (a counter
    /// from a random start): it makes the branches unique. The 100 Trying
    /// and the first leg's INVITE are ready in [`Call::poll_transmit`].
    pub fn new(
        invite: Vec<u8>,
        upstream: Upstream,
        targets: Vec<Target>,
        config: Arc<ProxyConfig>,
        nonce: u64,
        now: Instant,
    ) -> Result<Call, CallError> {
        if targets.is_empty() {
            return Err(CallError::NoTargets);
        }
        // Leg numbers above are the stateless legs' (`branch::STREAM_LEG`).
        if targets.len() > usize::from(branch::STREAM_LEG) {
            return Err(CallError::TooManyTargets);
        }
        let invite: Arc<[u8]> = Arc::from(invite);
        let held = Arc::clone(&invite);
        let request = Request::parse(&held, Framing::Datagram)
            .filter(|r| r.method == Method::Invite && r.top_via.is_some())
            .ok_or(CallError::NotAnInvite)?;
        let (trying, max_forwards, check, loop_hash) = {
            if request.problem.is_some() {
                return Err(CallError::NotAnInvite);
            }
            let ours = split_host_port(&config.via_sent_by);
            // A missing port is the transport's default (§18.1: 5061 over
            // TLS, 5060 otherwise).
            let default_port = |via: &TopVia<'_>| {
                if via.transport.eq_ignore_ascii_case(b"TLS") {
                    5061
                } else {
                    5060
                }
            };
            let is_ours = |via: &TopVia<'_>| {
                ours.is_some_and(|(host, port)| {
                    via.host.eq_ignore_ascii_case(host)
                        && via.port.unwrap_or(default_port(via))
                            == port.unwrap_or(default_port(via))
                })
            };
            let check = branch::check_loop(&invite, &request, is_ours);
            let mut trying = Vec::new();
            write_response(
                &mut trying,
                &request,
                upstream.source,
                Status::new(100, "Trying"),
                &config.server,
                |_| {},
            );
            let loop_hash = branch::loop_hash(&invite, &request);
            (trying, request.max_forwards, check, loop_hash)
        };
        let server = ServerInvite::new(trying, upstream.transport.is_reliable(), config.timers);
        let mut call = Call {
            config,
            invite,
            upstream,
            // Exactly one leg per target, at most: no spare capacity.
            legs: Vec::with_capacity(targets.len()),
            targets,
            server,
            nonce,
            loop_hash,
            best: Best::default(),
            answered_by: None,
            caller_cancelled: false,
            stop_forking: false,
            final_status: None,
            cancel_ok: None,
            out: VecDeque::new(),
        };
        call.drain_server();
        if max_forwards == Some(0) {
            call.stop_forking = true;
            call.send_local_final(483, "Too Many Hops", now);
        } else if check == LoopCheck::Loop {
            call.stop_forking = true;
            call.send_local_final(482, "Loop Detected", now);
        } else {
            call.start_leg_from(now, b"unconditional", Some(&request));
            call.advance(now);
        }
        Ok(call)
    }

    /// The next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let next = self.out.pop_front();
        if next.is_none() && self.out.capacity() > 0 {
            // Drained: the queue's memory goes back until the next step.
            self.out = VecDeque::new();
        }
        next
    }

    /// When [`Call::on_timeout`] next wants to be called.
    pub fn poll_deadline(&self) -> Option<Instant> {
        earliest(
            std::iter::once(self.server.next_deadline()).chain(self.legs.iter().map(Leg::deadline)),
        )
    }

    /// Whether every transaction of the call has ended: drop it. A 2xx
    /// arriving later is the driver's to forward statelessly.
    pub fn is_done(&self) -> bool {
        self.server.state() == ServerInviteState::Terminated
            && self
                .legs
                .iter()
                .all(|leg| !leg.pending() && leg.invite.is_none() && leg.cancel.is_none())
    }

    /// The INVITE as received: the driver matches the caller's CANCEL,
    /// ACK and retransmissions to the call by its top Via (§17.2.3).
    pub fn invite(&self) -> &[u8] {
        &self.invite
    }

    /// The call's nonce: the driver finds the call of a response by it
    /// ([`branch::parse`] of the top Via's branch).
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// A response from a leg's next hop.
    pub fn on_response(&mut self, msg: &[u8], now: Instant) -> ResponseFate {
        let Ok(head) = ResponseHead::parse(msg, Framing::Datagram) else {
            return ResponseFate::Malformed;
        };
        self.on_response_head(msg, &head, now)
    }

    /// [`Call::on_response`] for a response whose head the caller has
    /// parsed already (the driver, to find the call).
    pub fn on_response_head(
        &mut self,
        msg: &[u8],
        head: &ResponseHead<'_>,
        now: Instant,
    ) -> ResponseFate {
        let Some(parts) = head.branch().and_then(branch::parse) else {
            return ResponseFate::NotOurs;
        };
        let i = usize::from(parts.leg);
        if parts.call_nonce != self.nonce
            || self
                .legs
                .get(i)
                .is_none_or(|leg| head.branch() != Some(leg.branch.as_bytes()))
        {
            return ResponseFate::NotOurs;
        }
        // Its server is alive: no next server for this leg.
        self.legs[i].silence_deadline = None;
        match head.cseq_method {
            Method::Invite => {
                if let Some(invite) = self.legs[i].invite.as_mut() {
                    invite.on_response(head, now);
                    self.drain_leg(i, Some((msg, head)), now);
                } else if (200..300).contains(&head.status) {
                    // Its transaction is over (Timer M): still forwarded.
                    self.forward_2xx(head.status, msg, head, now);
                }
            }
            Method::Cancel => {
                if let Some(cancel) = self.legs[i].cancel.as_mut() {
                    cancel.on_response(head.status, now);
                    self.drain_cancel(i);
                }
            }
            _ => return ResponseFate::NotOurs,
        }
        self.advance(now);
        ResponseFate::Handled
    }

    /// The caller's CANCEL for this INVITE (the driver matched it,
    /// §9.2: same branch, CSeq method CANCEL).
    pub fn on_cancel(&mut self, cancel: &[u8], now: Instant) {
        if let Some(ok) = &self.cancel_ok {
            // A retransmission: the same answer.
            self.out.push_back(Transmit {
                to: Destination::Upstream,
                bytes: ok.clone(),
            });
            return;
        }
        let Some(request) = Request::parse(cancel, Framing::Datagram) else {
            return;
        };
        if request.top_via.is_none() {
            return;
        }
        let mut ok = Vec::new();
        write_response(
            &mut ok,
            &request,
            self.upstream.source,
            Status::new(200, "OK"),
            &self.config.server,
            |_| {},
        );
        self.out.push_back(Transmit {
            to: Destination::Upstream,
            bytes: ok.clone(),
        });
        ok.shrink_to_fit();
        self.cancel_ok = Some(ok);
        if self.final_status.is_some() {
            return;
        }
        self.caller_gone(now);
    }

    /// A retransmission of the INVITE: the latest response again.
    pub fn on_invite_retransmission(&mut self) {
        self.server.on_request_retransmission();
        self.drain_server();
    }

    /// The caller's ACK for a non-2xx final response.
    pub fn on_ack(&mut self, now: Instant) {
        self.server.on_ack(now);
        self.drain_server();
    }

    /// The transport could not reach the caller: nobody is left to
    /// answer, so pending legs are cancelled.
    pub fn on_upstream_transport_error(&mut self, now: Instant) {
        self.server.on_transport_error();
        self.drain_server();
        if self.final_status.is_none() {
            self.caller_gone(now);
        }
    }

    /// The transport could not reach target `leg`'s next hop.
    pub fn on_leg_transport_error(&mut self, leg: usize, now: Instant) {
        if let Some(invite) = self.legs.get_mut(leg).and_then(|l| l.invite.as_mut()) {
            invite.on_transport_error();
            self.drain_leg(leg, None, now);
        }
        if let Some(cancel) = self.legs.get_mut(leg).and_then(|l| l.cancel.as_mut()) {
            cancel.on_transport_error();
            self.drain_cancel(leg);
        }
        self.advance(now);
    }

    /// Fires every timer due at `now`.
    pub fn on_timeout(&mut self, now: Instant) {
        self.server.on_timeout(now);
        self.drain_server();
        for i in 0..self.legs.len() {
            if let Some(invite) = self.legs[i].invite.as_mut() {
                invite.on_timeout(now);
                self.drain_leg(i, None, now);
            }
            if let Some(cancel) = self.legs[i].cancel.as_mut() {
                cancel.on_timeout(now);
                self.drain_cancel(i);
            }
            let leg = &mut self.legs[i];
            if leg.ring_deadline.is_some_and(|at| at <= now) {
                leg.ring_deadline = None;
                self.ring_over(i, now);
            }
            let leg = &mut self.legs[i];
            if leg.timer_c.is_some_and(|at| at <= now) {
                leg.timer_c = None;
                if leg.provisional {
                    self.cancel_leg(i, CancelReason::TimerC, now);
                } else {
                    // §16.8: as if a 408 came.
                    leg.invite = None;
                    self.leg_failed_locally(i, LocalFailure::NoAnswer, now);
                }
            }
            let leg = &mut self.legs[i];
            if leg.silence_deadline.is_some_and(|at| at <= now) {
                leg.silence_deadline = None;
                self.try_next_server(i, now);
            }
            let leg = &mut self.legs[i];
            if leg.cancel_guard.is_some_and(|at| at <= now) {
                leg.cancel_guard = None;
                if leg.pending() {
                    leg.invite = None;
                    self.leg_failed_locally(i, LocalFailure::NoAnswer, now);
                }
            }
        }
        self.advance(now);
    }

    /// The call's memory: its fixed parts and everything it holds on the
    /// heap (the INVITE, targets, live transactions' copies, the best
    /// failure, queued bytes). For the per-call memory metric and bound.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let targets: usize = self
            .targets
            .iter()
            .map(|t| {
                size_of::<Target>()
                    + t.uri.len()
                    + t.top_headers.len()
                    + t.bottom_headers.len()
                    + t.diversion.as_ref().map_or(0, |d| d.len())
            })
            .sum();
        let legs: usize = self
            .legs
            .iter()
            .map(|leg| {
                size_of::<Leg>()
                    + leg.invite.as_ref().map_or(0, ClientInvite::heap_bytes)
                    + leg.cancel.as_ref().map_or(0, ClientNonInvite::heap_bytes)
            })
            .sum();
        let queued: usize = self.out.iter().map(|t| t.bytes.capacity()).sum::<usize>()
            + self.out.capacity() * size_of::<Transmit>();
        size_of::<Call>()
            + self.invite.len()
            + targets
            + (self.legs.capacity() - self.legs.len()) * size_of::<Leg>()
            + legs
            + self.server.heap_bytes()
            + self.best.heap_bytes()
            + self.cancel_ok.as_ref().map_or(0, Vec::capacity)
            + queued
    }

    /// What happened, for call records.
    pub fn summary(&self, now: Instant) -> CallSummary {
        CallSummary {
            final_status: self.final_status,
            answered_by: self.answered_by,
            cancelled_by_caller: self.caller_cancelled,
            legs: self
                .legs
                .iter()
                .enumerate()
                .map(|(target, leg)| {
                    let end = leg
                        .ended
                        .into_iter()
                        .chain(leg.cancelled.map(|(_, at)| at))
                        .min()
                        .unwrap_or(now);
                    LegSummary {
                        target,
                        outcome: leg.outcome,
                        ring_time: end.saturating_duration_since(leg.started),
                        cancelled: leg.cancelled.map(|(why, _)| why),
                    }
                })
                .collect(),
        }
    }

    // ---- the core's decisions ----

    /// Starts the leg for the next target.
    fn start_leg(&mut self, now: Instant, diversion_reason: &[u8]) {
        let invite = Arc::clone(&self.invite);
        let request = Request::parse(&invite, Framing::Datagram);
        self.start_leg_from(now, diversion_reason, request.as_ref());
    }

    /// [`Call::start_leg`] with the INVITE parsed (`None`: it cannot be,
    /// and the leg fails).
    fn start_leg_from(
        &mut self,
        now: Instant,
        diversion_reason: &[u8],
        request: Option<&Request<'_>>,
    ) {
        let i = self.legs.len();
        let Some(target) = self.targets.get(i) else {
            return;
        };
        let branch = Branch::new(BranchParts {
            loop_hash: self.loop_hash,
            call_nonce: self.nonce,
            leg: u8::try_from(i).unwrap_or(u8::MAX),
        });
        let mut top = Vec::with_capacity(target.top_headers.len() + 96);
        if let Some(diversion) = &target.diversion {
            top.extend_from_slice(b"Diversion: ");
            top.extend_from_slice(diversion);
            top.extend_from_slice(b";reason=");
            top.extend_from_slice(diversion_reason);
            top.extend_from_slice(b";counter=1\r\n");
        }
        top.extend_from_slice(&target.top_headers);
        let mut bottom = target.bottom_headers.to_vec();
        if let Some(dialed) = &target.history_dialed {
            self.write_history(&mut bottom, dialed, &target.uri);
        }
        let mut bytes = Vec::with_capacity(self.invite.len() + 256 + top.len() + bottom.len());
        let built = request.is_some_and(|request| {
            let spec = ForwardSpec {
                target_uri: &target.uri,
                via: ViaSpec {
                    transport: target.transport.via_token(),
                    sent_by: &self.config.via_sent_by,
                },
                branch: &branch,
                record_route: self.config.record_route.as_deref(),
                top_headers: &top,
                bottom_headers: &bottom,
                received_from: Some(self.upstream.source),
                drop_top_route: false,
            };
            forward_request(&self.invite, request, &spec, &mut bytes).is_ok()
        });
        let reliable = target.transport.is_reliable();
        let last = i + 1 == self.targets.len();
        let timers = self.config.timers;
        self.legs.push(Leg {
            branch,
            invite: None,
            cancel: None,
            reliable,
            started: now,
            ring_deadline: (!last).then(|| now + target.ring),
            timer_c: Some(now + timers.timer_c),
            cancel_guard: None,
            silence_deadline: (target.other_servers > 0).then(|| now + timers.server_silence),
            servers_tried: 0,
            to_next_server: false,
            provisional: false,
            cancel_wanted: None,
            cancelled: None,
            outcome: None,
            ended: None,
        });
        if built {
            self.legs[i].invite = Some(ClientInvite::new(bytes, reliable, timers, now));
            self.drain_leg(i, None, now);
        } else {
            self.leg_failed_locally(i, LocalFailure::TransportError, now);
        }
    }

    /// The `History-Info` line of the leg about to start, to `target`
    /// (RFC 7044 §9.1): the dialed number (retargeted by this server,
    /// cause 302), each earlier leg with the cause it was left for
    /// (§9.4, RFC 4458's codes), then this one, all mapped (`mp`) from the
    /// dialed entry.
    fn write_history(&self, out: &mut Vec<u8>, dialed: &[u8], target: &[u8]) {
        out.extend_from_slice(b"History-Info: <");
        out.extend_from_slice(dialed);
        finish_history_dialed(out);
        for (j, leg) in self.legs.iter().enumerate() {
            let Some(left) = self.targets.get(j) else {
                continue;
            };
            out.extend_from_slice(b",<");
            out.extend_from_slice(&left.uri);
            finish_history_left(out, j + 1, leg.left_for());
        }
        out.extend_from_slice(b",<");
        out.extend_from_slice(target);
        finish_history_target(out, self.legs.len() + 1);
        out.extend_from_slice(b"\r\n");
    }

    /// Moves the call on: the next leg when the current one failed, the
    /// final response when nothing is left to try.
    fn advance(&mut self, now: Instant) {
        while self.final_status.is_none() {
            let Some(current) = self.legs.last() else {
                return;
            };
            let Some(outcome) = current.outcome else {
                return;
            };
            let more = self.legs.len() < self.targets.len();
            if more && !self.stop_forking && !self.caller_cancelled {
                let reason = diversion_reason(outcome, current.cancelled.map(|(why, _)| why));
                self.start_leg(now, reason);
                continue;
            }
            if self.legs.iter().any(Leg::pending) {
                return;
            }
            self.send_best_final(now);
        }
    }

    fn send_best_final(&mut self, now: Instant) {
        if self.caller_cancelled {
            self.send_local_final(487, "Request Terminated", now);
            return;
        }
        match self.best.choose() {
            Choice::Relay { status, bytes } => {
                self.final_status = Some(status);
                self.server.send_final(status, bytes, now);
                self.drain_server();
            }
            Choice::Local { status, reason } => self.send_local_final(status, reason, now),
        }
    }

    fn send_local_final(&mut self, status: u16, reason: &'static str, now: Instant) {
        let Some(request) = Request::parse(&self.invite, Framing::Datagram) else {
            return;
        };
        let mut bytes = Vec::new();
        write_response(
            &mut bytes,
            &request,
            self.upstream.source,
            Status::new(status, reason),
            &self.config.server,
            |_| {},
        );
        self.final_status = Some(status);
        self.server.send_final(status, bytes, now);
        self.drain_server();
    }

    /// The caller cancelled or vanished: no more legs, cancel the rest.
    fn caller_gone(&mut self, now: Instant) {
        self.caller_cancelled = true;
        self.stop_forking = true;
        for i in 0..self.legs.len() {
            self.cancel_leg(i, CancelReason::Caller, now);
        }
        self.advance(now);
    }

    /// Leg `i`'s server said nothing for `server_silence`: the same
    /// INVITE, as a new transaction (its timers from the start), goes to
    /// the target's next server (RFC 3263 §4.3), and the leg's ring time
    /// and Timer C start again, since nothing rang yet. Not after a
    /// CANCEL was wanted or the caller left.
    fn try_next_server(&mut self, i: usize, now: Instant) {
        let other_servers = self.targets.get(i).map_or(0, |t| t.other_servers);
        let ring = self.targets.get(i).map(|t| t.ring);
        let timers = self.config.timers;
        let leg = &mut self.legs[i];
        if !leg.pending()
            || leg.provisional
            || leg.cancel_wanted.is_some()
            || self.caller_cancelled
            || leg.servers_tried >= other_servers
        {
            return;
        }
        let Some(request) = leg.invite.as_ref().map(|tx| tx.request().to_vec()) else {
            return;
        };
        leg.servers_tried += 1;
        leg.to_next_server = true;
        leg.invite = Some(ClientInvite::new(request, leg.reliable, timers, now));
        if leg.ring_deadline.is_some() {
            leg.ring_deadline = ring.map(|ring| now + ring);
        }
        leg.timer_c = Some(now + timers.timer_c);
        leg.silence_deadline =
            (leg.servers_tried < other_servers).then(|| now + timers.server_silence);
        self.drain_leg(i, None, now);
    }

    /// The leg rang its time without an answer.
    fn ring_over(&mut self, i: usize, now: Instant) {
        if !self.legs[i].pending() || self.stop_forking {
            return;
        }
        self.cancel_leg(i, CancelReason::RingTimeout, now);
        if self.legs[i].cancelled.is_some() {
            // CANCEL sent: the next target rings now, not after the 487.
            self.next_leg_after_cancel(i, now);
        }
    }

    /// After leg `i` was cancelled for ringing too long, the next target.
    fn next_leg_after_cancel(&mut self, i: usize, now: Instant) {
        let is_current = i + 1 == self.legs.len();
        if is_current
            && self.legs.len() < self.targets.len()
            && !self.stop_forking
            && !self.caller_cancelled
            && self.final_status.is_none()
        {
            self.start_leg(now, b"no-answer");
        }
    }

    /// Sends a CANCEL on leg `i`, or notes it for when a provisional
    /// comes (§9.1).
    fn cancel_leg(&mut self, i: usize, why: CancelReason, now: Instant) {
        let leg = &mut self.legs[i];
        if !leg.pending() || leg.cancelled.is_some() {
            return;
        }
        if !leg.provisional {
            leg.cancel_wanted.get_or_insert(why);
            return;
        }
        let Some(cancel) = leg
            .invite
            .as_ref()
            .and_then(|tx| build_cancel(tx.request()).ok())
        else {
            return;
        };
        leg.cancel_wanted = None;
        leg.cancelled = Some((why, now));
        leg.ring_deadline = None;
        leg.timer_c = None;
        leg.cancel_guard = Some(now + self.config.timers.t1x64());
        leg.cancel = Some(ClientNonInvite::new(
            cancel,
            leg.reliable,
            self.config.timers,
            now,
        ));
        self.drain_cancel(i);
    }

    /// A response the leg's transaction passed up.
    fn leg_response(&mut self, i: usize, msg: &[u8], head: &ResponseHead<'_>, now: Instant) {
        let status = head.status;
        if status >= 200 && !head.more_vias {
            // §16.7 step 3: with no Via left, the response was meant for
            // this element and is never forwarded: the leg is over, and
            // as far as the caller goes, nobody answered on it.
            self.end_leg(i, LegOutcome::NoAnswer, now);
            self.best.offer_local(LocalFailure::NoAnswer);
            return;
        }
        match status {
            100..=199 => {
                let leg = &mut self.legs[i];
                leg.provisional = true;
                if status > 100 && leg.cancelled.is_none() {
                    // §16.8: a provisional other than 100 resets Timer C.
                    leg.timer_c = Some(now + self.config.timers.timer_c);
                }
                if let Some(why) = leg.cancel_wanted {
                    self.cancel_leg(i, why, now);
                    if why == CancelReason::RingTimeout {
                        self.next_leg_after_cancel(i, now);
                    }
                    return;
                }
                let leg = &self.legs[i];
                if status > 100
                    && leg.cancelled.is_none()
                    && head.more_vias
                    && self.final_status.is_none()
                {
                    let mut bytes = Vec::new();
                    relay_response(msg, head, &mut bytes);
                    self.server.send_provisional(bytes);
                    self.drain_server();
                }
            }
            200..=299 => {
                self.end_leg(i, LegOutcome::Answered(status), now);
                self.forward_2xx(status, msg, head, now);
                if self.answered_by.is_none() {
                    self.answered_by = Some(i);
                    self.stop_forking = true;
                    for other in 0..self.legs.len() {
                        self.cancel_leg(other, CancelReason::AnsweredElsewhere, now);
                    }
                }
            }
            _ => {
                let we_cancelled = self.legs[i].cancelled.is_some_and(|(why, _)| {
                    matches!(why, CancelReason::RingTimeout | CancelReason::TimerC)
                });
                self.end_leg(i, LegOutcome::Rejected(status), now);
                if we_cancelled && status == 487 {
                    // Our own CANCEL's doing: nobody answered.
                    self.best.offer_local(LocalFailure::NoAnswer);
                } else {
                    self.best.offer_response(status, || {
                        let mut bytes = Vec::new();
                        relay_response(msg, head, &mut bytes);
                        bytes
                    });
                }
                if status >= 600 {
                    self.stop_forking = true;
                    for other in 0..self.legs.len() {
                        self.cancel_leg(other, CancelReason::GlobalFailure, now);
                    }
                }
            }
        }
    }

    /// Sends a 2xx upstream, whatever the state: through the server
    /// transaction while it lives, statelessly after.
    fn forward_2xx(&mut self, status: u16, msg: &[u8], head: &ResponseHead<'_>, now: Instant) {
        if !head.more_vias {
            return;
        }
        let mut bytes = Vec::new();
        relay_response(msg, head, &mut bytes);
        self.final_status.get_or_insert(status);
        if self.server.state() == ServerInviteState::Terminated {
            self.out.push_back(Transmit {
                to: Destination::Upstream,
                bytes,
            });
        } else {
            self.server.send_final(status, bytes, now);
            self.drain_server();
        }
    }

    fn leg_failed_locally(&mut self, i: usize, failure: LocalFailure, now: Instant) {
        if !self.legs[i].pending() {
            return;
        }
        let outcome = match failure {
            LocalFailure::NoAnswer => LegOutcome::NoAnswer,
            LocalFailure::TransportError => LegOutcome::TransportError,
        };
        self.end_leg(i, outcome, now);
        self.best.offer_local(failure);
    }

    fn end_leg(&mut self, i: usize, outcome: LegOutcome, now: Instant) {
        let leg = &mut self.legs[i];
        if leg.outcome.is_none() {
            leg.outcome = Some(outcome);
            leg.ended = Some(now);
        }
        leg.ring_deadline = None;
        leg.timer_c = None;
        leg.cancel_guard = None;
        leg.cancel_wanted = None;
    }

    // ---- draining the transactions ----

    fn drain_server(&mut self) {
        while let Some(action) = self.server.poll_action() {
            if let Action::Transmit(bytes) = action {
                self.out.push_back(Transmit {
                    to: Destination::Upstream,
                    bytes,
                });
            }
            // NoAck and transport errors need nothing from the core: the
            // legs are already done or are cancelled by the driver's
            // `on_upstream_transport_error`.
        }
    }

    fn drain_cancel(&mut self, i: usize) {
        while let Some(action) = self.legs[i].cancel.as_mut().and_then(|c| c.poll_action()) {
            match action {
                Action::Transmit(bytes) => self.out.push_back(Transmit {
                    to: Destination::Leg(i),
                    bytes,
                }),
                // The CANCEL's own answer changes nothing: the INVITE's
                // final response (or the 64*T1 guard) ends the leg.
                Action::ToCore(_) => {}
                Action::Terminated(_) => self.legs[i].cancel = None,
            }
        }
    }

    fn drain_leg(&mut self, i: usize, response: Option<(&[u8], &ResponseHead<'_>)>, now: Instant) {
        while let Some(action) = self.legs[i].invite.as_mut().and_then(|c| c.poll_action()) {
            match action {
                Action::Transmit(bytes) => {
                    let to = if std::mem::take(&mut self.legs[i].to_next_server) {
                        Destination::NextServer(i)
                    } else {
                        Destination::Leg(i)
                    };
                    self.out.push_back(Transmit { to, bytes });
                }
                Action::ToCore(ClientEvent::Response(_)) => {
                    if let Some((msg, head)) = response {
                        self.leg_response(i, msg, head, now);
                    }
                }
                Action::ToCore(ClientEvent::Timeout) => {
                    self.leg_failed_locally(i, LocalFailure::NoAnswer, now)
                }
                Action::ToCore(ClientEvent::TransportError) => {
                    self.leg_failed_locally(i, LocalFailure::TransportError, now)
                }
                // The forwarded copy goes with it: a late 2xx is still
                // recognised by the leg's branch.
                Action::Terminated(_) => self.legs[i].invite = None,
            }
        }
    }
}

/// RFC 5806 §4's reason for the next leg's Diversion, from how the
/// previous one ended.
fn diversion_reason(outcome: LegOutcome, cancelled: Option<CancelReason>) -> &'static [u8] {
    if matches!(
        cancelled,
        Some(CancelReason::RingTimeout | CancelReason::TimerC)
    ) {
        return b"no-answer";
    }
    match outcome {
        LegOutcome::Rejected(486 | 600) => b"user-busy",
        LegOutcome::Rejected(408) | LegOutcome::NoAnswer => b"no-answer",
        LegOutcome::Rejected(404 | 410 | 480 | 500..=599) | LegOutcome::TransportError => {
            b"unavailable"
        }
        _ => b"unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:+18005550100@sb.example SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKcaller;rport\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:+16505550123@192.0.2.7>;tag=f1\r\n\
        To: <sip:+18005550100@sb.example>\r\n\
        Call-ID: c1@192.0.2.7\r\n\
        CSeq: 7 INVITE\r\n\
        Content-Length: 0\r\n\r\n";

    const RING: Duration = Duration::from_secs(20);

    fn config() -> Arc<ProxyConfig> {
        Arc::new(ProxyConfig {
            timers: Timers::default(),
            via_sent_by: b"10.0.0.1:5060".to_vec().into(),
            record_route: None,
            server: "switchboard".into(),
        })
    }

    fn target(n: usize, transport: Transport) -> Target {
        Target {
            uri: format!("sip:+1415555010{n}@10.0.0.9").into_bytes().into(),
            transport,
            ring: RING,
            top_headers: Box::default(),
            bottom_headers: Box::default(),
            diversion: (n > 0).then(|| b"<sip:+18005550100@sb.example>".to_vec().into()),
            history_dialed: None,
            other_servers: 0,
        }
    }

    struct Test {
        call: Call,
        t0: Instant,
        /// The latest request sent to each leg, by method.
        invites: Vec<Vec<u8>>,
        cancels: Vec<Option<Vec<u8>>>,
    }

    /// What one step sent, in order.
    #[derive(Debug, Default)]
    struct Sent {
        upstream: Vec<String>,
        legs: Vec<(usize, String)>,
        /// Legs sent on to their target's next server, in order.
        next_servers: Vec<usize>,
    }

    impl Sent {
        fn upstream_statuses(&self) -> Vec<u16> {
            self.upstream.iter().map(|r| status_of(r)).collect()
        }
        fn leg_methods(&self) -> Vec<(usize, &str)> {
            self.legs
                .iter()
                .map(|(i, r)| (*i, r.split(' ').next().unwrap_or("")))
                .collect()
        }
    }

    fn status_of(response: &str) -> u16 {
        response[8..11].parse().unwrap()
    }

    impl Test {
        fn new(targets: usize, transport: Transport) -> (Test, Sent) {
            Test::with_invite(INVITE, targets, transport).unwrap()
        }

        fn with_invite(
            invite: &str,
            targets: usize,
            transport: Transport,
        ) -> Result<(Test, Sent), CallError> {
            Test::with_targets(invite, (0..targets).map(|n| target(n, transport)).collect())
        }

        fn with_targets(invite: &str, targets: Vec<Target>) -> Result<(Test, Sent), CallError> {
            let t0 = Instant::now();
            let call = Call::new(
                invite.as_bytes().to_vec(),
                Upstream {
                    source: "192.0.2.7:5060".parse().unwrap(),
                    transport: Transport::Udp,
                },
                targets,
                config(),
                0xabc,
                t0,
            )?;
            let mut test = Test {
                call,
                t0,
                invites: vec![],
                cancels: vec![],
            };
            let sent = test.sent();
            Ok((test, sent))
        }

        fn at(&self, secs: f64) -> Instant {
            self.t0 + Duration::from_secs_f64(secs)
        }

        fn sent(&mut self) -> Sent {
            let mut sent = Sent::default();
            while let Some(t) = self.call.poll_transmit() {
                let text = String::from_utf8(t.bytes).unwrap();
                match t.to {
                    Destination::Upstream => sent.upstream.push(text),
                    Destination::Leg(i) | Destination::NextServer(i) => {
                        if t.to == Destination::NextServer(i) {
                            sent.next_servers.push(i);
                        }
                        if self.invites.len() <= i {
                            self.invites.resize(i + 1, vec![]);
                            self.cancels.resize(i + 1, None);
                        }
                        if text.starts_with("INVITE ") {
                            self.invites[i] = text.clone().into_bytes();
                        } else if text.starts_with("CANCEL ") {
                            self.cancels[i] = Some(text.clone().into_bytes());
                        }
                        sent.legs.push((i, text));
                    }
                }
            }
            sent
        }

        /// Leg `i`'s next hop answers its INVITE (or, with `cancel`, its
        /// CANCEL) with `status`.
        fn respond(&mut self, i: usize, status: u16, secs: f64, cancel: bool) -> Sent {
            let request = if cancel {
                self.cancels[i].clone().unwrap()
            } else {
                self.invites[i].clone()
            };
            let parsed = Request::parse(&request, Framing::Datagram).unwrap();
            let mut response = Vec::new();
            write_response(
                &mut response,
                &parsed,
                "10.0.0.9:5060".parse().unwrap(),
                Status::new(status, "Whatever"),
                "",
                |_| {},
            );
            let now = self.at(secs);
            assert_eq!(self.call.on_response(&response, now), ResponseFate::Handled);
            self.sent()
        }

        fn tick(&mut self, secs: f64) -> Sent {
            self.call.on_timeout(self.at(secs));
            self.sent()
        }

        fn caller_cancels(&mut self, secs: f64) -> Sent {
            let cancel = INVITE
                .replace("INVITE sip", "CANCEL sip")
                .replace("7 INVITE", "7 CANCEL");
            self.call.on_cancel(cancel.as_bytes(), self.at(secs));
            self.sent()
        }

        /// Runs every timer until the call is done (or a bound).
        fn run_out(&mut self) -> Sent {
            let mut all = Sent::default();
            for _ in 0..200 {
                let Some(at) = self.call.poll_deadline() else {
                    break;
                };
                self.call.on_timeout(at);
                let sent = self.sent();
                all.upstream.extend(sent.upstream);
                all.legs.extend(sent.legs);
            }
            all
        }
    }

    #[test]
    fn trying_at_once_then_the_first_leg() {
        let (test, sent) = Test::new(2, Transport::Udp);
        assert_eq!(sent.upstream_statuses(), [100]);
        assert_eq!(sent.leg_methods(), [(0, "INVITE")]);
        let invite = String::from_utf8(test.invites[0].clone()).unwrap();
        assert!(invite.starts_with("INVITE sip:+14155550100@10.0.0.9 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKsb"));
        assert!(invite.contains("\r\nMax-Forwards: 69\r\n"));
        // The first leg carries no Diversion unless the target asks.
        assert!(!invite.contains("Diversion"));
    }

    #[test]
    fn answered_provisionals_and_2xx_go_up_without_our_via() {
        let (mut test, _) = Test::new(2, Transport::Udp);
        let sent = test.respond(0, 100, 0.1, false);
        assert!(sent.upstream.is_empty(), "100 is hop by hop");
        let sent = test.respond(0, 180, 1.0, false);
        assert_eq!(sent.upstream_statuses(), [180]);
        assert!(!sent.upstream[0].contains("z9hG4bKsb"));
        assert!(sent.upstream[0].contains("branch=z9hG4bKcaller"));
        let sent = test.respond(0, 200, 5.0, false);
        assert_eq!(sent.upstream_statuses(), [200]);
        assert!(sent.legs.is_empty(), "the ACK for a 2xx is end to end");
        // A retransmitted 200 is forwarded too.
        let sent = test.respond(0, 200, 5.5, false);
        assert_eq!(sent.upstream_statuses(), [200]);
        // The ring time passing changes nothing now.
        assert!(test.tick(30.0).legs.is_empty());
        let summary = test.call.summary(test.at(40.0));
        assert_eq!(summary.final_status, Some(200));
        assert_eq!(summary.answered_by, Some(0));
        assert_eq!(summary.legs.len(), 1);
        assert_eq!(summary.legs[0].outcome, Some(LegOutcome::Answered(200)));
        assert_eq!(summary.legs[0].ring_time, Duration::from_secs(5));
        test.run_out();
        assert!(test.call.is_done());
    }

    #[test]
    fn no_answer_cancels_after_the_ring_time_and_diverts() {
        let (mut test, _) = Test::new(2, Transport::Udp);
        test.respond(0, 180, 1.0, false);
        assert!(test.tick(19.9).legs.is_empty());
        let sent = test.tick(20.0);
        assert_eq!(sent.leg_methods(), [(0, "CANCEL"), (1, "INVITE")]);
        let cancel = &sent.legs[0].1;
        assert!(cancel.contains("\r\nCSeq: 7 CANCEL\r\n"));
        assert!(cancel.starts_with("CANCEL sip:+14155550100@10.0.0.9 SIP/2.0\r\n"));
        let invite = &sent.legs[1].1;
        assert!(invite.starts_with("INVITE sip:+14155550101@10.0.0.9 SIP/2.0\r\n"));
        assert!(invite.contains(
            "\r\nDiversion: <sip:+18005550100@sb.example>;reason=no-answer;counter=1\r\n"
        ));
        // The legs have their own branches.
        assert_ne!(
            TopVia::parse(&cancel.as_bytes()[cancel.find("Via: ").unwrap() + 5..])
                .unwrap()
                .branch,
            TopVia::parse(&invite.as_bytes()[invite.find("Via: ").unwrap() + 5..])
                .unwrap()
                .branch
        );
        assert!(test.respond(0, 200, 20.1, true).upstream.is_empty());
        let sent = test.respond(0, 487, 20.1, false);
        assert_eq!(sent.leg_methods(), [(0, "ACK")]);
        assert!(
            sent.upstream.is_empty(),
            "our own CANCEL's 487 is not an answer"
        );
        let sent = test.respond(1, 180, 21.0, false);
        assert_eq!(sent.upstream_statuses(), [180]);
        let sent = test.respond(1, 200, 25.0, false);
        assert_eq!(sent.upstream_statuses(), [200]);
        let summary = test.call.summary(test.at(30.0));
        assert_eq!(summary.answered_by, Some(1));
        assert_eq!(summary.legs[0].cancelled, Some(CancelReason::RingTimeout));
        assert_eq!(summary.legs[0].ring_time, RING);
        assert_eq!(summary.legs[0].outcome, Some(LegOutcome::Rejected(487)));
        test.run_out();
        assert!(test.call.is_done());
    }

    #[test]
    fn no_cancel_before_a_provisional() {
        let (mut test, _) = Test::new(2, Transport::Tcp);
        // Ring time over, nothing heard from the leg: no CANCEL (§9.1), and
        // the next target waits.
        let sent = test.tick(20.0);
        assert!(sent.legs.is_empty(), "{sent:?}");
        // The first provisional releases the CANCEL and the next leg.
        let sent = test.respond(0, 100, 21.0, false);
        assert_eq!(sent.leg_methods(), [(0, "CANCEL"), (1, "INVITE")]);
        assert!(sent.upstream.is_empty());
    }

    #[test]
    fn a_silent_server_gives_way_to_the_targets_next_server() {
        let mut targets: Vec<Target> = (0..2).map(|n| target(n, Transport::Udp)).collect();
        targets[0].other_servers = 2;
        let (mut test, sent) = Test::with_targets(INVITE, targets).unwrap();
        let first = sent.legs[0].1.clone();
        // Retransmissions to the first server at 0.5, 1.5 and 3.5 s.
        for t in [0.5, 1.5, 3.5] {
            let sent = test.tick(t);
            assert_eq!(sent.leg_methods(), [(0, "INVITE")]);
            assert!(sent.next_servers.is_empty());
        }
        // 4 s of silence (server_silence): the same INVITE, to the next.
        let sent = test.tick(4.0);
        assert_eq!(sent.next_servers, [0]);
        assert_eq!(sent.legs, [(0, first.clone())]);
        assert!(sent.upstream.is_empty());
        // Its retransmissions start over, to the hop it now has.
        let sent = test.tick(4.5);
        assert_eq!(sent.leg_methods(), [(0, "INVITE")]);
        assert!(sent.next_servers.is_empty());
        // This one answers: no third server, and it rings its full time
        // from when it was tried (20 s), not from the first try.
        assert_eq!(test.respond(0, 180, 4.6, false).upstream_statuses(), [180]);
        assert!(test.tick(8.0).next_servers.is_empty());
        assert!(test.tick(23.9).leg_methods().is_empty());
        let sent = test.tick(24.0);
        assert_eq!(sent.leg_methods(), [(0, "CANCEL"), (1, "INVITE")]);
    }

    #[test]
    fn a_server_that_answers_keeps_the_leg_and_one_server_waits_for_timer_b() {
        let mut targets: Vec<Target> = (0..2).map(|n| target(n, Transport::Udp)).collect();
        targets[0].other_servers = 1;
        let (mut test, _) = Test::with_targets(INVITE, targets).unwrap();
        assert!(test.respond(0, 100, 0.1, false).upstream.is_empty());
        assert!(test.tick(4.0).next_servers.is_empty());
        // The last server of a target is never left for silence.
        let (mut test, _) = Test::new(1, Transport::Udp);
        for t in 1..32 {
            assert!(test.tick(f64::from(t)).next_servers.is_empty());
        }
    }

    #[test]
    fn timer_b_without_any_provisional_moves_on() {
        let (mut test, _) = Test::new(2, Transport::Udp);
        let mut retransmits = 0;
        let mut t = 0.0;
        while t < 31.5 {
            t += 0.5;
            retransmits += test.tick(t).legs.len();
        }
        // A at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; no CANCEL at 20 s.
        assert_eq!(retransmits, 6);
        let sent = test.tick(32.0);
        assert_eq!(sent.leg_methods(), [(1, "INVITE")]);
        assert!(sent.legs[0].1.contains(";reason=no-answer;"));
        // The last leg rings on past its ring time; Timer B again: 408.
        let sent = test.tick(64.0);
        assert_eq!(sent.upstream_statuses(), [408]);
    }

    #[test]
    fn one_target_timer_b_is_a_local_408() {
        let (mut test, _) = Test::new(1, Transport::Tcp);
        assert_eq!(test.tick(32.0).upstream_statuses(), [408]);
        test.call.on_ack(test.at(32.1));
        // The caller is on UDP: Timer I (T4) absorbs its ACK retransmissions.
        assert!(!test.call.is_done());
        test.tick(37.1);
        assert!(test.call.is_done());
        assert_eq!(
            test.call.summary(test.at(33.0)).legs[0].outcome,
            Some(LegOutcome::NoAnswer)
        );
    }

    #[test]
    fn history_info_lists_each_leg_left_and_why() {
        let (mut test, _) = Test::new(3, Transport::Udp);
        // The same call, its targets asking for History-Info.
        let t0 = test.t0;
        test.call = Call::new(
            INVITE.as_bytes().to_vec(),
            Upstream {
                source: "192.0.2.7:5060".parse().unwrap(),
                transport: Transport::Udp,
            },
            (0..3)
                .map(|n| Target {
                    diversion: None,
                    history_dialed: Some(b"sip:+18005550100@sb.example".to_vec().into()),
                    other_servers: 0,
                    ..target(n, Transport::Udp)
                })
                .collect(),
            config(),
            0xabc,
            t0,
        )
        .unwrap();
        let first = test.sent();
        let dialed = "History-Info: <sip:+18005550100@sb.example?Reason=SIP%3Bcause%3D302>;index=1";
        assert!(
            first.legs[0].1.contains(&format!(
                "\r\n{dialed},<sip:+14155550100@10.0.0.9>;index=1.1;mp=1\r\n"
            )),
            "{}",
            first.legs[0].1
        );
        // The phone rings out: left for no answer (408).
        test.respond(0, 180, 1.0, false);
        let second = test.tick(20.0);
        assert!(
            second.legs[1].1.contains(&format!(
                "\r\n{dialed},<sip:+14155550100@10.0.0.9?Reason=SIP%3Bcause%3D408>;index=1.1;mp=1,\
                 <sip:+14155550101@10.0.0.9>;index=1.2;mp=1\r\n"
            )),
            "{}",
            second.legs[1].1
        );
        // The second is busy: left for 486.
        let third = test.respond(1, 486, 21.0, false);
        let invite = &third.legs.iter().find(|(leg, _)| *leg == 2).unwrap().1;
        assert!(
            invite.contains(
                "index=1.1;mp=1,<sip:+14155550101@10.0.0.9?Reason=SIP%3Bcause%3D486>;index=1.2;mp=1,\
                 <sip:+14155550102@10.0.0.9>;index=1.3;mp=1\r\n"
            ),
            "{invite}"
        );
    }

    #[test]
    fn busy_fails_over_at_once_and_the_best_answer_wins() {
        let (mut test, _) = Test::new(2, Transport::Udp);
        test.respond(0, 180, 1.0, false);
        let sent = test.respond(0, 486, 2.0, false);
        assert_eq!(sent.leg_methods(), [(0, "ACK"), (1, "INVITE")]);
        assert!(sent.legs[1].1.contains(";reason=user-busy;"));
        assert!(sent.upstream.is_empty());
        let sent = test.respond(1, 503, 3.0, false);
        // 486 beats 503 (lower class).
        assert_eq!(sent.upstream_statuses(), [486]);
        assert!(!sent.upstream[0].contains("z9hG4bKsb"));
    }

    #[test]
    fn a_503_goes_up_as_500() {
        let (mut test, _) = Test::new(1, Transport::Udp);
        let sent = test.respond(0, 503, 1.0, false);
        assert_eq!(sent.upstream_statuses(), [500]);
    }

    #[test]
    fn a_6xx_stops_forking() {
        let (mut test, _) = Test::new(2, Transport::Udp);
        let sent = test.respond(0, 603, 1.0, false);
        assert_eq!(sent.leg_methods(), [(0, "ACK")]);
        assert_eq!(sent.upstream_statuses(), [603]);
        assert!(
            test.run_out()
                .legs
                .iter()
                .all(|(_, r)| !r.starts_with("INVITE"))
        );
        assert_eq!(test.call.summary(test.at(99.0)).legs.len(), 1);
    }

    #[test]
    fn transport_errors_fail_over_and_end_in_500() {
        let (mut test, _) = Test::new(2, Transport::Tls);
        test.call.on_leg_transport_error(0, test.at(0.1));
        let sent = test.sent();
        assert_eq!(sent.leg_methods(), [(1, "INVITE")]);
        assert!(sent.legs[0].1.contains(";reason=unavailable;"));
        assert!(sent.legs[0].1.contains("Via: SIP/2.0/TLS "));
        test.call.on_leg_transport_error(1, test.at(0.2));
        assert_eq!(test.sent().upstream_statuses(), [500]);
    }

    #[test]
    fn caller_cancel_while_ringing_gets_487_and_no_failover() {
        let (mut test, _) = Test::new(2, Transport::Udp);
        test.respond(0, 180, 1.0, false);
        let sent = test.caller_cancels(5.0);
        assert_eq!(sent.upstream_statuses(), [200]);
        assert!(sent.upstream[0].contains("CSeq: 7 CANCEL"));
        assert_eq!(sent.leg_methods(), [(0, "CANCEL")]);
        // A retransmitted CANCEL: the same 200, nothing else.
        let again = test.caller_cancels(5.5);
        assert_eq!(again.upstream, sent.upstream);
        assert!(again.legs.is_empty());
        test.respond(0, 200, 5.1, true);
        let sent = test.respond(0, 487, 5.2, false);
        assert_eq!(sent.upstream_statuses(), [487]);
        assert!(sent.upstream[0].contains("CSeq: 7 INVITE"));
        // The ring time passes: the forwarding number is never rung.
        let rest = test.run_out();
        assert!(rest.legs.iter().all(|(i, _)| *i == 0), "{rest:?}");
        let summary = test.call.summary(test.at(99.0));
        assert!(summary.cancelled_by_caller);
        assert_eq!(summary.final_status, Some(487));
        assert_eq!(summary.legs.len(), 1);
        assert_eq!(summary.legs[0].cancelled, Some(CancelReason::Caller));
    }

    #[test]
    fn caller_cancel_before_any_provisional_waits_for_one() {
        let (mut test, _) = Test::new(2, Transport::Udp);
        let sent = test.caller_cancels(0.2);
        assert_eq!(sent.upstream_statuses(), [200]);
        assert!(sent.legs.is_empty(), "no CANCEL before a provisional");
        let sent = test.respond(0, 100, 0.3, false);
        assert_eq!(sent.leg_methods(), [(0, "CANCEL")]);
        let sent = test.respond(0, 487, 0.4, false);
        assert_eq!(sent.upstream_statuses(), [487]);
        assert_eq!(sent.leg_methods(), [(0, "ACK")]);
    }

    #[test]
    fn cancel_after_the_200_went_up_is_answered_200_and_nothing_else() {
        let (mut test, _) = Test::new(2, Transport::Udp);
        test.respond(0, 180, 1.0, false);
        test.respond(0, 200, 2.0, false);
        let sent = test.caller_cancels(2.1);
        assert_eq!(sent.upstream_statuses(), [200]);
        assert!(sent.upstream[0].contains("CSeq: 7 CANCEL"));
        assert!(sent.legs.is_empty());
        let summary = test.call.summary(test.at(3.0));
        assert!(!summary.cancelled_by_caller);
        assert!(test.run_out().upstream.is_empty());
    }

    #[test]
    fn a_2xx_after_our_cancel_is_still_forwarded() {
        let (mut test, _) = Test::new(2, Transport::Udp);
        test.respond(0, 180, 1.0, false);
        test.caller_cancels(2.0);
        let sent = test.respond(0, 200, 2.1, false);
        assert_eq!(sent.upstream_statuses(), [200]);
        assert!(sent.upstream[0].contains("CSeq: 7 INVITE"));
        // The CANCEL's own answer (481, too late) changes nothing.
        assert!(test.respond(0, 481, 2.2, true).upstream.is_empty());
        let rest = test.run_out();
        assert!(rest.upstream.is_empty(), "no 487 after a 200: {rest:?}");
        assert_eq!(test.call.summary(test.at(99.0)).final_status, Some(200));
    }

    #[test]
    fn a_late_2xx_from_the_previous_leg_is_forwarded_and_the_new_leg_cancelled() {
        let (mut test, _) = Test::new(2, Transport::Udp);
        test.respond(0, 180, 1.0, false);
        test.tick(20.0);
        test.respond(1, 180, 20.5, false);
        let sent = test.respond(0, 200, 21.0, false);
        assert_eq!(sent.upstream_statuses(), [200]);
        assert_eq!(sent.leg_methods(), [(1, "CANCEL")]);
        let sent = test.respond(1, 487, 21.1, false);
        assert_eq!(sent.leg_methods(), [(1, "ACK")]);
        assert!(sent.upstream.is_empty());
        let summary = test.call.summary(test.at(22.0));
        assert_eq!(summary.answered_by, Some(0));
        assert_eq!(
            summary.legs[1].cancelled,
            Some(CancelReason::AnsweredElsewhere)
        );
    }

    #[test]
    fn a_2xx_after_a_final_failure_and_after_the_transaction_is_forwarded() {
        let (mut test, _) = Test::new(1, Transport::Udp);
        assert_eq!(test.respond(0, 486, 1.0, false).upstream_statuses(), [486]);
        assert_eq!(test.respond(0, 200, 1.5, false).upstream_statuses(), [200]);
        // Every transaction over (Timers D, G/H ...): a 2xx still goes up.
        test.run_out();
        assert!(test.call.is_done());
        assert_eq!(test.respond(0, 200, 99.0, false).upstream_statuses(), [200]);
    }

    #[test]
    fn retransmitted_invites_are_absorbed() {
        let (mut test, _) = Test::new(2, Transport::Udp);
        test.call.on_invite_retransmission();
        let sent = test.sent();
        assert_eq!(sent.upstream_statuses(), [100]);
        assert!(sent.legs.is_empty(), "the next hop sees one INVITE");
        test.respond(0, 180, 1.0, false);
        test.call.on_invite_retransmission();
        assert_eq!(test.sent().upstream_statuses(), [180]);
    }

    #[test]
    fn timer_c_cancels_the_last_leg_then_408() {
        let (mut test, _) = Test::new(1, Transport::Udp);
        test.respond(0, 180, 1.0, false);
        // Timer C restarted by the 180: 1 + 181 s.
        assert!(test.tick(181.5).legs.is_empty());
        let sent = test.tick(182.0);
        assert_eq!(sent.leg_methods(), [(0, "CANCEL")]);
        let sent = test.respond(0, 487, 182.1, false);
        assert_eq!(sent.upstream_statuses(), [408]);
    }

    #[test]
    fn a_leg_silent_after_our_cancel_is_given_up_after_64_t1() {
        let (mut test, _) = Test::new(1, Transport::Tcp);
        test.respond(0, 180, 1.0, false);
        test.caller_cancels(2.0);
        assert!(test.tick(33.9).upstream.is_empty());
        assert_eq!(test.tick(34.0).upstream_statuses(), [487]);
        test.call.on_ack(test.at(34.1));
        test.run_out();
        assert!(test.call.is_done());
    }

    #[test]
    fn too_many_hops_and_loops() {
        let zero = INVITE.replace("Max-Forwards: 70", "Max-Forwards: 0");
        let (mut test, sent) = Test::with_invite(&zero, 2, Transport::Udp).unwrap();
        assert_eq!(sent.upstream_statuses(), [100, 483]);
        assert!(sent.legs.is_empty());
        test.call.on_ack(test.at(0.1));
        test.run_out();
        assert!(test.call.is_done());

        // The INVITE comes back through us with the same routing inputs.
        let (test, _) = Test::new(1, Transport::Udp);
        let forwarded = String::from_utf8(test.invites[0].clone()).unwrap();
        let looped = forwarded.replace(
            "INVITE sip:+14155550100@10.0.0.9",
            "INVITE sip:+18005550100@sb.example",
        );
        let (_, sent) = Test::with_invite(&looped, 1, Transport::Udp).unwrap();
        assert_eq!(sent.upstream_statuses(), [100, 482]);
        // A spiral (another Request-URI) is routed again.
        let (_, sent) = Test::with_invite(&forwarded, 1, Transport::Udp).unwrap();
        assert_eq!(sent.leg_methods(), [(0, "INVITE")]);

        assert_eq!(
            Test::with_invite("OPTIONS sip:a@b SIP/2.0\r\n\r\n", 1, Transport::Udp).err(),
            Some(CallError::NotAnInvite)
        );
        assert_eq!(
            Test::with_invite(INVITE, 0, Transport::Udp).err(),
            Some(CallError::NoTargets)
        );
    }

    #[test]
    fn responses_of_other_calls_and_garbage_are_not_ours() {
        let (mut test, _) = Test::new(1, Transport::Udp);
        let other = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKsb0000000000000000.0000000000000001.00\r\nVia: SIP/2.0/UDP x\r\nTo: <sip:a@b>;tag=1\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n";
        let now = test.at(1.0);
        assert_eq!(
            test.call.on_response(other.as_bytes(), now),
            ResponseFate::NotOurs
        );
        assert_eq!(
            test.call.on_response(b"garbage", now),
            ResponseFate::Malformed
        );
        assert!(test.sent().upstream.is_empty());
    }

    #[test]
    fn the_fixed_parts_are_small() {
        use std::mem::size_of;
        // The Call itself, a leg per target and each target's descriptor:
        // everything but message bytes.
        let two_legs = size_of::<Call>() + 2 * (size_of::<Leg>() + size_of::<Target>());
        eprintln!(
            "Call {} + Leg {} + Target {} bytes: {two_legs} for two legs",
            size_of::<Call>(),
            size_of::<Leg>(),
            size_of::<Target>()
        );
        assert!(two_legs < 2048, "{two_legs} bytes");
        // A typical call: an INVITE with a 300-byte SDP, the second leg
        // ringing while the first is being cancelled, everything sent.
        let sdp = "v=0\r\n".repeat(60);
        let invite = INVITE.replace(
            "Content-Length: 0\r\n\r\n",
            &format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
                sdp.len()
            ),
        );
        let (mut test, _) = Test::with_invite(&invite, 2, Transport::Udp).unwrap();
        test.respond(0, 180, 1.0, false);
        // The usual in-flight state: one leg ringing.
        let ringing = test.call.memory_bytes();
        eprintln!(
            "one leg ringing, INVITE of {} bytes: {ringing} bytes",
            invite.len()
        );
        assert!(ringing < 4096, "{ringing} bytes");
        test.tick(20.0);
        test.respond(1, 180, 21.0, false);
        assert_eq!(test.call.legs.len(), 2);
        let total = test.call.memory_bytes();
        eprintln!(
            "a ringing second leg, INVITE of {} bytes: {total} bytes",
            invite.len()
        );
        assert!(total < 6 * 1024, "{total} bytes");
        // Once the first leg has ended, its copy is gone.
        test.respond(0, 487, 21.5, false);
        assert!(test.call.memory_bytes() < total);
    }

    #[test]
    fn record_route_and_a_first_leg_diversion() {
        let t0 = Instant::now();
        let mut config = (*config()).clone();
        config.record_route = Some(b"sip:10.0.0.1:5060".to_vec().into());
        let mut first = target(0, Transport::Udp);
        first.diversion = Some(b"<sip:+18005550100@sb.example>".to_vec().into());
        first.bottom_headers = b"X-Leg: 0\r\n".to_vec().into();
        let mut call = Call::new(
            INVITE.as_bytes().to_vec(),
            Upstream {
                source: "192.0.2.70:40000".parse().unwrap(),
                transport: Transport::Tcp,
            },
            vec![first],
            Arc::new(config),
            1,
            t0,
        )
        .unwrap();
        let mut sent = vec![];
        while let Some(t) = call.poll_transmit() {
            sent.push(t);
        }
        assert_eq!(sent[0].to, Destination::Upstream);
        assert_eq!(sent[1].to, Destination::Leg(0));
        let invite = String::from_utf8(sent[1].bytes.clone()).unwrap();
        assert!(invite.contains("\r\nRecord-Route: <sip:10.0.0.1:5060;lr>\r\nDiversion: <sip:+18005550100@sb.example>;reason=unconditional;counter=1\r\n"));
        assert!(invite.contains(
            "\r\nVia: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKcaller;rport=40000;received=192.0.2.70\r\n"
        ));
        assert!(invite.ends_with("\r\nX-Leg: 0\r\nContent-Length: 0\r\n\r\n"));
        assert!(call.memory_bytes() > 0);
        assert_eq!(call.invite(), INVITE.as_bytes());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Respond {
            leg: usize,
            status: u16,
            to_cancel: bool,
        },
        CallerCancel,
        LegTransportError(usize),
        Tick(f64),
        InviteAgain,
        Ack,
        UpstreamError,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        const STATUSES: [u16; 15] = [
            100, 180, 183, 200, 202, 404, 408, 480, 481, 486, 487, 500, 503, 600, 603,
        ];
        prop_oneof![
            6 => (0usize..3, proptest::sample::select(&STATUSES[..]), proptest::bool::weighted(0.2))
                .prop_map(|(leg, status, to_cancel)| Op::Respond { leg, status, to_cancel }),
            1 => Just(Op::CallerCancel),
            1 => (0usize..3).prop_map(Op::LegTransportError),
            3 => (0.0f64..40.0).prop_map(Op::Tick),
            1 => Just(Op::InviteAgain),
            1 => Just(Op::Ack),
            1 => Just(Op::UpstreamError),
        ]
    }

    proptest::proptest! {
        /// Whatever the legs answer, in whatever order, and whatever the
        /// caller and the clock do: no panic, one final answer upstream
        /// (a 2xx may follow it, nothing else), every 2xx forwarded, no
        /// new leg after the caller's CANCEL, and the call always ends.
        #[test]
        fn any_sequence_of_events_ends_cleanly(
            ops in proptest::collection::vec(op(), 0..40),
            targets in 1usize..4,
            tcp in proptest::bool::ANY,
        ) {
            let transport = if tcp { Transport::Tcp } else { Transport::Udp };
            let (mut test, first) = Test::new(targets, transport);
            let mut upstream: Vec<u16> = first.upstream_statuses();
            let mut t = 0.0;
            let mut legs_at_cancel: Option<usize> = None;
            for op in ops {
                let legs_before = test.invites.len();
                let sent = match op {
                    Op::Respond { leg, status, to_cancel } => {
                        let ready = if to_cancel {
                            test.cancels.get(leg).is_some_and(Option::is_some)
                        } else {
                            leg < test.invites.len()
                        };
                        if !ready {
                            continue;
                        }
                        let sent = test.respond(leg, status, t, to_cancel);
                        if !to_cancel && (200..300).contains(&status) {
                            proptest::prop_assert!(
                                sent.upstream_statuses().contains(&status),
                                "a {status} was not forwarded: {sent:?}"
                            );
                        }
                        sent
                    }
                    Op::CallerCancel => {
                        legs_at_cancel.get_or_insert(test.invites.len());
                        test.caller_cancels(t)
                    }
                    Op::LegTransportError(leg) => {
                        test.call.on_leg_transport_error(leg, test.at(t));
                        test.sent()
                    }
                    Op::Tick(dt) => {
                        t += dt;
                        test.tick(t)
                    }
                    Op::InviteAgain => {
                        test.call.on_invite_retransmission();
                        test.sent()
                    }
                    Op::Ack => {
                        test.call.on_ack(test.at(t));
                        test.sent()
                    }
                    Op::UpstreamError => {
                        test.call.on_upstream_transport_error(test.at(t));
                        test.sent()
                    }
                };
                if let Some(legs) = legs_at_cancel {
                    proptest::prop_assert!(
                        test.invites.len() <= legs.max(legs_before),
                        "a new leg after the caller's CANCEL"
                    );
                }
                // CANCEL answers are 200s with CSeq CANCEL: not the INVITE's.
                upstream.extend(
                    sent.upstream
                        .iter()
                        .filter(|r| !r.contains("CSeq: 7 CANCEL"))
                        .map(|r| status_of(r)),
                );
            }
            let rest = test.run_out();
            upstream.extend(
                rest.upstream
                    .iter()
                    .filter(|r| !r.contains("CSeq: 7 CANCEL"))
                    .map(|r| status_of(r)),
            );
            proptest::prop_assert!(test.call.is_done(), "the call never ended");
            let finals: Vec<u16> = upstream.iter().copied().filter(|&s| s >= 200).collect();
            if let Some(&first) = finals.first() {
                for &later in &finals[1..] {
                    proptest::prop_assert!(
                        (200..300).contains(&later) || later == first,
                        "{later} after {first}: {upstream:?}"
                    );
                }
            }
            // Unless the caller vanished, it got a final answer.
            proptest::prop_assert!(
                !finals.is_empty() || test.call.summary(test.at(t)).cancelled_by_caller,
                "no final answer: {upstream:?}"
            );
        }
    }
}
