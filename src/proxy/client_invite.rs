//! The INVITE client transaction (RFC 3261 §17.1.1, with RFC 6026 §7.2's
//! Accepted state and Timer M): one per leg the proxy forwards.
//!
//! ```text
//!                      start: send INVITE, Timer A (UDP) and B
//!                                    |
//!        Timer A: resend, A *= 2     v
//!              +-----------------Calling-------------------+
//!              |                 |   |   |                 |
//!              +---------------->+   |   | Timer B: Timeout to core
//!                                    |   | transport error: to core
//!                        1xx to core |   +---------------------------->+
//!                                    v                                 |
//!                  1xx to core +-Proceeding                            |
//!                              +---->|  |                              |
//!           300-699: ACK, to core    |  | 2xx: to core                 |
//!         (also from Calling)        |  | (also from Calling)          |
//!                  +-----------------+  +-------------+                |
//!                  v                                  v                |
//!   300-699: resend ACK <-+ Completed      2xx: to core +-> Accepted   |
//!                  +------+   |               (RFC 6026) +---+   |     |
//!                             | Timer D (0 on TCP/TLS)           | M   |
//!                             v                                  v     |
//!                        Terminated <----------------------------+-----+
//! ```
//!
//! Over reliable transports Timer A is never armed and Timer D is zero.
//! Timer B bounds only Calling: once a provisional arrived, the proxy's
//! Timer C (§16.8) bounds the wait, which is the core's business. In
//! Accepted every 2xx (retransmissions, or another dialog's from a
//! forking UAS) goes to the core, which forwards it (RFC 6026 §7.2; a
//! proxy never absorbs a 2xx). The ACK for a 2xx is end to end, never
//! built here.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::sip::response_head::ResponseHead;

use super::forward::build_ack;
use super::timers::{TimerKind, Timers};
use super::transaction::{Action, MAX_FIRES_PER_CALL, Termination, earliest, next_due};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    Calling,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

/// What the transaction tells the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEvent {
    /// The response just given to `on_response` goes to the core (status
    /// copied for convenience). Responses not reported are absorbed
    /// retransmissions.
    Response(u16),
    /// Timer B fired: the core acts as if a 408 came (§17.1.1.2).
    Timeout,
    /// The transport failed before a final response (§17.1.4): the core
    /// acts as if a 503 came (§16.9).
    TransportError,
}

/// An INVITE client transaction.
#[derive(Debug)]
pub struct ClientInvite {
    state: ClientInviteState,
    reliable: bool,
    timers: Timers,
    /// The INVITE as sent: retransmitted by Timer A, and the source of the
    /// ACK and of a CANCEL for this leg.
    request: Vec<u8>,
    /// The ACK for the final non-2xx, resent for each retransmission of it.
    ack: Option<Vec<u8>>,
    timer_a: Option<Instant>,
    a_interval: Duration,
    timer_b: Option<Instant>,
    timer_d: Option<Instant>,
    timer_m: Option<Instant>,
    actions: VecDeque<Action<ClientEvent>>,
}

impl ClientInvite {
    /// Starts the transaction: the INVITE is the first action.
    pub fn new(mut request: Vec<u8>, reliable: bool, timers: Timers, now: Instant) -> ClientInvite {
        // Kept for the whole transaction: no spare capacity.
        request.shrink_to_fit();
        let a_interval = timers.t1;
        let mut tx = ClientInvite {
            state: ClientInviteState::Calling,
            reliable,
            timers,
            request,
            ack: None,
            timer_a: timers.first_retransmit(reliable).map(|t| now + t),
            a_interval,
            timer_b: Some(now + timers.t1x64()),
            timer_d: None,
            timer_m: None,
            actions: VecDeque::new(),
        };
        tx.actions.push_back(Action::Transmit(tx.request.clone()));
        tx
    }

    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// The INVITE as sent; empty once a final response came (it is
    /// neither resent nor cancelled after that).
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// Bytes held on the heap (the INVITE copy, the ACK, queued actions),
    /// for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.request.capacity()
            + self.ack.as_ref().map_or(0, Vec::capacity)
            + super::transaction::queued_bytes(&self.actions)
    }

    /// Whether a provisional response has come (so a CANCEL may be sent,
    /// §9.1).
    pub fn had_provisional(&self) -> bool {
        self.state != ClientInviteState::Calling
    }

    /// The next action to carry out.
    pub fn poll_action(&mut self) -> Option<Action<ClientEvent>> {
        super::transaction::pop(&mut self.actions)
    }

    /// When `on_timeout` next wants to be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        earliest([self.timer_a, self.timer_b, self.timer_d, self.timer_m])
    }

    /// A response whose branch and CSeq method matched (§17.1.3).
    pub fn on_response(&mut self, response: &ResponseHead<'_>, now: Instant) {
        let status = response.status;
        use ClientInviteState::*;
        match (self.state, status) {
            (Calling | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.timer_a = None;
                self.timer_b = None;
                self.actions
                    .push_back(Action::ToCore(ClientEvent::Response(status)));
            }
            (Calling | Proceeding, 200..=299) => {
                self.enter_accepted(now);
                self.actions
                    .push_back(Action::ToCore(ClientEvent::Response(status)));
            }
            (Calling | Proceeding, _) => {
                self.timer_a = None;
                self.timer_b = None;
                self.state = Completed;
                // The request was built by this proxy, so the ACK can be;
                // if it somehow cannot, the response still goes up.
                self.ack = build_ack(&self.request, response.to).ok().map(|mut ack| {
                    // Kept for Timer D's 32 s: no spare capacity.
                    ack.shrink_to_fit();
                    ack
                });
                // Neither resent nor cancelled any more: only the ACK is.
                self.request = Vec::new();
                self.send_ack();
                self.actions
                    .push_back(Action::ToCore(ClientEvent::Response(status)));
                let d = self.timers.d(self.reliable);
                if d.is_zero() {
                    self.terminate(Termination::Completed);
                } else {
                    self.timer_d = Some(now + d);
                }
            }
            // A retransmitted final response: the ACK again, nothing more.
            (Completed, 300..=699) => self.send_ack(),
            // A 2xx is never absorbed (RFC 6026): late ones after a
            // non-2xx, and every 2xx in Accepted, go to the core.
            (Completed | Accepted, 200..=299) => {
                self.actions
                    .push_back(Action::ToCore(ClientEvent::Response(status)));
            }
            _ => {}
        }
    }

    /// Fires one timer if it is armed (the driver may also just call
    /// [`ClientInvite::on_timeout`]).
    pub fn on_timer(&mut self, kind: TimerKind, now: Instant) {
        match kind {
            TimerKind::A if self.timer_a.is_some() => {
                self.actions
                    .push_back(Action::Transmit(self.request.clone()));
                self.a_interval = self.timers.next_a(self.a_interval);
                self.timer_a = Some(now + self.a_interval);
            }
            TimerKind::B if self.timer_b.is_some() => {
                self.actions.push_back(Action::ToCore(ClientEvent::Timeout));
                self.terminate(Termination::Timeout);
            }
            TimerKind::D if self.timer_d.is_some() => self.terminate(Termination::Completed),
            TimerKind::M if self.timer_m.is_some() => self.terminate(Termination::Completed),
            _ => {}
        }
    }

    /// Fires every timer due at `now`, earliest first.
    pub fn on_timeout(&mut self, now: Instant) {
        for _ in 0..MAX_FIRES_PER_CALL {
            let Some(kind) = next_due(
                [
                    (TimerKind::A, self.timer_a),
                    (TimerKind::B, self.timer_b),
                    (TimerKind::D, self.timer_d),
                    (TimerKind::M, self.timer_m),
                ],
                now,
            ) else {
                return;
            };
            self.on_timer(kind, now);
        }
    }

    /// The transport could not send (§17.1.4).
    pub fn on_transport_error(&mut self) {
        match self.state {
            ClientInviteState::Calling | ClientInviteState::Proceeding => {
                self.actions
                    .push_back(Action::ToCore(ClientEvent::TransportError));
                self.terminate(Termination::TransportError);
            }
            ClientInviteState::Completed | ClientInviteState::Accepted => {
                self.terminate(Termination::TransportError)
            }
            ClientInviteState::Terminated => {}
        }
    }

    fn enter_accepted(&mut self, now: Instant) {
        self.state = ClientInviteState::Accepted;
        // No CANCEL after a 2xx and the ACK is end to end: the copy goes.
        self.request = Vec::new();
        self.timer_a = None;
        self.timer_b = None;
        self.timer_m = Some(now + self.timers.t1x64());
    }

    fn send_ack(&mut self) {
        if let Some(ack) = &self.ack {
            self.actions.push_back(Action::Transmit(ack.clone()));
        }
    }

    fn terminate(&mut self, why: Termination) {
        self.state = ClientInviteState::Terminated;
        self.timer_a = None;
        self.timer_b = None;
        self.timer_d = None;
        self.timer_m = None;
        self.actions.push_back(Action::Terminated(why));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sip::Framing;

    pub(crate) const REQUEST: &str = "INVITE sip:b@10.0.0.9 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKsb1;rport\r\n\
        From: <sip:a@h>;tag=f\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
        Max-Forwards: 69\r\nContent-Length: 0\r\n\r\n";

    pub(crate) fn response(status: u16) -> String {
        format!(
            "SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKsb1;rport\r\n\
             From: <sip:a@h>;tag=f\r\nTo: <sip:b@h>;tag=t\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n"
        )
    }

    fn respond(tx: &mut ClientInvite, status: u16, now: Instant) {
        let r = response(status);
        let head = ResponseHead::parse(r.as_bytes(), Framing::Datagram).unwrap();
        tx.on_response(&head, now);
    }

    fn drain(tx: &mut ClientInvite) -> Vec<Action<ClientEvent>> {
        std::iter::from_fn(|| tx.poll_action()).collect()
    }

    fn start(reliable: bool) -> (ClientInvite, Instant) {
        let now = Instant::now();
        let mut tx = ClientInvite::new(REQUEST.into(), reliable, Timers::default(), now);
        assert_eq!(drain(&mut tx), [Action::Transmit(REQUEST.into())]);
        (tx, now)
    }

    #[test]
    fn timer_a_doubles_without_cap_until_timer_b_gives_up() {
        let (mut tx, t0) = start(false);
        let mut sent = vec![];
        while let Some(at) = tx.next_deadline() {
            tx.on_timeout(at);
            for action in drain(&mut tx) {
                match action {
                    Action::Transmit(_) => sent.push((at - t0).as_millis()),
                    Action::ToCore(e) => assert_eq!(e, ClientEvent::Timeout),
                    Action::Terminated(why) => {
                        assert_eq!(why, Termination::Timeout);
                        assert_eq!(at - t0, Duration::from_secs(32));
                    }
                }
            }
        }
        // 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s: intervals 0.5, 1, 2, 4, 8, 16.
        assert_eq!(sent, [500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(tx.state(), ClientInviteState::Terminated);
    }

    #[test]
    fn reliable_transports_never_retransmit() {
        let (mut tx, t0) = start(true);
        assert_eq!(tx.next_deadline(), Some(t0 + Duration::from_secs(32)));
        respond(&mut tx, 486, t0);
        let actions = drain(&mut tx);
        assert!(matches!(actions[0], Action::Transmit(ref ack) if ack.starts_with(b"ACK ")));
        assert_eq!(actions[1], Action::ToCore(ClientEvent::Response(486)));
        // Timer D is zero over TCP and TLS.
        assert_eq!(actions[2], Action::Terminated(Termination::Completed));
    }

    #[test]
    fn provisional_stops_a_and_b_then_final_non_2xx_is_acked_once_per_copy() {
        let (mut tx, t0) = start(false);
        respond(&mut tx, 180, t0);
        assert_eq!(drain(&mut tx), [Action::ToCore(ClientEvent::Response(180))]);
        assert!(tx.had_provisional());
        assert_eq!(tx.next_deadline(), None);
        respond(&mut tx, 180, t0);
        assert_eq!(drain(&mut tx), [Action::ToCore(ClientEvent::Response(180))]);
        respond(&mut tx, 487, t0);
        let actions = drain(&mut tx);
        let Action::Transmit(ack) = &actions[0] else {
            panic!("{actions:?}")
        };
        let ack = String::from_utf8_lossy(ack);
        assert!(ack.starts_with("ACK sip:b@10.0.0.9 SIP/2.0\r\n"));
        assert!(ack.contains("\r\nTo: <sip:b@h>;tag=t\r\n"));
        assert!(ack.contains("\r\nCSeq: 1 ACK\r\n"));
        assert_eq!(actions[1], Action::ToCore(ClientEvent::Response(487)));
        // The retransmitted 487: ACK again, the core hears nothing.
        respond(&mut tx, 487, t0);
        assert!(matches!(&drain(&mut tx)[..], [Action::Transmit(_)]));
        assert_eq!(tx.next_deadline(), Some(t0 + Duration::from_secs(32)));
        tx.on_timeout(t0 + Duration::from_secs(32));
        assert_eq!(drain(&mut tx), [Action::Terminated(Termination::Completed)]);
    }

    #[test]
    fn accepted_passes_every_2xx_to_the_core_until_timer_m() {
        let (mut tx, t0) = start(false);
        respond(&mut tx, 200, t0);
        assert_eq!(drain(&mut tx), [Action::ToCore(ClientEvent::Response(200))]);
        assert_eq!(tx.state(), ClientInviteState::Accepted);
        respond(&mut tx, 200, t0 + Duration::from_secs(1));
        assert_eq!(drain(&mut tx), [Action::ToCore(ClientEvent::Response(200))]);
        respond(&mut tx, 180, t0);
        assert_eq!(drain(&mut tx), []);
        tx.on_timeout(t0 + Duration::from_secs(32));
        assert_eq!(drain(&mut tx), [Action::Terminated(Termination::Completed)]);
    }

    #[test]
    fn a_2xx_after_a_non_2xx_still_goes_up() {
        let (mut tx, t0) = start(false);
        respond(&mut tx, 486, t0);
        drain(&mut tx);
        respond(&mut tx, 200, t0);
        assert_eq!(drain(&mut tx), [Action::ToCore(ClientEvent::Response(200))]);
    }

    #[test]
    fn transport_errors() {
        let (mut tx, _) = start(false);
        tx.on_transport_error();
        assert_eq!(
            drain(&mut tx),
            [
                Action::ToCore(ClientEvent::TransportError),
                Action::Terminated(Termination::TransportError)
            ]
        );
        tx.on_transport_error();
        assert_eq!(drain(&mut tx), []);
    }
}
