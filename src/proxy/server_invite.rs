//! The INVITE server transaction (RFC 3261 §17.2.1, with RFC 6026 §7.1's
//! Accepted state and Timer L): the caller's side of a proxied call.
//!
//! ```text
//!                start: send 100 Trying at once
//!                             |
//!   INVITE again: resend      v
//!   latest response  +----Proceeding----+ transport error
//!   1xx from core:   +---->| |          +-------------------------->+
//!   send, keep it            | |                                     |
//!      300-699 from core:    | | 2xx from core: send                 |
//!      send, G (UDP), H      | +------------------>+                 |
//!                            v                     v                 |
//!   INVITE again or G:    Completed            Accepted              |
//!   resend final, G*=2<=T2  |   | H: Timeout     | 2xx from core: send |
//!                      ACK  |   +--------------->|  INVITE, ACK: absorbed
//!                           v                 |  | L                 |
//!   ACK: absorbed       Confirmed             |  |                   |
//!                           | I (0 on TCP)    v  v                   |
//!                           +------------> Terminated <--------------+
//! ```
//!
//! The 100 Trying goes out at once rather than after 200 ms (§17.2.1
//! allows waiting for the TU): forwarding and ringing take longer than
//! that, and it stops the caller's Timer A at the first chance. Once a 2xx
//! has been sent, 2xx responses the core passes on are sent too (RFC 6026
//! §7.1: the proxy forwards retransmitted and forked 2xx), and the
//! transaction never retransmits a 2xx itself: the UAS does. A 2xx
//! reaching a Completed transaction (a late answer after a non-2xx was
//! sent) is sent as well: a proxy never swallows a 2xx.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::timers::{TimerKind, Timers};
use super::transaction::{Action, MAX_FIRES_PER_CALL, Termination, earliest, next_due};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

/// What the server transaction tells the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerEvent {
    /// Timer H fired: the caller never ACKed the final response.
    NoAck,
    /// The transport failed sending a response (§17.2.4).
    TransportError,
}

/// An INVITE server transaction.
#[derive(Debug)]
pub struct ServerInvite {
    state: ServerInviteState,
    reliable: bool,
    timers: Timers,
    /// The latest provisional or final non-2xx: what a retransmitted
    /// INVITE and Timer G resend.
    latest: Vec<u8>,
    timer_g: Option<Instant>,
    g_interval: Duration,
    timer_h: Option<Instant>,
    timer_i: Option<Instant>,
    timer_l: Option<Instant>,
    actions: VecDeque<Action<ServerEvent>>,
}

impl ServerInvite {
    /// Starts the transaction with its 100 Trying, sent at once.
    pub fn new(trying: Vec<u8>, reliable: bool, timers: Timers) -> ServerInvite {
        let mut trying = trying;
        trying.shrink_to_fit();
        let mut tx = ServerInvite {
            state: ServerInviteState::Proceeding,
            reliable,
            timers,
            latest: trying,
            timer_g: None,
            g_interval: timers.t1,
            timer_h: None,
            timer_i: None,
            timer_l: None,
            actions: VecDeque::new(),
        };
        tx.actions.push_back(Action::Transmit(tx.latest.clone()));
        tx
    }

    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// Bytes held on the heap, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.latest.capacity() + super::transaction::queued_bytes(&self.actions)
    }

    pub fn poll_action(&mut self) -> Option<Action<ServerEvent>> {
        super::transaction::pop(&mut self.actions)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest([self.timer_g, self.timer_h, self.timer_i, self.timer_l])
    }

    /// Whether a final response has been sent.
    pub fn is_final_sent(&self) -> bool {
        self.state != ServerInviteState::Proceeding
    }

    /// A provisional response from the core; ignored once a final was
    /// sent.
    pub fn send_provisional(&mut self, response: Vec<u8>) {
        if self.state == ServerInviteState::Proceeding {
            self.actions.push_back(Action::Transmit(response.clone()));
            self.keep(response);
        }
    }

    /// A final response from the core.
    pub fn send_final(&mut self, status: u16, response: Vec<u8>, now: Instant) {
        use ServerInviteState::*;
        let is_2xx = (200..300).contains(&status);
        match (self.state, is_2xx) {
            (Proceeding, true) => {
                self.state = Accepted;
                // Accepted resends nothing (the UAS retransmits its 2xx).
                self.latest = Vec::new();
                self.timer_l = Some(now + self.timers.t1x64());
                self.actions.push_back(Action::Transmit(response));
            }
            (Proceeding, false) => {
                self.state = Completed;
                self.actions.push_back(Action::Transmit(response.clone()));
                self.keep(response);
                self.g_interval = self.timers.t1;
                self.timer_g = self.timers.first_retransmit(self.reliable).map(|t| now + t);
                self.timer_h = Some(now + self.timers.t1x64());
            }
            (Accepted | Completed | Confirmed, true) => {
                self.actions.push_back(Action::Transmit(response));
            }
            _ => {}
        }
    }

    /// A retransmission of the INVITE (§17.2.3 matched it): answered with
    /// the latest response, never passed to the core.
    pub fn on_request_retransmission(&mut self) {
        if matches!(
            self.state,
            ServerInviteState::Proceeding | ServerInviteState::Completed
        ) {
            self.actions
                .push_back(Action::Transmit(self.latest.clone()));
        }
    }

    /// An ACK matching the transaction (for a non-2xx final: an ACK for a
    /// 2xx is its own transaction, §17.2.3).
    pub fn on_ack(&mut self, now: Instant) {
        if self.state == ServerInviteState::Completed {
            self.state = ServerInviteState::Confirmed;
            self.timer_g = None;
            self.timer_h = None;
            let i = self.timers.t4_or_zero(self.reliable);
            if i.is_zero() {
                self.terminate(Termination::Completed);
            } else {
                self.timer_i = Some(now + i);
            }
        }
    }

    pub fn on_timer(&mut self, kind: TimerKind, now: Instant) {
        match kind {
            TimerKind::G if self.timer_g.is_some() => {
                self.actions
                    .push_back(Action::Transmit(self.latest.clone()));
                self.g_interval = self.timers.next_capped(self.g_interval);
                self.timer_g = Some(now + self.g_interval);
            }
            TimerKind::H if self.timer_h.is_some() => {
                self.actions.push_back(Action::ToCore(ServerEvent::NoAck));
                self.terminate(Termination::Timeout);
            }
            TimerKind::I if self.timer_i.is_some() => self.terminate(Termination::Completed),
            TimerKind::L if self.timer_l.is_some() => self.terminate(Termination::Completed),
            _ => {}
        }
    }

    pub fn on_timeout(&mut self, now: Instant) {
        for _ in 0..MAX_FIRES_PER_CALL {
            let Some(kind) = next_due(
                [
                    (TimerKind::G, self.timer_g),
                    (TimerKind::H, self.timer_h),
                    (TimerKind::I, self.timer_i),
                    (TimerKind::L, self.timer_l),
                ],
                now,
            ) else {
                return;
            };
            self.on_timer(kind, now);
        }
    }

    pub fn on_transport_error(&mut self) {
        if self.state != ServerInviteState::Terminated {
            self.actions
                .push_back(Action::ToCore(ServerEvent::TransportError));
            self.terminate(Termination::TransportError);
        }
    }

    /// Keeps the response a retransmitted INVITE or Timer G resends,
    /// without spare capacity: it may be held for 32 s.
    fn keep(&mut self, mut response: Vec<u8>) {
        response.shrink_to_fit();
        self.latest = response;
    }

    fn terminate(&mut self, why: Termination) {
        self.latest = Vec::new();
        self.state = ServerInviteState::Terminated;
        self.timer_g = None;
        self.timer_h = None;
        self.timer_i = None;
        self.timer_l = None;
        self.actions.push_back(Action::Terminated(why));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(tx: &mut ServerInvite) -> Vec<Action<ServerEvent>> {
        std::iter::from_fn(|| tx.poll_action()).collect()
    }

    fn sent(s: &str) -> Action<ServerEvent> {
        Action::Transmit(s.as_bytes().to_vec())
    }

    #[test]
    fn trying_at_once_and_retransmitted_invites_get_the_latest_response() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(b"100".to_vec(), false, Timers::default());
        assert_eq!(drain(&mut tx), [sent("100")]);
        tx.on_request_retransmission();
        assert_eq!(drain(&mut tx), [sent("100")]);
        tx.send_provisional(b"180".to_vec());
        tx.on_request_retransmission();
        assert_eq!(drain(&mut tx), [sent("180"), sent("180")]);
        tx.send_final(486, b"486".to_vec(), t0);
        tx.on_request_retransmission();
        assert_eq!(drain(&mut tx), [sent("486"), sent("486")]);
        tx.send_provisional(b"late 183".to_vec());
        assert_eq!(drain(&mut tx), []);
    }

    #[test]
    fn timer_g_caps_at_t2_until_timer_h() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(b"100".to_vec(), false, Timers::default());
        tx.send_final(480, b"480".to_vec(), t0);
        drain(&mut tx);
        let mut resent = vec![];
        let mut end = vec![];
        while let Some(at) = tx.next_deadline() {
            tx.on_timeout(at);
            for a in drain(&mut tx) {
                match a {
                    Action::Transmit(_) => resent.push((at - t0).as_millis()),
                    other => end.push(other),
                }
            }
        }
        assert_eq!(&resent[..5], [500, 1500, 3500, 7500, 11500]);
        assert_eq!(*resent.last().unwrap(), 31500);
        assert_eq!(
            end,
            [
                Action::ToCore(ServerEvent::NoAck),
                Action::Terminated(Termination::Timeout)
            ]
        );
    }

    #[test]
    fn ack_confirms_then_timer_i_ends_it() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(b"100".to_vec(), false, Timers::default());
        tx.send_final(487, b"487".to_vec(), t0);
        drain(&mut tx);
        tx.on_ack(t0);
        assert_eq!(tx.state(), ServerInviteState::Confirmed);
        tx.on_request_retransmission();
        tx.on_ack(t0);
        assert_eq!(drain(&mut tx), []);
        assert_eq!(tx.next_deadline(), Some(t0 + Duration::from_secs(5)));
        tx.on_timeout(t0 + Duration::from_secs(5));
        assert_eq!(drain(&mut tx), [Action::Terminated(Termination::Completed)]);

        let mut tcp = ServerInvite::new(b"100".to_vec(), true, Timers::default());
        tcp.send_final(487, b"487".to_vec(), t0);
        // No Timer G on a reliable transport: only H.
        assert_eq!(tcp.next_deadline(), Some(t0 + Duration::from_secs(32)));
        tcp.on_ack(t0);
        assert_eq!(tcp.state(), ServerInviteState::Terminated);
    }

    #[test]
    fn accepted_passes_every_2xx_and_absorbs_invites_until_timer_l() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(b"100".to_vec(), false, Timers::default());
        drain(&mut tx);
        tx.send_final(200, b"200 a".to_vec(), t0);
        tx.send_final(200, b"200 a again".to_vec(), t0);
        tx.send_final(200, b"200 b".to_vec(), t0);
        tx.send_final(486, b"486".to_vec(), t0);
        tx.on_request_retransmission();
        assert_eq!(
            drain(&mut tx),
            [sent("200 a"), sent("200 a again"), sent("200 b")]
        );
        assert_eq!(tx.next_deadline(), Some(t0 + Duration::from_secs(32)));
        tx.on_timeout(t0 + Duration::from_secs(32));
        assert_eq!(drain(&mut tx), [Action::Terminated(Termination::Completed)]);
    }

    #[test]
    fn a_2xx_after_a_non_2xx_is_still_sent() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(b"100".to_vec(), false, Timers::default());
        tx.send_final(408, b"408".to_vec(), t0);
        tx.send_final(200, b"200".to_vec(), t0);
        assert_eq!(drain(&mut tx), [sent("100"), sent("408"), sent("200")]);
    }
}
