//! The non-INVITE client transaction (RFC 3261 §17.1.2): the proxy uses
//! it for the CANCEL of a leg (§9.1, §16.10).
//!
//! ```text
//!            start: send request, Timer E (UDP) and F
//!                             |
//!   Timer E: resend,          v
//!   E = min(2E, T2) +-----Trying----+ Timer F: Timeout to core
//!                   +------>| |  |  | transport error: to core
//!                 1xx to core |  |  +------------------------------>+
//!                             v  | 200-699 to core                   |
//!   Timer E: resend, E = T2 Proceeding ---------+                    |
//!   1xx to core        | F, transport error     |                    |
//!                      +------------------------|------------------->+
//!                                               v                    |
//!            final retransmission: absorbed  Completed               |
//!                                               | Timer K (0 on TCP) |
//!                                               v                    v
//!                                             Terminated <-----------+
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::client_invite::ClientEvent;
use super::timers::{TimerKind, Timers};
use super::transaction::{Action, MAX_FIRES_PER_CALL, Termination, earliest, next_due};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// A non-INVITE client transaction (a CANCEL, here).
#[derive(Debug)]
pub struct ClientNonInvite {
    state: ClientNonInviteState,
    reliable: bool,
    timers: Timers,
    request: Vec<u8>,
    timer_e: Option<Instant>,
    e_interval: Duration,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
    actions: VecDeque<Action<ClientEvent>>,
}

impl ClientNonInvite {
    /// Starts the transaction: the request is the first action.
    pub fn new(
        mut request: Vec<u8>,
        reliable: bool,
        timers: Timers,
        now: Instant,
    ) -> ClientNonInvite {
        request.shrink_to_fit();
        let mut tx = ClientNonInvite {
            state: ClientNonInviteState::Trying,
            reliable,
            timers,
            request,
            timer_e: timers.first_retransmit(reliable).map(|t| now + t),
            e_interval: timers.t1,
            timer_f: Some(now + timers.t1x64()),
            timer_k: None,
            actions: VecDeque::new(),
        };
        tx.actions.push_back(Action::Transmit(tx.request.clone()));
        tx
    }

    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    /// Bytes held on the heap, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.request.capacity() + super::transaction::queued_bytes(&self.actions)
    }

    pub fn poll_action(&mut self) -> Option<Action<ClientEvent>> {
        super::transaction::pop(&mut self.actions)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest([self.timer_e, self.timer_f, self.timer_k])
    }

    /// A response whose branch and CSeq method matched (§17.1.3).
    pub fn on_response(&mut self, status: u16, now: Instant) {
        use ClientNonInviteState::*;
        match (self.state, status) {
            (Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.actions
                    .push_back(Action::ToCore(ClientEvent::Response(status)));
            }
            (Trying | Proceeding, 200..=699) => {
                self.state = Completed;
                self.timer_e = None;
                self.timer_f = None;
                self.actions
                    .push_back(Action::ToCore(ClientEvent::Response(status)));
                let k = self.timers.t4_or_zero(self.reliable);
                if k.is_zero() {
                    self.terminate(Termination::Completed);
                } else {
                    self.timer_k = Some(now + k);
                }
            }
            _ => {}
        }
    }

    pub fn on_timer(&mut self, kind: TimerKind, now: Instant) {
        match kind {
            TimerKind::E if self.timer_e.is_some() => {
                self.actions
                    .push_back(Action::Transmit(self.request.clone()));
                // §17.1.2.2: doubling up to T2 in Trying; T2 in Proceeding.
                self.e_interval = if self.state == ClientNonInviteState::Proceeding {
                    self.timers.t2
                } else {
                    self.timers.next_capped(self.e_interval)
                };
                self.timer_e = Some(now + self.e_interval);
            }
            TimerKind::F if self.timer_f.is_some() => {
                self.actions.push_back(Action::ToCore(ClientEvent::Timeout));
                self.terminate(Termination::Timeout);
            }
            TimerKind::K if self.timer_k.is_some() => self.terminate(Termination::Completed),
            _ => {}
        }
    }

    pub fn on_timeout(&mut self, now: Instant) {
        for _ in 0..MAX_FIRES_PER_CALL {
            let Some(kind) = next_due(
                [
                    (TimerKind::E, self.timer_e),
                    (TimerKind::F, self.timer_f),
                    (TimerKind::K, self.timer_k),
                ],
                now,
            ) else {
                return;
            };
            self.on_timer(kind, now);
        }
    }

    pub fn on_transport_error(&mut self) {
        match self.state {
            ClientNonInviteState::Trying | ClientNonInviteState::Proceeding => {
                self.actions
                    .push_back(Action::ToCore(ClientEvent::TransportError));
                self.terminate(Termination::TransportError);
            }
            ClientNonInviteState::Completed => self.terminate(Termination::TransportError),
            ClientNonInviteState::Terminated => {}
        }
    }

    fn terminate(&mut self, why: Termination) {
        self.state = ClientNonInviteState::Terminated;
        self.timer_e = None;
        self.timer_f = None;
        self.timer_k = None;
        self.actions.push_back(Action::Terminated(why));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(tx: &mut ClientNonInvite) -> Vec<Action<ClientEvent>> {
        std::iter::from_fn(|| tx.poll_action()).collect()
    }

    #[test]
    fn timer_e_caps_at_t2_and_timer_f_gives_up() {
        let t0 = Instant::now();
        let mut tx = ClientNonInvite::new(b"CANCEL".to_vec(), false, Timers::default(), t0);
        assert_eq!(drain(&mut tx), [Action::Transmit(b"CANCEL".to_vec())]);
        let mut sent = vec![];
        let mut end = vec![];
        while let Some(at) = tx.next_deadline() {
            tx.on_timeout(at);
            for action in drain(&mut tx) {
                match action {
                    Action::Transmit(_) => sent.push((at - t0).as_millis()),
                    other => end.push(other),
                }
            }
        }
        assert_eq!(
            sent,
            [
                500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
        );
        assert_eq!(
            end,
            [
                Action::ToCore(ClientEvent::Timeout),
                Action::Terminated(Termination::Timeout)
            ]
        );
    }

    #[test]
    fn proceeding_retransmits_every_t2_and_completed_waits_k() {
        let t0 = Instant::now();
        let mut tx = ClientNonInvite::new(b"CANCEL".to_vec(), false, Timers::default(), t0);
        drain(&mut tx);
        tx.on_response(100, t0);
        assert_eq!(drain(&mut tx), [Action::ToCore(ClientEvent::Response(100))]);
        tx.on_timeout(t0 + Duration::from_millis(500));
        drain(&mut tx);
        assert_eq!(tx.next_deadline(), Some(t0 + Duration::from_millis(4500)));
        let t1 = t0 + Duration::from_secs(1);
        tx.on_response(200, t1);
        assert_eq!(drain(&mut tx), [Action::ToCore(ClientEvent::Response(200))]);
        tx.on_response(200, t1);
        assert_eq!(drain(&mut tx), []);
        assert_eq!(tx.next_deadline(), Some(t1 + Duration::from_secs(5)));
        tx.on_timeout(t1 + Duration::from_secs(5));
        assert_eq!(drain(&mut tx), [Action::Terminated(Termination::Completed)]);
    }

    #[test]
    fn reliable_transports_end_at_once() {
        let t0 = Instant::now();
        let mut tx = ClientNonInvite::new(b"CANCEL".to_vec(), true, Timers::default(), t0);
        drain(&mut tx);
        assert_eq!(tx.next_deadline(), Some(t0 + Duration::from_secs(32)));
        tx.on_response(200, t0);
        assert_eq!(
            drain(&mut tx),
            [
                Action::ToCore(ClientEvent::Response(200)),
                Action::Terminated(Termination::Completed)
            ]
        );
    }
}
